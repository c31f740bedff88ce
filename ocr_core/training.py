"""One training loop for every tf.distribute strategy (one device, Mirrored, MultiWorkerMirrored).

Keras 3 `Model.fit` breaks under MultiWorkerMirroredStrategy (keras-team/keras#20585), so the loop is a
`tf.function` step run with `strategy.run` over `distribute_datasets_from_function`. It provides what the
Keras callbacks would: per-epoch validation metrics (CTC loss, word accuracy, CER) to console, CSV and
TensorBoard; best-by-val-loss weights; early stopping; a cosine learning-rate schedule; and
BackupAndRestore-style resume from a `tf.train.CheckpointManager` written every epoch.
"""
from __future__ import annotations

import csv
import io
import math
import time
from dataclasses import dataclass, field

import keras
import numpy as np
import tensorflow as tf

from ocr_core import fs
from ocr_core.charset import Charset
from ocr_core.config import OcrConfig
from ocr_core.ctc import ctc_loss, greedy_decode_tf
from ocr_core.data import DataMix, DatasetError, DatasetInfo, make_dataset
from ocr_core.distill import distill_loss
from ocr_core.model import build_crnn

BACKUP_DIR = "_backup"
BEST_WEIGHTS = "best.weights.h5"
HISTORY_CSV = "history.csv"


@dataclass
class TrainState:
    """What a run reports back (and what resume restores)."""

    start_epoch: int = 0
    epochs_run: int = 0
    best_epoch: int = -1
    best: dict = field(default_factory=dict)
    history: list = field(default_factory=list)
    stopped_early: bool = False
    images_per_second: float = 0.0


def is_chief(resolver_task: tuple[str | None, int]) -> bool:
    task_type, task_id = resolver_task
    return task_type in (None, "chief") or (task_type == "worker" and task_id == 0)


def current_task(strategy) -> tuple[str | None, int]:
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not getattr(resolver, "task_type", None):
        return None, 0
    return resolver.task_type, int(resolver.task_id or 0)


def check_compatible(cfg: OcrConfig, data: DatasetInfo | DataMix) -> None:
    """Clear errors for a config that cannot train on a dataset (or a mix of them)."""
    if cfg.charset != data.charset:
        raise DatasetError(f"charset of config {cfg.name!r} ({len(cfg.charset)} chars) differs from "
                           "the dataset's "
                           f"({len(data.charset)} chars) in {data.root}; rebuild the dataset with "
                           f"--charset matching the config or set `charset:` in the config")
    if data.image_shape != (cfg.model.height, cfg.model.width):
        raise DatasetError(f"dataset images are {data.image_shape} but config {cfg.name!r} expects "
                           f"{(cfg.model.height, cfg.model.width)}")
    spec, m = data.spec, cfg.model
    if (spec.dynamic_width, spec.dynamic_width and (spec.min_width, spec.stride)) != \
            (m.dynamic_width, m.dynamic_width and (m.min_width, m.stride)):
        want = f"dynamic width (min {m.min_width}, stride {m.stride})" if m.dynamic_width else "fixed width"
        have = f"dynamic width (min {spec.min_width}, stride {spec.stride})" if spec.dynamic_width else \
            "fixed width"
        raise DatasetError(f"dataset {data.root} has {have} images but config {cfg.name!r} expects {want}; "
                           "build the dataset with the config's contract (docs/lines.md)")
    for split in ("train", "val"):
        if data.count(split) == 0 or not data.shards(split):
            raise DatasetError(f"{data.root}: the {split!r} split is empty; rebuild with more data or a "
                               f"non-zero --val-fraction")
    data.verify_sample()


def set_weights_by_name(model: keras.Model, weights: dict[str, list]) -> None:
    """Sets every layer `weights` names; ValueError if one is missing from `model` or has other shapes."""
    layers = {layer.name: layer for layer in model.layers}
    for name, values in weights.items():
        layer = layers.get(name)
        shapes = [tuple(w.shape) for w in layer.weights] if layer is not None else None
        if shapes != [tuple(np.shape(v)) for v in values]:
            raise ValueError(f"initial weights of layer {name!r} do not fit the model "
                             f"({'no such layer' if layer is None else f'shapes {shapes}'})")
        layer.set_weights(values)


def _lowercase_table(charset: Charset) -> tf.Tensor:
    """id -> id of the lowercase character (itself when it has none), for case-insensitive accuracy."""
    table = [0]
    for c in charset.characters:
        low = c.lower()
        table.append(charset.encode(low)[0] if len(low) == 1 and not charset.unknown(low) else
                     charset.encode(c)[0])
    return tf.constant(table, tf.int32)


