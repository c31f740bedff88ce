"""Distillation from PP-OCRv6 (`ocr train --teacher`): the teacher's targets, the loss, and a real run."""
import csv
import json

import numpy as np
import pytest

from ocr_core.charset import Charset
from ocr_core.distill import MIN_MASS, bag_of_characters, column_map, distill_loss, load_targets

pytest.importorskip("onnxruntime")


def test_the_bag_of_characters_sums_the_teachers_frames_on_our_charset():
    ours = Charset("abc")
    teacher = "xcba"  # teacher class i + 1 is teacher[i]; it has no 'd', we have no 'x'
    columns = column_map(ours, teacher)
    assert columns.tolist() == [4, 3, 2]
    probs = np.zeros((4, 5))
    probs[0, 0] = 1.0  # blank
    probs[1, 4] = 0.7  # 'a' with a doubt ...
    probs[1, 2] = 0.3  # ... about 'c'
    probs[2, 0] = 1.0
    probs[3, 3] = 0.9  # 'b', and a little of 'x' we do not have
    probs[3, 1] = 0.1
    target = bag_of_characters(probs, columns)
    assert target[0] == 0 and target.sum() == pytest.approx(1.0)
    assert target[1:] == pytest.approx(np.array([0.7, 0.9, 0.3]) / 1.9)
    blank_only = np.zeros((4, 5))
    blank_only[:, 0] = 1 - MIN_MASS / 8
    blank_only[:, 4] = MIN_MASS / 8
    assert not bag_of_characters(blank_only, columns).any()  # the teacher read (almost) nothing


def test_the_loss_is_zero_at_the_teacher_and_ignores_padding_frames():
    import tensorflow as tf

    target = np.array([[0, 0.5, 0.5, 0]], np.float32)
    probs = np.zeros((1, 6, 4), np.float32)
    probs[0, [0, 2, 4], 0] = 1
    probs[0, 1, 1] = probs[0, 3, 2] = 1  # reads "ab": the target's bag
    probs[0, 5, 3] = 1  # a padding frame reads 'c'
    at = distill_loss(tf.constant(probs), tf.constant(target), tf.constant([5]))
    assert float(at[0]) == pytest.approx(0, abs=1e-4)
    unmasked = distill_loss(tf.constant(probs), tf.constant(target))  # the 'c' frame counts
    assert float(unmasked[0]) > 0.2
    none = distill_loss(tf.constant(probs), tf.zeros((1, 4)))
    assert float(none[0]) == 0


@pytest.mark.slow
def test_train_with_the_teacher_on_text_lines(tmp_path, monkeypatch, capfd, caplog):
    """A real PP-OCRv6 reads the stored lines once (cache), and its term changes the training loss."""
    from ocr_core.dataset import Dataset
    from pipelines import train
    from tests.test_lines import PHRASES, build_lines

    data = build_lines(tmp_path, monkeypatch)
    cache = tmp_path / "cache"
    common = ["--data", str(data), "--config", "lines", "--epochs", "1", "--max-steps-per-epoch", "3",
              "--batch-size", "8", "--progress-seconds", "0", "--no-saved-model", "--seed", "3"]
    assert train.run([*common, "--output", str(tmp_path / "plain")]) == 0
    assert train.run([*common, "--output", str(tmp_path / "taught"), "--teacher", "pp-ocrv6",
                      "--teacher-cache", str(cache)]) == 0

    [cached] = cache.glob("*.npz")
    ids, targets = load_targets(str(cached))
    assert len(ids) == Dataset.load(str(data)).count("train") == len(targets)
    charset = Charset(Dataset.load(str(data)).charset)
    # the teacher reads these clean renderings: nearly all of each target's mass is on the line's characters
    texts = {}
    for path in Dataset.load(str(data)).shards("train"):
        from ocr_core import records

        with open(path, "rb") as fh:
            for raw in records.iter_tfrecords(fh, path):
                rec = records.WordRecord.decode(raw)
                texts[rec.id] = rec.text
    assert set(texts) == set(ids) and set(texts.values()) <= set(PHRASES)
    on_label = [sum(t[i] for i in set(charset.encode(texts[rid]))) for rid, t in zip(ids, targets)]
    assert np.median(on_label) > 0.9, on_label

    def loss(run):
        with open(tmp_path / run / "history.csv") as fh:
            return float(next(csv.DictReader(fh))["loss"])

    assert loss("taught") != loss("plain")
    metrics = json.loads((tmp_path / "taught" / "metrics.json").read_text())
    assert metrics["teacher"] == {"name": "pp-ocrv6", "distill_weight": 1.0}

    stamp = cached.stat().st_mtime_ns  # a second run reads the cache instead of running the teacher again
    capfd.readouterr()
    caplog.clear()
    again = [a for a in common if a != "--no-saved-model"]  # its bundle with the SavedModel and ONNX exports
    assert train.run([*again, "--output", str(tmp_path / "again"), "--teacher", "pp-ocrv6",
                      "--teacher-cache", str(cache)]) == 0
    assert cached.stat().st_mtime_ns == stamp and len(list(cache.glob("*.npz"))) == 1
    assert (tmp_path / "again" / "saved_model" / "saved_model.pb").exists()
    # the exports say nothing of the teacher's lookup table (TensorFlow warned of it three times before)
    assert "table_initializer" not in "".join(capfd.readouterr()) + caplog.text


@pytest.mark.slow
def test_train_with_the_teacher_on_fixed_width_words(tmp_path):
    """The fixed-width input (batches parsed whole) carries the targets too."""
    from pipelines import train
    from tests.test_train import make_word_dataset

    data = make_word_dataset(tmp_path, 120, val_fraction=0.25)
    common = ["--data", str(data), "--config", "demo", "--epochs", "1", "--max-steps-per-epoch", "3",
              "--batch-size", "8", "--no-saved-model", "--seed", "5",
              "--teacher-cache", str(tmp_path / "cache")]
    assert train.run([*common, "--output", str(tmp_path / "plain")]) == 0
    assert train.run([*common, "--output", str(tmp_path / "taught"), "--teacher", "pp-ocrv6",
                      "--distill-weight", "2"]) == 0
    losses = []
    for run in ("plain", "taught"):
        with open(tmp_path / run / "history.csv") as fh:
            losses.append(float(next(csv.DictReader(fh))["loss"]))
    assert losses[0] != losses[1]
    assert json.loads((tmp_path / "taught" / "metrics.json").read_text())["teacher"]["distill_weight"] == 2.0


def test_a_distill_weight_that_cannot_work_is_a_one_line_error(tmp_path):
    from ocr_core.errors import UsageError
    from pipelines import train
    from tests.test_train import make_word_dataset

    data = make_word_dataset(tmp_path, 24, val_fraction=0.25)
    with pytest.raises(UsageError, match=r"^--distill-weight must be > 0, got 0.0$"):
        train.run(["--data", str(data), "--config", "demo", "--output", str(tmp_path / "m"), "--teacher",
                   "pp-ocrv6", "--distill-weight", "0"])
    assert not (tmp_path / "m").exists()
