"""Benchmark of `ocr build-dataset`: Beam (DirectRunner, multi_processing) vs a plain single-process loop.

Both do the same work per image: read -> preprocess_word_image -> WordRecord.encode -> write TFRecord.
Images come from `ocr_core.synth.generate` when it exists (else a small cv2 renderer) and are made once into
a cache directory. Each contender runs in its own process; wall time includes start-up, and peak RSS is
that of the whole process tree (the Beam workers included), polled with psutil.

    python bench/build_dataset.py                      # 20k images, RSS at 10k and 40k
    python bench/build_dataset.py --n 2000 --rss 1000,4000   # smoke run
"""
from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import psutil

LAST_CPU_SECONDS = 0.0

LOOP = r"""
import json, sys, time
from ocr_core.charset import Charset, ctc_min_steps
from ocr_core.errors import InputError
from ocr_core.preprocess import preprocess_word_image
from ocr_core.records import WordRecord, frame, record_id
from ocr_core.inputs import resolve_path

manifest, out = sys.argv[1], sys.argv[2]
charset, base = Charset(), manifest.rsplit("/", 1)[0]
written = rejected = 0
with open(manifest) as fh, open(out, "wb") as sink:
    for line in fh:
        path, label = line.rstrip("\n").split("\t")
        source = resolve_path(base, path)
        try:
            ids = charset.encode(label)
            assert 0 < ctc_min_steps(ids) <= 31
            with open(source, "rb") as img:
                image, cw = preprocess_word_image(img.read())
        except (InputError, ValueError, AssertionError):
            rejected += 1
            continue
        record = WordRecord(record_id(source, label), source, image, cw, label, ids)
        sink.write(frame(record.encode()))
        written += 1
print(json.dumps({"written": written, "rejected": rejected}))
"""


def _words() -> list[str]:
    try:
        words = [w.strip() for w in open("/usr/share/dict/words", encoding="utf-8")]
        words = [w for w in words if w.isascii() and w.isalnum() and 1 <= len(w) <= 14]
        if words:
            return words
    except OSError:
        pass
    rng = random.Random(0)
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    return ["".join(rng.choice(alphabet) for _ in range(rng.randint(2, 12))) for _ in range(5000)]


def _render_chunk(args):
    """Fallback renderer: cv2 Hershey fonts, random size/colour/noise, JPEG; returns manifest rows."""
    import cv2
    import numpy as np

    out_dir, start, count, words = args
    rng = np.random.default_rng(start)
    rows = []
    fonts = [cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX, cv2.FONT_HERSHEY_COMPLEX,
             cv2.FONT_HERSHEY_TRIPLEX]
    for i in range(start, start + count):
        word = words[int(rng.integers(len(words)))]
        height = int(rng.integers(32, 64))
        font, thick = fonts[i % len(fonts)], int(rng.integers(1, 3))
        scale = height / 40 * rng.uniform(0.8, 1.1)
        (w, h), _ = cv2.getTextSize(word, font, scale, thick)
        paper, ink = int(rng.integers(170, 256)), int(rng.integers(0, 90))
        img = np.full((height, w + 12), paper, np.uint8)
        cv2.putText(img, word, (6, (height + h) // 2), font, scale, ink, thick, cv2.LINE_AA)
        img = np.clip(img + rng.normal(0, 6, img.shape), 0, 255).astype(np.uint8)
        name = f"{i // 1000:03d}/{i}_{word}_{i}.jpg"
        os.makedirs(os.path.join(out_dir, os.path.dirname(name)), exist_ok=True)
        cv2.imwrite(os.path.join(out_dir, name), img, [cv2.IMWRITE_JPEG_QUALITY, 90])
        rows.append(f"{name}\t{word}")
    return rows


def make_images(cache: Path, n: int, workers: int) -> Path:
    """A labels.tsv of at least n synthetic images in the cache (made once)."""
    for made in sorted(cache.glob("images-*/labels.tsv"), key=lambda p: int(p.parent.name.split("-")[1])):
        if int(made.parent.name.split("-")[1]) >= n:
            return made  # a pool at least this big exists: reuse it
    pool = cache / f"images-{n}"
    labels = pool / "labels.tsv"
    shutil.rmtree(pool, ignore_errors=True)
    t = time.time()
    try:
        from ocr_core.synth import generate
    except ImportError:
        generate = None
    if generate is not None:
        generate(str(pool), n, seed=0, layout="tsv", workers=workers)
        tsv = pool / "labels.tsv"
        if not tsv.exists():
            raise SystemExit(f"ocr_core.synth.generate wrote no {tsv}")
    else:
        words, chunk = _words(), 1000
        tasks = [(str(pool), s, min(chunk, n - s), words) for s in range(0, n, chunk)]
        pool.mkdir(parents=True)
        with ProcessPoolExecutor(workers) as ex:
            rows = [r for part in ex.map(_render_chunk, tasks) for r in part]
        labels.write_text("\n".join(rows) + "\n")
    print(f"made {n} images in {pool} ({time.time() - t:.0f}s, "
          f"{'ocr_core.synth' if generate else 'cv2 fallback renderer'})", flush=True)
    return labels


def subset(labels: Path, n: int) -> Path:
    """The first n rows of a manifest, in the same directory (so relative paths still resolve)."""
    out = labels.with_name(f"labels-{n}.tsv")
    if not out.exists():
        lines = labels.read_text().splitlines()
        if len(lines) < n:
            raise SystemExit(f"{labels} has only {len(lines)} rows, need {n}")
        out.write_text("\n".join(lines[:n]) + "\n")
    return out


def timed(cmd: list[str], env: dict | None = None) -> tuple[float, int, str]:
    """Runs cmd; returns (wall seconds, peak RSS of its process tree in bytes, stdout).

    Also records the tree's CPU seconds (user + sys of all reaped descendants) in LAST_CPU_SECONDS: on a
    shared machine wall time depends on the neighbours, CPU time much less.
    """
    global LAST_CPU_SECONDS
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.time()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env={**os.environ, **(env or {})})
    peak, stop = 0, threading.Event()

    def poll():
        nonlocal peak
        root = psutil.Process(proc.pid)
        while not stop.is_set():
            try:
                procs = [root] + root.children(recursive=True)
                rss = 0
                for p in procs:
                    try:
                        rss += p.memory_info().rss
                    except psutil.Error:
                        pass
                peak = max(peak, rss)
            except psutil.Error:
                pass
            time.sleep(0.05)

    th = threading.Thread(target=poll, daemon=True)
    th.start()
    out, _ = proc.communicate()
    stop.set()
    th.join()
    wall = time.time() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    LAST_CPU_SECONDS = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}")
    return wall, peak, out


