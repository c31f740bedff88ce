"""`ocr_core.preprocess_tf`: the serving graph's TensorFlow preprocessing gives exactly the pixels of the
NumPy preprocessing (`ocr_core.preprocess`) for every image format."""
import cv2
import numpy as np
import tensorflow as tf

from ocr_core.preprocess import preprocess_word_image
from ocr_core.preprocess_tf import preprocess_image_bytes
from tests.images import encode as _encode
from tests.images import mixed_format_images as _images


def test_serving_graph_preprocessing_gives_the_same_pixels_as_numpy():
    for kind, data in _images():
        want, _ = preprocess_word_image(data)
        got = preprocess_image_bytes(tf.constant(data)).numpy()
        assert got.shape == want.shape == (32, 128)
        np.testing.assert_array_equal(got, want, err_msg=kind)


def test_serving_graph_jpeg_gives_the_same_pixels():
    rgb = np.full((48, 160, 3), 230, np.uint8)
    cv2.putText(rgb, "Jpeg", (4, 38), cv2.FONT_HERSHEY_SIMPLEX, 1.2, (10, 10, 10), 3)
    data = _encode(rgb, ".jpg")
    want, _ = preprocess_word_image(data)
    got = preprocess_image_bytes(tf.constant(data)).numpy()
    np.testing.assert_array_equal(got, want)
