"""`ocr_core.model`: the CRNN's structure for each config, its input/output contract, and training through
its compute_loss (CTC, bundles and TF preprocessing have their own test files)."""
import numpy as np
import pytest
import tensorflow as tf

from ocr_core.charset import Charset
from ocr_core.config import load_config
from ocr_core.model import build_crnn


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


def test_residual_blocks_grow_a_trained_model_without_changing_what_it_computes():
    """A config with residual blocks, given the smaller model's weights by layer name, first computes exactly
    what the smaller model computes (each block's last BN starts at zero scale), and its blocks do train."""
    import dataclasses

    from ocr_core.ctc import ctc_loss
    from ocr_core.training import set_weights_by_name

    cfg = load_config("demo").model
    base = build_crnn(cfg, 63)
    images = np.random.default_rng(0).integers(0, 256, (4, 32, 128, 1), dtype=np.uint8)
    labels = tf.constant([[1, 2, 3, 0]] * 4, tf.int32)
    base.compile(optimizer="adam")
    base.fit(images, labels, epochs=2, verbose=0)  # moving statistics and weights away from their init
    grown = build_crnn(dataclasses.replace(cfg, residual_blocks={2: 1, 4: 2}), 63)
    adds = [n.name for n in grown.layers if n.name.endswith("_add")]
    assert adds == ["res2_1_add", "res4_1_add", "res4_2_add"]
    set_weights_by_name(grown, {layer.name: layer.get_weights() for layer in base.layers if layer.weights})
    np.testing.assert_allclose(grown.predict(images, verbose=0), base.predict(images, verbose=0), atol=1e-6)

    block = grown.get_layer("res4_1_bn_b")
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(ctc_loss(labels, grown(images, training=True)))
    grad = tape.gradient(loss, block.gamma)
    assert float(tf.reduce_max(tf.abs(grad))) > 0, "a zero-scale block would never learn"

    wrong = build_crnn(dataclasses.replace(cfg, convs=[c * 2 for c in cfg.convs]), 63)
    with pytest.raises(ValueError, match="layer 'conv1' do not fit"):
        set_weights_by_name(wrong, {n.name: n.get_weights() for n in base.layers if n.weights})
