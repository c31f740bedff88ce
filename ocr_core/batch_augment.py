"""Batch augmentations of uint8 image batches [B, H, W, 1] for training (tf.data, `ocr_core.data`): cheap
photometric jitter on every batch (`augment_batch`), and three optional families on a share of each batch
(`geometry_batch`, `camera_batch`, `weather_batch`; `train.augment_geometry`, `augment_camera`,
`augment_weather` in a config). Each takes a stateless seed of shape [2], so the same seed gives the same
images on every run and every worker.
"""
from __future__ import annotations

import tensorflow as tf

__all__ = ["augment_batch", "camera_batch", "geometry_batch", "weather_batch"]


def augment_batch(images, labels, seed):
    """Cheap photometric augmentation on uint8 batches: contrast/brightness jitter, inversion, noise, blur.

    Geometry is left alone so labels stay aligned with the padding contract of preprocessing.
    Stateless random ops keyed by `seed` (shape [2]) make it reproducible.
    """
    x = tf.cast(images, tf.float32)
    shape = [tf.shape(x)[0], 1, 1, 1]
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 6)

    def uniform(i, lo=0.0, hi=1.0):
        return tf.random.stateless_uniform(shape, seeds[i], lo, hi)

    mean = tf.reduce_mean(x, axis=[1, 2, 3], keepdims=True)
    x = (x - mean) * uniform(0, 0.5, 1.4) + mean + uniform(1, -40.0, 40.0)
    invert = tf.cast(uniform(2) < 0.2, tf.float32)
    x = invert * (255.0 - x) + (1.0 - invert) * x
    x = x + tf.random.stateless_normal(tf.shape(x), seeds[3]) * uniform(4, 0.0, 12.0)
    blur = tf.cast(uniform(5) < 0.3, tf.float32)
    kernel = tf.constant([[1, 2, 1], [2, 4, 2], [1, 2, 1]], tf.float32)[:, :, None, None] / 16.0
    x = blur * tf.nn.conv2d(x, kernel, strides=1, padding="SAME") + (1.0 - blur) * x
    return tf.cast(tf.clip_by_value(tf.round(x), 0.0, 255.0), tf.uint8), labels


def geometry_batch(images, seed, probability: float = 0.5):
    """Random rotation (±4°), horizontal shear (±0.25), scale (0.9-1.05) and shift (±2 px up/down) of a share
    of a uint8 batch, as PARSeq's RandAugment does with its geometric operations.

    Kept small for a 32-px-high canvas: the word's tall letters must not leave it. Borders are extended
    (nearest pixel), like the padding of preprocessing.
    """
    b = tf.shape(images)[0]
    h, w = tf.cast(tf.shape(images)[1], tf.float32), tf.cast(tf.shape(images)[2], tf.float32)
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 6)

    def uniform(i, lo, hi):
        return tf.random.stateless_uniform([b], seeds[i], lo, hi)

    on = tf.cast(uniform(0, 0.0, 1.0) < probability, tf.float32)
    angle = uniform(1, -4.0, 4.0) * (3.14159265 / 180.0) * on
    shear = uniform(2, -0.25, 0.25) * on
    scale = 1.0 + (uniform(3, 0.9, 1.05) - 1.0) * on
    dy = uniform(4, -2.0, 2.0) * on
    cos, sin = tf.cos(angle), tf.sin(angle)
    # output (x, y) -> input: centre, undo scale, rotation and shear, move back (row-major 3x3 without 1)
    a0, a1 = cos / scale, (sin + shear * cos) / scale
    b0, b1 = -sin / scale, (cos - shear * sin) / scale
    cx, cy = w / 2.0, h / 2.0
    a2 = cx - a0 * cx - a1 * cy
    b2 = cy - b0 * cx - b1 * cy - dy
    zeros = tf.zeros_like(a0)
    transforms = tf.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)
    out = tf.raw_ops.ImageProjectiveTransformV3(
        images=tf.cast(images, tf.float32), transforms=transforms, output_shape=tf.shape(images)[1:3],
        fill_value=0.0, interpolation="BILINEAR", fill_mode="NEAREST")
    return tf.cast(tf.clip_by_value(tf.round(out), 0.0, 255.0), tf.uint8)


def _one_per_image(x, seeds, probability: float, variants: list):
    """Of a float batch `x` and same-shape `variants` of it: a `probability` share of the images (drawn with
    seeds[0]) each take one variant (drawn with seeds[1]), the rest stay as they are; back to uint8."""
    b = tf.shape(x)[0]
    on = tf.random.stateless_uniform([b], seeds[0]) < probability
    pick = tf.random.stateless_uniform([b], seeds[1], 0, len(variants), dtype=tf.int32)
    pick = tf.reshape(pick, [b, 1, 1, 1])
    out = variants[-1]
    for k in range(len(variants) - 2, -1, -1):
        out = tf.where(pick == k, variants[k], out)
    out = tf.where(tf.reshape(on, [b, 1, 1, 1]), out, x)
    return tf.cast(tf.clip_by_value(tf.round(out), 0.0, 255.0), tf.uint8)


