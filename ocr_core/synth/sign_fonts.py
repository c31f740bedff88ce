"""Synth version 5's faces for sign crops: script, brush and display families from a curated list, each file
checked by rendering (`style_problem`: Greek drawn on Latin code points, dotted or stencil strokes, letters
fused into one shape, outline-only faces), and the fonts that misdraw letters (`misdraws_letters`)."""
from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import ImageFont

from ocr_core.synth.fontset import FontInfo

# Families by look, picked from the installed pool by eye on a rendered specimen sheet (docs/signs.md);
# `style_problem` still checks every file by rendering. Families not installed are skipped.
STYLE_FAMILIES = {
    "script": (
        "Dancing Script", "Kaushan Script", "Pacifico", "Lobster Two", "Leckerli One",
        "Romande ADF Script Std", "TeX Gyre Chorus", "Z003", "Chancery Uralic", "Isabella", "Rufscript"),
    "brush": (
        "FFF Tusj", "Cherry Bomb", "DkgHandwriting", "Johnny Mac Scrawl BRK", "Mad's Scrawl BRK",
        "Comic Neue", "Humor Sans", "Fatboy Slim BLTC BRK", "Cabin Sketch", "Klee One",
        "Reggae One", "RocknRoll One"),
    "display": (
        "Yanone Kaffeesatz", "League Spartan", "Averia GWF", "Comfortaa", "Lemonada", "StayPuft", "Engadget",
        "Century Catalogue", "Walkway", "Caviar Dreams", "Le Murmure", "National Park", "Blankenburg_UNZ1A",
        "Gothic Uralic", "Zainer", "Linden Hill", "Goudy Bookletter", "Old Standard TT", "MPH 2B Damase",
        "Millimetre", "Hamlet", "Caliban", "Kaliber Solid BRK", "Jasper Solid BRK",
        "Gaposis Solid BRK", "Enthuse Solid BRK", "Galvanize BRK", "Roadgeek Series D", "Tiresias Signfont",
        "Jessen", "Klaudia", "Berenika", "Bebas Neue", "Lobster", "Mekanus ADF Titling Std", "Summersby"),
}
_PROBE_TEXT = "Hamburg Cafe 2931 QxyR"  # no i or j: every character is one connected shape in a normal face
_PROBE_SIZE = 64  # large, as on signs: display cuts' hairlines break at 40 px
MAX_PIECES_PER_CHAR = 1.4  # dotted (Abecedario_punteada: 18) and stencil faces break their strokes
MIN_PIECES_PER_CHAR = 0.4  # letters fused into one shape: embossing tape, outlined blocks (Bevel BRK: 0.26)
MAX_HOLLOW = 0.45  # share of a glyph's filled outline that is not ink: outline-only faces
# Fonts that map Greek letters onto Latin code points (Ellhnikh, Alfa-beta draw "a" as alpha): the glyph of
# each Latin letter is compared with a reference font's Latin letter and its Greek look-alike.
_GREEK_PAIRS = "aα bβ dδ gγ hη lλ mμ nν pπ rρ uυ wω xξ yψ fφ"
MAX_GREEK_SHARE = 0.75  # Ellhnikh and Alfa-beta: 0.87-1.0; italic and script Latin faces: up to 0.6
_REFERENCE_FONTS = ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
                    "/usr/share/fonts/truetype/noto/NotoSans-Regular.ttf",
                    "/usr/share/fonts/truetype/freefont/FreeSans.ttf")


def _mask(font: ImageFont.FreeTypeFont, text: str) -> np.ndarray:
    """The text's ink as a uint8 array, tight around it."""
    mask = font.getmask(text)
    return np.asarray(mask, np.uint8).reshape(mask.size[1], mask.size[0])


def _shape(font: ImageFont.FreeTypeFont, ch: str) -> np.ndarray | None:
    """A glyph cropped to its ink and scaled to 16x16, zero-mean and unit-norm (None if it has no ink)."""
    g = _mask(font, ch)
    if g.size == 0 or not g.any():
        return None
    x, y, w, h = cv2.boundingRect((g > 100).astype(np.uint8))
    v = cv2.resize(g[y:y + h, x:x + w].astype(np.float32), (16, 16), interpolation=cv2.INTER_AREA).ravel()
    v -= v.mean()
    return v / (np.linalg.norm(v) + 1e-6)


@functools.lru_cache(maxsize=1)
def _reference_font() -> ImageFont.FreeTypeFont | None:
    for path in _REFERENCE_FONTS:
        try:
            return ImageFont.truetype(path, _PROBE_SIZE)
        except OSError:
            continue
    return None


