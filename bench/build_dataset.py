"""Benchmark of `ocr build-dataset` at scale: Beam (DirectRunner, multi_processing, 2 workers) against plain
loops doing the same work per image, plus the build's memory at two sizes.

What one run measures (the goals of the "build at scale" issue):
  * throughput: Beam with --workers 2 vs a plain 2-process `multiprocessing.Pool` loop (bench/build_loop.py)
    on --n manifest lines; goal Beam/Pool >= 0.9 images/s at 200k;
  * CPU per image: Beam's vs a plain single-process loop's (the per-image baseline; the Pool's is shown too);
    goal Beam/loop <= 1.10;
  * flat memory: peak RSS of the Beam build's process tree at 10k and 40k images; goal 40k/10k <= 1.20;
  * start-up, separately: every contender also runs on --tiny lines (100); its wall time is (nearly) the
    fixed cost. With wall(N) = F + N*t, the "steady" numbers use t = (wall(N) - wall(tiny)) / (N - tiny):
    images/s with the fixed cost subtracted, F = the start-up seconds extrapolated to 0 images (same for CPU;
    not given where wall(N) < 2 wall(tiny), as for Beam in a smoke run: the noise of F would dominate);
  * manifest reading by byte range: the ranges `ocr build-dataset` cuts the manifest into (the build's own
    ocr_core.manifest_bytes.byte_ranges with parts = --workers) and the lines in each; the build reads each
    range in one worker and no worker reads the whole file (ocr_core.inputs.read_range). The Pool loop reads
    byte ranges the same way.

Every contender does per image: label check, read, preprocess_word_image, record id, WordRecord.encode,
TFRecord frame, write (Beam in addition: dedup by image, split/shard hashing, index and summary files).
Each runs in its own process tree with OPENBLAS_NUM_THREADS=1 (what `ocr` sets for its workers; OpenBLAS
threads make preprocessing ~7x slower); wall time includes start-up; CPU seconds are user + sys of the whole
tree (resource.getrusage(RUSAGE_CHILDREN) after the wait: the Beam SDK workers and the Pool processes are
reaped by their parents, so they are included; a psutil poll of the live tree is recorded as a cross-check);
peak RSS is the sum over the tree, polled every 50 ms.

Images: --pool distinct synthetic images (ocr_core.synth.generate, made once into --cache) are listed
ceil(n / pool) times: line i names copy i // pool of image i % pool, a hard link (a symlink where links
are impossible) at c<copy>/images/..., so the 200k lines are 200k distinct paths, hence 200k distinct record
ids (id = hash of path and label) that the build's dedup by image path does not merge; the run checks that
every contender wrote all n. The pool of distinct files is small enough (20k JPEGs, ~90 MB) to sit in the
page cache, as the 20k-file run before did: this measures CPU work, not the disk.

    python bench/build_dataset.py                                   # full: 200k lines from 20k images
    python bench/build_dataset.py --n 4000 --pool 1000 --rss 1000,4000   # smoke run, ~40 s (+ ~35 s to
                                                                          # generate 1000 images once)

Duration on 2 shared cores (estimated from the smoke run at load ~4: loop ~0.35 ms CPU per image, Beam
~4-6 s of start-up): generating the 20k-image pool once (cached, not timed) ~10-12 min (~35 s per 1000
images here); 200k hard links ~10 s; the measurements ~5-8 min (single loop ~1-1.5 min, Pool ~0.5-1 min,
Beam ~1-2 min unless its per-image cost is far above the loop's, RSS runs at 10k and 40k ~0.5 min, start-up
runs ~0.5 min). Run it on a quiet machine: the wall-time ratio is only as good as the neighbours allow.
Results: bench/results/build_dataset.json for --n >= 200000, build_dataset-quick.json for --n < 20000,
else build_dataset-n<N>.json (--name overrides), so a smoke run never replaces the real numbers.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy: here (generation) and every contender

import fixtures  # noqa: E402  (also puts the repo on sys.path)
import psutil  # noqa: E402

HERE = Path(__file__).resolve().parent


# --- images and manifests ------------------------------------------------------------------------


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
    """Fallback renderer (no ocr_core.synth): cv2 Hershey fonts, random size/colour/noise, JPEG."""
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
        name = f"images/{i // 1000:03d}/{i}_{word}_{i}.jpg"
        os.makedirs(os.path.join(out_dir, os.path.dirname(name)), exist_ok=True)
        cv2.imwrite(os.path.join(out_dir, name), img, [cv2.IMWRITE_JPEG_QUALITY, 90])
        rows.append(f"{name}\t{word}")
    return rows


def make_images(cache: Path, n: int, workers: int) -> Path:
    """labels.tsv of at least n distinct synthetic images in the cache (made once; a bigger set is reused)."""
    made = sorted(cache.glob("images-*/labels.tsv"), key=lambda p: int(p.parent.name.split("-")[1]))
    for labels in made:
        if int(labels.parent.name.split("-")[1]) >= n:
            return labels
    pool = cache / f"images-{n}"
    labels = pool / "labels.tsv"
    shutil.rmtree(pool, ignore_errors=True)
    t = time.time()
    try:
        from ocr_core.synth import generate
    except ImportError:
        generate = None
    print(f"generating {n} distinct images into {pool} (made once) ...", flush=True)
    if generate is not None:
        generate(str(pool), n, seed=0, layout="tsv", workers=workers, progress=False, overwrite=True)
        if not labels.exists():
            raise SystemExit(f"ocr_core.synth.generate wrote no {labels}")
    else:
        words, chunk = _words(), 1000
        tasks = [(str(pool), s, min(chunk, n - s), words) for s in range(0, n, chunk)]
        pool.mkdir(parents=True)
        with ProcessPoolExecutor(workers) as ex:
            rows = [r for part in ex.map(_render_chunk, tasks) for r in part]
        labels.write_text("\n".join(rows) + "\n")
    print(f"  made {n} images in {time.time() - t:.0f}s ({'ocr_core.synth' if generate else 'cv2 fallback'})",
          flush=True)
    return labels


def _link(target: Path, link: Path) -> str:
    if link.exists() or link.is_symlink():
        return "existing"
    link.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(target, link)
        return "hardlink"
    except OSError:
        os.symlink(target, link)
        return "symlink"


def make_manifest(labels: Path, pool: int, n: int) -> tuple[Path, dict]:
    """A manifest of n lines over the first `pool` images of `labels`: line i names copy i // pool of image
    i % pool, linked at <cache>/links-<pool>/c<copy>/<path>. The first m lines of the n-line manifest are
    the m-line manifest, so all sizes share the links."""
    rows = [line.split("\t", 1) for line in labels.read_text().splitlines() if line.strip()][:pool]
    if len(rows) < pool:
        raise SystemExit(f"{labels} has only {len(rows)} images, --pool {pool}")
    root = labels.parent.parent / f"links-{pool}"
    out = root / f"labels-{n}.tsv"
    kinds: dict[str, int] = {}
    lines = []
    for i in range(n):
        rel, label = rows[i % pool]
        path = f"c{i // pool:03d}/{rel}"
        kind = _link(labels.parent.resolve() / rel, root / path)
        kinds[kind] = kinds.get(kind, 0) + 1
        lines.append(f"{path}\t{label}")
    if not out.exists():
        tmp = out.with_suffix(".tmp")
        tmp.write_text("\n".join(lines) + "\n")
        tmp.rename(out)
    return out, {"lines": n, "distinct_images": min(n, pool), "copies": math.ceil(n / pool),
                 "bytes": out.stat().st_size, "links_made": kinds}


def manifest_ranges(manifest: Path, workers: int) -> list[dict]:
    """The byte ranges `ocr build-dataset` reads the manifest in (its own byte_ranges, parts = workers) and
    the lines in each (its own count_range)."""
    from ocr_core.inputs import InputSpec, count_range
    from ocr_core.manifest_bytes import byte_ranges

    spec = InputSpec(0, str(manifest), "tsv", str(manifest))
    return [{"start": r.start, "end": r.end, "lines": count_range(spec, r)}
            for r in byte_ranges(spec, max(1, workers))]


# --- measuring -------------------------------------------------------------------------------------


def timed(cmd: list[str]) -> dict:
    """Runs cmd (in the repo); wall seconds, CPU seconds of its process tree, peak RSS of the tree, stdout.

    cpu_s: user + sys of all reaped descendants (RUSAGE_CHILDREN after the wait; the Beam SDK workers and Pool
    processes are waited for by their parents, so they count). cpu_polled_s: the sum of the last CPU times a
    50 ms psutil poll saw per process, a cross-check that misses only each process's last < 50 ms.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=fixtures.REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak, seen, stop = 0, {}, threading.Event()

    def poll():
        nonlocal peak
        while not stop.is_set():
            procs = fixtures.process_tree(proc.pid)
            rss = 0
            for p in procs:
                try:
                    with p.oneshot():
                        rss += p.memory_info().rss
                        c = p.cpu_times()
                        seen[(p.pid, p.create_time())] = c.user + c.system
                except psutil.Error:
                    pass
            peak = max(peak, rss)
            time.sleep(0.05)

    th = threading.Thread(target=poll, daemon=True)
    th.start()
    out, err = proc.communicate()
    wall = time.perf_counter() - t
    stop.set()
    th.join()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{err[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": wall, "cpu_s": cpu, "cpu_polled_s": sum(seen.values()), "peak_rss_mb": peak / 2**20,
            "processes_seen": len(seen), "stdout": out}


def run_beam(manifest: Path, out: Path, workers: int, shards: int) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    r = timed(fixtures.ocr_command("build-dataset", "--input", manifest, "--output", out,
                                   "--workers", workers, "--shards", shards))
    totals = json.loads((out / "manifest.json").read_text())["totals"]
    r.update(written=totals["written"], rejected=totals["rejected"])
    shutil.rmtree(out, ignore_errors=True)
    return r


def run_loop(manifest: Path, out: Path, processes: int, parts: int = 0) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, str(HERE / "build_loop.py"), str(manifest), str(out),
           "--processes", str(processes)]
    r = timed(cmd + (["--parts", str(parts)] if parts else []))
    r.update(json.loads(r["stdout"].strip().splitlines()[-1]))
    shutil.rmtree(out, ignore_errors=True)
    return r


