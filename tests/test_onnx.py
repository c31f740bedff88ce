"""The ONNX Runtime engine: same probabilities and texts as TensorFlow, `ocr predict --engine onnx` end to end
(without TensorFlow in the worker), `ocr export` and bundles without model.onnx."""
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from apache_beam.runners.runner import PipelineState

pytest.importorskip("onnxruntime")

from ocr_core import predictions, synth  # noqa: E402
from ocr_core.bundle import INT8_ONNX_FILE, ONNX_FILE, SHIPPED_MODEL, BundleError, save_bundle  # noqa: E402
from ocr_core.charset import Charset  # noqa: E402
from ocr_core.config import load_config  # noqa: E402
from ocr_core.ctc import beam_search_decode, greedy_decode  # noqa: E402
from ocr_core.engine import check_bundle_engine, choose_engine  # noqa: E402
from ocr_core.engine import open_model as engine_open_model  # noqa: E402
from ocr_core.errors import UsageError
from ocr_core.image_bytes import read_image_bytes  # noqa: E402
from ocr_core.model import build_crnn  # noqa: E402
from ocr_core.preprocess import PreprocessSpec, preprocess_word_image  # noqa: E402
from pipelines import export, predict  # noqa: E402
from tests import images  # noqa: E402
from tests.conftest import shipped_model_name  # noqa: E402

IN_MEMORY = ["--workers", "1"]
N_IMAGES = 200


@pytest.fixture(scope="module")
def heldout(tmp_path_factory) -> Path:
    """labels.tsv of 200 synthetic words in held-out fonts."""
    return synth.generate(tmp_path_factory.mktemp("heldout"), count=N_IMAGES, seed=21, font_split="heldout",
                          workers=1, progress=False, version=2)


def engine_probs(engine: str, batch: np.ndarray) -> np.ndarray:
    model = engine_open_model(str(SHIPPED_MODEL), engine).load()
    return np.stack([p for i in range(0, len(batch), 64) for p in model(list(batch[i:i + 64, ..., 0]))])


def test_onnx_and_tf_engines_agree_on_probabilities_and_texts(heldout):
    spec = PreprocessSpec()
    paths = [heldout.parent / line.split("\t")[0] for line in heldout.read_text().splitlines()]
    batch = np.stack([preprocess_word_image(read_image_bytes(str(p), spec.max_bytes), spec)[0]
                      for p in paths])[..., None]
    assert len(batch) >= 200
    tf_probs, onnx_probs = engine_probs("tf", batch), engine_probs("onnx", batch)
    assert onnx_probs.dtype == np.float32 and onnx_probs.shape == tf_probs.shape
    assert np.abs(onnx_probs - tf_probs).max() < 1e-4
    charset = Charset()
    (tf_ids, tf_conf), (onnx_ids, onnx_conf) = greedy_decode(tf_probs), greedy_decode(onnx_probs)
    assert [charset.decode(i) for i in onnx_ids] == [charset.decode(i) for i in tf_ids]
    assert np.allclose(onnx_conf, tf_conf, atol=1e-4)
    for t, o in zip(tf_probs, onnx_probs):
        assert beam_search_decode(o, 6, 1)[0][0] == beam_search_decode(t, 6, 1)[0][0]


def read_table(out: Path) -> list[dict]:
    table = predictions.read_table(str(out))
    assert table.committed
    return table.rows


def test_predict_with_the_onnx_engine_gives_the_tf_engines_rows(heldout, tmp_path):
    tables = {}
    for engine in ("onnx", "tf"):
        out = tmp_path / engine
        assert predict.run(["--input", str(heldout), "--output", str(out), "--engine", engine,
                            *IN_MEMORY]).state == PipelineState.DONE
        tables[engine] = {r["id"]: r for r in read_table(out)}
    onnx, tf = tables["onnx"], tables["tf"]
    assert len(onnx) == N_IMAGES and onnx.keys() == tf.keys()
    assert {r["engine"] for r in onnx.values()} == {"onnx"} and {r["engine"] for r in tf.values()} == {"tf"}
    assert {r["model"] for r in onnx.values()} == {shipped_model_name()}
    assert {i: r["text"] for i, r in onnx.items()} == {i: r["text"] for i, r in tf.items()}
    assert max(abs(onnx[i]["confidence"] - tf[i]["confidence"]) for i in onnx) < 1e-4


def test_auto_engine_is_onnx_for_the_shipped_bundle_and_tf_without_model_onnx(tmp_path):
    assert choose_engine("auto", str(SHIPPED_MODEL)) == "onnx"
    assert choose_engine("auto", str(tmp_path)) == "tf"


