"""THE image function shared by dataset build, training export and inference: encoded bytes -> uint8 H x W.

Steps (the preprocessing contract, recorded in every dataset manifest and model bundle):
1. sniff the format and read the declared size from the header; refuse huge images before decoding (the
   total pixel count, not each side, is limited: see PreprocessSpec.max_pixels);
2. decode, turn upright per the EXIF orientation (phone photos are stored sideways with orientation 6), and
   convert any depth/channel layout to float gray in [0, 255]: 16-bit is divided by 257, colour uses
   0.299 R + 0.587 G + 0.114 B, alpha is composited over white;
3. resize to height H keeping the aspect ratio (width rounded half up, clamped to [1, W]) with an exact
   area (box) filter, written as two small matrix products so the TensorFlow serving graph can repeat it;
4. round to uint8 and pad on the right to W with the median of the content's border pixels (its background).

A dynamic-width spec (`PreprocessSpec.dynamic_width`, text lines: docs/lines.md) keeps steps 1-3 with W the
maximum width, and in step 4 pads only to the next multiple of `stride` (at least `min_width`), so each image
keeps its own width; batches then pad each image to its `canvas_width` (`pad_to_canvas`), a rule of its own
width only. It refuses an image more than `max_tall_ratio` times as tall as wide (`vertical_text`).
"""
from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass

import cv2
import numpy as np

from ocr_core.errors import InputError

PREPROCESS_VERSION = 1
GRAY_WEIGHTS = (0.299, 0.587, 0.114)  # R, G, B


MAX_RESIZE_CELLS = 4_000_000  # width x output width of the area-filter matrix (16 MB of float32)


@dataclass(frozen=True)
class PreprocessSpec:
    """Target geometry and safety limits of `preprocess_word_image`."""

    height: int = 32
    width: int = 128
    # Declared width x height above this is rejected from the header, unread (a phone photo is 12 MP). The
    # resize also builds a width x (content width <= `width`) float32 weight matrix, so width x `width` must
    # stay under MAX_RESIZE_CELLS too: a 1,000,000 x 38 strip (38 MP, a 37 KB PNG) would cost over a GB.
    max_pixels: int = 40_000_000
    max_bytes: int = 64 * 1024 * 1024
    # Dynamic width (text lines): `width` is then the maximum; each image is `image_width` wide.
    dynamic_width: bool = False
    min_width: int = 16  # a multiple of `stride`
    stride: int = 4  # input columns per CTC time step of the model (the product of its pools' widths)
    margin: int = 0  # columns added after each image before `padded_width` rounds up its batch canvas
    # Height / width above this is a word written top to bottom (refused as vertical_text): a single narrow
    # character ("1", "l") in a tight crop reaches ~2.5, a vertical word of 3+ letters exceeds 3.
    max_tall_ratio: float = 3.0

    def __post_init__(self):
        if self.dynamic_width and (self.width % self.stride or self.min_width % self.stride
                                   or not 0 < self.min_width <= self.width):
            raise ValueError(f"dynamic-width preprocessing: width (the maximum, {self.width}) and min_width "
                             f"({self.min_width}) must be multiples of stride {self.stride}, "
                             "with 0 < min_width <= width")

    @property
    def max_width(self) -> int:
        return self.width

    def to_dict(self) -> dict:
        d = asdict(self)
        if not self.dynamic_width:  # a fixed-width contract reads exactly as before dynamic width existed
            for key in DYNAMIC_KEYS:
                d.pop(key)
        return {**d, "version": PREPROCESS_VERSION, "gray_weights_rgb": list(GRAY_WEIGHTS),
                "resize": "area", "pad": "median_of_border", "normalisation": "inside the model (x / 255)"}

    @classmethod
    def from_dict(cls, d: dict) -> PreprocessSpec:
        """The spec a `to_dict` (a manifest's or bundle's `preprocess`) describes."""
        keys = ("height", "width", "max_pixels", "max_bytes", *DYNAMIC_KEYS)
        return cls(**{k: d[k] for k in keys if k in d})


def spec_for_model(model) -> PreprocessSpec:
    """The preprocessing contract a model config (`ocr_core.config.ModelConfig`) reads: its height and width,
    and for dynamic width its min_width and stride (what a dataset for it must be built with)."""
    if not model.dynamic_width:
        return PreprocessSpec(model.height, model.width)
    return PreprocessSpec(model.height, model.width, dynamic_width=True, min_width=model.min_width,
                          stride=model.stride)


