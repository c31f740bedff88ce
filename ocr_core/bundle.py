"""Model bundle: the directory a training run hands to inference, checked on load.

A bundle directory is local or on any filesystem TensorFlow reads (gs://...; see `ocr_core.fs`).
Layout: `model.keras` (plain functional model, no Lambda layers, loads with safe_mode=True),
`charset.json`, `config.yaml` (architecture + preprocessing contract), `metrics.json`, and
`saved_model/` whose `serving_default` signature maps encoded image bytes to text and confidence, and
optionally `model.onnx`: the same network for ONNX Runtime (input `image` uint8 [B, H, W, 1], output float32
softmax [B, T, classes]), written by `ocr train` when tf2onnx is installed or later by `ocr export`. It
records the SHA-256 of the model.keras it was converted from, so a model.onnx left over from an older
model.keras is refused rather than silently used.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import yaml

from ocr_core import fs
from ocr_core.charset import Charset
from ocr_core.config import SHIPPED_MODEL, OcrConfig, config_from_dict  # noqa: F401 (SHIPPED_MODEL: re-exported)
from ocr_core.preprocess import PreprocessSpec

BUNDLE_FILES = ("model.keras", "charset.json", "config.yaml")
BUNDLE_FORMAT = 1
ONNX_FILE = "model.onnx"
INT8_ONNX_FILE = "model.int8.onnx"  # model.onnx with int8 convolutions (`ocr export --quantize`)
ONNX_SOURCE_KEY = "ocr.model_keras_sha256"  # model.onnx metadata: the model.keras it was converted from


class BundleError(ValueError):
    """A model bundle that is missing, incomplete or incompatible."""


@dataclass
class Bundle:
    path: str
    model: object  # keras.Model
    charset: Charset
    config: OcrConfig
    spec: PreprocessSpec
    metrics: dict

    @property
    def name(self) -> str:
        return f"{self.config.name}@{fs.basename(self.path)}"


def check_bundle_dir(path: str) -> None:
    """Raises BundleError unless `path` holds every file of a bundle (local paths: no TensorFlow)."""
    if not fs.isdir(path):
        raise BundleError(f"model bundle {path}: no such directory (train one with `ocr train`, or omit "
                          "--model to use the shipped model)")
    missing = [f for f in BUNDLE_FILES if not fs.exists(fs.join(path, f))]
    if missing:
        raise BundleError(f"model bundle {path} is incomplete: missing {', '.join(missing)} "
                          "(was training interrupted before export?)")


def read_bundle_meta(path: str) -> tuple[OcrConfig, Charset, PreprocessSpec]:
    """Config, charset and preprocessing contract of a bundle, without loading the model."""
    check_bundle_dir(path)
    try:
        meta = yaml.safe_load(fs.read_text(fs.join(path, "config.yaml")))
        cfg = config_from_dict(meta["config"], fs.join(path, "config.yaml"))
        pre = dict(meta["preprocess"])
        # The size limits guard this process's memory, they are not what the model learned: a bundle can
        # only tighten this ocr's limits.
        default = PreprocessSpec()
        spec = PreprocessSpec.from_dict({**pre, "max_pixels": min(pre["max_pixels"], default.max_pixels),
                                         "max_bytes": min(pre["max_bytes"], default.max_bytes)})
        charset = Charset.from_json(fs.read_text(fs.join(path, "charset.json")))
    except (KeyError, TypeError, ValueError, yaml.YAMLError) as e:
        raise BundleError(f"model bundle {path}: unreadable config.yaml/charset.json ({e})") from e
    if meta.get("bundle_format") != BUNDLE_FORMAT:
        raise BundleError(f"model bundle {path}: bundle_format {meta.get('bundle_format')} is not "
                          "supported "
                          f"(expected {BUNDLE_FORMAT})")
    if pre.get("version") != spec.to_dict()["version"]:
        raise BundleError(f"model bundle {path}: preprocessing version {pre.get('version')} differs from "
                          f"this ocr's {spec.to_dict()['version']}; retrain or use a matching ocr version")
    if charset.characters != cfg.charset:
        raise BundleError(f"model bundle {path}: charset.json does not match config.yaml's charset")
    return cfg, charset, spec


def load_bundle(path: str) -> Bundle:
    """Loads and checks a bundle; raises BundleError with the reason and the fix."""
    cfg, charset, spec = read_bundle_meta(path)
    import keras

    with fs.local_copy(fs.join(path, "model.keras")) as local:  # Keras reads local files only
        if not zipfile.is_zipfile(local):  # Keras would call it "File not found"
            raise BundleError(f"model bundle {path}: model.keras does not load (not a .keras zip archive: "
                              "truncated or corrupt; copy or export the bundle again)")
        try:
            model = keras.saving.load_model(local, compile=False, safe_mode=True)
        except Exception as e:
            raise BundleError(f"model bundle {path}: model.keras does not load "
                              f"({type(e).__name__}: {e})") from e
    want_in = (None, spec.height, None if spec.dynamic_width else spec.width, 1)
    if tuple(model.input_shape) != want_in:
        raise BundleError(f"model bundle {path}: model input {model.input_shape} != preprocessing {want_in}")
    if model.output_shape[-1] != charset.num_classes:
        raise BundleError(f"model bundle {path}: model has {model.output_shape[-1]} classes but the charset "
                          f"needs {charset.num_classes}")
    metrics_path = fs.join(path, "metrics.json")
    metrics = json.loads(fs.read_text(metrics_path)) if fs.exists(metrics_path) else {}
    return Bundle(str(path), model, charset, cfg, spec, metrics)


class _NoTableNote(logging.Filter):
    """Drops TensorFlow's "Issue encountered when serializing table_initializer" warning: the graph
    collection it cannot serialise holds the lookup table of the teacher's targets (`ocr_core.distill`),
    which training made and no exported model holds: noise in `ocr train --teacher`'s output."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "when serializing table_initializer" not in record.getMessage()


