"""`ocr predict`: Beam recognition — images (glob, folder, manifest or dataset) -> Parquet, one row each.

ReadInputs -> Preprocess -> RunInference (bundle loaded once per worker, batched) -> DecodeCTC -> WriteTable.

The inputs are expanded inside the pipeline (`pipelines/expand_inputs.py`): the launcher only checks that
the input holds something, and nothing proportional to the number of inputs is built there or in the job
graph. Part files are sized by `--shards N` or by `--rows-per-file` (the rows are counted in the pipeline).

The engine runs the bundle's model.keras in TensorFlow or its model.onnx in ONNX Runtime (`--engine`; the
ONNX workers never import TensorFlow); CTC decoding is NumPy either way.

`--watch GLOB` keeps running instead: every `--window`, the files that landed are recognised by one bounded
pipeline of the same transforms into OUT/window=<start>/, committed by its own _SUCCESS.json (see `watch`).

Unreadable inputs become rows with `error` set and `text` null; the job still succeeds. The table is
written to a staging folder and moved into place only after the pipeline succeeded, with `_SUCCESS.json`
last, so a failed run never leaves a table that looks complete.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import posixpath
import signal
import sys
import time
import uuid
from collections.abc import Sequence
from typing import Any

import apache_beam as beam
import numpy as np
from apache_beam.io.filesystems import FileSystems
from apache_beam.ml.inference.base import KeyedModelHandler, ModelHandler, PredictionResult, RunInference

from ocr_core import fs
from ocr_core.bundle import (
    INT8_ONNX_FILE,
    ONNX_FILE,
    BundleError,
)
from ocr_core.charset import Charset
from ocr_core.dataset import Dataset, DatasetError
from ocr_core.engine import ENGINES, ModelError, ModelRef
from ocr_core.engine import open_model as engine_open_model
from ocr_core.errors import InputError, UsageError
from ocr_core.inputs import IMAGE_EXTENSIONS, Entry, InputSpec, Reject, read_image_bytes, resolve_inputs
from ocr_core.lexicon import DEFAULT_MAX_DISTANCE, Lexicon, LexiconError
from ocr_core.predictions import PART_PREFIX, SCHEMA, SCHEMA_DOC, SUCCESS, part_name, summarize_files
from ocr_core.publish import generation, publish
from ocr_core.recognizer import Decoder
from ocr_core.records import record_id
from ocr_core.watch import BundleWatch, LandedFiles, parse_duration, recover, watch_pattern, window_name
from pipelines.beam_options import (
    DASK_RUNNER,
    add_runner_arguments,
    parse_job_args,
    pipeline_options,
    runner_name,
)
from pipelines.expand_inputs import MatchImageFiles, ReadManifest, ReadPathList
from pipelines.sinks import ParquetEncoder, ShardSink


class PredictError(UsageError):
    """The job cannot start (bad model, bad input, bad options)."""


# --- inputs ---------------------------------------------------------------------------------------


def resolve_input(given: str) -> InputSpec:
    """The --input as an InputSpec of kind dataset (a directory with manifest.json), dir, glob, tsv, csv or
    mjsynth, after a cheap check that it holds something (a glob or folder is listed only up to its first
    image, a manifest read up to its first line): the inputs themselves are expanded inside the pipeline."""
    uri = given if "://" in given else os.path.abspath(given)
    if FileSystems.exists(posixpath.join(uri, "manifest.json")):
        return InputSpec(0, uri, "dataset", uri)
    try:
        return resolve_inputs([uri])[0]
    except UsageError as e:
        raise PredictError(str(e)) from None


def dataset_shards(root: str, split: str) -> list[tuple[str, int]]:
    """(shard path, record count) of a built dataset's split, every version's ("auto": test if present,
    else val, else train; "all": every split)."""
    try:
        dataset = Dataset.load(root)
    except DatasetError as e:
        raise PredictError(str(e)) from None
    try:
        split = dataset.resolve_split(split)
    except DatasetError as e:
        raise PredictError(f"{root}: {e}") from None
    return dataset.shard_files(split)


class Item(dict):
    """One input on its way to a row: id, source, label and either `data` (bytes) or `pixels`."""


def file_item(path: str) -> Item:
    """A glob's or folder's file: no label (file names are not taken for labels here)."""
    return Item(id=record_id(path, ""), source=path, label=None)


def line_item(entry: Entry | Reject) -> Item:
    """A manifest line; a malformed one is still an input: it gets an error row named by its origin."""
    if isinstance(entry, Reject):
        return Item(id=record_id(entry.origin, ""), source=entry.origin, label=None,
                    error=f"{entry.reason}: {entry.detail}")
    return Item(id=record_id(entry.source, entry.label), source=entry.source, label=entry.label)


class ReadDatasetShard(beam.DoFn):
    """Yields the (already preprocessed) records of one TFRecord shard."""

    def __init__(self, load_tf: bool):
        self._load_tf = load_tf

    def setup(self):
        if self._load_tf:  # load TF's Example proto before `tfrecord`'s could be (records.py)
            import tensorflow  # noqa: F401

    def process(self, shard: str):
        from ocr_core.records import WordRecord, iter_tfrecords

        with FileSystems.open(shard) as fh:
            for data in iter_tfrecords(fh, shard):
                r = WordRecord.decode(data)
                yield Item(id=r.id, source=r.source, label=r.text, pixels=r.image)


class ReadInputs(beam.PTransform):
    """An --input -> Items (file contents are read later, in parallel), expanded inside the pipeline.

    A glob or folder goes through `fileio.MatchAll`, a manifest through Beam's splittable text reading, a
    dataset's shards come from its manifest.json; `parts > 1` (Dask) starts from that many elements, as
    Dask's parallelism comes from Create partitions only (see pipelines/expand_inputs.py).
    """

    def __init__(self, spec: InputSpec, split: str = "auto", load_tf: bool = True, parts: int = 1):
        super().__init__()
        self.spec, self.split, self.load_tf, self.parts = spec, split, load_tf, parts
        if spec.kind == "dataset":
            self.shards = dataset_shards(spec.uri, split)

    def expand(self, pbegin):
        if self.spec.kind == "dataset":
            return (pbegin | "ListShards" >> beam.Create([path for path, _ in self.shards], reshuffle=True)
                    | "ReadShards" >> beam.ParDo(ReadDatasetShard(self.load_tf)))
        if self.spec.kind in ("glob", "dir"):
            return (pbegin | "MatchFiles" >> MatchImageFiles(self.spec, self.parts)
                    | "FileItems" >> beam.Map(file_item))
        return (pbegin | "ReadManifest" >> ReadManifest(self.spec, self.parts)
                | "LineItems" >> beam.Map(line_item))


# --- preprocessing and inference ------------------------------------------------------------------


def preprocess_item(item: Item, model: ModelRef) -> Item:
    """Reads and preprocesses one input for `model`; failures are recorded in item['error'], never raised."""
    item = Item(item)
    if "pixels" in item or item.get("error"):
        return item
    try:
        item["pixels"] = model.prepare(read_image_bytes(item["source"], model.spec.max_bytes))
    except InputError as e:
        item["error"] = f"{e.reason}: {e.detail}"
    return item


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
    once per worker and runs it on batches of prepared crops.

    Threads: `intra_op_threads`, or 0 for TensorFlow's default and, for ONNX Runtime, this machine's cores
    shared by `workers` worker processes.
    """

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

    def run_inference(self, batch: Sequence[np.ndarray], model, inference_args=None):
        return [PredictionResult(x, p) for x, p in zip(batch, model(batch))]

    def batch_elements_kwargs(self):
        return self._batch

    def get_num_bytes(self, batch):
        return sum(x.nbytes for x in batch)


