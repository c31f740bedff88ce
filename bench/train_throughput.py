"""Training throughput of the `seed` and `small` CRNNs on this machine's CPU: how close `ocr train` gets to a
bare train step, whether tf.data keeps up, and how much cheaper `small` is per image than `seed`.

Per config, one process, one batch size (64 unless --batch-size; 16 with --quick):
  (a) bare step   a `tf.function` step (build_crnn, Adam, ctc_loss) on one in-memory batch;
  (b) ocr train   `ocr_core.training.train` on a built dataset, epochs of a fixed step count, images/s from
                  its history (epoch 1, which traces, excluded);
  (c) tf.data     `ocr_core.data.make_dataset(training=True)` (with the config's augmentation) iterated
                  without a model;
  (d) forward     inference-mode forward pass (`model(x, training=False)`) on the in-memory batch.
Windows of (a), (c) and (d) alternate between the two configs, and every timed epoch of (b) is followed by an
(a) window of the same length (run from the training loop's log callback), so load changes on a shared machine
hit both sides of every ratio: b/a is the median of these per-epoch pairs. Every number is the median over
timed windows after warm-up steps; CPU milliseconds per image (this process) are reported next to images/s
because they move less with other people's load.

    python bench/train_throughput.py            # batch 64, ~13 min on 2 busy cores
    python bench/train_throughput.py --quick    # smoke run (batch 16, 1-2 step windows), ~3-4 min

Results: bench/results/train_throughput.json (a --quick run writes train_throughput-quick.json instead).
"""
from __future__ import annotations

import argparse
import copy
import gc
import math
import os
import shutil
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import fixtures  # noqa: E402  (also puts the repo on sys.path)

CONFIGS = ("seed", "small")
GOAL_TRAIN_OVER_BARE = 0.9
GOAL_TFDATA_OVER_BARE = 5.0
GOAL_SMALL_SPEEDUP = 3.0


def say(msg: str) -> None:
    print(msg, flush=True)


def calibrate(fn, target_seconds: float, min_steps: int, max_steps: int) -> int:
    """Steps of `fn` that take about target_seconds (fn already warm)."""
    t0 = time.perf_counter()
    fn()
    dt = time.perf_counter() - t0
    return int(min(max(math.ceil(target_seconds / max(dt, 1e-6)), min_steps), max_steps))


def window(fn, steps: int) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) of `steps` calls."""
    c0, t0 = time.process_time(), time.perf_counter()
    for _ in range(steps):
        fn()
    return time.perf_counter() - t0, time.process_time() - c0


class Contender:
    """One config's model, optimizer and compiled steps on one fixed in-memory batch."""

    def __init__(self, name: str, batch_size: int, dataset):
        import keras
        import tensorflow as tf

        from ocr_core.charset import Charset
        from ocr_core.config import load_config
        from ocr_core.ctc import ctc_loss
        from ocr_core.data import make_dataset
        from ocr_core.model import build_crnn

        self.name = name
        self.cfg = load_config(name)
        self.cfg.train.batch_size = batch_size
        m = self.cfg.model
        self.files = dataset.shards("train")
        # One real batch, so label lengths (and the CTC cost) are those of the data.
        first = make_dataset(self.files, batch_size, height=m.height, width=m.width,
                             max_label_len=m.time_steps, training=True, seed=0)
        self.images, self.labels = next(iter(first))
        del first
        self.model = build_crnn(m, Charset(self.cfg.charset).num_classes, name=f"crnn_{name}")
        self.params = int(self.model.count_params())
        optimizer = keras.optimizers.Adam(self.cfg.train.learning_rate)
        optimizer.build(self.model.trainable_variables)
        model = self.model

        @tf.function
        def train_step(images, labels):
            with tf.GradientTape() as tape:
                probs = model(images, training=True)
                loss = tf.nn.compute_average_loss(ctc_loss(labels, probs), global_batch_size=batch_size)
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
            return loss

        self._train_step = train_step
        self._forward = tf.function(lambda x: model(x, training=False))
        self._tfdata = None

    # The same per-step synchronisation as ocr_core.training (it reads the loss every step).
    def bare_step(self):
        float(self._train_step(self.images, self.labels))

    def forward(self):
        self._forward(self.images).numpy()

    def tfdata_batch(self):
        if self._tfdata is None:
            from ocr_core.data import make_dataset

            m, t = self.cfg.model, self.cfg.train
            ds = make_dataset(self.files, t.batch_size, height=m.height, width=m.width,
                              max_label_len=m.time_steps, training=True, augment=t.augment,
                              shuffle_buffer=t.shuffle_buffer, seed=0)
            self._tfdata = iter(ds)
        images, labels = next(self._tfdata)
        images.numpy()
        labels.numpy()


