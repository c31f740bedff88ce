"""Model structure, CTC loss/decoders, TF-graph preprocessing parity and the model bundle."""
import io

import cv2
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from ocr_core.bundle import BundleError, load_bundle, read_bundle_meta, save_bundle
from ocr_core.charset import Charset
from ocr_core.config import load_config
from ocr_core.ctc import beam_search_decode, ctc_loss, greedy_decode, greedy_decode_tf
from ocr_core.model import build_crnn
from ocr_core.preprocess import preprocess_word_image
from ocr_core.preprocess_tf import preprocess_image_bytes


def test_seed_config_is_exactly_the_blog_network():
    cfg = load_config("seed")
    model = build_crnn(cfg.model, Charset(cfg.charset).num_classes)
    assert model.count_params() == 6_619_711
    convs = [layer for layer in model.layers if isinstance(layer, tf.keras.layers.Conv2D)]
    assert [c.filters for c in convs] == [64, 128, 256, 256, 512, 512, 512]
    assert [c.kernel_size for c in convs] == [(3, 3)] * 6 + [(2, 2)]
    assert [c.padding for c in convs] == ["same"] * 6 + ["valid"]
    pools = [layer.pool_size for layer in model.layers if isinstance(layer, tf.keras.layers.MaxPooling2D)]
    assert pools == [(2, 2), (2, 2), (2, 1), (2, 1)]
    bns = [layer.name for layer in model.layers if isinstance(layer, tf.keras.layers.BatchNormalization)]
    assert bns == ["bn5", "bn6"]
    lstms = [layer for layer in model.layers if isinstance(layer, tf.keras.layers.Bidirectional)]
    assert [(b.forward_layer.units, b.forward_layer.dropout) for b in lstms] == [(128, 0.2), (128, 0.2)]
    assert model.input_shape == (None, 32, 128, 1) and model.output_shape == (None, 31, 63)
    assert not any(isinstance(layer, tf.keras.layers.Lambda) for layer in model.layers)


@pytest.mark.parametrize("name", ["small", "demo"])
def test_variants_keep_the_contract(name):
    cfg = load_config(name)
    model = build_crnn(cfg.model, 63)
    assert model.input_shape == (None, 32, 128, 1) and model.output_shape == (None, 31, 63)
    assert cfg.model.time_steps == 31


def _peaked(seq, steps=31, classes=63, p=0.9):
    probs = np.full((steps, classes), (1 - p) / (classes - 1), np.float32)
    for t, c in enumerate(seq):
        probs[t, c] = p
    return probs


def test_greedy_merges_repeats_and_drops_blanks():
    path = [0, 5, 5, 0, 5, 7, 7, 0] + [0] * 23
    ids, conf = greedy_decode(_peaked(path)[None])
    assert ids == [[5, 5, 7]]
    assert 0 < conf[0] <= 1 and np.isclose(conf[0], 0.9 ** 31, rtol=1e-4)



def test_tensorflow_greedy_decoder_agrees_with_numpy():
    """Training and serving decode with greedy_decode_tf, predict's workers with greedy_decode: the same."""
    rng = np.random.default_rng(0)
    batch, steps, classes = 64, 31, 63
    logits = rng.normal(size=(batch, steps, classes)).astype(np.float32)
    for b in range(batch):  # peaked paths over few classes: repeats, blanks between and around them
        if b % 4:
            path = rng.choice([0, 0, 1, 2, 7, 62], size=steps)
            logits[b, np.arange(steps), path] += rng.uniform(0, 6, steps).astype(np.float32)
    logits[0, :, 0] += 20  # all blank
    logits[1] = 0
    logits[1, :, 5] = 10  # one class throughout: a single character
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    ids, conf = greedy_decode(probs)
    ids_tf, conf_tf = greedy_decode_tf(tf.constant(probs))
    assert ids_tf.to_list() == ids and ids[0] == [] and ids[1] == [5]
    assert any(len(i) > 5 for i in ids) and any(i[j] == i[j + 1] for i in ids for j in range(len(i) - 1))
    np.testing.assert_allclose(conf_tf.numpy(), conf, rtol=1e-5)
    assert conf_tf.dtype == tf.float32 and ids_tf.dtype == tf.int32
    empty_ids, empty_conf = greedy_decode_tf(tf.zeros([0, steps, classes]))
    assert empty_ids.to_list() == [] and empty_conf.shape == (0,)

