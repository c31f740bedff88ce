"""`ocr inspect DIR`: a built dataset's manifest summary and a few decoded records, drawn in ASCII.

TensorFlow-free: records are read with `ocr_core.records.iter_tfrecords` (which checks their CRCs) and
`WordRecord.decode`. Every record of the dataset is then checked (CRCs, decode, label ids against the
manifest charset, counts per shard); `--quick` checks only the shown ones. A corrupt record exits 2.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from itertools import islice

import numpy as np

from ocr_core import fs
from ocr_core.charset import Charset
from ocr_core.dataset import Dataset, DatasetError
from ocr_core.errors import UsageError
from ocr_core.publish import check_output_dir
from ocr_core.records import RecordError, WordRecord, check_label, iter_tfrecords

RAMP = "@%#*+=-:. "  # dark -> light: ink is dense, paper is blank


def ascii_art(image: np.ndarray, content_width: int | None = None, cols: int = 64, rows: int = 12) -> str:
    """A small text rendering of a uint8 gray image (dark pixels -> dense characters)."""
    img = image[:, : content_width or image.shape[1]].astype(np.float32)
    h, w = img.shape
    cols = max(1, min(cols, w))
    ys = (np.arange(rows + 1) * h / rows).astype(int)
    xs = (np.arange(cols + 1) * w / cols).astype(int)
    lines = []
    for r in range(rows):
        y0, y1 = ys[r], max(ys[r + 1], ys[r] + 1)
        cells = [img[y0:y1, xs[c]:max(xs[c + 1], xs[c] + 1)].mean() for c in range(cols)]
        lines.append("".join(RAMP[min(len(RAMP) - 1, int(v / 256 * len(RAMP)))] for v in cells).rstrip())
    return "\n".join(lines)


def summary_lines(dataset: Dataset) -> list[str]:
    manifest = dataset.manifest
    t = manifest.get("totals", {})
    h, w = dataset.image_shape
    lines = [f"schema_version {manifest['schema_version']}, ocr {manifest.get('ocr_version')}, "
             f"created {manifest.get('created')}",
             f"image {h}x{w} uint8 gray, max {manifest.get('max_time_steps')} CTC time steps",
             f"charset ({len(dataset.charset)}): {dataset.charset}",
             f"inputs {t.get('inputs')}  written {t.get('written')}  rejected {t.get('rejected')}"]
    for split, n in dataset.counts.items():
        shards = [s for s in manifest["shards"] if s["split"] == split]
        lines.append(f"  {split:<6} {n:>9} records in {len(shards)} shards")
    for reason, n in manifest.get("rejects", {}).items():
        lines.append(f"  rejected {reason:<16} {n:>7}")
    for inp in manifest.get("inputs", []):
        lines.append(f"  input {inp['input']} ({inp['kind']}): {inp['entries']} entries")
    versions = dataset.versions
    if len(versions) > 1:
        lines.append(f"{len(versions)} versions:")
        for v in versions:
            t = v["totals"]
            lines.append(f"  version {v['version']} ({v['created']}): {t['written']} written, "
                         f"{t['rejected']} rejected, {t['inputs']} inputs")
    return lines


def iter_records(dataset: Dataset, split: str):
    """Decoded WordRecords of a split (every version), shard by shard; RecordError for a corrupt or
    mis-encoded record."""
    charset = Charset(dataset.charset)
    for path in dataset.shards(split):
        with fs.open_binary(path) as fh:
            for data in iter_tfrecords(fh, path):
                record = WordRecord.decode(data)
                check_label(record, charset, path)
                yield record


class InspectError(UsageError):
    """The dataset cannot be read as asked, or a record in it is corrupt (one line, exit 2)."""


def run(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="ocr inspect", description=__doc__.split("\n")[0])
    parser.add_argument("dataset", metavar="DIR", help="dataset directory (holding manifest.json)")
    parser.add_argument("-n", "--num", type=int, default=5, help="records to show (default %(default)s)")
    parser.add_argument("--split", default="train", help="split to show records from (default %(default)s)")
    parser.add_argument("--save-png", metavar="OUT_DIR", help="also write the shown records as <id>.png")
    parser.add_argument("--json", action="store_true", help="print the whole manifest as JSON")
    parser.add_argument("--quick", action="store_true",
                        help="check only the shown records, not every record of every shard")
    args = parser.parse_args(argv)

    try:
        dataset = Dataset.load(args.dataset)
    except DatasetError as e:
        raise InspectError(str(e)) from None
    if args.json:
        print(json.dumps(dataset.manifest, indent=2, ensure_ascii=False))
    else:
        print("\n".join([f"dataset {args.dataset}"] + summary_lines(dataset)))
    if args.split not in dataset.counts:
        raise InspectError(f"no split {args.split!r}; the dataset has {', '.join(dataset.counts)}")
    if args.save_png:
        check_output_dir(args.save_png, "--save-png")
        os.makedirs(args.save_png, exist_ok=True)
    shown = 0
    try:
        for rec in islice(iter_records(dataset, args.split), max(0, args.num)):
            print(f"\nid {rec.id}  label {rec.text!r}  content width {rec.content_width}  "
                  f"source {rec.source}")
            print(ascii_art(rec.image, rec.content_width))
            shown += 1
            if args.save_png:
                import cv2

                cv2.imwrite(os.path.join(args.save_png, f"{rec.id}.png"), rec.image)
        if args.quick:
            print(f"\nchecked the {shown} shown records only (--quick); the other "
                  f"{sum(dataset.counts.values()) - shown} were not read")
            return 0
        n_records, n_shards = dataset.verify_records("all")
    except (RecordError, DatasetError) as e:
        raise InspectError(str(e)) from None
    print(f"\nchecked all {n_records} records in {n_shards} shards: CRCs, labels and counts intact")
    return 0


if __name__ == "__main__":
    sys.exit(run())
