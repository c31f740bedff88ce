"""`ocr_core.training`'s helpers: which task is the chief, the config/dataset compatibility checks, the
validation sums of a batch and the ETA clock (the loop itself is run end to end in test_train.py)."""
import numpy as np
import pytest
import tensorflow as tf

from ocr_core import training
from ocr_core.charset import Charset
from ocr_core.config import load_config
from ocr_core.data import DataMix, DatasetError, DatasetInfo


def test_the_chief_is_the_only_task_or_chief_or_worker_0():
    assert all(training.is_chief(t) for t in [(None, 0), ("chief", 0), ("worker", 0)])
    assert not any(training.is_chief(t) for t in [("worker", 1), ("ps", 0), ("evaluator", 0)])


def test_check_compatible_names_what_does_not_fit(two_sets):
    big, small, dev = two_sets
    demo = load_config("demo")
    training.check_compatible(demo, DatasetInfo.load(str(big)))
    training.check_compatible(demo, DataMix.load([str(big), str(small)], [1.0, 1.0], [str(dev)]))
    other = load_config("demo")
    other.charset = "abc"
    with pytest.raises(DatasetError, match=r"charset of config 'demo' \(3 chars\) differs from the dataset"):
        training.check_compatible(other, DatasetInfo.load(str(big)))
    wide = load_config("demo")
    wide.model.width = 160
    with pytest.raises(DatasetError, match=r"images are \(32, 128\) but config 'demo' expects \(32, 160\)"):
        training.check_compatible(wide, DatasetInfo.load(str(big)))
    with pytest.raises(DatasetError, match="the 'val' split is empty"):
        training.check_compatible(demo, DatasetInfo.load(str(small)))


def _peaked_batch(paths, steps=31, classes=63, p=0.9):
    probs = np.full((len(paths), steps, classes), (1 - p) / (classes - 1), np.float32)
    for b, path in enumerate(paths):
        for t, c in enumerate(path + [0] * (steps - len(path))):
            probs[b, t, :] = (1 - p) / (classes - 1)
            probs[b, t, c] = p
    return probs


def test_validation_sums_count_real_rows_exact_case_free_and_edit_distance():
    charset = Charset()
    a, b, upper_a = charset.encode("a")[0], charset.encode("b")[0], charset.encode("A")[0]
    probs = _peaked_batch([[0, a, 0, b], [0, a], [0, b]])  # reads "ab", "a", "b"
    labels = np.zeros((3, 8), np.int32)
    labels[0, :2] = [a, b]  # "ab": exact
    labels[1, :1] = [upper_a]  # "A": right but for case, one edit
    # row 2 is padding (an empty label): it counts for nothing
    sums = training.validation_sums(tf.constant(probs), tf.constant(labels),
                                    training._lowercase_table(charset)).numpy()
    n, loss, exact, exact_nocase, dist, chars = sums
    assert sums.dtype == np.float32 and (n, exact, exact_nocase, dist, chars) == (2, 1, 2, 1, 3)
    assert np.isfinite(loss) and loss > 0


def test_clock():
    assert [training._clock(s) for s in (0, 59.4, 59.6, 61, 3599, 3725)] == [
        "0:00", "0:59", "1:00", "1:01", "59:59", "1:02:05"]
