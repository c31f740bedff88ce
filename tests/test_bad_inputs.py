"""Bad input never kills the build and is never lost: each broken entry ends in rejects with its own reason,
and unusual-but-valid images (16-bit, RGBA, palette, CMYK) are accepted with the right pixels."""
from __future__ import annotations

import json
import os
from pathlib import Path

import images
import numpy as np
import pytest

from ocr_core.errors import REASONS, InputError
from ocr_core.image_bytes import read_image_bytes
from ocr_core.preprocess import preprocess_word_image
from ocr_core.records import WordRecord, iter_tfrecords
from pipelines import build_dataset


def build(out: Path, *inputs, extra=()) -> dict:
    argv = [a for i in inputs for a in ("--input", str(i))] + ["--output", str(out), "--workers", "1", *extra]
    build_dataset.run(argv)
    return json.loads((out / "manifest.json").read_text())


def records(out: Path, manifest: dict) -> dict[str, WordRecord]:
    out_recs = {}
    for shard in manifest["shards"]:
        with open(out / shard["path"], "rb") as fh:
            for b in iter_tfrecords(fh):
                r = WordRecord.decode(b)
                out_recs[Path(r.source).name] = r
    return out_recs


def rejects(out: Path, manifest: dict) -> list[dict]:
    rows = []
    for name in manifest["reject_files"]:
        rows += [json.loads(line) for line in (out / name).read_text().splitlines()]
    return rows


