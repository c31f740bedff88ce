"""`ocr export BUNDLE`: adds model.onnx (the bundle's network for ONNX Runtime) to an existing bundle.

The file is converted in a local staging folder and moved into the bundle (local or remote) in one step,
after ONNX Runtime, when installed, reproduced the Keras model's probabilities on a random batch.
"""
from __future__ import annotations

import argparse
import shutil
import tempfile
import warnings

import numpy as np

from ocr_core import fs
from ocr_core.bundle import (
    ONNX_FILE,
    BundleError,
    export_onnx,
    file_sha256,
    load_bundle,
    onnx_export_missing,
)

TOLERANCE = 1e-4  # max |Δp| between the Keras model and ONNX Runtime on the check batch


def parse_args(argv):
    p = argparse.ArgumentParser(prog="ocr export", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("bundle", help="model bundle directory (local or gs://...)")
    return p.parse_args(argv)


def check_onnx(model, onnx_path: str, batch: int = 8, seed: int = 0) -> float | None:
    """Max |Δp| between `model` and the ONNX file on random images; None without onnxruntime."""
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    x = np.random.default_rng(seed).integers(0, 256, (batch, *model.input_shape[1:]), dtype=np.uint8)
    session = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: x})[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # Keras: a bare tensor for the input list ['image']
        want = model(x, training=False).numpy()
    return float(np.abs(got - want).max())


def run(argv=None) -> int:
    args = parse_args(argv)
    missing = onnx_export_missing()
    if missing:
        raise SystemExit(f"ocr export: error: ONNX export needs tf2onnx and onnx ({missing})")
    try:
        bundle = load_bundle(args.bundle)
    except BundleError as e:
        raise SystemExit(f"ocr export: error: {e}") from None
    # staged next to the bundle when local, so the move is a rename
    tmp = tempfile.mkdtemp(prefix=".ocr-export-", dir=None if fs.is_remote(args.bundle) else args.bundle)
    try:
        local = fs.join(tmp, ONNX_FILE)
        export_onnx(bundle.model, local, file_sha256(fs.join(args.bundle, "model.keras")))
        delta = check_onnx(bundle.model, local)
        if delta is not None and delta > TOLERANCE:
            raise SystemExit(f"ocr export: error: ONNX Runtime differs from the Keras model by {delta:.2e} "
                             f"(> {TOLERANCE}); {ONNX_FILE} not written")
        fs.move_into(tmp, args.bundle)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    check = "not checked: onnxruntime is not installed" if delta is None else f"max |Δp| {delta:.1e} vs Keras"
    print(f"ocr export: wrote {fs.join(args.bundle, ONNX_FILE)} ({check})")
    return 0
