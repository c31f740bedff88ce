"""Recognition throughput on this machine: the raw model, `ocr predict` end to end, and Tesseract 5, on the
same N generated word images (held-out fonts), with word accuracy under the scene-text protocol.

  (a) forward      the bundle's model (`model(x, training=False)` in a tf.function, as CrnnModelHandler runs
                   it) on in-memory batches of the already preprocessed images;
  (b) ocr predict  `ocr predict --input 'DIR/images/*/*.jpg'` (DirectRunner multi_processing, --workers 2),
                   wall time of the whole command; a second run on 100 images gives the fixed cost
                   (start-up, worker spawn, model load), and the CPU time of the process tree is split into
                   measured per-image costs (read + preprocess, model, CTC decode) and the rest (Beam,
                   Parquet, start-up);
  (c) tesseract    `tesseract IMG stdout --psm 8`, one process per image, 2 at a time (OMP_THREAD_LIMIT=1);
  (c2) tesserocr   the same engine in-process (model loaded once), 2 worker processes, when the `tesserocr`
                   binding is available or builds from source against libtesseract-dev within a few minutes.

Without --model the shipped model (ocr_core/assets/default_model) is used; until it exists, a demo model is
trained once (`ocr train --config demo --epochs 2`) — fine for speed, its accuracy is low.

    python bench/predict_throughput.py                  # N=5000, ~15 min on 2 busy cores
    python bench/predict_throughput.py --quick          # N=300 smoke run

Results: bench/results/predict_throughput.json (a --quick run writes predict_throughput-quick.json instead).
"""
from __future__ import annotations

import os

# As in the Beam workers (pipelines.beam_options.limit_worker_blas_threads): per-image costs measured here
# must be those of one worker process.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse  # noqa: E402
import glob  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from concurrent.futures import ThreadPoolExecutor  # noqa: E402
from pathlib import Path  # noqa: E402

import fixtures  # noqa: E402  (also puts the repo on sys.path)

TINY = 100  # images of the fixed-cost run
TESSDATA_CANDIDATES = sorted(glob.glob("/usr/share/tesseract-ocr/*/tessdata"))
TESSEROCR_DIRS = (fixtures.CACHE / "tesserocr_src", fixtures.CACHE / "tesserocr_pkg")


def say(msg: str) -> None:
    print(msg, flush=True)


def same_word(label: str, text: str | None) -> bool:
    from ocr_core.metrics import scene_text_normalize

    return text is not None and scene_text_normalize(label) == scene_text_normalize(text)


def accuracy(labels: dict[str, str], predictions: dict[str, str | None]) -> dict:
    keys = [k for k in predictions if k in labels]
    correct = sum(same_word(labels[k], predictions[k]) for k in keys)
    return {"n": len(keys), "correct": correct, "word_accuracy_alnum": correct / max(len(keys), 1)}


# --- the model ----------------------------------------------------------------------------------------------


def resolve_model(given: str | None, quick: bool) -> tuple[str, str]:
    """(bundle directory, how it was chosen). Trains the demo model once when nothing else exists."""
    from ocr_core.bundle import SHIPPED_MODEL

    if given:
        return given, "--model"
    if (SHIPPED_MODEL / "model.keras").exists():
        return str(SHIPPED_MODEL), "shipped model"
    demo = fixtures.CACHE / "demo_model"
    if (demo / "model.keras").exists():
        return str(demo), "demo model (ocr train --config demo --epochs 2), cached"
    quick_demo = fixtures.CACHE / "demo_model_quick"
    if quick and (quick_demo / "model.keras").exists():
        return str(quick_demo), "quick demo model (40 steps/epoch), cached"
    images = fixtures.synth_images(2000 if quick else 10000, seed=0, font_split="train", say=say)
    data = fixtures.built_dataset(images, say=say)
    out = quick_demo if quick else demo
    args = ["train", "--data", data, "--config", "demo", "--output", out, "--epochs", "2", "--overwrite"]
    if quick:
        args += ["--max-steps-per-epoch", "40"]
    say(f"no shipped model: training a demo model: ocr {' '.join(map(str, args))}")
    seconds = fixtures.run_ocr(*args, log=fixtures.CACHE / "logs" / f"{out.name}.log")
    say(f"  done in {seconds:.0f}s")
    return str(out), f"demo model trained here ({' '.join(map(str, args))})"


