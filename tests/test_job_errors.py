"""Probes of the one error surface (issue 22): a failed job is one line naming the input and the cause (exit
1), a user mistake one line (exit 2), and no input silently vanishes: a manifest that ends early fails the
job, an unreadable listed file is a reject or an error row, a watched file with any name is recognised."""
from __future__ import annotations

import gzip
import json
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.testing import test_pipeline
from apache_beam.testing.util import assert_that, equal_to

from ocr_core import predictions
from ocr_core.dataset import Dataset
from ocr_core.watch import BundleWatch, LandedFiles
from pipelines import cli, predict, predict_watch
from pipelines.transforms.read_inputs import ReadPathList, write_path_list
from tests import images
from tests.conftest import PYTHON, REPO, words_dataset

ONE_WORKER = ["--workers", "1"]


def run_cli(capsys, command: str, *argv) -> tuple[int, str]:
    """Runs `ocr COMMAND ARGV` in this process; (exit code, stderr)."""
    capsys.readouterr()
    rc = cli.run_command(command, [str(a) for a in argv])
    return rc, capsys.readouterr().err


def the_error(err: str, command: str) -> str:
    """The one `ocr COMMAND: error:` line of stderr, with no traceback anywhere."""
    assert "Traceback" not in err, err[-3000:]
    lines = [line for line in err.splitlines() if line.startswith(f"ocr {command}: error: ")]
    assert len(lines) == 1, err[-3000:]
    return lines[0]


# --- manifests that end early or are not what their name says ----------------------------------------


