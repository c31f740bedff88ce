"""The predictions table that `ocr predict` writes and `ocr evaluate` reads: its Parquet schema, the column
meanings, the file names of a committed table, and reading one back. One home for the contract, so the writer
and the readers cannot drift.

A table is a directory of `part-*.parquet` files (rows sorted by id within each) and a `_SUCCESS.json` commit
marker written last; a watch run's output is a directory of such tables, one per `window=<start>` folder.
"""
from __future__ import annotations

import json
import os
import posixpath
from collections.abc import Iterable, Sequence
from typing import NamedTuple

import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from ocr_core.errors import REASONS, UsageError

SUCCESS = "_SUCCESS.json"
PART_PREFIX = "part"
WINDOW_PREFIX = "window="

SCHEMA = pa.schema([
    pa.field("id", pa.string(), nullable=False),
    pa.field("source", pa.string(), nullable=False),
    pa.field("text", pa.string()),
    pa.field("confidence", pa.float32()),
    pa.field("candidates", pa.list_(pa.struct([pa.field("text", pa.string()),
                                               pa.field("score", pa.float32())]))),
    pa.field("model", pa.string()),
    pa.field("decoder", pa.string()),
    pa.field("engine", pa.string()),
    pa.field("error", pa.string()),
    pa.field("label", pa.string()),
])
SCHEMA_DOC = {
    "id": "stable id: sha1(source + '\\n' + label)[:20] (the dataset record id for dataset inputs)",
    "source": "input uri (for dataset inputs: the original image uri stored in the record)",
    "text": "recognised text; null when error is set",
    "confidence": "greedy: probability of the best CTC path; beam: probability of the text summed over "
                  "the alignments the search kept; lexicon: the word's CTC probability normalised over the "
                  "lexicon words scored for this image (its posterior, given the word is in the lexicon); "
                  "in [0, 1]",
    "candidates": "beam search: top-k (text, probability), best first; greedy: the one result; lexicon: the "
                  "chosen word (score: its CTC probability, summed over all alignments) followed by the "
                  "unconstrained decoder's candidates",
    "model": "model bundle name (config@directory) of the model that produced the row",
    "decoder": "greedy | beam(width), with '+lexicon' under --lexicon",
    "engine": "tf (model.keras in TensorFlow) | onnx (model.onnx in ONNX Runtime)",
    "error": "null when OK, else '<reason>: <detail>', reason one of " + ", ".join(REASONS),
    "label": "ground truth when the input carries labels (manifest or dataset), else null",
}
FIX = "pass the --output directory of `ocr predict` or one of its part-*.parquet files"


class TableError(UsageError):
    """A path that is not a predictions table (missing, not Parquet, wrong columns); the message starts with
    the path and says how to get a table."""


class Table(NamedTuple):
    """The rows of a predictions table and where they came from."""

    rows: list[dict]
    files: list[str]
    committed: bool  # every table read had its _SUCCESS.json (a single .parquet file counts as committed)


def part_name(shard: int, num_shards: int) -> str:
    """The file name of one part of a table: part-00003-of-00012.parquet."""
    return f"{PART_PREFIX}-{shard:05d}-of-{num_shards:05d}.parquet"


def _matches(pattern: str) -> list[str]:
    return sorted(m.path for m in FileSystems.match([pattern])[0].metadata_list)


def _is_dir(path: str) -> bool:
    return not path.endswith(".parquet") if "://" in path else os.path.isdir(path)


def table_files(path: str) -> tuple[list[str], bool]:
    """The Parquet files of a table and whether it is committed.

    `path` is one .parquet file, a table directory (its part files) or a watch output (the part files of
    every committed window; windows without a _SUCCESS.json are still being written and are left out).

    Raises:
        TableError: no such file or directory, or no part files in it.
    """
    if path.endswith(".parquet") or not _is_dir(path):
        if not FileSystems.exists(path):
            raise TableError(f"{path}: no such file{'' if path.endswith('.parquet') else ' or directory'}; "
                             f"{FIX}")
        return [path], True
    files = _matches(posixpath.join(path, f"{PART_PREFIX}-*.parquet"))
    if files:
        return files, FileSystems.exists(posixpath.join(path, SUCCESS))
    windows = committed_windows(path)
    files = [f for w in windows for f in _matches(posixpath.join(w, f"{PART_PREFIX}-*.parquet"))]
    if not files:
        raise TableError(f"{path}: no {PART_PREFIX}-*.parquet files in this directory"
                         + (" nor in committed windows" if windows else "") + f"; {FIX}")
    return files, True


