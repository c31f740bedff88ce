"""`ocr demo` (what `make demo` runs): every stage of `ocr` on one small synthetic set, offline, in about two
minutes on 2 cores: synth -> build-dataset -> fine-tune the shipped model on the built train split -> predict
the built test split with the fine-tuned and the shipped model, and a few rendered text lines with the shipped
model -> evaluate them side by side. Each step is the real CLI in its own process (TensorFlow and the
TensorFlow-free build cannot share one), printed so it can be copied.
"""
from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

from pipelines.flags import positive_int


def parse_args(argv):
    p = argparse.ArgumentParser(prog="ocr demo", description=__doc__)
    p.add_argument("--workdir", default="demo_out", help="where every output goes (default: demo_out)")
    p.add_argument("--count", type=positive_int, default=2000,
                   help="synthetic word images to generate (default %(default)s); 70%% train, 10%% val, "
                        "20%% test")
    p.add_argument("--lines", type=positive_int, default=6,
                   help="synthetic text lines read by the shipped model (default %(default)s)")
    p.add_argument("--epochs", type=positive_int, default=2, help="fine-tuning epochs (default %(default)s)")
    p.add_argument("--steps", type=positive_int, default=12,
                   help="batches of 64 per fine-tuning epoch (default %(default)s)")
    p.add_argument("--workers", type=positive_int, default=2, help="processes per step (default %(default)s)")
    return p.parse_args(argv)


def ocr(*args: str, capture: bool = False) -> tuple[float, str]:
    """Runs `ocr ARGS` in its own process, echoing the command; returns (seconds, stdout if captured)."""
    print(f"$ ocr {' '.join(shlex.quote(a) for a in args)}", flush=True)
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pipelines.cli", *args], check=True, text=True,
                          stdout=subprocess.PIPE if capture else None)
    return time.perf_counter() - start, proc.stdout or ""


def say(title: str) -> None:
    print(f"\n== {title}", flush=True)


def made(seconds: float, what: str) -> None:
    print(f"-> {what}  ({seconds:.0f} s)", flush=True)


def evaluate_models(predictions: dict[str, Path], reports: Path) -> dict[str, dict]:
    """Scores the models' predictions tables against their `label` column in one side-by-side report:
    `ocr evaluate --predictions P1 --predictions P2 --report reports`. Returns {name: the metrics JSON}.

    Args:
        predictions: model name -> the `ocr predict` output directory of that model.
        reports: the report folder (index.html + metrics.json).
    """
    tables = [a for table in predictions.values() for a in ("--predictions", str(table))]
    seconds, out = ocr("evaluate", *tables, "--report", str(reports), capture=True)
    result = json.loads(out)
    runs = result["comparison"] if "comparison" in result else [result]
    metrics = dict(zip(predictions, runs))
    made(seconds, f"{reports / 'index.html'} and metrics.json: " + "; ".join(
        f"{name} word accuracy {m['word_accuracy']:.3f} on {m['n']} words" for name, m in metrics.items()))
    return metrics


def summary(metrics: dict[str, dict]) -> str:
    """A table of the metrics per model, one line each."""
    lines = [f"  {'model':<15} {'images':>6} {'exact':>7} {'alnum, nocase':>14} {'CER':>7}"]
    for name, m in metrics.items():
        lines.append(f"  {name:<15} {m['n']:>6} {m['word_accuracy']:>7.3f} {m['word_accuracy_alnum']:>14.3f} "
                     f"{m['cer']:>7.3f}")
    return "\n".join(lines)


def lines_read(table: Path, n: int = 3) -> str:
    """The first `n` lines of a predictions table, label beside text."""
    import pyarrow.parquet as pq

    rows = sorted(pq.read_table(str(table), columns=["source", "label", "text"]).to_pylist(),
                  key=lambda r: r["source"])[:n]
    return "\n".join(f"  label {r['label']!r}\n  read  {r['text']!r}" for r in rows)


