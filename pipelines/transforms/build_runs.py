"""The build's bulk path (every runner but Dask): entries never travel one by one as Beam elements.

    read task (manifest range / listing part) -> ReadValidateSpill -> (image bucket, run) -> GroupByBucket
    -> DedupAssignSpill -> ((split, shard, chunk), run) -> GroupByChunk -> WriteChunk -> chunk file
    -> GroupByShard -> ConcatShard -> shard file;   WriteChunk's (index file, run) -> WriteIndex

Each step handles a whole task, bucket or shard in one `process` call and hands the next one run files
(pickled, sorted lists of entries in the build's staging folder) rather than one element per entry: per
entry, Beam's own cost (an element through every fused DoFn, a filter per tagged output) was ~0.13 ms of
CPU beside ~0.35 ms of real work per image (issue 23). Only paths, summaries and dead letters (rare) are
Beam elements. A shard is written in CHUNKS pieces by id (`chunk_of`), each read, preprocessed and encoded by
whichever worker is free, then concatenated in order into the shard: the same bytes as one writer, without
the tail of one worker finishing the last shard alone (the staging folder holds the records twice until
the build publishes). The decisions are those of the per-element path, made by the same code:
`ValidateLabel.check`, `KeepOnePerImage`, `shards.assign`, `WriteRecordShard.write_records`; so the files are
byte-identical to the Dask path's (which groups the entries themselves: Beam 2.77's DaskRunner cannot
spill, see `dedup`). A retried task, bucket or chunk writes new runs under new names; only the committed
attempt's paths are read.
"""
from __future__ import annotations

import uuid
from collections import Counter, defaultdict

import apache_beam as beam
from apache_beam.metrics import Metrics

from ocr_core import fs
from ocr_core.inputs import Entry, InputSpec, Reject
from ocr_core.split import SplitPlan, shard_name
from pipelines.sinks import (
    RUNS_DIR,
    ConcatEncoder,
    ShardSink,
    TFRecordEncoder,
    read_runs,
    spill_run,
    write_run,
)
from pipelines.transforms.dask_safe import WithEveryShard, only, shard_of
from pipelines.transforms.dedup import (
    KeepOnePerImageFromRuns,
    ReadKnown,
    SpillByImage,
)
from pipelines.transforms.labels import ValidateLabel
from pipelines.transforms.read_inputs import METRICS_NAMESPACE, ReadTasks, input_summary, task_items
from pipelines.transforms.shards import assign
from pipelines.transforms.write import IndexFileOf, WriteRecordShard, index_order

RUN_ENTRIES = 20000  # entries a task holds before it spills them
CHUNKS = 4  # pieces of every shard, preprocessed in parallel (one worker per shard left a long tail)
BUCKET_ENTRIES = 50_000  # at most about this many entries in one dedup bucket (~25 MB held by its worker)
MIN_LINE_BYTES = 16  # the shortest likely manifest line ("a/1.png\tword\n"): estimates at most the entries


