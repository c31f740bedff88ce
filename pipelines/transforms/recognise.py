"""Recognition: items (an input on its way to a row) -> table rows. Read + preprocess each image for the
model, run the model on batches (`RunInference` with `EngineModelHandler`, or GroupByKey batches on Dask),
decode CTC (greedy or beam, optionally constrained by a lexicon). Unreadable inputs become error rows; nothing
is dropped.
"""
from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
import numpy as np
from apache_beam.ml.inference.base import KeyedModelHandler, ModelHandler, PredictionResult, RunInference

from ocr_core.engine import ModelRef
from ocr_core.errors import InputError
from ocr_core.image_bytes import read_image_bytes
from ocr_core.inputs import Entry, Reject
from ocr_core.lexicon import DEFAULT_MAX_DISTANCE, Lexicon
from ocr_core.recognizer import Decoder
from ocr_core.records import record_id
from pipelines.transforms.dask_safe import shard_of


class Item(dict):
    """One input on its way to a row: id, source, label and either `data` (bytes) or `pixels`."""


def item_of(entry) -> Item:
    """The Item of an input: a glob's or folder's file (no label), a manifest line (a malformed one keeps
    its error, named by its origin), or a dataset record (already preprocessed)."""
    if isinstance(entry, Reject):
        return Item(id=record_id(entry.origin, ""), source=entry.origin, label=None,
                    error=f"{entry.reason}: {entry.detail}")
    if isinstance(entry, Entry):
        return Item(id=record_id(entry.source, entry.label or ""), source=entry.source, label=entry.label)
    return Item(id=entry.id, source=entry.source, label=entry.text, pixels=entry.image)  # a WordRecord


def path_item(path: str) -> Item:
    """The Item of a file given by its path alone (a watch window's): no label."""
    return Item(id=record_id(path, ""), source=path, label=None)


def preprocess_item(item: Item, model: ModelRef) -> Item:
    """Reads and preprocesses one input for `model`; failures are recorded in item['error'], never raised."""
    item = Item(item)
    if "pixels" in item or item.get("error"):
        return item
    try:
        item["pixels"] = model.prepare(read_image_bytes(item["source"], model.spec.max_bytes),
                                        straighten=model.straighten)
    except InputError as e:
        item["error"] = f"{e.reason}: {e.detail}"
    return item


@dataclass(frozen=True)
class Decoding:
    """How CTC output becomes text: greedy or beam search (its width and the candidates kept), and an
    optional lexicon the text is constrained to."""

    decoder: str = "greedy"
    beam_width: int = 10
    top_k: int = 3
    lexicon: Lexicon | None = None
    lexicon_distance: int = DEFAULT_MAX_DISTANCE

    @property
    def label(self) -> str:
        """The `decoder` column: greedy | beam(width), + "+lexicon" when a lexicon constrains the text."""
        return (f"beam({self.beam_width})" if self.decoder == "beam" else "greedy") + \
            ("+lexicon" if self.lexicon is not None else "")


@dataclass(frozen=True)
class Batching:
    """How the model runs: batch size, intra-op threads (0: the engine's default), worker processes sharing
    the cores, RunInference (False: GroupByKey batches over `groups` keys, for Dask) and the progress line."""

    batch_size: int = 64
    threads: int = 0
    workers: int = 1
    run_inference: bool = True
    groups: int = 8
    progress_seconds: float = 0


