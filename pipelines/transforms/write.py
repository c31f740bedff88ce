"""Writing: the build's record shards, rejects, index and summary files, and predict's Parquet part files,
each file written whole by the one DoFn call that owns it (`pipelines.sinks`) in a sorted, deterministic
order, into the job's staging folder (`ocr_core.publish`)."""
from __future__ import annotations

import json
import uuid
from collections import Counter

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.transforms.window import GlobalWindows

from ocr_core import fs
from ocr_core.build_manifest import SUMMARY_DIR, SUMMARY_FILE
from ocr_core.errors import InputError
from ocr_core.image_bytes import read_image_bytes
from ocr_core.inputs import Reject, reject_entry
from ocr_core.predictions import SCHEMA, part_name
from ocr_core.preprocess import PreprocessSpec, preprocess_word_image
from ocr_core.records import WordRecord
from ocr_core.split import SPLITS, SplitPlan, index_file_name, reject_file_name, shard_name, stable_hash
from pipelines.sinks import JsonLinesEncoder, ParquetEncoder, ShardSink, TFRecordEncoder, WriteFiles
from pipelines.transforms.dask_safe import WithEveryShard, only, shard_of
from pipelines.transforms.dedup import IndexEntry

METRICS_NAMESPACE = "ocr.build_dataset"


# --- the build ---------------------------------------------------------------------------------------


class WriteRecordShard(beam.DoFn):
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
        summary, rejects, written_ids = self.write_shard(split, shard, entries)
        for r in rejects:
            yield beam.pvalue.TaggedOutput(self.REJECTS, r)
        for i in written_ids:
            yield beam.pvalue.TaggedOutput(self.INDEX, i)
        yield summary

    def write_shard(self, split: str, shard: int, entries) -> tuple[dict, list[Reject], list[IndexEntry]]:
        """Writes the shard of `entries` (None markers skipped); (its summary, image rejects, written)."""
        written, rejects, written_ids, lengths = self.write_records(
            self.sink, shard_name(split, shard, self.num_shards[split]), entries)
        return self.shard_summary(split, shard, written, lengths), rejects, written_ids

    def shard_summary(self, split: str, shard: int, written: dict, lengths: Counter) -> dict:
        """The build summary's line for a shard file the sink wrote (`written`); counts it (Beam counter)."""
        self.written[split].inc(written["count"])
        return {"kind": "shard", "split": split, "shard": shard, "num_shards": self.num_shards[split],
                **written, "label_lengths": {str(k): v for k, v in sorted(lengths.items())}}

    def write_records(self, sink: ShardSink, name: str, entries):
        """`entries` (None markers skipped) as the records of file `name` of `sink`, in id order; (the sink's
        summary, image rejects, the written records' index entries, a Counter of label lengths)."""
        entries = sorted((e for e in entries if e is not None), key=lambda e: e.id)
        rejects, written_ids, lengths = [], [], Counter()

        def records():
            for e in entries:
                try:
                    image, content_width = preprocess_word_image(
                        read_image_bytes(e.source, self.spec.max_bytes), self.spec)
                except InputError as err:
                    rejects.append(reject_entry(e, err))
                    continue
                lengths[len(e.label)] += 1
                written_ids.append(IndexEntry(e.id, e.source))
                yield WordRecord(e.id, e.source, image, content_width, e.label, list(e.label_ids)).encode()

        return sink.write(name, records()), rejects, written_ids, lengths


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


class WriteShards(beam.PTransform):
    """grouped light entries -> (shard summaries, image rejects); each shard file written by one DoFn."""

    def __init__(self, out_dir: str, spec: PreprocessSpec, plan: SplitPlan):
        super().__init__()
        self.fn = WriteRecordShard(out_dir, spec, plan.num_shards)

    def expand(self, grouped):
        out = grouped | "ReadPreprocessWrite" >> beam.ParDo(self.fn).with_outputs(
            WriteRecordShard.REJECTS, WriteRecordShard.INDEX, main="shards")
        return (out.shards | "OnlySummaries" >> only(dict),
                out[WriteRecordShard.REJECTS] | "OnlyRejects" >> only(Reject),
                out[WriteRecordShard.INDEX] | "OnlyIndex" >> only(IndexEntry))


class RejectFileOf:
    """A reject -> its rejects-*.jsonl file, by a hash of its input position."""

    def __init__(self, num_files: int):
        self.num_files = num_files

    def __call__(self, r: Reject) -> str:
        return reject_file_name(shard_of("rejects", repr(r.order), self.num_files), self.num_files)


