"""Synth version 5's relief for sign crops: how the letters' material catches the light (embossed, engraved,
chiselled, metallic, 3-D extruded, backlit). Each takes the letter coverage and the background and returns the
RGB image; `size` (em px) scales edges and depths."""
from __future__ import annotations

import math

import cv2
import numpy as np

from ocr_core.synth import scene
from ocr_core.synth.render import _colour

RELIEFS = (("emboss", 0.12), ("engrave", 0.1), ("chisel", 0.1), ("metal", 0.14), ("extrude", 0.14),
           ("glow", 0.06))

def _shade(height: np.ndarray, angle: float, strength: float) -> np.ndarray:
    """Lambert light on a height field from direction `angle` (radians, on screen), 0 where it is flat."""
    gy, gx = np.gradient(height)
    lx, ly, lz = math.cos(angle), math.sin(angle), 1.0
    norm = np.sqrt(gx * gx + gy * gy + 1.0)
    return ((-gx * lx - gy * ly) * strength + lz) / norm - lz


def _light_angle(rng: np.random.Generator) -> float:
    return rng.uniform(-math.pi, 0.0)  # from above, as most lamps and the sky: (dx, dy) points up on screen


def emboss(fill: np.ndarray, bg: np.ndarray, size: int, rng: np.random.Generator,
           engraved: bool = False) -> np.ndarray:
    """Letters pressed out of (or cut into) the surface itself: the face has the background's colour, a bit
    lighter (or darker), and only the lit and shaded edges draw the word."""
    sigma = max(0.8, size * rng.uniform(0.02, 0.05))
    height = cv2.GaussianBlur(fill, (0, 0), sigma) * size * 0.12 * (-1 if engraved else 1)
    light = _shade(height, _light_angle(rng), 1.0)[..., None]
    tone = rng.uniform(0.0, 0.18) * (-1 if engraved else 1)
    img = bg * (1 + tone * fill[..., None])
    return img + light * rng.uniform(180, 320) + light * img * 0.3


def chisel(fill: np.ndarray, bg: np.ndarray, rgb: np.ndarray, size: int,
           rng: np.random.Generator) -> np.ndarray:
    """Bevelled letters (V-cut in stone, chiselled gilt, bevelled acrylic): facets from a distance-transform
    ridge, lit from one side."""
    binary = (fill > 0.5).astype(np.uint8)
    depth = max(1.5, size * rng.uniform(0.04, 0.09))
    dist = cv2.distanceTransform(binary, cv2.DIST_L2, 3)
    height = np.minimum(dist, depth) * (1 if rng.random() < 0.6 else -1)
    height = cv2.GaussianBlur(height.astype(np.float32), (0, 0), 0.7)
    light = _shade(height, _light_angle(rng), 1.5)[..., None]
    face = rgb[None, None, :] * (1 + 0.9 * light)
    return bg * (1 - fill[..., None]) + face * fill[..., None]


_METALS = ((212, 175, 55), (192, 192, 200), (184, 115, 51), (205, 127, 50), (230, 230, 235), (170, 150, 90))


