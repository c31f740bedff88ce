"""Text lines and any aspect ratio (docs/lines.md): the dynamic-width preprocessing contract, what users give
it (very wide, very tall, small crops, long words), and fixed-width contracts left exactly as they were."""
import numpy as np
import pytest

from ocr_core.errors import InputError
from ocr_core.preprocess import PreprocessSpec, canvas_width, pad_to_canvas, preprocess_word_image
from tests import images

LINES = PreprocessSpec(height=32, width=1024, dynamic_width=True)


def test_fixed_width_contract_is_unchanged():
    d = PreprocessSpec().to_dict()
    assert "dynamic_width" not in d and "min_width" not in d
    assert PreprocessSpec.from_dict(d) == PreprocessSpec()
    img, cw = preprocess_word_image(images.encode(images.word_image("Hello")))
    assert img.shape == (32, 128) and 0 < cw < 128
    tall = images.encode(np.full((200, 20), 200, np.uint8))
    assert preprocess_word_image(tall)[0].shape == (32, 128)  # no vertical_text for word models


def test_dynamic_width_keeps_the_aspect_ratio_rounded_up_to_the_stride():
    assert PreprocessSpec.from_dict(LINES.to_dict()) == LINES
    data = images.encode(images.word_image("a longer line of text", height=40))
    img, cw = preprocess_word_image(data, LINES)
    h, w = images.word_image("a longer line of text", height=40).shape
    assert cw == (2 * w * 32 + h) // (2 * h) and img.shape == (32, -(-cw // 4) * 4)
    assert img.shape[1] % LINES.stride == 0


@pytest.mark.parametrize("size", [(100, 200), (200, 100), (12, 30), (32, 12)])
def test_small_and_odd_crops_get_at_least_min_width(size):
    h, w = size
    img, cw = preprocess_word_image(images.encode(np.full((h, w), 180, np.uint8)), LINES)
    assert img.shape[0] == 32 and img.shape[1] >= LINES.min_width and img.shape[1] % 4 == 0
    assert cw == max(1, (2 * w * 32 + h) // (2 * h))


def test_a_2000_px_line_is_scaled_to_the_max_width():
    line = np.full((40, 2000), 220, np.uint8)
    line[10:30, ::50] = 20
    img, cw = preprocess_word_image(images.encode(line), LINES)
    assert img.shape == (32, 1024) and cw == 1024  # squeezed horizontally (1600 -> 1024), documented


def test_a_vertical_word_is_a_clear_error():
    with pytest.raises(InputError) as e:
        preprocess_word_image(images.encode(np.full((400, 40), 200, np.uint8)), LINES)
    assert e.value.reason == "vertical_text" and "top to bottom" in e.value.detail
    # a tight crop of one narrow character is not refused
    assert preprocess_word_image(images.encode(np.full((50, 20), 200, np.uint8)), LINES)[0].shape[0] == 32


def test_a_wide_photo_is_not_refused_for_the_resize_matrix():
    """4,032 px wide: over the fixed rule's width x W cell limit, yet its resize matrix is small."""
    data = images.encode(np.full((3024, 4032), 200, np.uint8), ".jpg")
    assert preprocess_word_image(data, LINES)[0].shape == (32, 44)


def test_long_words_keep_their_width():
    word = "Pneumonoultramicroscopicsilicovolcanoconiosis"
    img, cw = preprocess_word_image(images.encode(images.word_image(word)), LINES)
    fixed, fixed_cw = preprocess_word_image(images.encode(images.word_image(word)))
    assert fixed_cw == 128 and cw > 500 and img.shape[1] == -(-cw // 4) * 4


def test_canvas_depends_on_the_image_width_only():
    img = preprocess_word_image(images.encode(images.word_image("canvas")), LINES)[0]
    out = pad_to_canvas(img, LINES)
    assert out.shape == (32, canvas_width(img.shape[1], LINES))
    assert out.shape[1] - img.shape[1] <= max(8, out.shape[1] / 8)
    np.testing.assert_array_equal(out[:, :img.shape[1]], img)


def test_a_dynamic_spec_must_fit_its_stride():
    with pytest.raises(ValueError, match="multiples of stride"):
        PreprocessSpec(32, 1022, dynamic_width=True)
