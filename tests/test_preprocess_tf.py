"""`ocr_core.preprocess_tf`: the serving graph's TensorFlow preprocessing gives exactly the pixels of the
NumPy preprocessing (`ocr_core.preprocess`) for every image format."""
import cv2
import numpy as np
import tensorflow as tf

from ocr_core.preprocess import PreprocessSpec, image_width, pad_to_canvas, preprocess_word_image
from ocr_core.preprocess_tf import canvas_table, pad_to_canvas_tf, preprocess_image_bytes
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


LINES = PreprocessSpec(height=32, width=1024, dynamic_width=True)


def test_dynamic_width_serving_graph_gives_the_same_pixels_and_canvas_as_numpy():
    """The text-line contract (docs/lines.md): each image keeps its own width, and the batch canvas it is
    padded to is the same in the graph (training, SavedModel) as in NumPy (the engines)."""
    table = canvas_table(LINES)
    for kind, data in _images() + [("line", _encode(np.full((40, 2000), 200, np.uint8)))]:
        want, cw = preprocess_word_image(data, LINES)
        got = preprocess_image_bytes(tf.constant(data), LINES).numpy()
        assert got.shape == want.shape and want.shape[1] == image_width(cw, LINES), kind
        np.testing.assert_array_equal(got, want, err_msg=kind)
        np.testing.assert_array_equal(pad_to_canvas_tf(tf.constant(want), LINES, table).numpy(),
                                      pad_to_canvas(want, LINES), err_msg=kind)
