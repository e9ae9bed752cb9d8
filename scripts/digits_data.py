"""The digits data set as 32x32 grey images, exactly as the shipped PNG files hold them.

scikit-learn's bundled copy of the UCI ML hand-written digits (CC BY 4.0; E. Alpaydin,
C. Kaynak): 8x8 images with values 0..16, scaled to 0..255 and resized bilinearly.
"""

import numpy as np
from PIL import Image
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

SIZE = 32
LABELS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def to_image(digit8x8: np.ndarray) -> np.ndarray:
    """uint8 (32, 32): ink bright on black."""
    small = Image.fromarray(np.round(digit8x8 * 255 / 16).astype(np.uint8), mode="L")
    return np.asarray(small.resize((SIZE, SIZE), Image.BILINEAR))


def splits():
    """(train_images, test_images, train_labels, test_labels), uint8 images."""
    digits = load_digits()
    images = np.stack([to_image(d) for d in digits.images])
    return train_test_split(images, digits.target, test_size=500, random_state=0,
                            stratify=digits.target)
