"""Training on several datasets: `build-dataset --split`, `DataMix` weights, `ocr train --val-data`."""
import json

import numpy as np
import pytest

from ocr_core.charset import Charset
from ocr_core.data import DataMix, DatasetError, DatasetInfo, make_dataset
from pipelines import build_dataset
from tests.images import write_word
from tests.test_train import ocr


def _dataset(root, words, *extra):
    lines = []
    for i, word in enumerate(words):
        rel = f"img/{i:04d}.png"
        write_word(root / "raw" / rel, word, height=40)
        lines.append(f"{rel}\t{word}")
    (root / "raw" / "labels.tsv").write_text("\n".join(lines) + "\n")
    out = root / "ds"
    build_dataset.run(["--input", str(root / "raw" / "labels.tsv"), "--output", str(out), "--workers", "1",
                       *extra])
    return out


@pytest.fixture(scope="module")
def two_sets(tmp_path_factory):
    big = _dataset(tmp_path_factory.mktemp("big"), ["cat", "dog"] * 100, "--shards", "2",
                   "--val-fraction", "0.1")
    small = _dataset(tmp_path_factory.mktemp("small"), ["sun"] * 20, "--shards", "1", "--val-fraction", "0")
    dev = _dataset(tmp_path_factory.mktemp("dev"), ["moon", "star"] * 10, "--split", "val", "--shards", "1")
    return big, small, dev


def test_split_puts_every_input_into_one_split(two_sets):
    dev = DatasetInfo.load(str(two_sets[2]))
    assert dev.count("val") == 20 and dev.count("train") == 0
    assert dev.manifest["splits"]["val"]["fraction"] == 1.0


def test_weights_oversample_the_small_set(two_sets):
    """200 records beside 20: with weights 1,1 about half of what training reads comes from the small set."""
    big, small, dev = two_sets
    mix = DataMix.load([str(big), str(small)], [1.0, 1.0], [str(dev)])
    assert mix.count("val") == 20 and mix.count("train") == DatasetInfo.load(str(big)).count("train") + 20
    ds = make_dataset(mix.shards("train"), 100, training=True, seed=3, groups=mix.train_groups())
    sun = Charset().encode("sun")
    hits = total = 0
    for _, labels in ds.take(10):
        labels = labels.numpy()
        hits += int(np.sum(np.all(labels[:, :3] == sun, axis=1)))
        total += len(labels)
    assert 0.4 < hits / total < 0.6, hits / total  # by size alone it would be 20/200


def test_mix_refuses_wrong_weights_and_mixed_charsets(two_sets, tmp_path):
    big, small, _ = two_sets
    with pytest.raises(DatasetError, match="2 --data"):
        DataMix.load([str(big), str(small)], [1.0])
    other = _dataset(tmp_path, ["ab"] * 10, "--charset", "ab", "--val-fraction", "0")
    with pytest.raises(DatasetError, match="charset"):
        DataMix.load([str(big), str(other)])


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


def test_geometry_moves_pixels_but_keeps_shape_and_range():
    import tensorflow as tf

    from ocr_core.data import geometry_batch

    rng = np.random.default_rng(0)
    images = np.full((16, 32, 128, 1), 200, np.uint8)
    images[:, 10:22, 20:100] = rng.integers(0, 60, size=(16, 12, 80, 1))
    out = geometry_batch(tf.constant(images), tf.constant([1, 2], tf.int64), probability=1.0).numpy()
    assert out.shape == images.shape and out.dtype == np.uint8
    changed = np.mean(np.any(out != images, axis=(1, 2, 3)))
    assert changed == 1.0
    # small moves: the ink stays on the canvas (the word's rows are not pushed out)
    assert np.all((out < 100).sum(axis=(1, 2, 3)) > 0.6 * (images < 100).sum(axis=(1, 2, 3)))
    same = geometry_batch(tf.constant(images), tf.constant([1, 2], tf.int64), probability=0.0).numpy()
    assert np.array_equal(same, images)
