"""`ocr build-dataset` and `ocr inspect`: parsing, labels, splits, parity, determinism, overwrite, TF-free."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections import Counter
from itertools import islice
from pathlib import Path

import images
import numpy as np
import pytest
from images import WORDS

from ocr_core import build_manifest, inputs
from ocr_core.charset import Charset
from ocr_core.errors import InputError, UsageError
from ocr_core.inputs import input_kind, label_from_filename, parse_line, resolve_path
from ocr_core.labels import max_time_steps
from ocr_core.labels import validate_label as check_label
from ocr_core.preprocess import PreprocessSpec, preprocess_word_image
from ocr_core.records import WordRecord, iter_tfrecords, record_id
from ocr_core.split import SplitPlan
from pipelines import build_dataset, cli, inspect_dataset

IN_MEMORY = ["--workers", "1"]  # DirectRunner, in_memory mode: fast, in this process


def build(out: Path, *inputs: Path | str, extra=()) -> dict:
    """Runs the real build on the DirectRunner and returns the manifest."""
    argv = [a for i in inputs for a in ("--input", str(i))] + ["--output", str(out), *IN_MEMORY, *extra]
    build_dataset.run(argv)
    return json.loads((out / "manifest.json").read_text())


def read_records(out: Path, manifest: dict) -> dict[str, list[WordRecord]]:
    by_split: dict[str, list[WordRecord]] = {}
    for shard in manifest["shards"]:
        with open(out / shard["path"], "rb") as fh:
            recs = [WordRecord.decode(b) for b in iter_tfrecords(fh)]
        assert len(recs) == shard["count"]
        by_split.setdefault(shard["split"], []).extend(recs)
    return by_split


def shard_bytes(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.glob("*.tfrecord"))}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """Twelve good images in three formats, listed by a TSV manifest (with header and a comment)."""
    root = tmp_path_factory.mktemp("corpus")
    rows = []
    for i, w in enumerate(WORDS):
        ext = [".png", ".jpg", ".bmp"][i % 3]
        images.write_word(root / "img" / f"{i:02d}{ext}", w)
        rows.append((f"img/{i:02d}{ext}", w))
    images.write_manifest(root / "labels.tsv", ["# twelve words", *rows[:6], "", *rows[6:]],
                          header="path\tlabel")
    return root


@pytest.fixture(scope="module")
def built(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("ds") / "out"
    return out, build(out, corpus / "labels.tsv", extra=["--shards", "3", "--val-fraction", "0.25"])


# --- pure parts ---------------------------------------------------------------------------------------


def test_inputs_are_recognised_and_parsed():
    assert input_kind("/d/labels.tsv") == "tsv"
    assert input_kind("/d/labels.csv.gz") == "csv"
    assert input_kind("/d/annotation_train.txt") == "mjsynth"
    assert input_kind("/d/*.jpg") == "glob"
    with pytest.raises(UsageError, match="unknown input kind"):
        input_kind("/d/labels.parquet")
    assert parse_line("tsv", "a/b.png\tHello world") == ("a/b.png", "Hello world")
    assert parse_line("csv", '"a,b.png","x,y"') == ("a,b.png", "x,y")
    mj = "./3000/7/182_slinking_71711.jpg"
    assert parse_line("mjsynth", f"{mj} 71711") == (mj, "slinking")
    for kind, line in [("tsv", "no tab here"), ("tsv", "a\tb\tc"), ("csv", "a,b,c"),
                       ("mjsynth", "./1_x.jpg 3"), ("mjsynth", "./1_a_2.jpg notanumber")]:
        with pytest.raises(ValueError):
            parse_line(kind, line)
    assert label_from_filename("dir/12_under_score_3.png") == "under_score"
    assert label_from_filename("dir/plain.png") is None
    assert resolve_path("/data/set", "./a/../b.png") == "/data/set/b.png"
    assert resolve_path("/data/set", "/abs/x.png") == "/abs/x.png"
    assert resolve_path("gs://bucket/set", "./a/x.png") == "gs://bucket/set/a/x.png"


def test_label_policies():
    lower = Charset("abcdefghijklmnopqrstuvwxyz")
    assert check_label("Hello", lower, "lowercase", 31) == ("hello", lower.encode("hello"))
    assert check_label("he-llo!", lower, "drop", 31)[0] == "hello"
    for label, oov, reason in [("", "reject", "empty_label"), ("Hello", "reject", "oov_characters"),
                               ("héllo", "lowercase", "oov_characters"), ("!!", "drop", "oov_characters"),
                               ("a" * 16, "reject", "label_too_long")]:
        try:
            check_label(label, lower, oov, 30)
        except InputError as e:
            assert e.reason == reason, (label, e)
        else:
            pytest.fail(f"{label!r} accepted")
    # CTC needs a blank between repeats: 16 identical characters need 31 steps, 17 need 33.
    assert max_time_steps(PreprocessSpec()) == 31
    check_label("a" * 16, lower, "reject", 31)
    check_label("abcdefghijklmnopqrstuvwxyzabcde", lower, "reject", 31)
    with pytest.raises(InputError, match="33 CTC time steps"):
        check_label("a" * 17, lower, "reject", 31)
    with pytest.raises(InputError, match="32 CTC time steps"):
        check_label("abcdefghijklmnopqrstuvwxyzabcdef", lower, "reject", 31)


def test_an_nfd_label_is_stored_as_nfc(tmp_path):
    images.write_word(tmp_path / "a.png", "cafe")
    images.write_word(tmp_path / "b.png", "the")
    nfd = "cafe\u0301"  # "café" as macOS file names and some exports spell it: e + combining acute
    images.write_manifest(tmp_path / "labels.tsv", [("a.png", nfd), ("b.png", "th\u00e9")])
    m = build(tmp_path / "out", tmp_path / "labels.tsv", extra=["--charset", "acefht\u00e9"])
    texts = sorted(r.text for recs in read_records(tmp_path / "out", m).values() for r in recs)
    assert texts == ["caf\u00e9", "th\u00e9"]


def test_a_phone_photo_stored_sideways_is_built_upright(tmp_path):
    import io

    from PIL import Image

    word = images.word_image("Station")  # 40 x ~150
    exif = Image.Exif()
    exif[0x0112] = 6  # a phone held upright: pixels stored turned, "rotate 90 clockwise to display"
    buf = io.BytesIO()
    Image.fromarray(word).transpose(Image.Transpose.ROTATE_90).save(buf, "JPEG", quality=95, exif=exif)
    images.write(tmp_path / "photo.jpg", buf.getvalue())
    images.write_manifest(tmp_path / "labels.tsv", [("photo.jpg", "Station")])
    m = build(tmp_path / "out", tmp_path / "labels.tsv", extra=["--val-fraction", "0"])
    [record] = read_records(tmp_path / "out", m)["train"]
    upright, cw = preprocess_word_image(images.encode(word, ".png"))
    assert record.content_width == cw > 60  # sideways it would be a 32 x 8 sliver
    assert np.abs(record.image.astype(int) - upright).mean() < 3


def test_split_is_deterministic_and_proportional():
    plan = SplitPlan(val_fraction=0.1, test_fraction=0.05, train_shards=8)
    assert plan.num_shards == {"train": 8, "val": 1, "test": 1}
    assert SplitPlan(0.2, 0.0, 16).num_shards == {"train": 16, "val": 4}
    ids = [record_id(f"/img/{i}.png", "w") for i in range(20000)]
    splits = Counter(plan.split_of(i) for i in ids)
    assert abs(splits["val"] / 20000 - 0.1) < 0.01 and abs(splits["test"] / 20000 - 0.05) < 0.01
    assert [plan.split_of(i) for i in ids[:500]] == [SplitPlan(0.1, 0.05, 8).split_of(i) for i in ids[:500]]
    shards = Counter(plan.shard_of(i, "train") for i in ids if plan.split_of(i) == "train")
    assert set(shards) == set(range(8)) and min(shards.values()) > 0.8 * max(shards.values())
    with pytest.raises(UsageError):
        SplitPlan(0.6, 0.4, 8)


# --- the pipeline ------------------------------------------------------------------------------------


def test_build_writes_a_complete_dataset(built, corpus):
    out, m = built
    assert m["schema_version"] == 1 and m["charset"] == Charset().characters and m["blank_id"] == 0
    assert m["image_shape"] == [32, 128, 1] and m["max_time_steps"] == 31
    assert m["preprocessing"] == PreprocessSpec().to_dict()
    assert m["totals"] == {"inputs": 12, "written": 12, "rejected": 0,
                           "inputs_equal_written_plus_rejected": True}
    assert m["inputs"][0]["entries"] == 12 and m["inputs"][0]["kind"] == "tsv"
    assert m["splits"]["train"]["num_shards"] == 3 and m["splits"]["val"]["num_shards"] == 1
    assert sum(m["counts"].values()) == 12
    expected_files = ["manifest.json", *(s["path"] for s in m["shards"]), *m["index_files"]]
    assert sorted(p.name for p in out.iterdir()) == sorted(expected_files)
    assert sum(sum(h.values()) for h in m["label_length_histogram"].values()) == 12
    for key in ("ocr_version", "options", "created", "rejects", "reject_files", "record_schema"):
        assert key in m


def test_stored_pixels_equal_preprocess_of_the_source(built, corpus):
    out, m = built
    seen = set()
    plan = SplitPlan(0.25, 0.0, 3)
    for split, recs in read_records(out, m).items():
        for r in recs:
            expected, cw = preprocess_word_image(Path(r.source).read_bytes())
            assert r.image.dtype == np.uint8 and r.image.shape == (32, 128)
            np.testing.assert_array_equal(r.image, expected)
            assert r.content_width == cw
            assert Charset().decode(r.label_ids) == r.text
            assert r.id == record_id(r.source, r.text)
            # the split hashes the image path relative to the inputs' directory, not where it lies
            key = Path(r.source).relative_to(corpus).as_posix()
            assert plan.split_of(record_id(key, r.text)) == split
            seen.add(r.text)
    assert seen == set(WORDS)
    for shard in m["shards"]:  # records sorted by id inside each shard
        with open(out / shard["path"], "rb") as fh:
            ids = [WordRecord.decode(b).id for b in iter_tfrecords(fh)]
        assert ids == sorted(ids)


def test_tensorflow_parses_the_shards(built):
    import tensorflow as tf

    out, m = built
    paths = [str(out / s["path"]) for s in m["shards"]]
    n = 0
    for raw in tf.data.TFRecordDataset(paths):
        ex = tf.train.Example.FromString(raw.numpy())
        assert len(ex.features.feature["image/raw"].bytes_list.value[0]) == 32 * 128
        n += 1
    assert n == 12


def fails(capsys, *argv) -> str:
    """Runs a build that must not start; returns its one-line error (exit code 2, nothing on stdout)."""
    capsys.readouterr()  # what earlier builds of the test printed
    assert cli.run_command("build-dataset", [str(a) for a in argv]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith("ocr build-dataset: error: ")
    assert captured.err.count("\n") == 1
    return captured.err


def test_rebuild_is_byte_identical_and_overwrite_is_explicit(built, corpus, tmp_path, capsys):
    out, m = built
    again = build(tmp_path / "again", corpus / "labels.tsv",
                  extra=["--shards", "3", "--val-fraction", "0.25"])
    assert shard_bytes(tmp_path / "again") == shard_bytes(out)
    assert again["shards"] == m["shards"] and again["counts"] == m["counts"]

    before = (tmp_path / "again" / "manifest.json").read_bytes()
    err = fails(capsys, "--input", corpus / "labels.tsv", "--output", tmp_path / "again")
    assert "already holds a dataset" in err and "--overwrite" in err
    assert (tmp_path / "again" / "manifest.json").read_bytes() == before  # untouched

    fewer = build(tmp_path / "again", corpus / "labels.tsv", extra=["--overwrite", "--shards", "2",
                                                                      "--val-fraction", "0"])
    names = sorted(p.name for p in (tmp_path / "again").iterdir())
    assert names == ["index-00000-of-00001.jsonl", "manifest.json", "train-00000-of-00002.tfrecord",
                     "train-00001-of-00002.tfrecord"]
    assert fewer["counts"] == {"train": 12}


def test_a_copy_of_the_data_elsewhere_gets_the_same_split(corpus, tmp_path):
    import shutil

    def membership(root):
        m = build(tmp_path / f"ds-{root.name}", root / "labels.tsv",
                  extra=["--shards", "3", "--val-fraction", "0.4"])
        return {(Path(r.source).relative_to(root).as_posix(), split, r.text)
                for split, recs in read_records(tmp_path / f"ds-{root.name}", m).items() for r in recs}

    moved = tmp_path / "elsewhere" / "deeper"
    shutil.copytree(corpus, moved)
    first, second = membership(corpus), membership(moved)
    assert first == second and {s for _, s, _ in first} == {"train", "val"}


def test_location_keys():
    assert inputs.input_dir("/d/a/labels.tsv", "tsv") == "/d/a"
    assert inputs.input_dir("gs://b/x/*/img_*.jpg", "glob") == "gs://b/x"
    assert inputs.common_root(["/d/a", "/d/a/b", "/d/c"]) == "/d"
    assert inputs.common_root(["gs://b/x", "gs://b/x/y"]) == "gs://b/x"
    assert inputs.location_key("/d/a/img/1.png", "/d") == "a/img/1.png"
    assert inputs.location_key("/elsewhere/1.png", "/d") == "/elsewhere/1.png"


def test_overwrite_replaces_the_old_dataset_only_when_the_new_one_publishes(corpus, tmp_path):
    out = tmp_path / "ds"
    out.mkdir()
    old = ("manifest.json", "train-00000-of-00009.tfrecord", "rejects-00000-of-00001.jsonl",
           "v0002/x.tfrecord")
    for name in old:
        (out / name).parent.mkdir(exist_ok=True)
        (out / name).write_text("old")
    with pytest.raises(UsageError, match="already holds a dataset"):
        build_manifest.check_output(str(out), overwrite=False)
    assert build_manifest.check_output(str(out), overwrite=True) is not None
    assert sorted(build_manifest.dataset_files(str(out))) == sorted(old[1:3]) + ["v0002"]
    assert all((out / name).read_text() == "old" for name in old)  # checking removes nothing
    m = build(out, corpus / "labels.tsv", extra=["--overwrite", "--shards", "1", "--val-fraction", "0"])
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == [
        "index-00000-of-00001.jsonl", "manifest.json", "train-00000-of-00001.tfrecord"]
    assert m["totals"]["written"] == 12


def test_missing_input_is_a_clear_error(tmp_path, capsys):
    assert "no such file" in fails(capsys, "--input", tmp_path / "nope.tsv", "--output", tmp_path / "out")
    assert "matched no files" in fails(capsys, "--input", tmp_path / "*.jpg", "--output", tmp_path / "out")


def test_csv_mjsynth_and_glob_inputs_and_dedup_across_them(tmp_path):
    # CSV with quoting and a header, in a sub-directory (paths resolve against it).
    images.write_word(tmp_path / "csv" / "a,1.png", "comma")
    images.write_word(tmp_path / "csv" / "b.png", "Quote")
    images.write_manifest(tmp_path / "csv" / "labels.csv", ['"a,1.png",comma', "b.png,Quote"],
                          header="image,text")
    # MJSynth layout.
    for rel in ["1/1/10_Tree_3.jpg", "1/2/11_house_4.jpg"]:
        images.write_word(tmp_path / "mj" / rel, label_from_filename(rel))
    (tmp_path / "mj" / "annotation.txt").write_text("./1/1/10_Tree_3.jpg 3\n./1/2/11_house_4.jpg 4\n")
    # Label in the file name; one of them is the same file+label as the MJSynth line -> duplicate.
    images.write_word(tmp_path / "flat" / "7_River_9.png", "River")
    m = build(tmp_path / "out", tmp_path / "csv" / "labels.csv", tmp_path / "mj" / "annotation.txt",
              str(tmp_path / "flat" / "*.png"), str(tmp_path / "mj" / "1" / "1" / "*.jpg"),
              extra=["--val-fraction", "0"])
    assert [i["entries"] for i in m["inputs"]] == [2, 2, 1, 1]
    assert m["totals"]["written"] == 5 and m["rejects"] == {"duplicate": 1}
    texts = sorted(r.text for r in read_records(tmp_path / "out", m)["train"])
    assert texts == ["Quote", "River", "Tree", "comma", "house"]
    dup = json.loads((tmp_path / "out" / m["reject_files"][0]).read_text())
    assert dup["reason"] == "duplicate" and "annotation.txt:1" in dup["detail"]
    assert dup["origin"].endswith("10_Tree_3.jpg")


def test_inspect_prints_summary_and_records(built, tmp_path, capsys):
    out, m = built
    assert inspect_dataset.run([str(out), "-n", "2", "--save-png", str(tmp_path / "png")]) == 0
    text = capsys.readouterr().out
    assert "train" in text and "inputs 12  written 12  rejected 0" in text and "charset (62)" in text
    assert text.count("\nid ") == 2 and "content width" in text
    assert "checked all 12 records in" in text
    assert any(ch in text for ch in "@%#")  # ink drawn
    pngs = sorted((tmp_path / "png").glob("*.png"))
    assert len(pngs) == 2
    import cv2

    rec = {r.id: r for recs in read_records(out, m).values() for r in recs}[pngs[0].stem]
    np.testing.assert_array_equal(cv2.imread(str(pngs[0]), cv2.IMREAD_GRAYSCALE), rec.image)


@pytest.fixture
def one_shard(corpus, tmp_path):
    """A dataset whose 12 records all lie in one train shard, and that shard's path."""
    out = tmp_path / "one"
    m = build(out, corpus / "labels.tsv", extra=["--shards", "1", "--val-fraction", "0"])
    [shard] = m["shards"]
    assert shard["count"] == 12
    return out, out / shard["path"]


