"""Draw object masks for a dozen photo crops, for the pointing game of ``xai evaluate --masks``.

The localisation scores of ``xai evaluate`` (pointing, mass, rank_accuracy) need to know where
the object is in each input.  The photo crops in ``sample_images/photos/`` come with no
annotation, so the object that ``models/efficientnet_lite0.keras`` names for a crop (its top-1
class in ``sample_images/photos/README.md``: the cat for "Egyptian cat", the cup for
"espresso", the rocket for "missile", ...) was traced by hand: each outline below was read off
a 4x enlargement of the crop with a labelled 8/16-pixel grid, then drawn as a red overlay on
the crop, looked at, and corrected until it followed the object to within about 5 pixels.
Crops where the object fills (nearly) the whole frame were left out: a mask that covers most
of the picture says little about where the relevance lies.

Shapes are in pixels of the 224x224 crop, painted in order:

- ``("polygon", [(x, y), ...])``: a filled polygon (the object);
- ``("ellipse", (x0, y0, x1, y1))``: a filled ellipse in that bounding box;
- ``("line", [(x, y), ...], width)``: a thick polyline, for thin parts (tripod legs);
- ``("cut", [(x, y), ...])``: a polygon painted back to background (a hole).

Writes ``sample_images/photo_masks/<stem>.png`` (224x224, mode "L", 255 = object, 0 =
background) and prints each mask's share of the image.  Run from anywhere:

    .venv/bin/python scripts/draw_photo_masks.py
"""

from __future__ import annotations

import os

from PIL import Image, ImageDraw

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "sample_images", "photo_masks")
SIZE = 224