_NO_TABLE_NOTE = _NoTableNote()


def save_bundle(path: str, model, cfg: OcrConfig, metrics: dict, spec: PreprocessSpec = PreprocessSpec(),
                saved_model: bool = True, onnx: bool = False) -> str | None:
    """Writes a bundle into a local staging folder, then moves it over `path`'s bundle files.

    A local `path` gets a sibling staging folder, so each file is replaced by a rename; a remote one is
    staged in a temporary folder and copied. model.keras is moved last: a half-written bundle never looks
    complete (`check_bundle_dir`). With `onnx`, model.onnx is written too when the conversion works; an
    older model.onnx in `path` is removed otherwise (it would belong to the replaced model), and an older
    model.int8.onnx always.

    Returns:
        None, or with `onnx` why model.onnx could not be written (the rest of the bundle is).
    """
    from ocr_core.model import inference_model

    logging.getLogger("tensorflow").addFilter(_NO_TABLE_NOTE)  # once: a logger keeps one of each filter
    if fs.is_remote(path):
        tmp = Path(tempfile.mkdtemp(prefix="ocr-bundle-"))
    else:
        final = Path(path)
        tmp = final.parent / f".{final.name}.bundle-tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    plain = inference_model(model)
    plain.save(tmp / "model.keras")
    charset = Charset(cfg.charset)
    (tmp / "charset.json").write_text(charset.to_json())
    meta = {"bundle_format": BUNDLE_FORMAT, "config": cfg.to_dict(), "preprocess": spec.to_dict(),
            "input": {"dtype": "uint8", "shape": [spec.height, spec.width, 1]},
            "output": {"time_steps": cfg.model.time_steps, "num_classes": charset.num_classes, "blank_id": 0}}
    if spec.dynamic_width:  # the contract of a text-line bundle (docs/lines.md)
        meta["input"] = {"dtype": "uint8", "shape": [spec.height, None, 1], "max_width": spec.width,
                         "min_width": spec.min_width, "width": "from the aspect ratio, a multiple of "
                                                               f"{spec.stride}; batches pad to canvas_width"}
        meta["output"]["time_steps"] = f"width / {spec.stride} - 1 (at most {cfg.model.time_steps})"
    (tmp / "config.yaml").write_text(yaml.safe_dump(meta, sort_keys=False, allow_unicode=True))
    (tmp / "metrics.json").write_text(json.dumps(metrics, indent=2))
    if saved_model:
        export_saved_model(plain, charset, spec, str(tmp / "saved_model"))
    onnx_note = None
    if onnx:
        try:
            export_onnx(plain, str(tmp / ONNX_FILE), file_sha256(tmp / "model.keras"))
        except Exception as e:  # a trained model is never lost over its optional ONNX copy
            onnx_note = f"{type(e).__name__}: {e}".splitlines()[0]
            (tmp / ONNX_FILE).unlink(missing_ok=True)
    if not (tmp / ONNX_FILE).exists() and fs.exists(fs.join(path, ONNX_FILE)):
        fs.remove(fs.join(path, ONNX_FILE))
    if fs.exists(fs.join(path, INT8_ONNX_FILE)):  # quantized from the replaced model
        fs.remove(fs.join(path, INT8_ONNX_FILE))
    fs.move_into(str(tmp), path, last=("model.keras",))
    return onnx_note


