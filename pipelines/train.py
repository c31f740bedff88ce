"""`ocr train`: a built dataset + a config -> a model bundle, on one device, several GPUs or several workers.

Multi-worker: start the same command on every host with TF_CONFIG set (see README); `--strategy auto` picks
MultiWorkerMirroredStrategy when TF_CONFIG names a cluster, MirroredStrategy when several GPUs are visible,
else the default one-device strategy. Killed runs resume from `OUTPUT/_backup` when started again.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from ocr_core.errors import UsageError


class TrainError(UsageError):
    """Training cannot start (bad options, data or output): one line, exit 2 (`pipelines/cli.py`)."""


RUN_STAMP = "run.json"


def parse_args(argv):
    p = argparse.ArgumentParser(prog="ocr train", description=__doc__)
    p.add_argument("--data", required=True, action="append",
                   help="dataset directory written by `ocr build-dataset` (local or gs://...); repeat it "
                        "to train on several (see --data-weights)")
    p.add_argument("--data-weights", metavar="W1,W2,...",
                   help="with several --data: sampling weight of each dataset's train split (default: "
                        "their sizes); e.g. 1,1 draws half of every batch from a small real set")
    p.add_argument("--val-data", action="append", metavar="DIR",
                   help="validate (and keep the best epoch) on the val split of these datasets instead of "
                        "the --data ones; repeatable")
    p.add_argument("--config",
                   help="configs/NAME.yaml name, a YAML path, or a bundle ('shipped' or a directory: the "
                        "config it was trained with); default: the --init-from bundle's config, else small")
    p.add_argument("--output", required=True,
                   help="model bundle directory to write: local, or on any filesystem TensorFlow reads "
                        "(gs://bucket/models/x)")
    p.add_argument("--epochs", type=int, help="override train.epochs")
    p.add_argument("--batch-size", type=int, help="override train.batch_size (global, across replicas)")
    p.add_argument("--learning-rate", type=float, help="override train.learning_rate")
    p.add_argument("--max-steps-per-epoch", type=int, help="override train.max_steps_per_epoch")
    p.add_argument("--strategy", default="auto", choices=["auto", "one_device", "mirrored", "multi_worker"])
    p.add_argument("--logical-devices", type=int, default=0,
                   help="split the CPU into N logical devices (to exercise MirroredStrategy without GPUs)")
    p.add_argument("--init-from", metavar="BUNDLE",
                   help="start from a trained bundle's weights instead of a random init (fine-tuning); "
                        "'shipped' is the pretrained model; architecture and charset must match --config "
                        "(the charset may add characters)")
    p.add_argument("--progress-seconds", type=float, default=10.0, metavar="S",
                   help="within an epoch, print a progress line at most every S seconds (0: every step)")
    p.add_argument("--teacher", choices=["pp-ocrv6"],
                   help="distil from a teacher recogniser beside CTC: PP-OCRv6 small (the rapidocr wheel) "
                        "reads every train record once (cached, see --teacher-cache) and each example's "
                        "loss adds --distill-weight x KL to the teacher's characters (ocr_core/distill.py)")
    p.add_argument("--distill-weight", type=float, default=1.0, metavar="W",
                   help="with --teacher: weight of the distillation term (default 1)")
    p.add_argument("--teacher-cache", metavar="DIR",
                   help="with --teacher: where the teacher's readings of each dataset are kept "
                        "(default ~/.cache/ocr/teacher)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--overwrite", action="store_true", help="replace a finished model in --output")
    p.add_argument("--no-saved-model", action="store_true", help="skip the SavedModel serving export")
    return p.parse_args(argv)


def make_strategy(name: str, logical_devices: int = 0):
    """The tf.distribute strategy for `--strategy`."""
    import tensorflow as tf

    if logical_devices > 1:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * logical_devices)
    cluster = json.loads(os.environ.get("TF_CONFIG", "{}")).get("cluster")
    if name == "auto":
        name = "multi_worker" if cluster else ("mirrored" if len(tf.config.list_physical_devices("GPU")) > 1
                                               else "one_device")
    if name == "multi_worker":
        if not cluster:
            raise TrainError("--strategy multi_worker needs TF_CONFIG with a cluster (see README)")
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "mirrored":
        devices = [d.name for d in tf.config.list_logical_devices("GPU")] or \
            [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices=devices)
    gpus = tf.config.list_logical_devices("GPU")
    return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else "/cpu:0")


def dataset_locations(data: list[str]) -> list[str]:
    """--data as stamped and compared on resume: local paths made absolute, remote ones as given."""
    from ocr_core import fs

    return [d if fs.is_remote(d) else os.path.abspath(d) for d in data]


def init_bundle(init_from: str) -> str:
    """The bundle directory an --init-from names ('shipped': the shipped model's)."""
    from ocr_core.config import SHIPPED, SHIPPED_MODEL

    return str(SHIPPED_MODEL) if init_from == SHIPPED else init_from


def training_config(config: str | None, init_from: str | None):
    """The config to train: --config; without it the --init-from bundle's own (a fine-tune keeps the
    architecture, charset and input contract it starts from), else `small`."""
    from ocr_core.bundle import read_bundle_meta
    from ocr_core.config import load_config

    if config or not init_from:
        return load_config(config or "small")
    return read_bundle_meta(init_bundle(init_from))[0]


def teacher_table(args, cfg, data):
    """The teacher's targets of every train record (`ocr_core.distill`), read from the cache or computed."""
    import numpy as np

    from ocr_core.charset import Charset
    from ocr_core.data import DataMix
    from ocr_core.distill import TargetTable, dataset_targets, default_cache_dir

    sets = [t for t, w in zip(data.train_sets, data.weights) if w > 0] if isinstance(data, DataMix) \
        else [data]
    cache = args.teacher_cache or default_cache_dir()
    ids, rows = [], []
    for d in sets:
        i, t = dataset_targets(d, args.teacher, Charset(cfg.charset), cache,
                               log=lambda s: print(s, flush=True))
        ids += i
        rows.append(t)
    table = np.concatenate(rows)
    kept = int((table.sum(axis=1) > 0).sum())
    print(f"ocr train: teacher {args.teacher}: targets for {kept} of {len(ids)} train records", flush=True)
    return TargetTable(ids, table)


def check_recipe(cfg, args) -> None:
    """ValueError naming the flag (or config field) of a training recipe value that cannot work."""
    for field in ("epochs", "batch_size", "learning_rate", "max_steps_per_epoch", "max_val_batches"):
        value = getattr(cfg.train, field)
        if value is not None and not value > 0:
            given = getattr(args, field, None) is not None
            where = "--" + field.replace("_", "-") if given else f"train.{field} of config {cfg.name!r}"
            raise ValueError(f"{where} must be > 0, got {value}")


def check_output(output: str, cfg, overwrite: bool, data: list[str]) -> None:
    """Refuses an output directory that already holds a finished model or another run's backup (of another
    config or on other --data)."""
    from ocr_core import fs
    from ocr_core.bundle import read_bundle_meta
    from ocr_core.training import BACKUP_DIR

    if fs.exists(fs.join(output, "model.keras")) and not overwrite:
        try:
            other = read_bundle_meta(output)[0].name
        except Exception:
            other = "unknown"
        raise TrainError(f"{output} already holds a model (config {other!r}); choose another "
                         "--output or pass --overwrite to replace it")
    stamp = fs.join(output, BACKUP_DIR, RUN_STAMP)
    if fs.exists(stamp):
        previous = json.loads(fs.read_text(stamp))
        # The architecture must match to resume; recipe overrides (say more --epochs) are fine.
        mine = json.loads(json.dumps(cfg.to_dict()))
        theirs = previous.get("config", {})
        problem = None
        if (theirs.get("model"), theirs.get("charset")) != (mine["model"], mine["charset"]):
            problem = f"of a different config ({theirs.get('name')!r})"
        elif dataset_locations(previous.get("data") or []) != dataset_locations(data):
            problem = f"on other --data ({', '.join(previous.get('data') or [])})"
        if problem:
            if not overwrite:
                raise TrainError(f"{output} holds an unfinished run {problem}; pass --overwrite "
                                 "to discard it, or choose another --output")
            fs.remove(fs.join(output, BACKUP_DIR))


def initial_weights(path: str, cfg) -> dict[str, list]:
    """Weights of a bundle to fine-tune from, by layer name; ValueError unless the bundle fits `cfg`.

    It fits when its charset is `cfg`'s and its architecture is `cfg`'s but for things that need no new
    weights or keep the bundle's function: model.width and model.dynamic_width (no weight depends on them:
    convolutions, BiLSTMs and the per-step classifier only see more or fewer time steps); model.height with
    model.pools (a taller input, say 48 px with pool 6 at 3 x 1 instead of 2 x 1: the convolutions' kernels
    do not depend on the height, and the pools bring it to the same one row for the BiLSTMs; the filters then
    see letters 1.5 times as tall, so such a start needs training to adapt); and more
    model.residual_blocks (each new block starts as an identity, so the grown model first computes what the
    bundle computes). `cfg`'s charset may also add characters to the bundle's (a word model grown into a line
    model: the space, punctuation): each known character keeps its classifier column, and a new one starts
    with a zero kernel and a bias well below every known character's, so the grown model first reads what the
    bundle reads.
    """
    from ocr_core.bundle import load_bundle

    bundle = load_bundle(init_bundle(path))
    have, want = bundle.config.model.residual_blocks, cfg.model.residual_blocks
    grows = all(want.get(i, 0) >= n for i, n in have.items())
    m = cfg.model
    fits = dataclasses.replace(bundle.config.model, width=m.width, residual_blocks=want, height=m.height,
                               pools=m.pools, dynamic_width=m.dynamic_width, min_width=m.min_width) == m
    grown = bundle.charset.characters != cfg.charset
    if not (fits and grows) or (grown and not set(bundle.charset.characters) <= set(cfg.charset)):
        raise ValueError(f"--init-from {path}: its architecture/charset (config {bundle.config.name!r}) "
                         f"differ from config {cfg.name!r}; fine-tune with the bundle's own config "
                         f"(`--config {path}` keeps its architecture; model.width, model.height and "
                         f"model.pools may differ, model.residual_blocks may add blocks, the charset may add "
                         f"characters)")
    weights = {layer.name: layer.get_weights() for layer in bundle.model.layers if layer.weights}
    if grown:
        weights["probs"] = grown_classifier(*weights["probs"], bundle.charset.characters, cfg.charset)
    return weights


# A new mark starts as a copy of the known character a model reads it as, LOOKALIKE_MARGIN less likely: the
# stage-21 line model read the $ of prices as S, #02-81 as H281, @SETS as aSETS; copied, a mark only has to
# be told apart from its lookalike. (Neither this nor a quiet start taught the marks in 1,600 steps at 0.0001;
# stage 22 took 0.0003, twice their share and the teacher: docs/model.md.)
LOOKALIKES = {"$": "S", "%": "X", "#": "H", "@": "a", "+": "t"}
LOOKALIKE_MARGIN = 3.0  # logits: e^-3, a new mark starts 1/20 as likely as its lookalike


def grown_classifier(kernel, bias, have: str, want: str) -> list:
    """The softmax layer's [kernel, bias] for charset `want` from one trained on `have` (a subset of it):
    the blank (column 0) and every known character keep their columns; a new character with a known
    lookalike (LOOKALIKES) gets that one's column with a bias LOOKALIKE_MARGIN lower, any other a zero kernel
    and a bias 4 below the lowest known one: either way the grown model first reads what the bundle reads."""
    import numpy as np

    new_kernel = np.zeros((kernel.shape[0], len(want) + 1), kernel.dtype)
    new_bias = np.full(len(want) + 1, bias[1:].min() - 4.0, bias.dtype)
    cols = [0] + [want.index(c) + 1 for c in have]
    new_kernel[:, cols], new_bias[cols] = kernel, bias
    for c, like in LOOKALIKES.items():
        if c in want and c not in have and like in have:
            new_kernel[:, want.index(c) + 1] = kernel[:, have.index(like) + 1]
            new_bias[want.index(c) + 1] = bias[have.index(like) + 1] - LOOKALIKE_MARGIN
    return [new_kernel, new_bias]


def run(argv=None) -> int:
    args = parse_args(argv)
    from ocr_core import fs
    from ocr_core.bundle import ONNX_FILE, onnx_export_missing, save_bundle
    from ocr_core.data import DataMix, DatasetError, DatasetInfo
    from ocr_core.preprocess import PreprocessSpec
    from ocr_core.training import BACKUP_DIR, check_compatible, current_task, finish, is_chief, train

    try:
        cfg = training_config(args.config, args.init_from)
        for field, value in (("epochs", args.epochs), ("batch_size", args.batch_size),
                             ("learning_rate", args.learning_rate),
                             ("max_steps_per_epoch", args.max_steps_per_epoch)):
            if value is not None:
                setattr(cfg.train, field, value)
        check_recipe(cfg, args)
        weights = None
        if args.data_weights:
            try:
                weights = [float(w) for w in args.data_weights.split(",")]
            except ValueError:
                raise ValueError(f"--data-weights {args.data_weights!r}: comma-separated numbers") from None
        if len(args.data) == 1 and not weights and not args.val_data:
            data = DatasetInfo.load(args.data[0])
        else:
            data = DataMix.load(args.data, weights, args.val_data)
        check_compatible(cfg, data)  # before anything is written to --output
        init_weights = initial_weights(args.init_from, cfg) if args.init_from else None
        if args.teacher and not args.distill_weight > 0:
            raise ValueError(f"--distill-weight must be > 0, got {args.distill_weight}")
        teacher = teacher_table(args, cfg, data) if args.teacher else None
    except (FileNotFoundError, ValueError) as e:
        raise TrainError(str(e)) from None
    output = args.output
    strategy = make_strategy(args.strategy, args.logical_devices)
    chief = is_chief(current_task(strategy))
    if chief:
        check_output(output, cfg, args.overwrite, args.data)
        fs.makedirs(fs.join(output, BACKUP_DIR))
        stamp = {"config": cfg.to_dict(), "data": dataset_locations(args.data),
                 "data_weights": args.data_weights, "val_data": args.val_data}
        fs.write_text(fs.join(output, BACKUP_DIR, RUN_STAMP), json.dumps(stamp))
    print(f"ocr train: config {cfg.name!r}, {data.count('train')} train / {data.count('val')} val images, "
          f"strategy {type(strategy).__name__} with {strategy.num_replicas_in_sync} replica(s)", flush=True)
    try:
        model, state = train(cfg, data, output, strategy, seed=args.seed,
                             log=lambda s: print(s, flush=True), init_weights=init_weights,
                             progress_seconds=args.progress_seconds, teacher=teacher,
                             distill_weight=args.distill_weight)
    except DatasetError as e:
        raise TrainError(str(e)) from None
    if not chief:
        return 0
    metrics = {"config": cfg.name,
               "dataset": ",".join(dataset_locations(args.data)),
               "data_weights": data.weights if isinstance(data, DataMix) else None,
               "val_data": args.val_data, "init_from": args.init_from,
               "teacher": args.teacher and {"name": args.teacher, "distill_weight": args.distill_weight},
               "best_epoch": state.best_epoch,
               "best": state.best, "epochs_run": state.epochs_run + state.start_epoch,
               "stopped_early": state.stopped_early, "train_images_per_second": state.images_per_second,
               "counts": {s: data.count(s) for s in ("train", "val", "test")}, "history": state.history}
    missing = onnx_export_missing()
    spec = PreprocessSpec(*data.image_shape)  # the stored images' size: the serving input size
    if data.spec.dynamic_width:  # text lines: the dataset's whole contract (docs/lines.md)
        spec = data.spec
    onnx_failed = save_bundle(output, model, cfg, metrics, spec, saved_model=not args.no_saved_model,
                              onnx=not missing)
    if missing or onnx_failed:
        print(f"ocr train: note: the bundle has no {ONNX_FILE} ({missing or onnx_failed}); "
              "`ocr export BUNDLE` adds it later", flush=True)
    finish(output)
    best = state.best
    print(f"ocr train: wrote model bundle {output} (best epoch {state.best_epoch}: "
          f"val_loss {best.get('val_loss', float('nan')):.4f}, "
          f"val word accuracy {best.get('val_word_accuracy', 0):.4f}, "
          f"CER {best.get('val_cer', float('nan')):.4f})", flush=True)
    return 0