# --- (a) the raw model, and the per-image costs of the other stages -----------------------------------------


def in_process(files: list[str], bundle_dir: str, batch: int, windows: int, labels: dict[str, str]) -> dict:
    """Raw forward pass images/s, plus CPU seconds per image of read+preprocess, forward and greedy decode."""
    started = time.perf_counter()
    import numpy as np
    import tensorflow as tf

    from ocr_core.bundle import load_bundle
    from ocr_core.ctc import greedy_decode
    from ocr_core.preprocess import PreprocessSpec, preprocess_word_image

    import_seconds = time.perf_counter() - started  # TensorFlow, unless an earlier step loaded it
    spec = PreprocessSpec()
    c0, t0 = time.process_time(), time.perf_counter()
    pixels = []
    for f in files:
        with open(f, "rb") as fh:
            pixels.append(preprocess_word_image(fh.read(), spec)[0])
    pre_cpu, pre_wall = time.process_time() - c0, time.perf_counter() - t0
    x = np.stack(pixels)[..., None]

    t0 = time.perf_counter()
    bundle = load_bundle(bundle_dir)
    model = bundle.model
    h, w = model.input_shape[1:3]
    forward = tf.function(lambda v: model(v, training=False),
                          input_signature=[tf.TensorSpec([None, h, w, 1], tf.uint8)])
    batches = [x[i:i + batch] for i in range(0, len(x), batch)]
    forward(batches[0]).numpy()
    load_seconds = time.perf_counter() - t0
    for b in batches[1:3]:  # warm up
        forward(b).numpy()
    rates, cpu_per_image, probs = [], [], None
    for _ in range(windows):  # one window = one pass over all N images
        c0, t0 = time.process_time(), time.perf_counter()
        out = [forward(b).numpy() for b in batches]
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        rates.append(len(x) / wall)
        cpu_per_image.append(cpu / len(x))
        probs = out
    probs = np.concatenate(probs)

    # CTC decoding exactly as DecodeCTC does it: one example at a time.
    c0 = time.process_time()
    texts = []
    for p in probs:
        ids, _ = greedy_decode(p[None])
        texts.append(bundle.charset.decode(ids[0]))
    dec_cpu = time.process_time() - c0
    acc = accuracy(labels, {str(Path(f).resolve()): t for f, t in zip(files, texts)})
    return {"images_per_second": fixtures.median(rates), "windows": rates, "batch_size": batch,
            "forward_cpu_seconds_per_image": fixtures.median(cpu_per_image),
            "preprocess_cpu_seconds_per_image": pre_cpu / len(files),
            "preprocess_images_per_second_one_process": len(files) / pre_wall,
            "decode_cpu_seconds_per_image": dec_cpu / len(files),
            "tensorflow_import_seconds": import_seconds, "model_load_and_trace_seconds": load_seconds,
            "model": bundle.name, "parameters": int(model.count_params()), "accuracy": acc}


# --- (b) ocr predict ----------------------------------------------------------------------------------------


