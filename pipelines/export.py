"""`ocr export BUNDLE`: adds model.onnx (the bundle's network for ONNX Runtime) to an existing bundle.

The file is converted in a local staging folder and moved into the bundle (local or remote) in one step,
after ONNX Runtime, when installed, reproduced the Keras model's probabilities on a random batch.

`ocr export BUNDLE --quantize --calibration CROPS` also writes model.int8.onnx, the same network with int8
convolutions (static quantization: the activation ranges come from `--calibration-n` word crops of CROPS,
a manifest, glob or folder like `ocr predict --input`, picked with a fixed seed; use crops like the ones
you will read, from your training data). `ocr predict --engine onnx-int8` runs it. The command prints how
often the int8 model reads the same text as model.onnx on those crops.
"""
from __future__ import annotations

import argparse
import importlib.util
import random
import shutil
import tempfile
import warnings

import numpy as np

from ocr_core import fs
from ocr_core.bundle import (
    INT8_ONNX_FILE,
    ONNX_FILE,
    BundleError,
    export_onnx,
    file_sha256,
    load_bundle,
    onnx_export_missing,
    quantize_onnx,
)
from ocr_core.errors import JobFailed, UsageError

TOLERANCE = 1e-4  # max |Δp| between the Keras model and ONNX Runtime on the check batch


class ExportError(UsageError):
    """The export cannot start (bad bundle, missing packages, no calibration image): one line, exit 2."""


def parse_args(argv):
    p = argparse.ArgumentParser(prog="ocr export", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("bundle", help="model bundle directory (local or gs://...)")
    p.add_argument("--quantize", action="store_true",
                   help=f"also write {INT8_ONNX_FILE} (int8 convolutions; needs --calibration)")
    p.add_argument("--calibration", metavar="CROPS", action="append",
                   help="with --quantize: word crops for the activation ranges (manifest, glob or folder; "
                        "repeat for several)")
    p.add_argument("--calibration-n", type=int, default=256, metavar="N",
                   help="with --quantize: how many crops of CROPS to use (default 256)")
    args = p.parse_args(argv)
    if args.quantize and not args.calibration:
        p.error("--quantize needs --calibration CROPS (a manifest, glob or folder of word crops)")
    if args.calibration and not args.quantize:
        p.error("--calibration is for --quantize")
    if args.calibration_n < 1:
        p.error("--calibration-n must be >= 1")
    return args


def calibration_images(given: list[str], spec, n: int, seed: int = 0) -> np.ndarray:
    """Up to `n` crops of the inputs `given` (chosen with a fixed seed), preprocessed as the model reads
    them: uint8 [n, H, W, 1]. Unreadable files are passed over; an error when none is left."""
    from ocr_core.errors import InputError, UsageError
    from ocr_core.image_bytes import read_image_bytes
    from ocr_core.inputs import Entry, image_files, read_input, resolve_inputs
    from ocr_core.preprocess import one_canvas, preprocess_word_image

    try:
        inputs = resolve_inputs(given, flag="--calibration")
    except UsageError as e:
        raise ExportError(str(e)) from None
    paths = []
    for inp in inputs:
        if inp.kind in ("glob", "dir"):
            paths += image_files(inp)
        else:
            paths += [e.source for e in read_input(inp) if isinstance(e, Entry)]
    random.Random(seed).shuffle(paths)
    images = []
    for path in paths:
        if len(images) == n:
            break
        try:
            images.append(preprocess_word_image(read_image_bytes(path), spec)[0])
        except InputError:
            continue
    if not images:
        raise ExportError(f"--calibration {' '.join(given)}: no readable image")
    return one_canvas(images, spec)[..., None]


def same_text(a: np.ndarray, b: np.ndarray) -> float:
    """The fraction of images whose greedy texts agree between two probability arrays [N, T, C]."""
    from ocr_core.ctc import greedy_decode

    return float(np.mean([x == y for x, y in zip(greedy_decode(a)[0], greedy_decode(b)[0])]))


def write_int8(bundle, args, onnx_path: str, session, dest_dir: str) -> str:
    """Quantizes `onnx_path` (open in `session`) into dest_dir/model.int8.onnx, calibrated on --calibration;
    returns a note."""
    import onnxruntime as ort

    images = calibration_images(args.calibration, bundle.spec, args.calibration_n)
    local = fs.join(dest_dir, INT8_ONNX_FILE)
    quantize_onnx(onnx_path, local, images)
    int8 = ort.InferenceSession(local, providers=["CPUExecutionProvider"])
    probs = [s.run(None, {"image": images})[0] for s in (session, int8)]
    return f"the same text as {ONNX_FILE} on {same_text(*probs):.1%} of {len(images)} calibration crops"


def fp32_session(onnx_path: str):
    """An ONNX Runtime session on the exported file; None without onnxruntime."""
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    return ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])


def check_onnx(model, session, batch: int = 8, seed: int = 0) -> float:
    """Max |Δp| between `model` and the ONNX file open in `session`, on random images (a dynamic-width
    model: at two widths)."""
    h, w = model.input_shape[1:3]
    delta = 0.0
    for width in (w,) if w else (16, 200):
        x = np.random.default_rng(seed).integers(0, 256, (batch, h, width, 1), dtype=np.uint8)
        got = session.run(None, {session.get_inputs()[0].name: x})[0]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # Keras: a bare tensor for the input list ['image']
            want = model(x, training=False).numpy()
        delta = max(delta, float(np.abs(got - want).max()))
    return delta


def run(argv=None) -> int:
    args = parse_args(argv)
    missing = onnx_export_missing()
    if missing:
        raise ExportError(f"ONNX export needs tf2onnx and onnx ({missing})")
    if args.quantize and importlib.util.find_spec("onnxruntime") is None:
        raise ExportError("--quantize needs onnxruntime (pip install onnxruntime)")
    try:
        bundle = load_bundle(args.bundle)
    except BundleError as e:
        raise ExportError(str(e)) from None
    # staged next to the bundle when local, so the move is a rename
    tmp = tempfile.mkdtemp(prefix=".ocr-export-", dir=None if fs.is_remote(args.bundle) else args.bundle)
    try:
        local = fs.join(tmp, ONNX_FILE)
        export_onnx(bundle.model, local, file_sha256(fs.join(args.bundle, "model.keras")))
        session = fp32_session(local)
        delta = None if session is None else check_onnx(bundle.model, session)
        if delta is not None and delta > TOLERANCE:
            raise JobFailed(f"ONNX Runtime differs from the Keras model by {delta:.2e} "
                             f"(> {TOLERANCE}); {ONNX_FILE} not written")
        int8_note = write_int8(bundle, args, local, session, tmp) if args.quantize else None
        fs.move_into(tmp, args.bundle)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    check = "not checked: onnxruntime is not installed" if delta is None else f"max |Δp| {delta:.1e} vs Keras"
    print(f"ocr export: wrote {fs.join(args.bundle, ONNX_FILE)} ({check})")
    if int8_note:
        print(f"ocr export: wrote {fs.join(args.bundle, INT8_ONNX_FILE)} ({int8_note})")
    return 0
