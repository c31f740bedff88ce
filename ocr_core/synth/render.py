"""Drawing one word image: text layout with neighbouring fragments, warps, colours, procedural backgrounds,
blur, noise and image encoding, for every synth version (version 3 adds the looks of `scene`)."""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image, ImageDraw

from ocr_core.preprocess import GRAY_WEIGHTS
from ocr_core.synth import scene
from ocr_core.synth.fontset import (
    OLDSTYLE_FEATURE,
    FontInfo,
    has_oldstyle_figures,
    load_font,
    load_shaping_font,
)

SYNTH_VERSION = 3  # 2: old-style figures; 3: natural backgrounds, signage looks, detector-like crops;
# 4: 3 plus unlabelled punctuation around and inside a fifth of the words (text.punctuate);
# 5: 4 plus large sign crops (signs: arcs, script/brush/display faces, relief, ornaments), see docs/signs.md
SYNTH_VERSIONS = (1, 2, 3, 4, 5)  # 1 is 2 without old-style figures (on a machine without Raqm)
IMAGE_FORMATS = ("jpg", "png")
OLDSTYLE_SHARE = 0.3  # of the texts with digits, in fonts that have old-style figures


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
    font = load_font(path, size)
    _, top, _, bottom = font.getbbox("Hdgy", anchor="ls")
    return font.getlength(" "), top, bottom


def _draw_text(rng: np.random.Generator, text: str, path: str, size: int, stroke: int, left: str,
               right: str) -> _Layout:
    font, shaping = load_font(path, size), {}
    if any(c.isdigit() for c in text) and rng.random() < OLDSTYLE_SHARE and has_oldstyle_figures(path):
        font, shaping = load_shaping_font(path, size), {"features": [OLDSTYLE_FEATURE]}
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


def _warp(rng: np.random.Generator, stack: np.ndarray, size: int, version: int = 2,
          line: bool = False) -> np.ndarray:
    """Arc, rotation, shear and perspective of the stacked masks; the canvas grows to keep every pixel.

    A `line` turns by at most the angle that moves its ends half a letter height up or down: a long line
    photographed at a slant is cut into words by a detector, not handed over as one crop."""
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
        if line:
            most = math.atan(0.5 * size / max(w, 1))
            angle = float(np.clip(angle, -most, most))
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
                right: str = "", version: int = 2, backgrounds: tuple[str, ...] = (),
                line: bool = False) -> np.ndarray:
    """One MJSynth-like crop of `text`, RGB uint8, 20-80 px high and as wide as the text needs.

    Args:
        text: the word; its image is tight-ish around it with random padding.
        font: the font to draw with.
        rng: every random choice comes from here, so the same generator state gives the same image.
        left: text of a neighbouring word before this one; a part of it may show at the left edge.
        right: the same after the word.
        version: synth version; 3 adds the looks of `scene` (versions 1 and 2 draw the same).
        backgrounds: (version 3) picture files to crop natural backgrounds from.
        line: `text` is a line of words: its slant is kept small (see `_warp`).

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
    stack = _warp(rng, np.dstack(planes), size, version, line)
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
