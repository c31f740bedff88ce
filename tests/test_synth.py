"""`ocr synth` (pipelines/synth.py) end to end: writes, refuses to overwrite, replaces with --overwrite."""
from __future__ import annotations

from pipelines import cli


def test_cli_end_to_end(tmp_path, capsys):
    out = tmp_path / "cli"
    args = ["synth", "--out", str(out), "--count", "30", "--seed", "5", "--workers", "1", "--no-progress"]
    assert cli.main(args) == 0
    summary = capsys.readouterr().out
    assert "30 images" in summary and "images/s" in summary
    assert len((out / "labels.tsv").read_text().splitlines()) == 30

    assert cli.main(args) == 2  # refuses to write over a dataset
    assert "--overwrite" in capsys.readouterr().err

    assert cli.main(args[:4] + ["10", "--layout", "mjsynth", "--workers", "1", "--no-progress",
                                "--overwrite"]) == 0
    assert not (out / "labels.tsv").exists() and not (out / "images").exists()
    assert len((out / "annotation.txt").read_text().splitlines()) == 10


def test_for_config_labels_the_marks_of_that_charset(tmp_path, capsys):
    """`ocr synth --for-config lines`: the labels carry the marks of configs/lines.yaml's charset ($, %, ...),
    synth.json records them, and `ocr build-dataset --for-config lines` takes every image; an unknown config
    is a one-line error that writes nothing."""
    import json

    from ocr_core.config import load_config
    from pipelines import build_dataset

    out = tmp_path / "marks"
    args = ["synth", "--out", str(out), "--count", "60", "--seed", "3", "--version", "4", "--workers", "1",
            "--no-progress"]
    assert cli.main(args + ["--for-config", "lines"]) == 0
    labels = [line.split("\t")[1] for line in (out / "labels.tsv").read_text().splitlines()]
    charset = load_config("lines").charset
    assert all(set(t) <= set(charset) for t in labels)
    assert any(c in "$%#@+" for t in labels for c in t), labels
    assert json.loads((out / "synth.json").read_text())["marks"] == "".join(
        c for c in charset if not (c.isalnum() or c == " "))
    ds = tmp_path / "ds"
    build_dataset.run(["--input", str(out / "labels.tsv"), "--output", str(ds), "--for-config", "lines",
                       "--val-fraction", "0", "--shards", "1", "--workers", "1"])
    assert json.loads((ds / "manifest.json").read_text())["totals"]["written"] == 60

    capsys.readouterr()
    assert cli.main(args[:2] + [str(tmp_path / "bad")] + args[3:] + ["--for-config", "nosuch"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("ocr synth: --for-config nosuch") and "\n" not in err
    assert not (tmp_path / "bad").exists()
