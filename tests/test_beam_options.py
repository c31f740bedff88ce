"""The Beam jobs refuse flags that are neither theirs nor Beam's (Beam would drop them, run on defaults)."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ocr_core.bundle import save_bundle
from ocr_core.charset import Charset
from ocr_core.config import load_config
from ocr_core.model import build_crnn
from tests import images

REPO = Path(__file__).resolve().parents[1]


def ocr(*args):
    return subprocess.run([sys.executable, "-m", "pipelines.cli", *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, timeout=600)


def _errors(stderr: str, prog: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith(prog)]


def _labels(tmp_path: Path) -> Path:
    lines = []
    for i, word in enumerate(["alpha", "beta", "gamma", "delta"]):
        images.write_word(tmp_path / "raw" / f"{i}.png", word)
        lines.append(f"{i}.png\t{word}")
    (tmp_path / "raw" / "labels.tsv").write_text("\n".join(lines) + "\n")
    return tmp_path / "raw" / "labels.tsv"


def test_build_dataset_refuses_a_misspelt_flag_and_passes_beam_flags(tmp_path):
    labels, out = _labels(tmp_path), tmp_path / "ds"
    p = ocr("build-dataset", "--input", labels, "--output", out, "--val-fracton", 0.5)
    assert p.returncode == 2, p.stdout + p.stderr[-2000:]
    assert _errors(p.stderr, "ocr build-dataset") == [
        "ocr build-dataset: error: unrecognized arguments: --val-fracton 0.5 (not an option of "
        "ocr build-dataset nor of Beam's PipelineOptions; see --help)"], p.stderr
    assert not out.exists()
    p = ocr("build-dataset", "--input", labels, "--output", out, "--direct_num_workers", "two")
    assert p.returncode == 2 and "Beam option: argument --direct_num_workers: invalid int value" in p.stderr
    # Beam's own flags, in both spellings, still go through.
    p = ocr("build-dataset", "--input", labels, "--output", out, "--val-fraction", 0.5, "--workers", 1,
            "--direct_running_mode", "in_memory", "--no_pipeline_type_check")
    assert p.returncode == 0, p.stderr[-3000:]
    assert (out / "manifest.json").exists()


def test_predict_refuses_a_misspelt_flag(tmp_path):
    cfg = load_config("demo")
    bundle = tmp_path / "model"
    save_bundle(str(bundle), build_crnn(cfg.model, Charset(cfg.charset).num_classes), cfg, {},
                saved_model=False)
    images.write_word(tmp_path / "in" / "a.png", "word")
    out = tmp_path / "pred"
    p = ocr("predict", "--model", bundle, "--input", tmp_path / "in" / "*.png", "--output", out,
            "--decodr", "beam", "--workers", 1)
    assert p.returncode == 2, p.stdout + p.stderr[-2000:]
    errors = _errors(p.stderr, "ocr predict")
    assert len(errors) == 1 and "unrecognized arguments: --decodr beam" in errors[0], p.stderr
    assert not out.exists()


def _descendants(pid: int) -> list[int]:
    """Process ids below `pid` (from /proc), children first."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    out, frontier = [], [pid]
    while frontier:
        kids = [p for p, parent in parents.items() if parent in frontier]
        out += kids
        frontier = kids
    return out


def _is_beam_worker(pid: int) -> bool:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"apache_beam.runners.worker.sdk_worker_main" in argv and b"-c" not in argv


@pytest.mark.slow
@pytest.mark.parametrize("after, sigint_ignored", [(0.3, False), (1.0, False), (0.3, True)])
def test_a_killed_worker_ends_predict_with_one_line_and_exit_1(tmp_path, after, sigint_ignored):
    """A worker killed mid-run (as the out-of-memory killer would) fails the job: exit 1, one line naming the
    signal, nothing published. Beam alone prints pages of gRPC tracebacks and never says which signal.

    Killed 0.3 s after it started (before its first bundle), the runner's shutdown waited forever for the
    other worker, which never left: the watch now ends the survivors. Started with SIGINT ignored (`cmd &`
    in a script without job control, as CI runs it), the watch's interrupt did nothing and the job hung."""
    for i, word in enumerate(["north", "south", "east", "west"]):
        images.write_word(tmp_path / "raw" / f"{i}.png", word)
    (tmp_path / "raw" / "many.tsv").write_text("".join(f"{i % 4}.png\tw\n" for i in range(6000)))
    out = tmp_path / "out"
    ignore_sigint = (lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if sigint_ignored else None
    proc = subprocess.Popen([sys.executable, "-m", "pipelines.cli", "predict", "--input",
                             str(tmp_path / "raw" / "many.tsv"), "--output", str(out)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=ignore_sigint)
    deadline = time.time() + 300
    workers = []
    while not workers and proc.poll() is None and time.time() < deadline:
        time.sleep(0.2)
        workers = [p for p in _descendants(proc.pid) if _is_beam_worker(p)]
    assert workers, "no Beam worker process appeared"
    time.sleep(after)
    os.kill(workers[0], signal.SIGKILL)
    try:
        stdout, stderr = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        for pid in [*_descendants(proc.pid), proc.pid]:
            os.kill(pid, signal.SIGKILL)
        raise AssertionError(f"ocr predict still ran 120 s after a worker was killed {after} s in") from None
    assert proc.returncode == 1, (stdout, stderr[-3000:])
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert lines[-1].startswith("ocr predict: error: a Beam worker process died"), lines[-5:]
    assert "SIGKILL" in lines[-1] and "Traceback" not in stderr, stderr[-3000:]
    assert not (out / "_SUCCESS.json").exists()