def onnx_export_missing() -> str | None:
    """None when `export_onnx` can run, else which packages to install."""
    missing = [m for m in ("tf2onnx", "onnx") if importlib.util.find_spec(m) is None]
    return f"pip install {' '.join(missing)}" if missing else None


def file_sha256(path) -> str:
    digest = hashlib.sha256()
    with fs.open_binary(path) as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def export_onnx(model, path: str, keras_sha256: str) -> None:
    """Writes `model` (a loaded bundle's Keras model) as ONNX to the local file `path`.

    Input `image` uint8 [B, H, W, 1] as the Keras model takes it, output float32 probabilities [B, T, C];
    `keras_sha256` (of the bundle's model.keras) goes into the metadata under ONNX_SOURCE_KEY.

    Raises:
        ImportError: tf2onnx or onnx is not installed.
    """
    import warnings

    import tensorflow as tf

    missing = onnx_export_missing()
    if missing:
        raise ImportError(f"ONNX export needs tf2onnx and onnx ({missing})")
    logging.getLogger("tf2onnx").setLevel(logging.ERROR)  # one line per rewritten node otherwise
    signature = [tf.TensorSpec([None, *model.input_shape[1:]], tf.uint8, name="image")]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # Keras' tf2onnx patch probes np.object
        model.export(path, format="onnx", input_signature=signature, verbose=False)
    import onnx

    proto = onnx.load(path)
    proto.metadata_props.add(key=ONNX_SOURCE_KEY, value=keras_sha256)
    onnx.save(proto, path)


def onnx_session(path: str, threads: int = 0, file: str = ONNX_FILE):
    """An ONNX Runtime session on a bundle's model.onnx (or `file`: INT8_ONNX_FILE); needs no TensorFlow,
    also for a remote bundle (read through Beam's filesystems). `check_onnx_session` checks it against the
    bundle.

    Args:
        path: the bundle directory.
        threads: intra-op threads (0: ONNX Runtime's default, one per core).
        file: which ONNX file of the bundle.

    Raises:
        BundleError: no such file, or one that does not load.
    """
    import onnxruntime as ort
    from apache_beam.io.filesystems import FileSystems

    onnx_path = fs.join(path, file)
    if not FileSystems.exists(onnx_path):
        how = " --quantize --calibration CROPS" if file == INT8_ONNX_FILE else ""
        raise BundleError(f"model bundle {path} has no {file} (add it with `ocr export {path}{how}`)")
    with FileSystems.open(onnx_path) as fh:
        data = fh.read()
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    try:
        return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    except Exception as e:
        raise BundleError(f"model bundle {path}: {file} does not load ({type(e).__name__}: "
                          f"{str(e).splitlines()[0]}); run `ocr export {path}` again") from e


