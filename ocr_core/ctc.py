"""CTC: the loss (TensorFlow) and decoders (NumPy: greedy and prefix beam search) with confidences.

The greedy decoder has a TensorFlow twin, `greedy_decode_tf`, used by training's validation metrics and the
SavedModel's serving signature; predict's workers use the NumPy one, so an onnx worker never imports
TensorFlow (this module imports it only inside the TensorFlow functions). Blank is class 0 everywhere
(`ocr_core.charset.BLANK_ID`). Decoders take per-time-step probabilities
[T, C] (or [B, T, C]) as the model outputs them. Confidence of a greedy result is the probability of its
best path (product of the per-step maxima); of a beam result, the summed probability of all alignments
of that text found by the search. Both lie in [0, 1].
"""
from __future__ import annotations

import math
from collections import defaultdict

import numpy as np

from ocr_core.charset import BLANK_ID

_EPS = 1e-7


def ctc_loss(labels, probs, logit_length=None):
    """Per-example CTC negative log-likelihood.

    Args:
        labels: int [B, L] label ids 1..N padded with 0 (the padding is never read: lengths come from it).
        probs: float [B, T, C] softmax outputs.
        logit_length: int [B] time steps of each example (dynamic width: the steps after an image's own
            width, its batch padding masked out); None: all T.

    Returns:
        float32 [B] losses.
    """
    import tensorflow as tf

    labels = tf.cast(labels, tf.int32)
    sparse = tf.sparse.from_dense(labels)  # drops the 0 padding, keeps true lengths
    logits = tf.math.log(tf.clip_by_value(tf.cast(probs, tf.float32), _EPS, 1.0))
    batch, steps = tf.shape(logits)[0], tf.shape(logits)[1]
    if logit_length is None:
        logit_length = tf.fill([batch], steps)
    return tf.nn.ctc_loss(labels=sparse, logits=logits, label_length=None,
                          logit_length=tf.cast(logit_length, tf.int32), logits_time_major=False,
                          blank_index=BLANK_ID)


def greedy_decode(probs: np.ndarray) -> tuple[list[list[int]], np.ndarray]:
    """Best-path decoding of a batch.

    Args:
        probs: [B, T, C] probabilities.

    Returns:
        (ids per example with repeats merged and blanks removed, confidence [B]).
    """
    probs = np.asarray(probs, dtype=np.float32)
    best = probs.argmax(-1)
    conf = np.exp(np.log(np.maximum(probs.max(-1), _EPS)).sum(-1))
    keep = best != BLANK_ID
    keep[:, 1:] &= best[:, 1:] != best[:, :-1]
    return [row[k].tolist() for row, k in zip(best, keep)], conf.astype(np.float32)


def greedy_decode_tf(probs, logit_length=None):
    """`greedy_decode` as TensorFlow ops (graph-friendly: training's validation step, the serving signature).

    Args:
        probs: float [B, T, C] probabilities (a tensor).
        logit_length: int [B] time steps of each example (steps after them are ignored); None: all T.

    Returns:
        (int32 RaggedTensor [B, None] of ids with repeats merged and blanks removed, float32 confidence [B]).
    """
    import tensorflow as tf

    best = tf.argmax(probs, axis=-1, output_type=tf.int32)
    keep = tf.logical_and(best != BLANK_ID, tf.concat([tf.ones_like(best[:, :1], tf.bool),
                                                       best[:, 1:] != best[:, :-1]], axis=1))
    best_prob = tf.maximum(tf.cast(tf.reduce_max(probs, axis=-1), tf.float32), _EPS)
    if logit_length is not None:
        valid = tf.sequence_mask(logit_length, tf.shape(best)[1])
        keep = tf.logical_and(keep, valid)
        best_prob = tf.where(valid, best_prob, 1.0)
    return tf.ragged.boolean_mask(best, keep), tf.exp(tf.reduce_sum(tf.math.log(best_prob), axis=-1))


def _logsumexp(a: float, b: float) -> float:
    if a == -math.inf:
        return b
    if b == -math.inf:
        return a
    m = max(a, b)
    return m + math.log(math.exp(a - m) + math.exp(b - m))


def beam_search_decode(probs: np.ndarray, beam_width: int = 10, top_k: int = 1,
                       prune: float = 1e-4) -> list[tuple[list[int], float]]:
    """CTC prefix beam search over one example.

    Args:
        probs: [T, C] probabilities.
        beam_width: prefixes kept per step.
        top_k: candidates returned.
        prune: characters below this probability at a step are not extended (speed; the most likely
            character is always considered).

    Returns:
        Up to top_k (ids, probability) pairs, most likely first.
    """
    logp = np.log(np.maximum(np.asarray(probs, dtype=np.float64), _EPS))
    # prefix -> (log P ending in blank, log P ending in non-blank)
    beams: dict[tuple, tuple[float, float]] = {(): (0.0, -math.inf)}
    for t in range(logp.shape[0]):
        row = logp[t]
        cands = np.nonzero(row >= math.log(prune))[0]
        if cands.size == 0:
            cands = np.array([int(row.argmax())])
        nxt: dict[tuple, list[float]] = defaultdict(lambda: [-math.inf, -math.inf])
        for prefix, (pb, pnb) in beams.items():
            total = _logsumexp(pb, pnb)
            for c in cands:
                c = int(c)
                p = row[c]
                if c == BLANK_ID:
                    e = nxt[prefix]
                    e[0] = _logsumexp(e[0], total + p)
                    continue
                last = prefix[-1] if prefix else None
                ext = nxt[prefix + (c,)]
                if c == last:
                    # repeat without a blank between collapses into the same prefix
                    ext[1] = _logsumexp(ext[1], pb + p)
                    same = nxt[prefix]
                    same[1] = _logsumexp(same[1], pnb + p)
                else:
                    ext[1] = _logsumexp(ext[1], total + p)
        ranked = sorted(nxt.items(), key=lambda kv: _logsumexp(*kv[1]), reverse=True)
        beams = {k: (v[0], v[1]) for k, v in ranked[:beam_width]}
    ranked = sorted(beams.items(), key=lambda kv: _logsumexp(*kv[1]), reverse=True)[:top_k]
    return [(list(k), float(min(1.0, math.exp(_logsumexp(*v))))) for k, v in ranked]
