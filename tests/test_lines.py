"""Text lines and any aspect ratio (docs/lines.md): the dynamic-width preprocessing contract, what users give
it (very wide, very tall, small crops, long words), and fixed-width contracts left exactly as they were."""
import numpy as np
import pytest

from ocr_core.errors import InputError
from ocr_core.preprocess import (
    PreprocessSpec,
    canvas_width,
    pad_to_canvas,
    preprocess_word_image,
    spec_for_model,
)
from tests import images

LINES = PreprocessSpec(height=32, width=1024, dynamic_width=True)


def test_fixed_width_contract_is_unchanged():
    d = PreprocessSpec().to_dict()
    assert "dynamic_width" not in d and "min_width" not in d
    assert PreprocessSpec.from_dict(d) == PreprocessSpec()
    img, cw = preprocess_word_image(images.encode(images.word_image("Hello")))
    assert img.shape == (32, 128) and 0 < cw < 128
    tall = images.encode(np.full((200, 20), 200, np.uint8))
    assert preprocess_word_image(tall)[0].shape == (32, 128)  # no vertical_text for word models


def test_dynamic_width_keeps_the_aspect_ratio_rounded_up_to_the_stride():
    assert PreprocessSpec.from_dict(LINES.to_dict()) == LINES
    data = images.encode(images.word_image("a longer line of text", height=40))
    img, cw = preprocess_word_image(data, LINES)
    h, w = images.word_image("a longer line of text", height=40).shape
    assert cw == (2 * w * 32 + h) // (2 * h) and img.shape == (32, -(-cw // 4) * 4)
    assert img.shape[1] % LINES.stride == 0


