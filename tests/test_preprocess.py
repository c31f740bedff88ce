"""`ocr_core.preprocess`: the NumPy word-image preprocessing refuses a huge image from its header alone,
before decoding it (its pixels are checked against the TF graph in test_preprocess_tf.py)."""
from __future__ import annotations

import tracemalloc

import images
import pytest

from ocr_core.errors import InputError
from ocr_core.preprocess import preprocess_word_image


@pytest.mark.parametrize("width, height, said", [
    (30000, 30000, "30000x30000"),  # a decode would need 900 MB
    # each side plausible, 38 MP: the decode plus the resize matrices would need over 1 GB
    (1_000_000, 38, "the resize"),
])
def test_huge_png_is_refused_from_its_header_without_allocating_it(width, height, said):
    data = images.huge_png(width, height)
    assert len(data) < 200_000
    tracemalloc.start()
    try:
        with pytest.raises(InputError) as e:
            preprocess_word_image(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert e.value.reason == "too_large" and said in e.value.detail and f"{width}x{height}" in e.value.detail
    assert peak < 5_000_000