def real_training(c: Contender, dataset, steps: int, epochs: int, workdir: str) -> dict:
    """`ocr_core.training.train` as `ocr train` runs it (one-device strategy), epochs of `steps` steps, with a
    bare-step window of the same length after every epoch (run from the loop's log callback, while the loop
    waits), so each timed epoch has a bare-step window measured under the same load right after it."""
    from ocr_core.training import train
    from pipelines.train import make_strategy

    cfg = copy.deepcopy(c.cfg)
    cfg.train.epochs = epochs
    cfg.train.max_steps_per_epoch = steps
    cfg.train.max_val_batches = 1  # validation is outside the timed part anyway; keep it short
    cfg.train.early_stopping_patience = 0
    out = os.path.join(workdir, f"train-{c.name}")
    shutil.rmtree(out, ignore_errors=True)
    n = steps * cfg.train.batch_size
    paired, paired_cpu, epoch_cpu = [], [], []
    mark = [None]

    def log(line: str) -> None:
        say(f"    {line}")
        if not line.startswith("epoch "):
            return
        if mark[0] is not None:  # CPU since the last window: checkpoint save, the epoch's steps, validation
            epoch_cpu.append(1000 * (time.process_time() - mark[0]) / n)
        wall, cpu = window(c.bare_step, steps)
        paired.append(n / wall)
        paired_cpu.append(1000 * cpu / n)
        say(f"    bare step window: {n / wall:.1f} img/s")
        mark[0] = time.process_time()

    t0 = time.perf_counter()
    _, state = train(cfg, dataset, out, make_strategy("one_device"), seed=0, log=log)
    wall = time.perf_counter() - t0
    shutil.rmtree(out, ignore_errors=True)
    gc.collect()  # drop the loop's iterator (and its tf.data threads) before the next measurement
    timed = [r["images_per_second"] for r in state.history[1:]]
    pairs = [b / a for b, a in zip(timed, paired[1:])]
    return {"images_per_second": fixtures.median(timed), "epoch_images_per_second": timed,
            "first_epoch_images_per_second": state.history[0]["images_per_second"],
            "bare_step_windows_after_each_epoch": paired, "bare_step_cpu_ms_per_image": paired_cpu,
            "paired_ratios": pairs, "paired_ratio_median": fixtures.median(pairs),
            "cpu_ms_per_image_incl_validation_and_checkpoint": fixtures.median(epoch_cpu),
            "steps_per_epoch": steps, "epochs": epochs, "wall_seconds": wall,
            "shuffle_buffer": cfg.train.shuffle_buffer, "augment": cfg.train.augment,
            "learning_rate_schedule": cfg.train.lr_schedule}


