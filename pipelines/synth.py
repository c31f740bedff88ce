"""`ocr synth`: N synthetic MJSynth-like word images and their labels, offline; the same seed writes the same
bytes on any number of workers. `--fonts heldout` renders with font families kept out of training."""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

from ocr_core import synth
from pipelines.flags import positive_int


def parse_args(argv):
    p = argparse.ArgumentParser(prog="ocr synth", description=__doc__)
    p.add_argument("--out", required=True, help="dataset directory to write")
    p.add_argument("--count", required=True, type=int, help="number of images")
    p.add_argument("--seed", type=int, default=0, help="dataset seed (>= 0); image i depends on (seed, i)")
    p.add_argument("--layout", choices=synth.LAYOUTS, default="tsv",
                   help="tsv: images/NNN/NNNNNNN.jpg + labels.tsv; mjsynth: A/B/<i>_<Label>_<lex>.jpg + "
                        "annotation.txt (default: tsv)")
    p.add_argument("--workers", type=positive_int, default=os.cpu_count() or 1,
                   help="processes (default: one per CPU core); the output does not depend on it")
    p.add_argument("--fonts", choices=synth.FONT_SPLITS, default="train",
                   help="font split: train, heldout (families never used for training data) or all")
    p.add_argument("--font-dir", help="another directory of .ttf/.otf fonts besides the system ones")
    p.add_argument("--words", default=synth.DEFAULT_WORDS, help="dictionary, one word a line")
    p.add_argument("--format", choices=synth.IMAGE_FORMATS, default="jpg", help="image format (default: jpg)")
    p.add_argument("--version", type=int, choices=synth.SYNTH_VERSIONS, default=synth.SYNTH_VERSION,
                   help="generator version (default %(default)s: natural backgrounds, signage looks, "
                        "detector-like crops); 2 reproduces the pinned held-out benchmark images")
    p.add_argument("--backgrounds", action="append", metavar="DIR",
                   help="(version 3) folders of background pictures, repeatable (default: Debian's "
                        "/usr/share/backgrounds and /usr/share/wallpapers; `make synth-assets` installs "
                        "them)")
    p.add_argument("--lines", action="store_true",
                   help="text lines of 2-7 words, numbers and punctuation (all labelled, up to 80 "
                        "characters) instead of words, for a dynamic-width model (docs/lines.md); tsv "
                        "layout only")
    p.add_argument("--for-config", metavar="NAME|PATH",
                   help="label for a model config's charset (e.g. lines): the punctuation it has is labelled "
                        "as drawn (versions 4-5 draw marks around words), the rest is drawn and left out; "
                        "with $ %% # @ or + in it, 12 %% of the words, signs and line tokens are prices "
                        "($4.99), percentages, #numbers, @handles or +phone numbers. Without it: labels of "
                        "letters and digits only (lines: with the space and LINE_CHARACTERS' punctuation)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.add_argument("--overwrite", action="store_true", help="replace a dataset already in --out")
    return p.parse_args(argv)


def run(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    existing = synth.existing_dataset(args.out)
    if existing and not args.overwrite:  # before the font search, which takes seconds
        print(f"ocr synth: {existing} exists; pass --overwrite to replace the dataset", file=sys.stderr)
        return 2
    marks = ""
    if args.for_config:
        from ocr_core.config import load_config

        try:
            charset = load_config(args.for_config).charset
        except (OSError, ValueError) as e:
            print(f"ocr synth: --for-config {args.for_config}: {e}", file=sys.stderr)
            return 2
        marks = "".join(c for c in charset if not (c.isalnum() or c.isspace()))
    start = time.perf_counter()
    try:
        synth.fonts(args.fonts, args.font_dir)  # cached for generate: timed apart from the rendering
        found = time.perf_counter()
        labels = synth.generate(
            args.out, args.count, seed=args.seed, layout=args.layout, workers=args.workers,
            font_split=args.fonts, progress=not args.no_progress, image_format=args.format,
            font_dir=args.font_dir, words_path=args.words, overwrite=args.overwrite, version=args.version,
            background_dirs=tuple(args.backgrounds or synth.BACKGROUND_DIRS), lines=args.lines,
            marks=marks)
    except FileExistsError as e:
        print(f"ocr synth: {e}; pass --overwrite to replace it", file=sys.stderr)
        return 2
    except (ValueError, FileNotFoundError) as e:
        print(f"ocr synth: {e}", file=sys.stderr)
        return 2
    end = time.perf_counter()
    meta = json.loads((labels.parent / "synth.json").read_text())
    families = {f["family"] for f in meta["fonts"]}
    seconds = max(end - found, 1e-9)
    print(f"ocr synth: {args.count} images -> {labels} in {seconds:.1f} s "
          f"({args.count / seconds:.0f} images/s, {args.workers} workers); "
          f"fonts: {args.fonts} split, {len(meta['fonts'])} files, "
          f"{len(families)} families, {len(meta['font_usage'])} used (found in {found - start:.1f} s); "
          f"version {meta['synth_version']}, {len(meta['backgrounds'])} background pictures")
    return 0


if __name__ == "__main__":
    sys.exit(run())