class IndexFileOf:
    """A written record -> its index-*.jsonl file, by its id."""

    def __init__(self, num_files: int):
        self.num_files = num_files

    def __call__(self, i: IndexEntry) -> str:
        return index_file_name(shard_of("index", i.id, self.num_files), self.num_files)


def index_order(i: IndexEntry) -> tuple:
    return i.id, i.source


def index_summary(_) -> dict:
    return {"kind": "index"}


class WriteIndex(beam.PTransform):
    """written records -> summaries of DIR/index-*.jsonl files (`[id, source]` lines sorted by id), what a
    later --append reads to know which images the dataset holds."""

    def __init__(self, out_dir: str, num_files: int, spill: bool = False, prespilled: bool = False):
        super().__init__()
        self.files = WriteFiles(ShardSink(out_dir, JsonLinesEncoder(IndexEntry.to_json)),
                                IndexFileOf(num_files), index_order, index_summary,
                                spill_dir=out_dir if spill else None, prespilled=prespilled)

    def expand(self, written):
        return written | "WriteJsonLines" >> self.files


class WriteRejects(beam.PTransform):
    """rejects -> summaries of DIR/rejects-*.jsonl files (each sorted in input order)."""

    def __init__(self, out_dir: str, num_files: int, spill: bool = False):
        super().__init__()
        self.files = WriteFiles(ShardSink(out_dir, JsonLinesEncoder(Reject.to_json)), RejectFileOf(num_files),
                                reject_order, reject_summary, spill_dir=out_dir if spill else None)

    def expand(self, rejects):
        return rejects | "WriteJsonLines" >> self.files


class WriteBuildSummary(beam.PTransform):
    """summaries -> DIR/_build_summary/summary.jsonl. The single sink everything else feeds, which is
    what the DaskRunner needs to compute the whole graph."""

    def __init__(self, out_dir: str):
        super().__init__()
        self.files = WriteFiles(ShardSink(fs.join(out_dir, SUMMARY_DIR), JsonLinesEncoder()),
                                lambda s: SUMMARY_FILE, summary_order, names=[SUMMARY_FILE])

    def expand(self, summaries):
        return (summaries
                | "AllSummaries" >> beam.Flatten()
                | "WriteJsonLines" >> self.files)


# --- predict's table ---------------------------------------------------------------------------------


def every_part(num_shards: int) -> list[tuple[int, int]]:
    """The (shard, number of shards) key of every part file of a table of `num_shards` files."""
    return [(k, num_shards) for k in range(num_shards)]


ROWS_PER_FILE = 100_000  # ~10 MB of Parquet; one worker holds a part's rows (~150 MB as dicts) to sort them


