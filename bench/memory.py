"""Peak memory of `ocr predict` and `ocr build-dataset` against the number of inputs (issue 23: flat memory).

For each size N (default 2k, 40k, 200k) and each job, one run on the DirectRunner with default options (the
shipped model for predict) in its own process tree, polled every 0.1 s with psutil:
  * tree peak: the largest sum of RSS over the whole tree in one sample (what the machine must hold);
  * launcher peak: the RSS of the `ocr` process itself (on the DirectRunner it is also the runner: the
    FnApiRunner keeps every PCollection between fused stages there);
  * worker peak: the largest RSS of one SDK worker process (`sdk_worker_main`).
Ratios are against the smallest size, with the goals 40k <= 1.3x and 200k <= 1.5x of 2k.

Inputs: --distinct real-looking word images (ocr_core.synth, made once) hard-linked N times under
$OCR_BENCH_CACHE/memory/dir-N/ (1000 a folder), so every input is a distinct path (distinct record id,
nothing deduplicated) while the page cache holds only the distinct files. predict reads the folder
(`--input dir-N`), build-dataset a manifest of the same paths (`dir-N.tsv`). Each run checks its output:
predict one row per input, the build every line written.

    python bench/memory.py                                  # 2k, 40k, 200k for both jobs (~40 min on 2 cores)
    python bench/memory.py --sizes 2000,20000 --jobs predict          # a smoke run
    python bench/memory.py --sizes 20000 --jobs build --where         # where the launcher's bytes go

--where runs every process of the job under tracemalloc (bench/memtrace/sitecustomize.py; slow: use a
modest size): each leaves its top allocation sites at its own RSS peak, and the launcher also the
FnApiRunner's buffers between stages alive then (`ListBuffer`: encoded bytes; `GroupingBuffer`: decoded
values per key); printed at the end and kept in the results file.
Results: bench/results/memory.json (a run with a size >= 200k), else memory-quick.json; --name overrides.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import fixtures  # noqa: E402  (also puts the repo on sys.path)
import psutil  # noqa: E402

GOALS = {40000: 1.3, 200000: 1.5}  # peak at N / peak at 2k
WORKER_MARK = "sdk_worker_main"


# --- inputs ----------------------------------------------------------------------------------------------


def distinct_images(cache: Path, count: int) -> list[tuple[Path, str]]:
    """(image, label) of `count` synthetic word images, generated once into the cache."""
    pool = cache / f"images-{count}"
    labels = pool / "labels.tsv"
    if not labels.exists():
        from ocr_core.synth import generate

        shutil.rmtree(pool, ignore_errors=True)
        generate(str(pool), count, seed=23, layout="tsv", workers=1, progress=False, overwrite=True)
    rows = [line.split("\t", 1) for line in labels.read_text(encoding="utf-8").splitlines() if line]
    return [(pool / rel, label) for rel, label in rows[:count]]


def linked_inputs(cache: Path, images: list[tuple[Path, str]], n: int) -> tuple[Path, Path]:
    """dir-N/ with N hard links (input i: image i % len(images)) and dir-N.tsv listing them with labels."""
    folder, manifest = cache / f"dir-{n}", cache / f"dir-{n}.tsv"
    if manifest.exists():
        return folder, manifest
    shutil.rmtree(folder, ignore_errors=True)
    lines = []
    for i in range(n):
        image, label = images[i % len(images)]
        rel = f"{i // 1000:04d}/{i:07d}{image.suffix}"
        if i % 1000 == 0:
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        os.link(image, folder / rel)
        lines.append(f"{folder.name}/{rel}\t{label}")
    tmp = manifest.with_suffix(".tmp")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    tmp.rename(manifest)
    return folder, manifest


# --- measuring -------------------------------------------------------------------------------------------


def role(proc: psutil.Process, root: int) -> str:
    if proc.pid == root:
        return "launcher"
    try:
        cmd = " ".join(proc.cmdline())
    except psutil.Error:
        return "other"
    if WORKER_MARK in cmd:
        return "worker-shell" if cmd.startswith(("sh ", "/bin/sh ")) else "worker"
    return "other"


def measure(cmd: list[str], interval: float = 0.1, env: dict | None = None) -> dict:
    """Runs cmd; wall seconds, the tree's peak RSS sum, each role's peak, exit code and output tail."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=fixtures.REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})})
    peak = {"tree": 0, "launcher": 0, "worker": 0, "workers_sum": 0}
    at_peak: dict = {}
    per_pid: dict[int, tuple[str, int]] = {}
    stop = threading.Event()

    def poll():
        while not stop.is_set():
            procs = fixtures.process_tree(proc.pid)
            total, sample = 0, {"launcher": 0, "worker": 0, "workers_sum": 0}
            for p in procs:
                try:
                    rss = p.memory_info().rss
                except psutil.Error:
                    continue
                r = per_pid.get(p.pid, (role(p, proc.pid), 0))[0]
                per_pid[p.pid] = (r, max(rss, per_pid.get(p.pid, (r, 0))[1]))
                total += rss
                if r == "launcher":
                    sample["launcher"] = rss
                elif r == "worker":
                    sample["worker"] = max(sample["worker"], rss)
                    sample["workers_sum"] += rss
            if total > peak["tree"]:
                peak["tree"] = total
                at_peak.clear()
                at_peak.update(sample, t=round(time.perf_counter() - t0, 1))
            for k in ("launcher", "worker", "workers_sum"):
                peak[k] = max(peak[k], sample[k])
            time.sleep(interval)

    th = threading.Thread(target=poll, daemon=True)
    th.start()
    out, err = proc.communicate()
    wall = time.perf_counter() - t0
    stop.set()
    th.join()
    mb = lambda b: round(b / 2**20)  # noqa: E731
    return {"wall_s": round(wall, 1), "returncode": proc.returncode,
            "peak_tree_mb": mb(peak["tree"]), "peak_launcher_mb": mb(peak["launcher"]),
            "peak_worker_mb": mb(peak["worker"]), "peak_workers_sum_mb": mb(peak["workers_sum"]),
            "at_tree_peak_mb": {k: (mb(v) if k != "t" else v) for k, v in at_peak.items()},
            "processes": sorted({r for r, _ in per_pid.values()}),
            "process_peaks_mb": sorted((mb(v), r) for r, v in per_pid.values())[::-1][:6],
            "stdout_tail": out[-600:], "stderr_tail": err[-1500:]}


