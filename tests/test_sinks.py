"""`pipelines.sinks`: the sharded file sink — sorted, deterministic bytes whatever the input order, files
visible only when complete, empty files on request, and encoders that plug in (TFRecord, JSON lines, and a
Parquet encoder written here the way predict will add one)."""
from __future__ import annotations

import io
import json
import random

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from ocr_core.records import iter_tfrecords
from pipelines.sinks import TMP_DIR, JsonLinesEncoder, ShardSink, TFRecordEncoder, WriteFiles

WORDS = [f"w{i:03d}" for i in range(40)]


def file_of(word: str) -> str:
    return f"part-{int(word[1:]) % 3}.jsonl"


def run_sink(directory, words, names=(), spill_dir=None):
    """Writes `words` through the sink on a TestPipeline; checks the summaries; returns the files' bytes."""
    by_file = {}
    for w in sorted(words):
        by_file.setdefault(file_of(w), []).append(w)
    expected = [(name, len(by_file.get(name, [])), by_file.get(name, [None])[0])
                for name in sorted(set(by_file) | set(names))]
    with TestPipeline() as p:
        out = (p | beam.Create(words, reshuffle=True)
               | WriteFiles(ShardSink(str(directory), JsonLinesEncoder()), file_of, lambda w: w,
                            describe=lambda ws: {"first": ws[0] if ws else None}, names=names,
                            spill_dir=spill_dir, run_elements=4))
        assert_that(out | beam.Map(lambda s: (s["path"], s["count"], s["first"])), equal_to(expected))
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file()}


def test_files_are_sorted_and_identical_whatever_the_input_order(tmp_path):
    first = run_sink(tmp_path / "a", WORDS)
    shuffled = WORDS[:]
    random.Random(7).shuffle(shuffled)
    assert run_sink(tmp_path / "b", shuffled) == first
    ones = [json.dumps(w) for w in WORDS if int(w[1:]) % 3 == 1]
    assert first["part-1.jsonl"].decode().splitlines() == ones
    assert not list((tmp_path / "a" / TMP_DIR).iterdir())  # staged files were all renamed into place


def test_spilled_runs_give_the_same_files_as_grouping(tmp_path):
    """With spill_dir only (file, run) pairs are shuffled (runs of 4 elements here): the same bytes."""
    shuffled = WORDS[:]
    random.Random(3).shuffle(shuffled)
    names = ["part-0.jsonl", "part-9.jsonl"]
    spilled = run_sink(tmp_path / "a", shuffled, names, spill_dir=str(tmp_path / "runs"))
    assert spilled == run_sink(tmp_path / "b", WORDS, names) and spilled["part-9.jsonl"] == b""
    assert len(list((tmp_path / "runs" / "_runs").iterdir())) >= len(WORDS) // 4


def test_listed_files_are_written_even_when_empty(tmp_path):
    files = run_sink(tmp_path, ["w000", "w003"], names=["part-0.jsonl", "part-2.jsonl"])
    assert files == {"part-0.jsonl": b'"w000"\n"w003"\n', "part-2.jsonl": b""}


def test_a_file_is_visible_only_when_complete_and_a_rewrite_gives_the_same_bytes(tmp_path):
    sink = ShardSink(str(tmp_path), TFRecordEncoder())
    seen = []

    def records():
        for i in range(3):
            seen.append((tmp_path / "x.tfrecord").exists())
            yield f"record {i}".encode()

    summary = sink.write("x.tfrecord", records())
    assert seen == [False, False, False]
    data = (tmp_path / "x.tfrecord").read_bytes()
    assert summary == {"path": "x.tfrecord", "count": 3, "bytes": len(data)}
    assert list(iter_tfrecords(io.BytesIO(data))) == [b"record 0", b"record 1", b"record 2"]
    sink.write("x.tfrecord", (f"record {i}".encode() for i in range(3)))  # a retried bundle
    assert (tmp_path / "x.tfrecord").read_bytes() == data


def test_a_failed_write_leaves_no_file_under_its_name(tmp_path):
    def broken():
        yield b"one"
        raise OSError("disk full")

    with pytest.raises(OSError):
        ShardSink(str(tmp_path), TFRecordEncoder()).write("y.tfrecord", broken())
    assert not (tmp_path / "y.tfrecord").exists()


ROWS = pa.schema([pa.field("id", pa.string(), nullable=False), pa.field("n", pa.int64())])


