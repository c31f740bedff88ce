"""`ocr_core.publish`: the one publish rule — staged files moved in, the marker last; a changed marker or a
held lock is a conflict that publishes nothing; a killed holder leaves no stale lock; remote paths too."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ocr_core import fs
from ocr_core.publish import LOCK, PublishConflict, generation, generation_of, output_lock, publish


def staged(tmp_path: Path, **files: str) -> Path:
    staging = tmp_path / "out" / "_staging" / "job1"
    for name, text in files.items():
        (staging / name).parent.mkdir(parents=True, exist_ok=True)
        (staging / name).write_text(text)
    return staging


def test_files_move_in_and_the_marker_comes_last(tmp_path):
    out = tmp_path / "out"
    staging = staged(tmp_path, **{"a.txt": "a", "sub/b.txt": "b"})
    publish(str(out), str(staging), {"a.txt": "a.txt", "sub/b.txt": "v0002/b.txt"}, "MARK", "done",
            job_id="job1", expected=None)
    assert (out / "MARK").read_text() == "done" and (out / "v0002" / "b.txt").read_text() == "b"
    assert not staging.exists() and not (out / LOCK).exists()
    assert generation(str(out / "MARK")) == generation_of(b"done") and generation(str(out / "nope")) is None


def test_a_changed_marker_is_a_conflict_that_publishes_nothing(tmp_path):
    out = tmp_path / "out"
    staging = staged(tmp_path, **{"a.txt": "mine"})
    (out / "a.txt").write_text("theirs")
    (out / "MARK").write_text("theirs")  # published after this job saw no marker
    with pytest.raises(PublishConflict, match="another job published into it while this one ran"):
        publish(str(out), str(staging), {"a.txt": "a.txt"}, "MARK", "mine", job_id="job1", expected=None,
                replace=["a.txt"])
    assert (out / "a.txt").read_text() == "theirs" and (out / "MARK").read_text() == "theirs"
    assert not staging.exists() and not (out / LOCK).exists()


def test_replacing_takes_the_marker_down_first(tmp_path):
    """A publish that removes old files and fails half-way leaves no marker describing files now gone."""
    out = tmp_path / "out"
    staging = staged(tmp_path, **{"a.txt": "new"})
    (out / "old.txt").write_text("old")
    (out / "MARK").write_text("old")
    with pytest.raises(OSError):
        publish(str(out), str(staging), {"a.txt": "a.txt", "lost.txt": "lost.txt"}, "MARK", "new",
                job_id="job1", expected=generation_of(b"old"), replace=["old.txt"])
    assert not (out / "MARK").exists() and not (out / "old.txt").exists()


HOLD = """
import sys, time
from ocr_core.publish import output_lock
with output_lock(sys.argv[1], "holder"):
    print("HELD", flush=True)
    time.sleep(120)
"""


def hold_lock(out: Path, repo: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(out)], cwd=repo, stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline().strip() == "HELD"
    return proc


def test_a_held_lock_is_a_conflict_and_a_killed_holder_leaves_none(tmp_path, repo):
    out = tmp_path / "out"
    holder = hold_lock(out, repo)
    try:
        assert json.loads((out / LOCK).read_text())["pid"] == holder.pid
        with pytest.raises(PublishConflict, match="another job is publishing into it now"):
            with output_lock(str(out), "me"):
                pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert (out / LOCK).exists()  # the file stays, but a dead process holds no lock on it
    staging = staged(tmp_path, **{"a.txt": "a"})
    publish(str(out), str(staging), {"a.txt": "a.txt"}, "MARK", "done", job_id="job1", expected=None)
    assert (out / "MARK").read_text() == "done" and not (out / LOCK).exists()


def test_remote_outputs_publish_the_same_way(tmp_path):
    """ram:// (TensorFlow's in-memory filesystem) stands in for an object store: check-then-create lock."""
    import tensorflow as tf

    out, staging = f"ram://pub-{time.time_ns()}/out", f"ram://pub-{time.time_ns()}/out/_staging/job1"
    fs.write_text(f"{staging}/a.txt", "a")
    publish(out, staging, {"a.txt": "a.txt"}, "MARK", "done", job_id="job1", expected=None)
    assert fs.read_text(f"{out}/MARK") == "done" and fs.read_text(f"{out}/a.txt") == "a"
    assert not tf.io.gfile.exists(f"{staging}/a.txt") and not fs.exists(f"{out}/{LOCK}")
    with output_lock(out, "first"):
        with pytest.raises(PublishConflict, match="a killed publish left it: remove it"):
            with output_lock(out, "second"):
                pass
    assert not fs.exists(f"{out}/{LOCK}")
