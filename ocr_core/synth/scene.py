"""Synth version 3: what makes a generated crop look like a photographed one.

Natural-image backgrounds (random crops of the wallpapers and photographs that Debian's background packages
install), text colour chosen against the local palette of that crop, and signage looks (embossed or engraved
letters, LED dot matrices, reflections, painted edges), defocus blur and heavy JPEG. `render` calls these
only for version 3, so every random draw here happens only then and versions 1-2 stay byte-identical.

The ranges were chosen by looking at the real train crops (`../shared/realwords/*/train.tsv`, a 48-crop
contact sheet and the size statistics of 300 crops per folder): crop heights 17-116 px (median 28-53), about
0.4-0.55 text heights of width per character, mostly upper-case shop signs and posters, a third of them
blurred or low-resolution, many rotated by a few degrees (IC15 up to ~15), natural and textured backgrounds,
bevelled, outlined and shadowed letters.
"""
from __future__ import annotations

import functools
import glob
import os

import cv2
import numpy as np

from ocr_core.preprocess import GRAY_WEIGHTS

# Debian packages: gnome-backgrounds and mate-backgrounds (/usr/share/backgrounds),
# plasma-workspace-wallpapers (/usr/share/wallpapers/<name>/contents/images/<W>x<H>.jpg: one picture,
# several sizes).
BACKGROUND_DIRS = ("/usr/share/backgrounds", "/usr/share/wallpapers")
_IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp")
MAX_SIDE = 900  # backgrounds are kept at most this large in memory (a crop is rarely more than 400 px)


@functools.lru_cache(maxsize=4)
def background_files(dirs: tuple[str, ...] = BACKGROUND_DIRS) -> tuple[str, ...]:
    """One file per picture under `dirs` (the smallest rendition at least 1000 px wide), sorted."""
    pictures: dict[str, list[tuple[int, str]]] = {}
    for d in dirs:
        for path in glob.glob(os.path.join(d, "**", "*"), recursive=True):
            if not path.lower().endswith(_IMAGE_EXTENSIONS) or not os.path.isfile(path):
                continue
            parent = os.path.dirname(path)
            name = os.path.splitext(os.path.basename(path))[0]
            try:  # plasma: "1920x1080"; one picture per folder
                width = int(name.split("x")[0])
                key = parent
            except ValueError:
                width, key = 0, path
            pictures.setdefault(key, []).append((width, path))
    chosen = []
    for renditions in pictures.values():
        big = sorted(r for r in renditions if r[0] >= 1000) or sorted(renditions)
        chosen.append(big[0][1])
    return tuple(sorted(chosen))


@functools.lru_cache(maxsize=512)  # every picture stays loaded: ~100 of them, ~1.5 MB each
def _load_background(path: str) -> np.ndarray | None:
    # Decoded at half size (JPEG decoders do it in the IDCT): 4x faster, and the pictures are >= 1000 px.
    img = cv2.imread(path, cv2.IMREAD_REDUCED_COLOR_2)
    if img is None or min(img.shape[:2]) < 32:
        return None
    scale = MAX_SIDE / max(img.shape[:2])
    if scale < 1:
        img = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(img[..., ::-1]).astype(np.float32)