def committed_windows(out: str) -> list[str]:
    """The window directories of a watch output that have their commit marker, oldest first."""
    markers = _matches(posixpath.join(out, f"{WINDOW_PREFIX}*", SUCCESS))
    return [posixpath.dirname(m) for m in markers]


def read_file(path: str, columns: Sequence[str] | None = None) -> pa.Table:
    """One Parquet file, read through Beam's filesystems (gs:// too); TableError if it is not Parquet."""
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as fh:
        data = pa.BufferReader(fh.read())
    try:
        return pq.read_table(data, columns=columns)
    except (pa.ArrowInvalid, OSError) as e:
        raise TableError(f"{path}: not a Parquet file ({e}); write the table with `ocr predict`") from None


def read_table(path: str, required: Sequence[str] = tuple(SCHEMA.names),
               optional: Sequence[str] = ()) -> Table:
    """The rows of a predictions table (see `table_files`): the `required` columns plus those of `optional`
    the files have, cast to SCHEMA's types.

    Raises:
        TableError: not a table, not Parquet, a required column missing or of another type.
    """
    files, committed = table_files(path)
    rows = []
    for f in files:
        table = read_file(f)
        missing = [c for c in required if c not in table.column_names]
        if missing:
            raise TableError(
                f"{f}: not an `ocr predict` table: missing column(s) {', '.join(missing)} "
                f"(has {', '.join(table.column_names) or 'none'}); write it with `ocr predict` "
                "(schema: ocr_core.predictions.SCHEMA)")
        columns = list(required) + [c for c in optional if c in table.column_names]
        target = pa.schema([SCHEMA.field(c) for c in columns])
        try:
            rows += table.select(columns).cast(target).to_pylist()
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
            types = ", ".join(f"{c}: {table.schema.field(c).type}" for c in columns)
            raise TableError(f"{f}: column types ({types}) do not match ocr_core.predictions.SCHEMA ({e}); "
                             "write the table with `ocr predict`") from None
    return Table(rows, files, committed)


def count_errors(errors: Iterable[str | None]) -> dict:
    """Row summary of a table's `error` column: rows, errors and errors by reason."""
    rows, by_reason = 0, {}
    for e in errors:
        rows += 1
        if e is not None:
            reason = e.split(":", 1)[0]
            by_reason[reason] = by_reason.get(reason, 0) + 1
    return {"rows": rows, "errors": sum(by_reason.values()), "errors_by_reason": by_reason}


def summarize_files(paths: Sequence[str]) -> dict:
    """Counts of rows and errors by reason, read back from written part files (runner-independent)."""
    return count_errors(e for p in paths for e in read_file(p, ["error"]).column("error").to_pylist())


def publish_table(out: str, staging: str, expected: str | None, job_id: str, **fields) -> dict:
    """Moves the staged part files into `out`, replacing an older table there, and writes `out`'s commit
    marker (row and error counts read from the staged files, plus `fields`) last, by the one publish rule
    (`ocr_core.publish`: under the output's lock, only if the marker is still the generation `expected` that
    the job started from; staging folders of dead jobs swept). Returns the marker's content."""
    from ocr_core import fs, publish

    staged = fs.glob(fs.join(staging, f"{PART_PREFIX}-*.parquet"))
    summary = summarize_files(staged)
    names = [posixpath.basename(p) for p in staged]
    summary.update(fields, files=names, schema=SCHEMA_DOC)
    old = [posixpath.basename(p) for p in fs.glob(fs.join(out, f"{PART_PREFIX}-*.parquet"))]
    publish.publish(out, staging, {n: n for n in names}, SUCCESS, json.dumps(summary, indent=2),
                    job_id=job_id, expected=expected, replace=old if expected else [],
                    stale=(old if not expected else []) + publish.dead_stagings(out), kind="predict job")
    return summary
