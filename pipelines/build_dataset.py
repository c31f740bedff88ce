"""`ocr build-dataset`: word images + labels -> validated, deduplicated, sharded TFRecords (Apache Beam).

    ReadEntries -> ValidateLabels -> DedupByImage -> AssignSplitAndShard -> GroupByShard -> WriteShards
    every reject (dead letter) -> WriteRejects;  written records -> WriteIndex;
    counts of every stage -> WriteBuildSummary

Only light entries (uri, label, id) are shuffled. The one DoFn that owns a shard reads, preprocesses and
writes its images itself, in id order (through `pipelines.sinks`), so shard files are byte-identical across
runners and retries and memory does not grow with the dataset. Everything is written into the build's own
staging folder, `DIR/_staging/<build id>/`; the launcher then makes the manifest from a small summary file
the pipeline leaves there (which works on every runner, also those without metrics) and publishes it with
the files (`ocr_core.dataset.publish_manifest`: manifest last, refused if another build published meanwhile).
With --append the build is a new version: earlier versions' indexes join DedupByImage, so only images no
version holds are written. This module never imports TensorFlow (see `ocr_core.records`).
"""
from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import posixpath
import sys
import time
import uuid
import zlib
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cached_property
from typing import NamedTuple

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

import ocr_core
from ocr_core import dataset, fs, publish
from ocr_core.charset import BLANK_ID, DEFAULT_CHARACTERS, Charset, CharsetError, ctc_min_steps
from ocr_core.config import ModelConfig
from ocr_core.dataset import MANIFEST, SPLITS, Dataset
from ocr_core.errors import InputError, UsageError
from ocr_core.inputs import (
    IMAGE_EXTENSIONS,
    ByteRange,
    Entry,
    InputSpec,
    Reject,
    _is_uri,
    _reject,
    byte_ranges,
    common_root,
    count_range,
    input_dir,
    read_image_bytes,
    read_input,
    read_range,
    resolve_inputs,
)
from ocr_core.preprocess import PreprocessSpec, preprocess_word_image
from ocr_core.publish import PublishConflict
from ocr_core.records import SCHEMA, SCHEMA_VERSION, WordRecord, iter_tfrecords, record_id
from pipelines.beam_options import add_runner_arguments, parse_job_args, pipeline_options, runner_name
from pipelines.sinks import JsonLinesEncoder, ShardSink, TFRecordEncoder, WriteFiles

METRICS_NAMESPACE = "ocr.build_dataset"
SUMMARY_DIR = "_build_summary"
SUMMARY_FILE = "summary.jsonl"
STAGING_DIR = "_staging"  # one folder per build: _staging/<build id>
OWNER_FILE = "_owner.json"
OOV_POLICIES = ("reject", "lowercase", "drop")


class BuildError(UsageError):
    """The build cannot start (bad options, missing inputs, existing dataset)."""


# --- labels ---------------------------------------------------------------------------------------


def check_label(label: str, charset: Charset, oov: str, max_steps: int) -> tuple[str, list[int]]:
    """The label as stored and its ids; raises InputError(empty_label | oov_characters | label_too_long).

    Args:
        label: the raw label.
        charset: the alphabet.
        oov: reject | lowercase (lowercase a label with unknown characters, then re-check) | drop
            (remove unknown characters; reject when nothing is left).
        max_steps: CTC time steps of the model; a label needing more can never be emitted.
    """
    if label == "":
        raise InputError("empty_label", "label is empty")
    text = label
    bad = charset.unknown(text)
    if bad and oov == "lowercase":
        text = text.lower()
        bad = charset.unknown(text)
    elif bad and oov == "drop":
        text = "".join(c for c in text if c not in bad)
        if not text:
            raise InputError("oov_characters", f"label {label!r} has no characters in the charset")
        bad = ""
    if bad:
        hint = "extend --charset" if oov == "lowercase" else "use --oov lowercase|drop or extend --charset"
        raise InputError("oov_characters",
                         f"label {label!r} has characters outside the charset ({bad}); {hint}")
    ids = charset.encode(text)
    steps = ctc_min_steps(ids)
    if steps > max_steps:
        raise InputError("label_too_long", f"label {text!r} needs {steps} CTC time steps "
                                           f"(characters + repeats) but the model has {max_steps}")
    return text, ids


def max_time_steps(spec: PreprocessSpec) -> int:
    """CTC time steps of the CRNN for the spec's image width (32x128 -> 31)."""
    return ModelConfig(height=spec.height, width=spec.width).time_steps


# --- split and shard --------------------------------------------------------------------------------


