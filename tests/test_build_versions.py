"""Publishing a build into its --output: concurrent builds (exactly one publishes), and incremental builds
(`--append`): new versions, duplicates of earlier versions, nothing new, interruptions, mismatches."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import images
import pytest

from ocr_core.dataset import Dataset
from ocr_core.records import WordRecord, iter_tfrecords
from pipelines import build_dataset
from tests.conftest import race

CLI = [sys.executable, "-m", "pipelines.cli", "build-dataset"]


def corpus(root: Path, words: list[str]) -> Path:
    """Word images listed by root/labels.tsv."""
    return images.write_manifest(root / "labels.tsv", images.write_words(root, words, "img/{w}-{i}.png"))


def error_lines(stderr: str) -> list[str]:
    """stderr without the WARNING/INFO lines Beam's import logs in some environments (apitools, ...)."""
    return [line for line in stderr.strip().splitlines() if not line.startswith(("WARNING:", "INFO:"))]


def shard_records(out: Path, manifest: dict) -> list[WordRecord]:
    """Every record of the manifest's shards, checking each shard's count and size against the file."""
    recs = []
    for s in manifest["shards"]:
        path = out / s["path"]
        assert path.stat().st_size == s["bytes"], s
        with open(path, "rb") as fh:
            shard = [WordRecord.decode(b) for b in iter_tfrecords(fh, str(path))]
        assert len(shard) == s["count"], s
        recs += shard
    return recs


def dataset_files(out: Path, manifest: dict) -> list[str]:
    return sorted(["manifest.json", *(s["path"] for s in manifest["shards"]), *manifest["reject_files"],
                   *manifest.get("index_files", [])])


def listing(out: Path) -> list[str]:
    return sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())


@pytest.mark.slow
def test_two_builds_into_one_output_at_once_publish_exactly_one(tmp_path, repo):
    """Both start together; the one that publishes second must fail, not exit 0 with the other's manifest."""
    inputs = {name: corpus(tmp_path / name, [f"{name}{i}" for i in range(24)])
              for name in ("first", "second")}
    out = tmp_path / "out"
    commands = {name: [*CLI, "--input", str(tsv), "--output", str(out), "--workers", "1", "--shards", "2"]
                for name, tsv in inputs.items()}
    winner, _, (rc, stdout, stderr) = race(commands, repo)
    assert rc == 2 and "Traceback" not in stderr and stdout == ""
    (line,) = error_lines(stderr)
    assert line.startswith(f"ocr build-dataset: error: {out}: ") and "another build" in line, line
    m = json.loads((out / "manifest.json").read_text())
    assert m["inputs"][0]["uri"] == str(inputs[winner])
    recs = shard_records(out, m)
    assert len(recs) == m["totals"]["written"] == 24
    assert all(Path(r.source).is_relative_to(tmp_path / winner) for r in recs)
    assert listing(out) == dataset_files(out, m)  # nothing of the other build is left behind


# --- --append -----------------------------------------------------------------------------------------

SPLIT_FLAGS = ["--val-fraction", "0.25", "--test-fraction", "0.25"]
OLD = [f"old{i}" for i in range(16)]
NEW = [f"new{i}" for i in range(12)]


def build(out: Path, *inputs: Path, extra=()) -> dict:
    argv = [a for i in inputs for a in ("--input", str(i))] + ["--output", str(out), "--workers", "1", *extra]
    build_dataset.run(argv)
    return json.loads((out / "manifest.json").read_text())


def splits_of(out: Path, manifest: dict) -> dict[str, str]:
    """image path -> split, over every version."""
    return {r.source: s["split"] for s in manifest["shards"] for r in shard_records(out, {"shards": [s]})}


def rejects_of(out: Path, version: dict) -> list[dict]:
    return [json.loads(line) for f in version["reject_files"] for line in (out / f).read_text().splitlines()]


