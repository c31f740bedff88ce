"""Recognition from Python, without a Beam job: `Recognizer(model).read(items)`.

    from ocr_core import Recognizer
    reader = Recognizer()                      # the shipped model; or "pp-ocrv6", or a bundle directory
    for r in reader.read(["crop.png", open("b.jpg", "rb").read(), cv2.imread("c.png")]):
        print(r.text, r.confidence, r.error)   # a bad item: text None, error "reason: detail"

The same preprocessing (`ModelRef.prepare`), network (`ModelRef.load`) and decoding (`Decoder`) as
`ocr predict`; the model is loaded once, crops run in batches.
"""
from __future__ import annotations

import dataclasses
import os
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from ocr_core.charset import Charset
from ocr_core.ctc import beam_search_decode, greedy_decode
from ocr_core.engine import ModelRef, open_model
from ocr_core.errors import InputError
from ocr_core.image_bytes import read_image_bytes
from ocr_core.lexicon import DEFAULT_MAX_DISTANCE, Lexicon, LexiconDecoder, LexiconWarning


@dataclass(frozen=True)
class Reading:
    """One item's result: `text` and `confidence` (in [0, 1]), or `error` ("reason: detail") and None."""

    text: str | None
    confidence: float | None
    error: str | None = None
    candidates: list = field(default_factory=list)  # [(text, score)], best first


class Decoder:
    """Per-crop probabilities [T, C] -> (text, confidence, candidates): greedy or beam top-k CTC decoding,
    then, with a lexicon, the lexicon word the probabilities support best (its tree built once)."""

    def __init__(self, characters: str, decoder: str = "greedy", beam_width: int = 10, top_k: int = 1,
                 lexicon: Lexicon | None = None, lexicon_distance: int = DEFAULT_MAX_DISTANCE):
        self.charset = Charset(characters)
        self.decoder, self.beam_width, self.top_k = decoder, beam_width, top_k
        self.matcher = None if lexicon is None else LexiconDecoder(lexicon, self.charset, lexicon_distance)

    def __call__(self, probs: np.ndarray) -> tuple[str, float, list[tuple[str, float]]]:
        if self.decoder == "beam":
            cands = [(self.charset.decode(ids), p)
                     for ids, p in beam_search_decode(probs, self.beam_width, self.top_k)]
        else:
            ids, conf = greedy_decode(probs[None])
            cands = [(self.charset.decode(ids[0]), float(conf[0]))]
        if self.matcher is not None:
            m = self.matcher.decode(probs, [text for text, _ in cands])
            return m.word, m.confidence, [(m.word, m.probability), *cands]
        return cands[0][0], cands[0][1], cands


def item_bytes(item, max_bytes: int) -> bytes:
    """An item of `Recognizer.read` as encoded image bytes: a path is read, bytes are taken as they are, a
    NumPy array (as OpenCV holds images: gray, BGR or BGRA, uint8 or uint16) is encoded losslessly as PNG.
    Raises InputError."""
    if isinstance(item, (str, os.PathLike)):
        return read_image_bytes(os.fspath(item), max_bytes)
    if isinstance(item, (bytes, bytearray, memoryview)):
        return bytes(item)
    if isinstance(item, np.ndarray):
        import cv2

        if item.dtype not in (np.uint8, np.uint16) or item.ndim not in (2, 3) or min(item.shape[:2]) == 0 \
                or (item.ndim == 3 and item.shape[2] not in (1, 3, 4)):
            raise InputError("not_an_image", f"array {item.dtype} {item.shape} is not an H x W (x 1/3/4) "
                                             "uint8/uint16 image")
        ok, png = cv2.imencode(".png", item)
        if not ok:
            raise InputError("not_an_image", f"array {item.dtype} {item.shape} cannot be encoded")
        return png.tobytes()
    raise InputError("not_an_image", f"{type(item).__name__} is not a path, bytes or a NumPy image")


class Recognizer:
    """Reads word (or text-line) crops with one model, loaded once.

    Args:
        model: None (the shipped model), "pp-ocrv6" (PP-OCRv6 small from the rapidocr wheel), or a bundle
            directory.
        engine: for bundles, "auto" (ONNX Runtime when the bundle has model.onnx), "tf", "onnx", "onnx-int8".
        decoder, beam_width, top_k: CTC decoding as `ocr predict` (`candidates` holds the top-k).
        lexicon: words the text must be one of (as `ocr predict --lexicon`), or None.
        batch_size: crops per forward pass.
        threads: intra-op threads of the network (0: the library's default).
        straighten: a text-line model reads a doubtful crop again, turned, straightened, widened or
            reframed, and keeps the most confident reading (`ocr_core.second_look`, docs/lines.md); False:
            every crop once, as it is (`ocr predict --read-once`; faster on incidental-scene crops).
    """

    def __init__(self, model: str | os.PathLike | None = None, engine: str = "auto", decoder: str = "greedy",
                 beam_width: int = 10, top_k: int = 1, lexicon: Iterable[str] | None = None,
                 case_sensitive: bool = False, batch_size: int = 64, threads: int = 0,
                 straighten: bool = True):
        if decoder not in ("greedy", "beam") or not 1 <= top_k <= beam_width or batch_size < 1:
            raise ValueError("need decoder greedy|beam, 1 <= top_k <= beam_width and batch_size >= 1")
        opened = open_model(None if model is None else os.fspath(model), engine)
        self.model: ModelRef = dataclasses.replace(opened, straighten=straighten)
        words = None
        if lexicon is not None:
            words = Lexicon.parse("\n".join(lexicon), Charset(self.model.characters), case_sensitive,
                                  max_steps=self.model.time_steps)
            for note in words.notes():
                warnings.warn(f"lexicon: {note}", LexiconWarning, stacklevel=2)
        self.decode = Decoder(self.model.characters, decoder, beam_width, top_k, words)
        self.batch_size = batch_size
        self._forward = self.model.load(threads)

    @property
    def name(self) -> str:
        """The model's name, as the `model` column of `ocr predict` gives it."""
        return self.model.name

    def read(self, items: Iterable) -> list[Reading]:
        """One Reading per item, in order; a bad item gets `error` set, never an exception for the batch. A
        single item (a path, encoded bytes or one image array) is read as a list of one."""
        if isinstance(items, (str, bytes, bytearray, os.PathLike, np.ndarray)):
            items = [items]
        elif not isinstance(items, Sequence):
            items = list(items)
        out: list[Reading] = []
        for start in range(0, len(items), self.batch_size):
            out.extend(self._read_batch(items[start:start + self.batch_size]))
        return out

    def _read_batch(self, items: Sequence) -> list[Reading]:
        readings: list[Reading | None] = [None] * len(items)
        prepared, where = [], []
        for i, item in enumerate(items):
            try:
                data = item_bytes(item, self.model.spec.max_bytes)
                prepared.append(self.model.prepare(data, straighten=self.model.straighten))
                where.append(i)
            except InputError as e:
                readings[i] = Reading(None, None, f"{e.reason}: {e.detail}")
        if prepared:
            for i, probs in zip(where, self._forward(prepared)):
                text, confidence, cands = self.decode(probs)
                readings[i] = Reading(text, float(confidence), None, cands)
        return readings  # type: ignore[return-value]
