"""`ocr augment`: labelled crops -> new views of each (turned up to 40 degrees, foreshortened, boxed looser
or tighter, as a text detector boxes a turned word), same labels, as a manifest `ocr build-dataset` reads.

    ocr augment --input shared/realwords/ic15_train/train.tsv --out views --views 4
    ocr build-dataset --input views/labels.tsv --output ds-views --for-config lines

Real crops are few and mostly level; this multiplies them into the turned words incidental photographs hold
(ocr_core/synth/tilt.py). Every input is accounted for: a view is written per crop and view, and a crop that
cannot be read, has a malformed line or is under 8 px on a side is listed in skipped.tsv with the reason.
The same seed writes the same files; view i of the j-th input depends only on (seed, j, i).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys

import cv2

from ocr_core import fs
from ocr_core.errors import InputError, UsageError
from ocr_core.image_bytes import read_image_bytes
from ocr_core.inputs import Reject, read_input, resolve_inputs
from ocr_core.preprocess import decode_bgr
from ocr_core.synth import tilt
from pipelines.flags import positive_int

LABELS, SKIPPED, META = "labels.tsv", "skipped.tsv", "augment.json"
PER_FOLDER = 1000  # crops per images/NNN folder


def parse_args(argv):
    p = argparse.ArgumentParser(prog="ocr augment", description=__doc__.split("\n\n")[0])
    p.add_argument("--input", action="append", required=True,
                   help="labelled crops, as `ocr build-dataset --input` takes them (repeatable)")
    p.add_argument("--out", required=True, help="folder to write: images/, labels.tsv, skipped.tsv")
    p.add_argument("--views", type=positive_int, default=4, help="new views per crop (default %(default)s)")
    p.add_argument("--max-angle", type=float, default=tilt.MAX_ANGLE,
                   help="largest turn in degrees, either way (default %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seed (>= 0)")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier augment output in --out")
    return p.parse_args(argv)


def check_out(out: str, overwrite: bool) -> None:
    """Refuses an --out that is a file, or holds an earlier output without --overwrite (then clears it)."""
    if os.path.exists(out) and not os.path.isdir(out):
        raise UsageError(f"--out {out}: is a file, not a folder")
    ours = [n for n in (LABELS, SKIPPED, META, "images") if os.path.exists(os.path.join(out, n))]
    if ours and not overwrite:
        raise UsageError(f"--out {out}: holds {ours[0]} already; pass --overwrite to replace it")
    for name in ours:
        path = os.path.join(out, name)
        shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)


def crop_views(entry, args, index: int) -> tuple[list, tuple[str, str] | None]:
    """(the views of one Entry, None), or ([], (reason, detail)) when it cannot be read or is too small."""
    try:
        image = decode_bgr(read_image_bytes(entry.source))
    except InputError as e:
        return [], (e.reason, e.detail)
    h, w = image.shape[:2]
    if min(h, w) < tilt.MIN_SIDE:
        return [], ("too_small", f"{w}x{h} px, under {tilt.MIN_SIDE} px on a side")
    return tilt.views(image, args.views, args.seed, index, args.max_angle), None


def run(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.seed < 0:
        raise UsageError(f"--seed must be >= 0, got {args.seed}")
    if not 0 <= args.max_angle <= 90:
        raise UsageError(f"--max-angle must be within 0..90 degrees, got {args.max_angle}")
    specs = resolve_inputs(args.input)
    check_out(args.out, args.overwrite)
    os.makedirs(args.out, exist_ok=True)
    labels, skipped = [], []
    index = 0
    for spec in specs:
        for item in read_input(spec):
            index += 1
            if isinstance(item, Reject):
                skipped.append((item.origin, item.reason, item.detail))
                continue
            views, why = crop_views(item, args, index - 1)
            if why:
                skipped.append((item.origin, *why))
                continue
            folder = f"images/{(index - 1) // PER_FOLDER:03d}"
            os.makedirs(os.path.join(args.out, folder), exist_ok=True)
            for i, view in enumerate(views):
                name = f"{folder}/{index - 1:07d}_{i}.jpg"
                if not cv2.imwrite(os.path.join(args.out, name), view, [cv2.IMWRITE_JPEG_QUALITY, 92]):
                    raise OSError(f"could not write {name} in {args.out}")
                labels.append(f"{name}\t{item.label}")
    write(args.out, SKIPPED, [f"{o}\t{r}\t{' '.join(d.split())}" for o, r, d in skipped])
    meta = {"inputs": args.input, "views": args.views, "max_angle": args.max_angle, "seed": args.seed,
            "crops": index, "viewed": index - len(skipped), "skipped": len(skipped), "images": len(labels)}
    write(args.out, META, [json.dumps(meta, indent=1)])
    write(args.out, LABELS, labels)  # last: its presence says the output is complete
    print(f"ocr augment: {index} crops -> {len(labels)} views in {os.path.join(args.out, LABELS)}; "
          f"{len(skipped)} skipped" + (f" (see {os.path.join(args.out, SKIPPED)})" if skipped else ""))
    return 0


def write(out: str, name: str, lines: list[str]) -> None:
    """One output file of `lines`, written under a temporary name and renamed."""
    fs.write_atomically(os.path.join(out, name), "".join(line + "\n" for line in lines))


if __name__ == "__main__":
    sys.exit(run())
