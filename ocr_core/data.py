"""tf.data input from the TFRecord shards of a built dataset (see `ocr_core.records` for the schema).

Batches are `(images uint8 [B, H, W, 1], labels int32 [B, L])` with labels padded by 0 (the blank id, so the
true lengths are the non-zero counts) — exactly what `CRNN.fit` and the custom distributed loop consume.
A dynamic-width dataset (text lines, docs/lines.md) gives `(images, labels, logit_length int32 [B])` instead:
each image padded to its `canvas_width` and batched with images of the same canvas (bucketed by width), and
its own time steps, so CTC never reads the batch padding.
"""
from __future__ import annotations

from dataclasses import dataclass

import tensorflow as tf

from ocr_core import records
from ocr_core.batch_augment import augment_batch, camera_batch, geometry_batch, weather_batch
from ocr_core.dataset import Dataset as DatasetInfo  # the manifest's home; the old name stays for callers
from ocr_core.dataset import DatasetError
from ocr_core.preprocess import PreprocessSpec

__all__ = ["DataMix", "DatasetError", "DatasetInfo", "make_dataset", "parse_batch"]


@dataclass
class DataMix:
    """Training data drawn from several datasets: train splits sampled by weight, val splits pooled.

    Built with `ocr train --data A --data B --data-weights 1,3 --val-data DEV`: every train batch draws its
    records from A and B in proportion 1:3 (oversampling the small one, e.g. real crops beside a large
    synthetic set), and validation (model selection) runs on the val splits of the --val-data datasets.
    """

    train_sets: list[DatasetInfo]
    weights: list[float]
    val_sets: list[DatasetInfo]

    @classmethod
    def load(cls, data: list[str], weights: list[float] | None = None,
             val_data: list[str] | None = None) -> DataMix:
        train_sets = [DatasetInfo.load(d) for d in data]
        if weights is None:
            weights = [float(max(1, t.count("train"))) for t in train_sets]
        if len(weights) != len(train_sets):
            raise DatasetError(f"--data-weights has {len(weights)} values for {len(train_sets)} --data "
                               "datasets")
        if any(w < 0 for w in weights) or sum(weights) <= 0:
            raise DatasetError("--data-weights must be >= 0 with a positive sum")
        val_sets = [DatasetInfo.load(d) for d in val_data] if val_data else train_sets
        mix = cls(train_sets, [float(w) for w in weights], val_sets)
        first = train_sets[0]
        for other in train_sets[1:] + val_sets:
            if (other.charset, other.image_shape, other.spec.dynamic_width) != \
                    (first.charset, first.image_shape, first.spec.dynamic_width):
                raise DatasetError(f"{other.root}: charset or image shape differs from {first.root}; "
                                   "datasets trained together must share both")
        return mix

    @property
    def root(self) -> str:
        return ",".join(t.root for t in self.train_sets)

    @property
    def charset(self) -> str:
        return self.train_sets[0].charset

    @property
    def image_shape(self) -> tuple[int, int]:
        return self.train_sets[0].image_shape

    @property
    def spec(self) -> PreprocessSpec:
        return self.train_sets[0].spec

    def _sets(self, split: str) -> list[DatasetInfo]:
        if split == "val":
            return self.val_sets
        return [t for t, w in zip(self.train_sets, self.weights) if w > 0]

    def count(self, split: str) -> int:
        return sum(d.count(split) for d in self._sets(split))

    def shards(self, split: str) -> list[str]:
        return [s for d in self._sets(split) for s in d.shards(split)]

    def verify_sample(self, per_split: int = 32) -> None:
        for d in self.train_sets + [v for v in self.val_sets if v not in self.train_sets]:
            d.verify_sample(per_split)

    def train_groups(self) -> list[tuple[list[str], float]]:
        """(shard files, weight) per train dataset with a positive weight."""
        return [(t.shards("train"), w) for t, w in zip(self.train_sets, self.weights) if w > 0]


def parse_batch(serialized, height: int, width: int, max_label_len: int):
    """Parses a batch of serialized Examples into (images [B,H,W,1] uint8, labels [B,max_label_len] int32)."""
    spec = {
        records.IMAGE_RAW: tf.io.FixedLenFeature([], tf.string),
        records.LABEL_IDS: tf.io.VarLenFeature(tf.int64),
    }
    parsed = tf.io.parse_example(serialized, spec)
    images = tf.io.decode_raw(parsed[records.IMAGE_RAW], tf.uint8)
    images = tf.reshape(images, [-1, height, width, 1])
    labels = tf.sparse.to_dense(parsed[records.LABEL_IDS], default_value=0)
    labels = tf.cast(labels[:, :max_label_len], tf.int32)
    pad = max_label_len - tf.shape(labels)[1]
    labels = tf.pad(labels, [[0, 0], [0, pad]])
    labels = tf.ensure_shape(labels, [None, max_label_len])
    return images, labels


