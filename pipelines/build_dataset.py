"""`ocr build-dataset`: word images + labels -> validated, deduplicated, sharded TFRecords (Apache Beam).

    ReadInputs -> ValidateLabels -> DedupByImage -> AssignSplitAndShard -> GroupByShard -> WriteShards
    every reject (dead letter) -> WriteRejects;  written records -> WriteIndex;
    counts of every stage -> WriteBuildSummary

Only light entries (uri, label, id) are shuffled. The one DoFn that owns a shard reads, preprocesses and
writes its images itself, in id order, so shard files are byte-identical across runners and retries and
memory does not grow with the dataset. Everything is written into the build's own staging folder,
`DIR/_staging/<build id>/` (`ocr_core.publish.staging`); the launcher then makes the manifest from the
summary file the pipeline leaves there (which works on every runner, also those without metrics) and
publishes it with the files: manifest last, refused if another build published meanwhile. With --append the
build is a new version: earlier versions' indexes join DedupByImage, so only images no version holds are
written. This module never imports TensorFlow (see `ocr_core.records`).
"""
from __future__ import annotations

import os
import posixpath
import sys
import time
from collections import Counter
from dataclasses import dataclass

import apache_beam as beam

from ocr_core import build_manifest, dataset, fs, publish
from ocr_core.charset import Charset, CharsetError
from ocr_core.dataset import Dataset
from ocr_core.errors import JobFailed
from ocr_core.inputs import InputSpec, resolve_inputs
from ocr_core.labels import max_time_steps
from ocr_core.preprocess import PreprocessSpec
from ocr_core.publish import PublishConflict
from ocr_core.split import SplitPlan
from pipelines.beam_options import DASK_RUNNER, pipeline_options, runner_name
from pipelines.build_options import BuildError, config_contract, parse_args, resolve_options
from pipelines.transforms.build_runs import BuildFromRuns
from pipelines.transforms.dedup import DedupByImage
from pipelines.transforms.labels import ValidateLabel, ValidateLabels
from pipelines.transforms.read_inputs import ReadInputs
from pipelines.transforms.shards import AssignSplitAndShard, GroupByShard
from pipelines.transforms.write import (
    METRICS_NAMESPACE,
    WriteBuildSummary,
    WriteIndex,
    WriteRejects,
    WriteShards,
)


@dataclass
class Build:
    """What the launcher settled before the pipeline: where, what, and how."""

    out_dir: str
    inputs: list[InputSpec]
    plan: SplitPlan
    charset: Charset
    spec: PreprocessSpec
    current: Dataset | None  # the dataset an --append adds a version to
    expected: str | None  # the manifest generation the publish replaces
    root: str  # the folder split keys hang from