def validation_sums(probs, labels, lower_table, logit_length=None):
    """Sums over a batch: [n, loss, exact, exact_nocase, edit distance, label chars] (float32).

    Rows with an empty label are padding (see `make_dataset(pad_forever=True)`) and count for nothing.
    `logit_length`: each row's time steps (dynamic width), None: all.
    """
    labels = tf.cast(labels, tf.int32)
    real = tf.cast(tf.reduce_any(labels > 0, axis=1), tf.float32)
    # The CTC op refuses empty labels: padding rows get a one-character stand-in, then weigh nothing.
    stand_in = tf.one_hot(tf.zeros_like(labels[:, 0]), tf.shape(labels)[1], dtype=tf.int32)
    loss_labels = tf.where(real[:, None] > 0, labels, stand_in)
    loss = tf.reduce_sum(ctc_loss(loss_labels, probs, logit_length) * real)
    hyp, _ = greedy_decode_tf(probs, logit_length)
    truth = tf.ragged.boolean_mask(labels, labels > 0)
    dist = tf.edit_distance(hyp.to_sparse(), truth.to_sparse(), normalize=False)
    hyp_l = tf.ragged.map_flat_values(lambda v: tf.gather(lower_table, v), hyp)
    truth_l = tf.ragged.map_flat_values(lambda v: tf.gather(lower_table, v), truth)
    dist_l = tf.edit_distance(hyp_l.to_sparse(), truth_l.to_sparse(), normalize=False)
    chars = tf.cast(tf.reduce_sum(truth.row_lengths()), tf.float32)
    return tf.stack([tf.reduce_sum(real), loss, tf.reduce_sum(tf.cast(dist == 0, tf.float32) * real),
                     tf.reduce_sum(tf.cast(dist_l == 0, tf.float32) * real), tf.reduce_sum(dist * real),
                     chars])


def _lr_schedule(cfg: OcrConfig, steps_per_epoch: int):
    t = cfg.train
    if t.lr_schedule == "constant":
        return t.learning_rate
    if t.lr_schedule != "cosine":
        raise ValueError(f"unknown lr_schedule {t.lr_schedule!r} (cosine | constant)")
    total = max(1, steps_per_epoch * t.epochs)
    warmup = int(steps_per_epoch * t.warmup_epochs)
    if warmup:
        return keras.optimizers.schedules.CosineDecay(t.learning_rate * 0.1, total - warmup, alpha=0.02,
                                                      warmup_target=t.learning_rate, warmup_steps=warmup)
    return keras.optimizers.schedules.CosineDecay(t.learning_rate, total, alpha=0.02)


def _make_optimizer(cfg: OcrConfig, steps_per_epoch: int):
    lr = _lr_schedule(cfg, steps_per_epoch)
    name = cfg.train.optimizer.lower()
    if name == "adam":
        return keras.optimizers.Adam(lr, clipnorm=None)
    if name == "rmsprop":
        return keras.optimizers.RMSprop(lr)
    raise ValueError(f"unknown optimizer {cfg.train.optimizer!r} (adam | rmsprop)")


