"""`ocr_core.data`: `DataMix` (weighted train sets, pooled val sets, its refusals) and the tf.data batches of
`make_dataset` and `geometry_batch`."""
import numpy as np
import pytest

from ocr_core.charset import Charset
from ocr_core.data import DataMix, DatasetError, DatasetInfo, make_dataset
from tests.conftest import words_dataset as _dataset


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


def test_geometry_moves_pixels_but_keeps_shape_and_range():
    import tensorflow as tf

    from ocr_core.batch_augment import geometry_batch

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


def test_camera_degrades_each_chosen_image_one_way_and_is_reproducible():
    import tensorflow as tf

    from ocr_core.batch_augment import camera_batch

    rng = np.random.default_rng(0)
    images = np.full((64, 32, 128, 1), 200, np.uint8)
    images[:, 10:22, 20:100] = rng.integers(0, 60, size=(64, 12, 80, 1))
    seed = tf.constant([3, 4], tf.int64)
    out = camera_batch(tf.constant(images), seed, probability=1.0).numpy()
    assert out.shape == images.shape and out.dtype == np.uint8
    assert np.all(np.any(out != images, axis=(1, 2, 3)))
    # noise adds high-frequency energy, blurs and low resolution remove it: both kinds occur in one batch
    def roughness(a):
        return np.abs(np.diff(a.astype(np.float32), axis=2)).mean(axis=(1, 2, 3))
    ratio = roughness(out) / roughness(images)
    assert ratio.max() > 1.5 and ratio.min() < 0.8, ratio
    # the word stays where it was: mean brightness of the ink and paper regions barely move
    assert np.abs(out[:, 12:20, 30:90].mean() - images[:, 12:20, 30:90].mean()) < 15
    assert np.array_equal(out, camera_batch(tf.constant(images), seed, probability=1.0).numpy())
    same = camera_batch(tf.constant(images), seed, probability=0.0).numpy()
    assert np.array_equal(same, images)


def test_weather_changes_each_chosen_image_one_way_and_is_reproducible():
    import tensorflow as tf

    from ocr_core.batch_augment import weather_batch

    rng = np.random.default_rng(0)
    images = np.full((64, 32, 128, 1), 90, np.uint8)  # mid-grey paper: fog and snow lighten, shadow darkens
    images[:, 10:22, 20:100] = rng.integers(0, 40, size=(64, 12, 80, 1))
    seed = tf.constant([5, 6], tf.int64)
    out = weather_batch(tf.constant(images), seed, probability=1.0).numpy()
    assert out.shape == images.shape and out.dtype == np.uint8
    assert np.all(np.any(out != images, axis=(1, 2, 3)))
    change = out.astype(np.float32).mean(axis=(1, 2, 3)) - images.astype(np.float32).mean(axis=(1, 2, 3))
    assert change.max() > 5 and change.min() < -5, change  # some images lighter (fog, snow), some darker
    assert np.array_equal(out, weather_batch(tf.constant(images), seed, probability=1.0).numpy())
    assert np.array_equal(weather_batch(tf.constant(images), seed, probability=0.0).numpy(), images)