def parse_line(serialized, spec: PreprocessSpec, max_label_len: int, canvases):
    """One serialized Example of a dynamic-width dataset -> (image uint8 [H, canvas, 1] padded to its
    `canvas_width`, labels int32 [max_label_len], time steps of its own width); `canvases` is
    `preprocess_tf.canvas_table(spec)`."""
    from ocr_core.preprocess_tf import pad_to_canvas_tf

    parsed = tf.io.parse_single_example(serialized, {
        records.IMAGE_RAW: tf.io.FixedLenFeature([], tf.string),
        records.IMAGE_WIDTH: tf.io.FixedLenFeature([], tf.int64),
        records.LABEL_IDS: tf.io.VarLenFeature(tf.int64),
    })
    width = tf.cast(parsed[records.IMAGE_WIDTH], tf.int32)
    image = tf.reshape(tf.io.decode_raw(parsed[records.IMAGE_RAW], tf.uint8), [spec.height, width])
    image = pad_to_canvas_tf(image, spec, canvases)[..., None]
    labels = tf.cast(tf.sparse.to_dense(parsed[records.LABEL_IDS])[:max_label_len], tf.int32)
    labels = tf.pad(labels, [[0, max_label_len - tf.shape(labels)[0]]])
    return image, tf.ensure_shape(labels, [max_label_len]), width // spec.stride - 1


def fits_its_width(labels, steps):
    """Whether CTC can emit `labels` (int [L], 0-padded) in `steps` time steps (characters + repeats)."""
    n = tf.reduce_sum(tf.cast(labels > 0, tf.int32))
    repeats = tf.reduce_sum(tf.cast(tf.logical_and(labels[1:] == labels[:-1], labels[1:] > 0), tf.int32))
    return n + repeats <= steps


def bucket_by_width(ds, batch_size: int, drop_remainder: bool):
    """(image, labels, steps[, target]) elements -> batches of one canvas width each (tf.data's
    group_by_window)."""
    return ds.group_by_window(
        key_func=lambda image, *_: tf.cast(tf.shape(image)[1], tf.int64),
        reduce_func=lambda _, window: window.batch(batch_size, drop_remainder=drop_remainder),
        window_size=batch_size)


