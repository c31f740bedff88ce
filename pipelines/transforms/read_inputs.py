"""Reading inputs, the one reader of both jobs: --input values (manifests, globs, folders) -> light entries
(which image, which label, where it was listed) and malformed lines as dead letters; plus a dataset's shards
and a watch window's list of paths (predict).

A manifest is read in byte ranges (at least `parts`, at most ~64 MB each), each by one worker and no worker
reading the whole file: a first pass counts each range's lines, so the second can number them as the whole
file does (origins `labels.tsv:17`, input order). Each glob/folder is listed by `parts` workers, each keeping
every parts-th file. The GroupByKeys of tiny (spec, range) elements spread the ranges over the workers, also
on the DaskRunner, where Reshuffle does nothing. Only public Beam APIs (Create, GroupByKey, ParDo).
"""
from __future__ import annotations

import json

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from ocr_core.errors import JobFailed
from ocr_core.inputs import Entry, InputSpec, Reject, count_range, read_input, read_range
from ocr_core.manifest_bytes import RANGE_BYTES, ByteRange, byte_ranges
from pipelines.transforms.dask_safe import only

METRICS_NAMESPACE = "ocr.build_dataset"  # the job reports its counters (predict has none of its own)


class ParseInput(beam.DoFn):
    """(InputSpec, part, parts) of a glob/folder, or ((index, range), [(InputSpec, ByteRange, first line
    number)]) of a manifest -> Entry, with malformed lines as dead letters and a count per part."""

    REJECTS = "rejects"
    SUMMARY = "summary"

    def __init__(self, labelled: bool = True, rejects_inline: bool = False):
        self.labelled, self.rejects_inline = labelled, rejects_inline
        self.inputs = Metrics.counter(METRICS_NAMESPACE, "inputs")

    def process(self, task):
        spec, part, items = task_items(task, self.labelled)
        n = 0
        for item in items:
            n += 1
            inline = self.rejects_inline or not isinstance(item, Reject)
            yield item if inline else beam.pvalue.TaggedOutput(self.REJECTS, item)
        self.inputs.inc(n)
        yield beam.pvalue.TaggedOutput(self.SUMMARY, input_summary(spec, part, n))


def task_items(task, labelled: bool = True):
    """A read task of `ReadTasks` -> (its InputSpec, its part number, its Entry and Reject items)."""
    if isinstance(task[0], InputSpec):
        spec, part, parts = task
        return spec, part, read_input(spec, part, parts, labelled)
    (_, part), [(spec, r, first_line_no)] = task
    return spec, part, read_range(spec, r, first_line_no)


def input_summary(spec: InputSpec, part: int, entries: int) -> dict:
    """The build summary's line for one read task: how many inputs it read."""
    return {"kind": "input", "index": spec.index, "input": spec.given, "part": part, "entries": entries}


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


class ReadTasks(beam.PTransform):
    """PBegin -> the read tasks of --input values, spread over the workers: (InputSpec, part, parts) per
    share of a glob or folder listing, and ((index, range), [(InputSpec, ByteRange, first line number)])
    per byte range of a manifest (`task_items` reads one).

    Args:
        inputs: the resolved --input values.
        parts: how many workers share each input.
        range_bytes: the largest byte range of a manifest one worker reads.
    """

    def __init__(self, inputs: list[InputSpec], parts: int = 1, range_bytes: int = RANGE_BYTES):
        super().__init__()
        self.listings = [(spec, part, parts) for spec in inputs if spec.kind in ("glob", "dir")
                         for part in range(parts)]
        self.ranges = [(spec, r) for spec in inputs if spec.kind not in ("glob", "dir")
                       for r in byte_ranges(spec, parts, range_bytes)]

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
        return tasks | "AllParts" >> beam.Flatten()


class ReadInputs(beam.PTransform):
    """PBegin -> (entries, rejects, input counts) of --input values.

    Args:
        inputs: the resolved --input values.
        parts: how many workers share each input.
        labelled: False for predict: a glob's or folder's files carry no label.
        range_bytes: the largest byte range of a manifest one worker reads.
        rejects_inline: malformed lines stay among the entries (the rejects output is then empty), so a job
            that treats both alike needs no Flatten, which the FnApiRunner materialises in its launcher.
    """

    def __init__(self, inputs: list[InputSpec], parts: int = 1, labelled: bool = True,
                 range_bytes: int = RANGE_BYTES, rejects_inline: bool = False):
        super().__init__()
        self.labelled, self.rejects_inline = labelled, rejects_inline
        self.tasks = ReadTasks(inputs, parts, range_bytes)

    def expand(self, pbegin):
        out = (self.tasks.expand(pbegin)  # its steps under this transform's name, as before it was split
               | "ParseLines" >> beam.ParDo(ParseInput(self.labelled, self.rejects_inline)).with_outputs(
                   ParseInput.REJECTS, ParseInput.SUMMARY, main="entries"))
        return (out.entries | "OnlyEntries" >> (only(Entry, Reject) if self.rejects_inline else only(Entry)),
                out[ParseInput.REJECTS] | "OnlyRejects" >> only(Reject),
                out[ParseInput.SUMMARY] | "OnlyCounts" >> only(dict))


class ReadDatasetShard(beam.DoFn):
    """A shard path -> its (already preprocessed) records as `ocr_core.records.WordRecord`s; a damaged shard
    fails the job with one line naming it (`JobFailed`), never a page of worker tracebacks."""

    def __init__(self, load_tf: bool):
        self._load_tf = load_tf

    def setup(self):
        if self._load_tf:  # load TF's Example proto before `tfrecord`'s could be (records.py)
            import tensorflow  # noqa: F401

    def process(self, shard: str):
        from ocr_core.records import RecordError, WordRecord, iter_tfrecords

        try:
            with FileSystems.open(shard) as fh:
                for data in iter_tfrecords(fh, shard):
                    yield WordRecord.decode(data)
        except RecordError as e:
            raise JobFailed(f"{e}; the dataset is damaged: rebuild it") from None


class ReadDatasetShards(beam.PTransform):
    """PBegin -> the records of a dataset's shards (paths), spread over the workers."""

    def __init__(self, shards: list[str], load_tf: bool = True):
        super().__init__()
        self.shards, self.load_tf = list(shards), load_tf

    def expand(self, pbegin):
        return (pbegin | "ListShards" >> beam.Create(self.shards, reshuffle=True)
                | "ReadShards" >> beam.ParDo(ReadDatasetShard(self.load_tf)))


def write_path_list(uri: str, paths: list[str]) -> None:
    """A list of paths, one JSON string a line (ASCII: every other character escaped), so a path may hold any
    character, a line break too."""
    with FileSystems.create(uri) as fh:
        fh.write("".join(json.dumps(p) + "\n" for p in paths).encode("ascii"))


def _read_part(part: int, uri: str, parts: int):
    with FileSystems.open(uri) as fh:
        for n, line in enumerate(fh.read().decode("ascii").split("\n")[:-1]):
            if n % parts == part:
                yield json.loads(line)


class ReadPathList(beam.PTransform):
    """A path list (`write_path_list`) -> its paths, spread over the workers (`parts` shares on Dask)."""

    def __init__(self, uri: str, parts: int = 1):
        super().__init__()
        self.uri, self.parts = uri, parts

    def expand(self, pbegin):
        return (pbegin | "Parts" >> beam.Create(list(range(self.parts)))
                | "ReadPaths" >> beam.FlatMap(_read_part, self.uri, self.parts)
                | "Spread" >> beam.Reshuffle())
