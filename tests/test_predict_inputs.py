"""`ocr predict`'s inputs are expanded inside the pipeline: the job graph does not grow with the number of
inputs, folders are recursive with the build's extension filter, manifests are read in byte ranges and keep
`MANIFEST:line` origins, part files are sized by a row target, and a non-local scheme works. The shipped
model (ONNX engine) keeps these runs short."""
import json
import re
from pathlib import Path

import apache_beam as beam
import pyarrow.parquet as pq
import pytest
from apache_beam.runners.runner import PipelineState
from apache_beam.testing.util import assert_that, equal_to

from ocr_core import predictions
from ocr_core.errors import UsageError
from ocr_core.inputs import InputSpec, read_input
from ocr_core.manifest_bytes import RANGE_BYTES
from pipelines import predict
from pipelines.transforms.read_inputs import ReadInputs
from tests import images, memfs

IN_MEMORY = ["--workers", "1"]


def rows_of(out) -> list[dict]:
    table = predictions.read_table(str(out))
    assert table.committed
    return table.rows


def graph_bytes(p: beam.Pipeline) -> int:
    return len(p.to_runner_api().SerializeToString())


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["manifest", "glob"])
def test_the_job_graph_does_not_grow_with_the_inputs(tmp_path, kind):
    """20,000 inputs build the same pipeline as 20 (the old launcher embedded every input in a Create: 882 KB
    against 57 KB for a manifest). Missing or empty files keep the model idle: each input is one error row."""
    sizes = {}
    for n in (20, 20_000):
        d = tmp_path / f"in{n}"
        d.mkdir()
        if kind == "manifest":
            source = d / "labels.tsv"
            source.write_text("".join(f"gone/{i:05d}.png\tword{i}\n" for i in range(n)))
        else:
            for i in range(n):
                (d / f"{i:05d}.png").touch()
            source = d / "*.png"
        out = tmp_path / f"out{n}"
        p = beam.Pipeline()
        result = predict.run(["--input", str(source), "--output", str(out), *IN_MEMORY], test_pipeline=p)
        assert result.state == PipelineState.DONE
        sizes[n] = graph_bytes(p)
        summary = json.loads((out / predictions.SUCCESS).read_text())
        reason = "missing_file" if kind == "manifest" else "empty_file"
        assert summary["rows"] == n and summary["errors_by_reason"] == {reason: n}
    print(f"{kind}: job graph {sizes[20]} bytes for 20 inputs, {sizes[20_000]} for 20,000")
    assert sizes[20_000] < 1.1 * sizes[20]


def test_a_folder_is_recursive_and_keeps_image_extensions_only(tmp_path):
    d = tmp_path / "crops"
    images.write_word(d / "a.png", "alpha")
    images.write_word(d / "deep" / "er" / "b.PNG", "Beta")
    images.write_word(d / "deep" / "c.jpeg", "gamma")
    (d / "notes.txt").write_text("not an image")
    (d / "deep" / "labels.tsv").write_text("a.png\talpha\n")
    out = tmp_path / "pred"
    predict.run(["--input", str(d), "--output", str(out), *IN_MEMORY])
    rows = rows_of(out)
    assert sorted(Path(r["source"]).relative_to(d).as_posix() for r in rows) == \
        ["a.png", "deep/c.jpeg", "deep/er/b.PNG"]
    assert not [r for r in rows if r["error"]]