def decoder_label(decoder: str, beam_width: int, lexicon: bool = False) -> str:
    """The `decoder` column: greedy | beam(width), + "+lexicon" when a lexicon constrains the text."""
    return (f"beam({beam_width})" if decoder == "beam" else "greedy") + ("+lexicon" if lexicon else "")


class DecodeCTC(beam.DoFn):
    """(item, PredictionResult) -> a row: CTC decoding with confidence (greedy or beam top-k), then, with a
    lexicon, the lexicon word best supported by the CTC output (ocr_core.lexicon; the tree is built once
    per worker).

    `tags`: the model, decoder and engine columns of every row.
    """

    def __init__(self, characters: str, decoder: str, beam_width: int, top_k: int, tags: dict,
                 lexicon: Lexicon | None = None, lexicon_distance: int = DEFAULT_MAX_DISTANCE,
                 progress_seconds: float = 0):
        self._args = (characters, decoder, beam_width, top_k, lexicon, lexicon_distance)
        self._tags, self._progress = tags, progress_seconds

    def setup(self):
        self._decode = Decoder(*self._args)

    def process(self, keyed):
        item, result = keyed
        text, confidence, cands = self._decode(result.inference)
        yield make_row(item, self._tags, text, confidence, cands, self._progress)


class _Progress:
    """Rows made by this worker process, and a progress line on stderr every `every` seconds (the console
    for local runners, the worker logs on Dataflow); nothing for a job shorter than that."""

    def __init__(self):
        self.rows, self.start, self.last = 0, None, None

    def tick(self, every: float) -> None:
        if every <= 0:
            return
        now = time.monotonic()
        if self.start is None:
            self.start = self.last = now
        self.rows += 1
        if now - self.last >= every:
            self.last = now
            print(f"ocr predict: {self.rows:,} rows so far in worker {os.getpid()} "
                  f"({self.rows / (now - self.start):,.0f}/s)", file=sys.stderr, flush=True)


