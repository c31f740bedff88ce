"""Offline MJSynth-like word images: the fonts installed on this machine, dictionary and code-like text,
and scene-text effects. Every image is a pure function of (seed, index), so any worker count writes the same
files."""
from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import math
import os
import re
import shutil
import sys
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont, features

from ocr_core import scene
from ocr_core.charset import DEFAULT_CHARACTERS, Charset, ctc_min_steps
from ocr_core.preprocess import GRAY_WEIGHTS

SYNTH_VERSION = 3  # 2: old-style figures; 3: natural backgrounds, signage looks, detector-like crops
SYNTH_VERSIONS = (1, 2, 3)  # 1 is 2 without old-style figures (on a machine without Raqm)
# TeX Gyre lives under texmf on Debian (fonts-texgyre), not under /usr/share/fonts.
# `make synth-assets` unpacks the Latin fonts of the `trdg` wheel into <venv>/share/ocr-fonts.
DEFAULT_FONT_DIRS = ("/usr/share/fonts", "/usr/share/texmf/fonts/opentype",
                     os.path.join(sys.prefix, "share", "ocr-fonts"))
DEFAULT_WORDS = "/usr/share/dict/words"
FONT_SPLITS = ("train", "heldout", "all")
LAYOUTS = ("tsv", "mjsynth")
IMAGE_FORMATS = ("jpg", "png")
MAX_LABEL_LEN = 24
MAX_CTC_STEPS = 31  # the CRNN emits 32 frames for a 128-wide input; keep one spare
HELDOUT_FRACTION = 0.17
MIN_HELDOUT_FAMILIES = 3
# The held-out designs of the Debian font set `make` installs (the ones the hash rule of `assign_splits`
# picked for it), pinned: installing more fonts then only adds training fonts. It never moves a held-out
# design into training and never changes the held-out benchmark, even when a new family joins (and renames)
# a held-out group.
PINNED_HELDOUT_FAMILIES = frozenset({
    "C059", "DejaVu Sans", "DejaVu Sans Mono", "EB Garamond", "Linux Biolinum O", "Linux Libertine Mono O",
    "TeX Gyre Schola"})
# ... and their files: a package that adds a file to a held-out family (fonts-dejavu-extra adds DejaVu Sans
# Condensed and ExtraLight) must not change the held-out images either, so other files of these families
# are used by neither split.
PINNED_HELDOUT_FILES = frozenset({
    "C059-BdIta.otf", "C059-Bold.otf", "C059-Italic.otf", "C059-Roman.otf", "DejaVuSans-Bold.ttf",
    "DejaVuSans.ttf", "DejaVuSansMono-Bold.ttf", "DejaVuSansMono.ttf", "EBGaramond08-Italic.otf",
    "EBGaramond08-Regular.otf", "EBGaramond12-Bold.otf", "EBGaramond12-Italic.otf",
    "EBGaramond12-Regular.otf", "LinBiolinum_R.otf", "LinBiolinum_RB.otf", "LinBiolinum_RI.otf",
    "LinLibertine_M.otf",
    "texgyreschola-bold.otf", "texgyreschola-bolditalic.otf", "texgyreschola-italic.otf",
    "texgyreschola-regular.otf"})
OLDSTYLE_FEATURE = "onum"
OLDSTYLE_SHARE = 0.3  # of the texts with digits, in fonts that have old-style figures
FILES_PER_DIR = 10_000
TSV_LABELS = "labels.tsv"
MJSYNTH_LABELS = "annotation.txt"

# --- fonts -------------------------------------------------------------------------------------------------

# Fonts whose letters are not Latin letters although they have glyphs for a-z (symbols mapped onto ASCII).
_EXCLUDED_FONT = re.compile(r"symbol|dingbat|math|emoji|music|keyboard|icon|ornament|wingding|webding", re.I)
# Noto's fonts for other scripts carry a copy of Noto Sans's Latin letters: a held-out "Noto Traditional
# Nushu" would be Noto Sans seen in training under another name.
_BORROWED_LATIN = re.compile(r"^Noto (?!(Sans|Serif)( Mono)?$)")
# Weight, width, slope and optical-size words: "Roboto Condensed Light" and "Roboto" are one family.
_STYLE_WORDS = frozenset(
    "thin hairline extralight ultralight light book regular normal medium semibold demibold demi bold "
    "extrabold ultrabold black heavy condensed cond cn narrow display italic oblique".split())
# Glyph pairs that differ only in size or not at all in many fonts; the Latin-shape test forgives them.
_LOOKALIKES = ("oO0", "sS", "cC", "vV", "wW", "xX", "zZ", "l1I", "uU", "pP", "kK", "yY", "jJ")
_FP_SIZE = 24  # px em of the glyph fingerprints
_FP_SHAPE = (12, 14)  # (w, h) of one glyph fingerprint
MIN_LATIN_SCORE = 0.2  # dingbats and keyboard-cap fonts score < 0.1, script faces ~0.3, text faces > 0.5
MIN_DISTINCT_GLYPHS = 0.8  # share of the charset that must render differently from each other
CLONE_DISTANCE = 0.03  # families closer than this are one design (TeX Gyre Heros = Nimbus Sans = FreeSans)
THIN_INK = 0.55  # ink below this share of the median marks a hairline face, rendered only at larger sizes


@dataclass(frozen=True)
class FontInfo:
    """One usable font file.

    Attributes:
        path: the font file.
        family: the family without weight/width words ("Roboto" for Roboto Condensed Light).
        style: the style name the file reports.
        group: the design the family belongs to; clone families (metric clones, re-releases) share one, named
            after the alphabetically first family, so a held-out design is not also seen under another name.
        split: "train" or "heldout", the same for every file of a group.
        thin: a hairline face that is illegible at small sizes.
    """

    path: str
    family: str
    style: str
    group: str
    split: str
    thin: bool = False


def family_name(name: str) -> str:
    """A font's family name without weight, width, slope and optical-size words."""
    kept = [w for w in name.split() if w.lower() not in _STYLE_WORDS and not w.isdigit()]
    return " ".join(kept) or name


def _font_files(font_dirs: tuple[str, ...]) -> list[str]:
    """Every .ttf/.otf under the directories, once per real file, in a stable order."""
    seen, files = set(), []
    for root in font_dirs:
        for dirpath, dirnames, names in os.walk(root, followlinks=True):
            dirnames.sort()
            for name in sorted(names):
                if not name.lower().endswith((".ttf", ".otf")) or _EXCLUDED_FONT.search(name):
                    continue
                path = os.path.join(dirpath, name)
                real = os.path.realpath(path)
                if real not in seen:
                    seen.add(real)
                    files.append(path)
    return files