def image_buckets(parts: int, manifest_bytes: int) -> int:
    """Groups the dedup runs in: enough for the workers and for the input (its manifests' bytes, an upper
    estimate of their lines), so one bucket never holds more than about BUCKET_ENTRIES entries; few enough
    to keep the run files few."""
    return max(16, 8 * parts, -(-manifest_bytes // (MIN_LINE_BYTES * BUCKET_ENTRIES)))


class ReadValidateSpill(beam.DoFn):
    """A read task -> its valid entries as runs by image bucket ((bucket, run path) pairs for
    `DedupAssignSpill`); malformed lines and bad labels as dead letters; the task's input count."""

    REJECTS = "rejects"
    SUMMARY = "summary"

    def __init__(self, directory: str, validate: ValidateLabel, buckets: int, run_entries: int = RUN_ENTRIES):
        self.directory, self.validate = directory, validate
        self.buckets, self.run_entries = buckets, run_entries
        self.inputs = Metrics.counter(METRICS_NAMESPACE, "inputs")

    def setup(self):
        self.validate.setup()

    def process(self, task):
        spec, part, items = task_items(task)
        by_bucket, held, n = defaultdict(list), 0, 0
        for item in items:
            n += 1
            if isinstance(item, Entry):
                item = self.validate.check(item)
            if isinstance(item, Reject):
                yield beam.pvalue.TaggedOutput(self.REJECTS, item)
                continue
            by_bucket[shard_of("image", item.source, self.buckets)].append(item)
            held += 1
            if held >= self.run_entries:
                yield from self._spill(by_bucket)
                by_bucket, held = defaultdict(list), 0
        yield from self._spill(by_bucket)
        self.inputs.inc(n)
        yield beam.pvalue.TaggedOutput(self.SUMMARY, input_summary(spec, part, n))

    def _spill(self, by_bucket):
        for bucket, items in sorted(by_bucket.items()):
            yield bucket, write_run(self.directory, f"image-{bucket:03d}", items)


class DedupAssignSpill(KeepOnePerImageFromRuns):
    """(image bucket, its run paths) -> one entry per image (`KeepOnePerImage`), each put in its split and
    shard (`shards.assign`) and its shard's chunk (`chunk_of`), and written as one run per chunk:
    ((split, shard, chunk), run path) pairs; `duplicate` and `conflicting_label` dead letters."""

    def __init__(self, directory: str, plan: SplitPlan, chunks: int):
        self.directory, self.plan, self.chunks = directory, plan, chunks

    def process(self, keyed):
        by_shard = defaultdict(list)
        for out in super().process(keyed):
            if isinstance(out, beam.pvalue.TaggedOutput):
                yield out
            else:
                shard, entry = assign(out, self.plan)
                by_shard[shard].append(entry)
        for (split, shard), entries in sorted(by_shard.items()):
            by_chunk = defaultdict(list)
            for e in entries:
                by_chunk[chunk_of(e.id, self.chunks)].append(e)
            for chunk, items in sorted(by_chunk.items()):
                yield (split, shard, chunk), write_run(self.directory, "entries", items)


def chunk_of(record_id: str, chunks: int) -> int:
    """Which of a shard's `chunks` pieces a record goes to, by the first hex digit of its id: chunk order is
    id order, so the chunks written one after the other are the shard sorted by id."""
    return int(record_id[0], 16) * chunks // 16


class WriteChunk(WriteRecordShard):
    """((split, shard, chunk), its run paths) -> the chunk's records (read, preprocessed, encoded, in id
    order) as a TFRecord file in the runs folder: ((split, shard), (chunk, path, count, label lengths));
    image dead letters; the written records' index lines as one run, (index file name, run path) pairs for
    `WriteIndex(prespilled=True)`."""

    INDEX_RUNS = "index_runs"

    def __init__(self, out_dir, spec, plan: SplitPlan, index_files: int):
        super().__init__(out_dir, spec, plan.num_shards)
        self.out_dir, self.index_file = out_dir, IndexFileOf(index_files)
        self.chunks = ShardSink(fs.join(out_dir, RUNS_DIR), TFRecordEncoder())

    def process(self, keyed):
        (split, shard, chunk), paths = keyed
        name = f"chunk-{split}-{shard:05d}-{chunk:02d}-{uuid.uuid4().hex}.tfrecord"
        written, rejects, index, lengths = self.write_records(self.chunks, name, read_runs(paths))
        for r in rejects:
            yield beam.pvalue.TaggedOutput(self.REJECTS, r)
        for pair in spill_run(self.out_dir, [(self.index_file(i), i) for i in index], index_order):
            yield beam.pvalue.TaggedOutput(self.INDEX_RUNS, pair)
        path = fs.join(self.out_dir, RUNS_DIR, name)
        yield (split, shard), (chunk, path, written["count"], dict(lengths))


class ConcatShard(WriteRecordShard):
    """((split, shard), its written chunks (and a None marker)) -> the shard file: the chunk files one after
    the other in chunk order, i.e. its records in id order, byte-identical to writing them in one piece;
    yields the file's summary, as `WriteRecordShard` does."""

    def __init__(self, out_dir, spec, plan: SplitPlan):
        super().__init__(out_dir, spec, plan.num_shards)
        self.sink = ShardSink(out_dir, ConcatEncoder())

    def process(self, keyed):
        (split, shard), chunks = keyed
        chunks = sorted((c for c in chunks if c is not None), key=lambda c: c[0])
        written = self.sink.write(shard_name(split, shard, self.num_shards[split]),
                                  [(path, n) for _, path, n, _ in chunks])
        yield self.shard_summary(split, shard, written, sum((Counter(c[3]) for c in chunks), Counter()))


class BuildFromRuns(beam.PTransform):
    """PBegin -> (input counts, shard summaries, all rejects, index runs) of the build (module docstring).

    Args:
        inputs, parts: what `ReadTasks` reads.
        validate: the label check (`ValidateLabel`).
        known: earlier versions' record files (appends), read into the dedup as `DedupByImage` does.
        out_dir: the build's staging folder (runs go to its `_runs`, never published).
        spec, plan, index_files: the preprocessing, the split plan and the number of index files.
    """

    def __init__(self, inputs: list[InputSpec], parts: int, validate: ValidateLabel, known, out_dir: str,
                 spec, plan: SplitPlan, index_files: int):
        super().__init__()
        self.tasks = ReadTasks(inputs, parts)
        self.buckets = image_buckets(parts, sum(r.end - r.start for _, r in self.tasks.ranges))
        self.read = ReadValidateSpill(out_dir, validate, self.buckets, RUN_ENTRIES)
        self.known, self.out_dir = list(known), out_dir
        self.dedup = DedupAssignSpill(out_dir, plan, CHUNKS)
        self.write = WriteChunk(out_dir, spec, plan, index_files)
        self.concat = ConcatShard(out_dir, spec, plan)
        self.every_shard = plan.every_shard()

    def expand(self, pbegin):
        read = (pbegin
                | "ReadTasks" >> self.tasks
                | "ReadValidateSpill" >> beam.ParDo(self.read).with_outputs(
                    ReadValidateSpill.REJECTS, ReadValidateSpill.SUMMARY, main="runs"))
        runs = [read.runs]
        if self.known:  # appends: the records of earlier versions join the dedup, as in `DedupByImage`
            runs.append(pbegin
                        | "ListEarlierVersions" >> beam.Create(self.known)
                        | "ReadEarlierRecords" >> beam.ParDo(ReadKnown())
                        | "SpillByImage" >> beam.ParDo(SpillByImage(self.out_dir, self.buckets)))
        deduped = (runs
                   | "AllImageRuns" >> beam.Flatten()
                   | "GroupByBucket" >> beam.GroupByKey()
                   | "DedupAssignSpill" >> beam.ParDo(self.dedup).with_outputs(
                       DedupAssignSpill.REJECTS, main="runs"))
        chunks = (deduped.runs
                  | "GroupByChunk" >> beam.GroupByKey()
                  | "WriteChunks" >> beam.ParDo(self.write).with_outputs(
                      WriteChunk.REJECTS, WriteChunk.INDEX_RUNS, main="chunks"))
        shards = (chunks.chunks
                  | "GroupByShard" >> WithEveryShard(self.every_shard)
                  | "ConcatShards" >> beam.ParDo(self.concat))
        rejects = ((read[ReadValidateSpill.REJECTS], deduped[DedupAssignSpill.REJECTS],
                    chunks[WriteChunk.REJECTS])
                   | "AllRejects" >> beam.Flatten()
                   | "OnlyRejects" >> only(Reject))
        return read[ReadValidateSpill.SUMMARY], shards, rejects, chunks[WriteChunk.INDEX_RUNS]