def smooth_noise(rng: np.random.Generator, h: int, w: int, cell: float) -> np.ndarray:
    """Value noise with features about `cell` px wide, roughly unit variance."""
    gh, gw = max(2, int(h / cell) + 2), max(2, int(w / cell) + 2)
    return cv2.resize(rng.normal(size=(gh, gw)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)


def ramp(h: int, w: int, theta: float) -> np.ndarray:
    """A linear ramp from 0 to 1 across an (h, w) field in direction `theta` (radians)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    t = xx * np.cos(theta) + yy * np.sin(theta)
    return (t - t.min()) / (np.ptp(t) + 1e-6)


def _luma(rgb: np.ndarray) -> np.ndarray:
    return rgb @ np.asarray(GRAY_WEIGHTS, np.float32)


def photo_patch(rng: np.random.Generator, h: int, w: int, files: tuple[str, ...]) -> np.ndarray | None:
    """A random crop of a random background picture, resized to (h, w), RGB float; None without pictures."""
    if not files:
        return None
    src = _load_background(files[int(rng.integers(len(files)))])
    if src is None:
        return None
    sh, sw = src.shape[:2]
    # The crop spans 1-8x the output size of the picture: from fine grain to whole objects.
    zoom = float(np.exp(rng.uniform(0, np.log(8))))
    ch = int(min(sh, max(4, h * zoom)))
    cw = int(min(sw, max(4, ch * w / h)))
    ch = int(min(ch, max(4, cw * h / w)))
    y = int(rng.integers(0, sh - ch + 1))
    x = int(rng.integers(0, sw - cw + 1))
    patch = src[y:y + ch, x:x + cw]
    if rng.random() < 0.5:
        patch = patch[:, ::-1]
    return cv2.resize(patch, (w, h), interpolation=cv2.INTER_AREA if ch > h else cv2.INTER_LINEAR)


def fit_patch(patch: np.ndarray, contrast: float, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """Tames a picture crop so text of `contrast` stays readable on it: (patch, its mean luma).

    The crop's luma deviations are compressed to at most ~30 % of the contrast (the eye reads text on a busy
    background because the text differs more than the background varies), keeping its colours.
    """
    luma = _luma(patch)
    mean, std = float(luma.mean()), float(luma.std()) + 1e-6
    limit = contrast * rng.uniform(0.12, 0.32)
    if std > limit:
        patch = mean + (patch - mean) * (limit / std)
    return patch, mean


def text_luma_against(rng: np.random.Generator, back_l: float, contrast: float) -> tuple[float, float]:
    """(text luma, contrast) for a background of mean luma `back_l`: darker or lighter, whichever fits."""
    room_dark, room_light = back_l, 255.0 - back_l
    contrast = min(contrast, max(room_dark, room_light))
    can_dark, can_light = room_dark >= contrast, room_light >= contrast
    dark = can_dark and (not can_light or rng.random() < 0.6)
    if dark:
        return float(rng.uniform(0, back_l - contrast)), contrast
    return float(rng.uniform(back_l + contrast, 255.0)), contrast


def bevel(fill: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """Signed light of an embossed (+) or engraved (-) face: light edges on one side, dark on the other."""
    d = max(1.0, size * rng.uniform(0.03, 0.07))
    angle = rng.uniform(0, 2 * np.pi)
    dx, dy = d * np.cos(angle), d * np.sin(angle)
    h, w = fill.shape[:2]
    m1 = np.float32([[1, 0, dx], [0, 1, dy]])
    m2 = np.float32([[1, 0, -dx], [0, 1, -dy]])
    f = fill[..., 0]
    edge = cv2.warpAffine(f, m1, (w, h)) - cv2.warpAffine(f, m2, (w, h))
    return cv2.GaussianBlur(edge, (0, 0), d * 0.5)[..., None] * (1 if rng.random() < 0.5 else -1)


def dot_matrix(fill: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """The text mask seen through an LED grid: round dots about a seventh of the text size apart."""
    h, w = fill.shape[:2]
    pitch = max(2.5, size * rng.uniform(0.1, 0.16))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    cy, cx = (yy % pitch) - pitch / 2, (xx % pitch) - pitch / 2
    dots = (cy * cy + cx * cx <= (pitch * rng.uniform(0.32, 0.45)) ** 2).astype(np.float32)
    cells = cv2.GaussianBlur(fill[..., 0], (0, 0), pitch * 0.4)
    lit = (cells > 0.35 * max(float(cells.max()), 1e-3)).astype(np.float32) * dots  # thin faces light too
    return cv2.GaussianBlur(lit, (0, 0), 0.6)[..., None]


def rough_edges(fill: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """Painted or worn letters: the mask's edges pushed in and out by smooth noise."""
    h, w = fill.shape[:2]
    noise = smooth_noise(rng, h, w, max(2.0, size * rng.uniform(0.05, 0.2)))
    soft = cv2.GaussianBlur(fill[..., 0], (0, 0), max(0.8, size * 0.03))
    soft = soft / max(float(soft.max()), 1e-3)  # hairline faces keep their strokes
    out = np.clip((soft - 0.5 + 0.18 * noise) * 4 + 0.5, 0, 1)
    return out[..., None]


def reflection(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """A soft bright band across the crop (glass, glossy paint, a lamp), in [0, 1]."""
    t = ramp(h, w, rng.uniform(0, np.pi))
    centre, width = rng.uniform(0.1, 0.9), rng.uniform(0.05, 0.3)
    return np.exp(-((t - centre) / width) ** 2)[..., None]


def defocus(img: np.ndarray, radius: float) -> np.ndarray:
    """Out-of-focus blur: a disc kernel."""
    r = int(np.ceil(radius))
    yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
    kernel = (xx * xx + yy * yy <= radius * radius + 0.5).astype(np.float32)
    return cv2.filter2D(img, -1, kernel / kernel.sum())


def motion_blur(img: np.ndarray, length: int, angle: float) -> np.ndarray:
    """Camera shake: a line kernel of `length` px (odd, >= 3) at `angle` degrees."""
    k = max(3, length | 1)
    kernel = np.zeros((k, k), np.float32)
    kernel[k // 2] = 1.0
    rot = cv2.getRotationMatrix2D(((k - 1) / 2, (k - 1) / 2), angle, 1.0)
    kernel = cv2.warpAffine(kernel, rot, (k, k))
    return cv2.filter2D(img, -1, kernel / max(kernel.sum(), 1e-6))