def run_tree(cmd: list[str], log: Path, poll: float = 0.25) -> dict:
    """Runs a command; wall time, CPU seconds of its whole process tree, peak tree RSS."""
    import psutil

    log.parent.mkdir(parents=True, exist_ok=True)
    cpu: dict[tuple[int, float], float] = {}
    peak = 0
    with open(log, "w") as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=fixtures.REPO, stdout=out, stderr=subprocess.STDOUT)
        root = psutil.Process(proc.pid)
        while True:
            try:
                tree = [root] + root.children(recursive=True)
            except psutil.Error:
                tree = []
            rss = 0
            for q in tree:
                try:
                    with q.oneshot():
                        t = q.cpu_times()
                        cpu[(q.pid, q.create_time())] = t.user + t.system
                        rss += q.memory_info().rss
                except psutil.Error:
                    pass
            peak = max(peak, rss)
            try:
                _, status, usage = os.wait4(proc.pid, os.WNOHANG)
            except ChildProcessError:
                break
            if _:
                proc.returncode = os.waitstatus_to_exitcode(status)
                break
            time.sleep(poll)
        wall = time.perf_counter() - t0
    # The child's own rusage covers the descendants it reaped; polling covers those it did not.
    polled = sum(cpu.values())
    reaped = usage.ru_utime + usage.ru_stime
    return {"wall_seconds": wall, "cpu_seconds": max(polled, reaped), "cpu_seconds_polled": polled,
            "cpu_seconds_rusage": reaped, "peak_rss_mb": peak / 2**20, "returncode": proc.returncode,
            "log": str(log)}


def read_predictions(out_dir: Path) -> dict[str, str | None]:
    import pyarrow.parquet as pq

    preds = {}
    for part in sorted(out_dir.glob("part-*.parquet")):
        t = pq.read_table(part, columns=["source", "text", "error"]).to_pylist()
        for row in t:
            preds[str(Path(row["source"]).resolve())] = row["text"]
    return preds


def ocr_predict(bundle: str, pattern: str, out: Path, batch: int, workers: int, extra: list[str],
                tag: str) -> dict:
    """Runs `ocr predict` (flags in `extra` win)."""
    args = ["predict", "--model", bundle, "--input", pattern, "--output", str(out),
            "--batch-size", str(batch), "--workers", str(workers),
            # BatchElements logs its batch statistics at WARNING; `ocr predict` workers default to ERROR.
            "--default_sdk_harness_log_level=WARNING", *extra]
    shutil.rmtree(out, ignore_errors=True)
    r = run_tree(fixtures.ocr_command(*args), fixtures.CACHE / "logs" / f"predict-{tag}.log")
    text = Path(r["log"]).read_text()
    if r["returncode"] != 0:
        raise RuntimeError(f"`ocr {' '.join(args)}` failed ({r['returncode']}):\n{text[-4000:]}")
    m = re.search(r"ocr predict: (\d+) rows .* in ([\d.]+)s", text)
    r.update(command="ocr " + " ".join(args),
             rows=int(m.group(1)) if m else None, job_seconds=float(m.group(2)) if m else None,
             batch_sizes=batch_histogram(text))
    return r


WORKER_STARTUP_PROBE = """
import sys, time
t0 = time.perf_counter()
import apache_beam
t1 = time.perf_counter()
import numpy as np
import tensorflow as tf
t2 = time.perf_counter()
from ocr_core.bundle import load_bundle
model = load_bundle(sys.argv[1]).model
t3 = time.perf_counter()
h, w = model.input_shape[1:3]
spec = [tf.TensorSpec([None, h, w, 1], tf.uint8)]
f = tf.function(lambda x: model(x, training=False), input_signature=spec)
f(np.zeros((8, h, w, 1), np.uint8)).numpy()
t4 = time.perf_counter()
print(t1 - t0, t2 - t1, t3 - t2, t4 - t3)
"""


def worker_startup(bundle: str) -> dict:
    """What each `ocr predict` worker does before its first image, timed in a fresh process."""
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", WORKER_STARTUP_PROBE, bundle], cwd=fixtures.REPO,
                       capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        return {"failed": r.stderr[-500:]}
    parts = [float(x) for x in r.stdout.split()[-4:]]
    return {"process_wall_seconds": wall, "import_apache_beam": parts[0], "import_tensorflow": parts[1],
            "load_bundle": parts[2], "trace_and_first_batch": parts[3]}


