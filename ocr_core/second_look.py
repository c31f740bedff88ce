"""Second looks: a text-line model reads a doubtful crop again from other pictures of it and keeps the most
confident reading (`ocr predict` and `Recognizer` by default; `--read-once` / `straighten=False` turns them
off). What a crop keeps for them is prepared with it (`prepare`), so workers need not decode it twice:

- a tall crop (height >= TURN_RATIO x width) is read three ways, as it is and turned a quarter either way, and
  the most confident reading is kept: a word written sideways (ICDAR 2015 holds many) has such a box. PP-OCR's
  pipeline turns crops from the same ratio, 1.5. A crop more than the spec's max_tall_ratio as tall as wide
  (a book's spine) is read turned only (`Turns`). Doing the same for crops 1-1.5 times as tall as wide read 3
  more IC15 dev crops but lost 9 level words: not done.
- a crop that may hold a word on a slant, read with little confidence, is read straightened (`ocr_core.slant`;
  for a tall crop, its two turned pictures: a word at 50-80 degrees); a straightened reading replaces the
  crop's own when slant.MARGIN times as confident.
- every other word crop (at least REFRAME_MIN_RATIO as tall as wide, read as one word: no space) read with
  confidence under 1 / REFRAME_MARGIN is read four more ways (`reframed`): with its light and dark swapped
  (light letters on a dark sign), with a loose margin around it, and cut tighter by 6 % and 12 % of its
  height at the top and bottom (a detector's box too tight or too loose around the word). A view replaces
  the reading when REFRAME_MARGIN times as confident. Chosen on the 1,538 real dev crops read by the
  stage-22 model (the train crops are read too confidently by a model trained on them to show it): +55 -10
  crops there; the same rule chosen on random halves of them won +22..+29 net on the other half. Text lines
  are left alone: reframed, the held-out synthetic lines lost 3.7 points (plain looks) at 2.8x the time.
- last, a crop at least WIDEN_MIN_RATIO as tall as wide (square-ish or tall) still read with confidence under
  1 / WIDEN_MARGIN is read upright and widened, WIDEN_FACTORS times as wide (`widened`): a word in a box cut
  tall or square around it (a detector's box clipping its ends, a condensed or tall-lettered sign) has
  letters too narrow for the model, and at the model's height too few time steps for them (a square crop
  gives 7, one half as wide as tall 3). A widened reading replaces the crop's when WIDEN_MARGIN times as
  confident. Chosen on the 3,225 real **train** crops at least 0.4 as tall as wide, read with every other
  look: x2 and x3 at margin 2 read +28 -12 there (x1.5, x2, x2.5: +33 -17; margin 1.5: +22 -18); on the
  984 such dev crops +23 -1.
"""
from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import cv2
import numpy as np

from ocr_core import preprocess, slant
from ocr_core.ctc import greedy_decode
from ocr_core.errors import InputError
from ocr_core.preprocess import PreprocessSpec

TURN_RATIO = 1.5
REFRAME_MARGIN = 1.5  # a reframed view replaces the crop's reading when this many times as confident
REFRAME_CUTS = (0.06, 0.12)  # of the height, cut off at the top and the bottom (2 % of the width each side)
REFRAME_PAD = 0.15  # of the height, added on every side in the crop's background gray
REFRAME_MIN_RATIO = 0.15  # height / width from which a crop may be a word to reframe (flatter: a line)
WIDEN_MIN_RATIO = 0.4  # height / width from which a doubtful crop is read widened
WIDEN_FACTORS = (2.0, 3.0)  # its upright picture read this many times as wide
WIDEN_MARGIN = 2.0  # a widened reading replaces the crop's when this many times as confident
CHUNK = 256  # second-look pictures made and read at a time (memory stays bounded)


def _nbytes(x) -> int:
    return 0 if x is None else sum(_nbytes(y) for y in x) if isinstance(x, tuple) else x.nbytes


class _Arrays(tuple):
    """Several arrays prepared for one crop (nested in tuples; None for a picture not kept)."""

    @property
    def nbytes(self) -> int:  # as an array's: what RunInference's batching weighs
        return _nbytes(tuple(self))


class Turns(_Arrays):
    """A tall crop: (the arrays of its views: as it is unless too tall for that, turned a quarter clockwise,
    a quarter counter-clockwise; the two turned gray pictures kept to straighten, as `Kept` keeps one; the
    upright gray picture kept to widen, as `Kept` keeps its picture to reframe)."""


class Kept(_Arrays):
    """A crop's prepared array with the pictures kept for its second looks: (its array, (the gray picture to
    straighten it from, or None for a crop too flat to hold a slanted word,), the gray picture to reframe
    and widen it from (at most twice the model's height and width))."""


Prepared = np.ndarray | Turns | Kept