@pytest.mark.parametrize("size", [(100, 200), (200, 100), (12, 30), (32, 12)])
def test_small_and_odd_crops_get_at_least_min_width(size):
    h, w = size
    img, cw = preprocess_word_image(images.encode(np.full((h, w), 180, np.uint8)), LINES)
    assert img.shape[0] == 32 and img.shape[1] >= LINES.min_width and img.shape[1] % 4 == 0
    assert cw == max(1, (2 * w * 32 + h) // (2 * h))


def test_a_2000_px_line_is_scaled_to_the_max_width():
    line = np.full((40, 2000), 220, np.uint8)
    line[10:30, ::50] = 20
    img, cw = preprocess_word_image(images.encode(line), LINES)
    assert img.shape == (32, 1024) and cw == 1024  # squeezed horizontally (1600 -> 1024), documented


def test_a_vertical_word_is_a_clear_error():
    with pytest.raises(InputError) as e:
        preprocess_word_image(images.encode(np.full((400, 40), 200, np.uint8)), LINES)
    assert e.value.reason == "vertical_text" and "top to bottom" in e.value.detail
    # a tight crop of one narrow character is not refused
    assert preprocess_word_image(images.encode(np.full((50, 20), 200, np.uint8)), LINES)[0].shape[0] == 32


def test_a_wide_photo_is_not_refused_for_the_resize_matrix():
    """4,032 px wide: over the fixed rule's width x W cell limit, yet its resize matrix is small."""
    data = images.encode(np.full((3024, 4032), 200, np.uint8), ".jpg")
    assert preprocess_word_image(data, LINES)[0].shape == (32, 44)


def test_long_words_keep_their_width():
    word = "Pneumonoultramicroscopicsilicovolcanoconiosis"
    img, cw = preprocess_word_image(images.encode(images.word_image(word)), LINES)
    fixed, fixed_cw = preprocess_word_image(images.encode(images.word_image(word)))
    assert fixed_cw == 128 and cw > 500 and img.shape[1] == -(-cw // 4) * 4


def test_canvas_depends_on_the_image_width_only():
    img = preprocess_word_image(images.encode(images.word_image("canvas")), LINES)[0]
    out = pad_to_canvas(img, LINES)
    assert out.shape == (32, canvas_width(img.shape[1], LINES))
    assert out.shape[1] - img.shape[1] <= max(8, out.shape[1] / 8)
    np.testing.assert_array_equal(out[:, :img.shape[1]], img)


def test_a_dynamic_spec_must_fit_its_stride():
    with pytest.raises(ValueError, match="multiples of stride"):
        PreprocessSpec(32, 1022, dynamic_width=True)


# --- end to end: build, train a few steps, export ONNX, predict through the engines (slow: they train) -----

PHRASES = ["cat", "a dog", "the red house", "blue sky at night", "Hello World 42", "sun", "moon and star",
           "fish", "a long line of text to read"]


def build_lines(root, monkeypatch, n: int = 48):
    """Word and line images of many widths -> labels.tsv -> `ocr build-dataset` with the lines contract.

    `ocr build-dataset --for-config lines` builds for that config's contract (and charset)."""
    from ocr_core.config import load_config
    from ocr_core.dataset import Dataset
    from pipelines import build_dataset

    cfg = load_config("lines")
    rows = []
    for i in range(n):
        text = PHRASES[i % len(PHRASES)]
        rel = f"img/{i:04d}.png"
        images.write_word(root / "raw" / rel, text, height=36 + 4 * (i % 5))
        rows.append(f"{rel}\t{text}")
    (root / "raw" / "labels.tsv").write_text("\n".join(rows) + "\n")
    out = root / "ds"
    build_dataset.run(["--input", str(root / "raw" / "labels.tsv"), "--output", str(out), "--workers", "1",
                       "--for-config", "lines", "--val-fraction", "0.2", "--shards", "2"])
    assert Dataset.load(str(out)).spec == spec_for_model(cfg.model)
    return out


@pytest.fixture(scope="module")
def lines_bundle(tmp_path_factory):
    from pipelines import export, train

    root = tmp_path_factory.mktemp("lines")
    with pytest.MonkeyPatch.context() as mp:
        data = build_lines(root, mp)
    out = root / "model"
    assert train.run(["--data", str(data), "--config", "lines", "--output", str(out), "--epochs", "1",
                      "--max-steps-per-epoch", "3", "--batch-size", "8", "--progress-seconds", "0"]) == 0
    (out / "model.onnx").unlink(missing_ok=True)
    assert export.run([str(out)]) == 0  # model.onnx with a dynamic width axis, checked at two widths
    return data, out


@pytest.mark.slow
def test_lines_dataset_keeps_each_images_width(lines_bundle):
    from ocr_core.dataset import Dataset
    from ocr_core.records import WordRecord, iter_tfrecords

    ds = Dataset.load(lines_bundle[0])
    assert ds.spec.dynamic_width and ds.spec.width == 1024
    widths = set()
    for shard in ds.shards("all"):
        with open(shard, "rb") as fh:
            for data in iter_tfrecords(fh):
                r = WordRecord.decode(data)
                assert r.image.shape[1] == max(16, -(-r.content_width // 4) * 4)
                widths.add(r.image.shape[1])
    assert len(widths) > 4


@pytest.mark.slow
def test_lines_batches_are_bucketed_by_width_with_their_own_time_steps(lines_bundle):
    from ocr_core.data import make_dataset
    from ocr_core.dataset import Dataset

    ds = Dataset.load(lines_bundle[0])
    seen = 0
    for pixels, labels, steps in make_dataset(ds.shards("train"), 4, max_label_len=255, deterministic=True,
                                              spec=ds.spec):
        w = pixels.shape[2]
        assert pixels.shape[0] == labels.shape[0] == steps.shape[0] and w % 8 == 0
        assert all(0 < s <= w // 4 - 1 for s in steps.numpy())
        seen += pixels.shape[0]
    assert seen == ds.count("train")


@pytest.mark.slow
def test_lines_bundle_says_its_contract_and_tf_and_onnx_agree_at_any_width(lines_bundle):
    import yaml

    from ocr_core.engine import open_model

    _, bundle = lines_bundle
    meta = yaml.safe_load((bundle / "config.yaml").read_text())
    assert meta["preprocess"]["dynamic_width"] and meta["input"]["shape"] == [32, None, 1]
    assert meta["config"]["model"]["dynamic_width"]
    crops = [images.encode(images.word_image(t, height=h)) for t, h in
             [("a", 30), ("word", 40), ("a whole line of text", 48), ("x" * 60, 36)]]
    crops.append(images.encode(np.full((40, 2000), 220, np.uint8)))
    results = {}
    for engine in ("tf", "onnx"):
        ref = open_model(str(bundle), engine)
        assert ref.engine == engine and ref.spec.dynamic_width
        prepared = [ref.prepare(c) for c in crops]
        forward = ref.load()
        probs = forward(prepared)
        for p, im in zip(probs, prepared):
            assert p.shape == (im.shape[1] // 4 - 1, len(ref.characters) + 1)
        alone = [forward([im])[0] for im in prepared]  # no result depends on its batch mates
        for a, b in zip(alone, probs):
            np.testing.assert_allclose(a, b, atol=1e-5)
        results[engine] = probs
    for a, b in zip(results["tf"], results["onnx"]):
        np.testing.assert_allclose(a, b, atol=1e-4)


@pytest.mark.slow
def test_lines_saved_model_reads_like_the_engine(lines_bundle):
    import tensorflow as tf

    from ocr_core.ctc import greedy_decode
    from ocr_core.engine import open_model

    _, bundle = lines_bundle
    crops = [images.encode(images.word_image(t)) for t in ("a", "two words", "three words here")]
    served = tf.saved_model.load(str(bundle / "saved_model")).signatures["serving_default"](
        image_bytes=tf.constant(crops))
    ref = open_model(str(bundle), "tf")
    forward = ref.load()
    for i, c in enumerate(crops):
        probs = forward([ref.prepare(c)])[0]
        ids, conf = greedy_decode(probs[None])
        assert served["text"].numpy()[i].decode() == "".join(ref.characters[j - 1] for j in ids[0])
        np.testing.assert_allclose(served["confidence"].numpy()[i], conf[0], rtol=1e-3, atol=1e-6)


@pytest.fixture(scope="module")
def word_bundle(tmp_path_factory):
    """A fixed-width 32 x 128 word bundle of the shipped architecture and word charset (configs/default.yaml,
    untrained: what matters here is the contract, not what it reads), with model.onnx."""
    from ocr_core.bundle import save_bundle
    from ocr_core.charset import Charset
    from ocr_core.config import load_config
    from ocr_core.model import build_crnn

    cfg = load_config("default")
    path = tmp_path_factory.mktemp("word") / "model"
    model = build_crnn(cfg.model, Charset(cfg.charset).num_classes)
    save_bundle(str(path), model, cfg, {}, saved_model=False, onnx=True)
    return path


def test_the_shipped_bundle_reads_words_and_lines_at_their_own_width():
    """The shipped model is a line model (docs/lines.md): each crop keeps its aspect ratio, and the space and
    punctuation are classes."""
    from ocr_core.bundle import SHIPPED_MODEL, read_bundle_meta
    from ocr_core.engine import open_model

    cfg, charset, spec = read_bundle_meta(str(SHIPPED_MODEL))
    assert spec.dynamic_width and spec.width == 32 * spec.height and cfg.model.dynamic_width  # up to 32:1
    assert " " in charset.characters and "." in charset.characters
    for engine in ("tf", "onnx"):
        ref = open_model(str(SHIPPED_MODEL), engine)
        crops = [ref.prepare(images.encode(images.word_image(w))) for w in ("Hello", "a much longer word")]
        assert crops[0].shape[0] == spec.height and crops[0].shape[1] < crops[1].shape[1]
        want = [(c.shape[1] // 4 - 1, charset.num_classes) for c in crops]
        assert [p.shape for p in ref.load()(crops)] == want


def test_a_word_model_can_start_a_dynamic_width_model_of_its_charset(word_bundle):
    """--init-from: no weight depends on the width, so a word model's weights start a line model."""
    import dataclasses

    from ocr_core.config import load_config
    from ocr_core.model import build_crnn
    from ocr_core.training import set_weights_by_name
    from pipelines.train import initial_weights

    cfg = load_config("default")
    cfg.model = dataclasses.replace(cfg.model, width=1024, dynamic_width=True)
    set_weights_by_name(build_crnn(cfg.model, len(cfg.charset) + 1), initial_weights(str(word_bundle), cfg))


def test_a_32_px_model_starts_a_48_px_one_with_every_weight(word_bundle):
    """--init-from a taller input: model.height 48 with pool 6 at 3 x 1 brings the height to the BiLSTMs'
    one row again, so every weight keeps its shape and is copied; pools that do not are refused."""
    import dataclasses

    from ocr_core.bundle import load_bundle
    from ocr_core.config import load_config
    from ocr_core.model import build_crnn
    from ocr_core.training import set_weights_by_name
    from pipelines.train import initial_weights

    cfg = load_config("default")
    cfg.model = dataclasses.replace(cfg.model, height=48, pools={**cfg.model.pools, 6: [3, 1]})
    tall = build_crnn(cfg.model, len(cfg.charset) + 1)
    weights = initial_weights(str(word_bundle), cfg)
    set_weights_by_name(tall, weights)
    word = load_bundle(str(word_bundle)).model
    assert {layer.name for layer in tall.layers if layer.weights} == set(weights)
    for layer in word.layers:
        for have, got in zip(layer.get_weights(), tall.get_layer(layer.name).get_weights()):
            np.testing.assert_array_equal(have, got)
    crops = np.full((1, 48, 128, 1), 255, np.uint8)
    assert tall.predict(crops, verbose=0).shape == (1, 31, len(cfg.charset) + 1)
    cfg.model = dataclasses.replace(cfg.model, pools={**cfg.model.pools, 6: [2, 1]})  # 48 px to 2 rows
    with pytest.raises(ValueError, match="does not reduce to 1"):
        build_crnn(cfg.model, len(cfg.charset) + 1)


def test_a_word_model_grows_into_a_line_model_that_first_reads_what_it_read(word_bundle):
    """--init-from with a charset that adds characters (lines.yaml: the space, punctuation): known characters
    keep their classifier columns, new ones start (almost) never read, so the grown model reads what the word
    model reads (both at the line contract); a charset that drops a character is still refused."""
    import dataclasses

    from ocr_core.bundle import load_bundle
    from ocr_core.config import load_config
    from ocr_core.model import build_crnn
    from ocr_core.training import set_weights_by_name
    from pipelines.train import initial_weights

    cfg = load_config("lines")
    word = load_bundle(str(word_bundle))
    known = len(word.charset.characters) + 1
    as_lines = build_crnn(cfg.model, known)  # the word model itself, at the dynamic width
    set_weights_by_name(as_lines, {layer.name: layer.get_weights() for layer in word.model.layers
                                   if layer.weights})
    grown = build_crnn(cfg.model, len(cfg.charset) + 1)
    set_weights_by_name(grown, initial_weights(str(word_bundle), cfg))
    crops = np.stack([preprocess_word_image(images.encode(images.word_image("Hello")), LINES)[0]])[..., None]
    before, after = as_lines.predict(crops, verbose=0), grown.predict(crops, verbose=0)
    np.testing.assert_array_equal(after[..., :known].argmax(-1), before.argmax(-1))
    assert after[..., known:].max() < 0.05 and after.argmax(-1).max() < known  # the new classes stay quiet
    narrower = dataclasses.replace(cfg, charset=cfg.charset.replace("z", ""))
    with pytest.raises(ValueError, match="architecture/charset"):
        initial_weights(str(word_bundle), narrower)


@pytest.mark.slow
def test_predict_and_recognizer_read_lines_of_any_width_and_vertical_crops_turned(lines_bundle, tmp_path):
    """The jobs need no option: the bundle's contract selects width grouping; a crop far taller than wide is
    read turned."""
    from apache_beam.runners.runner import PipelineState

    from ocr_core import predictions
    from ocr_core.recognizer import Recognizer
    from pipelines import predict

    _, bundle = lines_bundle
    d = tmp_path / "in"
    for i, text in enumerate(["a", "two words", "a whole line of text here", "Pneumonoultramicroscopic"]):
        images.write_word(d / f"ok{i}.png", text, height=30 + 6 * i)
    images.write(d / "line2000.png", images.encode(np.full((40, 2000), 220, np.uint8)))
    images.write(d / "vertical.png", images.encode(np.full((400, 40), 220, np.uint8)))
    out = tmp_path / "pred"
    assert predict.run(["--model", str(bundle), "--input", str(d / "*"), "--output", str(out),
                        "--workers", "1", "--engine", "onnx"]).state == PipelineState.DONE
    rows = {r["source"].rsplit("/", 1)[-1]: r for r in predictions.read_table(str(out)).rows}
    # 10 times as tall as wide: read turned a quarter (a book's spine), no longer refused (see test_engine.py)
    assert len(rows) == 6 and all(r["error"] is None and 0 <= r["confidence"] <= 1 for r in rows.values())
    reader = Recognizer(bundle, engine="onnx", batch_size=3)
    files = sorted(p for p in d.iterdir() if p.name != "vertical.png")
    together = reader.read([str(p) for p in files])
    assert [(r.text, r.confidence) for r in together] == [(rows[p.name]["text"], pytest.approx(
        rows[p.name]["confidence"], rel=1e-4)) for p in files]
    alone = [reader.read(str(p))[0] for p in files]
    assert [r.text for r in alone] == [r.text for r in together]


@pytest.mark.slow
def test_lines_bundle_quantizes_on_crops_of_many_widths(lines_bundle, tmp_path):
    """`ocr export --quantize`: calibration crops of a dynamic-width bundle share one canvas; the int8
    engine then reads crops of any width."""
    import shutil

    from ocr_core.engine import open_model
    from pipelines import export

    data, bundle = lines_bundle
    copy = tmp_path / "model"
    shutil.copytree(bundle, copy)
    assert export.run([str(copy), "--quantize", "--calibration", str(data.parent / "raw" / "img"),
                       "--calibration-n", "16"]) == 0
    ref = open_model(str(copy), "onnx-int8")
    crops = [ref.prepare(images.encode(images.word_image(t))) for t in ("a", "two words", "a longer line")]
    assert [p.shape[0] for p in ref.load()(crops)] == [c.shape[1] // 4 - 1 for c in crops]


def test_build_for_a_config_contract_and_append_keeps_it(tmp_path):
    from ocr_core.config import load_config
    from ocr_core.dataset import Dataset
    from pipelines import build_dataset
    from pipelines.build_options import BuildError

    raw = tmp_path / "raw"
    for i, text in enumerate(["a short line", "7 Main Street", "open 9-5"]):
        images.write_word(raw / f"{i}.png", text, height=40)
    (raw / "one.tsv").write_text("0.png\ta short line\n1.png\t7 Main Street\n")
    (raw / "two.tsv").write_text("0.png\ta short line\n1.png\t7 Main Street\n2.png\topen 9-5\n")
    out = tmp_path / "ds"
    common = ["--output", str(out), "--workers", "1", "--val-fraction", "0"]
    with pytest.raises(BuildError, match="--image-size differs"):
        build_dataset.run(["--input", str(raw / "one.tsv"), *common, "--for-config", "lines",
                           "--image-size", "32x128"])
    build_dataset.run(["--input", str(raw / "one.tsv"), *common, "--for-config", "lines"])
    want = spec_for_model(load_config("lines").model)
    assert Dataset.load(str(out)).spec == want and want.dynamic_width
    build_dataset.run(["--input", str(raw / "two.tsv"), *common, "--append"])  # the dataset's contract kept
    ds = Dataset.load(str(out))
    assert ds.spec == want and ds.counts["train"] == 3


def test_pixels_of_another_contract_are_refused_in_words(word_bundle):
    """A word model given a line dataset's stored pixels says so instead of failing inside NumPy."""
    from ocr_core.engine import open_model

    forward = open_model(str(word_bundle), "onnx").load()
    line = preprocess_word_image(images.encode(images.word_image("a line of text")), LINES)[0]
    with pytest.raises(ValueError, match=r"do not fit the model's preprocessing \(32 x 128\)"):
        forward([line])


def test_a_new_mark_starts_as_a_quieter_copy_of_its_lookalike():
    """Grown into a charset with $ (and a space), the classifier gives $ the column of S with a bias
    LOOKALIKE_MARGIN lower, so wherever the bundle read S it still does but $ is 1/20 as likely instead of
    never; a new character without a lookalike (the space) starts quiet, and known columns are kept."""
    from pipelines.train import LOOKALIKE_MARGIN, grown_classifier

    rng = np.random.default_rng(0)
    have, want = "abS", "ab S$"
    kernel, bias = rng.normal(size=(8, 4)).astype(np.float32), rng.normal(size=4).astype(np.float32)
    new_kernel, new_bias = grown_classifier(kernel, bias, have, want)
    col = {c: want.index(c) + 1 for c in want}
    np.testing.assert_array_equal(new_kernel[:, [0, col["a"], col["b"], col["S"]]], kernel)
    np.testing.assert_array_equal(new_kernel[:, col["$"]], kernel[:, 3])
    assert new_bias[col["$"]] == pytest.approx(bias[3] - LOOKALIKE_MARGIN)
    assert not new_kernel[:, col[" "]].any() and new_bias[col[" "]] == pytest.approx(bias[1:].min() - 4)
    features = rng.normal(size=(50, 8)).astype(np.float32)
    before, after = features @ kernel + bias, features @ new_kernel + new_bias
    known = [0, col["a"], col["b"], col["S"]]
    np.testing.assert_array_equal(after.argmax(-1), [known[i] for i in before.argmax(-1)])
