"""Short grey video clips of two hand-written digits, one of which may move: "motion digits".

A clip is T=16 frames of 40x40 grey (uint8, ink bright on black) with two digits of the
UCI ML hand-written digits set (scikit-learn's copy, CC BY 4.0; `digits_data.py`), each
resized from 32x32 to 14x14, at random non-overlapping places. One digit is the *actor*,
the other a still *distractor*. The class is the actor's motion:

- ``still``: neither digit moves;
- ``up-down``: the actor moves up and back down (like a sit-up);
- ``left-right``: the actor moves right and back left.

The motion takes a window of 6 frames starting at a random frame (1..9, so that at least
one still frame comes before and after it): the actor is displaced by
round(A * sin(pi * k / 7)) pixels in the window's k-th frame (k = 1..6), A drawn from
6..10, and stays in the canvas. All other frames are alike but for the noise, so a single
frame cannot tell the classes apart. Placement is drawn the same way for all three classes
(still clips leave room for a motion that does not happen), so the digits' places do not
give the class away. Every frame gets its own mild Gaussian pixel noise (sigma 3 grey
levels by default, rounded and clipped to 0..255).

The *motion region* of a clip: the actor's 14x14 box, where it is in each frame of the
motion window, and False in every other frame (all False for ``still``).

Everything is drawn from ``numpy.random.default_rng(seed)``: the same arguments give the
same clips. Train clips should take their digits from the train split of
``digits_data.splits()``, test clips from the test split (``digit_images()`` does that).
"""

import numpy as np
from digits_data import splits
from PIL import Image

T = 16  # frames
SIZE = 40  # canvas: SIZE x SIZE
DIGIT = 14  # digits resized to DIGIT x DIGIT
WINDOW = 6  # frames of motion
AMPLITUDE = (6, 10)  # displacement at the top of the bump, pixels, inclusive
LABELS = ["still", "up-down", "left-right"]
STILL, UP_DOWN, LEFT_RIGHT = range(3)
# displacement profile over the window: a sine bump, 0.43 .. 0.97 .. 0.43
BUMP = np.sin(np.pi * np.arange(1, WINDOW + 1) / (WINDOW + 1))


def resize_digits(images: np.ndarray) -> np.ndarray:
    """uint8 (N, 32, 32) -> uint8 (N, DIGIT, DIGIT), Pillow's bilinear (antialiased) resize."""
    return np.stack([np.asarray(Image.fromarray(im, mode="L").resize((DIGIT, DIGIT), Image.BILINEAR))
                     for im in images])


def digit_images():
    """(train, test): the 14x14 digits of the train and of the test split of ``splits()``."""
    train_img, test_img, _, _ = splits()
    return resize_digits(train_img), resize_digits(test_img)


def _overlap(a, b, gap=1):
    """Do boxes (top, left, bottom, right) come closer than ``gap`` pixels?"""
    return not (a[2] + gap <= b[0] or b[2] + gap <= a[0] or a[3] + gap <= b[1] or b[3] + gap <= a[1])


def _place(rng, sweep_axis, amplitude):
    """Actor (y, x) at rest and distractor (y, x), the actor's whole sweep clear of the distractor."""
    while True:
        lo_y = amplitude if sweep_axis == 0 else 0  # up: room above
        hi_x = SIZE - DIGIT - (amplitude if sweep_axis == 1 else 0)  # right: room on the right
        ay, ax = rng.integers(lo_y, SIZE - DIGIT + 1), rng.integers(0, hi_x + 1)
        dy, dx = rng.integers(0, SIZE - DIGIT + 1, size=2)
        sweep = (ay - (amplitude if sweep_axis == 0 else 0), ax,
                 ay + DIGIT, ax + DIGIT + (amplitude if sweep_axis == 1 else 0))
        if not _overlap(sweep, (dy, dx, dy + DIGIT, dx + DIGIT)):
            return (int(ay), int(ax)), (int(dy), int(dx))


def make_clips(digits: np.ndarray, n: int, seed: int, labels=None, noise: float = 3.0):
    """``n`` clips from the 14x14 uint8 ``digits``.

    ``labels``: the classes (n,), by default 0, 1, 2, 0, 1, 2, ... Returns a dict:
    ``x`` uint8 (n, T, SIZE, SIZE) the clips; ``y`` int64 (n,) the classes;
    ``mask`` bool (n, T, SIZE, SIZE) the motion region; ``frames`` bool (n, T) the frames of
    the motion window (all False for still); ``start`` int64 (n,) the window's first frame
    (-1 for still); ``actor``/``distractor`` int64 (n,) indices into ``digits``;
    ``amplitude`` int64 (n,) pixels.
    """
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3 if labels is None else np.asarray(labels)
    out = {"x": np.zeros((n, T, SIZE, SIZE), np.uint8), "y": y.astype(np.int64),
           "mask": np.zeros((n, T, SIZE, SIZE), bool), "frames": np.zeros((n, T), bool),
           "start": np.full(n, -1, np.int64), "actor": np.zeros(n, np.int64),
           "distractor": np.zeros(n, np.int64), "amplitude": np.zeros(n, np.int64)}
    for i, label in enumerate(y):
        actor, distractor = rng.choice(len(digits), size=2, replace=False)
        amplitude = int(rng.integers(AMPLITUDE[0], AMPLITUDE[1] + 1))
        # still clips draw an axis too, so that placement is the same for every class
        axis = int(rng.integers(0, 2)) if label == STILL else (0 if label == UP_DOWN else 1)
        (ay, ax), (dy, dx) = _place(rng, axis, amplitude)
        start = int(rng.integers(1, T - WINDOW))  # 1..9: still frames on both sides
        shift = np.zeros(T, np.int64)
        if label != STILL:
            shift[start:start + WINDOW] = np.round(amplitude * BUMP).astype(np.int64)
            out["frames"][i, start:start + WINDOW] = True
            out["start"][i] = start
        canvas = np.zeros((T, SIZE, SIZE), np.float64)
        canvas[:, dy:dy + DIGIT, dx:dx + DIGIT] = digits[distractor]
        for t in range(T):
            top = ay - shift[t] if label == UP_DOWN else ay
            left = ax + shift[t] if label == LEFT_RIGHT else ax
            canvas[t, top:top + DIGIT, left:left + DIGIT] = digits[actor]
            if out["frames"][i, t]:
                out["mask"][i, t, top:top + DIGIT, left:left + DIGIT] = True
        if noise:
            canvas += rng.normal(0, noise, canvas.shape)
        out["x"][i] = np.clip(np.round(canvas), 0, 255).astype(np.uint8)
        out["actor"][i], out["distractor"][i], out["amplitude"][i] = actor, distractor, amplitude
    return out


def unit(clips: np.ndarray) -> np.ndarray:
    """uint8 (N, T, SIZE, SIZE) -> float32 (N, T, SIZE, SIZE, 1) in [0, 1], the models' input."""
    return clips[..., None].astype(np.float32) / 255