def train(cfg: OcrConfig, data: DatasetInfo | DataMix, output: str, strategy: tf.distribute.Strategy,
          seed: int = 0, log=print, init_weights: dict[str, list] | None = None,
          progress_seconds: float = 10.0, teacher=None,
          distill_weight: float = 1.0) -> tuple[keras.Model, TrainState]:
    """Trains `cfg` on `data`, checkpointing into `output/_backup` every epoch and resuming from it.

    Args:
        cfg: model + recipe.
        data: the dataset (train and val splits used), or a `DataMix` of several.
        output: model directory, local or remote (gs://...); the chief writes history.csv, TensorBoard
            logs and best weights there.
        strategy: any tf.distribute strategy.
        seed: shuffling / augmentation / initialisation seed.
        log: line printer.
        init_weights: layer name -> weights to start from (fine-tuning a trained bundle) instead of a random
            init; layers it does not name keep their initialisation (new residual blocks); ignored when
            resuming from a checkpoint.
        progress_seconds: within an epoch, log a progress line (step, loss, images/s, ETA) at most this
            often (0: after every step); full lines, so logs of a non-TTY stdout stay readable.

    Returns:
        (a model outside the strategy holding the best weights, run state) — the chief exports it.
    """
    check_compatible(cfg, data)
    keras.utils.set_random_seed(seed)
    charset = Charset(cfg.charset)
    out = str(output)
    task = current_task(strategy)
    chief = is_chief(task)
    replicas = strategy.num_replicas_in_sync
    global_batch = cfg.train.batch_size
    if global_batch % replicas:
        raise ValueError(f"batch size {global_batch} is not divisible by {replicas} replicas")
    steps_per_epoch = max(1, data.count("train") // global_batch)
    if cfg.train.max_steps_per_epoch:
        steps_per_epoch = min(steps_per_epoch, cfg.train.max_steps_per_epoch)
    h, w = cfg.model.height, cfg.model.width
    t_steps = cfg.model.time_steps
    spec = data.spec
    train_files, val_files = data.shards("train"), data.shards("val")
    groups = data.train_groups() if isinstance(data, DataMix) else None

    def train_input(ctx):
        return make_dataset(train_files, ctx.get_per_replica_batch_size(global_batch), height=h, width=w,
                            max_label_len=t_steps, training=True, augment=cfg.train.augment,
                            shuffle_buffer=cfg.train.shuffle_buffer, seed=seed, input_context=ctx,
                            groups=groups, geometry=cfg.train.augment_geometry,
                            camera=cfg.train.augment_camera, weather=cfg.train.augment_weather, spec=spec,
                            teacher=teacher)

    # Validation runs a fixed number of full global batches on every worker (collectives need the same
    # count everywhere); the datasets pad the tail, and padding rows are not counted.
    val_steps = -(-data.count("val") // global_batch)
    if cfg.train.max_val_batches:
        val_steps = min(val_steps, cfg.train.max_val_batches)

    def val_input(ctx):
        return make_dataset(val_files, ctx.get_per_replica_batch_size(global_batch), height=h, width=w,
                            max_label_len=t_steps, deterministic=True, input_context=ctx,
                            drop_remainder=False, pad_forever=True, spec=spec)

    dist_train = strategy.distribute_datasets_from_function(train_input)
    dist_val = strategy.distribute_datasets_from_function(val_input)

    with strategy.scope():
        model = build_crnn(cfg.model, charset.num_classes, name=f"crnn_{cfg.name}")
        optimizer = _make_optimizer(cfg, steps_per_epoch)
        optimizer.build(model.trainable_variables)
        epoch_var = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
        best_var = tf.Variable(math.inf, dtype=tf.float64, trainable=False, name="best_val_loss")
        wait_var = tf.Variable(0, dtype=tf.int64, trainable=False, name="early_stop_wait")
    lower_table = _lowercase_table(charset)

    ckpt = tf.train.Checkpoint(model=model, optimizer=optimizer, epoch=epoch_var, best=best_var,
                               wait=wait_var)
    backup = fs.join(out, BACKUP_DIR)
    history_csv = fs.join(out, HISTORY_CSV)
    best_weights = fs.join(out, BEST_WEIGHTS)
    # Every worker saves (the save is collective); only the chief's copy is the real one.
    write_dir = backup if chief else fs.join(out, f"{BACKUP_DIR}_worker{task[1]}")
    manager = tf.train.CheckpointManager(ckpt, write_dir, max_to_keep=1)
    latest = tf.train.latest_checkpoint(backup)
    state = TrainState()
    if latest:
        ckpt.restore(latest).expect_partial()
        state.start_epoch = int(epoch_var.numpy())
        log(f"resumed from {latest}: epoch {state.start_epoch} of {cfg.train.epochs} already done")
        if chief and fs.exists(history_csv):
            # Rows past the checkpoint (a crash between logging and saving) are dropped and redone.
            rows = [{k: float(v) for k, v in row.items()}
                    for row in csv.DictReader(io.StringIO(fs.read_text(history_csv)))]
            state.history = [r for r in rows if r["epoch"] <= state.start_epoch]
            _write_csv(history_csv, state.history)
    elif init_weights is not None:
        set_weights_by_name(model, init_weights)

    @tf.function
    def train_step(iterator):
        def step(images, labels, *rest):  # rest: [logit_length (dynamic width)] [teacher targets]
            logit_length = rest[0] if spec.dynamic_width else None
            with tf.GradientTape() as tape:
                probs = model(images, training=True)
                per_example = ctc_loss(labels, probs, logit_length)
                if teacher is not None:
                    per_example += distill_weight * distill_loss(probs, rest[-1], logit_length)
                loss = tf.nn.compute_average_loss(per_example, global_batch_size=global_batch)
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
            return loss

        per_replica = strategy.run(step, args=tuple(next(iterator)))
        return strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)

    @tf.function(reduce_retracing=True)  # dynamic width: one trace for every batch width
    def val_step(images, labels, logit_length=None):
        sums = strategy.run(lambda x, y, n=None: validation_sums(model(x, training=False), y, lower_table, n),
                            args=(images, labels) if logit_length is None else (images, labels, logit_length))
        return strategy.reduce(tf.distribute.ReduceOp.SUM, sums, axis=None)

    tb = tf.summary.create_file_writer(fs.join(out, "logs")) if chief else tf.summary.create_noop_writer()
    iterator = iter(dist_train)
    patience = cfg.train.early_stopping_patience
    for epoch in range(state.start_epoch, cfg.train.epochs):
        t0 = time.perf_counter()
        loss_sum = 0.0
        shown = t0
        for step in range(1, steps_per_epoch + 1):
            loss_sum += float(train_step(iterator))
            now = time.perf_counter()
            if now - shown >= progress_seconds and step < steps_per_epoch:  # the epoch line ends the epoch
                shown = now
                log(f"  step {step}/{steps_per_epoch} (epoch {epoch + 1}/{cfg.train.epochs}): loss "
                    f"{loss_sum / step:.4f}, {step * global_batch / (now - t0):.0f} img/s, epoch ETA "
                    f"{_clock((now - t0) / step * (steps_per_epoch - step))}")
        train_time = time.perf_counter() - t0
        sums = np.zeros(6)
        val_iter = iter(dist_val)
        for _ in range(val_steps):
            sums += val_step(*next(val_iter)).numpy()
        n = max(sums[0], 1.0)
        lr = optimizer.learning_rate
        row = {"epoch": epoch + 1, "loss": loss_sum / steps_per_epoch, "val_loss": sums[1] / n,
               "val_word_accuracy": sums[2] / n, "val_word_accuracy_case_insensitive": sums[3] / n,
               "val_cer": sums[4] / max(sums[5], 1.0), "val_examples": int(sums[0]),
               "learning_rate": float(np.asarray(lr)),
               "images_per_second": steps_per_epoch * global_batch / train_time,
               "seconds": time.perf_counter() - t0}
        state.history.append(row)
        state.epochs_run += 1
        log("epoch {epoch}/{total}: loss {loss:.4f} val_loss {val_loss:.4f} val_acc {val_word_accuracy:.4f} "
            "val_acc_nocase {val_word_accuracy_case_insensitive:.4f} val_cer {val_cer:.4f} "
            "({images_per_second:.0f} img/s)".format(total=cfg.train.epochs, **row))
        improved = row["val_loss"] < float(best_var.numpy())
        if improved:
            best_var.assign(row["val_loss"])
            wait_var.assign(0)
        else:
            wait_var.assign_add(1)
        epoch_var.assign(epoch + 1)
        if chief:
            fs.makedirs(out)
            if improved:
                with fs.staged_write(best_weights) as local:
                    model.save_weights(local)
            _write_csv(history_csv, state.history)
            with tb.as_default():
                for k, v in row.items():
                    if k != "epoch":
                        tf.summary.scalar(k, v, step=epoch + 1)
            tb.flush()
        # Written after the best weights so a crash between the two never skips a better epoch.
        manager.save(checkpoint_number=epoch + 1)
        if patience and int(wait_var.numpy()) >= patience:
            log(f"early stopping: val_loss did not improve for {patience} epochs")
            state.stopped_early = True
            break
    if not chief:
        fs.remove(write_dir)
    state.images_per_second = float(np.median([r["images_per_second"] for r in state.history[-3:]])) \
        if state.history else 0.0

    best_model = build_crnn(cfg.model, charset.num_classes, name=f"crnn_{cfg.name}")
    if chief:
        if fs.exists(best_weights):
            with fs.local_copy(best_weights) as local:
                best_model.load_weights(local)
        else:
            best_model.set_weights(model.get_weights())
        hist = state.history
        if hist:
            best_i = int(np.argmin([r["val_loss"] for r in hist]))
            state.best_epoch, state.best = int(hist[best_i]["epoch"]), hist[best_i]
    return best_model, state


def _clock(seconds: float) -> str:
    """h:mm:ss or m:ss."""
    m, s = divmod(int(round(seconds)), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def _write_csv(path: str, rows: list[dict]) -> None:
    """Rewrites the whole history (appending is not possible on every filesystem, e.g. GCS objects)."""
    text = io.StringIO()
    if rows:
        writer = csv.DictWriter(text, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    fs.write_text(path, text.getvalue())


def finish(output: str) -> None:
    """After the bundle is written: drop the backup, so a rerun cannot resume a finished run."""
    fs.remove(fs.join(output, BACKUP_DIR))
    fs.remove(fs.join(output, BEST_WEIGHTS))