def run_beam(manifest: Path, out: Path, workers: int, shards: int) -> tuple[float, int]:
    shutil.rmtree(out, ignore_errors=True)
    secs, rss, _ = timed([sys.executable, "-m", "pipelines.cli", "build-dataset", "--input", str(manifest),
                          "--output", str(out), "--workers", str(workers), "--shards", str(shards)])
    m = json.loads((out / "manifest.json").read_text())
    return secs, rss, m["totals"]["written"]


def run_loop(manifest: Path, out: Path, blas_threads: str = "1") -> tuple[float, int]:
    """The baseline in its best configuration: one BLAS thread (OpenBLAS threads make it ~10x slower)."""
    out.mkdir(parents=True, exist_ok=True)
    secs, rss, stdout = timed([sys.executable, "-c", LOOP, str(manifest), str(out / "loop.tfrecord")],
                              env={"OPENBLAS_NUM_THREADS": blas_threads})
    return secs, rss, json.loads(stdout.strip().splitlines()[-1])["written"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=20000, help="images for the throughput comparison")
    parser.add_argument("--rss", default="10000,40000", help="sizes for the peak-RSS comparison ('' to skip)")
    parser.add_argument("--cache", default="/tmp/ocr_bench", help="where the synthetic images are kept")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--shards", type=int, default=8)
    parser.add_argument("--loop-default-threads", action="store_true",
                        help="also time the loop with one OpenBLAS thread per core (numpy's default)")
    args = parser.parse_args(argv)

    cache = Path(args.cache)
    rss_sizes = [int(x) for x in args.rss.split(",") if x]
    labels = make_images(cache, max([args.n, *rss_sizes]), args.workers)
    work = cache / "out"

    manifest = subset(labels, args.n)
    if args.loop_default_threads:
        s, _, n = run_loop(manifest, work / "loop", blas_threads=str(os.cpu_count()))
        print(f"loop with OpenBLAS threads = cores: {n / s:.1f} img/s ({s:.1f}s)", flush=True)
    loop_s, loop_rss, loop_n = run_loop(manifest, work / "loop")
    loop_cpu = LAST_CPU_SECONDS
    beam_s, beam_rss, beam_n = run_beam(manifest, work / "beam", args.workers, args.shards)
    beam_cpu = LAST_CPU_SECONDS
    results = {"n": args.n, "cores": os.cpu_count(), "workers": args.workers,
               "loop_images_per_s": round(loop_n / loop_s, 1), "beam_images_per_s": round(beam_n / beam_s, 1),
               "beam_over_loop": round(loop_s / beam_s * beam_n / max(loop_n, 1), 2),
               "loop_seconds": round(loop_s, 1), "beam_seconds": round(beam_s, 1), "written": beam_n,
               "loop_cpu_ms_per_image": round(loop_cpu / loop_n * 1000, 2),
               "beam_cpu_ms_per_image": round(beam_cpu / beam_n * 1000, 2),
               "load_average_1min": round(os.getloadavg()[0], 1)}
    print(f"{args.n} images, {os.cpu_count()} cores: loop {results['loop_images_per_s']} img/s "
          f"({loop_s:.1f}s), Beam DirectRunner x{args.workers} {results['beam_images_per_s']} img/s "
          f"({beam_s:.1f}s) -> Beam/loop {results['beam_over_loop']}; CPU per image: loop "
          f"{results['loop_cpu_ms_per_image']} ms, Beam {results['beam_cpu_ms_per_image']} ms "
          f"(load average {results['load_average_1min']})", flush=True)

    for n in rss_sizes:
        s, rss, _ = run_beam(subset(labels, n), work / f"beam-{n}", args.workers, args.shards)
        results[f"beam_peak_rss_mb_{n}"] = round(rss / 2**20)
        results[f"beam_seconds_{n}"] = round(s, 1)
        print(f"peak RSS (process tree) of the Beam build at {n} images: {rss / 2**20:.0f} MB ({s:.1f}s)",
              flush=True)
    print(json.dumps(results))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