class _NoMemoryProbeWarning(logging.Filter):
    """Drops Beam 2.77's "Resource module is not available" warning. RunInference imports `resource` in one
    try-block with a torch-only module, so without torch it warns on every model load although `resource` is
    there; the number it cannot fetch is only a memory metric."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Resource module is not available")


def quiet_memory_probe_warning() -> None:
    root = logging.getLogger()
    if not any(isinstance(f, _NoMemoryProbeWarning) for f in root.filters):
        root.addFilter(_NoMemoryProbeWarning())


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


class EngineModelHandler(ModelHandler[np.ndarray, PredictionResult, Any]):
    """Loads a model (`ocr_core.engine.ModelRef`: a CRNN bundle in TensorFlow or ONNX Runtime, or PP-OCRv6)
    once per worker and runs it on batches of prepared crops. Threads: `intra_op_threads`, or 0 for
    TensorFlow's default and, for ONNX Runtime, this machine's cores shared by `workers` worker processes."""

    def __init__(self, model: ModelRef, min_batch_size: int = 16, max_batch_size: int = 128,
                 intra_op_threads: int = 0, workers: int = 1):
        super().__init__()
        self._model, self._workers = model, workers
        self._batch = {"min_batch_size": min_batch_size, "max_batch_size": max_batch_size}
        self._threads = intra_op_threads

    def load_model(self):
        """A function [prepared crop] -> [probabilities [T, C]] (NumPy in and out)."""
        threads = self._threads
        if not threads and self._model.engine != "tf":
            threads = max(1, available_cores() // self._workers)
        return self._model.load(threads)

    def run_inference(self, batch: Sequence[np.ndarray | None], model, inference_args=None):
        """None marks an input that failed before the model (its error row rides along, see Recognise)."""
        ready = [x for x in batch if x is not None]
        outputs = iter(model(ready) if ready else [])
        return [PredictionResult(x, None if x is None else next(outputs)) for x in batch]

    def batch_elements_kwargs(self):
        return self._batch

    def get_num_bytes(self, batch):
        return sum(x.nbytes for x in batch if x is not None)


class Progress:
    """Rows made by one DoFn instance, and a progress line on stderr every `every` seconds (the console for
    local runners, the worker logs on Dataflow); nothing for a job shorter than that."""

    def __init__(self, every: float):
        self.every, self.rows, self.start, self.last = every, 0, None, None

    def tick(self) -> None:
        if self.every <= 0:
            return
        now = time.monotonic()
        if self.start is None:
            self.start = self.last = now
        self.rows += 1
        if now - self.last >= self.every:
            self.last = now
            print(f"ocr predict: {self.rows:,} rows so far in worker {os.getpid()} "
                  f"({self.rows / (now - self.start):,.0f}/s)", file=sys.stderr, flush=True)


def make_row(item: Item, tags: dict, text=None, confidence=None, candidates=None) -> dict:
    """A table row; `tags` holds the model, decoder and engine columns."""
    return {"id": item["id"], "source": item["source"], "text": text,
            "confidence": None if confidence is None else float(confidence),
            "candidates": None if candidates is None else
            [{"text": t, "score": float(s)} for t, s in candidates],
            **tags, "error": item.get("error"), "label": item.get("label")}


class DecodeCTC(beam.DoFn):
    """(item, PredictionResult) -> a row: CTC decoding with confidence (greedy or beam top-k), then, with a
    lexicon, the lexicon word best supported by the CTC output (the tree is built once per worker)."""

    def __init__(self, characters: str, decoding: Decoding, tags: dict, progress_seconds: float = 0):
        self._characters, self._decoding = characters, decoding
        self._tags, self._progress_seconds = tags, progress_seconds

    def setup(self):
        d = self._decoding
        self._decode = Decoder(self._characters, d.decoder, d.beam_width, d.top_k, d.lexicon,
                               d.lexicon_distance)
        self._progress = Progress(self._progress_seconds)

    def process(self, keyed):
        item, result = keyed
        if _has_error(item):
            yield make_row(item, self._tags)
            return
        text, confidence, cands = self._decode(result.inference)
        self._progress.tick()
        yield make_row(item, self._tags, text, confidence, cands)


class _InferBatch(beam.DoFn):
    """Loads the handler's model once per DoFn instance and runs it on whole batches."""

    def __init__(self, handler: ModelHandler):
        self._handler = handler

    def setup(self):
        self._model = self._handler.load_model()

    def process(self, batch):
        yield from self._handler.run_inference(batch, self._model)


def _key_by_group(keyed_item, groups: int):
    return shard_of("batch", keyed_item[0]["id"], groups), keyed_item


def _batches(keyed, size: int):
    items = list(keyed[1])
    for i in range(0, len(items), size):
        yield items[i:i + size]


class InferBatches(beam.PTransform):
    """Batching by GroupByKey + the same ModelHandler, for runners where RunInference loses elements.

    Beam's DaskRunner (2.77) drops what a DoFn emits in finish_bundle, which is where BatchElements (inside
    RunInference) flushes its batches: on Dask every image vanished and only error rows survived. Here
    elements are spread over `groups` keys, grouped, and cut into batches inside `process`.
    """

    def __init__(self, handler: ModelHandler, batch_size: int, groups: int):
        super().__init__()
        self.handler, self.batch_size, self.groups = handler, batch_size, groups

    def expand(self, pcoll):
        return (pcoll
                | "SpreadOverKeys" >> beam.Map(_key_by_group, self.groups)
                | "Group" >> beam.GroupByKey()
                | "CutBatches" >> beam.FlatMap(_batches, self.batch_size)
                | "Infer" >> beam.ParDo(_InferBatch(self.handler)))


def _has_error(item: Item) -> bool:
    return bool(item.get("error"))


def _without_pixels(item: Item) -> tuple[Item, np.ndarray | None]:
    """(the item without its pixels, its pixels; None for an item that failed before the model)."""
    return Item({k: v for k, v in item.items() if k != "pixels"}), item.get("pixels")


class Recognise(beam.PTransform):
    """Items -> rows (good and error rows); nothing is dropped.

    An item that failed before the model (unreadable, not an image, a malformed manifest line) rides through
    the model step as an empty slot (no pixels; the handler skips it) and DecodeCTC makes its error row. No
    Filter + Flatten around the model: the FnApiRunner (DirectRunner) materialises every Flatten of two
    inputs in its launcher, so every row would pass through the launcher's memory (issue 23).
    """

    def __init__(self, model: ModelRef, decoding: Decoding = Decoding(), batching: Batching = Batching()):
        super().__init__()
        self.model, self.decoding, self.batching = model, decoding, batching

    def expand(self, items):
        model, b = self.model, self.batching
        tags = {"model": model.name, "engine": model.engine, "decoder": self.decoding.label}
        # Fixed-size batches (min = max): BatchElements' adaptive sizing starts tiny and probes, which costs
        # ~7% on a busy CPU for no gain; the tail of each bundle is flushed whatever its size.
        handler = KeyedModelHandler(EngineModelHandler(model, b.batch_size, b.batch_size, b.threads,
                                                       b.workers))
        return (items
                | "Preprocess" >> beam.Map(preprocess_item, model)
                | "KeyByItem" >> beam.Map(_without_pixels)
                | "RunInference" >> (RunInference(handler) if b.run_inference
                                     else InferBatches(handler, b.batch_size, b.groups))
                | "DecodeCTC" >> beam.ParDo(DecodeCTC(model.characters, self.decoding, tags,
                                                      b.progress_seconds)))