DYNAMIC_KEYS = ("dynamic_width", "min_width", "stride", "margin", "max_tall_ratio")


_MAGIC = (
    (b"\xff\xd8\xff", "jpeg"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"BM", "bmp"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
)


def sniff_format(data: bytes) -> str | None:
    """The image format from the leading magic bytes, or None."""
    for magic, name in _MAGIC:
        if data.startswith(magic):
            return name
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


EXIF_ORIENTATION_TAG = 0x0112


def _orientation(im) -> int:
    """The EXIF orientation (1-8) of an opened Pillow image, from its header; 1 (upright) when absent or
    unreadable."""
    if im.format == "PNG" and "exif" not in im.info:
        # Pillow's PNG getexif() decodes the whole image to look for an eXIf chunk after the pixels: that
        # would undo the header-only size check (a 30000 x 30000 PNG: 900 MB). Cameras write it before IDAT.
        return 1
    try:
        value = int(im.getexif().get(EXIF_ORIENTATION_TAG, 1))
    except Exception:  # a damaged EXIF block must not cost the picture: its pixels are still there
        return 1
    return value if 1 <= value <= 8 else 1


def _read_header(data: bytes) -> tuple[int, int, int]:
    """(stored width, stored height, EXIF orientation) from the image header without decoding pixels."""
    import io

    from PIL import Image
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None  # our own limit applies
        try:
            with Image.open(io.BytesIO(data)) as im:
                return (*im.size, _orientation(im))
        except Exception as e:  # header unreadable: report as corrupt (the message may quote the bytes)
            raise InputError("corrupt", f"unreadable image header ({type(e).__name__})") from e
        finally:
            Image.MAX_IMAGE_PIXELS = saved


def declared_size(data: bytes) -> tuple[int, int]:
    """(width, height) of the upright picture (EXIF orientation applied) from the header, pixels unread."""
    w, h, orientation = _read_header(data)
    return (h, w) if orientation >= 5 else (w, h)


def apply_orientation(img: np.ndarray, orientation: int) -> np.ndarray:
    """Turns a decoded image (H x W or H x W x C, as stored) upright per its EXIF orientation (1-8), the
    same transposes as Pillow's `ImageOps.exif_transpose`: a phone's portrait photo is stored as 6."""
    if orientation == 2:
        img = img[:, ::-1]
    elif orientation == 3:
        img = img[::-1, ::-1]
    elif orientation == 4:
        img = img[::-1]
    elif orientation == 5:
        img = np.swapaxes(img, 0, 1)
    elif orientation == 6:
        img = np.rot90(img, -1)
    elif orientation == 7:
        img = np.swapaxes(img[::-1, ::-1], 0, 1)
    elif orientation == 8:
        img = np.rot90(img, 1)
    return np.ascontiguousarray(img)


def check_image_bytes(data: bytes, spec: PreprocessSpec = PreprocessSpec()) -> str:
    """Cheap structural checks before decoding. Returns the format; raises InputError."""
    return _check_header(data, spec)[0]


def _check_header(data: bytes, spec: PreprocessSpec) -> tuple[str, int]:
    """`check_image_bytes`, also returning the EXIF orientation the decoder must apply."""
    if len(data) == 0:
        raise InputError("empty_file", "file has 0 bytes")
    if len(data) > spec.max_bytes:
        raise InputError("too_large", f"{len(data)} bytes > max_bytes {spec.max_bytes}")
    fmt = sniff_format(data)
    if fmt is None:
        raise InputError("not_an_image", f"not a JPEG/PNG/BMP/TIFF/GIF/WebP file: {len(data)} bytes, "
                                         "unknown signature")
    # Decoders happily return half-grey pictures for cut-off files, so look for the end marker.
    if fmt == "jpeg" and b"\xff\xd9" not in data[-1024:]:
        raise InputError("truncated", "JPEG has no end-of-image marker")
    if fmt == "png" and b"IEND" not in data[-64:]:
        raise InputError("truncated", "PNG has no IEND chunk")
    w, h, orientation = _read_header(data)
    if orientation >= 5:  # the resize sees the upright picture: its width is the stored height
        w, h = h, w
    if w <= 0 or h <= 0:
        raise InputError("corrupt", f"declared size {w}x{h}")
    resize_cells = w * getattr(spec, "width", 0)  # the area filter's matrix (specs that resize with it)
    if getattr(spec, "dynamic_width", False):  # its real output width: a wide photo is not refused
        resize_cells = w * target_width(w, h, spec)
    if w * h > spec.max_pixels or resize_cells > MAX_RESIZE_CELLS:
        raise InputError("too_large", f"declared size {w}x{h} is too large: width x height must be <= "
                                      f"{spec.max_pixels}" + (f" and width x {spec.width} (the resize) <= "
                                                              f"{MAX_RESIZE_CELLS}" if resize_cells else ""))
    return fmt, orientation


def _to_gray(img: np.ndarray) -> np.ndarray:
    """Any OpenCV decode result (gray/BGR/BGRA, 8/16-bit) -> float32 gray in [0, 255]."""
    if img.dtype == np.uint8:
        x = img.astype(np.float32)
    elif img.dtype == np.uint16:
        x = img.astype(np.float32) / np.float32(257.0)
    else:
        raise InputError("unsupported", f"pixel type {img.dtype}")
    if x.ndim == 2:
        return x
    ch = x.shape[2]
    if ch == 1:
        return x[..., 0]
    if ch == 2:  # gray + alpha
        gray, alpha = x[..., 0], x[..., 1] / np.float32(255.0)
    else:
        b, g, r = x[..., 0], x[..., 1], x[..., 2]
        wr, wg, wb = (np.float32(w) for w in GRAY_WEIGHTS)
        gray = r * wr + g * wg + b * wb
        if ch < 4:
            return gray
        alpha = x[..., 3] / np.float32(255.0)
    return gray * alpha + np.float32(255.0) * (np.float32(1.0) - alpha)


def decode_image(data: bytes, spec: PreprocessSpec = PreprocessSpec()) -> np.ndarray:
    """Checks and decodes encoded image bytes, upright (EXIF orientation applied), in OpenCV's layout: gray,
    BGR or BGRA, 8 or 16 bits. Raises InputError."""
    _, orientation = _check_header(data, spec)
    # IMREAD_UNCHANGED keeps 16 bits and alpha but also ignores EXIF orientation, so apply it here: one
    # decoder for build, predict, the Python API and PP-OCR, so none of them sees a phone photo sideways.
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if img is None or img.size == 0:
        raise InputError("corrupt", "decoder could not read the pixels")
    return apply_orientation(img, orientation)


def decode_gray(data: bytes, spec: PreprocessSpec = PreprocessSpec()) -> np.ndarray:
    """Checks and decodes encoded image bytes to float32 gray [0, 255]. Raises InputError."""
    return _to_gray(decode_image(data, spec))


def decode_bgr(data: bytes, spec=PreprocessSpec()) -> np.ndarray:
    """Checks and decodes encoded image bytes to uint8 BGR (16-bit divided by 257, gray repeated, alpha
    composited over white), the colour input of the PP-OCR engine. Raises InputError."""
    img = decode_image(data, spec)
    if img.dtype == np.uint16:
        img = np.rint(img.astype(np.float32) / np.float32(257.0)).astype(np.uint8)
    elif img.dtype != np.uint8:
        raise InputError("unsupported", f"pixel type {img.dtype}")
    if img.ndim == 2 or img.shape[2] == 1:
        return cv2.cvtColor(img.reshape(img.shape[:2]), cv2.COLOR_GRAY2BGR)
    if img.shape[2] == 2:  # gray + alpha
        img = cv2.cvtColor(img[..., 0], cv2.COLOR_GRAY2BGR), img[..., 1]
    else:
        img = img[..., :3], (img[..., 3] if img.shape[2] == 4 else None)
    bgr, alpha = img
    if alpha is None:
        return np.ascontiguousarray(bgr)
    a = alpha.astype(np.float32)[..., None] / np.float32(255.0)
    return np.rint(bgr.astype(np.float32) * a + np.float32(255.0) * (1 - a)).astype(np.uint8)


def target_width(width: int, height: int, spec: PreprocessSpec = PreprocessSpec()) -> int:
    """Width after aspect-preserving scaling to spec.height, rounded half up and clamped to [1, W]."""
    w = (2 * width * spec.height + height) // (2 * height)
    return int(min(max(w, 1), spec.width))


def area_weights(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) matrix of an exact box filter: row i averages input span [i*s, (i+1)*s), s=n_in/n_out."""
    s = np.float32(n_in) / np.float32(n_out)
    start = np.arange(n_out, dtype=np.float32) * s
    j = np.arange(n_in, dtype=np.float32)
    overlap = np.minimum(start[:, None] + s, j[None, :] + 1) - np.maximum(start[:, None], j[None, :])
    return np.maximum(overlap, np.float32(0.0)) / s


def border_median(img: np.ndarray) -> int:
    """Lower median of the outermost pixels of a uint8 image: a robust estimate of its background."""
    border = np.concatenate([img[0, :], img[-1, :], img[:, 0], img[:, -1]])
    return int(np.sort(border)[(border.size - 1) // 2])


def image_width(content_width: int, spec: PreprocessSpec = PreprocessSpec()) -> int:
    """Width of the preprocessed image: spec.width, or (dynamic width) the content width rounded up to a
    multiple of spec.stride, at least spec.min_width."""
    if not spec.dynamic_width:
        return spec.width
    return max(spec.min_width, -(-content_width // spec.stride) * spec.stride)


def check_orientation(width: int, height: int, spec: PreprocessSpec) -> None:
    """Raises InputError(vertical_text) for a dynamic-width spec and a picture too tall to be a line."""
    if spec.dynamic_width and height > spec.max_tall_ratio * width:
        raise InputError("vertical_text", f"{width}x{height} is {height / width:.1f} times as tall as "
                                          f"wide (> {spec.max_tall_ratio:g}): a word written top to bottom; "
                                          "rotate it to read left to right")


def resize_and_pad(gray: np.ndarray, spec: PreprocessSpec = PreprocessSpec()) -> tuple[np.ndarray, int]:
    """Float gray H0 x W0 -> (uint8 spec.height x `image_width`, content width). Raises InputError."""
    h0, w0 = gray.shape
    check_orientation(w0, h0, spec)
    cw = target_width(w0, h0, spec)
    ry = area_weights(h0, spec.height)
    rx = area_weights(w0, cw)
    small = (ry @ gray.astype(np.float32)) @ rx.T
    small = np.rint(np.clip(small, 0, 255)).astype(np.uint8)
    out = np.full((spec.height, image_width(cw, spec)), border_median(small), dtype=np.uint8)
    out[:, :cw] = small
    return out, cw


def padded_width(width: int) -> int:
    """The width a crop is padded to in a batch: rounded up to a step of 1/8 of its power of two (at least 8
    pixels), so padding stays under 12.5 % and a crop's result does not depend on which crops share its batch
    (a batch holds one padded width)."""
    step = max(8, (1 << (max(width, 1).bit_length() - 1)) // 8)
    return -(-width // step) * step


def canvas_width(width: int, spec) -> int:
    """The batch width an image `width` pixels wide runs at: its width plus spec.margin, then
    `padded_width` (a dynamic-width CRNN spec or PP-OCR's `PpocrSpec`)."""
    return padded_width(width + spec.margin)


def pad_to_canvas(image: np.ndarray, spec: PreprocessSpec) -> np.ndarray:
    """A dynamic-width preprocessed image (uint8 H x W) padded on the right to `canvas_width(W)` with its
    border median: what training and serving batch (`ocr_core.preprocess_tf.pad_to_canvas_tf` in graphs)."""
    out = np.full((image.shape[0], canvas_width(image.shape[1], spec)), border_median(image), np.uint8)
    out[:, :image.shape[1]] = image
    return out


def one_canvas(images: list[np.ndarray], spec: PreprocessSpec) -> np.ndarray:
    """Preprocessed images -> uint8 [N, H, W]: as they are for a fixed-width spec; for a dynamic one each on
    its canvas, then padded (border median) to the widest, for uses that need one array (calibration)."""
    if not spec.dynamic_width:
        return np.stack(images)
    canvases = [pad_to_canvas(im, spec) for im in images]
    width = max(c.shape[1] for c in canvases)
    out = np.stack([np.full((c.shape[0], width), border_median(c), np.uint8) for c in canvases])
    for o, c in zip(out, canvases):
        o[:, :c.shape[1]] = c
    return out


def preprocess_word_image(data: bytes, spec: PreprocessSpec = PreprocessSpec()) -> tuple[np.ndarray, int]:
    """Encoded image bytes -> (uint8 array spec.height x `image_width`, content width). Raises InputError.

    Args:
        data: the file's bytes (JPEG, PNG, BMP, TIFF, WebP; any depth, gray/RGB/RGBA/palette/CMYK).
        spec: target geometry and limits.

    Returns:
        The padded image exactly as stored in `image/raw` and fed to the model, and its unpadded width.
    """
    return resize_and_pad(decode_gray(data, spec), spec)
