"""`ocr predict --watch`: files recognised as they land, one committed window at a time, each file exactly
once across windows and restarts, half-written files left alone, idle-timeout ending with exit 0, and a model
published mid-run taking over at a window boundary. The watch jobs run as real `ocr` processes with the
shipped model (ONNX engine); the bookkeeping of `ocr_core.watch` is tested on its own first."""
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ocr_core import predictions, watch
from ocr_core.bundle import SHIPPED_MODEL
from tests import images
from tests.conftest import PYTHON, REPO, shipped_model_name

# --- ocr_core.watch ---------------------------------------------------------------------------------


def test_durations_and_window_names():
    assert [watch.parse_duration(t) for t in ("30s", "2m", "1.5h", "45", "0.3s")] == [30, 120, 5400, 45, 0.3]
    with pytest.raises(ValueError, match="not a duration"):
        watch.parse_duration("soon")
    assert watch.window_name(1796173200.9) == "window=2026-12-02T01:00:00"


def test_a_file_has_landed_when_it_stops_changing_and_counts_once(tmp_path):
    files = watch.LandedFiles(str(tmp_path / "*.png"), images_only=False, done=[str(tmp_path / "old.png")])
    (tmp_path / "old.png").write_bytes(b"done before")
    growing = tmp_path / "new.png"
    growing.write_bytes(b"a")
    assert files.poll() and files.ready == []  # seen once: not yet stable
    growing.write_bytes(b"ab")
    assert files.poll() and files.ready == []  # changed
    assert not files.poll() and files.ready == [str(growing)]
    assert files.take() == [str(growing)] and files.ready == []
    growing.write_bytes(b"abc")  # recognised already: a later change is not a new file
    assert not files.poll() and not files.poll() and files.take() == []


