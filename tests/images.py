"""Small word images and deliberately broken files for the dataset-build, preprocessing and bundle tests
(cv2/numpy/PIL only)."""
from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

INK = 20
PAPER = 235
WORDS = ["Hello", "World", "foo", "Bar42", "ocr", "Beam", "tf", "Data", "word", "x1y2", "Q", "zz9"]


def word_image(text: str, height: int = 40, ink: int = INK, paper: int = PAPER,
               scale: float = 1.0) -> np.ndarray:
    """Dark text on a light background, uint8 gray, roughly as wide as the text."""
    font, thickness = cv2.FONT_HERSHEY_SIMPLEX, 2
    fs = scale * height / 40
    (w, h), base = cv2.getTextSize(text or " ", font, fs, thickness)
    img = np.full((height, w + 10), paper, np.uint8)
    cv2.putText(img, text, (5, (height + h) // 2), font, fs, int(ink), thickness, cv2.LINE_AA)
    return img


def encode(img: np.ndarray, ext: str = ".png") -> bytes:
    ok, buf = cv2.imencode(ext, img)
    assert ok, ext
    return buf.tobytes()


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def write_word(path: Path, text: str, **kw) -> Path:
    """A readable word image, encoded by the file's extension (.png, .jpg, .bmp)."""
    return write(path, encode(word_image(text, **kw), path.suffix))


def _pil_bytes(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


# --- unusual but valid images: all must be accepted -------------------------------------------------


def png16(img: np.ndarray) -> bytes:
    """16-bit gray PNG with exactly the 8-bit image's values times 257."""
    return encode(img.astype(np.uint16) * 257, ".png")


def rgba_png(img: np.ndarray) -> bytes:
    """`img` (drawn on white paper, 255) as ink colour with alpha = ink coverage; the paper becomes fully
    transparent black, so a decoder that ignores alpha shows black paper. Over white it is `img` again.
    """
    coverage = (255.0 - img.astype(np.float32)) / (255.0 - INK)
    alpha = np.rint(np.clip(coverage, 0, 1) * 255).astype(np.uint8)
    bgra = np.zeros(img.shape + (4,), np.uint8)
    bgra[..., :3] = INK
    bgra[..., 3] = alpha
    bgra[alpha == 0, :3] = 0  # transparent pixels are black: a decoder ignoring alpha would show black paper
    return encode(bgra, ".png")


def quantize(img: np.ndarray) -> np.ndarray:
    """8 gray levels, so a palette holds them exactly."""
    return (img // 32 * 32).astype(np.uint8)


def palette_png(img: np.ndarray) -> bytes:
    """Palette ("P" mode) PNG of `quantize(img)`."""
    rgb = Image.fromarray(quantize(img)).convert("RGB")
    return _pil_bytes(rgb.convert("P", palette=Image.ADAPTIVE, colors=8), "PNG")


def cmyk_jpeg(img: np.ndarray) -> bytes:
    """CMYK JPEG as written by PIL (Adobe APP14 marker)."""
    return _pil_bytes(Image.fromarray(img).convert("RGB").convert("CMYK"), "JPEG", quality=95)


def mixed_format_images() -> list[tuple[str, bytes]]:
    """(kind, bytes) of noisy colour word images in five sizes, each as 8-bit colour, gray, 16-bit, RGBA and
    palette PNG: what the NumPy and TensorFlow-graph preprocessing must read alike."""
    rng = np.random.default_rng(0)
    out = []
    for h, w in [(40, 200), (12, 30), (90, 1000), (32, 128), (64, 40)]:
        rgb = rng.integers(120, 255, (h, w, 3), dtype=np.uint8)
        cv2.putText(rgb, "Word", (1, h - 3), cv2.FONT_HERSHEY_SIMPLEX, h / 40, (20, 30, 10), max(1, h // 20))
        out += [("png8", encode(rgb, ".png")), ("gray", encode(rgb[..., 0], ".png")),
                ("png16", encode(rgb.astype(np.uint16) * 257 + 100, ".png")),
                ("rgba", encode(np.dstack([rgb, rng.integers(0, 255, (h, w), dtype=np.uint8)]), ".png"))]
        pal = io.BytesIO()
        Image.fromarray(rgb[..., ::-1]).convert("P", palette=Image.ADAPTIVE, colors=32).save(pal, "PNG")
        out.append(("palette", pal.getvalue()))
    return out


# --- broken files: each must end up in rejects with its own reason -----------------------------------


def text_as_jpg() -> bytes:
    return b"this is a text file, not a JPEG\n" * 4


def truncated_jpeg(img: np.ndarray) -> bytes:
    data = encode(img, ".jpg")
    return data[: len(data) // 2]


def truncated_png(img: np.ndarray) -> bytes:
    data = encode(img, ".png")
    return data[: len(data) - 20]


def _chunk(kind: bytes, body: bytes) -> bytes:
    crc = zlib.crc32(kind + body) & 0xFFFFFFFF
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)


def huge_png(width: int = 30000, height: int = 30000) -> bytes:
    """A complete, valid 1-bit gray PNG declaring width x height: ~100 KB on disk, 900 MB decoded to 8-bit.

    The IDAT stream is real (all-black rows, filter 0), compressed incrementally so making it is cheap.
    """
    row = b"\x00" * (1 + (width + 7) // 8)
    comp = zlib.compressobj(9)
    parts = []
    rows_per_piece = 1000
    for start in range(0, height, rows_per_piece):
        parts.append(comp.compress(row * min(rows_per_piece, height - start)))
    parts.append(comp.flush())
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    chunks = _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", b"".join(parts)) + _chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + chunks


def write_words(root: Path, words, name: str = "{i:02d}.png") -> list[tuple[str, str]]:
    """One readable image per word, named `name` (formatted with its index i and word w) under `root`;
    returns the (path relative to root, label) rows of a manifest."""
    rows = []
    for i, w in enumerate(words):
        rel = name.format(i=i, w=w)
        write_word(root / rel, w)
        rows.append((rel, w))
    return rows


def write_manifest(path: Path, rows, sep: str = "\t", header: str | None = None) -> Path:
    """rows: (path, label) pairs or raw strings (written verbatim, for malformed lines and comments)."""
    lines = [header] if header else []
    for row in rows:
        lines.append(row if isinstance(row, str) else sep.join(row))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def rendered_text(text: str, size: int = 40, colour=(30, 30, 30), paper=(240, 236, 228),
                  font: str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf") -> np.ndarray:
    """Text drawn with a real font (DejaVu Sans) on a plain background: a BGR uint8 array with a margin."""
    from PIL import ImageDraw, ImageFont

    face = ImageFont.truetype(font, size)
    left, top, right, bottom = face.getbbox(text)
    im = Image.new("RGB", (right - left + 16, bottom - top + 16), paper)
    ImageDraw.Draw(im).text((8 - left, 8 - top), text, font=face, fill=colour)
    return cv2.cvtColor(np.asarray(im), cv2.COLOR_RGB2BGR)
