"""One sharded file sink for the Beam jobs, with one rule for making files visible.

A shard file is written whole by the one DoFn call that owns its elements: they are sorted, encoded by an
`Encoder` (TFRecord frames, JSON lines, a Parquet table) into `DIR/_tmp/<name>.<uuid>`
and the file is renamed to `DIR/<name>` when complete. So a reader never sees half a file under its final
name, and a retried or speculatively duplicated bundle writes the same bytes again (the sort makes the bytes
independent of the runner and of the order in which elements arrived).

Nothing here needs `finish_bundle`, side inputs or metrics, none of which survive Beam 2.77's DaskRunner:
every file is written inside `process` and its summary (name, count, bytes, extras) is the DoFn's output,
so the job can end in one summary sink that depends on every file (the DaskRunner computes only that).

A job writes its shards into its own staging folder; `ocr_core.publish.publish` then moves them into the
output with the commit marker (a manifest, a `_SUCCESS.json`) last.
"""
from __future__ import annotations

import json
import os
import pickle
import uuid
from collections.abc import Callable, Iterable
from typing import Any, Protocol

import apache_beam as beam
from apache_beam.transforms.window import GlobalWindows

from ocr_core import fs, records
from pipelines.transforms.dask_safe import WithEveryShard

TMP_DIR = "_tmp"
RUNS_DIR = "_runs"  # spilled runs (`WriteFiles` with spill_dir): internal files, never published
RUN_ELEMENTS = 20000  # elements a worker holds before it spills them as one run


class Encoder(Protocol):
    """How a shard's elements become the bytes of one file."""

    def write(self, fh, elements: Iterable) -> int:
        """Writes every element to the binary handle `fh`; returns how many were written."""


class TFRecordEncoder:
    """Serialized records (bytes) -> TFRecord frames (`ocr_core.records.frame`)."""

    def write(self, fh, elements: Iterable[bytes]) -> int:
        n = 0
        for data in elements:
            fh.write(records.frame(data))
            n += 1
        return n


class ConcatEncoder:
    """(file path, its element count) pairs -> the files' bytes one after the other (TFRecord files, whose
    frames concatenate); returns the sum of the counts."""

    def write(self, fh, elements: Iterable[tuple[str, int]]) -> int:
        n = 0
        for path, count in elements:
            fh.copy_file(path)
            n += count
        return n


class JsonLinesEncoder:
    """Elements -> one UTF-8 line each: `to_line(element)` (default: JSON with sorted keys)."""

    def __init__(self, to_line: Callable[[Any], str] | None = None):
        self.to_line = to_line

    def write(self, fh, elements: Iterable) -> int:
        n = 0
        for e in elements:
            line = self.to_line(e) if self.to_line else json.dumps(e, sort_keys=True, ensure_ascii=False)
            fh.write(line.encode("utf-8") + b"\n")
            n += 1
        return n


class ParquetEncoder:
    """Rows (dicts, or a pyarrow Table of `schema` already in file order) -> one Parquet file of `schema`
    (zstd), written in one piece; the same rows give the same bytes either way."""

    def __init__(self, schema):
        self.schema = schema

    def write(self, fh, elements) -> int:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if isinstance(elements, pa.Table):
            table = elements.cast(self.schema).combine_chunks()
        else:
            table = pa.Table.from_pylist(list(elements), schema=self.schema)
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink, compression="zstd")
        fh.write(sink.getvalue().to_pybytes())
        return table.num_rows


class _Counting:
    """A write handle that counts the bytes written through it."""

    def __init__(self, fh):
        self.fh, self.bytes = fh, 0

    def write(self, data: bytes) -> int:
        self.fh.write(data)
        self.bytes += len(data)
        return len(data)

    BLOCK = 8 * 1024 * 1024

    def _fd(self) -> int | None:
        """The OS file descriptor under the handle (a local file), else None."""
        try:
            return self.fh.fileno()
        except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is both
            return None

    def copy_file(self, path: str) -> None:
        """Appends the bytes of the file at `path`: local to local in the kernel (`os.copy_file_range`, no
        copy through Python), else in blocks."""
        out = self._fd() if not fs.is_remote(path) and hasattr(os, "copy_file_range") else None
        if out is not None:
            self.fh.flush()
            with open(path, "rb") as src:
                size, done = os.fstat(src.fileno()).st_size, 0
                while done < size:
                    n = os.copy_file_range(src.fileno(), out, size - done)
                    if n == 0:
                        break
                    done += n
            if done == size:
                self.bytes += size
                return
            raise OSError(f"{path}: copied {done} of {size} bytes")
        with fs.open_binary(path) as src:
            while block := src.read(self.BLOCK):
                self.write(block)


class ShardSink:
    """Shard files in one directory (local or any scheme of `ocr_core.fs`), encoded by one Encoder."""

    def __init__(self, directory: str, encoder: Encoder):
        self.directory, self.encoder = directory, encoder

    def write(self, name: str, elements: Iterable) -> dict:
        """Writes `elements` (already in file order) as `directory/name`, visible only when complete.

        Returns:
            {"path": name, "count": elements written, "bytes": file size}.
        """
        tmp = fs.join(self.directory, TMP_DIR, f"{name}.{uuid.uuid4().hex}")
        with fs.create_binary(tmp) as raw:
            fh = _Counting(raw)
            count = self.encoder.write(fh, elements)
        fs.rename(tmp, fs.join(self.directory, name))
        return {"path": name, "count": count, "bytes": fh.bytes}