def batch_histogram(log_text: str) -> dict:
    """RunInference batching, from the BatchElements statistics Beam logs at the end of each bundle: elements,
    batches, their mean size, and a size -> count histogram of the timings it kept."""
    sizes: dict[int, int] = {}
    elements = batches = 0
    for e, nb, stats in re.findall(r"BatchElements statistics: element_count=(\d+) batch_count=(\d+).*?"
                                   r"timings=\[(.*?)\]\n", log_text):
        elements, batches = elements + int(e), batches + int(nb)
        for size in re.findall(r"\((\d+), ", stats):
            sizes[int(size)] = sizes.get(int(size), 0) + 1
    return {"elements": elements, "batches": batches, "mean_batch": elements / max(batches, 1),
            "histogram": dict(sorted(sizes.items()))}


# --- (c) Tesseract ------------------------------------------------------------------------------------------


def tesseract_cli(files: list[str], procs: int) -> tuple[dict, dict[str, str | None]]:
    env = dict(os.environ, OMP_THREAD_LIMIT="1")  # one thread per process: we run `procs` of them

    def one(f):
        r = subprocess.run(["tesseract", f, "stdout", "--psm", "8"], capture_output=True, text=True, env=env)
        return r.stdout.strip() if r.returncode == 0 else None

    one(files[0])  # page cache for the binary and traineddata
    t0 = time.perf_counter()
    with ThreadPoolExecutor(procs) as pool:
        texts = list(pool.map(one, files))
    wall = time.perf_counter() - t0
    version = subprocess.run(["tesseract", "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    return ({"images_per_second": len(files) / wall, "wall_seconds": wall, "n": len(files),
             "processes": procs, "failed": sum(t is None for t in texts), "version": version,
             "command": "OMP_THREAD_LIMIT=1 tesseract IMG stdout --psm 8"},
            {str(Path(f).resolve()): t for f, t in zip(files, texts)})


_API = None


def _tesserocr_init(path: str, tessdata: str) -> None:
    global _API
    os.environ["OMP_THREAD_LIMIT"] = "1"
    sys.path.insert(0, path)
    import tesserocr

    where = {"path": tessdata} if tessdata else {}
    _API = tesserocr.PyTessBaseAPI(lang="eng", psm=tesserocr.PSM.SINGLE_WORD, **where)


def _tesserocr_one(f: str) -> str:
    _API.SetImageFile(f)
    return _API.GetUTF8Text().strip()


def find_tesserocr(may_build: bool) -> tuple[str | None, str]:
    """A directory holding an importable tesserocr (cached under the bench cache), and how it was obtained."""
    probe = "import tesserocr, sys; print(tesserocr.tesseract_version().split()[1])"
    for d in TESSEROCR_DIRS:
        if (d / "tesserocr").exists():
            r = subprocess.run([sys.executable, "-c", probe], env=dict(os.environ, PYTHONPATH=str(d)),
                               capture_output=True, text=True)
            if r.returncode == 0:
                how = "built from source against libtesseract-dev" if d.name.endswith("src") else "PyPI wheel"
                return str(d), f"tesserocr ({how}, libtesseract {r.stdout.strip()})"
    if not may_build:
        return None, "tesserocr not installed (skipped in --quick; a full run tries to build it)"
    d = TESSEROCR_DIRS[0]
    say("building tesserocr from source against libtesseract-dev (pip --no-binary, up to 5 min) ...")
    try:
        r = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-binary", "tesserocr",
                            "--target", str(d), "tesserocr"], capture_output=True, text=True, timeout=300)
        ok = r.returncode == 0
        why = r.stderr[-300:]
    except subprocess.TimeoutExpired:
        ok, why = False, "timed out after 300s"
    if not ok:
        shutil.rmtree(d, ignore_errors=True)
        return None, f"tesserocr build failed: {why.strip()}"
    return find_tesserocr(False)


