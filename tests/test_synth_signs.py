"""Synth version 5's sign crops (`ocr_core.synth.signs`): the same seed gives the same bytes, every look
gives a valid image without changing the label, arc text really curves, and the style pool keeps fonts that
cannot draw plain Latin letters out."""
from __future__ import annotations

import math
import os

import cv2
import numpy as np
import pytest

from ocr_core import synth
from ocr_core.synth import sample, signs

FONTS = synth.fonts("train")
PLAIN = next(f for f in FONTS if os.path.basename(f.path) == "LiberationSans-Regular.ttf")


def _sign_maker(monkeypatch, **overrides) -> synth.SampleMaker:
    """A version 5 maker whose every image is a sign crop, with some shares of `signs` overridden."""
    monkeypatch.setattr(sample, "SIGN_SHARE", 1.0)
    for name, value in overrides.items():
        monkeypatch.setattr(signs, name, value)
    return synth.SampleMaker(3, FONTS, version=5)


def test_version_5_is_registered_and_the_default_is_unchanged():
    assert 5 in synth.SYNTH_VERSIONS and synth.SYNTH_VERSION == 3


def test_same_seed_same_bytes():
    first = [synth.SampleMaker(11, FONTS, version=5)(i) for i in range(12)]
    again = synth.SampleMaker(11, FONTS, version=5)
    assert [again(i) for i in reversed(range(12))][::-1] == first
    rgb = [signs.render_sign("Welcome", PLAIN, np.random.default_rng(5)) for _ in range(2)]
    assert np.array_equal(*rgb)
    assert synth.SampleMaker(12, FONTS, version=5)(0).data != first[0].data


@pytest.mark.parametrize("kind", [name for name, _ in signs.RELIEFS] + ["flat"])
def test_every_relief_gives_a_valid_image_and_keeps_the_label(monkeypatch, kind):
    plain = _sign_maker(monkeypatch)
    plain = [plain(i) for i in range(3)]
    maker = _sign_maker(monkeypatch, RELIEFS=((kind, 1.0),) if kind != "flat" else ())
    for i in range(3):
        s = maker(i)
        img = cv2.imdecode(np.frombuffer(s.data, np.uint8), cv2.IMREAD_UNCHANGED)
        assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3
        assert 48 <= img.shape[0] <= 200 and img.shape[1] >= 8
        assert img.std() > 3  # something is drawn
        assert s.label == plain[i].label and s.font == plain[i].font  # the look never changes the label


@pytest.mark.parametrize("kind", [name for name, _ in signs.RELIEFS] + ["flat"])
def test_apply_relief_keeps_shape_and_range(kind):
    fill = np.zeros((80, 200), np.uint8)
    cv2.putText(fill, "SIGN", (10, 60), cv2.FONT_HERSHEY_SIMPLEX, 2.0, 255, 8)
    fill = fill.astype(np.float32) / 255.0
    bg = np.full((80, 200, 3), 120, np.float32)
    out = signs.apply_relief(kind, fill, bg, np.float32([230, 200, 40]), 60, np.random.default_rng(0))
    assert out.shape == bg.shape and np.isfinite(out).all()
    inside, outside = out[fill > 0.9].mean(axis=0), out[fill == 0].mean(axis=0)
    assert np.abs(out - bg).max() > 20
    assert kind in ("emboss", "engrave") or np.abs(inside - outside).max() > 10  # those differ at edges only


def test_arcs_ornaments_and_neighbouring_lines_give_valid_images(monkeypatch):
    plain = _sign_maker(monkeypatch)
    plain = [plain(i) for i in range(4)]
    maker = _sign_maker(monkeypatch, ARC_SHARE=1.0, ORNAMENT_SHARE=1.0)
    neighbours = _sign_maker(monkeypatch, ARC_SHARE=0.0, ORNAMENT_SHARE=0.0, NEIGHBOUR_SHARE=1.0)
    for i in range(4):
        s = neighbours(i)
        img = cv2.imdecode(np.frombuffer(s.data, np.uint8), cv2.IMREAD_COLOR)
        assert img is not None and 48 <= img.shape[0] <= 200 and s.label == plain[i].label
        s = maker(i)
        img = cv2.imdecode(np.frombuffer(s.data, np.uint8), cv2.IMREAD_COLOR)
        assert img is not None and 48 <= img.shape[0] <= 200 and s.label == plain[i].label