class ParquetEncoder:
    """What predict's Parquet writer becomes on this sink: an explicit schema, one table per file."""

    def write(self, fh, rows) -> int:
        rows = list(rows)
        buf = pa.BufferOutputStream()
        pq.write_table(pa.Table.from_pylist(rows, schema=ROWS), buf, compression="zstd")
        fh.write(buf.getvalue().to_pybytes())
        return len(rows)


def test_a_parquet_encoder_plugs_in(tmp_path):
    rows = [{"id": f"{i:04d}", "n": i} for i in range(30)]
    for name, order in (("a", rows), ("b", rows[::-1])):
        with TestPipeline() as p:
            (p | beam.Create(order, reshuffle=True)
             | WriteFiles(ShardSink(str(tmp_path / name), ParquetEncoder()),
                          lambda r: f"part-{r['n'] % 2}.parquet", lambda r: r["id"]))
    for part in ("part-0.parquet", "part-1.parquet"):
        assert (tmp_path / "a" / part).read_bytes() == (tmp_path / "b" / part).read_bytes()
        table = pq.read_table(tmp_path / "a" / part)
        ids = table.column("id").to_pylist()
        assert table.schema == ROWS and ids == sorted(ids)


def table_rows(n: int) -> list[dict]:
    """Predict-table rows (ocr_core.predictions.SCHEMA), good and error rows, two with the same id."""
    rows = []
    for i in range(n):
        good = i % 7 != 3
        rows.append({"id": f"{(i * 7919) % 1000:04d}", "source": f"/in/{i:05d}.png",
                     "text": f"w{i}" if good else None, "confidence": 0.5 + i % 5 / 10 if good else None,
                     "candidates": [{"text": f"w{i}", "score": 0.5}] if good else None, "model": "m",
                     "decoder": "greedy", "engine": "onnx", "error": None if good else "corrupt_image: x",
                     "label": None})
    return rows


@pytest.mark.parametrize("shards", [1, 3])
def test_table_parts_cut_from_spilled_runs_equal_grouped_parts_byte_for_byte(tmp_path, shards):
    """Predict's table on the DirectRunner: rows spilled as sorted runs (several per bundle here), only the
    run paths shuffled, each part cut from the runs; the same bytes as grouping the rows (Dask's path)."""
    from pipelines.transforms.write import RUNS_DIR, WriteTable

    rows = table_rows(200)
    rows[5]["id"] = rows[6]["id"]  # ties on id are ordered by source
    files = {}
    for name, spill in (("grouped", False), ("spilled", True)):
        staging = tmp_path / name
        with TestPipeline() as p:
            written = (p | beam.Create(random.Random(name).sample(rows, len(rows)), reshuffle=True)
                       | WriteTable(str(staging), shards, spill=spill, run_rows=16))
            assert_that(written, equal_to([len(rows)]))
        files[name] = {f.name: f.read_bytes() for f in sorted(staging.glob("part-*.parquet"))}
        if spill:
            assert len(list((staging / RUNS_DIR).iterdir())) >= len(rows) // 16
    assert len(files["spilled"]) == shards and files["spilled"] == files["grouped"]
    table = pa.concat_tables([pq.read_table(io.BytesIO(b)) for b in files["spilled"].values()])
    assert sorted(table.column("source").to_pylist()) == sorted(r["source"] for r in rows)


@pytest.mark.parametrize("where", ["local", "mem"])
def test_the_concat_encoder_joins_files_in_order(where, tmp_path):
    """Local files are joined in the kernel (copy_file_range), others in blocks: the same bytes and counts."""
    from ocr_core import fs
    from pipelines.sinks import ConcatEncoder

    base = str(tmp_path) if where == "local" else f"mem://concat-{tmp_path.name}"
    if where == "mem":
        from tests import memfs  # noqa: F401  (registers mem://)
    parts = [(b"abc" * 1000, 2), (b"", 0), (bytes(range(256)) * 50, 3)]
    paths = []
    for i, (data, _) in enumerate(parts):
        paths.append(fs.join(base, "chunks", f"c{i}"))
        with fs.create_binary(paths[-1]) as fh:
            fh.write(data)
    summary = ShardSink(fs.join(base, "out"), ConcatEncoder()).write(
        "joined", [(p, n) for p, (_, n) in zip(paths, parts)])
    want = b"".join(d for d, _ in parts)
    assert summary == {"path": "joined", "count": 5, "bytes": len(want)}
    with fs.open_binary(fs.join(base, "out", "joined")) as fh:
        assert fh.read() == want