SHAPES: dict[str, list[tuple]] = {
    # missile (657): the Space Shuttle stack (external tank, both boosters, orbiter)
    "astronaut_0": [
        ("polygon", [(106, 0), (141, 0), (145, 30), (146, 46), (151, 42), (156, 48), (159, 60),
                     (161, 100), (162, 224), (63, 224), (69, 208), (76, 190), (80, 160), (82, 120), (84, 100),
                     (87, 80), (88, 58), (91, 46), (95, 44), (99, 46), (101, 30), (104, 10)]),
    ],
    # football helmet (560): the helmet held under the arm (shell rim and black visor)
    "astronaut_1": [
        ("polygon", [(10, 224), (8, 190), (11, 160), (18, 130), (28, 100), (40, 78), (55, 60),
                     (75, 42), (98, 30), (120, 22), (140, 18), (165, 16), (190, 20), (210, 30),
                     (224, 40), (224, 224)]),
    ],
    # tripod (872): the tripod under the camera (column, pan handle, three legs)
    "camera_0": [
        ("line", [(129, 92), (129, 150)], 5),
        ("line", [(132, 140), (146, 132)], 3),
        ("polygon", [(123, 136), (135, 136), (135, 150), (123, 150)]),
        ("line", [(123, 148), (104, 224)], 7),
        ("line", [(129, 148), (129, 218)], 4),
        ("line", [(135, 148), (177, 224)], 6),
    ],
    # tripod (872): the tripod seen close up (column, head, handle, legs, spreader)
    "camera_2": [
        ("polygon", [(104, 0), (112, 0), (112, 198), (104, 198)]),
        ("polygon", [(96, 32), (128, 32), (128, 57), (96, 57)]),
        ("line", [(124, 34), (150, 23)], 5),
        ("polygon", [(95, 52), (106, 52), (91, 120), (78, 168), (70, 190), (66, 200), (66, 224),
                     (48, 224), (50, 200), (58, 190), (64, 168), (77, 120)]),
        ("line", [(68, 186), (112, 196)], 4),
        ("line", [(122, 52), (161, 120), (193, 176), (212, 216), (216, 224)], 7),
    ],
    # Egyptian cat (285): the cat's head (the blurred background on the right left out)
    "chelsea_2": [
        ("polygon", [(0, 0), (185, 0), (176, 24), (165, 45), (160, 65), (152, 100), (146, 120),
                     (140, 144), (130, 176), (122, 200), (120, 224), (0, 224)]),
    ],
    # palace (698): the pagoda-roofed tower; china_3's outline mapped through the two crop boxes
    # (both cut from the same photo), then checked on this crop's own overlay
    "china_1": [
        ("polygon", [(89, 17), (97, 17), (97, 32), (101, 38), (116, 47), (138, 58), (156, 64), (155, 70),
                     (144, 75), (144, 88), (161, 96), (159, 102), (157, 105), (157, 128), (163, 130),
                     (161, 137), (176, 141), (172, 147), (168, 156), (170, 171), (174, 175), (172, 184),
                     (183, 192), (178, 203), (170, 214), (148, 220), (106, 220), (89, 209), (74, 194),
                     (67, 190), (20, 186), (22, 160), (16, 156), (14, 147), (27, 137), (31, 130),
                     (31, 107), (25, 98), (27, 92), (42, 85), (46, 77), (37, 70), (31, 62), (42, 56),
                     (74, 43), (84, 36), (89, 32)]),
    ],
    # bell cote (442): the pagoda-roofed tower (trees in front of its base left out)
    "china_3": [
        ("polygon", [(104, 16), (112, 16), (112, 30), (116, 36), (130, 44), (150, 54), (167, 60),
                     (166, 66), (156, 70), (156, 82), (172, 90), (170, 96), (168, 98), (168, 120),
                     (174, 122), (172, 128), (186, 132), (182, 138), (178, 146), (180, 160),
                     (184, 164), (182, 172), (192, 180), (188, 190), (180, 200), (160, 206),
                     (120, 206), (104, 196), (90, 182), (84, 178), (40, 174), (42, 150), (36, 146),
                     (34, 138), (46, 128), (50, 122), (50, 100), (44, 92), (46, 86), (60, 80),
                     (64, 72), (56, 66), (50, 58), (60, 52), (90, 40), (100, 34), (104, 30)]),
    ],
    # espresso (967): the cup with its coffee and handle (saucer and spoon left out)
    "coffee_1": [
        ("polygon", [(97, 58), (102, 40), (115, 24), (135, 13), (160, 9), (185, 11), (205, 18),
                     (220, 30), (224, 40), (224, 104), (212, 120), (196, 132), (180, 140),
                     (160, 148), (140, 150), (125, 145), (112, 130), (104, 112), (98, 90)]),
        ("polygon", [(110, 132), (140, 132), (142, 150), (136, 166), (124, 174), (112, 168),
                     (108, 150)]),
    ],
    # daisy (985): the dahlia's flower head, and the second head at the bottom edge
    "flower_1": [
        ("polygon", [(120, 28), (140, 30), (160, 38), (176, 48), (190, 62), (197, 80), (202, 100),
                     (202, 118), (196, 140), (190, 156), (180, 172), (166, 184), (150, 194),
                     (130, 200), (112, 199), (92, 194), (72, 184), (58, 172), (46, 156), (36, 140),
                     (31, 120), (31, 102), (36, 86), (44, 70), (54, 56), (66, 46), (82, 38),
                     (100, 30)]),
        ("polygon", [(108, 224), (118, 214), (136, 208), (160, 210), (176, 212), (194, 218),
                     (200, 224)]),
    ],
    # military uniform (652): the uniform: jacket, shirt collar and tie (not the neck), and the cap
    "grace_hopper_0": [
        ("polygon", [(14, 224), (16, 190), (24, 174), (40, 164), (60, 154), (80, 144), (88, 136),
                     (90, 152), (97, 168), (104, 178), (120, 176), (128, 168), (138, 152), (140, 136),
                     (150, 142), (170, 152), (192, 160), (210, 168), (220, 178), (224, 186), (224, 224)]),
        ("polygon", [(68, 72), (64, 56), (66, 44), (76, 32), (84, 24), (100, 14), (120, 11),
                     (140, 14), (152, 22), (160, 34), (163, 50), (162, 68), (158, 72), (140, 64),
                     (120, 60), (100, 62), (80, 66)]),
    ],
    # missile (657): the Falcon 9 rocket (the launch tower's lattice beside it left out)
    "rocket_0": [
        ("polygon", [(113, 24), (116, 24), (120, 28), (122, 33), (124, 40), (125, 48), (125, 68),
                     (122, 72), (122, 224), (102, 224), (102, 72), (103, 66), (103, 46), (105, 36),
                     (108, 29)]),
    ],
    # missile (657): the Falcon 9 rocket, closer (the lattice on both sides left out)
    "rocket_4": [
        ("polygon", [(116, 23), (122, 27), (127, 36), (130, 48), (131, 90), (129, 96), (129, 224),
                     (104, 224), (104, 96), (100, 90), (100, 48), (103, 36), (109, 27)]),
    ],
}


def draw(shapes: list[tuple]) -> Image.Image:
    """The mask of one crop: mode "L", 255 inside the shapes, 0 elsewhere."""
    mask = Image.new("L", (SIZE, SIZE), 0)
    pen = ImageDraw.Draw(mask)
    for kind, points, *rest in shapes:
        if kind == "polygon":
            pen.polygon(points, fill=255)
        elif kind == "cut":
            pen.polygon(points, fill=0)
        elif kind == "ellipse":
            pen.ellipse(points, fill=255)
        elif kind == "line":
            pen.line(points, fill=255, width=rest[0], joint="curve")
        else:
            raise ValueError(f"unknown shape {kind!r}")
    return mask


def main() -> None:
    os.makedirs(OUT, exist_ok=True)
    for stem, shapes in SHAPES.items():
        mask = draw(shapes)
        mask.save(os.path.join(OUT, f"{stem}.png"))
        share = mask.histogram()[255] / SIZE**2
        print(f"{stem}: {share:.1%} of the image")


if __name__ == "__main__":
    main()