def run(argv=None) -> int:
    args = parse_args(argv)
    w = Path(args.workdir).resolve()
    w.mkdir(parents=True, exist_ok=True)
    workers = ["--workers", str(args.workers)]
    synth, dataset, model = w / "synth", w / "dataset", w / "model"
    text_lines = w / "lines"
    predictions = {"fine-tuned": w / "predictions" / "fine-tuned", "shipped": w / "predictions" / "shipped",
                   "shipped, lines": w / "predictions" / "lines"}
    times = {}
    start = time.perf_counter()

    say(f"1/5 synth: {args.count} synthetic word images (offline: local fonts and dictionary)")
    times["synth"], _ = ocr("synth", "--out", str(synth), "--count", str(args.count), "--seed", "0",
                            "--fonts", "train", "--no-progress", "--overwrite", *workers)
    made(times["synth"], f"{synth / 'images'}/ and {synth / 'labels.tsv'}")
    seconds, _ = ocr("synth", "--lines", "--out", str(text_lines), "--count", str(args.lines), "--seed", "0",
                     "--fonts", "heldout", "--no-progress", "--overwrite", *workers)
    times["synth"] += seconds
    made(seconds, f"{args.lines} text lines in held-out fonts: {text_lines / 'labels.tsv'}")

    say("2/5 build-dataset: validated, split, sharded TFRecords (Apache Beam, DirectRunner), under the "
        "shipped model's input contract")
    times["build"], _ = ocr("build-dataset", "--input", str(synth / "labels.tsv"), "--output", str(dataset),
                            "--for-config", "shipped",
                            "--val-fraction", "0.1", "--test-fraction", "0.2", "--shards", "2",
                            "--overwrite", *workers)
    counts = json.loads((dataset / "manifest.json").read_text()).get("counts", {})
    made(times["build"], f"{dataset}: TFRecord shards ({', '.join(f'{k} {v}' for k, v in counts.items())} "
                         "records), manifest.json, rejects-*.jsonl")
    ocr("inspect", str(dataset), "-n", "1", "--split", "test")

    say(f"3/5 train: fine-tune the shipped model on the train split ({args.epochs} x {args.steps} batches)")
    times["train"], _ = ocr("train", "--data", str(dataset), "--config", "shipped", "--init-from", "shipped",
                            "--learning-rate", "0.0003", "--epochs", str(args.epochs),
                            "--max-steps-per-epoch", str(args.steps), "--progress-seconds", "15",
                            "--no-saved-model", "--overwrite", "--output", str(model))
    made(times["train"], f"model bundle {model} (model.keras, model.onnx, charset.json, history.csv)")

    say("4/5 predict: the test split with both models, the text lines with the shipped one "
        "(Beam RunInference -> Parquet)")
    times["predict"] = 0.0
    for name, table in predictions.items():
        # No --model: the shipped model (ocr_core/assets/default_model).
        chosen = ["--model", str(model)] if name == "fine-tuned" else []
        source = ["--input", str(text_lines / "labels.tsv")] if name == "shipped, lines" else \
            ["--input", str(dataset), "--split", "test"]
        seconds, _ = ocr("predict", *chosen, *source, "--output", str(table), *workers)
        times["predict"] += seconds
        made(seconds, f"{name}: {table}/part-*.parquet and _SUCCESS.json")

    say("5/5 evaluate: word accuracy, CER, one HTML report with the models side by side")
    t = time.perf_counter()
    metrics = evaluate_models(predictions, w / "reports")
    times["evaluate"] = time.perf_counter() - t

    print(f"""
== results on images never trained on (the built test split; text lines in held-out fonts)
{summary(metrics)}
== text lines (held-out fonts) read by the shipped model
{lines_read(predictions["shipped, lines"])}
  seconds: {', '.join(f'{k} {v:.0f}' for k, v in times.items())}; total {time.perf_counter() - start:.0f}
== outputs (all under {w})
  images + labels       {synth}, {text_lines}
  dataset (TFRecords)   {dataset}
  fine-tuned model      {model}
  predictions (Parquet) {', '.join(str(p) for p in predictions.values())}
  report (HTML)         {w / 'reports' / 'index.html'} (the models side by side)
On your own crops: README.md, "Your own crops in five commands".""")
    return 0