def job_command(job: str, folder: Path, manifest: Path, out: Path, extra: list[str]) -> list[str]:
    if job == "predict":
        return fixtures.ocr_command("predict", "--input", folder, "--output", out, *extra)
    return fixtures.ocr_command("build-dataset", "--input", manifest, "--output", out, *extra)


def check_output(job: str, out: Path, n: int) -> str:
    """'' when every input became a row (predict) or a record (build), else what is wrong."""
    if job == "predict":
        import pyarrow.parquet as pq

        success = json.loads((out / "_SUCCESS.json").read_text())
        rows = sum(pq.ParquetFile(p).metadata.num_rows for p in sorted(out.glob("part-*.parquet")))
        return "" if rows == n and success.get("rows") == n else f"{rows} rows, _SUCCESS {success} != {n}"
    totals = json.loads((out / "manifest.json").read_text())["totals"]
    return "" if totals["written"] == n else f"written {totals['written']} != {n} ({totals})"


# --- where the bytes go (--where) ----------------------------------------------------------------------


def run_where(cmd: list[str], trace_dir: Path) -> dict:
    """Runs cmd with bench/memtrace on PYTHONPATH: every process of the job (launcher and SDK workers) runs
    tracemalloc and leaves its top allocation sites at its own RSS peak in trace_dir (see its docstring)."""
    shutil.rmtree(trace_dir, ignore_errors=True)
    trace_dir.mkdir(parents=True)
    hook = Path(__file__).resolve().parent / "memtrace"
    env = {"OCR_MEMTRACE_DIR": str(trace_dir),
           "PYTHONPATH": os.pathsep.join([str(hook), str(fixtures.REPO), os.environ.get("PYTHONPATH", "")])}
    r = measure(cmd, env=env)
    r["where"] = [json.loads(p.read_text()) for p in sorted(trace_dir.glob("*.json"))]
    return r