def shard_count(rows: int, rows_per_file: int) -> int:
    """Part files for a table of `rows` rows: one per `rows_per_file` rows started, at least 1."""
    return max(1, -(-rows // rows_per_file))


def key_by_shard(row: dict, num_shards: int) -> tuple[tuple[int, int], dict]:
    """((shard, number of shards), row): the shard from the stable hash of the id, so reruns shard the same
    way."""
    return (shard_of("part", row["id"], num_shards), num_shards), row


class WriteTablePart(beam.DoFn):
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


RUN_ROWS = 5000  # rows a worker holds before it spills them (~15 MB as dicts, ~1 MB as a Parquet run)
RUNS_DIR = "_runs"  # in the staging folder; never published (publish_table moves only part-*.parquet)
PART_HASH = "_part_hash"  # the run files' one extra column: stable_hash("part", id)


def sort_rows(table):
    """A table's rows in part-file order: by (id, source)."""
    return table.sort_by([("id", "ascending"), ("source", "ascending")])


class SpillRuns(beam.DoFn):
    """Rows -> the paths of run files: every `run_rows` rows of a bundle (and its rest at the end of the
    bundle) sorted and written as one Parquet file (the table's schema plus PART_HASH) in `staging`/_runs.

    So the rows never cross a shuffle: on the DirectRunner everything that crosses one is held by the
    launcher, which is also the runner (issue 23). Only the run paths do. A retried bundle writes new runs
    under new names; only the committed attempt's paths reach `WritePartsFromRuns`. Needs `finish_bundle`
    output, which Beam 2.77's DaskRunner drops: on Dask `WriteTable` groups the rows instead.
    """

    def __init__(self, staging: str, run_rows: int = RUN_ROWS):
        self.staging, self.run_rows = staging, run_rows

    def setup(self):
        import pyarrow as pa

        self._schema = SCHEMA.append(pa.field(PART_HASH, pa.uint64(), nullable=False))

    def start_bundle(self):
        self._rows = []

    def process(self, row):
        self._rows.append({**row, PART_HASH: stable_hash("part", row["id"])})
        if len(self._rows) >= self.run_rows:
            yield self._spill()

    def finish_bundle(self):
        if self._rows:
            yield GlobalWindows.windowed_value(self._spill())

    def _spill(self) -> str:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = sort_rows(pa.Table.from_pylist(self._rows, schema=self._schema))
        self._rows = []
        path = fs.join(self.staging, RUNS_DIR, f"run-{uuid.uuid4().hex}.parquet")
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink, compression="none")
        with fs.create_binary(path) as fh:  # its path is emitted only once it is complete
            fh.write(sink.getvalue().to_pybytes())
        return path


class WritePartsFromRuns(beam.DoFn):
    """(shard, number of shards), every run path -> the part file of that shard: the runs' rows whose
    PART_HASH % number == shard, sorted by (id, source), written whole (byte-identical to sorting the rows
    in Python: `WriteTablePart`); yields its row count. A worker holds one part's rows, as Arrow columns."""

    def __init__(self, staging: str):
        self._staging = staging

    def setup(self):
        self._sink = ShardSink(self._staging, ParquetEncoder(SCHEMA))

    def process(self, part, runs):
        import pyarrow as pa
        import pyarrow.parquet as pq

        shard, num_shards = part
        pieces = []
        for path in sorted(runs):
            with fs.open_binary(path) as fh:
                table = pq.read_table(pa.BufferReader(fh.read()))
            mask = table.column(PART_HASH).to_numpy() % num_shards == shard
            pieces.append(table.filter(pa.array(mask)).drop_columns([PART_HASH]))
        table = pa.concat_tables(pieces) if pieces else SCHEMA.empty_table()
        yield self._sink.write(part_name(shard, num_shards), sort_rows(table))["count"]


class WriteTable(beam.PTransform):
    """Rows -> Parquet part files in `staging`, sharded by a hash of the id: a fixed number, or the
    singleton PCollection `num_shards` (`CountShards`: counted in the pipeline, never in the launcher).

    `spill` (every runner but Dask): rows are written as sorted runs where they are made (`SpillRuns`) and
    only the runs' paths cross a shuffle; each part file is then cut from the runs (`WritePartsFromRuns`).
    Without it (Dask) the rows are grouped by part file (`WriteTablePart`).

    Our own sink rather than WriteToParquet: Beam's DaskRunner (2.77) computes only the last leaf of the
    graph and drops the side inputs WriteToParquet's finalize step needs (seen: an empty table). A plain
    AsSingleton side input works there, but Dask computes it inside the consuming task, re-serialising its
    upstream graph with DoFns already set up: a count of the *rows* drags the loaded model along (TensorFlow's
    FuncGraph does not pickle), so the count is taken of the inputs, before the model. The final sum makes one
    leaf that depends on every shard.
    """

    def __init__(self, staging: str, num_shards, spill: bool = True, run_rows: int = RUN_ROWS):
        super().__init__()
        self.staging, self.num_shards, self.spill, self.run_rows = staging, num_shards, spill, run_rows

    def expand(self, rows):
        count = self.num_shards
        if isinstance(count, beam.PCollection):
            num_shards = beam.pvalue.AsSingleton(count)
        else:
            num_shards, count = count, rows.pipeline | "ShardCount" >> beam.Create([count])
        if self.spill:
            runs = rows | "SpillRuns" >> beam.ParDo(SpillRuns(self.staging, self.run_rows))
            written = (count
                       | "EveryPart" >> beam.FlatMap(every_part)
                       | "WriteParts" >> beam.ParDo(WritePartsFromRuns(self.staging),
                                                    beam.pvalue.AsList(runs)))
        else:
            written = (rows
                       | "KeyByShard" >> beam.Map(key_by_shard, num_shards)
                       | "WithEveryShard" >> WithEveryShard(every_part, count)
                       | "WriteShards" >> beam.ParDo(WriteTablePart(self.staging)))
        return written | "RowsWritten" >> beam.CombineGlobally(sum)
