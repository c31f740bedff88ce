"""`ocr demo` (what `make demo` runs): synth -> build-dataset -> inspect -> train or shipped model -> predict
-> evaluate, on the embedded defaults, with no network. Each step is the real CLI in its own process
(TensorFlow and the TensorFlow-free build cannot share one), printed so it can be copied.
"""
from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

from ocr_core.bundle import SHIPPED_MODEL
from pipelines.flags import positive_int


def parse_args(argv):
    p = argparse.ArgumentParser(prog="ocr demo", description=__doc__)
    p.add_argument("--workdir", default="demo_out", help="where every output goes (default: demo_out)")
    p.add_argument("--count", type=positive_int, default=4000, help="training images to generate")
    p.add_argument("--test-count", type=positive_int, default=500,
                   help="test images, rendered with held-out fonts")
    p.add_argument("--train", action="store_true",
                   help="train configs/demo.yaml even when the shipped model exists")
    p.add_argument("--epochs", type=positive_int, default=6)
    p.add_argument("--workers", type=positive_int, default=2)
    return p.parse_args(argv)


def step(title: str, *args: str) -> float:
    cmd = [sys.executable, "-m", "pipelines.cli", *args]
    print(f"\n== {title}\n$ ocr {' '.join(shlex.quote(a) for a in args)}", flush=True)
    start = time.perf_counter()
    subprocess.run(cmd, check=True)
    return time.perf_counter() - start


def run(argv=None) -> int:
    args = parse_args(argv)
    w = Path(args.workdir).resolve()
    w.mkdir(parents=True, exist_ok=True)
    times = {}
    train_dir, test_dir, dataset = w / "synth_train", w / "synth_heldout_fonts", w / "dataset"
    times["synth"] = step("1. generate training images (train fonts)", "synth", "--out", str(train_dir),
                          "--count", str(args.count), "--seed", "0", "--fonts", "train",
                          "--workers", str(args.workers), "--overwrite")
    times["synth"] += step("2. generate test images (fonts held out from training)", "synth", "--out",
                           str(test_dir), "--count", str(args.test_count), "--seed", "1",
                           "--fonts", "heldout", "--version", "2", "--workers", str(args.workers),
                           "--overwrite")
    times["build"] = step("3. build the TFRecord dataset (Beam, DirectRunner)", "build-dataset", "--input",
                          str(train_dir / "labels.tsv"), "--output", str(dataset), "--val-fraction", "0.1",
                          "--workers", str(args.workers), "--overwrite")
    step("4. look inside it", "inspect", str(dataset), "-n", "2")
    if (SHIPPED_MODEL / "model.keras").exists() and not args.train:
        model = SHIPPED_MODEL
        print(f"\n== 5. using the shipped model {model} (pass --train to train configs/demo.yaml instead)")
    else:
        model = w / "model"
        times["train"] = step("5. train configs/demo.yaml", "train", "--data", str(dataset),
                              "--config", "demo", "--output", str(model), "--epochs", str(args.epochs),
                              "--overwrite")
    predictions, report = w / "predictions", w / "report"
    times["predict"] = step("6. batch recognition (Beam RunInference -> Parquet)", "predict", "--model",
                            str(model), "--input", str(test_dir / "labels.tsv"), "--output", str(predictions),
                            "--workers", str(args.workers))
    print("\n== 7. evaluate\n$ ocr evaluate --predictions", predictions, "--report", report, flush=True)
    proc = subprocess.run([sys.executable, "-m", "pipelines.cli", "evaluate", "--predictions",
                           str(predictions), "--report", str(report)],
                          check=True, capture_output=True, text=True)
    metrics = json.loads(proc.stdout)
    print(f"""
== results (test images rendered with fonts never seen in training)
  model                         {model}
  test images                   {metrics['rows']}  (errors: {metrics['errors']['count']})
  word accuracy (exact)         {metrics['word_accuracy']:.3f}
  word accuracy (alnum, nocase) {metrics['word_accuracy_alnum']:.3f}
  CER                           {metrics['cer']:.3f}
  seconds                       {', '.join(f'{k} {v:.0f}' for k, v in times.items())}
== outputs
  images + labels               {train_dir}, {test_dir}
  dataset (TFRecords)           {dataset}  (manifest.json, rejects-*.jsonl)
  model bundle                  {model}
  predictions (Parquet)         {predictions}
  report (HTML)                 {report / 'index.html'}""")
    return 0
