"""`ocr predict`: Beam recognition — images (glob, folder, manifest or dataset) -> Parquet, one row each.

    ReadInputs -> Recognise (Preprocess -> RunInference -> DecodeCTC) -> WriteTable

The inputs are expanded inside the pipeline by the build's own reader (`pipelines.transforms.read_inputs`):
the launcher only checks that the input holds something. Part files are sized by `--shards N` or by
`--rows-per-file` (the rows are counted in the pipeline). The engine (`ocr_core.engine`) runs the bundle's
model.keras in TensorFlow or its model.onnx in ONNX Runtime; CTC decoding is NumPy either way. The table is
staged in OUT/_staging/<job id>/ and published with `_SUCCESS.json` last (`ocr_core.publish`).
`--watch` runs one such bounded pipeline per window (`pipelines.predict_watch`).
"""
from __future__ import annotations

import dataclasses
import posixpath
import sys
import time
from typing import Any

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from ocr_core import publish
from ocr_core.bundle import BundleError
from ocr_core.dataset import Dataset, DatasetError
from ocr_core.engine import ModelError, ModelRef
from ocr_core.engine import open_model as engine_open_model
from ocr_core.errors import UsageError
from ocr_core.inputs import InputSpec, resolve_inputs
from ocr_core.predictions import SUCCESS, publish_table
from pipelines import predict_watch
from pipelines.beam_options import pipeline_options
from pipelines.predict_options import (
    PredictError,
    absolute,
    check_args,
    decoding_of,
    model_lexicon,
    on_dask,
    on_direct,
    parse_args,
    read_lexicon_text,
)
from pipelines.transforms.read_inputs import ReadDatasetShards, ReadInputs
from pipelines.transforms.recognise import Batching, Decoding, Recognise, item_of, quiet_memory_probe_warning
from pipelines.transforms.write import CountShards, WriteTable


def run(argv=None, test_pipeline=None):
    """Runs batch recognition (or, with --watch, one bounded job per window); returns the PipelineResult (also
    when some inputs failed: they are error rows). See `ocr predict --help`.

    Raises:
        PredictError: the job cannot start (bad model, input or option); one line, exit 2.
        JobFailed: the job started and failed (a manifest that ends early, a damaged dataset shard).
    """
    args, beam_args = parse_args(argv)
    started = time.time()
    quiet_memory_probe_warning()  # for the in-process runner; worker processes log at ERROR (beam_options)
    check_args(args)
    lexicon_text = None if args.lexicon is None else read_lexicon_text(args.lexicon)
    if args.watch:
        return predict_watch.watch(args, beam_args, lexicon_text, open_model, run_table)
    model = open_model(args.model, args.engine)
    decoding = decoding_of(args, model_lexicon(args, lexicon_text, model))
    spec = resolve_input(args.input)  # a cheap check: fails fast when it holds nothing
    read = read_inputs(spec, args.split, model.engine == "tf", parts=args.workers,
                       spread=not on_direct(args) and not on_dask(args))
    out = absolute(args.output)
    result, summary = run_table(args, beam_args, model, decoding, read, out, test_pipeline, started,
                                input=spec.uri)
    print(f"ocr predict: {summary['rows']} rows ({summary['errors']} failed"
          + (f": {summary['errors_by_reason']}" if summary["errors"] else "")
          + f") -> {out} in {summary['seconds']}s ({model.engine} engine)")
    return result


