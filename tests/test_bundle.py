"""`ocr_core.bundle`: saving and loading a model bundle (round trip, serving signature, model.onnx) and its
clear errors for missing, partial or mismatched bundles."""
import importlib.util
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from ocr_core.bundle import ONNX_FILE, BundleError, load_bundle, read_bundle_meta, save_bundle
from ocr_core.charset import Charset
from ocr_core.config import load_config
from ocr_core.ctc import greedy_decode
from ocr_core.model import build_crnn
from ocr_core.preprocess import preprocess_word_image
from pipelines import export
from tests.images import mixed_format_images as _images


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory):
    cfg = load_config("demo")
    model = build_crnn(cfg.model, Charset(cfg.charset).num_classes)
    path = tmp_path_factory.mktemp("bundle") / "model"
    save_bundle(str(path), model, cfg, {"note": "untrained"})
    return path


def test_bundle_round_trip_and_serving_signature(bundle_dir):
    bundle = load_bundle(str(bundle_dir))  # safe_mode=True inside
    assert bundle.charset.num_classes == 63 and bundle.config.name == "demo"
    data = [d for _, d in _images()[:4]]
    pixels = np.stack([preprocess_word_image(d)[0] for d in data])[..., None]
    ids, conf = greedy_decode(bundle.model(pixels, training=False).numpy())
    served = tf.saved_model.load(str(bundle_dir / "saved_model")).signatures["serving_default"](
        image_bytes=tf.constant(data))
    assert [t.decode() for t in served["text"].numpy()] == [bundle.charset.decode(i) for i in ids]
    np.testing.assert_allclose(served["confidence"].numpy(), conf, rtol=1e-4)


def test_bundle_errors_are_clear(bundle_dir, tmp_path):
    with pytest.raises(BundleError, match="no such directory"):
        read_bundle_meta(str(tmp_path / "nope"))
    (tmp_path / "partial").mkdir()
    (tmp_path / "partial" / "charset.json").write_text(Charset().to_json())
    with pytest.raises(BundleError, match="incomplete: missing model.keras, config.yaml"):
        read_bundle_meta(str(tmp_path / "partial"))
    import shutil
    bad = tmp_path / "bad"
    shutil.copytree(bundle_dir, bad)
    (bad / "charset.json").write_text(Charset("abc").to_json())
    with pytest.raises(BundleError, match="does not match"):
        read_bundle_meta(str(bad))


def test_a_bundle_saved_with_a_looser_limit_gets_this_ocrs_limit(tmp_path):
    import shutil

    from ocr_core.bundle import SHIPPED_MODEL, read_bundle_meta
    from ocr_core.preprocess import PreprocessSpec

    shutil.copy(SHIPPED_MODEL / "charset.json", tmp_path / "charset.json")
    config = (SHIPPED_MODEL / "config.yaml").read_text()
    assert "max_pixels: 40000000" in config
    (tmp_path / "config.yaml").write_text(config.replace("max_pixels: 40000000", "max_pixels: 400000000"))
    (tmp_path / "model.keras").write_bytes(b"")  # read_bundle_meta does not load the model
    assert read_bundle_meta(str(tmp_path))[2] == read_bundle_meta(str(SHIPPED_MODEL))[2]
    assert read_bundle_meta(str(tmp_path))[2].max_pixels == PreprocessSpec().max_pixels


@pytest.mark.skipif(importlib.util.find_spec("onnxruntime") is None, reason="needs onnxruntime")
def test_save_bundle_writes_model_onnx_or_says_why_not(tmp_path, monkeypatch):
    from ocr_core import bundle as bundle_module

    cfg = load_config("demo")
    model = build_crnn(cfg.model, Charset(cfg.charset).num_classes)
    assert save_bundle(str(tmp_path / "a"), model, cfg, {}, saved_model=False, onnx=True) is None
    assert export.check_onnx(model, export.fp32_session(str(tmp_path / "a" / ONNX_FILE))) < 1e-4

    def broken(model, path, keras_sha256):
        Path(path).write_bytes(b"half")
        raise ValueError("conversion failed\nmore lines")

    monkeypatch.setattr(bundle_module, "export_onnx", broken)
    note = save_bundle(str(tmp_path / "b"), model, cfg, {}, saved_model=False, onnx=True)
    assert note == "ValueError: conversion failed"  # what `ocr train` prints; the bundle is still written
    assert (tmp_path / "b" / "model.keras").exists() and not (tmp_path / "b" / ONNX_FILE).exists()
