"""The preprocessing contract of `ocr_core.preprocess` as TensorFlow ops, for the serving graph.

Same steps, same float32 arithmetic (gray weights, /257 for 16-bit, alpha over white, area-filter matrices,
round half to even, border-median padding); parity with the NumPy path is tested. Header-level safety
checks (huge or truncated files) are the NumPy path's job: batch inference uses that path.
"""
from __future__ import annotations

import tensorflow as tf

from ocr_core.preprocess import GRAY_WEIGHTS, PreprocessSpec, canvas_width


def _area_weights(n_in, n_out):
    s = tf.cast(n_in, tf.float32) / tf.cast(n_out, tf.float32)
    start = tf.range(n_out, dtype=tf.float32) * s
    j = tf.range(n_in, dtype=tf.float32)
    overlap = tf.minimum(start[:, None] + s, j[None, :] + 1.0) - tf.maximum(start[:, None], j[None, :])
    return tf.maximum(overlap, 0.0) / s


def _gray(img):
    """uint16-scaled decode [H, W, C] -> float32 gray [H, W] in [0, 255]."""
    x = tf.cast(img, tf.float32) / 257.0
    ch = tf.shape(x)[2]
    wr, wg, wb = GRAY_WEIGHTS

    def rgb():
        return x[..., 0] * wr + x[..., 1] * wg + x[..., 2] * wb

    def over_white(gray, alpha):
        a = alpha / 255.0
        return gray * a + 255.0 * (1.0 - a)

    return tf.switch_case(ch - 1, [
        lambda: x[..., 0],
        lambda: over_white(x[..., 0], x[..., 1]),
        rgb,
        lambda: over_white(rgb(), x[..., 3]),
    ])


def border_median_tf(img):
    """`ocr_core.preprocess.border_median` of a uint8 [H, W] tensor."""
    border = tf.concat([img[0, :], img[-1, :], img[:, 0], img[:, -1]], axis=0)
    return tf.sort(border)[(tf.size(border) - 1) // 2]


def image_width_tf(cw, spec: PreprocessSpec):
    """`ocr_core.preprocess.image_width` of an int32 content width."""
    if not spec.dynamic_width:
        return tf.constant(spec.width, tf.int32)
    return tf.maximum(spec.min_width, -(-cw // spec.stride) * spec.stride)


def canvas_table(spec: PreprocessSpec):
    """int32 [spec.width + 1]: `canvas_width` of every image width a dynamic spec produces."""
    return tf.constant([canvas_width(w, spec) for w in range(spec.width + 1)], tf.int32)


def pad_to_canvas_tf(image, spec: PreprocessSpec, table=None):
    """`ocr_core.preprocess.pad_to_canvas` of a uint8 [H, W] tensor (`table`: a `canvas_table(spec)`)."""
    table = canvas_table(spec) if table is None else table
    w = tf.shape(image)[1]
    pad = tf.fill([tf.shape(image)[0], table[w] - w], border_median_tf(image))
    return tf.concat([image, pad], axis=1)


def preprocess_image_bytes(data, spec: PreprocessSpec = PreprocessSpec()):
    """One encoded image (scalar string tensor) -> uint8 [H, W] exactly as `preprocess_word_image` (W from
    the aspect ratio with a dynamic-width spec; the vertical_text check is the NumPy path's)."""
    # JPEG through decode_jpeg: decode_image's default IDCT is the fast, less accurate one (OpenCV uses
    # the accurate one). x257 puts 8-bit data on the 16-bit scale the other formats decode to.
    img = tf.cond(tf.io.is_jpeg(data),
                  lambda: tf.cast(tf.io.decode_jpeg(data, channels=0, dct_method="INTEGER_ACCURATE"),
                                  tf.uint16) * 257,
                  lambda: tf.io.decode_image(data, channels=0, dtype=tf.uint16, expand_animations=False))
    gray = _gray(img)
    h0, w0 = tf.shape(gray)[0], tf.shape(gray)[1]
    cw = (2 * w0 * spec.height + h0) // (2 * h0)
    cw = tf.clip_by_value(cw, 1, spec.width)
    ry = _area_weights(h0, spec.height)
    rx = _area_weights(w0, cw)
    small = tf.matmul(tf.matmul(ry, gray), rx, transpose_b=True)
    small = tf.cast(tf.round(tf.clip_by_value(small, 0.0, 255.0)), tf.uint8)
    pad = tf.fill([spec.height, image_width_tf(cw, spec) - cw], border_median_tf(small))
    return tf.concat([small, pad], axis=1)
