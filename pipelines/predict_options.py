"""The options of `ocr predict`: its flags (defaults from the dataclasses that own them: `Decoding` and
`Batching` of `pipelines.transforms.recognise`, `ROWS_PER_FILE` of the table writer), the checks that run
before anything else, and the --lexicon file."""
from __future__ import annotations

import argparse
import os
import sys

from apache_beam.io.filesystems import FileSystems

from ocr_core.bundle import INT8_ONNX_FILE, ONNX_FILE
from ocr_core.charset import Charset
from ocr_core.engine import ENGINES
from ocr_core.errors import UsageError
from ocr_core.inputs import IMAGE_EXTENSIONS
from ocr_core.lexicon import DEFAULT_MAX_DISTANCE, Lexicon, LexiconError
from ocr_core.predictions import SUCCESS
from ocr_core.publish import check_output_dir
from ocr_core.split import SPLITS
from pipelines.beam_options import (
    DASK_RUNNER,
    DIRECT_RUNNER,
    add_runner_arguments,
    parse_job_args,
    runner_name,
)
from pipelines.transforms.recognise import Batching, Decoding
from pipelines.transforms.write import ROWS_PER_FILE

DESCRIPTION = """Beam recognition: images (glob, folder, manifest or dataset) -> Parquet, one row each.

Unreadable inputs become rows with `error` set and `text` null; the job still succeeds. The table is staged
and published with `_SUCCESS.json` last, so a failed run never leaves a table that looks complete.
`--watch GLOB` keeps running instead: every `--window`, the files that landed are recognised into
OUT/window=<start>/, each window committed by its own _SUCCESS.json."""


class PredictError(UsageError):
    """The job cannot start (bad model, bad input, bad options)."""


def parse_args(argv):
    """(the job's options, the arguments for Beam's PipelineOptions)."""
    p = argparse.ArgumentParser(prog="ocr predict", description=DESCRIPTION,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=None,
                   help="model bundle directory (default: the shipped model), or pp-ocrv6: PP-OCRv6 small "
                        "from the rapidocr wheel (Apache-2.0; colour, 48 px high, any width; 18,709 "
                        "characters; ~10x slower than the shipped model)")
    p.add_argument("--input",
                   help="image glob ('crops/*.png': every file it matches), image folder (every file named "
                        f"{'|'.join(IMAGE_EXTENSIONS)} in it and its subfolders, any case), manifest "
                        "(.tsv/.csv/annotation.txt) or dataset directory (labels go to the `label` column); "
                        "expanded inside the pipeline")
    p.add_argument("--output", required=True, help="output directory of the Parquet table (replaced)")
    p.add_argument("--split", default="auto", choices=("auto", "all", *SPLITS),
                   help="dataset input: which split (auto: test, else val, else train)")
    p.add_argument("--decoder", choices=["greedy", "beam"], default=Decoding.decoder)
    p.add_argument("--beam-width", type=int, default=Decoding.beam_width)
    p.add_argument("--top-k", type=int, default=Decoding.top_k, help="beam search candidates kept per word")
    p.add_argument("--lexicon", default=None, metavar="FILE",
                   help="word list (UTF-8, one word per line): each text becomes the word of this list that "
                        "the model's CTC output supports best, matched ignoring case and spelled as listed "
                        "(the unconstrained text stays in `candidates`)")
    p.add_argument("--lexicon-distance", type=int, default=DEFAULT_MAX_DISTANCE,
                   help="with --lexicon: score the words within this many edits of the unconstrained text "
                        "(the 64 nearest words when fewer are that close)")
    p.add_argument("--lexicon-case-sensitive", action="store_true",
                   help="with --lexicon: match case as well (default: case-insensitive)")
    p.add_argument("--batch-size", type=int, default=Batching.batch_size, help="largest inference batch")
    p.add_argument("--progress-seconds", type=float, default=30, metavar="S",
                   help="each worker prints its rows so far and their rate every S seconds (0: never; "
                        "default %(default)s)")
    p.add_argument("--shards", type=int, default=0,
                   help="Parquet part files (default 0: one per --rows-per-file rows, counted in the "
                        "pipeline)")
    p.add_argument("--rows-per-file", type=int, default=ROWS_PER_FILE,
                   help="rows per Parquet part file when --shards is 0 (default %(default)s, ~10 MB)")
    p.add_argument("--engine", choices=["auto", *ENGINES], default="auto",
                   help=f"tf: model.keras in TensorFlow; onnx: the bundle's {ONNX_FILE} in ONNX Runtime (no "
                        f"TensorFlow in the workers); onnx-int8: its {INT8_ONNX_FILE} the same way (int8 "
                        "convolutions, ~1.5x faster forward pass, a few tenths of a point less accurate; "
                        "`ocr export --quantize` writes it); auto: onnx when the bundle has a "
                        f"{ONNX_FILE} converted from its model.keras and onnxruntime is installed, else tf")
    p.add_argument("--read-once", "--no-straighten", dest="no_straighten", action="store_true",
                   help="read every crop once, as it is (over 3 times as tall as wide: refused): a "
                        "text-line model otherwise reads a doubtful crop again from other pictures of it "
                        "and keeps the most confident reading: a crop at least 1.5 times as tall as wide "
                        "turned a quarter either way, a square-ish one straightened (a word turned or sloped "
                        "in its box), any other with light and dark swapped, a loose margin or cut tighter "
                        "(docs/lines.md); that costs ~2-4x the time on incidental-scene crops like "
                        "ICDAR 2015's")
    p.add_argument("--threads", "--tf-threads", dest="threads", type=int, default=0,
                   help="intra-op threads per worker (0: for onnx the cores divided by --workers, at least "
                        "1; for tf TensorFlow's default)")
    w = p.add_argument_group("watch mode (instead of --input): recognise files as they land")
    w.add_argument("--watch", metavar="GLOB|DIR",
                   help="keep running; every --window, recognise the files of GLOB (or the images of DIR and "
                        "its subfolders) that landed since, into OUT/window=<start>/ with its own "
                        f"{SUCCESS}; each file once, also across restarts on the same OUT. A file has landed "
                        "when its size and mtime are the same on two polls: producers write to a name GLOB "
                        "does not match and rename it (see README)")
    w.add_argument("--window", default="30s", help="how often a window is committed (default %(default)s)")
    w.add_argument("--idle-timeout", default=None,
                   help="end (exit 0) after this long without a new file (default: run until stopped; "
                        "SIGTERM ends after the running window)")
    w.add_argument("--poll", default="2s", help="how often GLOB is listed (default %(default)s)")
    w.add_argument("--model-watch", metavar="GLOB",
                   help="model bundle directories (e.g. 'models/*'): a bundle whose model.keras appears or "
                        "changes after the start replaces the model at the next window; the `model` column "
                        "names the one that made each row")
    add_runner_arguments(p)
    return parse_job_args(p, argv)


