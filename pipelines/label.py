"""`ocr label`: unlabelled crops -> a manifest `ocr build-dataset` reads, and the crops a person should check.

    ocr label --input CROPS --output DIR/labels.tsv [--model pp-ocrv6] [--min-confidence 0.9]

CROPS is anything `ocr predict --input` takes. The recognition is an `ocr predict` Beam job (same runners,
engines and flags; the model defaults to PP-OCRv6) into a table staged under DIR; then:

- `DIR/labels.tsv` (the --output): `path<TAB>label` for every crop read with confidence >= --min-confidence,
  sorted by path: a manifest for `ocr build-dataset --input DIR/labels.tsv`;
- `DIR/review.tsv`: the other crops, least confident first, also as a manifest whose label is the model's
  reading, each line after a `# confidence ...` comment (manifests skip comment lines). A person corrects the
  labels (or deletes lines), then adds them with `ocr build-dataset --input DIR/review.tsv --append`. Crops
  that could not be read (corrupt, missing) are listed at its end as comments with their error.

With `--check-labels` the crops come with labels (a manifest or a dataset) and the model checks them instead
of inventing them: a crop whose label the model also reads (scene-text protocol: lowercase alphanumerics) goes
to labels.tsv with its own label, any other to review.tsv with its label and, in the comment, what the model
read. That is the teacher data filtering of PP-OCRv4 (drop the synthetic images the teacher cannot read) and a
way to find wrong labels in your own data.

Both files are written under temporary names and renamed when complete, review first, labels last.
"""
from __future__ import annotations

import argparse
import posixpath
import sys
import uuid

from ocr_core import fs
from ocr_core.engine import PPOCR
from ocr_core.errors import UsageError
from ocr_core.metrics import scene_text_normalize
from ocr_core.predictions import read_table

REVIEW = "review.tsv"


class LabelError(UsageError):
    """A usage mistake of `ocr label` (one line, exit 2)."""


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="ocr label", description=__doc__.split("\n\n")[0],
        epilog="Other flags (--runner, --workers, --engine, --batch-size, --decoder, Beam options) are "
               "`ocr predict`'s.")
    p.add_argument("--input", required=True,
                   help="unlabelled crops: a glob, a folder, a manifest or a dataset (as `ocr predict`)")
    p.add_argument("--output", required=True, metavar="DIR/labels.tsv",
                   help="the manifest of confident labels; DIR/review.tsv is written beside it")
    p.add_argument("--model", default=PPOCR,
                   help="pp-ocrv6 (default: PP-OCRv6 small, from the rapidocr wheel) or a model bundle")
    p.add_argument("--min-confidence", type=float, default=0.9,
                   help="crops read with at least this confidence (best-path probability) are labelled; the "
                        "others go to review (default %(default)s)")
    p.add_argument("--check-labels", action="store_true",
                   help="the input carries labels: keep the crops whose label the model also reads "
                        "(lowercase alphanumerics), with their own labels; send the others to review "
                        "(--min-confidence is not used)")
    p.add_argument("--overwrite", action="store_true", help="replace existing labels.tsv / review.tsv")
    return p.parse_known_args(argv)


def one_line(text: str) -> str:
    """A label as one TSV field: runs of whitespace (tabs, line breaks) become one space, ends trimmed."""
    return " ".join(text.split())


def agrees(label: str | None, text: str) -> bool:
    """The model's reading matches the given label under the scene-text protocol (and the label is not
    empty once normalised)."""
    return label is not None and scene_text_normalize(label) != "" and \
        scene_text_normalize(label) == scene_text_normalize(text)