def summarise(big: dict, tiny: dict) -> dict:
    """A contender's numbers at N, with the fixed cost estimated from its tiny run. The steady numbers are
    None where the run at N took less than twice the tiny run (wall, or CPU): the per-image part is then
    smaller than the noise of the fixed cost (a smoke run's Beam)."""
    n, m = big["written"], tiny["written"]
    wall_ok, cpu_ok = big["wall_s"] >= 2 * tiny["wall_s"], big["cpu_s"] >= 2 * tiny["cpu_s"]
    per_image_s = (big["wall_s"] - tiny["wall_s"]) / max(n - m, 1)
    per_image_cpu = (big["cpu_s"] - tiny["cpu_s"]) / max(n - m, 1)
    return {"images": n, "rejected": big["rejected"], "wall_s": round(big["wall_s"], 2),
            "images_per_s": round(n / big["wall_s"], 1),
            "steady_images_per_s": round(1 / per_image_s, 1) if wall_ok else None,
            "startup_s": round(tiny["wall_s"] - m * per_image_s, 2) if wall_ok else None,
            "tiny_wall_s": round(tiny["wall_s"], 2),
            "cpu_s": round(big["cpu_s"], 2), "cpu_polled_s": round(big["cpu_polled_s"], 2),
            "cpu_ms_per_image": round(big["cpu_s"] / n * 1000, 3),
            "steady_cpu_ms_per_image": round(per_image_cpu * 1000, 3) if cpu_ok else None,
            "startup_cpu_s": round(tiny["cpu_s"] - m * per_image_cpu, 2) if cpu_ok else None,
            "tiny_cpu_s": round(tiny["cpu_s"], 2),
            "peak_rss_mb": round(big["peak_rss_mb"]), "processes_seen": big["processes_seen"],
            **{k: big[k] for k in ("processes", "ranges") if k in big}}