def check_args(args) -> None:
    """Refuses option values that cannot work, before a model loads or a pipeline starts (one line)."""
    if args.beam_width < 1 or args.top_k < 1 or args.top_k > args.beam_width:
        raise PredictError("need 1 <= --top-k <= --beam-width")
    if args.batch_size < 1:
        raise PredictError("--batch-size must be >= 1")
    if args.shards < 0 or args.rows_per_file < 1:
        raise PredictError("need --shards >= 0 and --rows-per-file >= 1")
    if args.lexicon_distance < 0:
        raise PredictError("--lexicon-distance must be >= 0")
    if (args.input is None) == (args.watch is None):
        raise PredictError("give --input (a batch job) or --watch (keep recognising new files), not both")
    if args.model_watch and not args.watch:
        raise PredictError("--model-watch needs --watch")
    check_output_dir(absolute(args.output))


def decoding_of(args, lexicon: Lexicon | None) -> Decoding:
    """How the job decodes, from its flags."""
    return Decoding(args.decoder, args.beam_width, args.top_k, lexicon, args.lexicon_distance)


def on_dask(args) -> bool:
    return runner_name(args.runner) == DASK_RUNNER


def on_direct(args) -> bool:
    return runner_name(args.runner) == DIRECT_RUNNER


def absolute(path: str) -> str:
    return path if "://" in path else os.path.abspath(path)


def read_lexicon_text(path: str) -> str:
    """The text of a --lexicon file (any Beam filesystem), checked before the model loads."""
    if not FileSystems.exists(path):
        raise PredictError(f"--lexicon {path}: no such file")
    try:
        with FileSystems.open(path) as fh:
            return fh.read().decode("utf-8")
    except UnicodeDecodeError as e:
        raise PredictError(f"--lexicon {path}: not UTF-8 text (byte {e.start}); save it as UTF-8") from None
    except OSError as e:
        raise PredictError(f"--lexicon {path}: cannot be read ({e})") from None


def model_lexicon(args, lexicon_text: str | None, model) -> Lexicon | None:
    """The --lexicon for a model's charset and CTC time steps (None without --lexicon); words it cannot spell
    or emit, and a size that makes matching slow, are reported once, on stderr."""
    if lexicon_text is None:
        return None
    try:
        lexicon = Lexicon.parse(lexicon_text, Charset(model.characters), args.lexicon_case_sensitive,
                                model.time_steps)
    except LexiconError as e:
        raise PredictError(f"--lexicon {args.lexicon}: {e}") from None
    for note in lexicon.notes():
        print(f"ocr predict: note: --lexicon {args.lexicon}: {note}", file=sys.stderr)
    return lexicon