def tesserocr_api(files: list[str], procs: int, path: str) -> tuple[dict, dict[str, str | None]]:
    import multiprocessing as mp

    tessdata = TESSDATA_CANDIDATES[-1] + "/" if TESSDATA_CANDIDATES else ""  # "": the library's default
    ctx = mp.get_context("spawn")  # never fork a process that has TensorFlow loaded
    with ctx.Pool(procs, initializer=_tesserocr_init, initargs=(path, tessdata)) as pool:
        pool.map(_tesserocr_one, files[:procs * 2])  # start-up and model load outside the timing
        t0 = time.perf_counter()
        texts = pool.map(_tesserocr_one, files, chunksize=16)
        wall = time.perf_counter() - t0
    return ({"images_per_second": len(files) / wall, "wall_seconds": wall, "n": len(files),
             "processes": procs, "api": "PyTessBaseAPI(psm=SINGLE_WORD).SetImageFile + GetUTF8Text"},
            {str(Path(f).resolve()): t for f, t in zip(files, texts)})


# --- main ---------------------------------------------------------------------------------------------------


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="smoke run: N=300, no variant runs, Tesseract CLI on 100 images, no tesserocr build")
    p.add_argument("--n", type=int, help="images (default 5000; quick 300)")
    p.add_argument("--model",
                   help="model bundle (default: the shipped model, else a demo model trained once)")
    p.add_argument("--batch-size", type=int, default=64, help="forward batch and ocr predict --batch-size")
    p.add_argument("--workers", type=int, default=2, help="ocr predict --workers and Tesseract processes")
    p.add_argument("--tesseract-n", type=int,
                   help="images for the one-process-per-image CLI, the first of the N (default 1000; "
                        "quick 100; 0 skips it): ~0.3 CPU-s per image, mostly start-up")
    p.add_argument("--no-tesserocr", action="store_true", help="skip the in-process Tesseract API")
    p.add_argument("--variant", action="append", default=None, metavar="FLAGS",
                   help="extra `ocr predict` run with these flags, e.g. '--tf-threads 1' (repeatable; "
                        "default in a full run: '--workers 1'; none in --quick)")
    p.add_argument("--windows", type=int, default=5, help="timed passes of the raw forward pass")
    p.add_argument("--tag",
                   help="results go to bench/results/predict_throughput-TAG.json (e.g. for another model)")
    args = p.parse_args(argv)
    quick = args.quick
    n = args.n or (300 if quick else 5000)
    variants = args.variant if args.variant is not None else (
        [] if quick else ["--workers 1"])

    started = fixtures.machine()
    say(f"predict_throughput: N={n}, batch {args.batch_size}, {args.workers} workers; load average "
        f"{started['loadavg']} on {started['cpus']} CPUs")
    images = fixtures.synth_images(n, seed=1, font_split="heldout", say=say)
    labels = fixtures.read_labels(images)
    pattern = str(images / "images" / "*" / "*.jpg")
    files = sorted(glob.glob(pattern))
    if len(files) != n:
        raise SystemExit(f"{pattern} matched {len(files)} files, expected {n}")
    bundle, how = resolve_model(args.model, quick)
    say(f"model: {bundle} ({how})")

    say("(a) in-process: preprocess, raw forward pass, greedy decode ...")
    a = in_process(files, bundle, args.batch_size, args.windows, labels)
    say(f"    {a['images_per_second']:.0f} img/s forward; "
        f"accuracy {a['accuracy']['word_accuracy_alnum']:.3f}")

    say(f"(b) ocr predict on {n} images ...")
    out = fixtures.CACHE / f"predict-out-n{n}"
    b = ocr_predict(bundle, pattern, out, args.batch_size, args.workers, [], "full")
    b["images_per_second"] = n / b["wall_seconds"]
    preds_b = read_predictions(out)
    b["accuracy"] = accuracy(labels, preds_b)
    say(f"    {b['wall_seconds']:.1f}s wall, {b['images_per_second']:.1f} img/s; "
        f"accuracy {b['accuracy']['word_accuracy_alnum']:.3f}")
    tiny_pattern = str(images / "images" / "000" / "00000[0-9][0-9].jpg")  # the first 100 images
    say(f"    fixed cost: ocr predict on {TINY} images ...")
    tiny = ocr_predict(bundle, tiny_pattern, fixtures.CACHE / "predict-out-tiny", args.batch_size,
                       args.workers, [], "tiny")
    # Only meaningful when the big run is much longer than the small one (noise of ~2s on ~20s each).
    steady = (n - TINY) / max(b["wall_seconds"] - tiny["wall_seconds"], 1e-9) if n >= 10 * TINY else None
    b["fixed_cost_run"] = tiny
    b["steady_state_images_per_second"] = steady
    # Where the CPU time of (b) goes: measured per-image costs times N, and the rest.
    parts = {"read + preprocess": a["preprocess_cpu_seconds_per_image"] * n,
             "model forward": a["forward_cpu_seconds_per_image"] * n,
             "CTC decode": a["decode_cpu_seconds_per_image"] * n}
    parts["start-up (100-image run)"] = tiny["cpu_seconds"] - sum(v * TINY / n for v in parts.values())
    parts["Beam + Parquet + rest"] = b["cpu_seconds"] - sum(parts.values())
    b["cpu_breakdown_seconds"] = parts
    b["worker_startup"] = startup = worker_startup(bundle)

    variant_results = []
    for flags in variants:
        extra = flags.split()
        tag = "variant-" + re.sub(r"[^a-z0-9]+", "-", flags.lower()).strip("-")
        say(f"(b') ocr predict {flags} ...")
        v = ocr_predict(bundle, pattern, fixtures.CACHE / f"predict-out-{tag}", args.batch_size, args.workers,
                        extra, tag)
        v.update(flags=flags, images_per_second=n / v["wall_seconds"])
        variant_results.append(v)

    tess_n = min(n, args.tesseract_n if args.tesseract_n is not None else (100 if quick else 1000))
    c = None
    if tess_n and not shutil.which("tesseract"):
        say("(c) skipped: no `tesseract` on PATH (apt-get install tesseract-ocr)")
    elif tess_n:
        say(f"(c) tesseract CLI on {tess_n} images, {args.workers} processes ...")
        c, preds_c = tesseract_cli(files[:tess_n], args.workers)
        c["accuracy"] = accuracy(labels, preds_c)
        # (b) on exactly the images Tesseract saw, for a like-for-like accuracy
        b["accuracy_on_tesseract_subset"] = accuracy(labels, {k: preds_b.get(k) for k in preds_c})
        say(f"    {c['images_per_second']:.1f} img/s; accuracy {c['accuracy']['word_accuracy_alnum']:.3f}")

    c2 = None
    if not args.no_tesserocr:
        path, tess_how = find_tesserocr(may_build=not quick)
        if path:
            say(f"(c2) {tess_how} on {n} images, {args.workers} processes ...")
            try:
                c2, preds_c2 = tesserocr_api(files, args.workers, path)
                c2["accuracy"] = accuracy(labels, preds_c2)
                c2["binding"] = tess_how
                say(f"    {c2['images_per_second']:.1f} img/s; "
                    f"accuracy {c2['accuracy']['word_accuracy_alnum']:.3f}")
            except Exception as e:  # optional contender: report and go on
                c2 = {"skipped": f"{type(e).__name__}: {e}"}
        else:
            c2 = {"skipped": tess_how}
        if "skipped" in c2:
            say(f"(c2) skipped: {c2['skipped']}")

    ended = fixtures.loadavg()
    model_mtime = time.localtime(os.path.getmtime(Path(bundle) / "model.keras"))
    results = {"benchmark": "predict_throughput", "quick": quick, "n": n, "images": str(images),
               "font_split": "heldout", "model_dir": bundle, "model_choice": how,
               "model_file_mtime": time.strftime("%Y-%m-%dT%H:%M:%S", model_mtime),
               "batch_size": args.batch_size, "workers": args.workers, "machine": started,
               "loadavg_end": ended,
               "forward": a, "ocr_predict": b, "ocr_predict_variants": variant_results, "tesseract_cli": c,
               "tesserocr": c2,
               "ratios": {"predict_over_forward": b["images_per_second"] / a["images_per_second"],
                          "predict_steady_over_forward": steady / a["images_per_second"] if steady else None}}
    if c:
        results["ratios"]["predict_over_tesseract_cli"] = b["images_per_second"] / c["images_per_second"]
    if c2 and "images_per_second" in c2:
        results["ratios"]["predict_over_tesserocr"] = b["images_per_second"] / c2["images_per_second"]

    say("")
    say(f"N={n} held-out-font images, model {a['model']} ({a['parameters']:,} params; {how}); load average "
        f"{started['loadavg']} at start, {ended} at end")
    rows = [[f"(a) raw forward, batch {args.batch_size}", a["images_per_second"], "-", "-",
             a["accuracy"]["word_accuracy_alnum"]],
            [f"(b) ocr predict, {args.workers} workers", b["images_per_second"], b["wall_seconds"],
             b["cpu_seconds"], b["accuracy"]["word_accuracy_alnum"]],
            [f"    steady state (minus {TINY}-image run)", steady if steady else "n/a (N < 1000)", "-", "-",
             "-"]]
    for v in variant_results:
        rows.append([f"(b') ocr predict {v['flags']}", v["images_per_second"], v["wall_seconds"],
                     v["cpu_seconds"], "-"])
    if c:
        rows.append([f"(c) tesseract CLI x{args.workers} ({tess_n} imgs)", c["images_per_second"],
                     c["wall_seconds"], "-", c["accuracy"]["word_accuracy_alnum"]])
    if c2 and "images_per_second" in c2:
        rows.append([f"(c2) tesserocr x{args.workers}", c2["images_per_second"], c2["wall_seconds"], "-",
                     c2["accuracy"]["word_accuracy_alnum"]])
    say(fixtures.table(["contender", "images/s", "wall s", "CPU s", "word acc"], rows))
    say("")
    say(fixtures.table(["ratio", "value"], [[k, v] for k, v in results["ratios"].items() if v is not None]))
    say("")
    say(f"where the CPU time of (b) goes ({b['cpu_seconds']:.0f} CPU-s in {b['wall_seconds']:.0f}s wall; "
        f"fixed cost {tiny['wall_seconds']:.1f}s wall for {TINY} images):")
    say(fixtures.table(["part", "CPU s", "share"],
                       [[k, v, f"{100 * v / b['cpu_seconds']:.0f}%"] for k, v in parts.items()]))
    say("RunInference batch sizes (size: batches, from Beam's BatchElements log):")
    for name, r in [("(b)", b)] + [(f"(b') {v['flags']}", v) for v in variant_results]:
        bs = r["batch_sizes"]
        say(f"  {name}: {bs['elements']} elements in {bs['batches']} batches (mean {bs['mean_batch']:.1f}); "
            f"sizes seen {bs['histogram']}")
    if c and b["accuracy_on_tesseract_subset"]["n"] != b["accuracy"]["n"]:
        say(f"(b) accuracy on the {tess_n} images Tesseract CLI saw: "
            f"{b['accuracy_on_tesseract_subset']['word_accuracy_alnum']:.3f}")
    if "failed" not in startup:
        say(f"one worker's start-up, timed in a fresh process ({startup['process_wall_seconds']:.1f}s wall): "
            f"import apache_beam {startup['import_apache_beam']:.1f}s, import tensorflow "
            f"{startup['import_tensorflow']:.1f}s, load bundle {startup['load_bundle']:.1f}s, trace + first "
            f"batch {startup['trace_and_first_batch']:.1f}s")
    path = fixtures.write_results("predict_throughput" + (f"-{args.tag}" if args.tag else ""), results)
    say(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
