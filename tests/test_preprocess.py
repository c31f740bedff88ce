"""`ocr_core.preprocess`: the NumPy word-image preprocessing refuses a huge image from its header alone,
before decoding it, and turns EXIF-rotated pictures upright (its pixels are checked against the TF graph in
test_preprocess_tf.py)."""
from __future__ import annotations

import io
import os
import subprocess
import tracemalloc

import images
import numpy as np
import pytest
from PIL import Image, ImageOps

from ocr_core.errors import InputError
from ocr_core.preprocess import declared_size, decode_bgr, decode_gray, preprocess_word_image
from tests.conftest import PYTHON, REPO


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



def test_huge_png_is_not_decoded_by_pillow_either():
    """tracemalloc sees Python's allocations only, not Pillow's pixel buffers (reading EXIF once made Pillow
    decode every PNG in full, 900 MB here, before the size check): the process's peak must stay small."""
    code = """
from tests import images
from ocr_core.preprocess import preprocess_word_image
try:
    preprocess_word_image(images.huge_png(30000, 30000))
except Exception as e:  # VmHWM: this process's peak resident memory (ru_maxrss would include pytest's)
    peak = next(line for line in open("/proc/self/status") if line.startswith("VmHWM"))
    print(type(e).__name__, peak.split()[1])
"""
    proc = subprocess.run([PYTHON, "-c", code], cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    name, peak_kb = proc.stdout.split()
    assert name == "InputError" and int(peak_kb) < 300_000


# --- EXIF orientation: a phone stores a portrait photo sideways with orientation 6 --------------------

def _with_orientation(upright: Image.Image, orientation: int, fmt: str) -> bytes:
    """The bytes a camera would write: pixels stored so that `orientation` turns them upright."""
    stored = upright.transpose(_UNDO[orientation]) if orientation in _UNDO else upright
    exif = Image.Exif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    stored.save(buf, fmt, exif=exif, **({"quality": 95} if fmt == "JPEG" else {}))
    return buf.getvalue()


# the inverse of each orientation's transpose (5 and 7 are their own inverses)
_T = Image.Transpose
_UNDO = {2: _T.FLIP_LEFT_RIGHT, 3: _T.ROTATE_180, 4: _T.FLIP_TOP_BOTTOM, 5: _T.TRANSPOSE, 6: _T.ROTATE_90,
         7: _T.TRANSVERSE, 8: _T.ROTATE_270}


def test_orientation_6_jpeg_is_decoded_upright_gray_and_colour():
    word = images.word_image("Station", height=40)  # 40 x ~150, wide
    data = _with_orientation(Image.fromarray(word), 6, "JPEG")
    with Image.open(io.BytesIO(data)) as im:
        assert im.size == (word.shape[0], word.shape[1]) and im.getexif()[0x0112] == 6  # stored sideways
    assert declared_size(data) == (word.shape[1], word.shape[0])
    gray = decode_gray(data)
    assert gray.shape == word.shape
    assert np.abs(gray - word.astype(np.float32)).mean() < 3  # the same picture, up to JPEG noise
    assert decode_bgr(data).shape == (*word.shape, 3)
    # what build and predict store: the same as the upright original's
    expected, cw = preprocess_word_image(images.encode(word, ".png"))
    got, got_cw = preprocess_word_image(data)
    assert got_cw == cw and np.abs(got.astype(int) - expected).mean() < 3


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_matches_pillow_exif_transpose(orientation):
    rng = np.random.default_rng(orientation)
    rgb = rng.integers(0, 256, (5, 9, 3), dtype=np.uint8)  # asymmetric, lossless: compare exactly
    data = _with_orientation(Image.fromarray(rgb), orientation, "PNG")
    with Image.open(io.BytesIO(data)) as im:
        reference = np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
    np.testing.assert_array_equal(reference, rgb)
    np.testing.assert_array_equal(decode_bgr(data)[..., ::-1], rgb)