def build_pipeline(p, inputs: list[InputSpec], out_dir: str, plan: SplitPlan, charset: Charset, oov: str,
                   spec: PreprocessSpec, parts: int = 1, known: list[tuple[str, int, str]] = (),
                   spill: bool = True):
    """Adds the dataset build to pipeline `p` (see the module docstring); `known`: earlier versions' record
    files (appends); `spill`: entries reach their image's group and their shard, and written ids and rejects
    their files, through run files in `out_dir` rather than a GroupByKey (`DedupByImage`, `GroupByShard`,
    `WriteFiles`; every runner but Dask)."""
    files = max(1, plan.train_shards // 8)
    validate = ValidateLabel(charset.characters, oov, max_time_steps(spec))
    if spill:
        input_counts, shards, rejects, index_runs = p | "Build" >> BuildFromRuns(
            inputs, parts, validate, known, out_dir, spec, plan, files)
        reject_files = rejects | "WriteRejects" >> WriteRejects(out_dir, files, spill)
        index_files = index_runs | "WriteIndex" >> WriteIndex(out_dir, files, spill, prespilled=True)
        return ((input_counts, shards, reject_files, index_files)
                | "WriteBuildSummary" >> WriteBuildSummary(out_dir))
    entries, read_rejects, input_counts = p | "ReadInputs" >> ReadInputs(inputs, parts)
    valid, label_rejects = entries | "ValidateLabels" >> ValidateLabels(validate)
    unique, duplicates = valid | "DedupByImage" >> DedupByImage(known)
    shards, image_rejects, written = (unique
                                      | "AssignSplitAndShard" >> AssignSplitAndShard(plan)
                                      | "GroupByShard" >> GroupByShard(plan)
                                      | "WriteShards" >> WriteShards(out_dir, spec, plan))
    reject_files = ((read_rejects, label_rejects, duplicates, image_rejects)
                    | "AllRejects" >> beam.Flatten()
                    | "WriteRejects" >> WriteRejects(out_dir, files))
    index_files = written | "WriteIndex" >> WriteIndex(out_dir, files)
    return ((input_counts, shards, reject_files, index_files)
            | "WriteBuildSummary" >> WriteBuildSummary(out_dir))


def run(argv=None, test_pipeline=None):
    """Builds a dataset; returns the PipelineResult. See `ocr build-dataset --help`.

    Args:
        argv: command-line arguments (default sys.argv[1:]); unknown flags go to PipelineOptions.
        test_pipeline: a pipeline to build into instead of one made from the options (tests).

    Raises:
        UsageError (BuildError, OutputError, ...): the build cannot start (bad option, missing or empty
            input, output that is a file, existing dataset without --overwrite); one line, exit 2.
        JobFailed: the build started and failed (a manifest that ends early); one line, exit 1.
    """
    args, beam_args = parse_args(argv)
    started = time.time()
    job = open_build(args)
    options, cleanup = runner_options(args, beam_args)
    build_id = publish.new_job_id()
    number = len(job.current.versions) + 1 if job.current else 1
    result, manifest = None, None
    with publish.staging(job.out_dir, build_id) as staging:
        try:
            p = test_pipeline if test_pipeline is not None else beam.Pipeline(options=options)
            with p:
                build_pipeline(p, job.inputs, staging, job.plan, job.charset, args.oov, job.spec,
                               parts=max(1, args.workers),
                               known=build_manifest.earlier_records(job.current) if job.current else (),
                               spill=runner_name(args.runner) != DASK_RUNNER)
            result = p.result
        finally:
            cleanup(result)
        used = {k: v for k, v in vars(args).items() if k not in ("input", "output")}
        used.update(runner=runner_name(args.runner), beam_args=beam_args)
        version = build_manifest.make_version(build_manifest.read_summary(staging), number, build_id,
                                              job.inputs, job.plan, used)
        if job.current is None or version["totals"]["written"]:
            manifest = publish_build(job, version, staging, build_id, args.overwrite)
    report(version, manifest, _counters(result), job.out_dir, time.time() - started)
    return result


def open_build(args) -> Build:
    """Checks the options, the output and the inputs before anything runs (BuildError: one line)."""
    out_dir = args.output if "://" in args.output else os.path.abspath(args.output)
    expected, current = build_manifest.check_output(out_dir, args.overwrite, args.append)
    contract = config_contract(args)
    resolve_options(args, current)
    if contract is not None:
        spec = contract
    elif current is not None:  # an --append keeps the dataset's contract (a dynamic-width one too)
        spec = current.spec
    else:
        spec = PreprocessSpec(*args.image_size)
    if current is not None and current.manifest.get("preprocessing") != spec.to_dict():
        raise BuildError(f"{out_dir}: the dataset's preprocessing contract differs from this build's "
                         f"({spec.to_dict()}); an --append must match it: rebuild with --overwrite")
    plan = SplitPlan(args.val_fraction, args.test_fraction, args.shards, args.only_split)
    try:
        charset = Charset(args.charset)
    except CharsetError as e:
        raise BuildError(f"--charset: {e}") from e
    inputs = resolve_inputs(args.input)
    root = build_manifest.split_root(inputs, current)
    inputs = [s._replace(root=root) for s in inputs]
    return Build(out_dir, inputs, plan, charset, spec, current, expected, root)


def runner_options(args, beam_args):
    try:
        return pipeline_options(beam_args, args.runner, args.workers, args.dask_address)
    except ValueError as e:
        raise BuildError(str(e)) from e


def publish_build(job: Build, version: dict, staging: str, build_id: str, overwrite: bool) -> dict:
    """Publishes the staged files with the new manifest (last); returns the manifest."""
    totals = version["totals"]
    if not totals["inputs_equal_written_plus_rejected"]:
        raise JobFailed(f"{job.out_dir}: build lost track of inputs: {totals['inputs']} inputs != "
                        f"{totals['written']} written + {totals['rejected']} rejected; manifest not written")
    manifest = dataset.make_manifest(build_manifest.contract(job.charset, job.spec),
                                     [*(job.current.versions if job.current else []), version], job.root)
    where = dataset.version_dir(version["version"])
    written = (*(s["path"] for s in version["shards"]), *version["reject_files"], *version["index_files"])
    files = {posixpath.relpath(path, where) if where else path: path for path in written}
    replace = build_manifest.dataset_files(job.out_dir) if overwrite else []
    stale = publish.dead_stagings(job.out_dir)
    stale += [where] if where and fs.exists(fs.join(job.out_dir, where)) else []
    try:
        dataset.publish_manifest(job.out_dir, staging, manifest, files, build_id=build_id,
                                 expected=job.expected, replace=replace, stale=stale)
    except PublishConflict as e:
        raise BuildError(f"{e}; run one build into an --output at a time (--append adds a version to a "
                         "dataset)") from None
    return manifest


def _counters(result) -> dict[str, int] | None:
    """The job's counters, or None when the runner has no metrics (DaskRunner)."""
    try:
        query = result.metrics().query(beam.metrics.MetricsFilter().with_namespace(METRICS_NAMESPACE))
    except (NotImplementedError, AttributeError):
        return None
    out = Counter()
    for c in query["counters"]:
        out[c.key.metric.name] += c.committed if c.committed is not None else c.attempted
    return dict(sorted(out.items()))


def report(version: dict, manifest: dict | None, counters: dict | None, out_dir: str, seconds: float,
           file=None) -> None:
    """What the build did (its version), and for an append the dataset's totals; manifest None: nothing new
    was published."""
    file = file or sys.stdout
    t = version["totals"]
    if manifest is None:
        print(f"ocr build-dataset: {out_dir}: nothing new, nothing written: {t['inputs']} inputs, every one "
              f"already in the dataset or rejected ({seconds:.1f}s)", file=file)
    else:
        head = f"version {version['version']}: " if version["version"] > 1 else ""
        print(f"ocr build-dataset: {out_dir}: {head}{t['written']} records written, "
              f"{t['rejected']} rejected, {t['inputs']} inputs ({seconds:.1f}s)", file=file)
        for split, n in version["counts"].items():
            shards = sum(1 for s in version["shards"] if s["split"] == split)
            print(f"  {split:<6} {n:>9} records in {shards} shards", file=file)
    for reason, n in version["rejects"].items():
        print(f"  rejected {reason:<16} {n:>7}", file=file)
    if manifest is not None and version["reject_files"]:
        print(f"  rejects listed in {', '.join(version['reject_files'])}", file=file)
    if manifest is not None and len(manifest["versions"]) > 1:
        counts = ", ".join(f"{split} {n}" for split, n in manifest["counts"].items())
        print(f"  the dataset: {manifest['totals']['written']} records in {len(manifest['versions'])} "
              f"versions ({counts})", file=file)
    if counters is None:
        print("  (this runner reports no Beam metrics; counts above come from the build summary)", file=file)
    else:
        print("  Beam counters: " + ", ".join(f"{k}={v}" for k, v in counters.items()), file=file)




if __name__ == "__main__":
    run()
