"""CRNN builders (CNN + BiLSTM + softmax over charset+blank) and the CTC-aware Keras model class.

The model takes uint8 images exactly as stored (B x H x W x 1) and normalises them itself, so training,
evaluation and serving cannot disagree about pixel scaling.
"""
from __future__ import annotations

import keras
import tensorflow as tf

from ocr_core.config import ModelConfig
from ocr_core.ctc import ctc_loss


@keras.saving.register_keras_serializable(package="ocr")
class CRNN(keras.Model):
    """Functional CRNN whose training step computes CTC from (images, padded label ids).

    `fit(dataset)` with batches `(images uint8 [B,H,W,1], labels int32 [B,L] padded with 0)` just works:
    no dummy targets and no second four-input training model.
    """

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        per_example = ctc_loss(y, y_pred)
        return tf.reduce_mean(per_example)


def build_crnn(cfg: ModelConfig, num_classes: int, name: str = "crnn") -> CRNN:
    """Builds the CRNN described by `cfg` (defaults: exactly the seed blog's network).

    Args:
        cfg: architecture.
        num_classes: charset size + 1 (blank at 0).
        name: Keras model name.

    Returns:
        A `CRNN` mapping uint8 [B, H, W, 1] to per-time-step class probabilities [B, T, num_classes]; with
        `cfg.dynamic_width` W is free (input shape (H, None, 1)) and T = W / cfg.stride - 1.
    """
    width = None if cfg.dynamic_width else cfg.width
    inputs = keras.Input(shape=(cfg.height, width, 1), dtype="uint8", name="image")
    x = keras.layers.Rescaling(1.0 / 255.0, name="normalise")(inputs)
    for i, filters in enumerate(cfg.convs, start=1):
        x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"conv{i}")(x)
        if i in cfg.batchnorm_after:
            x = keras.layers.BatchNormalization(momentum=cfg.batchnorm_momentum, name=f"bn{i}")(x)
        if i in cfg.pools:
            x = keras.layers.MaxPooling2D(pool_size=tuple(cfg.pools[i]), name=f"pool{i}")(x)
        for k in range(1, cfg.residual_blocks.get(i, 0) + 1):
            x = _residual_block(x, filters, f"res{i}_{k}", cfg.batchnorm_momentum)
    x = keras.layers.Conv2D(cfg.final_conv, 2, padding="valid", activation="relu",
                            name=f"conv{len(cfg.convs) + 1}")(x)
    if x.shape[1] != 1:
        raise ValueError(f"height {cfg.height} does not reduce to 1 after the convolutions "
                         f"(got {x.shape[1]}); adjust model.pools or model.height")
    # A Reshape instead of the seed's Lambda(squeeze): serialisable, loads with safe_mode=True.
    x = keras.layers.Reshape((x.shape[2] or -1, x.shape[3]), name="to_sequence")(x)
    for i, units in enumerate(cfg.rnn_units, start=1):
        x = keras.layers.Bidirectional(
            keras.layers.LSTM(units, return_sequences=True, dropout=cfg.rnn_dropout), name=f"bilstm{i}")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="probs")(x)
    return CRNN(inputs, outputs, name=name)


def _residual_block(x, filters: int, name: str, momentum: float):
    """x + BN(conv(BN(relu(conv(x))))), the last BN's scale starting at zero: an identity until trained."""
    y = keras.layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"{name}_conv_a")(x)
    y = keras.layers.BatchNormalization(momentum=momentum, name=f"{name}_bn_a")(y)
    y = keras.layers.Conv2D(filters, 3, padding="same", name=f"{name}_conv_b")(y)
    y = keras.layers.BatchNormalization(momentum=momentum, gamma_initializer="zeros", name=f"{name}_bn_b")(y)
    return keras.layers.Add(name=f"{name}_add")([x, y])


def inference_model(model: keras.Model) -> keras.Model:
    """A plain functional copy (shared weights) for export: loads anywhere without the `CRNN` class."""
    return keras.Model(model.inputs, model.outputs, name=model.name)
