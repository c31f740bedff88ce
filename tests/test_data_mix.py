"""Training on several datasets end to end: `build-dataset --split` and `ocr train --data A --data B
--val-data DEV` (the `DataMix` and batch helpers of `ocr_core.data` are tested in test_data.py; the
`two_sets` fixture is in conftest.py)."""
import json

import pytest

from ocr_core.data import DatasetInfo
from tests.test_train import ocr


def test_split_puts_every_input_into_one_split(two_sets):
    dev = DatasetInfo.load(str(two_sets[2]))
    assert dev.count("val") == 20 and dev.count("train") == 0
    assert dev.manifest["splits"]["val"]["fraction"] == 1.0


@pytest.mark.slow
def test_train_on_a_mix_validates_on_the_dev_set(two_sets, tmp_path):
    big, small, dev = two_sets
    out = tmp_path / "model"
    ocr("train", "--data", big, "--data", small, "--data-weights", "1,1", "--val-data", dev,
        "--config", "demo", "--output", out, "--epochs", 1, "--batch-size", 16, "--max-steps-per-epoch", 5,
        "--no-saved-model")
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["history"][0]["val_examples"] == 20  # the dev set, not big's own val split
    assert metrics["data_weights"] == [1.0, 1.0]
    bad = ocr("train", "--data", big, "--data", small, "--data-weights", "1,x", "--config", "demo",
              "--output", tmp_path / "m2", check=False)
    assert bad.returncode == 2 and "comma-separated" in bad.stderr