def _glyph_probe(path: str, characters: str) -> tuple[np.ndarray, float, int, tuple[str, str]] | None:
    """(fingerprints (n_chars, d), ink share, distinct glyphs, (family, style)) or None if a glyph is missing.

    A missing character renders as the font's .notdef glyph (often a box) or as nothing, so a character whose
    bitmap equals that of unassigned code points, or is empty, is not covered.
    """
    try:
        font = ImageFont.truetype(path, _FP_SIZE, layout_engine=ImageFont.Layout.BASIC)
    except OSError:
        return None
    notdef = {bytes(font.getmask(c)) for c in ("\U000f0000", "\U0010fffd")}
    # Most fonts that fail miss all Latin letters: try one of each case first and fail fast.
    if any(bytes(font.getmask(c)) in notdef for c in characters if c in "aZ"):
        return None
    top, bottom = -_FP_SIZE, int(0.3 * _FP_SIZE)
    prints, bitmaps, ink = [], set(), 0.0
    for c in characters:
        mask, (_, oy) = font.getmask2(c, anchor="ls")
        raw = bytes(mask)
        w, h = mask.size
        if w == 0 or h == 0 or raw in notdef or not any(raw):
            return None
        bitmaps.add((raw, w, h))
        glyph = np.frombuffer(raw, np.uint8).reshape(h, w)
        # The glyph in a fixed ascender-to-descender window so that "o" and "O" differ in height.
        window = np.zeros((bottom - top, w), np.uint8)
        y0, y1 = max(oy, top), min(oy + h, bottom)
        if y1 > y0:
            window[y0 - top:y1 - top] = glyph[y0 - oy:y1 - oy]
        v = cv2.resize(window.astype(np.float32), _FP_SHAPE, interpolation=cv2.INTER_AREA).ravel()
        mean = float(v.mean())
        ink += mean / 255.0
        v -= mean
        prints.append(v / (np.linalg.norm(v) + 1e-6))
    family, style = font.getname()
    return np.stack(prints), ink / len(characters), len(bitmaps), (family or Path(path).stem, style or "")


def _latin_scores(prints: np.ndarray, characters: str) -> np.ndarray:
    """Per font, the share of glyphs whose nearest consensus glyph is the same letter (up to lookalikes)."""
    proto = np.median(prints, axis=0)
    proto /= np.linalg.norm(proto, axis=1, keepdims=True) + 1e-6
    nearest = np.einsum("nck,dk->ncd", prints, proto).argmax(-1)
    same = {c: c for c in characters}
    for group in _LOOKALIKES:
        for c in group:
            if c in same:
                same[c] = group
    ok = np.array([[characters[j] in same[c] for j in range(len(characters))] for c in characters])
    return ok[np.arange(len(characters))[None, :], nearest].mean(axis=1)


def _design_groups(families: list[str], prints: np.ndarray) -> dict[str, str]:
    """Family -> group name: single-linkage clusters of families whose closest files look the same."""
    flat = prints.reshape(len(prints), -1)
    dist = 1.0 - flat @ flat.T / prints.shape[1]
    names = sorted(set(families))
    index = {f: [i for i, g in enumerate(families) if g == f] for f in names}
    parent = {f: f for f in names}

    def root(f: str) -> str:
        while parent[f] != f:
            f = parent[f]
        return f

    for i, a in enumerate(names):
        for b in names[i + 1:]:
            if dist[np.ix_(index[a], index[b])].min() < CLONE_DISTANCE:
                ra, rb = root(a), root(b)
                parent[max(ra, rb)] = min(ra, rb)  # the group is named after its first family
    return {f: root(f) for f in names}


