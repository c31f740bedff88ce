"""New views of real labelled crops: the word turned, foreshortened and boxed as a detector boxes it.

Incidental photographs (ICDAR 2015) hold words turned by 10-45 degrees, and their crops are the axis-aligned
box around the turned word, with the scene in the corners. A model trained on level words reads them badly:
turning a level dev crop by only 10 degrees, inside its grown box, took the stage-19 model from 91 to 72 %
on IIIT5K dev. `view` makes such crops from any labelled crop: the label stays true under a turn, a
perspective and a looser or tighter box, so every real crop gives several real-looking examples.

Pure numpy/OpenCV and a seeded generator: view i of crop j is a function of (seed, j, i).
"""
from __future__ import annotations

import cv2
import numpy as np

MAX_ANGLE = 40.0  # degrees; ICDAR 2015's turned words reach about 45
LEVEL_SHARE = 0.25  # views kept near level (|angle| <= 4): the level crops must stay well read
MIN_SIDE = 8  # px: a crop smaller than this on either side gives no views


def turned(image: np.ndarray, angle: float, corners: np.ndarray | None = None,
           margin: float = 0.0) -> np.ndarray:
    """`image` turned by `angle` degrees (counter-clockwise), optionally foreshortened (`corners`: where
    the image's four corners go, as fractions of its sides, before the turn), in the axis-aligned box of
    the result grown or shrunk by `margin` (a fraction of the shorter side, negative: tighter). The new
    corners repeat the nearest edge pixels, as a crop of a scene shows more scene there."""
    h, w = image.shape[:2]
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    dst = src if corners is None else np.float32(corners) * np.float32([w, h])
    turn = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), angle, 1.0)
    dst = np.hstack([dst, np.ones((4, 1), np.float32)]) @ turn.T.astype(np.float32)
    grow = margin * min(h, w)
    lo = dst.min(axis=0) - grow
    hi = dst.max(axis=0) + grow
    size = np.maximum(np.round(hi - lo), 1).astype(int)
    warp = cv2.getPerspectiveTransform(src, (dst - lo).astype(np.float32))
    return cv2.warpPerspective(image, warp, (int(size[0]), int(size[1])), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REPLICATE)


def random_corners(rng: np.random.Generator, strength: float) -> np.ndarray:
    """Four corners moved inwards by up to `strength` of the side each: a word seen a little from aside."""
    jitter = rng.uniform(0.0, strength, size=(4, 2))
    base = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], np.float64)
    inward = np.array([[1, 1], [-1, 1], [-1, -1], [1, -1]], np.float64)
    return base + inward * jitter


def view(image: np.ndarray, rng: np.random.Generator, max_angle: float = MAX_ANGLE) -> np.ndarray:
    """One random new view of a crop: a quarter near level, the rest turned by 4..max_angle degrees
    either way; a third also foreshortened; the box from 5 % tighter to 20 % looser."""
    if rng.random() < LEVEL_SHARE:
        angle = rng.uniform(-4.0, 4.0)
    else:
        angle = rng.uniform(4.0, max(max_angle, 4.0)) * rng.choice([-1.0, 1.0])
    corners = random_corners(rng, 0.15) if rng.random() < 1 / 3 else None
    return turned(image, angle, corners, margin=rng.uniform(-0.05, 0.2))


def views(image: np.ndarray, count: int, seed: int, index: int,
          max_angle: float = MAX_ANGLE) -> list[np.ndarray]:
    """`count` views of crop number `index` (none when a side is under MIN_SIDE px)."""
    if min(image.shape[:2]) < MIN_SIDE:
        return []
    rng = np.random.default_rng([seed, index])
    return [view(image, rng, max_angle) for _ in range(count)]
