"""Words on a slant: a crop that a line model reads with little confidence is read again straightened.

A text detector boxes a word turned by 10-40 degrees (ICDAR 2015 holds many) in an axis-aligned box: the
word runs corner to corner with the scene around it, and scaled to 32 px high its letters are small and
sloped. If the word is a band of length L and thickness t turned by a about the box's centre, the box is
w = L cos a + t sin a wide and h = L sin a + t cos a high, so for a guessed angle the band is known: turn the
crop back by a and cut L x t out of its middle (`straightened`). A sign seen from aside keeps its letters
upright while its baseline slopes: the box is w wide and t + w tan a high, and moving each column back level
gives the band (`unsheared`). Both are tried for 7 angles each way; the recogniser keeps the reading that is
at least MARGIN times as confident as the crop's own (ocr_core/engine.py).

The rule was chosen on 1,500 ICDAR 2015 **train** crops, read by the stage-20 model: crops at least MIN_RATIO
as tall as wide, the 7 angles and MARGIN 4 with the turns alone gained 26 crops there (MARGIN 2: 24); the
unsheared bands added 17 more (up to 55 degrees: 1 more, so 40 stays). On the dev crops the two read 88 more
of the 1,077 IC15 crops (52.5 -> 60.6 %) and changed none of IIIT5K's or SVT's results.
"""
from __future__ import annotations

import cv2
import numpy as np

ANGLES = (10, 15, 20, 25, 30, 35, 40)  # degrees, tried both ways
MIN_RATIO = 0.3  # height / width from which a crop may hold a slanted word
MARGIN = 4.0  # a straightened reading replaces the crop's own when this many times as confident
MAX_SIDE = 512  # px: the picture kept to straighten from is scaled down to this (its band becomes 32 px high)
MIN_BAND = 6  # px: a guessed band thinner than this (or shorter than it is thick) is not tried


def keep_for_straightening(gray: np.ndarray) -> np.ndarray | None:
    """The gray picture (uint8, at most MAX_SIDE on its longer side) kept to straighten a crop from later,
    or None for a crop too flat to hold a slanted word."""
    h, w = gray.shape
    if h < MIN_RATIO * w:
        return None
    return scaled_down(gray, MAX_SIDE / max(h, w))


def scaled_down(gray: np.ndarray, scale: float) -> np.ndarray:
    """A gray picture as uint8, scaled by `scale` (area filter) when that is under 1, else as it is."""
    if scale < 1.0:
        h, w = gray.shape
        gray = cv2.resize(gray, (max(1, round(w * scale)), max(1, round(h * scale))),
                          interpolation=cv2.INTER_AREA)
    return np.rint(np.clip(gray, 0, 255)).astype(np.uint8)


def band(width: int, height: int, angle: float) -> tuple[float, float] | None:
    """(length, thickness) of the band turned by `angle` degrees that fills a width x height box, or None
    when no band of at least MIN_BAND px thickness and more length than thickness does."""
    a = np.radians(abs(angle))
    c, s = np.cos(a), np.sin(a)
    det = c * c - s * s
    length, thick = (width * c - height * s) / det, (height * c - width * s) / det
    if thick < MIN_BAND or length < thick:
        return None
    return float(length), float(thick)


def straightened(gray: np.ndarray, angle: float, pad: float = 0.1) -> np.ndarray | None:
    """The band of a crop whose word rises by `angle` degrees to the right (falls, for a negative angle),
    turned level and cut out with `pad` of its thickness around it; None when no such band fits."""
    h, w = gray.shape
    fits = band(w, h, angle)
    if fits is None:
        return None
    length, thick = fits
    a = np.radians(abs(angle))
    big_w, big_h = int(w * np.cos(a) + h * np.sin(a)) + 2, int(h * np.cos(a) + w * np.sin(a)) + 2
    turn = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), -angle, 1.0)
    turn[0, 2] += big_w / 2.0 - w / 2.0
    turn[1, 2] += big_h / 2.0 - h / 2.0
    level = cv2.warpAffine(gray, turn, (big_w, big_h), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REPLICATE)
    m = pad * thick
    x0, x1 = int(big_w / 2 - length / 2 - m), int(big_w / 2 + length / 2 + m)
    y0, y1 = int(big_h / 2 - thick / 2 - m), int(big_h / 2 + thick / 2 + m)
    return level[max(0, y0):y1, max(0, x0):x1]


def unsheared(gray: np.ndarray, angle: float, pad: float = 0.1) -> np.ndarray | None:
    """The band of a crop whose word's baseline rises by `angle` degrees to the right (falls, for a negative
    angle) with its letters upright (a sign seen from aside), each column moved back level and the band cut
    out with `pad` of its thickness around it; None when no such band fits."""
    h, w = gray.shape
    k = float(np.tan(np.radians(abs(angle))))
    thick = h - w * k
    if thick < MIN_BAND or w < thick:
        return None
    # rising: the band's left end is w*k lower than its right end; falling: the other way round
    shift = np.float32([[1, 0, 0], [k, 1, -w * k + pad * thick]]) if angle > 0 else \
        np.float32([[1, 0, 0], [-k, 1, pad * thick]])
    return cv2.warpAffine(gray, shift, (w, int(thick * (1 + 2 * pad))), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)


def candidates(gray: np.ndarray) -> list[np.ndarray]:
    """The straightened and unsheared bands of a kept picture, for every angle both ways that fits."""
    out = []
    for a in ANGLES:
        for signed in (a, -a):
            for cut in (straightened(gray, signed), unsheared(gray, signed)):
                if cut is not None and cut.size:
                    out.append(cut)
    return out
