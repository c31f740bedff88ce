"""The options of `ocr build-dataset`: its flags, and the defaults of those an --append keeps from the
dataset. Each default has one home: the split fractions `ocr_core.split.SplitPlan`, the image size
`ocr_core.preprocess.PreprocessSpec`, the charset `ocr_core.charset`."""
from __future__ import annotations

import argparse

from ocr_core.charset import DEFAULT_CHARACTERS
from ocr_core.dataset import Dataset
from ocr_core.errors import UsageError
from ocr_core.inputs import IMAGE_EXTENSIONS
from ocr_core.labels import OOV_POLICIES
from ocr_core.preprocess import PreprocessSpec
from ocr_core.split import SPLITS, SplitPlan
from pipelines.beam_options import add_runner_arguments, parse_job_args

# What a build uses when neither the command line nor (for --append) the dataset says.
DEFAULTS = {"val_fraction": SplitPlan.val_fraction, "test_fraction": SplitPlan.test_fraction,
            "only_split": SplitPlan.only, "charset": DEFAULT_CHARACTERS,
            "image_size": (PreprocessSpec.height, PreprocessSpec.width)}
KEPT_ON_APPEND = {"charset": "--charset", "image_size": "--image-size", "val_fraction": "--val-fraction",
                  "test_fraction": "--test-fraction", "only_split": "--split"}


class BuildError(UsageError):
    """The build cannot start (bad options, missing inputs, existing dataset)."""


def image_size(text: str) -> tuple[int, int]:
    """`--image-size HxW` -> (H, W): H a multiple of 16 in [16, 256], W a multiple of 4 in [16, 2048]."""
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not HxW (e.g. 32x128)") from None
    if not (16 <= h <= 256 and h % 16 == 0 and 16 <= w <= 2048 and w % 4 == 0):
        raise argparse.ArgumentTypeError(f"{text!r}: height must be a multiple of 16 in 16-256 and width a "
                                         "multiple of 4 in 16-2048")
    return h, w


def parse_args(argv):
    """(the job's options, the arguments for Beam's PipelineOptions)."""
    d = DEFAULTS
    parser = argparse.ArgumentParser(
        prog="ocr build-dataset", allow_abbrev=False,
        description="Beam: word images + labels -> validated, deduplicated, sharded TFRecords.",
        epilog="Other flags (e.g. --direct_running_mode, --temp_location) go to Beam's PipelineOptions.")
    parser.add_argument("--input", action="append", required=True, metavar="INPUT",
                        help="labels.tsv / labels.csv (path, label), an MJSynth annotation*.txt, a quoted "
                             "glob of images named <n>_<label>_<n>.<ext>, or a folder: every image in it "
                             "and in all its subfolders (recursive; by extension: "
                             f"{' '.join(IMAGE_EXTENSIONS)}), named like the glob's; repeatable")
    parser.add_argument("--output", required=True, metavar="DIR", help="dataset directory (local or gs://)")
    parser.add_argument("--val-fraction", type=float,
                        help=f"share of the val split (default {d['val_fraction']:g})")
    parser.add_argument("--test-fraction", type=float,
                        help=f"share of the test split (default {d['test_fraction']:g})")
    parser.add_argument("--shards", type=int, default=SplitPlan.train_shards,
                        help="train shards (val/test get a proportional share)")
    parser.add_argument("--split", choices=SPLITS, dest="only_split",
                        help="put every input into this one split instead of splitting by hash (a fixed "
                             "dev or test list, e.g. `--split val` for a dev set); --shards shards")
    parser.add_argument("--charset", help="the alphabet (default 0-9a-zA-Z)")
    parser.add_argument("--oov", choices=OOV_POLICIES, default=OOV_POLICIES[0],
                        help="labels with characters outside the charset: reject (default), lowercase then "
                             "re-check, or drop the unknown characters")
    parser.add_argument("--image-size", type=image_size, metavar="HxW",
                        help="stored image height x width: the input size of the config to train (default "
                             "{}x{}, every shipped config; e.g. 32x160 for a config with width 160)"
                             .format(*d["image_size"]))
    parser.add_argument("--for-config", metavar="NAME|PATH",
                        help="build for a model config's input contract: its image size (a dynamic-width "
                             "config, e.g. lines: height, width from the aspect ratio up to its maximum) and "
                             "its charset unless --charset is given")
    publishing = parser.add_mutually_exclusive_group()
    publishing.add_argument("--overwrite", action="store_true",
                            help="replace an existing dataset in --output")
    publishing.add_argument("--append", action="store_true",
                            help="add a version to the dataset in --output holding only the inputs no "
                                 "earlier version holds (each in the split a full build gives it); charset, "
                                 "image size and split options are the dataset's. Into an empty --output: "
                                 "its first version. Nothing new: nothing written (exit 0)")
    add_runner_arguments(parser)
    return parse_job_args(parser, argv)


def config_contract(args: argparse.Namespace):
    """The preprocessing contract of --for-config (None without it), its image size and charset filled in
    where not given; BuildError: an unknown config, or an --image-size that differs from the config's."""
    if not args.for_config:
        return None
    from ocr_core.config import load_config
    from ocr_core.preprocess import spec_for_model

    try:
        cfg = load_config(args.for_config)
    except (OSError, ValueError) as e:
        raise BuildError(f"--for-config {args.for_config}: {e}") from None
    spec = spec_for_model(cfg.model)
    if args.image_size is not None and tuple(args.image_size) != (spec.height, spec.width):
        raise BuildError(f"--image-size differs from --for-config {args.for_config}'s "
                         f"{spec.height}x{spec.width}; give one of them")
    args.image_size = (spec.height, spec.width)
    if args.charset is None:
        args.charset = cfg.charset
    return spec


def resolve_options(args: argparse.Namespace, current: Dataset | None) -> None:
    """Fills the options not given: from the dataset being appended to, else the defaults.

    Raises:
        BuildError: an --append option given that differs from the dataset's (its records could not be
            trained with the new ones, or would not land in the splits a full build gives them).
    """
    kept = {}
    if current is not None:
        options = current.manifest.get("options", {})
        kept = {"charset": current.charset, "image_size": current.image_shape,
                **{k: options.get(k, DEFAULTS[k]) for k in ("val_fraction", "test_fraction", "only_split")}}
        if kept["only_split"] is not None:  # the fractions mean nothing then
            kept.pop("val_fraction"), kept.pop("test_fraction")
    for key, default in DEFAULTS.items():
        given = getattr(args, key)
        if key in kept and given is not None and _tuple_or(given) != _tuple_or(kept[key]):
            shown = "x".join(map(str, kept[key])) if key == "image_size" else kept[key]
            flag = KEPT_ON_APPEND[key]
            raise BuildError(f"{flag} differs from the dataset's ({shown!r}); an --append keeps the "
                             f"dataset's: omit {flag}, or rebuild with --overwrite")
        if given is None:
            setattr(args, key, _tuple_or(kept.get(key, default)))


def _tuple_or(value):
    return tuple(value) if isinstance(value, list) else value