def print_where(r: dict) -> None:
    for proc in r["where"]:
        role = "worker" if "sdk_worker_main" in proc["cmd"] else "launcher"
        print(f"  {role} {proc['pid']}: RSS {proc['rss_mb']} MB at {proc['t']}s, "
              f"traced {proc['traced_mb']} MB "
              f"(peak {proc['traced_peak_mb']}) {proc.get('buffers') or ''}")
        for s in proc["top"][:8]:
            print(f"    {s['mb']:>8.2f} MB {s['blocks']:>8} blocks  {s['site']}")


# --- main -------------------------------------------------------------------------------------------------


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="2000,40000,200000", help="numbers of inputs, smallest first")
    parser.add_argument("--jobs", default="predict,build", help="predict, build or both")
    parser.add_argument("--distinct", type=int, default=64, help="distinct images behind the links")
    parser.add_argument("--cache", default=str(fixtures.CACHE / "memory"))
    parser.add_argument("--where", action="store_true", help="trace the launcher (see the docstring)")
    parser.add_argument("--name", help="results file name (default memory / memory-quick)")
    args, extra = parser.parse_known_args(argv)
    extra = [a for a in extra if a != "--"]  # more job flags, e.g. --workers 1
    sizes = sorted(int(s) for s in args.sizes.split(","))
    jobs = [("build" if j.startswith("build") else j) for j in args.jobs.split(",")]
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    images = distinct_images(cache, args.distinct)
    results = {"benchmark": "memory", "sizes": sizes, "distinct_images": args.distinct, "extra_flags": extra,
               "runs": {}, "machine": fixtures.machine()}
    for job in jobs:
        for n in sizes:
            folder, manifest = linked_inputs(cache, images, n)
            out = cache / f"out-{job}"
            shutil.rmtree(out, ignore_errors=True)
            cmd = job_command(job, folder, manifest, out, extra)
            r = run_where(cmd, cache / f"trace-{job}-{n}") if args.where else measure(cmd)
            if r["returncode"]:
                raise SystemExit(f"{job} {n} failed ({r['returncode']}):\n{r['stderr_tail']}")
            r["output_check"] = check_output(job, out, n) or "ok"
            shutil.rmtree(out, ignore_errors=True)
            results["runs"][f"{job}-{n}"] = r
            print(f"{job:<8} {n:>7} inputs  tree {r['peak_tree_mb']:>5} MB  "
                  f"launcher {r['peak_launcher_mb']:>5} MB  worker {r['peak_worker_mb']:>5} MB  "
                  f"{r['wall_s']:>6}s  {r['output_check']}  "
                  f"load {fixtures.loadavg()[0]}", flush=True)
            if args.where:
                print_where(r)
    rows, verdicts = [], {}
    for job in jobs:
        base = results["runs"][f"{job}-{sizes[0]}"]
        for n in sizes:
            r = results["runs"][f"{job}-{n}"]
            ratio = round(r["peak_tree_mb"] / base["peak_tree_mb"], 2)
            goal = GOALS.get(n) if sizes[0] == 2000 else None
            verdict = "" if goal is None else ("PASS" if ratio <= goal else "FAIL")
            verdicts[f"{job}-{n}"] = {"ratio_vs_smallest": ratio, "goal": goal, "verdict": verdict}
            rows.append([job, n, r["peak_tree_mb"], r["peak_launcher_mb"], r["peak_worker_mb"],
                         r["peak_workers_sum_mb"], ratio, f"<= {goal}" if goal else "", verdict, r["wall_s"]])
    results["ratios"] = verdicts
    print()
    print(fixtures.table(["job", "inputs", "tree MB", "launcher MB", "1 worker MB", "workers MB",
                          f"tree/{sizes[0]}", "goal", "verdict", "wall s"], rows))
    name = args.name or (("memory" if sizes[-1] >= 200000 else "memory-quick")
                         + ("-where" if args.where else ""))
    print(f"wrote {fixtures.write_results(name, results)}")


if __name__ == "__main__":
    main()
