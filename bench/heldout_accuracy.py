"""Shipped model vs Tesseract 5 on word images rendered with fonts held out from training (issue 5 table).

One run, same images: `ocr predict` + `ocr evaluate` for the model, `tesseract IMG stdout --psm 8` (2 parallel
processes) for the peer, scored with the same scene-text protocol (ocr_core.metrics); plus forward-pass
images/s of the shipped model vs the seed architecture on the same batch.

    python bench/heldout_accuracy.py --images DIR_WITH_labels.tsv [--n 1000] [--model MODEL_DIR]
                                     [--baseline OTHER_MODEL_DIR]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ocr_core.metrics import summarize  # noqa: E402


def run_tesseract(paths: list[str], procs: int = 2) -> tuple[list[str], float]:
    def one(p):
        out = subprocess.run(["tesseract", p, "stdout", "--psm", "8"], capture_output=True, text=True)
        return out.stdout.strip()

    start = time.perf_counter()
    with ThreadPoolExecutor(procs) as pool:
        texts = list(pool.map(one, paths))
    return texts, len(paths) / (time.perf_counter() - start)


def scores(m: dict) -> dict:
    """The three accuracy figures of a `summarize` / `ocr evaluate` result that the table reports."""
    return {k: m[k] for k in ("word_accuracy_alnum", "cer", "word_accuracy")}


def tesserocr_row(paths: list[str], labels: list[str], tmp: Path) -> dict:
    """Tesseract's in-process API (loaded once per process, 2 processes: bench/peer_worker.py) on the same
    images; images/s after the model load. The CLI's images/s is mostly start-up."""
    import fixtures

    python, why = fixtures.peer_python("tesseract")
    if python is None:
        return {"skipped": why}
    result = fixtures.run_peer_worker("tesseract", python, {"all": paths}, tmp, 2)
    group = result["groups"]["all"]
    found = summarize(zip(labels, group["texts"]))
    return {**scores(found), "images_per_second": len(paths) / group["seconds"], "how": result["version"]}


def forward_speed(model_dir: str, batch: int = 64, rounds: int = 5) -> dict:
    code = f"""
import os, time, json; os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
import numpy as np, tensorflow as tf
from ocr_core.bundle import load_bundle
from ocr_core.config import load_config
from ocr_core.model import build_crnn
x = tf.constant(np.random.default_rng(0).integers(0, 255, ({batch}, 32, 128, 1), dtype=np.uint8))
out = {{}}
models = [("shipped", load_bundle({model_dir!r}).model), ("seed", build_crnn(load_config("seed").model, 63))]
for name, model in models:
    f = tf.function(lambda t: model(t, training=False)); f(x)
    times = []
    for _ in range({rounds}):
        t = time.perf_counter(); f(x).numpy(); times.append(time.perf_counter() - t)
    out[name] = {batch} / float(np.median(times))
print(json.dumps(out))
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def predict_and_score(model: str, decoder: str, tmp: Path, name: str, n: int) -> tuple[dict, float]:
    """`ocr predict` (2 workers) + `ocr evaluate` on tmp/labels.tsv, predictions in tmp/name:
    (metrics, end-to-end images/s)."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    out = tmp / name
    start = time.perf_counter()
    cmd = [sys.executable, "-m", "pipelines.cli", "predict", "--model", model, "--decoder", decoder,
           "--input", str(tmp / "labels.tsv"), "--output", str(out), "--workers", "2"]
    job = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    if job.returncode:
        sys.exit(f"ocr predict --model {model} failed ({job.returncode}):\n{job.stderr[-3000:]}")
    ips = n / (time.perf_counter() - start)
    ev = subprocess.run([sys.executable, "-m", "pipelines.cli", "evaluate", "--predictions", str(out)],
                        cwd=REPO, env=env, check=True, capture_output=True, text=True)
    return json.loads(ev.stdout), ips


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", required=True, help="directory with labels.tsv (ocr synth --fonts heldout)")
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--model", default=str(REPO / "ocr_core" / "assets" / "default_model"))
    ap.add_argument("--baseline", metavar="MODEL_DIR",
                    help="also score this bundle (greedy), e.g. the previously shipped model")
    ap.add_argument("--out", default=str(REPO / "bench" / "results" / "heldout_accuracy.json"))
    args = ap.parse_args(argv)
    root = Path(args.images)
    rows = [line.split("\t") for line in (root / "labels.tsv").read_text().splitlines()[: args.n]]
    paths, labels = [str(root / r[0]) for r in rows], [r[1] for r in rows]
    tmp = Path(tempfile.mkdtemp(prefix="heldout-"))
    (tmp / "labels.tsv").write_text("".join(f"{p}\t{lab}\n" for p, lab in zip(paths, labels)))
    runs = {dec: predict_and_score(args.model, dec, tmp, dec, len(paths)) for dec in ("greedy", "beam")}
    ours, ocr_ips = runs["greedy"]
    tess_texts, tess_ips = run_tesseract(paths)
    tess = summarize(zip(labels, tess_texts))
    api = tesserocr_row(paths, labels, tmp)
    speed = forward_speed(args.model)
    result = {
        "n": len(paths), "images": str(root), "model": args.model, "loadavg": os.getloadavg(),
        "ocr": {**scores(ours), "end_to_end_images_per_second": ocr_ips},
        "ocr_beam": {**scores(runs["beam"][0]), "end_to_end_images_per_second": runs["beam"][1]},
        "tesseract": {**scores(tess), "cli_images_per_second_2_procs": tess_ips},
        "tesserocr": api,
        "forward_images_per_second": speed,
    }
    if args.baseline:
        base, _ = predict_and_score(args.baseline, "greedy", tmp, "baseline", len(paths))
        result["baseline"] = {**scores(base), "model": args.baseline}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(f"{'':24}{'word acc (alnum)':>18}{'CER':>8}{'images/s':>12}")
    for name, m, ips in [("ocr predict (greedy)", ours, ocr_ips), ("ocr predict (beam)", *runs["beam"]),
                         ("tesseract 5 --psm 8", tess, tess_ips)]:
        print(f"{name:24}{m['word_accuracy_alnum']:>18.3f}{m['cer']:>8.3f}{ips:>12.1f}")
    if args.baseline:
        print(f"{'baseline (greedy)':24}{base['word_accuracy_alnum']:>18.3f}{base['cer']:>8.3f}")
    if "images_per_second" in api:
        print(f"{'tesserocr (in-process)':24}{api['word_accuracy_alnum']:>18.3f}{api['cer']:>8.3f}"
              f"{api['images_per_second']:>12.1f}")
    else:
        print(f"tesserocr row skipped: {api['skipped']}")
    print(f"forward pass, batch 64: shipped {speed['shipped']:.0f} img/s, seed {speed['seed']:.0f} img/s "
          f"(ratio {speed['shipped'] / speed['seed']:.2f}); load average {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