def metal(fill: np.ndarray, bg: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """Gold, silver, brass, copper or chrome letters: bands of reflected sky and ground across the face, a
    bevelled rim and a specular glint."""
    h, w = fill.shape
    base = np.asarray(_METALS[int(rng.integers(len(_METALS)))], np.float32) * rng.uniform(0.8, 1.1)
    yy = np.linspace(0, 1, h, dtype=np.float32)[:, None]
    t = yy + 0.15 * scene.ramp(h, w, rng.uniform(0, math.pi))
    freq = rng.uniform(1.5, 5.0)
    bands = 0.5 + 0.5 * np.sin(2 * math.pi * freq * t + rng.uniform(0, 2 * math.pi))
    tone = rng.uniform(0.45, 0.75) + rng.uniform(0.4, 0.8) * bands
    binary = (fill > 0.5).astype(np.uint8)
    dist = cv2.distanceTransform(binary, cv2.DIST_L2, 3)
    height = cv2.GaussianBlur(np.minimum(dist, max(1.0, size * 0.05)).astype(np.float32), (0, 0), 0.8)
    light = _shade(height, _light_angle(rng), 2.0)
    face = base * (tone + 0.8 * light)[..., None]
    face = face + 255 * np.clip(light, 0, None)[..., None] ** 2 * rng.uniform(0.5, 1.5)  # glint
    img = bg * (1 - fill[..., None]) + face * fill[..., None]
    if rng.random() < 0.5:  # a thin dark line where the rim meets the wall
        rim = np.clip(cv2.GaussianBlur(fill, (0, 0), max(0.7, size * 0.015)) - fill, 0, 1)[..., None]
        img = img * (1 - 0.8 * rim)
    return img


def extrude(fill: np.ndarray, bg: np.ndarray, rgb: np.ndarray, side_rgb: np.ndarray, size: int,
            rng: np.random.Generator) -> np.ndarray:
    """3-D letters (channel letters, block titles): the face over its sides, swept back along one direction
    and darkening with depth."""
    depth = size * rng.uniform(0.05, 0.22)
    angle = rng.uniform(0, 2 * math.pi) if rng.random() < 0.3 else rng.uniform(0.2, 1.37) + (
        0 if rng.random() < 0.5 else math.pi / 2)
    dx, dy = math.cos(angle), math.sin(angle)
    steps = max(2, int(depth))
    h, w = fill.shape
    img = bg.copy()
    for k in range(steps, 0, -1):
        m = np.float32([[1, 0, dx * k], [0, 1, dy * k]])
        layer = cv2.warpAffine(fill, m, (w, h))[..., None]
        shade = 1.0 - 0.45 * k / steps
        img = img * (1 - layer) + side_rgb * shade * layer
    if rng.random() < 0.3:  # a contour line between the face and its sides
        edge = np.clip(cv2.dilate(fill, np.ones((3, 3), np.uint8)) - fill, 0, 1)[..., None]
        img = img * (1 - edge) + side_rgb * 0.4 * edge
    return img * (1 - fill[..., None]) + rgb * fill[..., None]


def glow(fill: np.ndarray, bg: np.ndarray, rgb: np.ndarray, size: int,
         rng: np.random.Generator) -> np.ndarray:
    """Backlit and neon letters on a dark ground: a bright, nearly white core with a halo of its colour."""
    halo = cv2.GaussianBlur(fill, (0, 0), size * rng.uniform(0.06, 0.2))[..., None]
    bright = np.clip(rgb * 1.4 + 60, 0, 255)
    img = bg * 0.35 + bright * halo * rng.uniform(0.6, 1.2)
    core = np.clip(bright + rng.uniform(40, 120), 0, 255)
    return img * (1 - fill[..., None]) + core * fill[..., None]


def _relief(rng: np.random.Generator) -> str:
    u, acc = rng.random(), 0.0
    for name, share in RELIEFS:
        acc += share
        if u < acc:
            return name
    return "flat"


def apply_relief(kind: str, fill: np.ndarray, bg: np.ndarray, rgb: np.ndarray, size: int,
                 rng: np.random.Generator) -> np.ndarray:
    """The letters of coverage `fill` drawn onto `bg` (float RGB) in colour `rgb` with the look `kind` (one of
    RELIEFS' names or "flat"); float RGB out, same shape as `bg`."""
    if kind in ("emboss", "engrave"):
        return emboss(fill, bg, size, rng, engraved=kind == "engrave")
    if kind == "chisel":
        return chisel(fill, bg, rgb, size, rng)
    if kind == "metal":
        return metal(fill, bg, size, rng)
    if kind == "extrude":
        side = _colour(rng, float(np.clip(rgb @ np.float32([0.299, 0.587, 0.114]) * rng.uniform(0.3, 0.7)
                                          if rng.random() < 0.7 else rng.uniform(0, 255), 0, 255)))
        return extrude(fill, bg, rgb, side, size, rng)
    if kind == "glow":
        return glow(fill, bg, rgb, size, rng)
    return bg * (1 - fill[..., None]) + rgb * fill[..., None]