def test_manifest_origins_are_line_numbers_read_in_byte_ranges(tmp_path):
    """Malformed lines read `labels.tsv:N`, the same as the sequential reader's, also when the manifest is
    split into many byte ranges (the one reader of build and predict)."""
    lines = ["path\tlabel", "# a comment", ""] + [f"w{i}.png\tw{i}" if i % 9 else f"broken{i}" for i in
                                                  range(1, 200)]
    manifest = tmp_path / "labels.tsv"
    manifest.write_bytes(("\n".join(lines) + "\n").encode().replace(b"broken18", b"bro\xffken18"))
    spec = InputSpec(0, str(manifest), "tsv", "labels.tsv")
    sequential = sorted((e.origin if e.label is None else e.source, e.label) for e in read_input(spec))
    for parts, range_bytes in [(1, 64), (3, RANGE_BYTES)]:  # ranges of 64 bytes; 3 parts
        with beam.Pipeline() as p:
            entries, rejects, _ = p | ReadInputs([spec], parts, range_bytes=range_bytes)
            got = ((entries, rejects) | beam.Flatten()
                   | beam.Map(lambda e: (e.origin if e.label is None else e.source, e.label)))
            assert_that(got, equal_to(sequential))
    out = tmp_path / "pred"
    predict.run(["--input", str(manifest), "--output", str(out), *IN_MEMORY])
    errors = {r["source"]: r["error"] for r in rows_of(out) if r["error"].startswith("malformed_line")}
    assert sorted(errors) == sorted(f"{manifest}:{n + 3}" for n in range(9, 200, 9))
    assert errors[f"{manifest}:21"].startswith("malformed_line: line is not UTF-8")


def test_part_files_follow_the_row_target_or_the_shard_count(tmp_path):
    d = tmp_path / "crops"
    for i in range(7):
        images.write_word(d / f"w{i}.png", f"w{i}")
    runs = [(["--rows-per-file", "3"], 3), (["--shards", "2"], 2), ([], 1), (["--shards", "12"], 12)]
    for flags, parts in runs:
        out = tmp_path / "-".join(flags or ["default"])
        predict.run(["--input", str(d / "*.png"), "--output", str(out), *flags, *IN_MEMORY])
        files = sorted(f.name for f in out.glob("part-*.parquet"))
        assert files == [predictions.part_name(i, parts) for i in range(parts)]  # empty shards too
        assert sum(pq.read_metadata(out / f).num_rows for f in files) == 7


def test_inputs_that_hold_nothing_fail_fast_in_one_line(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("x")
    (tmp_path / "comments.tsv").write_text("# nothing\n\n")
    for given, message in [(tmp_path / "*.png", "matched no files"), (tmp_path / "empty", "no images"),
                           (tmp_path / "comments.tsv", "the manifest is empty"),
                           (tmp_path / "nope.tsv", "no such file")]:
        want = f"^--input {re.escape(str(given))}: .*{message}"
        with pytest.raises(UsageError, match=want):
            predict.run(["--input", str(given), "--output", str(tmp_path / "o"), *IN_MEMORY])
    assert not (tmp_path / "o").exists()


def test_inputs_and_output_behind_a_scheme(tmp_path):
    """mem:// stands in for gs://: matching, manifest reading, image reads, staging and publishing all go
    through Beam's filesystems (an in-process runner sees the in-memory files)."""
    memfs.FILES.clear()
    for i, word in enumerate(["alpha", "Beta"]):
        images.write_word(tmp_path / f"{i}.png", word)
        memfs.FILES[f"mem://bucket/crops/{i}.png"] = ((tmp_path / f"{i}.png").read_bytes(), 0.0)
    memfs.FILES["mem://bucket/crops/labels.tsv"] = (b"0.png\talpha\n1.png\tBeta\nmissing.png\tx\nbad\n", 0.0)
    for given, n in [("mem://bucket/crops/*.png", 2), ("mem://bucket/crops/labels.tsv", 4),
                     ("mem://bucket/crops/", 2)]:
        predict.run(["--input", given, "--output", "mem://bucket/preds", *IN_MEMORY])
        rows = predictions.read_table("mem://bucket/preds").rows
        assert len(rows) == n and not [p for p in memfs.FILES if "_staging" in p]
        assert {r["source"] for r in rows if not r["error"]} == {"mem://bucket/crops/0.png",
                                                                  "mem://bucket/crops/1.png"}
        errors = {r["source"]: r["error"].split(":")[0] for r in rows if r["error"]}
        assert errors == ({"mem://bucket/crops/missing.png": "missing_file",
                           "mem://bucket/crops/labels.tsv:4": "malformed_line"} if n == 4 else {})