@pytest.fixture()
def words(tmp_path) -> Path:
    """One folder of images: the old words listed by old.tsv, all words (and bad lines) by all.tsv."""
    root = tmp_path / "words"
    for w in OLD + NEW:
        images.write_word(root / "img" / f"{w}.png", w)
    images.write(root / "img" / "broken.png", images.truncated_png(images.word_image("broken")))
    images.write_manifest(root / "old.tsv", [(f"img/{w}.png", w) for w in OLD])
    images.write_manifest(root / "all.tsv", [
        *[(f"img/{w}.png", w) for w in OLD + NEW],
        ("img/old3.png", "relabelled"),  # an image of version 1 with another label
        ("img/broken.png", "broken"), ("img/missing.png", "missing"), "malformed line"])
    return root


def test_an_append_adds_only_new_inputs_each_in_the_split_a_full_build_gives_it(words, tmp_path, capsys):
    out = tmp_path / "ds"
    first = build(out, words / "old.tsv", extra=[*SPLIT_FLAGS, "--shards", "2"])
    v1_manifest = (out / "manifest.json").read_bytes()
    capsys.readouterr()
    m = build(out, words / "all.tsv", extra=["--append", "--shards", "1"])
    assert "version 2: 12 records written, 20 rejected, 32 inputs" in capsys.readouterr().out
    assert [v["version"] for v in m["versions"]] == [1, 2] and m["versions"][0] == first["versions"][0]
    v2 = m["versions"][1]
    assert v2["directory"] == "v0002" and all(s["path"].startswith("v0002/") for s in v2["shards"])
    assert v2["totals"] == {"inputs": 32, "written": 12, "rejected": 20,
                            "inputs_equal_written_plus_rejected": True}
    assert v2["rejects"] == dict(sorted({"duplicate": 16, "conflicting_label": 1, "truncated": 1,
                                         "missing_file": 1, "malformed_line": 1}.items()))
    rows = rejects_of(out, v2)
    assert {r["label"] for r in rows if r["reason"] == "duplicate"} == set(OLD)
    assert all("version 1" in r["detail"] for r in rows if r["reason"] in ("duplicate", "conflicting_label"))
    assert m["totals"] == {"inputs": 16 + 32, "written": 28, "rejected": 20,
                           "inputs_equal_written_plus_rejected": True}
    assert m["counts"] == {s: first["counts"][s] + v2["counts"].get(s, 0) for s in first["counts"]}

    # version 2 holds exactly the new words; every image is in one version and in the split of a full build
    v2_texts = sorted(r.text for r in shard_records(out, v2))
    assert v2_texts == sorted(NEW)
    full = build(tmp_path / "full", words / "all.tsv", extra=[*SPLIT_FLAGS, "--shards", "2"])
    appended, rebuilt = splits_of(out, m), splits_of(tmp_path / "full", full)
    # a full build rejects both labels of the relabelled image; the append keeps version 1's record of it
    assert appended.keys() - {str(words / "img" / "old3.png")} == rebuilt.keys()
    assert {src: appended[src] for src in appended if src in rebuilt} == {
        src: rebuilt[src] for src in appended if src in rebuilt}
    assert set(appended.values()) == {"train", "val", "test"}
    # the earlier version is untouched, and every reader sees both versions
    assert json.loads(v1_manifest)["shards"] == m["versions"][0]["shards"]
    d = Dataset.load(out)
    assert sum(n for _, n in d.shard_files("all")) == 28
    from pipelines import evaluate, predict

    assert {p for p, _ in predict.dataset_shards(str(out), "all")} == {str(out / s["path"])
                                                                         for s in m["shards"] if s["count"]}
    assert len(evaluate.read_labels(str(out), "all").entries) == 28
    from ocr_core.data import DataMix

    assert DataMix.load([str(out)]).count("train") == m["counts"]["train"]


def test_an_append_with_nothing_new_writes_nothing(words, tmp_path, capsys):
    out = tmp_path / "ds"
    build(out, words / "old.tsv", extra=SPLIT_FLAGS)
    before = {p: (out / p).read_bytes() for p in listing(out)}
    capsys.readouterr()
    build_dataset.run(["--input", str(words / "old.tsv"), "--output", str(out), "--workers", "1", "--append"])
    said = capsys.readouterr().out
    assert "nothing new, nothing written: 16 inputs" in said and "rejected duplicate             16" in said
    assert {p: (out / p).read_bytes() for p in listing(out)} == before and not (out / "_staging").exists()