def interleaved(contenders: list[Contender], fn_name: str, steps: dict, windows: int
                ) -> tuple[dict, dict]:
    """Alternating timed windows of `fn_name` over the contenders -> (name -> images/s per window,
    name -> CPU milliseconds per image per window)."""
    rates, cpu = {c.name: [] for c in contenders}, {c.name: [] for c in contenders}
    for _ in range(windows):
        for c in contenders:
            wall, cpu_s = window(getattr(c, fn_name), steps[c.name])
            n = steps[c.name] * c.cfg.train.batch_size
            rates[c.name].append(n / wall)
            cpu[c.name].append(1000 * cpu_s / n)
    return rates, cpu


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="smoke run: small dataset, short windows")
    p.add_argument("--batch-size", type=int,
                   help="batch size of every measurement (default 64; quick 16, to fit ~3 min)")
    p.add_argument("--images", type=int, help="generated images in the dataset (default 10000; quick 2000)")
    p.add_argument("--windows", type=int, help="timed windows per measurement (default 4; quick 2)")
    p.add_argument("--window-seconds", type=float, help="target length of one window (default 15; quick 2)")
    p.add_argument("--configs", default=",".join(CONFIGS), help="comma-separated config names")
    args = p.parse_args(argv)
    quick = args.quick
    n_images = args.images or (2000 if quick else 10000)
    windows = args.windows or (2 if quick else 4)
    target = args.window_seconds or (2.0 if quick else 15.0)
    warmup = 1 if quick else 2
    # (c) and (d) are far from their goals' margins: shorter windows keep a full run near 12 minutes
    short, short_windows = target / 2, max(2, windows - 1)
    min_steps = 1 if quick else 2
    batch = args.batch_size or (16 if quick else 64)
    names = [n.strip() for n in args.configs.split(",") if n.strip()]

    started = fixtures.machine()
    say(f"train_throughput: batch {batch}, {windows} windows of ~{target:.0f}s, load average "
        f"{started['loadavg']} on {started['cpus']} CPUs")
    images = fixtures.synth_images(n_images, seed=0, font_split="train", say=say)
    data_dir = fixtures.built_dataset(images, say=say)

    import tensorflow as tf

    from ocr_core.data import DatasetInfo

    dataset = DatasetInfo.load(str(data_dir))
    say(f"dataset {data_dir}: {dataset.count('train')} train / {dataset.count('val')} val records; "
        f"TF intra-op threads {tf.config.threading.get_intra_op_parallelism_threads() or 'default'}")

    contenders, trace, steps = [], {}, {"bare_step": {}, "tfdata_batch": {}, "forward": {}}
    for name in names:
        c = Contender(name, batch, dataset)
        t0 = time.perf_counter()
        c.bare_step()
        trace[name] = time.perf_counter() - t0
        for _ in range(warmup):
            c.bare_step()
        steps["bare_step"][name] = calibrate(c.bare_step, target, min_steps, 400)
        say(f"  {name}: {c.params:,} parameters, first step (trace) {trace[name]:.1f}s, "
            f"{steps['bare_step'][name]} steps per window")
        contenders.append(c)

    say("(a) bare train step, config windows alternating ...")
    bare, bare_cpu = interleaved(contenders, "bare_step", steps["bare_step"], max(1, windows // 2))
    bare_alternating = {k: list(v) for k, v in bare.items()}

    workdir = tempfile.mkdtemp(prefix="train-", dir=str(fixtures.CACHE))
    train_results = {}
    for c in contenders:
        say(f"(b) ocr train ({c.name}): {windows + 1} epochs of {steps['bare_step'][c.name]} steps, "
            "each followed by an (a) window ...")
        r = real_training(c, dataset, steps["bare_step"][c.name], windows + 1, workdir)
        train_results[c.name] = r
        bare[c.name].extend(r["bare_step_windows_after_each_epoch"])
        bare_cpu[c.name].extend(r["bare_step_cpu_ms_per_image"])
    shutil.rmtree(workdir, ignore_errors=True)

    say("(c) tf.data alone ...")
    for c in contenders:
        for _ in range(warmup * 4):  # fills the shuffle buffer and lets AUTOTUNE settle
            c.tfdata_batch()
        steps["tfdata_batch"][c.name] = calibrate(c.tfdata_batch, short, 10, 5000)
    tfdata, tfdata_cpu = interleaved(contenders, "tfdata_batch", steps["tfdata_batch"], short_windows)

    say("(d) forward only (inference mode) ...")
    for c in contenders:
        for _ in range(warmup):
            c.forward()
        steps["forward"][c.name] = calibrate(c.forward, short, min_steps, 2000)
    forward, forward_cpu = interleaved(contenders, "forward", steps["forward"], short_windows)

    results = {"benchmark": "train_throughput", "quick": quick, "batch_size": batch,
               "machine": started, "loadavg_end": fixtures.loadavg(),
               "dataset": {"path": str(data_dir), "train": dataset.count("train"),
                           "val": dataset.count("val"), "images": str(images)},
               "windows": windows, "window_target_seconds": target, "warmup_steps": warmup,
               "windows_tfdata_and_forward": short_windows, "window_target_seconds_tfdata_and_forward": short,
               "steps_per_window": steps, "configs": {}}
    rows = []
    for c in contenders:
        n = c.name
        a, b, cc, d = (fixtures.median(bare[n]), train_results[n]["images_per_second"],
                       fixtures.median(tfdata[n]), fixtures.median(forward[n]))
        results["configs"][n] = {
            "parameters": c.params, "trace_seconds": trace[n],
            "bare_step": {"images_per_second": a, "windows": bare[n],
                          "cpu_ms_per_image": fixtures.median(bare_cpu[n]),
                          "median_alternating_with_other_config": fixtures.median(bare_alternating[n]),
                          "median_between_train_epochs": fixtures.median(
                              train_results[n]["bare_step_windows_after_each_epoch"])},
            "train": train_results[n],
            "tf_data": {"images_per_second": cc, "windows": tfdata[n], "augment": c.cfg.train.augment,
                        "cpu_ms_per_image": fixtures.median(tfdata_cpu[n])},
            "forward": {"images_per_second": d, "windows": forward[n],
                        "cpu_ms_per_image": fixtures.median(forward_cpu[n])},
            # b/a: median over epochs of (epoch images/s) / (bare-step window right after it)
            "ratios": {"train_over_bare": train_results[n]["paired_ratio_median"],
                       "train_over_bare_of_medians": b / a, "tfdata_over_bare": cc / a},
            "goals": {"train_over_bare>=0.9": train_results[n]["paired_ratio_median"] >= GOAL_TRAIN_OVER_BARE,
                      "tfdata_over_bare>=5": cc / a >= GOAL_TFDATA_OVER_BARE},
        }
        rows.append([n, f"{c.params:,}", a, b, train_results[n]["paired_ratio_median"], cc, cc / a, d,
                     fixtures.median(bare_cpu[n]), fixtures.median(forward_cpu[n])])
    say("")
    say(f"images/s, batch {batch}, median of {windows}+ windows; b/a paired per epoch (load average "
        f"{started['loadavg']} at start, "
        f"{results['loadavg_end']} at end)")
    say(fixtures.table(["config", "params", "(a) bare step", "(b) ocr train", "b/a", "(c) tf.data", "c/a",
                        "(d) forward", "(a) CPU ms/img", "(d) CPU ms/img"], rows))
    if "seed" in results["configs"] and "small" in results["configs"]:
        s, m = results["configs"]["seed"], results["configs"]["small"]
        speedup = {"bare_step": m["bare_step"]["images_per_second"] / s["bare_step"]["images_per_second"],
                   "train": m["train"]["images_per_second"] / s["train"]["images_per_second"],
                   "forward": m["forward"]["images_per_second"] / s["forward"]["images_per_second"],
                   "bare_step_cpu_time": (s["bare_step"]["cpu_ms_per_image"]
                                          / m["bare_step"]["cpu_ms_per_image"]),
                   "forward_cpu_time": s["forward"]["cpu_ms_per_image"] / m["forward"]["cpu_ms_per_image"]}
        results["seed_over_small_time_per_image"] = speedup
        results["goals"] = {"small>=3x_faster_in_training": speedup["train"] >= GOAL_SMALL_SPEEDUP
                            and speedup["bare_step"] >= GOAL_SMALL_SPEEDUP}
        say("")
        say("time per image seed / small (how many times cheaper `small` is; by wall-clock images/s and by "
            "CPU time):")
        say(fixtures.table(["measure", "seed/small"], [[k, v] for k, v in speedup.items()]))
    say("")
    for n, r in results["configs"].items():
        t = r["train"]
        say(f"{n}: b/a {r['ratios']['train_over_bare']:.2f} (goal >= {GOAL_TRAIN_OVER_BARE}; per epoch "
            f"{', '.join(f'{x:.2f}' for x in t['paired_ratios'])}), "
            f"c/a {r['ratios']['tfdata_over_bare']:.0f} (goal >= {GOAL_TFDATA_OVER_BARE:.0f}); "
            f"CPU ms/img: (a) {r['bare_step']['cpu_ms_per_image']:.1f}, "
            f"(b) {t['cpu_ms_per_image_incl_validation_and_checkpoint']:.1f} incl. validation + checkpoint, "
            f"(c) {r['tf_data']['cpu_ms_per_image']:.2f}")
    path = fixtures.write_results("train_throughput", results)
    say(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
