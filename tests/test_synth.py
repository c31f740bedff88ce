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