def _unit_hash(salt: str, key: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{salt}\n{key}".encode()).digest()[:8], "big")


@dataclass(frozen=True)
class SplitPlan:
    """Deterministic split and shard assignment by hashing the record id."""

    val_fraction: float = 0.1
    test_fraction: float = 0.0
    train_shards: int = 8
    only: str | None = None  # every record into this split (a fixed dev or test list), --shards shards

    def __post_init__(self):
        if self.only is not None:
            if self.only not in SPLITS:
                raise BuildError(f"--split must be one of {', '.join(SPLITS)}")
            if self.train_shards < 1:
                raise BuildError("--shards must be >= 1")
            return
        if not (0 <= self.val_fraction < 1 and 0 <= self.test_fraction < 1):
            raise BuildError("--val-fraction and --test-fraction must be in [0, 1)")
        if self.val_fraction + self.test_fraction >= 1:
            raise BuildError("--val-fraction + --test-fraction must be < 1 (something must be left to train)")
        if self.train_shards < 1:
            raise BuildError("--shards must be >= 1")

    @property
    def fractions(self) -> dict[str, float]:
        if self.only is not None:
            return {split: float(split == self.only) for split in SPLITS}
        train = 1.0 - self.val_fraction - self.test_fraction
        return {"train": train, "val": self.val_fraction, "test": self.test_fraction}

    @cached_property
    def num_shards(self) -> dict[str, int]:
        """Shards per split that gets data: train has --shards, val/test a proportional share (>= 1)."""
        if self.only is not None:
            return {self.only: self.train_shards}
        train = self.fractions["train"]
        out = {"train": self.train_shards}
        for split in ("val", "test"):
            frac = self.fractions[split]
            if frac > 0:
                out[split] = max(1, round(self.train_shards * frac / train))
        return out

    def split_of(self, id_: str) -> str:
        if self.only is not None:
            return self.only
        u = _unit_hash("split", id_) / 2.0**64
        if u < self.test_fraction:
            return "test"
        if u < self.test_fraction + self.val_fraction:
            return "val"
        return "train"

    def shard_of(self, id_: str, split: str) -> int:
        return _unit_hash("shard", id_) % self.num_shards[split]

    def assign(self, entry: Entry) -> tuple[tuple[str, int], Entry]:
        # Hashed on the location-independent key, so building from a copy of the data elsewhere (another
        # machine, gs://) puts every image in the same split and shard.
        key = record_id(entry.key or entry.source, entry.label)
        split = self.split_of(key)
        return (split, self.shard_of(key, split)), entry


def shard_name(split: str, shard: int, num_shards: int) -> str:
    return f"{split}-{shard:05d}-of-{num_shards:05d}.tfrecord"


def reject_file_name(shard: int, num_shards: int) -> str:
    return f"rejects-{shard:05d}-of-{num_shards:05d}.jsonl"


def index_file_name(shard: int, num_shards: int) -> str:
    return f"index-{shard:05d}-of-{num_shards:05d}.jsonl"


def _join(*parts: str) -> str:
    return FileSystems.join(*parts)


# --- DoFns ------------------------------------------------------------------------------------------


def _is(kind: type):
    """Keeps one kind of element. Tagged outputs are re-filtered by type because Beam's DaskRunner (2.77)
    gives every consumer of a multi-output ParDo all of its outputs; on other runners this is a no-op."""
    return beam.Filter(_isinstance, kind)


def _isinstance(element, kind: type) -> bool:
    return isinstance(element, kind)


class ParseInput(beam.DoFn):
    """(InputSpec, part, parts) of a glob/folder, or ((index, range), [(InputSpec, ByteRange, first line
    number)]) of a manifest -> Entry, with malformed lines as dead letters and a count per
    part."""

    REJECTS = "rejects"
    SUMMARY = "summary"

    def __init__(self):
        self.inputs = Metrics.counter(METRICS_NAMESPACE, "inputs")

    def process(self, task):
        if isinstance(task[0], InputSpec):
            spec, part, parts = task
            items = read_input(spec, part, parts)
        else:
            (_, part), [(spec, r, first_line_no)] = task
            items = read_range(spec, r, first_line_no)
        n = 0
        for item in items:
            n += 1
            yield beam.pvalue.TaggedOutput(self.REJECTS, item) if isinstance(item, Reject) else item
        self.inputs.inc(n)
        yield beam.pvalue.TaggedOutput(self.SUMMARY, {"kind": "input", "index": spec.index,
                                                      "input": spec.given, "part": part, "entries": n})


def count_lines(task: tuple[InputSpec, ByteRange]):
    """(spec, range) -> (input index, (spec, range, its number of lines))."""
    spec, r = task
    return spec.index, (spec, r, count_range(spec, r))


def number_ranges(keyed):
    """(input index, its ranges with their line counts) -> ((index, range), (spec, range, first line
    number)): line numbers are those of the whole file."""
    _, ranges = keyed
    line_no = 1
    for spec, r, lines in sorted(ranges, key=lambda x: x[1].index):
        yield (spec.index, r.index), (spec, r, line_no)
        line_no += lines


class ValidateLabel(beam.DoFn):
    """Entry -> Entry with its final label, ids and record id; bad labels leave as dead letters."""

    REJECTS = "rejects"

    def __init__(self, characters: str, oov: str, max_steps: int):
        self.characters, self.oov, self.max_steps = characters, oov, max_steps

    def setup(self):
        self.charset = Charset(self.characters)

    def process(self, entry: Entry):
        try:
            label, ids = check_label(entry.label, self.charset, self.oov, self.max_steps)
        except InputError as e:
            yield beam.pvalue.TaggedOutput(self.REJECTS, _reject(entry, e))
            return
        yield entry._replace(id=record_id(entry.source, label), label=label, label_ids=tuple(ids))


class Known(NamedTuple):
    """A record of an earlier version of the dataset (appends): its image, record id and version."""

    source: str
    id: str
    version: int


class IndexEntry(NamedTuple):
    """One line of a version's index-*.jsonl: a written record's id and image."""

    id: str
    source: str

    def to_json(self) -> str:
        return json.dumps([self.id, self.source], ensure_ascii=False)


class ReadKnown(beam.DoFn):
    """(file, version, kind) -> Known per record of an earlier version: from its index file, or (a version
    built before indexes existed) from the shard's records themselves."""

    def process(self, task):
        path, version, kind = task
        with fs.open_binary(path) as fh:
            if kind == "index":
                for line in fh.read().decode("utf-8").splitlines():
                    id_, source = json.loads(line)
                    yield Known(source, id_, version)
            else:
                for data in iter_tfrecords(fh, path):
                    r = WordRecord.decode(data)
                    yield Known(r.source, r.id, version)


class KeepOnePerImage(beam.DoFn):
    """(image source, its valid entries and Known records) -> at most one entry; the others are dead letters.

    The same image with the same label more than once: the first in input order is kept, the others are
    `duplicate`. The same image with different labels: which one is right cannot be known, and keeping the
    first would make the dataset depend on input order, so *every* entry of that image is a
    `conflicting_label` reject and the image is not written. Labels are compared as stored (after --oov), so
    `Hello` and `hello` with --oov lowercase are duplicates. One entry per image means one split per image.
    An image an earlier version holds (appends) is never written again: its entries are `duplicate` when the
    label is the same, else `conflicting_label` (the earlier record stays; relabelling needs a rebuild).
    """

    REJECTS = "rejects"
    SHOWN = 3  # origins named in a conflicting_label detail

    def process(self, keyed):
        _, items = keyed
        entries = sorted((e for e in items if isinstance(e, Entry)), key=lambda e: e.order)
        known = min((k for k in items if isinstance(k, Known)), default=None, key=lambda k: k.version)
        if known is not None:
            yield from self.already_written(entries, known)
            return
        if len({e.label for e in entries}) > 1:
            for e in entries:
                others = [f"{o.origin} ({o.label!r})" for o in entries if o.label != e.label]
                more = f" and {len(others) - self.SHOWN} more" if len(others) > self.SHOWN else ""
                err = InputError("conflicting_label", "the same image is labelled differently at "
                                 f"{', '.join(others[:self.SHOWN])}{more}; none of its labels kept")
                yield beam.pvalue.TaggedOutput(self.REJECTS, _reject(e, err))
            return
        kept, *others = entries
        yield kept
        for e in others:
            yield beam.pvalue.TaggedOutput(
                self.REJECTS,
                _reject(e, InputError("duplicate", f"same image and label as {kept.origin} (kept)")))

    def already_written(self, entries, known: Known):
        for e in entries:
            if e.id == known.id:
                err = InputError("duplicate", f"same image and label as a record of version {known.version}")
            else:
                err = InputError("conflicting_label", f"the image is in version {known.version} with another "
                                 "label, which stays; rebuild with --overwrite to change a label")
            yield beam.pvalue.TaggedOutput(self.REJECTS, _reject(e, err))


class WriteShard(beam.DoFn):
    """((split, shard), entries) -> the shard file, its records in id order; yields the file's summary.

    Each image is read, checked and preprocessed here, while the shard is written (`pipelines.sinks`), so
    memory does not grow with the shard; image problems (missing, unreadable, empty, not an image,
    truncated, too large, corrupt) leave as dead letters.
    """

    REJECTS = "rejects"
    INDEX = "index"

    def __init__(self, out_dir: str, spec: PreprocessSpec, num_shards: dict[str, int]):
        self.sink = ShardSink(out_dir, TFRecordEncoder())
        self.spec, self.num_shards = spec, num_shards

    def setup(self):
        self.written = {s: Metrics.counter(METRICS_NAMESPACE, f"written_{s}") for s in SPLITS}

    def process(self, keyed):
        (split, shard), entries = keyed
        entries = sorted((e for e in entries if e is not None), key=lambda e: e.id)
        rejects, written_ids, lengths = [], [], Counter()

        def records():
            for e in entries:
                try:
                    image, content_width = preprocess_word_image(
                        read_image_bytes(e.source, self.spec.max_bytes), self.spec)
                except InputError as err:
                    rejects.append(_reject(e, err))
                    continue
                lengths[len(e.label)] += 1
                written_ids.append(IndexEntry(e.id, e.source))
                yield WordRecord(e.id, e.source, image, content_width, e.label, list(e.label_ids)).encode()

        n_shards = self.num_shards[split]
        written = self.sink.write(shard_name(split, shard, n_shards), records())
        for r in rejects:
            yield beam.pvalue.TaggedOutput(self.REJECTS, r)
        for i in written_ids:
            yield beam.pvalue.TaggedOutput(self.INDEX, i)
        self.written[split].inc(written["count"])
        yield {"kind": "shard", "split": split, "shard": shard, "num_shards": n_shards, **written,
               "label_lengths": {str(k): v for k, v in sorted(lengths.items())}}


def reject_order(r: Reject) -> tuple:
    return r.order, r.reason


def reject_summary(rejects: list[Reject]) -> dict:
    """A rejects file's summary fields; counts the rejects by reason (Beam counters)."""
    by_reason = Counter(r.reason for r in rejects)
    for reason, n in by_reason.items():
        Metrics.counter(METRICS_NAMESPACE, f"rejected_{reason}").inc(n)
    return {"kind": "rejects", "by_reason": dict(sorted(by_reason.items()))}


def summary_order(s: dict) -> str:
    return json.dumps(s, sort_keys=True)


# --- the stages ---------------------------------------------------------------------------------------


class ReadEntries(beam.PTransform):
    """PBegin -> (entries, rejects, input counts).

    A manifest is read in byte ranges (at least `parts`, at most ~64 MB each), each by one worker and no
    worker reading the whole file: a first pass counts each range's lines, so the second can number them as
    the whole file does (origins `labels.tsv:17`, input order). Each glob/folder is listed by `parts`
    workers, each keeping every parts-th file. The shuffles of tiny (spec, range) elements spread the
    ranges over the workers, also on the DaskRunner, where Reshuffle does nothing but GroupByKey does.
    """

    def __init__(self, inputs: list[InputSpec], parts: int):
        super().__init__()
        self.listings = [(spec, part, parts) for spec in inputs if spec.kind in ("glob", "dir")
                         for part in range(parts)]
        self.ranges = [(spec, r) for spec in inputs if spec.kind not in ("glob", "dir")
                       for r in byte_ranges(spec, parts)]

    def expand(self, pbegin):
        tasks = []
        if self.listings:
            tasks.append(pbegin | "ListFolderParts" >> beam.Create(self.listings))
        if self.ranges:
            tasks.append(pbegin
                         | "ListManifestRanges" >> beam.Create(self.ranges)
                         | "CountLines" >> beam.Map(count_lines)
                         | "GroupByManifest" >> beam.GroupByKey()
                         | "NumberLines" >> beam.FlatMap(number_ranges)
                         | "SpreadRanges" >> beam.GroupByKey())
        out = (tasks
               | "AllParts" >> beam.Flatten()
               | "ParseLines" >> beam.ParDo(ParseInput()).with_outputs(
                   ParseInput.REJECTS, ParseInput.SUMMARY, main="entries"))
        return (out.entries | "OnlyEntries" >> _is(Entry),
                out[ParseInput.REJECTS] | "OnlyRejects" >> _is(Reject),
                out[ParseInput.SUMMARY] | "OnlyCounts" >> _is(dict))


class ValidateLabels(beam.PTransform):
    """entries -> (entries with label ids and record ids, rejects)."""

    def __init__(self, charset: Charset, oov: str, max_steps: int):
        super().__init__()
        self.fn = ValidateLabel(charset.characters, oov, max_steps)

    def expand(self, entries):
        out = entries | "CheckLabel" >> beam.ParDo(self.fn).with_outputs(ValidateLabel.REJECTS, main="valid")
        return (out.valid | "OnlyEntries" >> _is(Entry),
                out[ValidateLabel.REJECTS] | "OnlyRejects" >> _is(Reject))


class DedupByImage(beam.PTransform):
    """entries -> (at most one entry per image, `duplicate` and `conflicting_label` rejects). Only light
    entries are grouped. `known`: the (file, version, kind) to read an earlier version's records from."""

    def __init__(self, known: list[tuple[str, int, str]] = ()):
        super().__init__()
        self.known = list(known)

    def expand(self, entries):
        if self.known:
            known = (entries.pipeline
                     | "ListEarlierVersions" >> beam.Create(self.known)
                     | "ReadEarlierRecords" >> beam.ParDo(ReadKnown()))
            entries = (entries, known) | "WithEarlierRecords" >> beam.Flatten()
        out = (entries
               | "KeyByImage" >> beam.Map(lambda e: (e.source, e))
               | "GroupByImage" >> beam.GroupByKey()
               | "KeepOnePerImage" >> beam.ParDo(KeepOnePerImage()).with_outputs(
                   KeepOnePerImage.REJECTS, main="unique"))
        return (out.unique | "OnlyEntries" >> _is(Entry),
                out[KeepOnePerImage.REJECTS] | "OnlyRejects" >> _is(Reject))


class AssignSplitAndShard(beam.PTransform):
    """entry -> ((split, shard), entry), by hashing the record id."""

    def __init__(self, plan: SplitPlan):
        super().__init__()
        self.plan = plan

    def expand(self, entries):
        return entries | "HashId" >> beam.Map(self.plan.assign)


class GroupByShard(beam.PTransform):
    """((split, shard), entry) -> ((split, shard), entries); every planned shard appears, empty ones too,
    so a split always has all its N files."""

    def __init__(self, plan: SplitPlan):
        super().__init__()
        self.plan = plan

    def expand(self, keyed):
        every_shard = [((split, i), None) for split, n in self.plan.num_shards.items() for i in range(n)]
        return ((keyed, keyed.pipeline | "ListShards" >> beam.Create(every_shard))
                | "WithEmptyShards" >> beam.Flatten()
                | "GroupByShard" >> beam.GroupByKey())


class WriteShards(beam.PTransform):
    """grouped light entries -> (shard summaries, image rejects); each shard file written by one DoFn."""

    def __init__(self, out_dir: str, spec: PreprocessSpec, plan: SplitPlan):
        super().__init__()
        self.fn = WriteShard(out_dir, spec, plan.num_shards)

    def expand(self, grouped):
        out = grouped | "ReadPreprocessWrite" >> beam.ParDo(self.fn).with_outputs(
            WriteShard.REJECTS, WriteShard.INDEX, main="shards")
        return (out.shards | "OnlySummaries" >> _is(dict),
                out[WriteShard.REJECTS] | "OnlyRejects" >> _is(Reject),
                out[WriteShard.INDEX] | "OnlyIndex" >> _is(IndexEntry))


class RejectFileOf:
    """A reject -> its rejects-*.jsonl file, by a hash of its input position."""

    def __init__(self, num_files: int):
        self.num_files = num_files

    def __call__(self, r: Reject) -> str:
        return reject_file_name(zlib.crc32(repr(r.order).encode()) % self.num_files, self.num_files)


class IndexFileOf:
    """A written record -> its index-*.jsonl file, by its id."""

    def __init__(self, num_files: int):
        self.num_files = num_files

    def __call__(self, i: IndexEntry) -> str:
        return index_file_name(int(i.id[:8], 16) % self.num_files, self.num_files)


def index_order(i: IndexEntry) -> tuple:
    return i.id, i.source


def index_summary(_) -> dict:
    return {"kind": "index"}


class WriteIndex(beam.PTransform):
    """written records -> summaries of DIR/index-*.jsonl files (`[id, source]` lines sorted by id), what a
    later --append reads to know which images the dataset holds."""

    def __init__(self, out_dir: str, num_files: int):
        super().__init__()
        self.files = WriteFiles(ShardSink(out_dir, JsonLinesEncoder(IndexEntry.to_json)),
                                IndexFileOf(num_files), index_order, index_summary)

    def expand(self, written):
        return written | "WriteJsonLines" >> self.files


class WriteRejects(beam.PTransform):
    """rejects -> summaries of DIR/rejects-*.jsonl files (each sorted in input order)."""

    def __init__(self, out_dir: str, num_files: int):
        super().__init__()
        self.files = WriteFiles(ShardSink(out_dir, JsonLinesEncoder(Reject.to_json)), RejectFileOf(num_files),
                                reject_order, reject_summary)

    def expand(self, rejects):
        return rejects | "WriteJsonLines" >> self.files


class WriteBuildSummary(beam.PTransform):
    """summaries -> DIR/_build_summary/summary.jsonl. The single sink everything else feeds, which is
    what the DaskRunner needs to compute the whole graph."""

    def __init__(self, out_dir: str):
        super().__init__()
        self.files = WriteFiles(ShardSink(_join(out_dir, SUMMARY_DIR), JsonLinesEncoder()),
                                lambda s: SUMMARY_FILE, summary_order, names=[SUMMARY_FILE])

    def expand(self, summaries):
        return (summaries
                | "AllSummaries" >> beam.Flatten()
                | "WriteJsonLines" >> self.files)


def build_pipeline(p, inputs: list[InputSpec], out_dir: str, plan: SplitPlan, charset: Charset, oov: str,
                   spec: PreprocessSpec, parts: int = 1, known: list[tuple[str, int, str]] = ()):
    """Adds the dataset build to pipeline `p` (see the module docstring); `known`: earlier versions' record
    files (appends)."""
    entries, read_rejects, input_counts = p | "ReadEntries" >> ReadEntries(inputs, parts)
    valid, label_rejects = entries | "ValidateLabels" >> ValidateLabels(charset, oov, max_time_steps(spec))
    unique, duplicates = valid | "DedupByImage" >> DedupByImage(known)
    shards, image_rejects, written = (unique
                                      | "AssignSplitAndShard" >> AssignSplitAndShard(plan)
                                      | "GroupByShard" >> GroupByShard(plan)
                                      | "WriteShards" >> WriteShards(out_dir, spec, plan))
    files = max(1, plan.train_shards // 8)
    reject_files = ((read_rejects, label_rejects, duplicates, image_rejects)
                    | "AllRejects" >> beam.Flatten()
                    | "WriteRejects" >> WriteRejects(out_dir, files))
    index_files = written | "WriteIndex" >> WriteIndex(out_dir, files)
    return ((input_counts, shards, reject_files, index_files)
            | "WriteBuildSummary" >> WriteBuildSummary(out_dir))


# --- the launcher ------------------------------------------------------------------------------------


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="ocr build-dataset", allow_abbrev=False, description=__doc__.split("\n")[0],
        epilog="Other flags (e.g. --direct_running_mode, --temp_location) go to Beam's PipelineOptions.")
    parser.add_argument("--input", action="append", required=True, metavar="INPUT",
                        help="labels.tsv / labels.csv (path, label), an MJSynth annotation*.txt, a quoted "
                             "glob of images named <n>_<label>_<n>.<ext>, or a folder: every image in it "
                             "and in all its subfolders (recursive; by extension: "
                             f"{' '.join(IMAGE_EXTENSIONS)}), named like the glob's; repeatable")
    parser.add_argument("--output", required=True, metavar="DIR", help="dataset directory (local or gs://)")
    parser.add_argument("--val-fraction", type=float, help="share of the val split (default 0.1)")
    parser.add_argument("--test-fraction", type=float, help="share of the test split (default 0)")
    parser.add_argument("--shards", type=int, default=8,
                        help="train shards (val/test get a proportional share)")
    parser.add_argument("--split", choices=SPLITS, dest="only_split",
                        help="put every input into this one split instead of splitting by hash (a fixed "
                             "dev or test list, e.g. `--split val` for a dev set); --shards shards")
    parser.add_argument("--charset", help="the alphabet (default 0-9a-zA-Z)")
    parser.add_argument("--oov", choices=OOV_POLICIES, default="reject",
                        help="labels with characters outside the charset: reject (default), lowercase then "
                             "re-check, or drop the unknown characters")
    parser.add_argument("--image-size", type=image_size, metavar="HxW",
                        help="stored image height x width: the input size of the config to train (default "
                             "32x128, every shipped config; e.g. 32x160 for a config with width 160)")
    publishing = parser.add_mutually_exclusive_group()
    publishing.add_argument("--overwrite", action="store_true",
                            help="replace an existing dataset in --output")
    publishing.add_argument("--append", action="store_true",
                            help="add a version to the dataset in --output holding only the inputs no "
                                 "earlier version holds (each in the split a full build gives it); charset, "
                                 "image size and split options are the dataset's. Into an empty --output: "
                                 "its first version. Nothing new: nothing written (exit 0)")
    add_runner_arguments(parser)
    return parse_job_args(parser, argv)


DEFAULTS = {"val_fraction": 0.1, "test_fraction": 0.0, "only_split": None,
            "charset": DEFAULT_CHARACTERS, "image_size": (32, 128)}
KEPT_ON_APPEND = {"charset": "--charset", "image_size": "--image-size", "val_fraction": "--val-fraction",
                  "test_fraction": "--test-fraction", "only_split": "--split"}


def resolve_options(args: argparse.Namespace, current: Dataset | None) -> None:
    """Fills the options not given: from the dataset being appended to, else the defaults.

    Raises:
        BuildError: an --append option given that differs from the dataset's (its records could not be
            trained with the new ones, or would not land in the splits a full build gives them).
    """
    kept = {}
    if current is not None:
        options = current.manifest.get("options", {})
        kept = {"charset": current.charset, "image_size": current.image_shape,
                **{k: options.get(k, DEFAULTS[k]) for k in ("val_fraction", "test_fraction", "only_split")}}
        if kept["only_split"] is not None:  # the fractions mean nothing then
            kept.pop("val_fraction"), kept.pop("test_fraction")
    for key, default in DEFAULTS.items():
        given = getattr(args, key)
        if key in kept and given is not None and tuple_or(given) != tuple_or(kept[key]):
            shown = "x".join(map(str, kept[key])) if key == "image_size" else kept[key]
            flag = KEPT_ON_APPEND[key]
            raise BuildError(f"{flag} differs from the dataset's ({shown!r}); an --append keeps the "
                             f"dataset's: omit {flag}, or rebuild with --overwrite")
        if given is None:
            setattr(args, key, tuple_or(kept.get(key, default)))


def tuple_or(value):
    return tuple(value) if isinstance(value, list) else value


def image_size(text: str) -> tuple[int, int]:
    """`--image-size HxW` -> (H, W): H a multiple of 16 in [16, 256], W a multiple of 4 in [16, 2048]."""
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not HxW (e.g. 32x128)") from None
    if not (16 <= h <= 256 and h % 16 == 0 and 16 <= w <= 2048 and w % 4 == 0):
        raise argparse.ArgumentTypeError(f"{text!r}: height must be a multiple of 16 in 16-256 and width a "
                                         "multiple of 4 in 16-2048")
    return h, w


def check_output(out_dir: str, overwrite: bool, append: bool = False) -> tuple[str | None, Dataset | None]:
    """Refuses a file, or a directory holding a dataset unless overwrite or append; nothing is written or
    removed here (an overwrite replaces the old dataset when the new one publishes).

    Returns:
        The generation of the manifest the build will replace (None: there is none), and with append the
        dataset it adds a version to (None: there is none yet).
    """
    if not _is_uri(out_dir) and os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise BuildError(f"--output {out_dir}: is a file, not a directory; choose another --output")
    if append and Dataset.exists(out_dir):
        current = Dataset.load(out_dir)
        return current.generation, current
    current = publish.generation(_join(out_dir, MANIFEST))
    old = dataset_files(out_dir)
    if (current or old) and not overwrite:
        what = "manifest.json" if current else f"{len(old)} shard/reject files"
        fix = "pass --overwrite to replace it, " + ("" if current is None else "--append to add to it, ")
        raise BuildError(f"{out_dir} already holds a dataset ({what}); {fix}or choose another --output")
    return current, None


def dataset_files(out_dir: str) -> list[str]:
    """What a dataset keeps in `out_dir` besides its manifest (relative paths): the first version's shard,
    rejects and index files, and the folders of later versions."""
    found = fs.glob(_join(out_dir, "*.tfrecord")) + fs.glob(_join(out_dir, "rejects-*.jsonl"))
    found += fs.glob(_join(out_dir, "index-*.jsonl"))
    found += sorted({posixpath.dirname(p.replace(os.sep, "/"))
                     for p in fs.glob(_join(out_dir, "v[0-9][0-9][0-9][0-9]", "*"))})
    return [p[len(out_dir.rstrip("/")) + 1:] for p in found]


def dead_stagings(out_dir: str) -> list[str]:
    """Staging folders (relative paths) of builds whose process has died on this host (killed builds)."""
    dead = []
    for owner_file in fs.glob(_join(out_dir, STAGING_DIR, "*", OWNER_FILE)):
        try:
            holder = json.loads(fs.read_text(owner_file))
        except (OSError, ValueError):
            continue
        if publish.is_alive(holder) is False:
            dead.append(f"{STAGING_DIR}/{holder['job']}")
    return dead


def start_staging(out_dir: str, build_id: str) -> str:
    """Creates this build's staging folder `out_dir`/_staging/<build id> (with its owner) and returns it."""
    staging = _join(out_dir, STAGING_DIR, build_id)
    try:
        fs.makedirs(out_dir)
        fs.write_text(_join(staging, OWNER_FILE), json.dumps(publish.owner(build_id)))
    except OSError as e:
        raise BuildError(f"--output {out_dir}: cannot create the directory ({e.strerror or e})") from e
    return staging


def read_summary(out_dir: str) -> list[dict]:
    with fs.open_binary(_join(out_dir, SUMMARY_DIR, SUMMARY_FILE)) as fh:
        return [json.loads(line) for line in fh.read().decode().splitlines()]


def make_version(summary: list[dict], number: int, build_id: str, inputs: list[InputSpec], plan: SplitPlan,
                 options: dict) -> dict:
    """This build's version entry of the manifest, from the build summary; paths relative to the dataset."""
    per_input = Counter()
    for s in summary:
        if s["kind"] == "input":
            per_input[s["index"]] += s["entries"]
    where = dataset.version_dir(number)

    def placed(items):
        return [{**s, "path": posixpath.join(where, s["path"])} for s in items]

    shards = sorted((s for s in summary if s["kind"] == "shard"),
                    key=lambda s: (SPLITS.index(s["split"]), s["shard"]))
    reject_files = sorted((s for s in summary if s["kind"] == "rejects"), key=lambda s: s["path"])
    index_files = sorted(s["path"] for s in placed(s for s in summary if s["kind"] == "index"))
    return dataset.make_version(
        number, build_id,
        inputs=[{"input": s.given, "uri": s.uri, "kind": s.kind, "entries": per_input[s.index]}
                for s in inputs],
        shards=placed(shards), reject_files=placed(reject_files), index_files=index_files,
        splits={split: {"fraction": plan.fractions[split], "num_shards": n}
                for split, n in plan.num_shards.items()},
        options=options, created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        ocr_version=ocr_core.__version__)


def earlier_records(current: Dataset) -> list[tuple[str, int, str]]:
    """(file, version, kind) to read the records of every version from: its index files, or its shards for a
    version built before indexes existed."""
    files = []
    for v in current.versions:
        if v.get("index_files") is not None and (v["index_files"] or not v["totals"]["written"]):
            files += [(current.path(p), v["version"], "index") for p in v["index_files"]]
        else:
            files += [(current.path(s["path"]), v["version"], "shards") for s in v["shards"] if s["count"]]
    return files


def split_root(inputs: list[InputSpec], current: Dataset | None) -> str:
    """The directory split keys are relative to: the inputs' common directory, widened on --append to the
    one the dataset's keys hang from, so a record gets the split a full build over every input gives it."""
    if current is None:
        return inputs[0].root
    previous = current.manifest.get("split_root")
    if previous is None:  # a dataset built before the root was recorded
        previous = common_root([input_dir(i["uri"], i["kind"]) for i in current.manifest.get("inputs", [])])
    return common_root([previous, inputs[0].root])


def contract(charset: Charset, spec: PreprocessSpec) -> dict:
    """What a model trained on the dataset relies on: the record schema, charset and image contract."""
    return {"schema_version": SCHEMA_VERSION, "record_schema": SCHEMA, "charset": charset.characters,
            "blank_id": BLANK_ID, "image_shape": [spec.height, spec.width, 1],
            "preprocessing": spec.to_dict(), "max_time_steps": max_time_steps(spec)}


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


def run(argv=None, test_pipeline=None):
    """Builds a dataset; returns the PipelineResult. See `ocr build-dataset --help`.

    Args:
        argv: command-line arguments (default sys.argv[1:]); unknown flags go to PipelineOptions.
        test_pipeline: a pipeline to build into instead of one made from the options (tests).

    Raises:
        BuildError: the build cannot start (bad option, missing or empty input, output that is a file,
            existing dataset without --overwrite); `pipelines/cli.py` shows it as one line, exit 2.
        JobFailed: the build started and failed (a manifest that ends early); one line, exit 1.
    """
    args, beam_args = parse_args(argv)
    started = time.time()
    out_dir = args.output if _is_uri(args.output) else os.path.abspath(args.output)
    expected, current = check_output(out_dir, args.overwrite, args.append)
    resolve_options(args, current)
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
    root = split_root(inputs, current)
    inputs = [s._replace(root=root) for s in inputs]
    try:
        options, cleanup = pipeline_options(beam_args, args.runner, args.workers, args.dask_address)
    except ValueError as e:
        raise BuildError(str(e)) from e

    number = len(current.versions) + 1 if current else 1
    build_id = f"{datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%SZ')}-{uuid.uuid4().hex[:12]}"
    staging = start_staging(out_dir, build_id)
    manifest = None
    try:
        result = None
        try:
            p = test_pipeline if test_pipeline is not None else beam.Pipeline(options=options)
            with p:
                build_pipeline(p, inputs, staging, plan, charset, args.oov, spec, parts=max(1, args.workers),
                               known=earlier_records(current) if current else ())
            result = p.result
        finally:
            cleanup(result)
        used = {k: v for k, v in vars(args).items() if k not in ("input", "output")}
        used.update(runner=runner_name(args.runner), beam_args=beam_args)
        version = make_version(read_summary(staging), number, build_id, inputs, plan, used)
        totals = version["totals"]
        if not totals["inputs_equal_written_plus_rejected"]:
            raise RuntimeError(f"{out_dir}: build lost track of inputs: {totals['inputs']} inputs != "
                               f"{totals['written']} written + {totals['rejected']} rejected; "
                               "manifest not written")
        if current is None or totals["written"]:
            manifest = dataset.make_manifest(contract(charset, spec), [*(current.versions if current else []),
                                                                       version], root)
            where = dataset.version_dir(number)
            written = (*(s["path"] for s in version["shards"]), *version["reject_files"],
                       *version["index_files"])
            files = {posixpath.relpath(path, where) if where else path: path for path in written}
            replace = dataset_files(out_dir) if args.overwrite else []
            stale = dead_stagings(out_dir) + ([where] if where and fs.exists(_join(out_dir, where)) else [])
            dataset.publish_manifest(out_dir, staging, manifest, files, build_id=build_id, expected=expected,
                                     replace=replace, stale=stale)
    except PublishConflict as e:
        raise BuildError(f"{e}; run one build into an --output at a time (--append adds a version to a "
                         "dataset)") from None
    finally:
        fs.remove(staging)  # nothing of a failed build stays (publish has moved a published one's files)
        if not _is_uri(out_dir):
            with contextlib.suppress(OSError):
                os.rmdir(_join(out_dir, STAGING_DIR))  # when no other build stages here
    report(version, manifest, _counters(result), out_dir, time.time() - started)
    return result


if __name__ == "__main__":
    run()