def split_rows(rows: list[dict], min_confidence: float, check: bool = False) -> tuple[list, list, list]:
    """(labelled (path, label), to review (path, label, confidence, note) least confident first, errors
    (path, error)) of a predictions table's rows. Without `check` the label is the model's reading, kept at
    `min_confidence`; with it, the row's own label, kept when the reading agrees."""
    labelled, review, errors = [], [], []
    for r in rows:
        if r["error"]:
            errors.append((r["source"], r["error"]))
            continue
        text = one_line(r["text"] or "")
        if check:
            given = None if r.get("label") is None else one_line(r["label"])
            if agrees(given, text):
                labelled.append((r["source"], given))
            else:
                note = "no label" if given is None else f"the model read {text!r}"
                review.append((r["source"], given or text, r["confidence"], note))
        elif text and r["confidence"] >= min_confidence:
            labelled.append((r["source"], text))
        else:
            review.append((r["source"], text, r["confidence"], ""))
    return sorted(labelled), sorted(review, key=lambda x: (x[2], x[0])), sorted(errors)


def field(path: str) -> str:
    """A path as a manifest field (a tab or line break in a file name cannot be written in a TSV)."""
    if any(c in path for c in "\t\r\n"):
        raise ValueError(path)
    return path


def manifest_text(labelled: list) -> str:
    return "path\tlabel\n" + "".join(f"{field(p)}\t{t}\n" for p, t in labelled)


def review_text(review: list, errors: list, model: str, min_confidence: float, check: bool = False) -> str:
    why = ("whose label it did not read" if check else f"with confidence below {min_confidence}")
    lines = [f"# ocr label: {len(review)} crops read by {model} {why}, least confident first.",
             "# Correct each label (or delete its line), then add them to a dataset with",
             f"#   ocr build-dataset --input {REVIEW} --output DATASET --append",
             "path\tlabel"]
    for path, text, confidence, note in review:
        lines += [f"# confidence {confidence:.4f}" + (f"; {note}" if note else ""), f"{field(path)}\t{text}"]
    if errors:
        lines.append(f"# {len(errors)} crops could not be read (fix or drop the files):")
        lines += [f"#   {' '.join(path.split())}\t{' '.join(err.split())}" for path, err in errors]
    return "\n".join(lines) + "\n"


def check_outputs(args) -> tuple[str, str]:
    out = args.output if "://" in args.output else posixpath.abspath(args.output)
    if fs.isdir(out):
        raise LabelError(f"--output {args.output} is a directory; give the manifest's path, DIR/labels.tsv")
    review = posixpath.join(posixpath.dirname(out), REVIEW)
    if out == review:
        raise LabelError(f"--output cannot be named {REVIEW}: that is the review file's name")
    existing = [p for p in (out, review) if fs.exists(p)]
    if existing and not args.overwrite:
        raise LabelError(f"{', '.join(existing)} already exist(s); pass --overwrite to replace")
    if not 0.0 <= args.min_confidence <= 1.0:
        raise LabelError("--min-confidence must be within [0, 1]")
    return out, review


def run(argv=None, test_pipeline=None):
    """Labels the crops; returns the recognition job's PipelineResult."""
    from pipelines import predict

    args, rest = parse_args(argv)
    out, review = check_outputs(args)
    fs.makedirs(posixpath.dirname(out))
    table = posixpath.join(posixpath.dirname(out), f"_label-{uuid.uuid4().hex[:12]}")
    try:
        result = predict.run(["--input", args.input, "--output", table, "--model", args.model, *rest],
                             test_pipeline)
        rows = read_table(table).rows
        labelled, to_review, errors = split_rows(rows, args.min_confidence, args.check_labels)
        unwritable = [p for p, *_ in labelled + to_review if any(c in p for c in "\t\r\n")]
        if unwritable:
            print(f"ocr label: note: {len(unwritable)} crops have a tab or line break in their path and are "
                  f"listed in {REVIEW} as errors (a TSV cannot hold them)", file=sys.stderr)
            errors = sorted(errors + [(p, "unwritable_path: a tab or line break in the path")
                                      for p in unwritable])
            labelled = [x for x in labelled if x[0] not in set(unwritable)]
            to_review = [x for x in to_review if x[0] not in set(unwritable)]
        fs.write_atomically(review, review_text(to_review, errors, args.model, args.min_confidence,
                                             args.check_labels))
        fs.write_atomically(out, manifest_text(labelled))
    finally:
        fs.remove(table)
    print(f"ocr label: {len(labelled)} labelled -> {out}; {len(to_review)} to review and {len(errors)} "
          f"unreadable -> {review}")
    return result