@pytest.fixture(scope="module")
def bad_build(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad")
    img = images.word_image("Hello")
    files = {
        "good.png": images.encode(img),
        "empty.png": b"",
        "text.jpg": images.text_as_jpg(),
        "trunc.jpg": images.truncated_jpeg(img),
        "trunc.png": images.truncated_png(img),
        "huge.png": images.huge_png(30000, 30000),
        "dup.png": images.encode(images.word_image("dup")),
    }
    for name, data in files.items():
        images.write(root / name, data)
    rows = [("good.png", "Hello"), ("missing.png", "gone"), ("empty.png", "empty"), ("text.jpg", "text"),
            ("trunc.jpg", "trunc"), ("trunc.png", "trunc"), ("huge.png", "huge"),
            ("good.png", ""), ("good.png", "café"), ("good.png", "x" * 32),
            ("dup.png", "dup"), ("dup.png", "dup"), "only-one-field", "a\tb\tc"]
    images.write_manifest(root / "labels.tsv", rows)
    expected = {  # line number -> reason ("" = written)
        1: "", 2: "missing_file", 3: "empty_file", 4: "not_an_image", 5: "truncated", 6: "truncated",
        7: "too_large", 8: "empty_label", 9: "oov_characters", 10: "label_too_long", 11: "", 12: "duplicate",
        13: "malformed_line", 14: "malformed_line",
    }
    # Broken lines in the other input kinds.
    (root / "labels.csv").write_text("path,label\ngood.png,Hello,extra\n")
    (root / "annotation.txt").write_text("./good.png 1\n./9_ok_1.png\n")
    images.write_word(root / "9_ok_1.png", "ok")
    images.write_word(root / "glob" / "nolabel.png", "x")
    out = root / "out"
    m = build(out, root / "labels.tsv", root / "labels.csv", root / "annotation.txt",
              str(root / "glob" / "*.png"))
    return out, m, expected


def test_every_bad_entry_is_rejected_with_its_own_reason(bad_build):
    out, m, expected = bad_build
    rows = rejects(out, m)
    got = {int(r["origin"].rsplit(":", 1)[1]): r["reason"] for r in rows if ".tsv:" in r["origin"]}
    assert got == {line: reason for line, reason in expected.items() if reason}
    other = sorted((Path(r["origin"]).name, r["reason"]) for r in rows if ".tsv:" not in r["origin"])
    assert other == [("annotation.txt:1", "malformed_line"), ("labels.csv:2", "malformed_line"),
                     ("nolabel.png", "malformed_name")]
    for r in rows:
        assert set(r) == {"source", "origin", "label", "reason", "detail"} and r["detail"]
        assert r["reason"] in REASONS
    assert sorted(records(out, m)) == ["9_ok_1.png", "dup.png", "good.png"]


def test_inputs_equal_written_plus_rejected(bad_build):
    out, m, _ = bad_build
    t = m["totals"]
    assert t["inputs"] == 14 + 1 + 2 + 1
    assert t["written"] == 3 and t["rejected"] == t["inputs"] - 3 and t["inputs_equal_written_plus_rejected"]
    assert sum(m["rejects"].values()) == len(rejects(out, m)) == t["rejected"]
    assert m["rejects"]["truncated"] == 2 and m["rejects"]["malformed_line"] == 4


def test_reject_details_name_the_problem(bad_build):
    out, m, _ = bad_build
    detail = {r["reason"]: r["detail"] for r in rejects(out, m)}
    assert "30000x30000" in detail["too_large"]
    assert "(é)" in detail["oov_characters"] and "--oov" in detail["oov_characters"]
    assert "kept" in detail["duplicate"] and "labels.tsv:11" in detail["duplicate"]
    assert "missing.png" in detail["missing_file"]


def test_unusual_formats_are_accepted_with_the_right_pixels(tmp_path):
    img = images.word_image("Hello")
    white = images.word_image("Hello", paper=255)
    files = {"p16.png": images.png16(img), "rgba.png": images.rgba_png(white),
             "pal.png": images.palette_png(img), "cmyk.jpg": images.cmyk_jpeg(img)}
    rows = []
    for name, data in files.items():
        images.write(tmp_path / name, data)
        rows.append((name, "Hello"))
    images.write_manifest(tmp_path / "labels.tsv", rows)
    m = build(tmp_path / "out", tmp_path / "labels.tsv", extra=["--val-fraction", "0"])
    assert m["totals"]["written"] == 4 and m["rejects"] == {}
    got = records(tmp_path / "out", m)

    def ref(a):
        return preprocess_word_image(images.encode(a))[0].astype(int)

    np.testing.assert_array_equal(got["p16.png"].image, ref(img))  # 16-bit: /257 is exact
    assert np.abs(got["rgba.png"].image - ref(white)).max() <= 1  # transparent paper -> white
    np.testing.assert_array_equal(got["pal.png"].image, ref(images.quantize(img)))
    assert np.abs(got["cmyk.jpg"].image - ref(img)).max() <= 12  # lossy, but not inverted
    for r in got.values():
        cw = r.content_width
        ink, paper = r.image[:, :cw].min(), np.median(r.image[:, :cw])
        assert ink < 80 and paper > 200, r.source  # dark text on light paper stays so


def test_oov_lowercase_and_drop(tmp_path):
    images.write_word(tmp_path / "a.png", "Hello")
    images.write_word(tmp_path / "b.png", "wo-rd")
    images.write_manifest(tmp_path / "labels.tsv", [("a.png", "Hello"), ("b.png", "wo-rd"), ("a.png", "ÉÈ")])
    lower = "abcdefghijklmnopqrstuvwxyz"
    m = build(tmp_path / "low", tmp_path / "labels.tsv", extra=["--charset", lower, "--oov", "lowercase",
                                                                 "--val-fraction", "0"])
    assert sorted(r.text for r in records(tmp_path / "low", m).values()) == ["hello"]
    assert m["rejects"] == {"oov_characters": 2}
    m = build(tmp_path / "drop", tmp_path / "labels.tsv", extra=["--charset", lower + "H", "--oov", "drop",
                                                                  "--val-fraction", "0"])
    assert sorted(r.text for r in records(tmp_path / "drop", m).values()) == ["Hello", "word"]
    assert m["rejects"] == {"oov_characters": 1} and m["charset"] == lower + "H"


# --- files that cannot even be opened or read --------------------------------------------------------


def unreadable_files(root: Path) -> dict[str, str]:
    """Manifest paths that no one can read -> the errno name their reject must name."""
    images.write_word(root / "good.png", "ok")
    (root / "loop.png").symlink_to("loop.png")
    return {"loop.png": "ELOOP", "x" * 300 + ".png": "ENAMETOOLONG", "good.png/inner.png": "ENOTDIR"}


def test_read_image_bytes_maps_every_os_error_to_a_reason(tmp_path):
    for rel, errno_name in unreadable_files(tmp_path).items():
        with pytest.raises(InputError) as e:
            read_image_bytes(str(tmp_path / rel))
        assert e.value.reason == "unreadable" and e.value.detail.startswith(errno_name), rel
    os.mkfifo(tmp_path / "pipe.png")  # a blocking open would hang the worker forever
    (tmp_path / "folder.png").mkdir()
    (tmp_path / "dangling.png").symlink_to("nowhere.png")
    for rel, reason, words in [("pipe.png", "not_an_image", "FIFO"),
                               ("folder.png", "not_an_image", "directory"),
                               ("dangling.png", "unreadable", "ENOENT"),
                               ("nope.png", "missing_file", "no such file")]:
        with pytest.raises(InputError) as e:
            read_image_bytes(str(tmp_path / rel))
        assert e.value.reason == reason and words in e.value.detail, rel
    if os.path.exists("/proc/self/mem"):  # a regular-looking file whose read fails (EIO), even for root
        with pytest.raises(InputError) as e:
            read_image_bytes("/proc/self/mem")
        assert e.value.reason == "unreadable"
    good = (tmp_path / "good.png").read_bytes()
    assert read_image_bytes(str(tmp_path / "good.png")) == good
    assert read_image_bytes(str(tmp_path / "good.png"), max_bytes=10) == good[:11]


def test_unreadable_files_are_rejects_not_a_crash(tmp_path):
    paths = unreadable_files(tmp_path)
    os.mkfifo(tmp_path / "pipe.png")
    images.write_manifest(tmp_path / "labels.tsv", [("good.png", "ok"), *paths.items(), ("pipe.png", "pipe")])
    m = build(tmp_path / "out", tmp_path / "labels.tsv", extra=["--val-fraction", "0"])
    assert m["totals"]["written"] == 1 and m["totals"]["inputs_equal_written_plus_rejected"]
    assert m["rejects"] == {"unreadable": 3, "not_an_image": 1}
    got = {r["label"]: r for r in rejects(tmp_path / "out", m)}  # labelled with the errno name they expect
    assert got.pop("pipe")["reason"] == "not_an_image"
    assert {label: r["detail"].split(" ")[0] for label, r in got.items()} == {e: e for e in paths.values()}


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their permissions")
def test_permission_denied_is_unreadable(tmp_path):
    images.write_word(tmp_path / "secret.png", "secret").chmod(0)
    images.write_manifest(tmp_path / "labels.tsv", [("secret.png", "secret")])
    m = build(tmp_path / "out", tmp_path / "labels.tsv")
    [r] = rejects(tmp_path / "out", m)
    assert r["reason"] == "unreadable" and r["detail"].startswith("EACCES")


def secret_files(root: Path) -> list[tuple[str, str]]:
    """Files that are not images but hold something private, as (path, label) rows of a manifest."""
    images.write(root / "passwd", b"Zq9SECRET:x:0:0:root:/root:/bin/sh\n")
    broken_header = b"Zq9SECRET-in-a-broken-header" * 4
    images.write(root / "fake.png", b"\x89PNG\r\n\x1a\n" + broken_header + b"IEND\xaeB`\x82")
    return [("passwd", "passwd"), ("fake.png", "fake")]


def test_reject_details_never_quote_file_content(tmp_path):
    rows = secret_files(tmp_path)
    images.write_manifest(tmp_path / "labels.tsv", [*rows, "Zq9SECRET-TOKEN-one-field", "Zq9SECRET\tb\tc"])
    (tmp_path / "binary.tsv").write_bytes(b"good.png\tok\n\xffZq9SECRET\tx\n")
    (tmp_path / "annotation.txt").write_text("./Zq9SECRET_TOKEN.jpg 1\n")
    m = build(tmp_path / "out", tmp_path / "labels.tsv", tmp_path / "binary.tsv", tmp_path / "annotation.txt")
    got = rejects(tmp_path / "out", m)
    assert m["rejects"] == {"not_an_image": 1, "corrupt": 1, "malformed_line": 4, "missing_file": 1}
    for r in got:
        assert "Zq9S" not in r["detail"], r  # not even the first bytes of a file or line
    detail = {r["reason"]: r["detail"] for r in got}
    assert detail["not_an_image"] == "not a JPEG/PNG/BMP/TIFF/GIF/WebP file: 35 bytes, unknown signature"
    assert detail["corrupt"].startswith("unreadable image header")