def greek_share(path: str) -> float:
    """Share of the probed Latin letters whose glyph looks more like the Greek look-alike than the Latin
    letter (in a reference font with both); 0 when no reference font is installed."""
    ref = _reference_font()
    if ref is None:
        return 0.0
    font = ImageFont.truetype(path, _PROBE_SIZE)
    votes = []
    for latin, greek in _GREEK_PAIRS.split():
        g, lat, grk = _shape(font, latin), _shape(ref, latin), _shape(ref, greek)
        if g is None or lat is None or grk is None:
            continue
        votes.append(float(g @ grk) > float(g @ lat))
    return float(np.mean(votes)) if votes else 0.0


def caps_only(path: str) -> bool:
    """Whether the font draws lower case as (small) capitals: such a face would show "Cafe" as CAFE."""
    font = ImageFont.truetype(path, _PROBE_SIZE)
    sims = [float(a @ b) for a, b in ((_shape(font, c), _shape(font, c.upper())) for c in "aegnrt")
            if a is not None and b is not None]
    # Lower case as tall as the capitals (Humor Sans, Amatic), or shaped like them (small capitals).
    x_top, cap_top = font.getbbox("aenr", anchor="ls")[1], font.getbbox("HENR", anchor="ls")[1]
    return x_top <= 0.9 * cap_top or (bool(sims) and float(np.mean(sims)) > 0.85)


@functools.lru_cache(maxsize=4096)
def style_problem(path: str) -> str | None:
    """Why a font cannot draw sign text as plain Latin letters, found by rendering; None when it can.

    Reasons: "no Latin letters" (a glyph is missing), "Greek letters on Latin code points", "broken strokes"
    (dotted or stencil), "fused letters" (tape or block faces) and "outline only or hairline".
    """
    try:
        font = ImageFont.truetype(path, _PROBE_SIZE)
    except OSError:
        return "no Latin letters"
    ink = _mask(font, _PROBE_TEXT)
    if ink.size == 0 or not ink.any():
        return "no Latin letters"
    if greek_share(path) > MAX_GREEK_SHARE:
        return "Greek letters on Latin code points"
    binary = (ink > 100).astype(np.uint8)
    pieces = (cv2.connectedComponents(binary)[0] - 1) / len(_PROBE_TEXT.replace(" ", ""))
    if pieces > MAX_PIECES_PER_CHAR:
        return "broken strokes (dotted or stencil)"
    if pieces < MIN_PIECES_PER_CHAR:
        return "fused letters"
    # Hollow share: holes (background not reachable from the border) against the filled outline.
    padded = cv2.copyMakeBorder(binary, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    outside = padded.copy()
    cv2.floodFill(outside, None, (0, 0), 2)
    holes = float((outside == 0).sum())
    if holes / (holes + float(binary.sum())) > MAX_HOLLOW:
        return "outline only or hairline"
    return None


def novelty_face(font: FontInfo) -> bool:
    """One of Aenigma's ~250 "BRK" novelty faces (fonts-aenigma: shattered, striped, maze and 3-D gimmicks;
    the few plain ones are in STYLE_FAMILIES)."""
    return font.family.endswith(" BRK")


def misdraws_letters(font: FontInfo) -> bool:
    """Whether a font draws other letters than the text (Greek on Latin code points) or letters broken into
    dots or stencil pieces: never right for a labelled image, at any size (version 5 skips them everywhere;
    thin and outline faces stay for ordinary crops)."""
    problem = style_problem(font.path)
    return problem is not None and problem.startswith(("Greek", "broken"))


def plain_letters(font: FontInfo) -> bool:
    """Whether a font of the general pool may draw a sign crop: no novelty face, no `style_problem`."""
    return not novelty_face(font) and style_problem(font.path) is None


@dataclass(frozen=True)
class StylePool:
    """The fonts of a split that version 5 draws sign text with, by look; `caps` are capitals-only faces."""

    by_style: dict[str, tuple[FontInfo, ...]]
    caps: frozenset[str]

    def pick(self, rng: np.random.Generator, text: str) -> FontInfo | None:
        """A font of a random look that can draw `text` as labelled (no caps-only face for lower case)."""
        styles = [s for s in sorted(self.by_style) if self.by_style[s]]
        if not styles:
            return None
        style = styles[int(rng.integers(len(styles)))]
        fonts = self.by_style[style]
        if any(c.islower() for c in text):
            fonts = tuple(f for f in fonts if f.path not in self.caps) or fonts
        families = sorted({f.family for f in fonts})
        family = families[int(rng.integers(len(families)))]
        files = [f for f in fonts if f.family == family]
        return files[int(rng.integers(len(files)))]


def style_pool(font_list: tuple[FontInfo, ...]) -> StylePool:
    """The curated STYLE_FAMILIES among `font_list` (so held-out families stay held out), each file checked
    by `style_problem`."""
    by_style = {}
    for style, families in STYLE_FAMILIES.items():
        wanted = set(families)
        by_style[style] = tuple(f for f in font_list if f.family in wanted and style_problem(f.path) is None)
    caps = frozenset(f.path for fonts in by_style.values() for f in fonts if caps_only(f.path))
    return StylePool(by_style, caps)
