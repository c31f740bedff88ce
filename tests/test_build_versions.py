"""Publishing a build into its --output: concurrent builds (exactly one publishes), and incremental builds
(`--append`): new versions, duplicates of earlier versions, nothing new, interruptions, mismatches."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import images

from ocr_core.records import WordRecord, iter_tfrecords

CLI = [sys.executable, "-m", "pipelines.cli", "build-dataset"]


def corpus(root: Path, words: list[str]) -> Path:
    """Word images listed by root/labels.tsv."""
    rows = []
    for i, w in enumerate(words):
        images.write_word(root / "img" / f"{w}-{i}.png", w)
        rows.append((f"img/{w}-{i}.png", w))
    return images.write_manifest(root / "labels.tsv", rows)


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


def test_two_builds_into_one_output_at_once_publish_exactly_one(tmp_path, repo):
    """Both start together; the one that publishes second must fail, not exit 0 with the other's manifest."""
    inputs = {name: corpus(tmp_path / name, [f"{name}{i}" for i in range(24)])
              for name in ("first", "second")}
    out = tmp_path / "out"
    procs = {name: subprocess.Popen([*CLI, "--input", str(tsv), "--output", str(out), "--workers", "1",
                                     "--shards", "2"], cwd=repo, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True)
             for name, tsv in inputs.items()}
    results = {name: (p.wait(timeout=300), *p.communicate()) for name, p in procs.items()}
    winners = [name for name, (rc, _, _) in results.items() if rc == 0]
    assert len(winners) == 1, {name: (rc, err[-800:]) for name, (rc, _, err) in results.items()}
    (winner,), (loser,) = winners, set(results) - set(winners)
    rc, stdout, stderr = results[loser]
    assert rc == 2 and "Traceback" not in stderr and stdout == ""
    (line,) = error_lines(stderr)
    assert line.startswith(f"ocr build-dataset: error: {out}: ") and "another build" in line, line
    m = json.loads((out / "manifest.json").read_text())
    assert m["inputs"][0]["uri"] == str(inputs[winner])
    recs = shard_records(out, m)
    assert len(recs) == m["totals"]["written"] == 24
    assert all(Path(r.source).is_relative_to(tmp_path / winner) for r in recs)
    assert listing(out) == dataset_files(out, m)  # nothing of the other build is left behind