def camera_batch(images, seed, probability: float = 0.5):
    """Camera degradations of a share of a uint8 batch, one per chosen image, as PARSeq's RandAugment (blur,
    Poisson noise) and STRAug's camera group do: shot noise (Poisson, peak 12-80 photons), motion blur (a
    5-px horizontal or diagonal streak), defocus (Gaussian, sigma ~1.2 px) or low resolution (down to 35-70 %
    of the size and back up, bilinear).

    The batch-level convolutions are computed for every image and each image keeps one result, which is cheap
    on a 32-px canvas and avoids per-image kernels.
    """
    shape = tf.shape(images)
    b, h, w = shape[0], shape[1], shape[2]
    x = tf.cast(images, tf.float32)
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 5)

    peak = tf.random.stateless_uniform([b, 1, 1, 1], seeds[2], 12.0, 80.0) / 255.0
    shot = tf.random.stateless_poisson(shape, seeds[3], x * peak, dtype=tf.float32) / peak

    horizontal = tf.ones([1, 5], tf.float32) / 5.0
    diagonal = tf.eye(5, dtype=tf.float32) / 5.0
    streak = tf.where(tf.random.stateless_uniform([b, 1, 1, 1], seeds[4]) < 0.5,
                      tf.nn.conv2d(x, tf.pad(horizontal, [[2, 2], [0, 0]])[:, :, None, None], 1, "SAME"),
                      tf.nn.conv2d(x, diagonal[:, :, None, None], 1, "SAME"))
    g = tf.exp(-tf.square(tf.range(-2.0, 3.0)) / (2 * 1.2 ** 2))
    g = g / tf.reduce_sum(g)
    defocus = tf.nn.conv2d(x, (g[:, None] * g[None, :])[:, :, None, None], 1, "SAME")
    factor = tf.random.stateless_uniform([], seeds[1] + 1, 0.35, 0.7)
    small = tf.maximum(tf.cast(tf.cast(tf.stack([h, w]), tf.float32) * factor, tf.int32), 4)
    lowres = tf.image.resize(tf.image.resize(x, small, antialias=True), tf.stack([h, w]))

    return _one_per_image(x, seeds, probability, [shot, streak, defocus, lowres])


def weather_batch(images, seed, probability: float = 0.5):
    """STRAug's weather group on a share of a uint8 batch, one per chosen image: fog (a smooth random haze
    blended toward light grey, 25-55 % at its densest), rain (sparse bright 5-px diagonal streaks), snow
    (sparse bright soft flakes over a slightly brightened image) or shadow (one side of a random straight edge
    darkened to 45-75 %). Frost is left out: it needs frost photographs. Like `camera_batch`, every effect is
    computed for the whole batch and each image keeps one.
    """
    shape = tf.shape(images)
    b, h, w = shape[0], shape[1], shape[2]
    x = tf.cast(images, tf.float32)
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 8)

    coarse = tf.random.stateless_uniform([b, 3, 9, 1], seeds[2])
    haze = tf.image.resize(coarse, tf.stack([h, w]), method="bicubic")
    density = tf.random.stateless_uniform([b, 1, 1, 1], seeds[3], 0.25, 0.55)
    fog = x + (210.0 - x) * tf.clip_by_value(haze, 0.0, 1.0) * density

    drops = tf.cast(tf.random.stateless_uniform(shape, seeds[4]) < 0.015, tf.float32)
    streaks = tf.nn.conv2d(drops, tf.reverse(tf.eye(5), [1])[:, :, None, None], 1, "SAME")
    rain = tf.maximum(x, tf.minimum(streaks, 1.0) * 200.0 + x * 0.3)

    flakes = tf.cast(tf.random.stateless_uniform(shape, seeds[5]) < 0.02, tf.float32)
    soft = tf.constant([[0.25, 0.5, 0.25], [0.5, 1.0, 0.5], [0.25, 0.5, 0.25]], tf.float32)
    flakes = tf.minimum(tf.nn.conv2d(flakes, soft[:, :, None, None], 1, "SAME"), 1.0)
    snow = tf.maximum(x * 0.85 + 38.0, flakes * 245.0)

    # shadow: a straight edge through a random point of the image at a random angle, one side darkened
    angle = tf.random.stateless_uniform([b, 1, 1, 1], seeds[6], 0.0, 2.0 * 3.14159265)
    centre = tf.random.stateless_uniform([b, 1, 1, 2], seeds[7])
    rows = tf.cast(tf.range(h), tf.float32)[None, :, None, None] / tf.cast(h, tf.float32)
    cols = tf.cast(tf.range(w), tf.float32)[None, None, :, None] / tf.cast(h, tf.float32)
    side = (cols - centre[..., 1:] * tf.cast(w, tf.float32) / tf.cast(h, tf.float32)) * tf.cos(angle) + \
        (rows - centre[..., :1]) * tf.sin(angle)
    depth = tf.random.stateless_uniform([b, 1, 1, 1], seeds[3] + 1, 0.45, 0.75)
    shadow = tf.where(side > 0, x * depth, x)

    return _one_per_image(x, seeds, probability, [fog, rain, snow, shadow])