PROGRESS = _Progress()


def make_row(item: Item, tags: dict, text=None, confidence=None, candidates=None,
             progress_seconds: float = 0) -> dict:
    """A table row; `tags` holds the model, decoder and engine columns. Counts towards PROGRESS."""
    PROGRESS.tick(progress_seconds)
    return {"id": item["id"], "source": item["source"], "text": text,
            "confidence": None if confidence is None else float(confidence),
            "candidates": None if candidates is None else
            [{"text": t, "score": float(s)} for t, s in candidates],
            **tags, "error": item.get("error"), "label": item.get("label")}


class _InferBatch(beam.DoFn):
    """Loads the handler's model once per DoFn instance and runs it on whole batches."""

    def __init__(self, handler: ModelHandler):
        self._handler = handler

    def setup(self):
        self._model = self._handler.load_model()

    def process(self, batch):
        yield from self._handler.run_inference(batch, self._model)


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
        groups, size = self.groups, self.batch_size

        def batches(keyed):
            items = list(keyed[1])
            for i in range(0, len(items), size):
                yield items[i:i + size]

        return (pcoll
                | "SpreadOverKeys" >> beam.Map(lambda kv: (int(kv[0]["id"][:8], 16) % groups, kv))
                | "Group" >> beam.GroupByKey()
                | "CutBatches" >> beam.FlatMap(batches)
                | "Infer" >> beam.ParDo(_InferBatch(self.handler)))