def stable_hash(text: str) -> float:
    """A number in [0, 1) from the text alone, the same in every process and Python version."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big") / 2.0**64


def assign_splits(groups: dict[str, str],
                  pinned: frozenset[str] = PINNED_HELDOUT_FAMILIES) -> dict[str, str]:
    """Family -> "train" | "heldout", given family -> design group; a group's families share a split.

    A group with a `pinned` family is held out. Without any, groups are taken in order of a stable hash of
    their name until about HELDOUT_FRACTION of the families are held out. Either way at least
    MIN_HELDOUT_FAMILIES are held out when possible (topped up in hash order), and at least one group always
    stays for training.
    """
    members: dict[str, list[str]] = {}
    for family, group in groups.items():
        members.setdefault(group, []).append(family)
    order = sorted(members, key=lambda g: (stable_hash(g), g))
    pinned_groups = [g for g in order if any(f in pinned for f in members[g])][: len(order) - 1]
    heldout = {f for g in pinned_groups for f in members[g]}
    # A family installed later that clones a pinned held-out design (Hack is DejaVu Sans Mono, ADF Verana
    # is DejaVu Sans) is used by neither split: in training it would leak the held-out design, and held out
    # it would change the pinned benchmark images.
    quarantined = {f for f in heldout if f not in pinned} if pinned_groups else set()
    target = (MIN_HELDOUT_FAMILIES if pinned_groups
              else max(MIN_HELDOUT_FAMILIES, round(HELDOUT_FRACTION * len(groups))))
    free = [g for g in order if g not in pinned_groups]
    for group in free[:-1]:
        if len(heldout) >= target:
            break
        heldout.update(members[group])
    return {f: ("excluded" if f in quarantined else "heldout" if f in heldout else "train") for f in groups}


@functools.lru_cache(maxsize=8)
def discover_fonts(font_dirs: tuple[str, ...] = DEFAULT_FONT_DIRS,
                   characters: str = DEFAULT_CHARACTERS) -> tuple[FontInfo, ...]:
    """The fonts under `font_dirs` that draw every character as a distinct Latin glyph, with their split.

    Excluded: fonts missing a glyph, symbol/dingbat/math/emoji fonts (by name, and by glyph shapes that match
    no consensus Latin letter), and fonts drawing most characters identically. Cached per process (~4 s).

    Args:
        font_dirs: directories searched recursively for .ttf and .otf files.
        characters: the characters every font must render.

    Returns:
        FontInfo per usable file, sorted by path.
    """
    probed = []
    for path in _font_files(font_dirs):
        result = _glyph_probe(path, characters)
        if result is None:
            continue
        prints, ink, distinct, (family, style) = result
        family = family_name(family)
        if (_EXCLUDED_FONT.search(family) or _BORROWED_LATIN.match(family)
                or distinct < MIN_DISTINCT_GLYPHS * len(characters)):
            continue
        probed.append((path, prints, ink, family, style))
    if not probed:
        return ()
    prints = np.stack([p[1] for p in probed])
    latin = _latin_scores(prints, characters)
    keep = [i for i in range(len(probed)) if latin[i] >= MIN_LATIN_SCORE]
    probed, prints = [probed[i] for i in keep], prints[keep]
    groups = _design_groups([p[3] for p in probed], prints)
    splits = assign_splits(groups)
    median_ink = float(np.median([p[2] for p in probed]))
    pinned_files = any(splits.get(f) == "heldout" for f in PINNED_HELDOUT_FAMILIES)
    found = [FontInfo(path, family, style, groups[family], splits[family],
                      thin=ink < THIN_INK * median_ink) for path, _, ink, family, style in probed
             if splits[family] != "excluded" and not (
                 pinned_files and splits[family] == "heldout" and os.path.basename(path) not in
                 PINNED_HELDOUT_FILES)]
    return tuple(sorted(found, key=lambda f: f.path))


def fonts(split: str = "all", extra_dir: str | None = None) -> tuple[FontInfo, ...]:
    """The usable fonts of one split: "train", "heldout" or "all".

    Args:
        split: which fonts; train and heldout never share a family or a design group.
        extra_dir: another directory to search besides DEFAULT_FONT_DIRS.

    Returns:
        FontInfo per file, sorted by path.
    """
    if split not in FONT_SPLITS:
        raise ValueError(f"font split {split!r} is not one of {', '.join(FONT_SPLITS)}")
    dirs = DEFAULT_FONT_DIRS + ((str(extra_dir),) if extra_dir else ())
    found = discover_fonts(dirs)
    return found if split == "all" else tuple(f for f in found if f.split == split)


# --- text --------------------------------------------------------------------------------------------------

# The most frequent English words plus common sign/label words, in rough frequency order (Zipf-weighted).
COMMON_WORDS = tuple("""
the of and to a in is you that it he was for on are as with his they I at be this have from or one had by
but not what all were we when your can said there use an each which she do how their if will up other about
out many then them these so some her would make like him into time has look two more write go see number no
way could people my than first been call who its now find long down day did get come made may part new sale
open free shop street road exit stop price store hotel cafe bar menu news best off only entrance push pull
welcome avenue parking taxi bank pizza police market center city park coffee food house home car school
service office station bus train north south east west left right here today love life world great good
big small old year years work show book books club room hall line area high low
""".split())
_LENGTH_WEIGHTS = {1: 0.01, 2: 0.04, 3: 0.09, 4: 0.13, 5: 0.14, 6: 0.14, 7: 0.13, 8: 0.11, 9: 0.08,
                   10: 0.055, 11: 0.035, 12: 0.02, 13: 0.012, 14: 0.007}  # longer: 0.6 times the previous
_UNITS = ("km", "kg", "mm", "cm", "ml", "mg", "th", "st", "nd", "rd", "h", "am", "pm", "GB", "MB", "V", "W",
          "x")


@functools.lru_cache(maxsize=4)
def load_lexicon(path: str = DEFAULT_WORDS, characters: str = DEFAULT_CHARACTERS) -> tuple[str, ...]:
    """The distinct words of a word list (one a line) written only with `characters`, up to MAX_LABEL_LEN.

    Words like "don't" or "café" are dropped rather than changed, so every label is a real spelling.
    """
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError as e:
        raise FileNotFoundError(f"{path}: word list not found; install the Debian package wamerican "
                                "(make system-deps) or pass another words file") from e
    allowed = set(characters)
    words = dict.fromkeys(w for w in (line.strip() for line in text.splitlines())
                          if w and len(w) <= MAX_LABEL_LEN and set(w) <= allowed)
    if not words:
        raise ValueError(f"{path}: no word is written only with the charset's characters")
    return tuple(words)


def fits_ctc(label: str, charset: Charset = Charset()) -> bool:
    """Whether the label is non-empty, in the charset, at most MAX_LABEL_LEN long and fits MAX_CTC_STEPS."""
    return (0 < len(label) <= MAX_LABEL_LEN and not charset.unknown(label)
            and ctc_min_steps(charset.encode(label)) <= MAX_CTC_STEPS)


class TextSampler:
    """Draws labels: common words (Zipf by rank), dictionary words (weighted by a word-length prior, as in
    running text), numbers, codes and random strings, in lower, Capitalised and UPPER case.

    Args:
        words_path: the dictionary, one word a line.
        charset: labels use only its characters.
    """

    def __init__(self, words_path: str = DEFAULT_WORDS, charset: Charset = Charset()):
        self.charset = charset
        self.words = load_lexicon(words_path, charset.characters)
        by_len: dict[int, list[str]] = {}
        for w in self.words:
            by_len.setdefault(len(w), []).append(w)
        self._lengths = sorted(by_len)
        self._by_len = [tuple(by_len[n]) for n in self._lengths]
        p = np.array([_LENGTH_WEIGHTS.get(n, 0.007 * 0.6 ** (n - 14)) for n in self._lengths])
        self._length_p = p / p.sum()
        common = [w for w in COMMON_WORDS if not charset.unknown(w)] or list(self.words[:100])
        self._common = tuple(dict.fromkeys(common))
        zipf = 1.0 / (np.arange(len(self._common)) + 2.7)
        self._common_p = zipf / zipf.sum()
        self._digits = "".join(c for c in "0123456789" if c in charset.characters) or charset.characters
        self._upper = "".join(c for c in charset.characters if c.isupper()) or charset.characters
        self._lower = "".join(c for c in charset.characters if c.islower()) or charset.characters

    def word(self, rng: np.random.Generator) -> str:
        """A common word (1 in 3) or a dictionary word of a length drawn from the prior."""
        if rng.random() < 0.33:
            return self._common[rng.choice(len(self._common), p=self._common_p)]
        bucket = self._by_len[rng.choice(len(self._lengths), p=self._length_p)]
        return bucket[rng.integers(len(bucket))]

    def _case(self, text: str, rng: np.random.Generator) -> str:
        u = rng.random()
        if u < 0.55:  # as in the dictionary: lowercase, proper nouns capitalised
            return text
        if u < 0.82:
            return text[:1].upper() + text[1:].lower()
        return text.upper()

    def _chars(self, alphabet: str, n: int, rng: np.random.Generator) -> str:
        return "".join(alphabet[i] for i in rng.integers(len(alphabet), size=n))

    def _number(self, rng: np.random.Generator) -> str:
        u = rng.random()
        if u < 0.2:
            return str(int(rng.integers(1900, 2036)))  # a year
        if u < 0.45:
            cents = (0, 50, 95, 99, int(rng.integers(100)))[rng.integers(5)]
            return f"{int(rng.integers(1, 1000))}{cents:02d}"  # a price without its separator
        if u < 0.55:
            return self._chars(self._digits, int(rng.integers(7, 11)), rng)  # phone-like
        return str(int(10 ** rng.uniform(0, 6)))  # Benford-like magnitudes

    def _code(self, rng: np.random.Generator) -> str:
        """Like AB12C, X7, B2B, SW1A: alternating runs of letters and digits."""
        letters = self._upper if rng.random() < 0.8 else self._lower
        runs, digit = int(rng.integers(1, 5)), rng.random() < 0.3
        parts = []
        for _ in range(runs):
            parts.append(self._chars(self._digits if digit else letters, int(rng.integers(1, 4)), rng))
            digit = not digit
        return "".join(parts)

    def _synthetic(self, rng: np.random.Generator) -> str:
        u = rng.random()
        if u < 0.35:
            return self._number(rng)
        if u < 0.65:
            return self._code(rng)
        if u < 0.85:
            return self._chars(self.charset.characters, int(rng.integers(1, 11)), rng)
        word = self._case(self.word(rng), rng)
        if rng.random() < 0.5:
            return word + str(int(rng.integers(1, 100)))  # Route66, room12
        return str(int(rng.integers(1, 1000))) + _UNITS[rng.integers(len(_UNITS))]  # 24h, 5km, 3rd

    def sample(self, rng: np.random.Generator, upper_share: float | None = None) -> str:
        """One label: 70% words, 30% numbers/codes/strings; always fits the charset and MAX_CTC_STEPS.

        `upper_share`: the share of words set in capitals instead of the dictionary's own mix (v3: signs and
        posters are mostly capitals).
        """
        while True:
            if rng.random() < 0.7:
                word = self.word(rng)
                if upper_share is not None and rng.random() < upper_share:
                    text = word.upper()
                else:
                    text = self._case(word, rng)
            else:
                text = self._synthetic(rng)
            if self.charset.unknown(text) and not self.charset.unknown(text.lower()):
                text = text.lower()
            if fits_ctc(text, self.charset):
                return text


# --- rendering ---------------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=512)
def _load_font(path: str, size: int) -> ImageFont.FreeTypeFont:
    # Basic layout is twice as fast overall as Raqm here; it loses GPOS kerning, which the random tracking
    # (letter spacing) more than covers for a recognizer.
    return ImageFont.truetype(path, size, layout_engine=ImageFont.Layout.BASIC)


@functools.lru_cache(maxsize=64)
def _load_shaping_font(path: str, size: int) -> ImageFont.FreeTypeFont | None:
    """The font with OpenType shaping (Raqm), for feature-driven glyph variants; None without libraqm."""
    if not features.check("raqm"):
        return None
    return ImageFont.truetype(path, size, layout_engine=ImageFont.Layout.RAQM)


@functools.lru_cache(maxsize=1024)
def has_oldstyle_figures(path: str) -> bool:
    """Whether the font draws different digits with the OpenType "onum" feature (old-style figures).

    Book faces (EB Garamond, Georgia, many logos) print 0-9 as old-style figures by default: a 1 like an I,
    a 0 like an o, 3 5 7 9 dropping below the baseline.
    A recognizer that never saw them reads "1985" as "I98s".
    """
    font = _load_shaping_font(path, _FP_SIZE)
    if font is None:
        return False
    digits = "0123456789"
    return bytes(font.getmask(digits)) != bytes(font.getmask(digits, features=[OLDSTYLE_FEATURE]))


def _colour(rng: np.random.Generator, luma: float) -> np.ndarray:
    """An RGB colour of about the given luma: half of them greyish, the rest of any hue."""
    sat = rng.uniform(0, 0.15) if rng.random() < 0.5 else rng.uniform(0.2, 0.9)
    hue = rng.normal(size=3).tolist()  # plain floats: numpy overhead dominates on three numbers
    mean = sum(hue) / 3
    hue = [v - mean for v in hue]
    scale = sat * 128.0 / (math.sqrt(sum(v * v for v in hue)) + 1e-6)
    rgb = [luma + scale * v for v in hue]
    shift = sum(w * v for w, v in zip(GRAY_WEIGHTS, rgb)) - luma
    return np.array([min(255.0, max(0.0, v - shift)) for v in rgb], np.float32)


def _texture(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A field in [0, 1] that mixes two background colours: fractal noise, stripes/grain, blobs or edges."""
    kind = rng.random()
    if kind < 0.4:  # clouds, paper, concrete
        n = sum(scene.smooth_noise(rng, h, w, h * s) * a for s, a in ((1.0, 1.0), (0.4, 0.5), (0.15, 0.3)))
        if rng.random() < 0.5:
            n = n + rng.normal(0, 0.4, size=(h, w)).astype(np.float32)  # grain
        return 0.5 + 0.5 * np.tanh(n)
    if kind < 0.6:  # wood grain, brushed metal, fabric
        theta = rng.uniform(0, np.pi)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        phase = (xx * np.cos(theta) + yy * np.sin(theta)) * (2 * np.pi / rng.uniform(3, max(4.0, h)))
        phase += rng.uniform(0, 3) * scene.smooth_noise(rng, h, w, h * 0.5)
        return 0.5 + 0.5 * np.sin(phase)
    field = np.zeros((h, w), np.float32)
    if kind < 0.8:  # out-of-focus lights and objects
        for _ in range(int(rng.integers(2, 8))):
            centre = (int(rng.integers(0, w)), int(rng.integers(0, h)))
            axes = (int(rng.integers(2, max(3, h))), int(rng.integers(2, max(3, h))))
            cv2.ellipse(field, centre, axes, float(rng.uniform(0, 180)), 0, 360, float(rng.random()), -1)
        return cv2.GaussianBlur(field, (0, 0), rng.uniform(1, max(1.5, h / 4)))
    for _ in range(int(rng.integers(1, 4))):  # edges of signs, shelves, walls
        x0, y0 = int(rng.integers(-w, w)), int(rng.integers(-h, h))
        x1, y1 = x0 + int(rng.integers(w // 4 + 1, 2 * w + 2)), y0 + int(rng.integers(h // 4 + 1, 2 * h + 2))
        cv2.rectangle(field, (x0, y0), (x1, y1), float(rng.random()), -1)
    return cv2.GaussianBlur(field, (0, 0), rng.uniform(0.5, 2.0))


def _background(rng: np.random.Generator, h: int, w: int, luma: float, spread: float) -> np.ndarray:
    """RGB float background whose luma stays within `spread` of `luma`, so the text contrast survives."""
    base = _colour(rng, luma)
    kind = rng.random()
    if kind < 0.3:
        return np.broadcast_to(base, (h, w, 3)).astype(np.float32)
    other = _colour(rng, float(np.clip(luma + rng.uniform(-spread, spread), 0, 255)))
    if kind < 0.5:  # a linear gradient
        t = scene.ramp(h, w, rng.uniform(0, 2 * np.pi))
    else:
        t = _texture(rng, h, w)
    return base * (1 - t[..., None]) + other * t[..., None]


@dataclass
class _Layout:
    """The text drawn on a canvas: ink masks and the box that the crop is taken around."""

    fill: np.ndarray  # uint8 coverage of the text (and its neighbours, underline, frame)
    outer: np.ndarray | None  # coverage including the outline stroke, if any
    box: np.ndarray  # uint8 rectangle of the word itself: the crop is taken around it
    gap_left: float  # px between the word and a neighbouring fragment, or -1 without one
    gap_right: float


@functools.lru_cache(maxsize=8192)
def _line_metrics(path: str, size: int) -> tuple[float, int, int]:
    """(advance of a space, top of "Hd", bottom of "gy") of a font at a size; y relative to the baseline."""
    font = _load_font(path, size)
    _, top, _, bottom = font.getbbox("Hdgy", anchor="ls")
    return font.getlength(" "), top, bottom


def _draw_text(rng: np.random.Generator, text: str, path: str, size: int, stroke: int, left: str,
               right: str) -> _Layout:
    font, shaping = _load_font(path, size), {}
    if any(c.isdigit() for c in text) and rng.random() < OLDSTYLE_SHARE and has_oldstyle_figures(path):
        font, shaping = _load_shaping_font(path, size), {"features": [OLDSTYLE_FEATURE]}
    space, line_top, line_bottom = _line_metrics(path, size)
    tracking = rng.uniform(-0.04, 0.3) * size if rng.random() < 0.2 else 0.0
    advances = [font.getlength(c, **shaping) + tracking for c in text] if tracking else []
    word_w = sum(advances) if tracking else font.getlength(text, **shaping)
    gaps = [space * rng.uniform(0.8, 1.8) + 1 if frag else 0.0 for frag in (left, right)]
    # Room for the slice of a neighbouring word that the crop can show; the rest may fall off the canvas.
    rooms = [gap + size if frag else 0.0 for gap, frag in zip(gaps, (left, right))]
    margin = size + stroke
    ascent, descent = font.getmetrics()
    width = int(2 * margin + rooms[0] + word_w + rooms[1] + 2)
    height = int(2 * margin + ascent + descent)
    baseline, x = margin + ascent, margin + rooms[0]

    canvases = [Image.new("L", (width, height)) for _ in range(2 if stroke else 1)]
    draws = [ImageDraw.Draw(c) for c in canvases]
    for draw, sw in zip(draws, (0, stroke)):
        if tracking:
            cx = x
            for c, advance in zip(text, advances):
                draw.text((cx, baseline), c, font=font, fill=255, anchor="ls", stroke_width=sw, **shaping)
                cx += advance
        else:
            draw.text((x, baseline), text, font=font, fill=255, anchor="ls", stroke_width=sw, **shaping)
    # The word's box: its ink, or (half the time) the line from ascender to descender, so that "ace" is not
    # cropped taller-looking than "Ace".
    x0, y0, bw, bh = cv2.boundingRect(np.asarray(canvases[0]))
    x1, y1 = x0 + bw, y0 + bh
    if bw == 0:  # no ink at all (cannot happen with checked fonts): fall back on the line box
        x0, y0, x1, y1 = int(x), baseline + line_top, int(x + word_w), baseline + line_bottom
    if rng.random() < 0.5:
        y0, y1 = min(y0, baseline + line_top), max(y1, baseline + line_bottom)
    box_rect = [x0 - stroke, y0 - stroke, x1 + stroke, y1 + stroke]
    for draw, sw in zip(draws, (0, stroke)):
        if left:
            draw.text((x0 - gaps[0], baseline), left, font=font, fill=255, anchor="rs", stroke_width=sw,
                      **shaping)
        if right:
            draw.text((x1 + gaps[1], baseline), right, font=font, fill=255, anchor="ls", stroke_width=sw,
                      **shaping)

    if rng.random() < 0.06:  # underline
        y = baseline + max(1, round(rng.uniform(0.08, 0.16) * size))
        t = max(1, round(size * rng.uniform(0.04, 0.08)))
        for draw in draws:
            draw.rectangle([box_rect[0], y, box_rect[2], y + t - 1], fill=255)
        box_rect[3] = max(box_rect[3], y + t)
    if rng.random() < 0.05:  # a frame, as on labels, buttons and signs
        pad = rng.uniform(0.1, 0.35) * size
        frame = [box_rect[0] - pad, box_rect[1] - pad, box_rect[2] + pad, box_rect[3] + pad]
        for draw in draws:
            draw.rectangle(frame, outline=255, width=max(1, round(size * rng.uniform(0.03, 0.08))))
        if rng.random() < 0.5:
            box_rect = [frame[0], frame[1], frame[2] + 1, frame[3] + 1]

    box = np.zeros((height, width), np.uint8)
    bx0, by0 = max(0, math.floor(box_rect[0])), max(0, math.floor(box_rect[1]))
    bx1, by1 = min(width, math.ceil(box_rect[2])), min(height, math.ceil(box_rect[3]))
    box[by0:max(by1, by0 + 1), bx0:max(bx1, bx0 + 1)] = 255
    return _Layout(np.asarray(canvases[0]), np.asarray(canvases[1]) if stroke else None, box,
                   gaps[0] if left else -1.0, gaps[1] if right else -1.0)


def _warp(rng: np.random.Generator, stack: np.ndarray, size: int, version: int = 2) -> np.ndarray:
    """Arc, rotation, shear and perspective of the stacked masks; the canvas grows to keep every pixel."""
    h, w = stack.shape[:2]
    if rng.random() < (0.12 if version < 3 else 0.18):  # text along an arc
        amp = rng.uniform(-0.25, 0.25) * size
        xx = (np.arange(w, dtype=np.float32) - w / 2) / (w / 2)
        map_x, map_y = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
        map_y += (amp * xx * xx)[None, :]
        stack = cv2.remap(stack, map_x, map_y, cv2.INTER_LINEAR)
        stack = stack.reshape(h, w, -1)
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    dst = src.copy()
    changed = False
    if rng.random() < (0.5 if version < 3 else 0.65):
        # v3: as the real crops, mostly a few degrees, sometimes up to 15 (incidental text)
        spread, limit = (2.5, 7) if version < 3 else (5.0, 15)
        angle = np.deg2rad(float(np.clip(rng.normal(0, spread), -limit, limit)))
        c, s = np.cos(angle), np.sin(angle)
        centre = np.float32([w / 2, h / 2])
        dst = (dst - centre) @ np.float32([[c, s], [-s, c]]) + centre
        changed = True
    if rng.random() < 0.15:  # slant
        dst[:, 0] += rng.uniform(-0.3, 0.3) * (h / 2 - src[:, 1])
        changed = True
    if rng.random() < 0.25:  # seen from the side: the ends of the word at different heights and widths
        dst += rng.uniform(-0.15, 0.15, size=(4, 2)).astype(np.float32) * np.float32([0.3 * size, size])
        changed = True
    if not changed:
        return stack
    lo = dst.min(axis=0)
    dst -= lo
    out_w, out_h = (int(math.ceil(v)) + 1 for v in dst.max(axis=0))
    m = cv2.getPerspectiveTransform(src, dst.astype(np.float32))
    return cv2.warpPerspective(stack, m, (out_w, out_h), flags=cv2.INTER_LINEAR).reshape(out_h, out_w, -1)


def render_word(text: str, font: FontInfo, rng: np.random.Generator, left: str = "",
                right: str = "", version: int = 2, backgrounds: tuple[str, ...] = ()) -> np.ndarray:
    """One MJSynth-like crop of `text`, RGB uint8, 20-80 px high and as wide as the text needs.

    Args:
        text: the word; its image is tight-ish around it with random padding.
        font: the font to draw with.
        rng: every random choice comes from here, so the same generator state gives the same image.
        left: text of a neighbouring word before this one; a part of it may show at the left edge.
        right: the same after the word.
        version: synth version; 3 adds the looks of `ocr_core.scene` (versions 1 and 2 draw the same).
        backgrounds: (version 3) picture files to crop natural backgrounds from.

    Returns:
        The image (H, W, 3), RGB.
    """
    v3 = version >= 3
    if v3:  # real crops: 17-116 px high (p10-p90), many small ones that get upscaled
        height = int(np.clip(round(rng.lognormal(np.log(32), 0.45)), 12, 110))
    else:
        height = int(np.clip(round(rng.lognormal(np.log(34), 0.33)), 20, 80))
    size = int(np.clip(round(height * rng.uniform(0.75, 1.05)), 12, 96))
    if font.thin:
        size = max(size, 30)
    stroke = max(1, round(size * rng.uniform(0.03, 0.08))) if rng.random() < 0.12 else 0
    layout = _draw_text(rng, text, font.path, size, stroke, left, right)

    # Only the surroundings the crop can reach are warped: warping the whole canvas costs more than the rest.
    x, y, bw, bh = cv2.boundingRect(layout.box)
    reach_x = [int(0.5 * size + max(gap, 0.0)) for gap in (layout.gap_left, layout.gap_right)]
    reach_y = int(0.5 * size)
    ys, xs = slice(max(0, y - reach_y), y + bh + reach_y), slice(max(0, x - reach_x[0]), x + bw + reach_x[1])
    planes = [layout.fill[ys, xs], layout.box[ys, xs]] + ([layout.outer[ys, xs]] if stroke else [])
    stack = _warp(rng, np.dstack(planes), size, version)
    x, y, bw, bh = cv2.boundingRect(stack[..., 1])
    pad_t, pad_b = (int(rng.uniform(0.0, 0.22) * bh) for _ in range(2))
    pads = []
    loose = v3 and rng.random() < 0.25  # a detector's loose box, often off-centre
    for gap in (layout.gap_left, layout.gap_right):
        pad = rng.uniform(0.0, 0.35) * bh
        if loose:
            pad = rng.uniform(0.0, 0.7) * bh
        if gap >= 0:  # show a slice of the neighbouring word, cut by the crop edge
            pad = gap + rng.uniform(0.02, 0.12) * size
        pads.append(int(pad))
    y0, y1 = max(0, y - pad_t), min(stack.shape[0], y + bh + pad_b)
    x0, x1 = max(0, x - pads[0]), min(stack.shape[1], x + bw + pads[1])
    crop = stack[y0:y1, x0:x1].astype(np.float32) / 255.0
    h, w = crop.shape[:2]
    fill = crop[..., 0:1]
    outer = crop[..., 2:3] if stroke else fill

    dark_text = rng.random() < 0.72
    contrast = rng.uniform(70, 200) if rng.random() < 0.85 else rng.uniform(55, 70)
    if v3 and rng.random() < 0.08:  # faded, backlit, seen through glass
        contrast = rng.uniform(35, 55)
    if dark_text:
        text_l = rng.uniform(0, 255 - contrast)
        back_l = rng.uniform(text_l + contrast, 255)
    else:
        back_l = rng.uniform(0, 255 - contrast)
        text_l = rng.uniform(back_l + contrast, 255)
    photo = scene.photo_patch(rng, h, w, backgrounds) if v3 and rng.random() < 0.55 else None
    if photo is not None:  # text colour drawn against the picture's own palette
        img, back_l = scene.fit_patch(photo, contrast, rng)
        text_l, contrast = scene.text_luma_against(rng, back_l, contrast)
    else:
        img = _background(rng, h, w, back_l, 0.35 * contrast)
    text_rgb = _colour(rng, text_l)
    look = rng.random() if v3 else 1.0
    if look < 0.04:  # LED / dot-matrix sign: bright dots on a dark ground
        fill = outer = scene.dot_matrix(fill, size, rng)
    elif look < 0.14:  # painted or worn letters
        fill = scene.rough_edges(fill, size, rng)
        outer = fill if not stroke else np.maximum(outer, fill)

    if rng.random() < 0.12:  # drop shadow
        shift = rng.uniform(0.03, 0.1) * size
        angle = rng.uniform(0, 2 * np.pi)
        m = np.float32([[1, 0, shift * np.cos(angle)], [0, 1, abs(shift * np.sin(angle))]])
        shadow = cv2.warpAffine(outer[..., 0], m, (w, h))
        sigma = rng.uniform(0, 0.06) * size
        if sigma > 0.3:
            shadow = cv2.GaussianBlur(shadow, (0, 0), sigma)
        alpha = rng.uniform(0.4, 0.85) * shadow[..., None]
        img = img * (1 - alpha) + _colour(rng, min(back_l, text_l) * rng.uniform(0, 0.5)) * alpha
    if stroke:
        stroke_l = text_l + rng.choice([-1, 1]) * rng.uniform(60, 150)
        if not 0 <= stroke_l <= 255:
            stroke_l = text_l - (stroke_l - text_l)
        img = img * (1 - outer) + _colour(rng, float(np.clip(stroke_l, 0, 255))) * outer
    if rng.random() < 0.1:  # text colour that changes along the word
        other = _colour(rng, float(np.clip(text_l + rng.uniform(-25, 25), 0, 255)))
        t = np.linspace(0, 1, w, dtype=np.float32)[None, :, None]
        text_rgb = text_rgb * (1 - t) + other * t
    if v3 and photo is not None and rng.random() < 0.3:  # paint on the surface: the texture shows through
        text_rgb = text_rgb * (0.75 + 0.25 * img / (img.mean(axis=(0, 1), keepdims=True) + 1.0))
    img = img * (1 - fill) + text_rgb * fill
    if 0.14 <= look < 0.24:  # embossed or engraved: the face barely differs, its edges catch the light
        img = img * (1 - 0.3 * fill) + img.mean(axis=(0, 1)) * 0.3 * fill
        img = img + scene.bevel(fill, size, rng) * rng.uniform(60, 140)
    if v3 and rng.random() < 0.1:  # a reflection across the sign
        img = img + scene.reflection(h, w, rng) * rng.uniform(30, 110)

    if rng.random() < 0.3:  # uneven lighting
        t = scene.ramp(h, w, rng.uniform(0, 2 * np.pi))
        img = img * (rng.uniform(0.55, 0.95) + t * rng.uniform(0.1, 0.5))[..., None]

    # To the final height; sometimes squeezed or stretched as in real crops.
    out_w = max(1, round(w * height / h * (rng.uniform(0.8, 1.2) if rng.random() < 0.3 else 1.0)))
    shrink = height < h
    img = cv2.resize(img, (out_w, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    if rng.random() < (0.2 if not v3 else 0.3):  # low resolution: captured small, shown large
        # below ~11 px/em nobody reads it
        f = min(rng.uniform(1.5, 3.0 if not v3 else 4.0), size * height / h / 11)
        if f > 1.2:
            small = cv2.resize(img, (max(1, round(out_w / f)), round(height / f)),
                               interpolation=cv2.INTER_AREA)
            interp = cv2.INTER_NEAREST if rng.random() < 0.15 else cv2.INTER_LINEAR
            img = cv2.resize(small, (out_w, height), interpolation=interp)
    u = rng.random()
    if u < 0.25:
        img = cv2.GaussianBlur(img, (0, 0), min(1.5, rng.uniform(0.3, 0.8) * height / 32))
    elif u < 0.33:  # motion blur
        # (version 2's own kernel, kept apart from scene.motion_blur: its 1/k row weight rounds differently,
        # and version 2's images are pinned)
        k = int(rng.choice([3, 5]))
        kernel = np.zeros((k, k), np.float32)
        kernel[k // 2] = 1.0 / k
        rot = cv2.getRotationMatrix2D(((k - 1) / 2, (k - 1) / 2), rng.uniform(0, 180), 1.0)
        kernel = cv2.warpAffine(kernel, rot, (k, k))
        img = cv2.filter2D(img, -1, kernel / max(kernel.sum(), 1e-6))
    if v3:
        u = rng.random()
        if u < 0.08:  # out of focus
            img = scene.defocus(img, rng.uniform(0.6, 1.6) * height / 32)
        elif u < 0.16:  # camera shake, longer than above
            img = scene.motion_blur(img, int(rng.integers(5, 10)), rng.uniform(0, 180))
    if rng.random() < 0.35:
        sigma = rng.uniform(2, 10)
        noise = rng.normal(0, sigma, size=(height, out_w, 1 if rng.random() < 0.7 else 3)).astype(np.float32)
        img = img + noise
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def _jpeg_quality(rng: np.random.Generator, version: int = 2) -> int:
    u = rng.random()
    low, high = (75, 96) if u < 0.7 else (50, 75) if u < 0.95 else (30, 50)
    if version >= 3 and rng.random() < 0.1:  # heavily compressed web and video frames
        low, high = 8, 30
    return int(rng.integers(low, high))


def encode_image(rgb: np.ndarray, image_format: str, rng: np.random.Generator, version: int = 2) -> bytes:
    """JPEG at a random quality 30-95 (v3: 1 in 10 at 8-30), or PNG (a third of them carrying JPEG
    artefacts from a round trip)."""
    bgr = np.ascontiguousarray(rgb[..., ::-1])
    if image_format == "jpg":
        ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, _jpeg_quality(rng, version)])
    else:
        if rng.random() < 0.33:
            ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, _jpeg_quality(rng, version)])
            bgr = cv2.imdecode(buf, cv2.IMREAD_COLOR)
        ok, buf = cv2.imencode(".png", bgr)
    if not ok:
        raise RuntimeError(f"OpenCV could not encode a {bgr.shape} image as {image_format}")
    return buf.tobytes()


# --- datasets ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    """One generated image."""

    index: int
    label: str
    font: FontInfo
    data: bytes


class SampleMaker:
    """Makes image `index` of a dataset from (seed, index) alone; picklable, so pool workers get a copy.

    Fonts are drawn design group first, then family, then file, so the many weights of Lato or the three
    Helvetica clones do not crowd out single-file designs.

    Args:
        seed: the dataset seed (>= 0).
        font_list: the fonts to draw with.
        image_format: "jpg" or "png".
        words_path: the dictionary.
        version: synth version (see SYNTH_VERSIONS).
        backgrounds: (version 3) picture files for natural backgrounds.
    """

    def __init__(self, seed: int, font_list: tuple[FontInfo, ...], image_format: str = "jpg",
                 words_path: str = DEFAULT_WORDS, version: int = SYNTH_VERSION,
                 backgrounds: tuple[str, ...] = ()):
        if seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        if not font_list:
            raise ValueError("no fonts to draw with; install the Debian font packages (make system-deps)")
        if image_format not in IMAGE_FORMATS:
            raise ValueError(f"image format {image_format!r} is not one of {', '.join(IMAGE_FORMATS)}")
        self.seed, self.font_list = seed, font_list
        if version not in SYNTH_VERSIONS:
            raise ValueError(f"synth version {version} is not one of {SYNTH_VERSIONS}")
        self.image_format, self.words_path = image_format, words_path
        self.version, self.backgrounds = version, tuple(backgrounds)
        tree: dict[str, dict[str, list[FontInfo]]] = {}
        for f in sorted(font_list, key=lambda f: f.path):
            tree.setdefault(f.group, {}).setdefault(f.family, []).append(f)
        self._tree = [[fam for _, fam in sorted(fams.items())] for _, fams in sorted(tree.items())]

    @functools.cached_property
    def sampler(self) -> TextSampler:
        return TextSampler(self.words_path)

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "sampler"}  # each process loads its own

    def pick_font(self, rng: np.random.Generator) -> FontInfo:
        families = self._tree[rng.integers(len(self._tree))]
        files = families[rng.integers(len(families))]
        return files[rng.integers(len(files))]

    def __call__(self, index: int) -> Sample:
        rng = np.random.default_rng([self.seed, index])
        label = self.sampler.sample(rng, upper_share=0.35 if self.version >= 3 else None)
        font = self.pick_font(rng)
        left = self.sampler.word(rng)[-3:] if rng.random() < 0.08 else ""
        right = self.sampler.word(rng)[:3] if rng.random() < 0.08 else ""
        rgb = render_word(label, font, rng, left, right, self.version, self.backgrounds)
        return Sample(index, label, font, encode_image(rgb, self.image_format, rng, self.version))