def make_dataset(files: list[str], batch_size: int, *, height: int = 32, width: int = 128,
                 max_label_len: int = 31, training: bool = False, shuffle_buffer: int = 4096,
                 augment: bool = False, deterministic: bool = False, seed: int | None = None,
                 input_context: tf.distribute.InputContext | None = None, drop_remainder: bool | None = None,
                 pad_forever: bool = False, groups: list[tuple[list[str], float]] | None = None,
                 geometry: bool = False, camera: bool = False, weather: bool = False,
                 spec: PreprocessSpec | None = None, teacher=None):
    """Builds the tf.data pipeline over TFRecord shard files.

    Args:
        files: shard paths (local or gs://).
        groups: (training) instead of `files`, several sets of shards with sampling weights: records are
            drawn from each set's own shuffled, repeated stream in proportion to its weight.
        geometry: (with augment) also `geometry_batch`.
        camera: (with augment) also `camera_batch`.
        weather: (with augment) also `weather_batch`.
        batch_size: batch size of this input pipeline (per-replica batch times replicas it feeds).
        training: shuffle files and records, repeat forever, drop the last partial batch.
        augment: photometric augmentation (only meaningful with training=True).
        deterministic: fixed order (tests, evaluation); otherwise parallel and order-free.
        seed: shuffle/augmentation seed.
        input_context: from `distribute_datasets_from_function`; shards by file when there are enough
            files for every input pipeline, else by record, so each worker reads a distinct part.
        pad_forever: (evaluation) fill the last partial batch with padding rows, then yield padding
            batches without end, so every replica of every worker can take the same number of full,
            same-shape batches; padding rows have all-zero labels (real labels are never empty), and
            callers count only rows with a label. Without it a replica whose data ran out gets an empty
            batch, which Keras' LSTM cannot trace.
        spec: the dataset's preprocessing; a dynamic-width one gives (images, labels, logit_length) batches
            bucketed by canvas width (`height`/`width` unused), leaving out records whose label needs more
            time steps than their image has.
        teacher: (training) an `ocr_core.distill.TargetTable`: every batch gets one more element, the
            teacher's target of each record (float32 [B, C]; all zeros: none).

    Returns:
        A `tf.data.Dataset` of (images, labels), or (images, labels, logit_length) for a dynamic spec, then
        the targets when `teacher` is given.
    """
    opts = tf.data.Options()
    opts.deterministic = deterministic
    opts.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    groups = groups or [(files, 1.0)]
    streams = [_records(g, training, shuffle_buffer, deterministic, seed, input_context) for g, _ in groups]
    if len(streams) == 1:
        ds = streams[0]
    else:
        total = sum(w for _, w in groups)
        ds = tf.data.Dataset.sample_from_datasets(streams, [w / total for _, w in groups], seed=seed,
                                                  stop_on_empty_dataset=False)
    drop = training if drop_remainder is None else drop_remainder
    dynamic = spec is not None and spec.dynamic_width
    if dynamic:
        from ocr_core.preprocess_tf import canvas_table

        canvases = canvas_table(spec)
        ds = ds.map(_with_targets(lambda s: parse_line(s, spec, max_label_len, canvases), teacher),
                    num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)
        ds = bucket_by_width(ds.filter(lambda image, labels, steps, *_: fits_its_width(labels, steps)),
                             batch_size, drop)
    else:
        ds = ds.batch(batch_size, drop_remainder=drop, num_parallel_calls=tf.data.AUTOTUNE,
                      deterministic=deterministic)
        ds = ds.map(_with_targets(lambda s: parse_batch(s, height, width, max_label_len), teacher),
                    num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)
    if training and augment:
        base = tf.constant(seed or 0, tf.int64)
        def augment(i, xy):
            images, labels, *steps = xy
            if camera:
                images = camera_batch(images, tf.stack([base + 104729, i]))
            if weather:
                images = weather_batch(images, tf.stack([base + 15485863, i]))
            images, labels = augment_batch(images, labels, tf.stack([base, i]))
            if geometry:
                images = geometry_batch(images, tf.stack([base + 7919, i]))
            return (images, labels, *steps)

        ds = ds.enumerate().map(augment, num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)
    if pad_forever and dynamic:
        ds = _pad_forever_lines(ds, batch_size, spec, max_label_len)
    elif pad_forever:
        def pad_rows(images, labels):
            extra = batch_size - tf.shape(images)[0]
            images = tf.pad(images, [[0, extra], [0, 0], [0, 0], [0, 0]])
            labels = tf.pad(labels, [[0, extra], [0, 0]])
            return (tf.ensure_shape(images, [batch_size, height, width, 1]),
                    tf.ensure_shape(labels, [batch_size, max_label_len]))

        padding = tf.data.Dataset.from_tensors((tf.zeros([batch_size, height, width, 1], tf.uint8),
                                                tf.zeros([batch_size, max_label_len], tf.int32)))
        ds = ds.map(pad_rows).concatenate(padding.repeat())
    return ds.with_options(opts).prefetch(tf.data.AUTOTUNE)


def _with_targets(parse, teacher):
    """`parse` (serialized -> a tuple), or, with a teacher, the same tuple and the teacher's targets."""
    if teacher is None:
        return parse
    return lambda serialized: (*parse(serialized), teacher.of_serialized(serialized))


def _pad_forever_lines(ds, batch_size: int, spec: PreprocessSpec, max_label_len: int):
    """`pad_forever` for (images, labels, logit_length) batches of any canvas width."""
    def pad_rows(images, labels, steps):
        extra = batch_size - tf.shape(images)[0]
        return (tf.ensure_shape(tf.pad(images, [[0, extra], [0, 0], [0, 0], [0, 0]]),
                                [batch_size, spec.height, None, 1]),
                tf.ensure_shape(tf.pad(labels, [[0, extra], [0, 0]]), [batch_size, max_label_len]),
                tf.ensure_shape(tf.pad(steps, [[0, extra]], constant_values=tf.reduce_max(steps)),
                                [batch_size]))

    w = spec.min_width
    padding = tf.data.Dataset.from_tensors((tf.zeros([batch_size, spec.height, w, 1], tf.uint8),
                                            tf.zeros([batch_size, max_label_len], tf.int32),
                                            tf.fill([batch_size], w // spec.stride - 1)))
    return ds.map(pad_rows).concatenate(padding.repeat())


def _records(files, training, shuffle_buffer, deterministic, seed, input_context):
    """Serialized records of `files`: sharded for this input pipeline; shuffled and repeated in training."""
    if not files:
        raise DatasetError("no shard files to read")
    ds = tf.data.Dataset.from_tensor_slices(sorted(files))
    by_record = False
    if input_context is not None and input_context.num_input_pipelines > 1:
        n, i = input_context.num_input_pipelines, input_context.input_pipeline_id
        if len(files) >= n and training:
            ds = ds.shard(n, i)
        else:
            by_record = True
    if training:
        ds = ds.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    ds = ds.interleave(tf.data.TFRecordDataset, cycle_length=min(len(files), 8),
                       num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)
    if by_record:
        ds = ds.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
    if training:
        ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True).repeat()
    return ds
