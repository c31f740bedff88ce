"""The labels: the sampler's variety and CTC fit, and the dictionary's charset filter."""
from __future__ import annotations

import numpy as np

from ocr_core import synth


def test_sampler_covers_many_labels_quickly():
    sampler = synth.TextSampler()
    rng = np.random.default_rng(0)
    labels = [sampler.sample(rng) for _ in range(2000)]
    assert all(synth.fits_ctc(label) for label in labels)
    assert len(set(labels)) > 1000
    assert np.mean([len(label) for label in labels]) < 9  # short words dominate, as in running text


def test_lexicon_drops_words_outside_the_charset(tmp_path):
    words = tmp_path / "words"
    words.write_text("don't\ncafé\nhello\nHello\nhello\nx-ray\n" + "a" * 30 + "\n")
    assert synth.load_lexicon(str(words)) == ("hello", "Hello")
