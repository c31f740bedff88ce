"""The same dataset comes out of every runner: DirectRunner and Dask (2-process distributed.LocalCluster)."""
from __future__ import annotations

import json
from pathlib import Path

import images
import pytest

from pipelines import build_dataset
from pipelines.beam_options import DASK_RUNNER, DIRECT_RUNNER, pipeline_options, verbose

WORDS = ["alpha", "Beta", "gamma7", "Delta", "eps", "Zeta", "eta", "Theta", "iota", "Kappa", "lam", "Mu",
         "nu", "Xi", "omicron", "Pi", "rho", "Sigma", "tau", "Ups"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("runners")
    rows = images.write_words(root, WORDS)
    images.write(root / "broken.jpg", images.truncated_jpeg(images.word_image("broken")))
    rows += [("broken.jpg", "broken"), ("00.png", "alpha"), ("01.png", ""), "malformed"]
    images.write_manifest(root / "labels.tsv", rows)
    return root


def build(corpus: Path, out: Path, *runner_args: str) -> dict:
    build_dataset.run(["--input", str(corpus / "labels.tsv"), "--output", str(out), "--shards", "3",
                       "--val-fraction", "0.2", "--test-fraction", "0.1", *runner_args])
    return json.loads((out / "manifest.json").read_text())


@pytest.fixture(scope="module")
def direct(corpus, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("direct") / "out"
    return out, build(corpus, out, "--workers", "1")


def files(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.iterdir()) if p.name != "manifest.json"}


def comparable(m: dict) -> dict:
    """The manifest without what differs between any two builds: when, how, which build."""
    volatile = ("created", "options", "build_id")
    out = {k: v for k, v in m.items() if k not in volatile}
    out["versions"] = [{k: v for k, v in version.items() if k not in volatile} for version in m["versions"]]
    return out


def test_runner_options():
    opts, cleanup = pipeline_options(["--direct_running_mode=in_memory"], "direct", 3)
    d = opts.get_all_options()
    assert d["runner"] == DIRECT_RUNNER and d["direct_running_mode"] == "in_memory"
    # a failed bundle's trace is the CLI's one line; the workers' own copies only with --verbose
    assert d["direct_num_workers"] == 3 and d["default_sdk_harness_log_level"] == ("ERROR" if verbose()
                                                                                  else "CRITICAL")
    cleanup()
    opts, cleanup = pipeline_options(["--default_sdk_harness_log_level=DEBUG"], "direct", 2)
    assert opts.get_all_options()["default_sdk_harness_log_level"] == "DEBUG"  # the user's choice wins
    cleanup()
    from apache_beam.runners.dask.dask_runner import DaskOptions

    opts, cleanup = pipeline_options([], "dask", 2, dask_address="tcp://127.0.0.1:1")
    d = opts.view_as(DaskOptions).get_all_options()
    assert d["runner"] == DASK_RUNNER and d["address"] == "tcp://127.0.0.1:1" and d["npartitions"] == 2
    cleanup()
    with pytest.raises(ValueError, match="--runner dask"):
        pipeline_options([], "direct", 2, dask_address="tcp://127.0.0.1:1")


@pytest.mark.slow
def test_direct_and_dask_build_byte_identical_datasets(corpus, direct, tmp_path):
    from distributed import LocalCluster

    direct_dir, direct = direct
    assert direct["totals"] == {"inputs": 24, "written": 20, "rejected": 4,
                                "inputs_equal_written_plus_rejected": True}
    with LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None) as cluster:
        address = cluster.scheduler_address
        dask = build(corpus, tmp_path / "dask", "--runner", "dask", "--dask_address", address)
    assert dask["options"]["runner"] == DASK_RUNNER
    assert comparable(dask) == comparable(direct)
    assert files(tmp_path / "dask") == files(direct_dir)  # shards and rejects, byte for byte
    assert len([n for n in files(tmp_path / "dask") if n.endswith(".tfrecord")]) == 3 + 1 + 1


def test_entries_spilled_in_runs_of_two_build_the_same_files(corpus, direct, tmp_path, monkeypatch):
    """Every runner but Dask hands entries from step to step in run files (`build_runs`): many small runs per
    read task, bucket and shard give the same dataset as one run each."""
    from pipelines.transforms import build_runs

    direct_dir, direct = direct
    monkeypatch.setattr(build_runs, "RUN_ENTRIES", 2)
    small = build(corpus, tmp_path / "small", "--workers", "1")
    assert comparable(small) == comparable(direct)
    assert files(tmp_path / "small") == files(direct_dir)


@pytest.mark.slow
def test_dask_runner_starts_its_own_local_cluster(corpus, direct, tmp_path):
    direct_dir, direct = direct
    dask = build(corpus, tmp_path / "dask", "--runner", "dask", "--workers", "2")
    assert comparable(dask) == comparable(direct)
    assert files(tmp_path / "dask") == files(direct_dir)
