"""Drawing a word: old-style figures only for digits, only in fonts that have them."""
from __future__ import annotations

import numpy as np

from ocr_core import synth
from ocr_core.synth import render


def test_oldstyle_figures_are_rendered_in_fonts_that_have_them(monkeypatch):
    train = synth.fonts("train")
    with_onum = [f for f in train if synth.has_oldstyle_figures(f.path)]
    without = [f for f in train if "DejaVu" in f.family]
    assert with_onum and without and not any(synth.has_oldstyle_figures(f.path) for f in without)
    font = with_onum[0]

    def draw(share: float, text: str) -> np.ndarray:
        monkeypatch.setattr(render, "OLDSTYLE_SHARE", share)
        return render._draw_text(np.random.default_rng(0), text, font.path, 40, 0, "", "").fill

    assert not np.array_equal(draw(0.0, "1985"), draw(1.0, "1985"))
    assert np.array_equal(draw(0.0, "word"), draw(1.0, "word"))  # letters never switch glyphs