def prepare(gray: np.ndarray, spec: PreprocessSpec) -> Prepared:
    """A decoded gray crop -> its `Turns` (a tall crop), its `Kept`, or for a crop with nothing to keep (a
    text line: too flat to straighten or reframe) its array alone, for a text-line model's spec."""
    h, w = gray.shape
    if TURN_RATIO * w <= h:
        turned = (np.rot90(gray, -1), np.rot90(gray))
        views = ((gray,) if h <= spec.max_tall_ratio * w else ()) + turned
        return Turns((tuple(preprocess.resize_and_pad(g, spec)[0] for g in views),
                      tuple(slant.keep_for_straightening(g) for g in turned), keep_upright(gray, spec)))
    pixels = preprocess.resize_and_pad(gray, spec)[0]
    if h < REFRAME_MIN_RATIO * w:
        return pixels  # too flat to reframe, and (MIN_RATIO > REFRAME_MIN_RATIO) to straighten
    return Kept((pixels, (slant.keep_for_straightening(gray),), keep_upright(gray, spec)))


def keep_upright(gray: np.ndarray, spec: PreprocessSpec) -> np.ndarray:
    """The upright gray picture (uint8) kept to reframe and widen a crop from: scaled down to at most twice
    the model's height and width (its views are scaled down from it again to the model's height, so little
    detail is lost)."""
    h, w = gray.shape
    return slant.scaled_down(gray, min(2 * spec.height / h, 2 * spec.width / w))


def reframed(gray: np.ndarray) -> list[np.ndarray]:
    """The other views of a kept crop (float32): light and dark swapped, a loose margin around it, and cut
    tighter at the top and bottom by each of REFRAME_CUTS (a cut leaving under 8 px is skipped)."""
    g = gray.astype(np.float32)
    h, w = g.shape
    pad = max(1, round(REFRAME_PAD * h))
    out = [255.0 - g, cv2.copyMakeBorder(g, pad, pad, pad, pad, cv2.BORDER_CONSTANT,
                                         value=float(preprocess.border_median(gray)))]
    side = int(0.02 * w)
    for cut in REFRAME_CUTS:
        top = int(cut * h)
        if h - 2 * top > 8:
            out.append(g[top:h - top, side:w - side])
    return out


def widened(gray: np.ndarray, factor: float) -> np.ndarray:
    """A kept picture `factor` times as wide (linear filter), as float32."""
    h, w = gray.shape
    return cv2.resize(gray, (max(1, round(factor * w)), h), interpolation=cv2.INTER_LINEAR).astype(np.float32)


def greedy_confidence(probs: np.ndarray) -> float:
    """The confidence greedy decoding gives one crop's probabilities [T, C]."""
    return float(greedy_decode(probs[None])[1][0])


def read_with_second_looks(batch: Sequence[Prepared], forward: Callable[[Sequence[np.ndarray]], list],
                           spec: PreprocessSpec, space: int | None = None) -> list[np.ndarray]:
    """Per-crop probabilities of prepared crops (arrays, `Turns` or `Kept`), read by `forward` (a list of
    arrays -> their probabilities), a doubtful crop's replaced by its most confident second look. `space`:
    the class of the space (a reading holding it is a line, not reframed), or None."""
    flat = [im for x in batch for im in (x[0] if isinstance(x, Turns) else x[:1] if isinstance(x, Kept)
                                         else (x,))]
    probs = iter(forward(flat))
    out = [max((next(probs) for _ in x[0]), key=greedy_confidence) if isinstance(x, Turns) else next(probs)
           for x in batch]
    kept = {i: x[1] for i, x in enumerate(batch) if isinstance(x, (Kept, Turns))}
    _look_again(out, forward, spec, slant.MARGIN, kept, slant.candidates)
    frames = {i: (x[2],) for i, x in enumerate(batch) if isinstance(x, Kept)
              and (space is None or space not in greedy_decode(out[i][None])[0][0])}
    _look_again(out, forward, spec, REFRAME_MARGIN, frames, reframed)
    narrow = {i: (x[2],) for i, x in enumerate(batch) if isinstance(x, (Kept, Turns))
              and x[2].shape[0] >= WIDEN_MIN_RATIO * x[2].shape[1]}
    _look_again(out, forward, spec, WIDEN_MARGIN, narrow,
                lambda gray: [widened(gray, factor) for factor in WIDEN_FACTORS])
    return out


def _pixels(picture: np.ndarray, spec: PreprocessSpec) -> np.ndarray | None:
    """A second look's picture as the network's input, or None when the preprocessing refuses it (a view
    still too tall to read, say): a view is skipped, never an error for the crop or its batch."""
    try:
        return preprocess.resize_and_pad(picture.astype(np.float32, copy=False), spec)[0]
    except InputError:
        return None


def _look_again(out: list[np.ndarray], forward, spec: PreprocessSpec, margin: float, pictures: dict,
                views: Callable[[np.ndarray], list[np.ndarray]]) -> None:
    """Replaces out[i], for each crop i read with confidence under 1 / margin, by the most confident reading
    of views(picture) over its kept pictures, when that is `margin` times as confident (in place)."""
    best = {i: margin * greedy_confidence(out[i]) for i in pictures}
    tries = ((i, pixels) for i, score in best.items() if score < 1.0
             for gray in pictures[i] if gray is not None for view in views(gray)
             if (pixels := _pixels(view, spec)) is not None)
    while chunk := list(itertools.islice(tries, CHUNK)):
        for (i, _), probs in zip(chunk, forward([pixels for _, pixels in chunk])):
            confidence = greedy_confidence(probs)
            if confidence > best[i]:
                best[i], out[i] = confidence, probs
