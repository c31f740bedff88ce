"""The fonts synth draws with: installed fonts that render every character as a distinct Latin glyph, their
families and design groups, the train/held-out split (pinned held-out families and files, clones of held-out
designs quarantined), and loading a font at a size."""
from __future__ import annotations

import functools
import hashlib
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import ImageFont, features

from ocr_core.charset import DEFAULT_CHARACTERS

# TeX Gyre lives under texmf on Debian (fonts-texgyre), not under /usr/share/fonts.
# `make synth-assets` unpacks the Latin fonts of the `trdg` wheel into <venv>/share/ocr-fonts.
DEFAULT_FONT_DIRS = ("/usr/share/fonts", "/usr/share/texmf/fonts/opentype",
                     os.path.join(sys.prefix, "share", "ocr-fonts"))
FONT_SPLITS = ("train", "heldout", "all")
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


@functools.lru_cache(maxsize=512)
def load_font(path: str, size: int) -> ImageFont.FreeTypeFont:
    """The font at a size, with Pillow's basic layout."""
    # Basic layout is twice as fast overall as Raqm here; it loses GPOS kerning, which the random tracking
    # (letter spacing) more than covers for a recognizer.
    return ImageFont.truetype(path, size, layout_engine=ImageFont.Layout.BASIC)


@functools.lru_cache(maxsize=64)
def load_shaping_font(path: str, size: int) -> ImageFont.FreeTypeFont | None:
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
    font = load_shaping_font(path, _FP_SIZE)
    if font is None:
        return False
    digits = "0123456789"
    return bytes(font.getmask(digits)) != bytes(font.getmask(digits, features=[OLDSTYLE_FEATURE]))