def test_beam_search_agrees_with_greedy_on_peaked_input_and_ranks_candidates():
    probs = _peaked([0, 3, 0, 4, 4, 0] + [0] * 25)
    (best, p_best), *rest = beam_search_decode(probs, beam_width=8, top_k=3)
    assert best == [3, 4] and 0 < p_best <= 1
    assert len(rest) == 2 and all(p <= p_best for _, p in rest)
    # the prefix probability sums alignments, so it is at least the best path's
    assert p_best >= greedy_decode(probs[None])[1][0]


def test_beam_search_finds_text_greedy_misses():
    # Two steps: greedy path is blank,blank (0.4*0.4) but "a" has 0.3*0.3 + 0.3*0.4*2 = 0.33 in total.
    probs = np.array([[0.4, 0.3, 0.3], [0.4, 0.3, 0.3]], np.float32)
    assert greedy_decode(probs[None])[0] == [[]]
    assert beam_search_decode(probs, beam_width=5)[0][0] in ([1], [2])


def test_ctc_loss_prefers_the_right_label():
    probs = tf.constant(_peaked([0, 3, 0, 4] + [0] * 27)[None])
    right = ctc_loss(tf.constant([[3, 4, 0, 0]]), probs)
    wrong = ctc_loss(tf.constant([[4, 3, 0, 0]]), probs)
    assert np.isfinite(right.numpy()).all() and right.numpy()[0] < wrong.numpy()[0]


def _encode(arr, ext):
    ok, buf = cv2.imencode(ext, arr)
    assert ok
    return buf.tobytes()


def _images():
    rng = np.random.default_rng(0)
    out = []
    for h, w in [(40, 200), (12, 30), (90, 1000), (32, 128), (64, 40)]:
        rgb = rng.integers(120, 255, (h, w, 3), dtype=np.uint8)
        cv2.putText(rgb, "Word", (1, h - 3), cv2.FONT_HERSHEY_SIMPLEX, h / 40, (20, 30, 10), max(1, h // 20))
        out += [("png8", _encode(rgb, ".png")), ("gray", _encode(rgb[..., 0], ".png")),
                ("png16", _encode(rgb.astype(np.uint16) * 257 + 100, ".png")),
                ("rgba", _encode(np.dstack([rgb, rng.integers(0, 255, (h, w), dtype=np.uint8)]), ".png"))]
        pal = io.BytesIO()
        Image.fromarray(rgb[..., ::-1]).convert("P", palette=Image.ADAPTIVE, colors=32).save(pal, "PNG")
        out.append(("palette", pal.getvalue()))
    return out


def test_serving_graph_preprocessing_gives_the_same_pixels_as_numpy():
    for kind, data in _images():
        want, _ = preprocess_word_image(data)
        got = preprocess_image_bytes(tf.constant(data)).numpy()
        assert got.shape == want.shape == (32, 128)
        np.testing.assert_array_equal(got, want, err_msg=kind)


def test_serving_graph_jpeg_gives_the_same_pixels():
    rgb = np.full((48, 160, 3), 230, np.uint8)
    cv2.putText(rgb, "Jpeg", (4, 38), cv2.FONT_HERSHEY_SIMPLEX, 1.2, (10, 10, 10), 3)
    data = _encode(rgb, ".jpg")
    want, _ = preprocess_word_image(data)
    got = preprocess_image_bytes(tf.constant(data)).numpy()
    np.testing.assert_array_equal(got, want)


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


def test_fit_takes_images_and_labels_directly():
    """CTC lives in the model's compute_loss: fit((images, labels)) with no dummy targets."""
    cfg = load_config("demo")
    model = build_crnn(cfg.model, 63)
    model.compile(optimizer="adam")
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (16, 32, 128, 1), dtype=np.uint8)
    labels = np.zeros((16, 31), np.int32)
    labels[:, :5] = rng.integers(1, 63, (16, 5))
    history = model.fit(images, labels, batch_size=8, epochs=3, verbose=0)
    losses = history.history["loss"]
    assert all(np.isfinite(losses)) and losses[-1] < losses[0]
