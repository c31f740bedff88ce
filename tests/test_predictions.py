"""`ocr_core.predictions`: the one home of the predictions table — schema, names, reading a table back (a
table directory, one file, a watch output's committed windows, a non-local scheme) and its errors."""
import subprocess
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ocr_core import predictions
from ocr_core.predictions import SCHEMA, SUCCESS, TableError, part_name, read_table
from tests import memfs
from tests.conftest import PYTHON, REPO


def row(i: int, error: str | None = None, model: str = "demo@model") -> dict:
    return {"id": f"{i:020d}", "source": f"/crops/{i}.png", "text": None if error else f"w{i}",
            "confidence": None if error else 0.5, "candidates": None, "model": model, "decoder": "greedy",
            "engine": "onnx", "error": error, "label": None}


def write(folder: Path, rows: list[dict], parts: int = 2, commit: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(parts):
        pq.write_table(pa.Table.from_pylist(rows[i::parts], schema=SCHEMA), folder / part_name(i, parts))
    if commit:
        (folder / SUCCESS).write_text("{}")
    return folder


def test_a_table_directory_reads_back_every_row_with_the_schema_types(tmp_path):
    rows = [row(i) for i in range(5)] + [row(5, "truncated: cut at byte 9")]
    table = read_table(str(write(tmp_path / "out", rows)))
    assert table.committed and [Path(f).name for f in table.files] == [part_name(0, 2), part_name(1, 2)]
    assert sorted(table.rows, key=lambda r: r["id"]) == rows
    assert predictions.summarize_files(table.files) == {"rows": 6, "errors": 1,
                                                        "errors_by_reason": {"truncated": 1}}


def test_uncommitted_table_and_selected_columns(tmp_path):
    table = read_table(str(write(tmp_path / "out", [row(1)], parts=1, commit=False)), ["id", "text"],
                       ["model", "not-a-column"])
    assert not table.committed and table.rows == [{"id": row(1)["id"], "text": "w1", "model": "demo@model"}]


def test_a_watch_output_reads_as_its_committed_windows(tmp_path):
    out = tmp_path / "watch"
    write(out / "window=2026-12-01T10:00:00", [row(1), row(2)])
    write(out / "window=2026-12-01T10:00:30", [row(3)], parts=1)
    write(out / "window=2026-12-01T10:01:00", [row(4)], parts=1, commit=False)  # still being written
    table = read_table(str(out))
    assert table.committed and sorted(r["id"] for r in table.rows) == [row(i)["id"] for i in (1, 2, 3)]
    assert predictions.committed_windows(str(out)) == [str(out / "window=2026-12-01T10:00:00"),
                                                       str(out / "window=2026-12-01T10:00:30")]


def test_errors_name_the_path_and_the_fix(tmp_path):
    with pytest.raises(TableError, match=f"^{tmp_path / 'nope'}: no such file or directory; pass the"):
        read_table(str(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(TableError, match="no part-\\*.parquet files in this directory"):
        read_table(str(tmp_path / "empty"))
    (tmp_path / "junk.parquet").write_text("not parquet")
    with pytest.raises(TableError, match="junk.parquet: not a Parquet file"):
        read_table(str(tmp_path / "junk.parquet"))
    pq.write_table(pa.table({"id": ["a"], "text": ["x"]}), tmp_path / "other.parquet")
    with pytest.raises(TableError, match="missing column\\(s\\) source, confidence"):
        read_table(str(tmp_path / "other.parquet"))
    pq.write_table(pa.table({"id": ["a"], "confidence": ["high"]}), tmp_path / "types.parquet")
    with pytest.raises(TableError, match="column types .*confidence: string.* do not match"):
        read_table(str(tmp_path / "types.parquet"), ["id", "confidence"])


def test_a_table_behind_a_scheme_reads_through_beams_filesystems(tmp_path):
    memfs.FILES.clear()
    local = write(tmp_path / "out", [row(1), row(2, "missing_file: no such file: /crops/2.png")])
    where = f"mem://bucket/{tmp_path.name}/preds"  # the in-memory filesystem is shared by the whole test run
    for f in local.iterdir():
        memfs.FILES[f"{where}/{f.name}"] = (f.read_bytes(), 0.0)
    table = read_table(where)
    assert table.committed and sorted(r["id"] for r in table.rows) == [row(1)["id"], row(2)["id"]]
    assert table.files[0].startswith(f"{where}/part-")
    with pytest.raises(TableError, match="mem://bucket/nothing: no part-"):
        read_table("mem://bucket/nothing")


def test_no_job_module_imports_another_job_module():
    """What two jobs share lives in ocr_core (or a small pipelines helper), not in one of the jobs."""
    jobs = ["build_dataset", "predict", "evaluate", "train", "inspect_dataset", "synth", "export", "demo"]
    code = ("import sys, importlib; job = sys.argv[1]; importlib.import_module('pipelines.' + job); "
            "print(' '.join(m for m in sys.modules if m.startswith('pipelines.')))")
    for job in ["evaluate", "predict"]:
        loaded = subprocess.run([PYTHON, "-c", code, job], cwd=REPO, capture_output=True, text=True,
                                check=True).stdout.split()
        others = [m for m in loaded if m.split(".")[1] in jobs and m != f"pipelines.{job}"]
        assert not others, f"pipelines.{job} imports {others}"
