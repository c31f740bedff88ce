"""`ocr_core.inputs`, the byte-range reading of manifests: every split of a manifest into ranges yields the
inputs of reading it whole (same origins, order, header and BOM handling), and a build whose manifest is read
in many ranges is byte-identical to one read in a single range."""
from __future__ import annotations

import json
from pathlib import Path

import images

from ocr_core.inputs import (
    InputSpec,
    count_range,
    read_input,
    read_range,
    resolve_inputs,
)
from ocr_core.manifest_bytes import byte_ranges, range_lines
from pipelines import build_dataset
from pipelines.transforms import read_inputs

AWKWARD = ("\ufeff# made by hand\r\n\r\n# the header comes after comments\npath\tlabel\n"
           "a.png\tAlpha\r\nb.png\tBéta\n  \n".encode() + b"c.png\t\xff\xfe bad\n"
           + b"no tab here\n# comment\nd.png\tDelta\ne.png\tlast line without a newline")


def ranges_read(spec: InputSpec, range_bytes: int) -> list:
    """The inputs of `spec` read range by range, numbered as the build numbers them."""
    counted = [(spec, r, count_range(spec, r)) for r in byte_ranges(spec, 1, range_bytes)]
    out = []
    for _, (s, r, first_line_no) in read_inputs.number_ranges((spec.index, counted)):
        out += list(read_range(s, r, first_line_no))
    return out


def test_every_split_into_ranges_reads_what_a_whole_read_does(tmp_path):
    (tmp_path / "labels.tsv").write_bytes(AWKWARD)
    (spec,) = resolve_inputs([str(tmp_path / "labels.tsv")])
    whole = list(read_input(spec))
    assert [getattr(e, "reason", e.label) for e in whole] == [
        "Alpha", "Béta", "malformed_line", "malformed_line", "Delta", "last line without a newline"]
    assert [e.origin.rsplit(":", 1)[1] for e in whole] == ["5", "6", "8", "9", "11", "12"]
    for range_bytes in range(1, len(AWKWARD) + 2):
        assert ranges_read(spec, range_bytes) == whole, range_bytes


def test_a_range_holds_the_lines_that_start_in_it(tmp_path):
    path = tmp_path / "x.tsv"
    path.write_bytes(b"aa\nbbb\n\ncc")
    with open(path, "rb") as fh:
        assert list(range_lines(fh, 0, 1)) == [b"aa\n"]
        assert list(range_lines(fh, 1, 3)) == []  # "aa" started before, "bbb" starts at 3
        assert list(range_lines(fh, 3, 8)) == [b"bbb\n", b"\n"]
        assert list(range_lines(fh, 8, 11)) == [b"cc"]
    (spec,) = resolve_inputs([str(path)])
    assert [(r.start, r.end) for r in byte_ranges(spec, 3)] == [(0, 3), (3, 6), (6, 10)]
    assert len(byte_ranges(spec, 1, range_bytes=2)) == 5


def test_a_gzipped_manifest_is_one_range(tmp_path):
    import gzip

    (tmp_path / "labels.tsv.gz").write_bytes(gzip.compress(b"a.png\tA\nb.png\tB\n"))
    (spec,) = resolve_inputs([str(tmp_path / "labels.tsv.gz")])
    assert len(byte_ranges(spec, 4)) == 1
    assert ranges_read(spec, 1) == list(read_input(spec))


def test_a_build_reading_its_manifest_in_many_ranges_is_byte_identical(tmp_path):
    rows = []
    for i in range(30):
        images.write_word(tmp_path / f"{i:02d}.png", f"w{i}")
        rows.append((f"{i:02d}.png", f"w{i}"))
    images.write_manifest(tmp_path / "labels.tsv", ["# words", *rows[:10], "broken line", *rows[10:],
                                                    ("missing.png", "gone"), ("00.png", "w0")],
                          header="path\tlabel")
    built = {}
    for workers in (1, 7):  # 1 and 7 byte ranges; in_memory keeps both in this process
        out = tmp_path / f"out{workers}"
        build_dataset.run(["--input", str(tmp_path / "labels.tsv"), "--output", str(out), "--workers",
                           str(workers), "--direct_running_mode=in_memory", "--shards", "2"])
        m = json.loads((out / "manifest.json").read_text())
        files = {p.name: p.read_bytes() for p in sorted(out.iterdir()) if p.name != "manifest.json"}
        built[workers] = (files, m["inputs"], m["totals"], m["rejects"])
    assert built[1] == built[7]
    assert built[1][2]["inputs"] == 33 and built[1][3] == {"duplicate": 1, "malformed_line": 1,
                                                          "missing_file": 1}
    rejects = [json.loads(line) for line in Path(tmp_path / "out7" / "rejects-00000-of-00001.jsonl").open()]
    broken = next(r for r in rejects if r["reason"] == "malformed_line")
    assert broken["origin"] == f"{tmp_path / 'labels.tsv'}:13"  # header 1, comment 2, ten rows, then it


def test_a_header_line_is_skipped_wherever_it_stands_by_every_reader(tmp_path):
    """One rule for the whole-file reader (evaluate) and the byte-range reader (build and predict): a header
    line is not an input, on the first line or later."""
    data = b"a.png\tA\nPATH\tLabel\nb.png\tB\nimage\ttext\n"
    (tmp_path / "labels.tsv").write_bytes(data)
    (spec,) = resolve_inputs([str(tmp_path / "labels.tsv")])
    whole = list(read_input(spec))
    assert [(e.label, e.origin.rsplit(":", 1)[1]) for e in whole] == [("A", "1"), ("B", "3")]
    assert ranges_read(spec, 5) == whole
