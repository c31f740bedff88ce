"""`ocr_core.ctc`: the CTC loss, the greedy decoders (NumPy and TensorFlow) and the prefix beam search."""
import numpy as np
import tensorflow as tf

from ocr_core.ctc import beam_search_decode, ctc_loss, greedy_decode, greedy_decode_tf


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
