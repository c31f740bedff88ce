"""`pipelines.flags`: count flags such as `--workers` refuse 0 and negatives at parse time, in every job."""
import argparse

import pytest

from pipelines import demo, synth
from pipelines.beam_options import add_runner_arguments
from pipelines.flags import positive_int


def test_positive_int():
    assert positive_int("1") == 1 and positive_int("16") == 16
    for bad in ("0", "-2", "two", "1.5"):
        with pytest.raises(argparse.ArgumentTypeError, match=f"must be an integer >= 1, got '{bad}'"):
            positive_int(bad)


def beam_job_args(argv):
    parser = argparse.ArgumentParser(prog="ocr build-dataset")
    add_runner_arguments(parser)
    return parser.parse_args(argv)


@pytest.mark.parametrize("prog, parse, required", [
    ("ocr synth", synth.parse_args, ["--out", "x", "--count", "3"]),
    ("ocr demo", demo.parse_args, []),
    ("ocr build-dataset", beam_job_args, []),  # build-dataset and predict share the runner flags
])
def test_workers_0_is_a_usage_error_everywhere(prog, parse, required, capsys):
    assert parse([*required, "--workers", "2"]).workers == 2
    with pytest.raises(SystemExit) as e:
        parse([*required, "--workers", "0"])
    assert e.value.code == 2
    assert f"{prog}: error: argument --workers: must be an integer >= 1, got '0'" in capsys.readouterr().err