def test_sign_crops_use_fonts_that_draw_plain_letters(monkeypatch):
    maker = _sign_maker(monkeypatch)
    styled = {f for fonts in signs.style_pool(FONTS).by_style.values() for f in fonts}
    assert all(signs.plain_letters(f) or f in styled for f in (maker(i).font for i in range(30)))
    assert all(synth.fits_ctc(maker(i).label) for i in range(30))


def _row_centroids(mask: np.ndarray) -> list[float]:
    """The ink's mean row in the left, middle and right third of the columns."""
    w = mask.shape[1]
    rows = np.arange(mask.shape[0], dtype=np.float32)[:, None]
    out = []
    for part in (mask[:, : w // 3], mask[:, w // 3: 2 * w // 3], mask[:, 2 * w // 3:]):
        out.append(float((part * rows).sum() / part.sum()))
    return out


def test_arc_text_really_curves():
    size = 40
    straight = _row_centroids(signs.straight_text("CURVEDWORDS", PLAIN.path, size))
    assert max(straight) - min(straight) < 0.1 * size
    left, middle, right = _row_centroids(signs.arc_text("CURVEDWORDS", PLAIN.path, size, math.pi)[0])
    assert left - middle > 0.8 * size and right - middle > 0.8 * size  # over the top: the ends hang down
    below = signs.arc_text("CURVEDWORDS", PLAIN.path, size, math.pi, below=True)[0]
    left, middle, right = _row_centroids(below)
    assert middle - left > 0.8 * size and middle - right > 0.8 * size  # along the bottom: the ends rise
    mask, (cx, cy, radius) = signs.arc_text("CURVEDWORDS", PLAIN.path, size, math.pi)
    assert 0 <= cx <= mask.shape[1] and radius >= 1.1 * size


def _installed(family: str) -> list[synth.FontInfo]:
    return [f for f in synth.fonts("all") if f.family == family]


@pytest.mark.parametrize("family, reason", [
    ("Ellhnikh", "Greek letters on Latin code points"),  # fonts-linex: a -> alpha, b -> beta
    ("Alfa-beta", "Greek letters on Latin code points"),
    ("Abecedario_punteada", "broken strokes"),  # dotted school letters
])
def test_style_filter_excludes_fonts_that_do_not_draw_plain_latin(monkeypatch, family, reason):
    bad = _installed(family)
    if not bad:
        pytest.skip(f"{family} is not installed (make synth-assets)")
    assert all(signs.style_problem(f.path).startswith(reason) for f in bad)
    monkeypatch.setitem(signs.STYLE_FAMILIES, "display", signs.STYLE_FAMILIES["display"] + (family,))
    pool = signs.style_pool(tuple(synth.fonts("all")))
    assert not any(f.family == family for fonts in pool.by_style.values() for f in fonts)


def test_style_filter_keeps_plain_and_script_faces():
    assert signs.style_problem(PLAIN.path) is None and not signs.caps_only(PLAIN.path)
    for family in ("Dancing Script", "Lobster Two", "Pacifico"):
        for f in _installed(family):
            assert signs.style_problem(f.path) is None, f.path


def test_style_pool_respects_the_split_and_case():
    pool = signs.style_pool(FONTS)
    chosen = [f for fonts in pool.by_style.values() for f in fonts]
    assert all(f.split == "train" for f in chosen)
    if not chosen:
        pytest.skip("no curated style family installed (make synth-assets)")
    rng = np.random.default_rng(0)
    picks = [pool.pick(rng, "lower") for _ in range(200)]
    assert not any(f.path in pool.caps for f in picks)


def test_version_5_word_images_skip_fonts_that_misdraw_letters():
    bad = _installed("Ellhnikh") + _installed("Abecedario_punteada")
    if not bad:
        pytest.skip("no misdrawing font installed (make synth-assets)")
    assert all(signs.misdraws_letters(f) for f in bad)
    plain = tuple(f for f in FONTS if "Liberation" in f.family)
    maker = synth.SampleMaker(1, tuple(bad) + plain, version=5)
    assert {maker(i).font for i in range(20)} <= set(plain)