KILL_WHEN_A_SHARD_APPEARS = """
import signal, subprocess, sys, time
from pathlib import Path
out, cmd = Path(sys.argv[1]), sys.argv[2:]
proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
while proc.poll() is None and not list(out.glob("_staging/*/*.tfrecord")):
    time.sleep(0.005)
proc.send_signal(signal.SIGKILL)
print(proc.wait())
"""


@pytest.mark.slow
def test_an_interrupted_append_leaves_the_earlier_version_and_a_rerun_completes(words, tmp_path, repo):
    for i in range(150):  # enough new images that the kill lands while the new version is being written
        images.write_word(words / "img" / f"more{i}.png", f"more{i}")
    images.write_manifest(words / "more.tsv", [(f"img/more{i}.png", f"more{i}") for i in range(150)])
    out = tmp_path / "ds"
    build(out, words / "old.tsv", extra=SPLIT_FLAGS)
    before = {p: (out / p).read_bytes() for p in listing(out)}
    append = [*CLI, "--input", str(words / "more.tsv"), "--output", str(out), "--workers", "1", "--append",
              "--shards", "8"]
    killer = subprocess.run([sys.executable, "-c", KILL_WHEN_A_SHARD_APPEARS, str(out), *append], cwd=repo,
                            capture_output=True, text=True, timeout=300)
    assert killer.stdout.strip() == "-9", "the append finished before it could be killed"
    assert {p: (out / p).read_bytes() for p in listing(out) if not p.startswith("_staging/")} == before
    assert not (out / "v0002").exists()
    d = Dataset.load(out)  # the earlier version still loads and reads
    assert len(d.versions) == 1 and len(shard_records(out, d.manifest)) == 16
    assert list(out.glob("_staging/*/_owner.json"))  # the killed build's staging folder...
    proc = subprocess.run(append, cwd=repo, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    m = json.loads((out / "manifest.json").read_text())
    assert [v["totals"]["written"] for v in m["versions"]] == [16, 150]
    assert listing(out) == dataset_files(out, m)  # ...is gone after the next publish
    assert len(shard_records(out, m)) == 166


MISMATCHES = {
    "charset": (["--charset", "abcdefghijklmnopqrstuvwxyz0123456789"],
                "--charset differs from the dataset's"),
    "image size": (["--image-size", "32x160"], "--image-size differs from the dataset's ('32x128')"),
    "split": (["--val-fraction", "0.1"], "--val-fraction differs from the dataset's (0.25)"),
    "overwrite too": (["--overwrite"], "not allowed with argument --append"),
}


@pytest.mark.parametrize("mistake", MISMATCHES)
def test_an_append_that_does_not_match_the_dataset_is_a_one_line_error(words, tmp_path, repo, mistake):
    out = tmp_path / "ds"
    build(out, words / "old.tsv", extra=SPLIT_FLAGS)
    before = {p: (out / p).read_bytes() for p in listing(out)}
    extra, message = MISMATCHES[mistake]
    proc = subprocess.run([*CLI, "--input", str(words / "all.tsv"), "--output", str(out), "--workers", "1",
                           "--append", *extra], cwd=repo, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    (line,) = [x for x in error_lines(proc.stderr) if x.startswith("ocr build-dataset")]
    assert line.startswith("ocr build-dataset: error: ") and message in line, line
    assert {p: (out / p).read_bytes() for p in listing(out)} == before


def test_an_append_to_a_dataset_built_before_versions_reads_its_shards(words, tmp_path):
    """A dataset of the previous build code: no versions, indexes, build id or split root."""
    out = tmp_path / "ds"
    m = build(out, words / "old.tsv", extra=SPLIT_FLAGS)
    for f in m["index_files"]:
        (out / f).unlink()
    legacy = {k: v for k, v in m.items() if k not in ("versions", "index_files", "build_id", "split_root")}
    (out / "manifest.json").write_text(json.dumps(legacy))
    m = build(out, words / "all.tsv", extra=["--append"])
    assert [v["totals"]["written"] for v in m["versions"]] == [16, 12]
    assert m["versions"][1]["rejects"]["duplicate"] == 16