def truncated_gz(tmp_path: Path, lines: int = 4000) -> Path:
    data = "".join(f"img{i:05d}.png\tw{i}\n" for i in range(lines)).encode()
    packed = gzip.compress(data)
    path = tmp_path / "labels.tsv.gz"
    path.write_bytes(packed[: len(packed) // 2])
    return path


def test_a_truncated_gz_manifest_fails_the_build_naming_the_file_and_the_lines_read(tmp_path, capsys):
    manifest = truncated_gz(tmp_path)
    rc, err = run_cli(capsys, "build-dataset", "--input", manifest, "--output", tmp_path / "ds", *ONE_WORKER)
    line = the_error(err, "build-dataset")
    assert rc == 1 and "labels.tsv.gz" in line and "truncated" in line, line
    assert re.search(r"after [\d,]+ lines", line), line
    assert not (tmp_path / "ds" / "manifest.json").exists()


def test_a_truncated_gz_manifest_fails_predict_too(tmp_path, capsys):
    manifest = truncated_gz(tmp_path)
    rc, err = run_cli(capsys, "predict", "--input", manifest, "--output", tmp_path / "pred", *ONE_WORKER)
    line = the_error(err, "predict")
    assert rc == 1 and "labels.tsv.gz" in line and re.search(r"truncated\) after [\d,]+ lines", line), line
    assert not (tmp_path / "pred" / predictions.SUCCESS).exists()


def test_a_gz_manifest_that_is_not_gzip_is_one_line(tmp_path, capsys):
    images.write_word(tmp_path / "a.png", "a")
    manifest = tmp_path / "plain.tsv.gz"
    manifest.write_text("a.png\ta\n")
    for command, out in [("build-dataset", "ds"), ("predict", "pred")]:
        rc, err = run_cli(capsys, command, "--input", manifest, "--output", tmp_path / out, *ONE_WORKER)
        line = the_error(err, command)
        assert rc == 1 and "plain.tsv.gz" in line and "after 0 lines" in line, line


# --- listed files that cannot be read ---------------------------------------------------------------


def folder_with_bad_links(root: Path) -> Path:
    d = root / "crops"
    images.write_word(d / "1_good_2.png", "good")
    (d / "1_dangling_2.png").symlink_to("nowhere.png")
    (d / "1_loop_2.png").symlink_to("1_loop_2.png")
    return d


def test_dangling_and_looping_symlinks_in_a_folder_are_rejects_with_the_errno(tmp_path):
    d = folder_with_bad_links(tmp_path)
    out = tmp_path / "ds"
    cli.run_command("build-dataset", ["--input", str(d), "--output", str(out), "--val-fraction", "0",
                                      *ONE_WORKER])
    ds = Dataset.load(str(out))
    assert ds.manifest["totals"]["inputs"] == 3 and ds.manifest["rejects"] == {"unreadable": 2}
    rejects = [json.loads(line) for f in out.glob("rejects-*.jsonl") for line in f.read_text().splitlines()]
    detail = {Path(r["source"]).name: r["detail"] for r in rejects}
    assert detail["1_dangling_2.png"].startswith("ENOENT") and detail["1_loop_2.png"].startswith("ELOOP")


def test_dangling_and_looping_symlinks_in_a_glob_are_error_rows_with_the_errno(tmp_path):
    d = folder_with_bad_links(tmp_path)
    out = tmp_path / "pred"
    predict.run(["--input", str(d / "*.png"), "--output", str(out), *ONE_WORKER])
    errors = {Path(r["source"]).name: r["error"] for r in predictions.read_table(str(out)).rows}
    assert errors["1_good_2.png"] is None
    assert errors["1_dangling_2.png"].startswith("unreadable: ENOENT")
    assert errors["1_loop_2.png"].startswith("unreadable: ELOOP")


def test_a_damaged_dataset_shard_is_one_line_naming_it(tmp_path, capsys):
    ds = words_dataset(tmp_path, ["alpha", "beta", "gamma", "delta"] * 3, "--val-fraction", "0",
                       "--shards", "1")
    (shard,) = ds.glob("train-*.tfrecord")
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF
    shard.write_bytes(bytes(data))
    rc, err = run_cli(capsys, "predict", "--input", ds, "--split", "train", "--output", tmp_path / "p",
                      *ONE_WORKER)
    line = the_error(err, "predict")
    assert rc == 1 and shard.name in line and "corrupt" in line, line
    assert len(err.strip().splitlines()) <= 3, err


# --- user mistakes ----------------------------------------------------------------------------------


def test_bad_flag_values_and_outputs_that_are_files_are_one_line_exit_2(tmp_path, capsys):
    images.write_word(tmp_path / "w.png", "w")
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    ds = words_dataset(tmp_path, ["alpha", "beta"], "--val-fraction", "0")
    for command, argv, message in [
            ("predict", ["--input", tmp_path / "w.png", "--output", tmp_path / "o", "--batch-size", "0",
                         *ONE_WORKER], "--batch-size must be >= 1"),
            ("predict", ["--input", tmp_path / "w.png", "--output", a_file, *ONE_WORKER],
             "a-file: is a file"),
            ("build-dataset", ["--input", tmp_path / "w.png", "--output", a_file, *ONE_WORKER],
             "a-file: is a file"),
            ("evaluate", ["--predictions", tmp_path / "o", "--report", a_file], "a-file: is a file"),
            ("inspect", [ds, "--save-png", a_file], "a-file: is a file")]:
        rc, err = run_cli(capsys, command, *argv)
        line = the_error(err, command)
        assert rc == 2 and message in line, line
    assert a_file.read_text() == "x"


# --- watch mode -------------------------------------------------------------------------------------


WATCH = ["--window", "1s", "--poll", "0.3s", *ONE_WORKER]


def test_a_watched_file_whose_name_holds_a_newline_is_recognised(tmp_path):
    inbox = tmp_path / "in"
    images.write_word(inbox / "two\nlines.png", "word")
    images.write_word(inbox / "plain.png", "word")
    files = LandedFiles(str(inbox / "*.png"), False)
    files.poll(), files.poll()
    paths = files.take()
    assert str(inbox / "two\nlines.png") in paths and len(paths) == 2
    listing = str(tmp_path / "_inputs.txt")
    write_path_list(listing, paths)
    with test_pipeline.TestPipeline() as p:
        assert_that(p | ReadPathList(listing), equal_to(paths))
    out = tmp_path / "out"
    predict.run(["--watch", str(inbox / "*.png"), "--output", str(out), "--idle-timeout", "2s", *WATCH])
    rows = [r for w in predictions.committed_windows(str(out)) for r in predictions.read_table(w).rows]
    assert sorted(r["source"] for r in rows) == sorted(paths)
    assert all(r["error"] is None for r in rows)


@pytest.mark.slow
def test_one_watcher_per_output(tmp_path, capsys):
    inbox, out = tmp_path / "in", tmp_path / "out"
    inbox.mkdir()
    first = subprocess.Popen([PYTHON, "-m", "pipelines.cli", "predict", "--watch", str(inbox), "--output",
                              str(out), "--idle-timeout", "120s", *WATCH], cwd=REPO, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        while not (out / predict_watch.WATCH_LOCK).exists():
            assert first.poll() is None and time.time() < deadline, first.communicate()[1][-3000:]
            time.sleep(0.2)
        rc, err = run_cli(capsys, "predict", "--watch", inbox, "--output", out, "--idle-timeout", "3s",
                          *WATCH)
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=120)
    line = the_error(err, "predict")
    assert rc == 2 and "another `ocr predict --watch`" in line, line
    assert first.returncode == 0


def test_model_watch_retries_a_bundle_that_was_incomplete_when_first_seen(tmp_path, capsys):
    from ocr_core.bundle import save_bundle
    from ocr_core.charset import Charset
    from ocr_core.config import load_config
    from ocr_core.model import build_crnn

    cfg = load_config("demo")
    full = tmp_path / "full"
    model = build_crnn(cfg.model, Charset(cfg.charset).num_classes)
    save_bundle(str(full), model, cfg, {}, saved_model=False)
    models = tmp_path / "models"
    models.mkdir()
    current = predict.open_model(None, "auto")
    swap = predict_watch.ModelSwap(current, BundleWatch(str(models / "*")), "auto", predict.open_model)
    shutil.copytree(full, models / "v2", ignore=shutil.ignore_patterns("config.yaml"))  # still being copied
    assert swap.next() is current and swap.next() is current
    assert "keeping" in capsys.readouterr().err
    shutil.copy(full / "config.yaml", models / "v2" / "config.yaml")
    swapped = swap.next()
    assert swapped is not current and swapped.path == str(models / "v2")


def test_read_path_list_spreads_over_parts(tmp_path):
    paths = [f"/x/{i}\n.png" for i in range(7)]
    listing = str(tmp_path / "l.txt")
    write_path_list(listing, paths)
    with test_pipeline.TestPipeline() as p:
        assert_that(p | ReadPathList(listing, parts=3) | beam.Map(str), equal_to(paths))


@pytest.mark.slow
def test_a_failure_in_a_worker_process_is_one_line_on_the_console(tmp_path):
    """Two worker processes (the default): the workers' own copies of the failed bundle's traceback and the
    launcher's relay of them stay off the console; `--verbose` keeps them."""
    manifest = truncated_gz(tmp_path)
    command = [PYTHON, "-m", "pipelines.cli", "build-dataset", "--input", str(manifest), "--output",
               str(tmp_path / "ds")]
    p = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert p.returncode == 1 and p.stderr.count("\n") == 1, p.stderr[-3000:]
    assert p.stderr.startswith("ocr build-dataset: error: ") and "labels.tsv.gz" in p.stderr
    loud = subprocess.run([*command[:3], "--verbose", *command[3:]], cwd=REPO, capture_output=True, text=True,
                          timeout=300)
    assert loud.returncode == 1 and "Traceback" in loud.stderr


def test_the_console_filter_drops_only_a_workers_copy_of_a_bundle_failure():
    from pipelines.quiet import TracebackFilter

    bundle_failure = ["Traceback (most recent call last):", '  File "x.py", line 1, in f', "    g()",
                      "ocr_core.errors.JobFailed: a.tsv.gz: truncated", "",
                      "During handling of the above exception, another exception occurred:", "",
                      "Traceback (most recent call last):", '  File "y.py", line 2, in h',
                      "ocr_core.errors.JobFailed: a.tsv.gz: truncated [while running 'ReadInputs/Count']",
                      ""]
    other = ["Traceback (most recent call last):", '  File "z.py", line 3, in k', "ValueError: a bug",
             "ocr build-dataset: error: ValueError: a bug"]
    f = TracebackFilter()
    written = [out for line in ["before", *bundle_failure, *other] for out in f.feed(line)] + f.flush()
    assert written == ["before", *other]