def test_inspect_checks_every_record_not_only_the_shown_ones(one_shard, capsys):
    out, shard = one_shard
    data = bytearray(shard.read_bytes())
    data[-1] ^= 0xFF  # the data checksum of the 12th record, far past the 5 shown
    shard.write_bytes(bytes(data))
    assert cli.run_command("inspect", [str(out)]) == 2
    captured = capsys.readouterr()
    assert captured.out.count("\nid ") == 5
    assert "corrupt TFRecord at byte" in captured.err and shard.name in captured.err
    assert inspect_dataset.run([str(out), "--quick"]) == 0
    assert "checked the 5 shown records only (--quick); the other 7 were not read" in capsys.readouterr().out


def test_inspect_finds_a_shard_cut_at_a_record_boundary(one_shard, capsys):
    out, shard = one_shard
    with open(shard, "rb") as fh:
        kept = sum(16 + len(r) for r in islice(iter_tfrecords(fh), 7))
    shard.write_bytes(shard.read_bytes()[:kept])  # every CRC still valid
    assert cli.run_command("inspect", [str(out)]) == 2
    assert "7 records, the manifest says 12" in capsys.readouterr().err


def test_inspect_refuses_an_incomplete_dataset(tmp_path, capsys):
    (tmp_path / "train-00000-of-00001.tfrecord").write_bytes(b"")
    assert cli.run_command("inspect", [str(tmp_path)]) == 2
    assert "not a complete dataset" in capsys.readouterr().err


