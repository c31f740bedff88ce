"""Reading built datasets checks what was written: TFRecord CRCs and label ids against the charset."""
import json
from pathlib import Path

import pytest

from ocr_core import records
from tests.test_train import REPO, make_word_dataset, ocr


@pytest.fixture()
def dataset(tmp_path) -> Path:
    return make_word_dataset(tmp_path, 40, val_fraction=0.25)


def _first_train_shard(root: Path) -> Path:
    manifest = json.loads((root / "manifest.json").read_text())
    return root / next(s["path"] for s in manifest["shards"] if s["split"] == "train" and s["count"])


def _error_lines(stderr: str) -> list[str]:
    """stderr without the WARNING lines Beam's import logs in some environments (apitools, ...)."""
    return [line for line in stderr.strip().splitlines() if not line.startswith("WARNING:")]


def _flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x40
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("offset, problem", [(60, "data checksum"), (3, "length checksum")])
def test_inspect_reports_a_flipped_byte(dataset, offset, problem):
    shard = _first_train_shard(dataset)
    assert ocr("inspect", dataset, "-n", 1000).returncode == 0
    _flip(shard, offset)  # inside the first record's data, or in its length field
    p = ocr("inspect", dataset, "-n", 1000, check=False)
    assert p.returncode == 2, p.stdout[-2000:]
    assert "Traceback" not in p.stderr
    want = f"ocr inspect: error: {shard}: corrupt TFRecord at byte 0 ({problem} mismatch)"
    assert _error_lines(p.stderr) == [want], p.stderr


def test_an_edited_manifest_charset_is_refused(dataset, tmp_path):
    manifest = json.loads((dataset / "manifest.json").read_text())
    manifest["charset"] = manifest["charset"][::-1]  # same characters, other ids
    (dataset / "manifest.json").write_text(json.dumps(manifest))
    p = ocr("inspect", dataset, check=False)
    assert p.returncode == 2 and "do not encode its text in the dataset's charset" in p.stderr, p.stderr
    assert len(_error_lines(p.stderr)) == 1 and "Traceback" not in p.stderr
    # A config with the edited charset passes the charset comparison; the records' ids still disagree.
    demo = (REPO / "configs" / "demo.yaml").read_text()
    config = tmp_path / "reversed.yaml"
    config.write_text(demo.replace(f'charset: "{manifest["charset"][::-1]}"',
                                   f'charset: {json.dumps(manifest["charset"])}'))
    assert config.read_text() != demo
    p = ocr("train", "--data", dataset, "--config", config, "--output", tmp_path / "m", check=False)
    assert p.returncode == 2 and "do not encode its text in the dataset's charset" in p.stderr, p.stderr
    assert not (tmp_path / "m").exists()


def test_tfrecord_framing_is_what_tensorflow_reads(tmp_path):
    import tensorflow as tf

    payloads = [b"", b"x", bytes(range(256)) * 40]
    path = tmp_path / "t.tfrecord"
    path.write_bytes(b"".join(records.frame(p) for p in payloads))
    got = [r.numpy() for r in tf.data.TFRecordDataset(str(path))]  # TF checks both CRCs
    assert got == payloads
    with open(path, "rb") as fh:
        assert list(records.iter_tfrecords(fh, str(path))) == payloads