class _WriteFile(beam.DoFn):
    def __init__(self, sink: ShardSink, order: Callable, describe: Callable | None):
        self.sink, self.order, self.describe = sink, order, describe

    def process(self, keyed):
        name, elements = keyed
        elements = sorted((e for e in elements if e is not None), key=self.order)
        summary = self.sink.write(name, elements)
        yield {**summary, **(self.describe(elements) if self.describe else {})}


class _SpillRuns(beam.DoFn):
    """elements -> (file name, run path) for each file a run holds. A run: every `run_elements` elements of
    a bundle (and its rest at the end of the bundle), pickled as one list of (file name, element) sorted by
    (file name, order). Only these pairs cross the shuffle; a retried bundle writes new runs under new names
    and only the committed attempt's pairs are read. Needs `finish_bundle` output (Dask drops it)."""

    def __init__(self, directory: str, name_of: Callable, order: Callable, run_elements: int):
        self.directory, self.name_of, self.order, self.run_elements = directory, name_of, order, run_elements

    def start_bundle(self):
        self._items = []

    def process(self, element):
        self._items.append((self.name_of(element), element))
        if len(self._items) >= self.run_elements:
            yield from self._spill()

    def finish_bundle(self):
        for pair in self._spill():
            yield GlobalWindows.windowed_value(pair)

    def _spill(self):
        items, self._items = self._items, []
        yield from spill_run(self.directory, items, self.order)


def spill_run(directory: str, items: list[tuple[str, Any]], order: Callable) -> list[tuple[str, str]]:
    """(file name, element) pairs -> one run file in `directory`/_runs (the pairs pickled, sorted by (file
    name, order)); returns a (file name, run path) pair per file the run holds: what `WriteFiles(...,
    prespilled=True)` takes. Nothing for no items."""
    if not items:
        return []
    items = sorted(items, key=lambda ne: (ne[0], order(ne[1])))
    path = write_run(directory, "run", items)
    return [(name, path) for name in sorted({name for name, _ in items})]


def write_run(directory: str, kind: str, items: list) -> str:
    """Pickles `items` into a new run file `directory`/_runs/<kind>-<uuid>.pickle; returns its path (a run's
    path is handed on only once the file is complete, and a retried step writes new names)."""
    path = fs.join(directory, RUNS_DIR, f"{kind}-{uuid.uuid4().hex}.pickle")
    with fs.create_binary(path) as fh:
        fh.write(pickle.dumps(items, protocol=pickle.HIGHEST_PROTOCOL))
    return path


def read_runs(paths: Iterable[str | None]) -> list:
    """The items of run files (`write_run`; None markers skipped), in the order of their sorted paths."""
    items = []
    for path in sorted(p for p in paths if p is not None):
        with fs.open_binary(path) as fh:
            items.extend(pickle.loads(fh.read()))
    return items


class _WriteFileFromRuns(_WriteFile):
    def process(self, keyed):
        name, paths = keyed
        elements = [e for n, e in read_runs(set(paths)) if n == name]
        yield from super().process((name, elements))


class WriteFiles(beam.PTransform):
    """elements -> one summary dict per file written: {path, count, bytes, **describe(its elements)}.

    Args:
        sink: where and how the files are written.
        name_of: element -> the name of the file it goes to.
        order: element -> sort key within a file (must be total, so the bytes are deterministic).
        describe: a file's sorted elements -> extra summary fields (e.g. counts by reason).
        names: files written even when no element goes to them (empty files).
        spill_dir: spill the elements as sorted runs there (`_SpillRuns`) so that only (file name, run path)
            pairs cross the shuffle: on the DirectRunner whatever crosses one is held by the launcher
            (issue 23). None: group the elements themselves (Dask, which drops `finish_bundle` output).
        run_elements: elements per run.
        prespilled: (with spill_dir) the input is already (file name, run path) pairs (`spill_run`),
            spilled by the step that made the elements.
    """

    def __init__(self, sink: ShardSink, name_of: Callable, order: Callable,
                 describe: Callable | None = None, names: Iterable[str] = (), spill_dir: str | None = None,
                 run_elements: int = RUN_ELEMENTS, prespilled: bool = False):
        super().__init__()
        self.sink, self.name_of, self.order, self.describe = sink, name_of, order, describe
        self.names = sorted(names)
        self.spill_dir, self.run_elements, self.prespilled = spill_dir, run_elements, prespilled

    def expand(self, elements):
        if self.prespilled:
            keyed = elements
            write = _WriteFileFromRuns(self.sink, self.order, self.describe)
        elif self.spill_dir is None:
            keyed = elements | "KeyByFile" >> beam.Map(lambda e, name_of: (name_of(e), e), self.name_of)
            write = _WriteFile(self.sink, self.order, self.describe)
        else:
            keyed = elements | "SpillRuns" >> beam.ParDo(
                _SpillRuns(self.spill_dir, self.name_of, self.order, self.run_elements))
            write = _WriteFileFromRuns(self.sink, self.order, self.describe)
        grouped = keyed | "GroupByFile" >> WithEveryShard(self.names)  # empty files too, each written once
        return grouped | "WriteFile" >> beam.ParDo(write)