@pytest.mark.slow
def test_build_is_tensorflow_free_in_its_own_process(corpus, tmp_path):
    """The real CLI path (DirectRunner, multi_processing, 2 workers) in a process without TensorFlow."""
    out = tmp_path / "out"
    script = textwrap.dedent(f"""
        import json, sys
        from pipelines import cli
        rc = cli.main(["build-dataset", "--input", {str(corpus / "labels.tsv")!r}, "--output", {str(out)!r},
                       "--shards", "3", "--val-fraction", "0.25", "--workers", "2"])
        assert rc == 0, rc
        assert "tensorflow" not in sys.modules, "the build imported TensorFlow"
        print("TF_FREE_OK")
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "TF_FREE_OK" in proc.stdout
    assert "12 records written, 0 rejected, 12 inputs" in proc.stdout
    assert "Beam counters: inputs=12" in proc.stdout
    m = json.loads((out / "manifest.json").read_text())
    assert m["options"]["workers"] == 2 and m["options"]["runner"] == "DirectRunner"
    # Written by worker processes with tfrecord's proto; identical to the in-process (TF proto) build.
    reference = tmp_path / "ref"
    build(reference, corpus / "labels.tsv", extra=["--shards", "3", "--val-fraction", "0.25"])
    assert shard_bytes(out) == shard_bytes(reference)


def test_an_image_with_two_labels_is_rejected_whole_and_never_in_two_splits(tmp_path):
    """Which label is right cannot be known: every entry of such an image is rejected, none kept."""
    for name in ("a", "b", "c", "d"):
        images.write_word(tmp_path / f"{name}.png", name)
    images.write_manifest(tmp_path / "labels.tsv", [
        ("a.png", "cat"), ("b.png", "dog"), ("a.png", "cap"), ("b.png", "dog"), ("c.png", "c"),
        ("./a.png", "cat"), ("d.png", "Hello"), ("d.png", "hello")])
    m = build(tmp_path / "out", tmp_path / "labels.tsv", extra=["--shards", "4", "--val-fraction", "0.5"])
    assert m["totals"] == {"inputs": 8, "written": 2, "rejected": 6,
                           "inputs_equal_written_plus_rejected": True}
    assert m["rejects"] == {"conflicting_label": 5, "duplicate": 1}
    recs = [r for split in read_records(tmp_path / "out", m).values() for r in split]
    assert sorted(Path(r.source).name for r in recs) == ["b.png", "c.png"]
    rows = {int(r["origin"].rsplit(":", 1)[1]): r for r in
            (json.loads(line) for f in m["reject_files"] for line in (tmp_path / "out" / f).open())}
    assert {n: r["reason"] for n, r in rows.items()} == {
        1: "conflicting_label", 3: "conflicting_label", 6: "conflicting_label", 4: "duplicate",
        7: "conflicting_label", 8: "conflicting_label"}
    assert "labels.tsv:3 ('cap')" in rows[1]["detail"] and "none of its labels kept" in rows[1]["detail"]
    assert "labels.tsv:1 ('cat'), " in rows[3]["detail"] and "labels.tsv:6 ('cat');" in rows[3]["detail"]
    # with --oov lowercase the two labels of d.png are one: a duplicate, and d.png is written once
    m = build(tmp_path / "low", tmp_path / "labels.tsv", extra=["--oov", "lowercase", "--val-fraction", "0",
                                                                "--charset", "abcdefghijklmnopqrstuvwxyz"])
    assert m["rejects"] == {"conflicting_label": 3, "duplicate": 2} and m["totals"]["written"] == 3


def test_a_folder_input_finds_images_in_all_its_subfolders(tmp_path):
    root = tmp_path / "words"
    for rel in ["1_Foo_2.png", "a/3_Bar_4.jpg", "a/b/c/5_Baz_6.PNG", "d/plain.png"]:
        images.write_word(root / rel, label_from_filename(rel) or "x")
    (root / "notes.txt").write_text("not an image, not an input\n")
    images.write_manifest(root / "a" / "labels.tsv", [("3_Bar_4.jpg", "Bar")])  # a folder lists no manifests
    m = build(tmp_path / "out", root, extra=["--val-fraction", "0"])
    assert m["inputs"][0]["kind"] == "dir" and m["inputs"][0]["entries"] == 4
    assert m["totals"]["written"] == 3 and m["rejects"] == {"malformed_name": 1}
    recs = read_records(tmp_path / "out", m)["train"]
    assert sorted(Path(r.source).relative_to(root).as_posix() for r in recs) == [
        "1_Foo_2.png", "a/3_Bar_4.jpg", "a/b/c/5_Baz_6.PNG"]
    assert sorted(r.text for r in recs) == ["Bar", "Baz", "Foo"]


def test_an_empty_or_header_only_manifest_is_no_inputs_and_writes_nothing(tmp_path, capsys):
    images.write(tmp_path / "empty.tsv", b"")
    images.write_manifest(tmp_path / "header.csv", [], header="path,label")
    (tmp_path / "comments.tsv").write_text("# nothing yet\n\n")
    (tmp_path / "nothing").mkdir()
    for given in ("empty.tsv", "header.csv", "comments.tsv", "nothing"):
        err = fails(capsys, "--input", tmp_path / given, "--output", tmp_path / "out")
        assert f"--input {tmp_path / given}: no inputs" in err
    assert not (tmp_path / "out").exists()


USER_MISTAKES = {  # extra arguments -> what the one-line error says
    "shards -1": (["--shards", "-1"], "--shards must be >= 1"),
    "shards 0": (["--shards", "0", "--split", "val"], "--shards must be >= 1"),
    "charset aab": (["--charset", "aab"], "--charset: charset has duplicate characters: 'a'"),
    "output is a file": (["--output", "{file}"], "is a file, not a directory"),
    "output under a file": (["--output", "{file}/ds"], "cannot create the directory"),
    "empty manifest": (["--input", "{empty}"], "no inputs"),
    "image size 30x128": (["--image-size", "30x128"], "height must be a multiple of 16"),
    "image size 128": (["--image-size", "128"], "is not HxW"),
}


@pytest.mark.parametrize("mistake", USER_MISTAKES)
def test_user_mistakes_are_one_line_errors_with_exit_code_2(corpus, tmp_path, repo, mistake):
    extra, message = USER_MISTAKES[mistake]
    (tmp_path / "a-file").write_text("x")
    (tmp_path / "empty.tsv").write_text("")
    paths = {"file": tmp_path / "a-file", "empty": tmp_path / "empty.tsv"}
    argv = ["--input", str(corpus / "labels.tsv"), "--output", str(tmp_path / "out"), "--workers", "1"]
    argv += [a.format(**paths) for a in extra]  # the last --output wins; --input adds up, so drop the corpus
    if "--input" in extra:
        argv = argv[2:]
    proc = subprocess.run([sys.executable, "-m", "pipelines.cli", "build-dataset", *argv], cwd=repo,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and message in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("ocr build-dataset: error: ")
    assert not (tmp_path / "out").exists()
