"""A normal `ocr` run prints its own lines only; `--verbose` keeps the start-up noise (pipelines/quiet.py)."""
import struct
import subprocess
import sys
import zlib

from pipelines.quiet import is_noise
from tests.images import encode, word_image


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def odd_icc_png(text: str) -> bytes:
    """A word PNG with an iCCP chunk too short to be a profile: libpng warns while decoding; the image is
    fine."""
    png = encode(word_image(text))
    iccp = _chunk(b"iCCP", b"odd\x00\x00" + zlib.compress(b"not a profile"))
    at = 8 + 25  # after the signature and the IHDR chunk
    return png[:at] + iccp + png[at:]


def _predict(repo, tmp_path, *extra):
    return subprocess.run([sys.executable, "-m", "pipelines.cli", *extra, "predict", "--input",
                           str(tmp_path / "*.png"), "--output", str(tmp_path / "out" / str(len(extra)))],
                          cwd=repo, capture_output=True, text=True, timeout=600)


def test_one_image_predict_prints_only_its_summary(repo, tmp_path):
    (tmp_path / "word.png").write_bytes(odd_icc_png("quiet"))
    proc = _predict(repo, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ocr predict: 1 rows (0 failed)"), lines

    loud = _predict(repo, tmp_path, "--verbose")
    assert loud.returncode == 0
    assert "libpng warning" in loud.stderr  # the noise is real, and only hidden


def test_the_filter_keeps_errors_and_tracebacks():
    for noise in ("WARNING:root:apitools not found, and bigquery client libraries are not available despite "
                  "the import not raising an ImportError.",
                  "INFO:__main__:Logging handler created.",
                  "libpng warning: iCCP: known incorrect sRGB profile",
                  "I0000 00:00:1796173518.089315    3175 port.cc:153] oneDNN custom operations are on."):
        assert is_noise(noise), noise
    for kept in ("Traceback (most recent call last):", "ocr predict: error: --input x: matched no images",
                 "WARNING:root:something else", "libpng error: bad adaptive filter value",
                 "  step 10/250 (epoch 1/8): loss 6.1, 35 img/s"):
        assert not is_noise(kept), kept