# A pool worker's SampleMaker, set once by the pool initializer so tasks carry only an index.
_worker_maker: SampleMaker | None = None


def _init_worker(maker: SampleMaker) -> None:
    global _worker_maker
    cv2.setNumThreads(1)  # the pool already uses every core
    _worker_maker = maker


def _make_in_worker(index: int) -> Sample:
    return _worker_maker(index)


@contextlib.contextmanager
def _sample_stream(maker: SampleMaker, count: int, workers: int) -> Iterator[Iterator[Sample]]:
    """Samples 0..count-1 in index order, made in this process (workers <= 1) or by a pool."""
    if workers <= 1 or count < 2:
        yield map(maker, range(count))
        return
    import multiprocessing

    # spawn, not fork: the caller (tests, a training job) may run TensorFlow threads that fork would copy in
    # an unknown state.
    with multiprocessing.get_context("spawn").Pool(workers, _init_worker, (maker,)) as pool:
        yield pool.imap(_make_in_worker, range(count), chunksize=max(1, min(64, count // (workers * 8))))


def _clear_previous(out_dir: Path) -> None:
    """Removes what an earlier `generate` wrote into out_dir, as named by its synth.json."""
    meta = out_dir / "synth.json"
    if not meta.exists():
        return
    layout = json.loads(meta.read_text()).get("layout")
    if layout == "tsv" and (out_dir / "images").is_dir():
        shutil.rmtree(out_dir / "images")
    elif layout == "mjsynth":
        for d in out_dir.iterdir():
            if d.is_dir() and d.name.isdigit():
                shutil.rmtree(d)
    for name in (TSV_LABELS, MJSYNTH_LABELS, "lexicon.txt", "fonts.tsv", "synth.json"):
        (out_dir / name).unlink(missing_ok=True)


def existing_dataset(out_dir: str | os.PathLike) -> Path | None:
    """The labels file of a dataset already in out_dir, if any."""
    found = [p for p in (Path(out_dir) / TSV_LABELS, Path(out_dir) / MJSYNTH_LABELS) if p.exists()]
    return found[0] if found else None


def labels_file(out_dir: str | os.PathLike, layout: str) -> Path:
    """Where `generate` writes the labels for a layout."""
    return Path(out_dir) / (TSV_LABELS if layout == "tsv" else MJSYNTH_LABELS)


def generate(out_dir: str | os.PathLike, count: int, seed: int = 0, layout: str = "tsv", workers: int = 2,
             font_split: str = "train", progress: bool = True, image_format: str = "jpg",
             font_dir: str | None = None, words_path: str = DEFAULT_WORDS, overwrite: bool = False,
             version: int = SYNTH_VERSION, background_dirs: tuple[str, ...] = scene.BACKGROUND_DIRS) -> Path:
    """Writes `count` synthetic word images and their labels; the same seed gives byte-identical files.

    Layouts:
        tsv: images/000/0000000.jpg (10,000 a folder) and labels.tsv lines "images/000/0000000.jpg<TAB>label".
        mjsynth: <a>/<b>/<index>_<Label>_<lexidx>.jpg, annotation.txt lines "./<a>/<b>/<file> <lexidx>" and
            lexicon.txt (the distinct labels, lexidx = line number from 0).
    Both also write synth.json (options, fonts, usage) and fonts.tsv ("path<TAB>family<TAB>font file").

    Args:
        out_dir: the dataset directory (created).
        count: number of images.
        seed: dataset seed; image i depends only on (seed, i).
        layout: "tsv" or "mjsynth".
        workers: processes; 1 renders in this process. The output does not depend on it.
        font_split: "train", "heldout" or "all" (see `fonts`).
        progress: a tqdm bar on stderr.
        image_format: "jpg" or "png".
        font_dir: another directory of fonts besides the system ones.
        words_path: the dictionary.
        overwrite: replace an earlier dataset in out_dir instead of refusing.
        version: synth version; 2 reproduces the pinned held-out benchmark images.
        background_dirs: (version 3) where to find background pictures; without any, version 3 draws the
            procedural backgrounds only (synth.json lists the pictures used).

    Returns:
        The labels file (labels.tsv or annotation.txt).
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout {layout!r} is not one of {', '.join(LAYOUTS)}")
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    out = Path(out_dir)
    existing = existing_dataset(out)
    if existing and not overwrite:
        raise FileExistsError(f"{existing} exists: {out} already holds a dataset")
    if overwrite:
        _clear_previous(out)
    font_list = fonts(font_split, font_dir)
    backgrounds = scene.background_files(tuple(background_dirs)) if version >= 3 else ()
    maker = SampleMaker(seed, font_list, image_format, words_path, version, backgrounds)
    out.mkdir(parents=True, exist_ok=True)

    from tqdm import tqdm

    usage: dict[str, int] = {}
    lexicon: dict[str, int] = {}
    made_dirs: set[Path] = set()
    target = labels_file(out, layout)
    tmp = target.with_name(target.name + ".tmp")
    with contextlib.ExitStack() as stack:
        samples = stack.enter_context(_sample_stream(maker, count, workers))
        bar = stack.enter_context(tqdm(total=count, desc="synth", unit="img", file=sys.stderr,
                                       disable=not progress))
        labels_out = stack.enter_context(open(tmp, "w", encoding="utf-8"))
        fonts_out = stack.enter_context(open(out / "fonts.tsv", "w", encoding="utf-8"))
        for s in samples:
            if layout == "tsv":
                rel = f"images/{s.index // FILES_PER_DIR:03d}/{s.index:07d}.{image_format}"
                labels_out.write(f"{rel}\t{s.label}\n")
            else:
                lex = lexicon.setdefault(s.label, len(lexicon))
                rel = (f"{s.index // FILES_PER_DIR + 1}/{s.index // 1000 % 10 + 1}/"
                       f"{s.index}_{s.label}_{lex}.{image_format}")
                labels_out.write(f"./{rel} {lex}\n")
            path = out / rel
            if path.parent not in made_dirs:
                path.parent.mkdir(parents=True, exist_ok=True)
                made_dirs.add(path.parent)
            path.write_bytes(s.data)
            fonts_out.write(f"{rel}\t{s.font.family}\t{Path(s.font.path).name}\n")
            usage[s.font.family] = usage.get(s.font.family, 0) + 1
            bar.update()

    if layout == "mjsynth":
        (out / "lexicon.txt").write_text("".join(f"{w}\n" for w in lexicon))
    meta = {
        "synth_version": version, "count": count, "seed": seed, "layout": layout,
        "image_format": image_format, "font_split": font_split, "font_dirs": list(DEFAULT_FONT_DIRS) + (
            [str(font_dir)] if font_dir else []),
        "words": {"path": str(words_path), "usable": len(maker.sampler.words)},
        "backgrounds": list(backgrounds),
        "font_usage": dict(sorted(usage.items())),
        "fonts": [asdict(f) for f in font_list],
        # Without libraqm (Debian libfribidi0) no font gets old-style figures: a different dataset.
        "oldstyle_figures": sorted(Path(f.path).name for f in font_list if has_oldstyle_figures(f.path)),
    }
    (out / "synth.json").write_text(json.dumps(meta, indent=1) + "\n")
    # The labels file appears last, by a rename: its presence means the dataset is complete.
    os.replace(tmp, target)
    return target