@pytest.mark.slow
def test_onnx_worker_does_not_import_tensorflow(tmp_path, repo):
    for i, word in enumerate(["alpha", "Beta"]):
        images.write_word(tmp_path / f"w{i}.png", word)
    images.write(tmp_path / "bad.png", b"")
    out = tmp_path / "pred"
    code = ("import sys; from pipelines import predict; "
            f"predict.run(['--input', {str(tmp_path / '*.png')!r}, '--output', {str(out)!r}, '--engine', "
            "'onnx', '--workers', '1']); "
            "assert 'tensorflow' not in sys.modules, 'tensorflow was imported'")
    p = subprocess.run([sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    rows = read_table(out)
    assert len(rows) == 3 and sum(r["error"] is not None for r in rows) == 1


def save_demo_bundle(path: Path) -> Path:
    """Writes an untrained demo bundle (no model.onnx) to `path`."""
    cfg = load_config("demo")
    model = build_crnn(cfg.model, Charset(cfg.charset).num_classes)
    save_bundle(str(path), model, cfg, {}, saved_model=False)
    return path


@pytest.fixture(scope="module")
def plain_bundle(tmp_path_factory) -> Path:
    return save_demo_bundle(tmp_path_factory.mktemp("bundle") / "model")


def test_export_adds_model_onnx_and_a_retrained_bundle_drops_it(plain_bundle, tmp_path, capsys):
    bundle = tmp_path / "model"
    shutil.copytree(plain_bundle, bundle)
    assert export.run([str(bundle)]) == 0
    assert "max |Δp|" in capsys.readouterr().out
    assert (bundle / ONNX_FILE).stat().st_size > 0 and not list(bundle.glob(".ocr-export-*"))
    assert choose_engine("auto", str(bundle)) == "onnx"
    check_bundle_engine(str(bundle), "onnx")
    other = tmp_path / "other"
    save_demo_bundle(other)
    shutil.copy(other / "model.keras", bundle / "model.keras")  # model.onnx no longer belongs to it
    with pytest.raises(BundleError, match="not converted from this model.keras"):
        check_bundle_engine(str(bundle), "onnx")
    images.write_word(tmp_path / "w.png", "word")
    predict.run(["--model", str(bundle), "--input", str(tmp_path / "w.png"), "--output", str(tmp_path / "o"),
                 *IN_MEMORY])  # auto falls back to tf
    assert "using the tf engine" in capsys.readouterr().err
    assert [r["engine"] for r in read_table(tmp_path / "o")] == ["tf"]
    save_demo_bundle(bundle)  # a new model.keras: the old model.onnx would not match it
    assert not (bundle / ONNX_FILE).exists()


def test_export_quantize_writes_an_int8_model_that_reads_like_model_onnx(heldout, tmp_path, capsys):
    bundle = tmp_path / "model"
    shutil.copytree(SHIPPED_MODEL, bundle, ignore=shutil.ignore_patterns(INT8_ONNX_FILE, "saved_model"))
    calibration = ["--quantize", "--calibration", str(heldout), "--calibration-n", "64"]
    assert export.run([str(bundle), *calibration]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith(f"ocr export: wrote {bundle / INT8_ONNX_FILE} ("), line
    assert "of 64 calibration crops" in line, line
    assert (bundle / INT8_ONNX_FILE).stat().st_size < 0.7 * (bundle / ONNX_FILE).stat().st_size
    check_bundle_engine(str(bundle), "onnx-int8")
    tables = {}
    for engine in ("onnx", "onnx-int8"):
        out = tmp_path / engine
        predict.run(["--model", str(bundle), "--input", str(heldout), "--output", str(out), "--engine",
                     engine, *IN_MEMORY])
        tables[engine] = {r["id"]: r for r in read_table(out)}
    fp32, int8 = tables["onnx"], tables["onnx-int8"]
    assert len(int8) == N_IMAGES and {r["engine"] for r in int8.values()} == {"onnx-int8"}
    same = sum(int8[i]["text"] == fp32[i]["text"] for i in fp32) / N_IMAGES
    assert same >= 0.9, same  # int8 convolutions change a few readings, not most
    save_demo_bundle(bundle)  # a new model.keras: the int8 model would belong to the old one
    assert not (bundle / INT8_ONNX_FILE).exists()


def test_quantize_flags_and_a_missing_int8_model_are_one_line_errors(plain_bundle, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        export.run([str(plain_bundle), "--quantize"])
    assert e.value.code == 2 and "--quantize needs --calibration" in capsys.readouterr().err
    with pytest.raises(UsageError, match=r"^--calibration .*nothing.png: matched no file"):
        export.run([str(plain_bundle), "--quantize", "--calibration", str(tmp_path / "nothing.png")])
    images.write_word(tmp_path / "w.png", "word")
    with pytest.raises(UsageError, match=f"has no {INT8_ONNX_FILE}.*ocr export .* --quantize --calibration"):
        predict.run(["--model", str(plain_bundle), "--input", str(tmp_path / "w.png"), "--output",
                     str(tmp_path / "o"), "--engine", "onnx-int8", *IN_MEMORY])


def test_onnx_engine_without_model_onnx_fails_before_the_pipeline(plain_bundle, tmp_path):
    images.write_word(tmp_path / "w.png", "word")
    with pytest.raises(UsageError, match=f"has no {ONNX_FILE}.*ocr export"):
        predict.run(["--model", str(plain_bundle), "--input", str(tmp_path / "w.png"), "--output",
                     str(tmp_path / "o"), "--engine", "onnx", *IN_MEMORY])
    assert not (tmp_path / "o").exists()
