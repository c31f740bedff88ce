"""The `ocr` command: one subcommand per job; each job module exposes `run(argv=None)` (a Beam job returns its
PipelineResult). Jobs raise; this module alone maps errors and results to messages and exit codes."""
from __future__ import annotations

import importlib
import os
import sys
import traceback

# Preprocessing does many tiny matrix products; OpenBLAS' thread pool makes each ~10x slower on a busy
# machine (measured), and Beam/Dask already run one worker process per core. Set before numpy loads.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
# TensorFlow's C++ INFO lines (CPU feature notices, once per process and Beam worker); warnings still show.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")

COMMANDS = {
    "synth": ("pipelines.synth", "generate synthetic word images (offline, MJSynth-like)"),
    "build-dataset": ("pipelines.build_dataset", "Beam: images + labels -> validated, sharded TFRecords"),
    "inspect": ("pipelines.inspect_dataset", "summarise a built dataset and show a few records"),
    "train": ("pipelines.train", "train a CRNN on a built dataset -> model bundle"),
    "export": ("pipelines.export", "add model.onnx (for `ocr predict --engine onnx`) to a model bundle"),
    "predict": ("pipelines.predict", "Beam: batch recognition of images -> Parquet"),
    "augment": ("pipelines.augment", "labelled crops -> turned, foreshortened, re-boxed views + labels.tsv"),
    "label": ("pipelines.label", "Beam: unlabelled crops -> labels.tsv (confident) + review.tsv (to check)"),
    "evaluate": ("pipelines.evaluate", "score predictions against labels, with an HTML report"),
    "demo": ("pipelines.demo", "synth -> build-dataset -> fine-tune shipped -> predict (both) -> evaluate"),
}


def usage() -> str:
    lines = ["usage: ocr [--verbose] COMMAND [options]   (ocr COMMAND --help for a command's options)", "",
             "  --verbose      keep the known start-up noise of Beam workers, TensorFlow and libpng",
             "                 (also OCR_VERBOSE=1)", "", "commands:"]
    lines += [f"  {name:<14} {desc}" for name, (_, desc) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    verbose = "--verbose" in argv or os.environ.get("OCR_VERBOSE", "") not in ("", "0")
    argv = [a for a in argv if a != "--verbose"]
    if verbose:
        os.environ["OCR_VERBOSE"] = "1"  # for the jobs' Beam workers (pipelines/beam_options.py)
    else:
        from pipelines.quiet import filter_stderr

        filter_stderr()
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    if argv[0] not in COMMANDS:
        print(f"ocr: unknown command {argv[0]!r}\n\n{usage()}", file=sys.stderr)
        return 2
    return run_command(argv[0], argv[1:], verbose)


def run_command(command: str, argv: list[str], verbose: bool = False) -> int:
    """Runs one job and maps how it ended to the exit code: the only place that does.

    A user mistake (`UsageError`: bad option, missing input, an output that is a file) is one line and exit
    2; a job that failed (`JobFailed`, a dead worker, a bug in a worker) is one short line naming the input
    and the cause and exit 1, with the full trace only when `verbose`; argparse's own errors keep theirs.
    """
    from ocr_core.errors import UsageError, failure_message

    module = importlib.import_module(COMMANDS[command][0])
    try:
        result = module.run(argv)
    except UsageError as e:
        print(f"ocr {command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"ocr {command}: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - every failure of a job ends here, as one line
        if verbose:
            traceback.print_exc()
        hint = "" if verbose else " (ocr --verbose shows the trace)"
        print(f"ocr {command}: error: {failure_message(e)}{hint}", file=sys.stderr)
        return 1
    return exit_code(result)


def exit_code(result) -> int:
    """A job's return value as the process's exit code: an int as it is; a Beam job's PipelineResult 0 when
    its pipeline finished (DONE), 1 otherwise; nothing (a job without a pipeline to report) 0."""
    if isinstance(result, int):
        return result
    state = getattr(result, "state", None)
    if state is None:
        return 0
    from apache_beam.runners.runner import PipelineState

    return 0 if state == PipelineState.DONE else 1


if __name__ == "__main__":
    sys.exit(main())