def test_recover_drops_half_done_windows_and_returns_the_done_sources(tmp_path):
    rows = [{"id": "1", "source": "/in/a.png"}, {"id": "2", "source": "/in/b.png"}]
    for name, commit in [("window=2026-12-01T10:00:00", True), ("window=2026-12-01T10:00:30", False)]:
        (tmp_path / name).mkdir()
        table = pa.Table.from_pylist(rows[:1] if commit else rows[1:], schema=pa.schema([
            predictions.SCHEMA.field("id"), predictions.SCHEMA.field("source")]))
        pq.write_table(table, tmp_path / name / predictions.part_name(0, 1))
        if commit:
            (tmp_path / name / predictions.SUCCESS).write_text("{}")
    dead = tmp_path / "_staging" / "1234"  # a killed job's: its process is gone
    dead.mkdir(parents=True)
    owner = {"job": "1234", "host": socket.gethostname(), "pid": 2**22 + 7}
    (dead / "_owner.json").write_text(json.dumps(owner))
    (dead / "part-00000-of-00001.parquet").write_bytes(b"half")
    assert watch.recover(str(tmp_path)) == {"/in/a.png"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["window=2026-12-01T10:00:00"]


def test_a_bundle_counts_as_published_once_its_model_keras_appears(tmp_path):
    (tmp_path / "v1").mkdir()
    (tmp_path / "v1" / "model.keras").write_bytes(b"old")
    bundles = watch.BundleWatch(str(tmp_path / "*"))
    assert bundles.newest() is None
    (tmp_path / "v2").mkdir()
    (tmp_path / "v2" / "config.yaml").write_text("half published")
    assert bundles.newest() is None
    (tmp_path / "v2" / "model.keras").write_bytes(b"new")
    assert bundles.newest() == str(tmp_path / "v2") and bundles.newest() is None


def test_watch_flags_are_checked_before_anything_runs(tmp_path):
    from ocr_core.errors import UsageError
    from pipelines import predict

    for argv, message in [(["--input", "x.tsv", "--watch", "in/*"], "give --input .* or --watch .*not both"),
                          (["--input", "x.tsv", "--model-watch", "m/*"], "--model-watch needs --watch"),
                          (["--watch", "in/*.png", "--window", "0.5s"], "need --window >= 1s"),
                          (["--watch", "in/*.png", "--window", "soon"], "'soon' is not a duration")]:
        with pytest.raises(UsageError, match=f"^{message}"):
            predict.run([*argv, "--output", str(tmp_path / "o")])
    assert not (tmp_path / "o").exists()


# --- the watch job ----------------------------------------------------------------------------------

WINDOW = ["--window", "2s", "--poll", "0.3s", "--workers", "1"]


def start(inbox: Path, out: Path, *flags: str) -> subprocess.Popen:
    return subprocess.Popen([PYTHON, "-m", "pipelines.cli", "predict", "--watch", str(inbox / "*.png"),
                             "--output", str(out), *WINDOW, *flags], cwd=REPO, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def land(inbox: Path, name: str, data: bytes) -> Path:
    """The producer's convention: write under a name the glob does not match, then rename."""
    part = inbox / f"{name}.part"
    part.write_bytes(data)
    os.replace(part, inbox / name)
    return inbox / name


def burst(inbox: Path, tag: str, words: list[str], bad: bool = False) -> list[str]:
    paths = [land(inbox, f"{tag}-{i}.png", images.encode(images.word_image(w))) for i, w in enumerate(words)]
    if bad:
        paths.append(land(inbox, f"{tag}-bad.png", b""))
    return [str(p) for p in paths]


def rows(out: Path) -> list[dict]:
    try:
        return predictions.read_table(str(out)).rows
    except predictions.TableError:  # no committed window yet
        return []


def wait_for(what, timeout: float = 90, proc: subprocess.Popen | None = None):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if what():
            return
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the watch job ended ({proc.returncode}): {proc.stderr.read()[-3000:]}")
        time.sleep(0.2)
    raise AssertionError("timed out")


def committed(out: Path, sources: list[str], proc: subprocess.Popen) -> None:
    wait_for(lambda: set(sources) <= {r["source"] for r in rows(out)}, proc=proc)


def finish(proc: subprocess.Popen, timeout: float = 60) -> str:
    stdout, stderr = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, stderr[-3000:]
    return stdout


@pytest.mark.slow
def test_two_bursts_a_restart_and_a_third_burst_give_each_file_once(tmp_path):
    inbox, out = tmp_path / "inbox", tmp_path / "out"
    inbox.mkdir()
    job = start(inbox, out, "--idle-timeout", "5s")
    first = burst(inbox, "a", ["alpha", "Beta", "gamma"], bad=True)
    committed(out, first, job)
    second = burst(inbox, "b", ["delta", "epsilon"])
    committed(out, second, job)
    began_idling = time.time()
    stdout = finish(job)
    assert "no new file for 5s" in stdout and time.time() - began_idling < 30
    # a run stopped between publishing a window's parts and its marker: those files count as not done
    half = predictions.committed_windows(str(out))[-1]
    redo = {r["source"] for r in predictions.read_table(half).rows}
    Path(half, predictions.SUCCESS).unlink()
    job = start(inbox, out, "--idle-timeout", "4s")
    third = burst(inbox, "c", ["zeta", "eta"])
    committed(out, third + sorted(redo), job)
    assert f"{6 - len(redo)} files done before" in finish(job)
    assert not Path(half).exists()
    table = rows(out)
    counts = Counter(r["source"] for r in table)
    assert set(counts) == set(first + second + third) and set(counts.values()) == {1}
    windows = predictions.committed_windows(str(out))
    after_restart = {r["source"] for w in windows[1:] for r in predictions.read_table(w).rows}
    assert len(windows) >= 2 and set(third) | redo <= after_restart
    errors = {Path(r["source"]).name: r["error"] for r in table if r["error"]}
    assert list(errors) == ["a-bad.png"] and errors["a-bad.png"].startswith("empty_file")
    assert all(r["text"] for r in table if not r["error"])


@pytest.mark.slow
def test_a_file_still_being_written_is_not_read_half_way(tmp_path):
    inbox, out = tmp_path / "inbox", tmp_path / "out"
    inbox.mkdir()
    data = images.encode(images.word_image("patience"))
    job = start(inbox, out, "--idle-timeout", "4s")
    committed(out, burst(inbox, "early", ["first"]), job)  # the job is up
    slow = inbox / "slow.png"
    written = threading.Event()
    chunk = max(1, len(data) // 40)

    def write_slowly():  # no rename: the file grows in place for ~6 s, faster than the job polls
        with open(slow, "wb") as fh:
            for i in range(0, len(data), chunk):
                fh.write(data[i:i + chunk])
                fh.flush()
                time.sleep(0.15)
        written.set()

    writer = threading.Thread(target=write_slowly)
    writer.start()
    committed(out, burst(inbox, "meanwhile", ["second"]), job)
    assert not written.is_set(), "a window should commit while slow.png is still being written"
    writer.join()
    committed(out, [str(slow)], job)
    finish(job)
    row = next(r for r in rows(out) if r["source"] == str(slow))
    assert row["error"] is None and row["text"]


@pytest.mark.slow
def test_a_model_published_mid_run_takes_over_at_a_window_boundary(tmp_path):
    inbox, out, models = tmp_path / "inbox", tmp_path / "out", tmp_path / "models"
    inbox.mkdir()
    models.mkdir()
    job = start(inbox, out, "--idle-timeout", "12s", "--model-watch", str(models / "*"))
    before = burst(inbox, "a", ["alpha", "Beta"])
    committed(out, before, job)
    staging = models / ".v2-publishing"  # publish: copy next to the folder, then one rename
    shutil.copytree(SHIPPED_MODEL, staging, ignore=shutil.ignore_patterns("saved_model"))
    staging.rename(models / "v2")
    swap = f"model {shipped_model_name()} -> {shipped_model_name('v2')}"
    while swap not in (line := job.stdout.readline()):  # the next window boundary swaps it
        assert line, "the job ended without taking the new model"
    after = burst(inbox, "b", ["gamma", "delta"])
    committed(out, after, job)
    finish(job)
    by_source = {r["source"]: r for r in rows(out)}
    assert {by_source[s]["model"] for s in before} == {shipped_model_name()}
    assert {by_source[s]["model"] for s in after} == {shipped_model_name("v2")}
    assert all(by_source[s]["text"] and by_source[s]["engine"] == "onnx" for s in after)


@pytest.mark.slow
def test_sigterm_ends_the_job_after_committing(tmp_path):
    """What `systemctl stop` sends: the job commits what has landed, without waiting for the window's end,
    and exits 0."""
    inbox, out = tmp_path / "inbox", tmp_path / "out"
    inbox.mkdir()
    job = start(inbox, out, "--window", "60s")  # no --idle-timeout: runs until stopped
    assert job.stdout.readline().startswith("ocr predict --watch: ")  # up, its SIGTERM handler set
    landed = burst(inbox, "a", ["alpha", "Beta"])
    time.sleep(1.5)  # several polls: landed, the window far from over
    job.send_signal(signal.SIGTERM)
    assert "stopped" in finish(job)
    assert {r["source"] for r in rows(out)} == set(landed)


@pytest.mark.slow
def test_a_lexicon_constrains_every_window(tmp_path):
    inbox, out, words = tmp_path / "inbox", tmp_path / "out", tmp_path / "words.txt"
    inbox.mkdir()
    words.write_text("market\nstreet\nOPEN\n")
    job = start(inbox, out, "--idle-timeout", "3s", "--lexicon", str(words))
    sources = burst(inbox, "a", ["markel", "Street"])
    committed(out, sources, job)
    finish(job)
    table = sorted(rows(out), key=lambda r: r["source"])
    assert [r["text"] for r in table] == ["market", "street"]
    assert {r["decoder"] for r in table} == {"greedy+lexicon"}