def check_onnx_session(session, path: str,
                       file: str = ONNX_FILE) -> tuple[OcrConfig, Charset, PreprocessSpec]:
    """Checks an `onnx_session` on `file` against its bundle (config and model.keras); returns
    `read_bundle_meta`."""
    cfg, charset, spec = read_bundle_meta(path)
    source = session.get_modelmeta().custom_metadata_map.get(ONNX_SOURCE_KEY)
    if source != file_sha256(fs.join(path, "model.keras")):
        raise BundleError(f"model bundle {path}: {file} was not converted from this model.keras "
                          f"(stale or foreign); run `ocr export {path}` again")
    (inp,), out = session.get_inputs(), session.get_outputs()[0]
    width = spec.width
    if spec.dynamic_width:  # a named (symbolic) or unknown width axis
        width = inp.shape[2] if not isinstance(inp.shape[2], int) else "W"
    if inp.type != "tensor(uint8)" or inp.shape[1:] != [spec.height, width, 1]:
        raise BundleError(f"model bundle {path}: {file} input {inp.type} {inp.shape} != preprocessing "
                          f"uint8 [B, {spec.height}, {'W' if spec.dynamic_width else spec.width}, 1]")
    if out.shape[-1] != charset.num_classes:
        raise BundleError(f"model bundle {path}: {file} has {out.shape[-1]} classes but the charset "
                          f"needs {charset.num_classes}")
    return cfg, charset, spec


def quantize_onnx(src: str, dest: str, calibration, batch: int = 32) -> None:
    """Writes the local ONNX file `src` to `dest` with int8 convolutions: static QDQ quantization (per-channel
    int8 weights, uint8 activations whose ranges come from `calibration`, uint8 images [N, H, W, 1] like the
    ones the model will read). Only the convolutions: ONNX Runtime's dynamic quantization made this network
    no faster (LSTM and MatMul int8: +2 %) or 1.6x slower (dynamic ConvInteger), while static int8
    convolutions run ~1.5x faster on AVX-512 VNNI CPUs; the LSTMs stay float32. The metadata (the
    model.keras it came from) is kept."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Batches(CalibrationDataReader):
        def __init__(self):
            self.start = 0

        def get_next(self):
            if self.start >= len(calibration):
                return None
            self.start += batch
            return {"image": calibration[self.start - batch:self.start]}

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # "Please consider pre-processing before quantization" (shape inference)
    try:
        quantize_static(src, dest, Batches(), quant_format=QuantFormat.QDQ, op_types_to_quantize=["Conv"],
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=True)
    finally:
        root.setLevel(level)


def export_saved_model(model, charset: Charset, spec: PreprocessSpec, path: str) -> None:
    """SavedModel whose `serving_default` takes encoded image bytes [N] and returns text and confidence."""
    import keras
    import tensorflow as tf

    from ocr_core.ctc import greedy_decode_tf
    from ocr_core.preprocess_tf import preprocess_image_bytes

    chars = tf.constant([""] + list(charset.characters))

    def serve_lines(images):
        """Dynamic width: one image at a time on its own canvas, so no result depends on its batch mates."""
        from ocr_core.preprocess_tf import canvas_table, pad_to_canvas_tf

        canvases = canvas_table(spec)

        def one(data):
            pixels = preprocess_image_bytes(data, spec)
            steps = tf.shape(pixels)[1] // spec.stride - 1
            probs = model(pad_to_canvas_tf(pixels, spec, canvases)[None, :, :, None], training=False)
            ids, conf = greedy_decode_tf(probs[:, :steps], steps[None])
            return tf.strings.reduce_join(tf.gather(chars, ids), axis=-1)[0], conf[0]

        text, conf = tf.map_fn(one, images, fn_output_signature=(tf.string, tf.float32))
        return {"text": text, "confidence": conf}

    def serve(images):
        pixels = tf.map_fn(lambda b: preprocess_image_bytes(b, spec), images,
                           fn_output_signature=tf.TensorSpec([spec.height, spec.width], tf.uint8))
        ids, conf = greedy_decode_tf(model(pixels[..., None], training=False))
        return {"text": tf.strings.reduce_join(tf.gather(chars, ids), axis=-1), "confidence": conf}

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(name="serving_default", fn=serve_lines if spec.dynamic_width else serve,
                         input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")])
    archive.write_out(path, verbose=False)
