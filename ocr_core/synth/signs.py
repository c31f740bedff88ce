"""Synth version 5: the large sign crops the model reads worst (issue 19 item 2), drawn on purpose.

Text on arcs and circles as on round plaques, badges and crests (each character placed on the arc and turned
to its tangent), script, brush and display faces from a curated list checked by rendering, embossed,
engraved, bevelled, metallic and 3-D extruded letters, and large clean crops with ornaments (rules, borders,
stars) and loose margins. `sample` sends a share of version 5's images here; what the real crops look like
and the shares are in docs/signs.md.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ocr_core.synth import scene
from ocr_core.synth.fontset import FontInfo, load_font
from ocr_core.synth.relief import RELIEFS, _relief, apply_relief  # noqa: F401 (RELIEFS: the shares, here too)
from ocr_core.synth.render import _background, _colour
from ocr_core.synth.sign_fonts import (  # noqa: F401 (the faces' API, here too)
    STYLE_FAMILIES,
    StylePool,
    caps_only,
    misdraws_letters,
    novelty_face,
    plain_letters,
    style_pool,
    style_problem,
)

# ---------------------------------------------------------------------------------------------------------
# Layout: the word straight or along an arc, and the ornaments around it, as coverage masks on one canvas.

ARC_SHARE = 0.45  # of the sign crops of 4+ characters (64 % of sign labels): ~29 % of all sign crops
ORNAMENT_SHARE = 0.45  # rules, borders or stars around the text
# of the straight words without ornaments (~10 % of sign crops, as in the real ones): a slice of another line
NEIGHBOUR_SHARE = 0.25
# The looks of the letters and their shares (the rest flat); docs/signs.md says why.


@dataclass
class SignLayout:
    """A sign drawn as masks: the letters, the ornaments, and the rectangle the crop is taken around."""

    fill: np.ndarray  # float32 (H, W) letter coverage in [0, 1]
    deco: np.ndarray  # float32 (H, W) ornament coverage
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 of the text (and the ornaments that belong to it)
    size: int  # em size in px
    # px from the box's top and bottom to a neighbouring line of text the crop may cut into, or -1
    neighbours: tuple[float, float] = (-1.0, -1.0)


def _glyph_patch(font: ImageFont.FreeTypeFont, ch: str, angle: float, pad: int) -> np.ndarray:
    """One character drawn with its baseline centre at the middle of a square patch, turned by `angle`
    radians (clockwise on screen)."""
    patch = Image.new("L", (2 * pad, 2 * pad))
    ImageDraw.Draw(patch).text((pad, pad), ch, font=font, fill=255, anchor="ms")
    if angle:
        patch = patch.rotate(-math.degrees(angle), resample=Image.BICUBIC, center=(pad, pad))
    return np.asarray(patch, np.float32) / 255.0


def arc_text(text: str, path: str, size: int, sweep: float, below: bool = False,
             tracking: float = 0.0) -> tuple[np.ndarray, tuple[float, float, float]]:
    """The word along a circle, each character on the arc and turned to its tangent.

    Args:
        text: the word.
        path: font file.
        size: em size in px.
        sweep: the angle the word spans, radians (pi: a half circle); the radius follows from the word's
            length, never below 1.1 em so the letters do not collide at the centre side.
        below: False: over the top of the circle, letters pointing out (a plaque's or badge's upper text);
            True: along the bottom, letters pointing to the centre and still read left to right.
        tracking: extra space between characters, in em.

    Returns:
        (coverage (H, W) float32 in [0, 1] tight around the ink, (centre x, centre y, baseline radius) of the
        circle in its coordinates).
    """
    font = load_font(path, size)
    advances = [font.getlength(c) + tracking * size for c in text]
    total = sum(advances)
    radius = max(1.1 * size, total / max(sweep, 1e-3))
    pad = int(1.5 * size) + 2
    extent = int(radius + 2 * pad)
    canvas = np.zeros((2 * extent, 2 * extent), np.float32)
    cx = cy = extent
    s = -total / 2
    for c, advance in zip(text, advances):
        phi = (s + advance / 2) / radius
        s += advance
        if c == " ":
            continue
        if below:  # centre above the text: the baseline runs along the bottom of the circle
            x, y, turn = cx + radius * math.sin(phi), cy + radius * math.cos(phi), -phi
        else:
            x, y, turn = cx + radius * math.sin(phi), cy - radius * math.cos(phi), phi
        patch = _glyph_patch(font, c, turn, pad)
        x0, y0 = int(round(x)) - pad, int(round(y)) - pad
        region = canvas[y0:y0 + 2 * pad, x0:x0 + 2 * pad]
        np.maximum(region, patch, out=region)
    x, y, w, h = cv2.boundingRect((canvas > 0.02).astype(np.uint8))
    return canvas[y:y + h, x:x + w], (cx - x, cy - y, radius)


def straight_text(text: str, path: str, size: int, tracking: float = 0.0) -> np.ndarray:
    """The word on a straight baseline with extra `tracking` em between characters, tight around its ink."""
    font = load_font(path, size)
    advances = [font.getlength(c) + tracking * size for c in text]
    ascent, descent = font.getmetrics()
    width, height = int(sum(advances) + 2 * size), int(ascent + descent + 2 * size)
    img = Image.new("L", (width, height))
    draw = ImageDraw.Draw(img)
    if tracking:
        x = size
        for c, advance in zip(text, advances):
            draw.text((x, size + ascent), c, font=font, fill=255, anchor="ls")
            x += advance
    else:
        draw.text((size, size + ascent), text, font=font, fill=255, anchor="ls")
    canvas = np.asarray(img, np.float32) / 255.0
    x, y, w, h = cv2.boundingRect((canvas > 0.02).astype(np.uint8))
    return canvas[y:y + h, x:x + w]


def _star(draw: ImageDraw.ImageDraw, cx: float, cy: float, r: float, points: int, rot: float) -> None:
    pts = []
    for k in range(2 * points):
        rr = r if k % 2 == 0 else r * 0.42
        a = rot + math.pi * k / points
        pts.append((cx + rr * math.sin(a), cy - rr * math.cos(a)))
    draw.polygon(pts, fill=255)


def _ornaments(rng: np.random.Generator, h: int, w: int, box: list[float], size: int,
               circle: tuple[float, float, float, float] | None) -> tuple[np.ndarray, list[float]]:
    """Ornaments around the text box on an (h, w) canvas: rules above/below, a frame (a ring for arc text),
    or stars or dots beside the word. Returns (coverage, the box grown over the ornaments that frame it)."""
    img = Image.new("L", (w, h))
    draw = ImageDraw.Draw(img)
    x0, y0, x1, y1 = box
    t = max(1, round(size * rng.uniform(0.025, 0.07)))
    kind = rng.random()
    grown = list(box)
    if circle is not None:  # a badge's ring(s) outside and/or inside the band of letters (stars or rules
        # beside an arc would cut into its ends)
        cx, cy, r_in, r_out = circle
        for k in range(1 if rng.random() < 0.5 else 2):
            gap = rng.uniform(0.1, 0.35) * size
            rr = r_out + gap if k == 0 else r_in - gap
            if rr > 0.5 * size:  # no inner ring on a tight circle: it would cross the letters
                draw.ellipse([cx - rr, cy - rr, cx + rr, cy + rr], outline=255, width=t)
        return np.asarray(img, np.float32) / 255.0, grown
    if kind < 0.35:  # rules above and/or below, single or double
        gap = rng.uniform(0.12, 0.4) * size
        ext = rng.uniform(-0.05, 0.3) * (x1 - x0)
        sides = [(y0 - gap, -1), (y1 + gap, 1)]
        u = rng.random()
        chosen = sides if u < 0.5 else sides[:1] if u < 0.7 else sides[1:]
        for y, sign in chosen:
            for k in range(1 if rng.random() < 0.6 else 2):
                yy = y + sign * k * 2.5 * t
                draw.rectangle([x0 - ext, yy - t / 2, x1 + ext, yy + t / 2], fill=255)
                grown = [min(grown[0], x0 - ext), min(grown[1], yy - t), max(grown[2], x1 + ext),
                         max(grown[3], yy + t)]
    elif kind < 0.65:  # a frame, square or rounded, sometimes doubled
        pad = rng.uniform(0.2, 0.6) * size
        frame = [x0 - pad, y0 - pad, x1 + pad, y1 + pad]
        radius = rng.uniform(0, 0.5) * size if rng.random() < 0.5 else 0
        for k in range(1 if rng.random() < 0.6 else 2):
            f = [frame[0] - k * 3 * t, frame[1] - k * 3 * t, frame[2] + k * 3 * t, frame[3] + k * 3 * t]
            draw.rounded_rectangle(f, radius=radius, outline=255, width=t)
            grown = [min(grown[0], f[0]), min(grown[1], f[1]), max(grown[2], f[2]), max(grown[3], f[3])]
    else:  # stars, dots or diamonds beside the word
        r = rng.uniform(0.12, 0.3) * size
        gap = rng.uniform(0.25, 0.7) * size + r
        cy = (y0 + y1) / 2 + rng.uniform(-0.1, 0.1) * size
        n = int(rng.choice([1, 1, 1, 2, 3]))
        shape = rng.random()
        for side in (-1, 1):
            for k in range(n):
                cx = (x0 - gap - k * 2.4 * r) if side < 0 else (x1 + gap + k * 2.4 * r)
                if shape < 0.6:
                    _star(draw, cx, cy, r, 5, 0.0)
                elif shape < 0.8:
                    draw.ellipse([cx - r / 2, cy - r / 2, cx + r / 2, cy + r / 2], fill=255)
                else:
                    diamond = [(cx, cy - r), (cx + r * 0.6, cy), (cx, cy + r), (cx - r * 0.6, cy)]
                    draw.polygon(diamond, fill=255)
    return np.asarray(img, np.float32) / 255.0, grown


def sign_layout(text: str, path: str, size: int, rng: np.random.Generator) -> SignLayout:
    """The word (straight or on an arc, sometimes widely tracked) and its ornaments on a roomy canvas."""
    tracking = rng.uniform(0.1, 0.6) if rng.random() < 0.2 else rng.uniform(-0.03, 0.08)
    circle = None  # (centre x, centre y, inner and outer radius of the band of letters) for arc text
    if rng.random() < ARC_SHARE and len(text) >= 4:  # a word of 1-3 letters hardly bends on a real badge
        # Plaques and badges: from a third of a circle to more than a half; short words bend less.
        sweep = rng.uniform(0.35, 1.15) * math.pi
        below = rng.random() < 0.3
        word, (cx, cy, radius) = arc_text(text, path, size, sweep, below, tracking * 0.5)
        # the band the letters fill: out from the baseline over the top, in from it along the bottom
        band = (radius - 0.3 * size, radius + 0.85 * size) if not below else (radius - 0.85 * size,
                                                                            radius + 0.3 * size)
        circle = (cx, cy) + band
    else:
        word = straight_text(text, path, size, tracking)
    margin = int(1.6 * size)
    h, w = word.shape[0] + 2 * margin, word.shape[1] + 2 * margin
    fill = np.zeros((h, w), np.float32)
    fill[margin:margin + word.shape[0], margin:margin + word.shape[1]] = word
    box = [margin, margin, margin + word.shape[1], margin + word.shape[0]]
    if circle is not None:
        circle = (circle[0] + margin, circle[1] + margin, circle[2], circle[3])
    deco = np.zeros_like(fill)
    neighbours = [-1.0, -1.0]
    if rng.random() < ORNAMENT_SHARE:
        deco, box = _ornaments(rng, h, w, box, size, circle)
    elif circle is None and rng.random() < NEIGHBOUR_SHARE:
        _neighbour_line(rng, fill, box, path, size, neighbours)
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    return SignLayout(fill, deco, (max(0, x0), max(0, y0), min(w, x1), min(h, y1)), size, tuple(neighbours))


def _neighbour_line(rng: np.random.Generator, fill: np.ndarray, box: list[float], path: str, size: int,
                    neighbours: list[float]) -> None:
    """Another line of the sign above or below the word (random letters: the crop shows only a slice of it),
    drawn into `fill`; its distance from the box goes into `neighbours`."""
    letters = "ABCDEFGHIJKLMNOPRSTUWabcdefghiklmnoprstuy0123456789"
    other = "".join(letters[i] for i in rng.integers(len(letters), size=int(rng.integers(4, 14))))
    line = straight_text(other, path, max(8, int(size * rng.uniform(0.5, 1.0))))
    gap = rng.uniform(0.12, 0.45) * size
    side = int(rng.random() < 0.5)  # 0: above, 1: below
    h, w = fill.shape
    top = int(box[1] - gap - line.shape[0]) if side == 0 else int(box[3] + gap)
    left = int(box[0] + rng.uniform(-0.4, 0.4) * (box[2] - box[0]))
    ys, xs = max(0, top), max(0, left)
    ye, xe = min(h, top + line.shape[0]), min(w, left + line.shape[1])
    if ye <= ys or xe <= xs:
        return
    region = fill[ys:ye, xs:xe]
    np.maximum(region, line[ys - top:ye - top, xs - left:xe - left], out=region)
    neighbours[side] = gap


# ---------------------------------------------------------------------------------------------------------

def render_sign(text: str, font: FontInfo, rng: np.random.Generator,
                backgrounds: tuple[str, ...] = ()) -> np.ndarray:
    """One large sign crop of `text`: RGB uint8, 48-200 px high, loose margins, mostly sharp.

    Args:
        text: what is drawn (the label, or the label with punctuation).
        font: the font (usually a script, brush or display face from `StylePool`).
        rng: every random choice comes from here.
        backgrounds: picture files for natural backgrounds.

    Returns:
        The image (H, W, 3), RGB.
    """
    height = int(np.clip(round(rng.lognormal(math.log(88), 0.35)), 48, 200))
    size = int(np.clip(round(height * rng.uniform(0.55, 0.85)), 40, 110))
    layout = sign_layout(text, font.path, size, rng)
    x0, y0, x1, y1 = layout.box
    bh = y1 - y0
    # Loose, often uneven margins: big clean crops leave room around the word.
    pads = [rng.uniform(0.05, 0.6) * bh if rng.random() < 0.6 else rng.uniform(0.0, 0.15) * bh
            for _ in range(4)]
    hh, ww = layout.fill.shape
    for side, reach in ((1, layout.neighbours[0]), (3, layout.neighbours[1])):
        if reach >= 0:  # cut into the neighbouring line
            pads[side] = reach + rng.uniform(0.1, 0.45) * layout.size
    fill, deco = layout.fill, layout.deco
    # A slightly turned (35 %) or foreshortened (20 %) sign, warped before the crop so no letter is cut off.
    corners = np.float32([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])
    moved = corners.copy()
    if rng.random() < 0.35:
        turn = math.radians(float(np.clip(rng.normal(0, 3.5), -10, 10)))
        c, s_ = math.cos(turn), math.sin(turn)
        centre = corners.mean(axis=0)
        moved = (moved - centre) @ np.float32([[c, s_], [-s_, c]]) + centre
    if rng.random() < 0.2:  # seen from one side or from below: the ends at different heights and sizes
        reach = np.float32([0.06 * (x1 - x0), 0.2 * (y1 - y0)])
        moved = moved + rng.uniform(-1, 1, size=(4, 2)).astype(np.float32) * reach
    if not np.array_equal(moved, corners):
        m = cv2.getPerspectiveTransform(corners, moved.astype(np.float32))
        fill, deco = (cv2.warpPerspective(plane, m, (ww, hh)) for plane in (fill, deco))
        (rx0, ry0), (rx1, ry1) = moved.min(axis=0), moved.max(axis=0)
        cx0, cy0 = max(0, int(rx0 - pads[0])), max(0, int(ry0 - pads[1]))
        cx1, cy1 = min(ww, int(rx1 + pads[2]) + 1), min(hh, int(ry1 + pads[3]) + 1)
    else:
        cx0, cy0 = max(0, int(x0 - pads[0])), max(0, int(y0 - pads[1]))
        cx1, cy1 = min(ww, int(x1 + pads[2]) + 1), min(hh, int(y1 + pads[3]) + 1)
    fill, deco = fill[cy0:cy1, cx0:cx1], deco[cy0:cy1, cx0:cx1]
    h, w = fill.shape

    kind = _relief(rng)
    dark_ground = kind == "glow" or rng.random() < 0.35
    back_l = rng.uniform(0, 70) if dark_ground else rng.uniform(90, 245)
    if kind in ("emboss", "engrave"):  # relief in the surface shows on mid tones: black or white swallows it
        back_l = rng.uniform(70, 200)
    contrast = rng.uniform(80, 200)
    photo = scene.photo_patch(rng, h, w, backgrounds) if rng.random() < 0.4 else None
    if photo is not None:
        bg, back_l = scene.fit_patch(photo, contrast * 0.7, rng)
        if kind in ("emboss", "engrave") and not 60 <= back_l <= 210:  # the picture's tones, moved to mid
            bg, back_l = bg + (float(np.clip(back_l, 60, 210)) - back_l), float(np.clip(back_l, 60, 210))
    else:
        bg = _background(rng, h, w, back_l, 0.25 * contrast)
    text_l = back_l + contrast if back_l + contrast <= 255 else back_l - contrast
    text_l = float(np.clip(text_l, 0, 255))
    rgb = _colour(rng, text_l)
    if deco.any():  # ornaments: the text's own colour and look, or a second colour, drawn flat
        if rng.random() < 0.6:
            fill = np.maximum(fill, deco)
        else:
            other = _colour(rng, float(np.clip(text_l + rng.uniform(-40, 40), 0, 255)))
            bg = bg * (1 - deco[..., None]) + other * deco[..., None]
    img = apply_relief(kind, fill, bg, rgb, size, rng)

    if rng.random() < 0.25:  # uneven lighting
        t = scene.ramp(h, w, rng.uniform(0, 2 * math.pi))
        img = img * (rng.uniform(0.6, 0.95) + t * rng.uniform(0.1, 0.45))[..., None]
    out_w = max(1, round(w * height / h * (rng.uniform(0.85, 1.15) if rng.random() < 0.3 else 1.0)))
    img = cv2.resize(img, (out_w, height), interpolation=cv2.INTER_AREA if height < h else cv2.INTER_LINEAR)
    u = rng.random()
    if u < 0.25:
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.4, 1.2) * height / 64)
    elif u < 0.33:
        img = scene.motion_blur(img, int(rng.integers(3, 8)), rng.uniform(0, 180))
    if rng.random() < 0.3:
        img = img + rng.normal(0, rng.uniform(2, 8), size=(height, out_w, 1)).astype(np.float32)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)