class Recognise(beam.PTransform):
    """Items -> rows (good and error rows). Error items bypass the model; nothing is dropped."""

    def __init__(self, model: ModelRef, decoder: str,
                 beam_width: int, top_k: int, batch_size: int, threads: int,
                 use_run_inference: bool = True, groups: int = 8, workers: int = 1,
                 lexicon: Lexicon | None = None, lexicon_distance: int = DEFAULT_MAX_DISTANCE,
                 progress_seconds: float = 0):
        super().__init__()
        self.lexicon, self.lexicon_distance = lexicon, lexicon_distance
        self.progress_seconds = progress_seconds
        self.use_run_inference, self.groups = use_run_inference, groups
        self.model = model
        self.decoder, self.beam_width, self.top_k = decoder, beam_width, top_k
        self.batch_size, self.threads, self.workers = batch_size, threads, workers

    def expand(self, items):
        model = self.model
        prepared = items | "Preprocess" >> beam.Map(preprocess_item, model)
        # Filters rather than tagged outputs: Beam's DaskRunner feeds every tagged output to every consumer.
        failed = prepared | "Failed" >> beam.Filter(lambda it: bool(it.get("error")))
        tags = {"model": model.name, "engine": model.engine,
                "decoder": decoder_label(self.decoder, self.beam_width, self.lexicon is not None)}
        error_rows = failed | "ErrorRows" >> beam.Map(make_row, tags, progress_seconds=self.progress_seconds)
        # Fixed-size batches (min = max): BatchElements' adaptive sizing starts tiny and probes, which costs
        # ~7% on a busy CPU for no gain; the tail of each bundle is flushed whatever its size.
        handler = KeyedModelHandler(EngineModelHandler(model, self.batch_size, self.batch_size,
                                                       self.threads, self.workers))
        rows = (prepared
                | "Readable" >> beam.Filter(lambda it: not it.get("error"))
                | "KeyByItem" >> beam.Map(lambda it: (Item({k: v for k, v in it.items() if k != "pixels"}),
                                                      it["pixels"]))
                | "RunInference" >> (RunInference(handler) if self.use_run_inference
                                     else InferBatches(handler, self.batch_size, self.groups))
                | "DecodeCTC" >> beam.ParDo(DecodeCTC(model.characters, self.decoder, self.beam_width,
                                                      self.top_k, tags, self.lexicon,
                                                      self.lexicon_distance, self.progress_seconds)))
        return (rows, error_rows) | "AllRows" >> beam.Flatten()


# --- output ---------------------------------------------------------------------------------------


ROWS_PER_FILE = 100_000  # ~10 MB of Parquet; one worker holds a part's rows (~150 MB as dicts) to sort them