def run_table(args, beam_args: list[str], model: ModelRef, decoding: Decoding, read: beam.PTransform,
              out: str, test_pipeline=None, started: float | None = None, **fields) -> tuple[Any, dict]:
    """One bounded pipeline, `read` (PBegin -> Items) -> Recognise -> Parquet part files staged in
    `out`/_staging/<job id>, published into `out` with its commit marker once the pipeline succeeded.

    Returns:
        (the PipelineResult, the commit marker's content: counts, files, `fields`, seconds since `started`,
        default: since the call).
    """
    began = time.time() if started is None else started
    model = dataclasses.replace(model, straighten=not args.no_straighten)
    job_id = publish.new_job_id()
    expected = publish.generation(posixpath.join(out, SUCCESS))
    options, cleanup = pipeline_options(beam_args, args.runner, args.workers, args.dask_address)
    batching = Batching(args.batch_size, args.threads, args.workers, run_inference=not on_dask(args),
                        groups=4 * args.workers, progress_seconds=args.progress_seconds)
    with publish.staging(out, job_id) as staging:
        result = None
        try:
            p = test_pipeline if test_pipeline is not None else beam.Pipeline(options=options)
            with p:
                items = p | "ReadInputs" >> read
                shards = args.shards or items | "CountShards" >> CountShards(args.rows_per_file)
                (items
                 | "Recognise" >> Recognise(model, decoding, batching)
                 | "WriteTable" >> WriteTable(staging, shards, spill=not on_dask(args)))
            result = p.result
        finally:
            cleanup(result)
        return result, publish_table(out, staging, expected, job_id, model=model.name,
                                     decoder=decoding.decoder, engine=model.engine,
                                     seconds=round(time.time() - began, 2), **fields)


def open_model(model: str | None, requested_engine: str) -> ModelRef:
    """The --model (None: the shipped model; pp-ocrv6; a bundle) with its engine, checked in the launcher
    (auto falls back to tf with a note when model.onnx does not load); PredictError: one line."""
    try:
        return engine_open_model(model, requested_engine,
                                 note=lambda msg: print(f"ocr predict: note: {msg}", file=sys.stderr))
    except (BundleError, ModelError) as e:
        raise PredictError(str(e)) from None


def resolve_input(given: str) -> InputSpec:
    """The --input as an InputSpec of kind dataset (a directory with manifest.json), dir, glob, tsv, csv or
    mjsynth, after a cheap check that it holds something (a glob or folder is listed only up to its first
    image, a manifest read up to its first line): the inputs themselves are expanded inside the pipeline."""
    uri = absolute(given)
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
        return dataset.shard_files(dataset.resolve_split(split))
    except DatasetError as e:
        raise PredictError(f"{root}: {e}") from None


class ReadItems(beam.PTransform):
    """PBegin -> Items of one --input: its entries (a malformed manifest line an error row), or a dataset's
    records (spread by shard).

    `spread`: reshuffle the entries over the workers before the heavy steps (runners with many workers).
    Not on the DirectRunner, whose launcher holds whatever crosses a shuffle (issue 23): there each of the
    --workers reads its own share of the listing or manifest (`ReadInputs` parts), and the heavy steps run
    fused behind it.
    """

    def __init__(self, read: beam.PTransform, spread: bool = True):
        super().__init__()
        self.read, self.spread = read, spread

    def expand(self, pbegin):
        out = pbegin | "Read" >> self.read
        if not isinstance(out, tuple):  # a dataset's records
            return out | "Items" >> beam.Map(item_of)
        entries_and_rejects, _, _ = out  # ReadInputs(rejects_inline=True): (entries, no rejects, counts)
        items = entries_and_rejects | "Items" >> beam.Map(item_of)
        return items | "Spread" >> beam.Reshuffle() if self.spread else items


def read_inputs(spec: InputSpec, split: str, load_tf: bool, parts: int = 1,
                spread: bool = True) -> beam.PTransform:
    """The read step of an --input (`parts` > 1: its listing or manifest shared by that many workers;
    `spread`: see ReadItems)."""
    if spec.kind == "dataset":
        return ReadItems(ReadDatasetShards([path for path, _ in dataset_shards(spec.uri, split)], load_tf))
    return ReadItems(ReadInputs([spec], parts, labelled=False, rejects_inline=True), spread)


if __name__ == "__main__":
    run()