def ratio(a, b) -> float | None:
    return round(a / b, 3) if a and b else None


def verdict(value, goal: float, at_least: bool, applies: bool) -> str:
    if value is None:
        return "n/a"
    ok = value >= goal if at_least else value <= goal
    return ("PASS" if ok else "FAIL") + ("" if applies else " (smoke size)")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=200000, help="manifest lines for throughput and CPU")
    parser.add_argument("--pool", type=int, default=20000,
                        help="distinct image files the lines are spread over")
    parser.add_argument("--single-n", type=int, default=0,
                        help="lines for the single-process loop (default --n; -1 skips it)")
    parser.add_argument("--tiny", type=int, default=100, help="lines of the start-up (fixed cost) runs")
    parser.add_argument("--tiny-repeats", type=int, default=3, help="start-up runs per contender (median)")
    parser.add_argument("--rss", default="10000,40000", help="two sizes for the Beam peak-RSS comparison")
    parser.add_argument("--cache", default=str(fixtures.CACHE / "build_dataset"),
                        help="where the images, links and manifests are kept")
    parser.add_argument("--workers", type=int, default=2, help="Beam workers and Pool processes")
    parser.add_argument("--shards", type=int, default=8, help="Beam train shards")
    parser.add_argument("--pool-parts", type=int, default=0,
                        help="byte ranges of the Pool loop (default 4 per process)")
    parser.add_argument("--name", help="results file name (default by --n, see the docstring)")
    args = parser.parse_args(argv)
    rss_sizes = [int(x) for x in args.rss.split(",") if x]
    if len(rss_sizes) != 2:
        raise SystemExit("--rss takes two sizes")
    single_n = args.n if args.single_n == 0 else args.single_n
    t_start, load_start = time.time(), fixtures.loadavg()

    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    labels = make_images(cache, args.pool, args.workers)
    sizes = sorted({args.n, args.tiny, *rss_sizes, *([single_n] if single_n > 0 else [])})
    manifests, info = {}, {}
    for n in sizes:
        manifests[n], info[n] = make_manifest(labels, args.pool, n)
    ranges = manifest_ranges(manifests[args.n], args.workers)
    print(f"manifest {manifests[args.n]}: {args.n} lines over {info[args.n]['distinct_images']} images "
          f"({info[args.n]['bytes'] / 1e6:.1f} MB); ocr build-dataset reads it in {len(ranges)} byte ranges: "
          + ", ".join(f"[{r['start']}, {r['end']}) {r['lines']} lines" for r in ranges), flush=True)

    work = cache / "out"
    raw: dict[str, dict] = {}

    def run(key: str, fn, *fn_args):
        r = fn(*fn_args)
        raw[key] = r
        print(f"  {key:<12} {r['written']:>7} images {r['wall_s']:7.1f}s wall {r['cpu_s']:7.1f}s CPU "
              f"{r['peak_rss_mb']:6.0f} MB  load {fixtures.loadavg()[0]}", flush=True)
        return r

    # The first run after a checkout compiles this tree's .pyc files and pages in Beam: not a start-up cost.
    print("warm-up (not counted): one Beam and one Pool run on the tiny manifest", flush=True)
    run_beam(manifests[args.tiny], work / "beam", args.workers, args.shards)
    run_loop(manifests[args.tiny], work / "pool", args.workers, args.pool_parts)
    print(f"start-up runs ({args.tiny} lines, median of {args.tiny_repeats}):", flush=True)
    tiny = {"beam_tiny": (run_beam, work / "beam", args.workers, args.shards),
            "pool_tiny": (run_loop, work / "pool", args.workers, args.pool_parts),
            **({"loop_tiny": (run_loop, work / "loop", 1)} if single_n > 0 else {})}
    for rep in range(args.tiny_repeats):
        for key, (fn, out, *rest) in tiny.items():
            run(f"{key}{rep}", fn, manifests[args.tiny], out, *rest)
    for key in tiny:
        reps = [raw[f"{key}{rep}"] for rep in range(args.tiny_repeats)]
        raw[key] = {**reps[0], **{f: statistics.median(r[f] for r in reps)
                                  for f in ("wall_s", "cpu_s", "cpu_polled_s", "peak_rss_mb")}}
    print("throughput runs:", flush=True)
    if single_n > 0:
        run("loop", run_loop, manifests[single_n], work / "loop", 1)
    run("pool", run_loop, manifests[args.n], work / "pool", args.workers, args.pool_parts)
    run("beam", run_beam, manifests[args.n], work / "beam", args.workers, args.shards)
    print("peak RSS runs (Beam):", flush=True)
    for n in rss_sizes:
        run(f"beam_{n}", run_beam, manifests[n], work / "beam", args.workers, args.shards)
    shutil.rmtree(work, ignore_errors=True)

    for key, r in raw.items():
        expected = ({"loop": single_n, "pool": args.n, "beam": args.n}.get(key)
                    or (args.tiny if "_tiny" in key else int(key.split("_")[1])))
        if r["written"] != expected or r["rejected"]:
            raise SystemExit(f"{key}: wrote {r['written']} of {expected} ({r['rejected']} rejected)")

    contenders = {"beam": summarise(raw["beam"], raw["beam_tiny"]),
                  "pool": summarise(raw["pool"], raw["pool_tiny"])}
    if single_n > 0:
        contenders["loop"] = summarise(raw["loop"], raw["loop_tiny"])
    beam, pool, loop = contenders["beam"], contenders["pool"], contenders.get("loop", {})
    small, large = (raw[f"beam_{n}"] for n in rss_sizes)
    at_scale = args.n >= 200000
    rss_ratio = ratio(large["peak_rss_mb"], small["peak_rss_mb"])
    ratios = [
        ("Beam/Pool images/s", ratio(beam["images_per_s"], pool["images_per_s"]), 0.9, True, at_scale),
        ("Beam/Pool images/s, steady", ratio(beam["steady_images_per_s"], pool["steady_images_per_s"]),
         0.9, True, at_scale),
        ("Beam/loop CPU per image", ratio(beam["cpu_ms_per_image"], loop.get("cpu_ms_per_image")),
         1.10, False, at_scale),
        ("Beam/loop CPU per image, steady",
         ratio(beam["steady_cpu_ms_per_image"], loop.get("steady_cpu_ms_per_image")), 1.10, False, at_scale),
        ("Beam/Pool CPU per image", ratio(beam["cpu_ms_per_image"], pool["cpu_ms_per_image"]),
         1.10, False, at_scale),
        (f"Beam peak RSS {rss_sizes[1]}/{rss_sizes[0]}", rss_ratio, 1.20, False,
         rss_sizes[0] >= 10000 and rss_sizes[1] >= 4 * rss_sizes[0]),
    ]

    names = {"beam": f"Beam DirectRunner x{args.workers}", "pool": f"Pool loop x{args.workers}",
             "loop": "single-process loop"}
    print()
    print(fixtures.table(
        ["contender", "images", "wall s", "img/s", "steady img/s", "start-up s", f"{args.tiny}-line run s",
         "CPU s", "CPU ms/img", "steady CPU ms/img", "peak RSS MB"],
        [[names[k], c["images"], c["wall_s"], c["images_per_s"], c["steady_images_per_s"], c["startup_s"],
          c["tiny_wall_s"], c["cpu_s"], c["cpu_ms_per_image"], c["steady_cpu_ms_per_image"],
          c["peak_rss_mb"]]
         for k, c in contenders.items()]))
    print()
    print(fixtures.table(["ratio", "value", "goal", "verdict"],
                         [[name, value, ("≥ " if at_least else "≤ ") + str(goal),
                           verdict(value, goal, at_least, applies)]
                          for name, value, goal, at_least, applies in ratios]))
    print(f"\nBeam peak RSS: {small['peak_rss_mb']:.0f} MB at {rss_sizes[0]}, "
          f"{large['peak_rss_mb']:.0f} MB at {rss_sizes[1]}; manifest read in {len(ranges)} byte ranges of "
          f"{', '.join(str(r['lines']) for r in ranges)} lines", flush=True)

    results = {
        "benchmark": "build_dataset", "quick": args.n < 20000, "n": args.n, "pool": args.pool,
        "single_n": single_n, "tiny": args.tiny, "workers": args.workers, "shards": args.shards,
        "images": {"source": str(labels.parent), "manifest": info[args.n],
                   "how": "pool distinct images listed ceil(n/pool) times under distinct hard-linked paths"},
        "beam_manifest_ranges": ranges,
        "contenders": contenders,
        "ratios": {name: {"value": value, "goal": ("≥ " if at_least else "≤ ") + str(goal),
                          "verdict": verdict(value, goal, at_least, applies)}
                   for name, value, goal, at_least, applies in ratios},
        "beam_peak_rss_mb": {str(n): round(raw[f"beam_{n}"]["peak_rss_mb"]) for n in rss_sizes},
        "beam_rss_run_seconds": {str(n): round(raw[f"beam_{n}"]["wall_s"], 1) for n in rss_sizes},
        "runs": {k: {f: (round(v, 3) if isinstance(v, float) else v) for f, v in r.items() if f != "stdout"}
                 for k, r in raw.items()},
        "loadavg_start": load_start, "loadavg_end": fixtures.loadavg(),
        "measure_seconds": round(time.time() - t_start),
        "machine": fixtures.machine(),
    }
    name = args.name or ("build_dataset" if args.n >= 200000 else "build_dataset-quick" if args.n < 20000
                         else f"build_dataset-n{args.n}")
    path = fixtures.RESULTS / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {path} ({time.time() - t_start:.0f}s in all)")


if __name__ == "__main__":
    main()
