"""Shared fixtures. TensorFlow is imported first on purpose: `ocr_core.records` then uses TensorFlow's copy of
the Example proto in this process, so build tests and TF tests can share one pytest run (see records.py).
The TensorFlow-free build path is proven by a test that runs it in a separate process.
Tests that run a whole job in a subprocess, train, or run for long are marked `slow` (pyproject.toml
registers the marker; `make test` runs them all, `-m "not slow"` skips them)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import tensorflow  # noqa: E402,F401

REPO = Path(__file__).resolve().parents[1]
PYTHON = sys.executable


def shipped_model_name(folder: str = "default_model") -> str:
    """The `model` column of rows read by the shipped bundle (its config's name @ the folder it is in)."""
    from ocr_core.bundle import SHIPPED_MODEL, read_bundle_meta

    return f"{read_bundle_meta(str(SHIPPED_MODEL))[0].name}@{folder}"


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


def words_dataset(root, words, *extra):
    """One image per word under root/raw, listed by labels.tsv, built with `ocr build-dataset` (plus `extra`
    flags) into root/ds in this process; returns root/ds."""
    from pipelines import build_dataset
    from tests.images import write_word

    lines = []
    for i, word in enumerate(words):
        rel = f"img/{i:04d}.png"
        write_word(root / "raw" / rel, word, height=40)
        lines.append(f"{rel}\t{word}")
    (root / "raw" / "labels.tsv").write_text("\n".join(lines) + "\n")
    out = root / "ds"
    build_dataset.run(["--input", str(root / "raw" / "labels.tsv"), "--output", str(out), "--workers", "1",
                       *extra])
    return out


@pytest.fixture(scope="session")
def two_sets(tmp_path_factory):
    """Three built datasets for the data-mix tests: big (cat/dog x 100, 2 shards, 10% val), small (20 x sun,
    train only) and dev (moon/star x 10, all val)."""
    big = words_dataset(tmp_path_factory.mktemp("big"), ["cat", "dog"] * 100, "--shards", "2",
                        "--val-fraction", "0.1")
    small = words_dataset(tmp_path_factory.mktemp("small"), ["sun"] * 20, "--shards", "1",
                          "--val-fraction", "0")
    dev = words_dataset(tmp_path_factory.mktemp("dev"), ["moon", "star"] * 10, "--split", "val",
                        "--shards", "1")
    return big, small, dev


def race(commands: dict[str, list[str]], cwd) -> tuple[str, str, tuple[int, str, str]]:
    """Starts the commands together (two jobs into one output); exactly one may exit 0.

    Returns:
        (the winner's name, the loser's name, the loser's (exit code, stdout, stderr)).
    """
    procs = {name: subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for name, cmd in commands.items()}
    results = {name: (p.wait(timeout=300), *p.communicate()) for name, p in procs.items()}
    winners = [name for name, (rc, _, _) in results.items() if rc == 0]
    assert len(winners) == 1, {name: (rc, err[-800:]) for name, (rc, _, err) in results.items()}
    (winner,), (loser,) = winners, set(results) - set(winners)
    return winner, loser, results[loser]