def shard_count(rows: int, rows_per_file: int) -> int:
    """Part files for a table of `rows` rows: one per `rows_per_file` rows started, at least 1."""
    return max(1, -(-rows // rows_per_file))


def key_by_shard(row: dict, num_shards: int) -> tuple[tuple[int, int], dict]:
    """((shard, number of shards), row): the shard from a hash of the id, so reruns shard the same way."""
    return (int(row["id"][:8], 16) % num_shards, num_shards), row


class WriteShard(beam.DoFn):
    """Writes one Parquet part file (rows sorted by id; None markers skipped) through the one shard sink
    (`pipelines.sinks`: a temporary name renamed when complete) and yields its row count."""

    def __init__(self, staging: str):
        self._staging = staging

    def setup(self):
        self._sink = ShardSink(self._staging, ParquetEncoder(SCHEMA))

    def process(self, keyed):
        (shard, num_shards), rows = keyed
        rows = sorted((r for r in rows if r is not None), key=lambda r: (r["id"], r["source"]))
        yield self._sink.write(part_name(shard, num_shards), rows)["count"]  # rewritten whole on a retry


class CountShards(beam.PTransform):
    """Items -> the number of part files for their table (one row per item), as a singleton."""

    def __init__(self, rows_per_file: int):
        super().__init__()
        self.rows_per_file = rows_per_file

    def expand(self, items):
        return (items
                | "CountInputs" >> beam.combiners.Count.Globally()
                | "ShardCount" >> beam.Map(shard_count, self.rows_per_file))


class WriteTable(beam.PTransform):
    """Rows -> Parquet part files in `staging`, sharded by a hash of the id: a fixed number, or the
    singleton PCollection `num_shards` (`CountShards`: counted in the pipeline, never in the launcher).

    Our own sink rather than WriteToParquet: Beam's DaskRunner (2.77) computes only the last leaf of the
    graph and drops the side inputs WriteToParquet's finalize step needs (seen: an empty table). A plain
    AsSingleton side input works there, but Dask computes it inside the consuming task, re-serialising its
    upstream graph with DoFns already set up: a count of the *rows* drags the loaded model along (TensorFlow's
    FuncGraph does not pickle), so the count is taken of the inputs, before the model. The final sum makes one
    leaf that depends on every shard.
    """

    def __init__(self, staging: str, num_shards):
        super().__init__()
        self.staging, self.num_shards = staging, num_shards

    def expand(self, rows):
        count = self.num_shards
        if isinstance(count, beam.PCollection):
            num_shards = beam.pvalue.AsSingleton(count)
        else:
            num_shards, count = count, rows.pipeline | "ShardCount" >> beam.Create([count])
        # One empty marker per shard, so a shard no id hashes to still gets its (empty) part-K-of-N file.
        every_shard = count | "EveryShard" >> beam.FlatMap(lambda n: [((k, n), None) for k in range(n)])
        keyed = rows | "KeyByShard" >> beam.Map(key_by_shard, num_shards)
        return ((keyed, every_shard)
                | "WithEveryShard" >> beam.Flatten()
                | "GroupByShard" >> beam.GroupByKey()
                | "WriteShards" >> beam.ParDo(WriteShard(self.staging))
                | "RowsWritten" >> beam.CombineGlobally(sum))


def publish_table(out: str, staging: str, expected: str | None, job_id: str, **fields) -> dict:
    """Moves the staged part files into `out`, replacing an older table there, and writes `out`'s commit
    marker (row and error counts read from the staged files, plus `fields`) last, by the one publish rule
    (`ocr_core.publish`: under the output's lock, and only if the marker is still the generation `expected`
    that the job started from). Returns the marker's content."""
    staged = fs.glob(fs.join(staging, f"{PART_PREFIX}-*.parquet"))
    summary = summarize_files(staged)
    names = [posixpath.basename(p) for p in staged]
    summary.update(fields, files=names, schema=SCHEMA_DOC)
    old = [posixpath.basename(p) for p in fs.glob(fs.join(out, f"{PART_PREFIX}-*.parquet"))]
    publish(out, staging, {n: n for n in names}, SUCCESS, json.dumps(summary, indent=2), job_id=job_id,
            expected=expected, replace=old if expected else [], stale=[] if expected else old,
            kind="predict job")
    return summary


def parse_args(argv):
    p = argparse.ArgumentParser(prog="ocr predict", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=None,
                   help="model bundle directory (default: the shipped model), or pp-ocrv6: PP-OCRv6 small "
                        "from the rapidocr wheel (Apache-2.0; colour, 48 px high, any width; 18,709 "
                        "characters; ~10x slower than the shipped model)")
    p.add_argument("--input",
                   help="image glob ('crops/*.png': every file it matches), image folder (every file named "
                        f"{'|'.join(IMAGE_EXTENSIONS)} in it and its subfolders, any case), manifest "
                        "(.tsv/.csv/annotation.txt) or dataset directory (labels go to the `label` column); "
                        "expanded inside the pipeline")
    p.add_argument("--output", required=True, help="output directory of the Parquet table (replaced)")
    p.add_argument("--split", default="auto", help="dataset input: test|val|train|all (auto: test, else val)")
    p.add_argument("--decoder", choices=["greedy", "beam"], default="greedy")
    p.add_argument("--beam-width", type=int, default=10)
    p.add_argument("--top-k", type=int, default=3, help="beam search candidates kept per word")
    p.add_argument("--lexicon", default=None, metavar="FILE",
                   help="word list (UTF-8, one word per line): each text becomes the word of this list that "
                        "the model's CTC output supports best, matched ignoring case and spelled as listed "
                        "(the unconstrained text stays in `candidates`)")
    p.add_argument("--lexicon-distance", type=int, default=DEFAULT_MAX_DISTANCE,
                   help="with --lexicon: score the words within this many edits of the unconstrained text "
                        "(the 64 nearest words when fewer are that close)")
    p.add_argument("--lexicon-case-sensitive", action="store_true",
                   help="with --lexicon: match case as well (default: case-insensitive)")
    p.add_argument("--batch-size", type=int, default=64, help="largest inference batch")
    p.add_argument("--progress-seconds", type=float, default=30, metavar="S",
                   help="each worker prints its rows so far and their rate every S seconds (0: never; "
                        "default %(default)s)")
    p.add_argument("--shards", type=int, default=0,
                   help="Parquet part files (default 0: one per --rows-per-file rows, counted in the "
                        "pipeline)")
    p.add_argument("--rows-per-file", type=int, default=ROWS_PER_FILE,
                   help="rows per Parquet part file when --shards is 0 (default %(default)s, ~10 MB)")
    p.add_argument("--engine", choices=["auto", *ENGINES], default="auto",
                   help=f"tf: model.keras in TensorFlow; onnx: the bundle's {ONNX_FILE} in ONNX Runtime (no "
                        f"TensorFlow in the workers); onnx-int8: its {INT8_ONNX_FILE} the same way (int8 "
                        "convolutions, ~1.5x faster forward pass, a few tenths of a point less accurate; "
                        "`ocr export --quantize` writes it); auto: onnx when the bundle has a "
                        f"{ONNX_FILE} converted from its model.keras and onnxruntime is installed, else tf")
    p.add_argument("--threads", "--tf-threads", dest="threads", type=int, default=0,
                   help="intra-op threads per worker (0: for onnx the cores divided by --workers, at least "
                        "1; for tf TensorFlow's default)")
    w = p.add_argument_group("watch mode (instead of --input): recognise files as they land")
    w.add_argument("--watch", metavar="GLOB|DIR",
                   help="keep running; every --window, recognise the files of GLOB (or the images of DIR and "
                        "its subfolders) that landed since, into OUT/window=<start>/ with its own "
                        f"{SUCCESS}; each file once, also across restarts on the same OUT. A file has landed "
                        "when its size and mtime are the same on two polls: producers write to a name GLOB "
                        "does not match and rename it (see README)")
    w.add_argument("--window", default="30s", help="how often a window is committed (default %(default)s)")
    w.add_argument("--idle-timeout", default=None,
                   help="end (exit 0) after this long without a new file (default: run until stopped; "
                        "SIGTERM ends after the running window)")
    w.add_argument("--poll", default="2s", help="how often GLOB is listed (default %(default)s)")
    w.add_argument("--model-watch", metavar="GLOB",
                   help="model bundle directories (e.g. 'models/*'): a bundle whose model.keras appears or "
                        "changes after the start replaces the model at the next window; the `model` column "
                        "names the one that made each row")
    add_runner_arguments(p)
    return parse_job_args(p, argv)


def read_lexicon_text(path: str) -> str:
    """The text of a --lexicon file (any Beam filesystem), checked before the model loads."""
    if not FileSystems.exists(path):
        raise PredictError(f"--lexicon {path}: no such file")
    try:
        with FileSystems.open(path) as fh:
            return fh.read().decode("utf-8")
    except UnicodeDecodeError as e:
        raise PredictError(f"--lexicon {path}: not UTF-8 text (byte {e.start}); save it as UTF-8") from None
    except OSError as e:
        raise PredictError(f"--lexicon {path}: cannot be read ({e})") from None


def parse_lexicon(path: str, text: str, charset: Charset, case_sensitive: bool) -> Lexicon:
    """The lexicon for the model's charset; words it cannot spell are reported once, on stderr."""
    try:
        lexicon = Lexicon.parse(text, charset, case_sensitive)
    except LexiconError as e:
        raise PredictError(f"--lexicon {path}: {e}") from None
    if lexicon.skipped:
        print(f"ocr predict: note: --lexicon {path}: {lexicon.skipped_note()}", file=sys.stderr)
    return lexicon


Model = ModelRef  # the model a job runs (ocr_core.engine)


def open_model(model: str | None, requested_engine: str) -> ModelRef:
    """The --model (None: the shipped model; pp-ocrv6; a bundle) with its engine, checked in the launcher
    (auto falls back to tf with a note when model.onnx does not load).

    Raises:
        BundleError, ModelError: one line for the user.
    """
    return engine_open_model(model, requested_engine,
                             note=lambda msg: print(f"ocr predict: note: {msg}", file=sys.stderr))


def absolute(path: str) -> str:
    return path if "://" in path else os.path.abspath(path)


def model_lexicon(args, lexicon_text: str | None, model: Model) -> Lexicon | None:
    """The --lexicon for this model's charset (None without --lexicon)."""
    return (None if lexicon_text is None
            else parse_lexicon(args.lexicon, lexicon_text, Charset(model.characters),
                               args.lexicon_case_sensitive))


def run_table(args, beam_args: list[str], model: Model, read: beam.PTransform, out: str,
              test_pipeline=None, lexicon: Lexicon | None = None, started: float | None = None,
              **fields) -> tuple[Any, dict]:
    """One bounded pipeline, `read` (PBegin -> Items) -> Recognise -> Parquet part files staged in `out`,
    published into it with its commit marker once the pipeline succeeded (`publish_table`).

    Returns:
        (the PipelineResult, the commit marker's content: counts, files, `fields`, seconds since `started`,
        default: since the call).
    """
    began = time.time() if started is None else started
    fs.makedirs(out)
    job_id = uuid.uuid4().hex[:8]
    staging = posixpath.join(out, f"_staging-{job_id}")
    expected = generation(posixpath.join(out, SUCCESS))
    options, cleanup = pipeline_options(beam_args, args.runner, args.workers, args.dask_address)
    result = None
    try:
        p = test_pipeline if test_pipeline is not None else beam.Pipeline(options=options)
        with p:
            items = p | "ReadInputs" >> read
            shards = args.shards or items | "CountShards" >> CountShards(args.rows_per_file)
            (items
             | "Recognise" >> Recognise(model, args.decoder,
                                        args.beam_width, args.top_k, args.batch_size, args.threads,
                                        use_run_inference=not on_dask(args), groups=4 * args.workers,
                                        workers=args.workers, lexicon=lexicon,
                                        lexicon_distance=args.lexicon_distance,
                                        progress_seconds=args.progress_seconds)
             | "WriteTable" >> WriteTable(staging, shards))
        result = p.result
    except BaseException:
        fs.remove(staging)
        raise
    finally:
        cleanup(result)
    return result, publish_table(out, staging, expected, job_id, model=model.name, decoder=args.decoder,
                                 engine=model.engine, seconds=round(time.time() - began, 2), **fields)


def on_dask(args) -> bool:
    return runner_name(args.runner) == DASK_RUNNER


def check_args(args) -> None:
    if args.beam_width < 1 or args.top_k < 1 or args.top_k > args.beam_width:
        raise PredictError("need 1 <= --top-k <= --beam-width")
    if args.shards < 0 or args.rows_per_file < 1:
        raise PredictError("need --shards >= 0 and --rows-per-file >= 1")
    if args.lexicon_distance < 0:
        raise PredictError("--lexicon-distance must be >= 0")
    if (args.input is None) == (args.watch is None):
        raise PredictError("give --input (a batch job) or --watch (keep recognising new files), not both")
    if args.model_watch and not args.watch:
        raise PredictError("--model-watch needs --watch")


def run(argv=None, test_pipeline=None):
    """Runs batch recognition; returns the PipelineResult (also when some inputs failed: they are error
    rows). See `ocr predict --help`."""
    try:
        return _run(argv, test_pipeline)
    except (BundleError, ModelError) as e:
        raise PredictError(str(e)) from None


def _run(argv, test_pipeline):
    args, beam_args = parse_args(argv)
    started = time.time()
    quiet_memory_probe_warning()  # for the in-process runner; worker processes log at ERROR (beam_options)
    check_args(args)
    lexicon_text = None if args.lexicon is None else read_lexicon_text(args.lexicon)
    if args.watch:
        return watch(args, beam_args, lexicon_text)
    model = open_model(args.model, args.engine)
    lexicon = model_lexicon(args, lexicon_text, model)
    spec = resolve_input(args.input)  # a cheap check: fails fast when it holds nothing
    parts = args.workers if on_dask(args) else 1
    read = ReadInputs(spec, args.split, load_tf=model.engine == "tf", parts=parts)
    out = absolute(args.output)
    result, summary = run_table(args, beam_args, model, read, out, test_pipeline, lexicon, started,
                                input=spec.uri)
    print(f"ocr predict: {summary['rows']} rows ({summary['errors']} failed"
          + (f": {summary['errors_by_reason']}" if summary["errors"] else "")
          + f") -> {out} in {summary['seconds']}s ({model.engine} engine)")
    return result


# --- watch mode -----------------------------------------------------------------------------------
# Repeated bounded micro-batches, one Beam pipeline per window, because the Python DirectRunner cannot carry
# the streaming form (README "Watch mode"): the FnApiRunner runs stage after stage, so windows fired only when
# the periodic impulse ended, and the streaming BundleBasedDirectRunner refuses PeriodicImpulse's SDF.


class _Stop:
    """Set by SIGTERM: the running window finishes and commits, then the job ends (exit 0)."""

    requested = False

    @classmethod
    def handle(cls, *_):
        cls.requested = True


def swap_model(current: Model, bundles: BundleWatch | None, engine: str) -> Model:
    """The newest bundle published since the last window, if it loads; else the current model."""
    bundle = bundles.newest() if bundles else None
    if bundle is None:
        return current
    try:
        model = open_model(bundle, engine)
    except (BundleError, ModelError) as e:
        print(f"ocr predict --watch: warning: keeping {current.name}: {e}", file=sys.stderr, flush=True)
        return current
    print(f"ocr predict --watch: model {current.name} -> {model.name}", flush=True)
    return model


def recognise_window(args, beam_args, model: Model, out: str, start: float, paths: list[str],
                     lexicon: Lexicon | None = None):
    """One window: the list of its files, then one bounded pipeline (the batch job's transforms) into
    OUT/window=<start>/, committed by its _SUCCESS.json. Returns the PipelineResult."""
    name = window_name(start)
    while FileSystems.exists(posixpath.join(out, name, SUCCESS)):  # a restart within the same second
        start += 1
        name = window_name(start)
    folder = posixpath.join(out, name)
    listing = posixpath.join(folder, "_inputs.txt")
    with FileSystems.create(listing) as fh:
        fh.write("".join(p + "\n" for p in paths).encode())
    read = (ReadPathList(listing, args.workers if on_dask(args) else 1) | "FileItems" >> beam.Map(file_item))
    result, summary = run_table(args, beam_args, model, read, folder, lexicon=lexicon, input=args.watch,
                                window=name)
    print(f"ocr predict --watch: {name}: {summary['rows']} rows ({summary['errors']} failed) with "
          f"{model.name} in {summary['seconds']}s", flush=True)
    return result


def watch(args, beam_args, lexicon_text: str | None = None):
    """Recognises the files of --watch as they land, one committed window at a time, until --idle-timeout
    passes without a new file or SIGTERM; returns the last window's PipelineResult (None if none ran)."""
    window, poll = parse_duration(args.window), parse_duration(args.poll)
    idle = parse_duration(args.idle_timeout) if args.idle_timeout else None
    if window < 1 or poll <= 0 or poll > window:
        raise PredictError("need --window >= 1s and 0 < --poll <= --window")
    model = open_model(args.model, args.engine)
    lexicon = model_lexicon(args, lexicon_text, model)
    bundles = BundleWatch(absolute(args.model_watch)) if args.model_watch else None
    out = absolute(args.output)
    if "://" not in out:
        os.makedirs(out, exist_ok=True)
    pattern, images_only = watch_pattern(absolute(args.watch))
    files = LandedFiles(pattern, images_only, recover(out))
    print(f"ocr predict --watch: {pattern} -> {out} ({len(files.done)} files done before), window "
          f"{window:g}s, model {model.name}", flush=True)
    signal.signal(signal.SIGTERM, _Stop.handle)
    result, window_start, last_news = None, time.time(), time.time()
    while True:
        if files.poll():
            last_news = time.time()
        now = time.time()
        ending = _Stop.requested or (idle is not None and now - last_news >= idle)
        if now - window_start >= window or ending:
            swapped = swap_model(model, bundles, args.engine)
            if swapped is not model:
                model, lexicon = swapped, model_lexicon(args, lexicon_text, swapped)
            if files.ready:
                result = recognise_window(args, beam_args, model, out, window_start, files.take(),
                                          lexicon)
            window_start = now
        if ending:
            why = "stopped" if _Stop.requested else f"no new file for {idle:g}s"
            print(f"ocr predict --watch: {why}; {len(files.done)} files done in {out}", flush=True)
            return result
        time.sleep(poll)
