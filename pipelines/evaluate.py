"""`ocr evaluate`: score an `ocr predict` table against labels -> JSON metrics, optionally an HTML report.

    ReadPredictions -> ReadLabels (manifest | dataset | the table's own `label` column) -> Join -> Score
    -> print metrics JSON; with --report: metrics.json + a self-contained index.html

Several --predictions tables (models) are each scored against the same labels and shown side by side.

Labels from a manifest are joined on the resolved image path (or on the id, which is the same for
predictions of that manifest), labels from a dataset directory on the record id. This is a small job over one
table, so it is plain pyarrow + Python, not a Beam pipeline, and it never imports TensorFlow (dataset
records are decoded with `ocr_core.records`). The metric logic lives in `ocr_core.metrics`.
"""
from __future__ import annotations

import argparse
import json
import os
import posixpath
import sys
from collections import Counter
from typing import NamedTuple

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from ocr_core.dataset import MANIFEST, Dataset, DatasetError
from ocr_core.errors import UsageError
from ocr_core.inputs import InputSpec, Reject, read_input
from ocr_core.inputs import input_kind as manifest_kind
from ocr_core.metrics import (
    KEYS_DOC,
    by_length,
    by_length_group,
    calibration,
    confusions,
    expected_calibration_error,
    mean_confidence_by_outcome,
    summarize,
    worst_mistakes,
)
from ocr_core.predictions import SUCCESS, TableError, read_table
from ocr_core.preprocess import PreprocessSpec, decode_gray
from ocr_core.publish import check_output_dir
from ocr_core.records import RecordError, WordRecord, iter_tfrecords, record_id
from ocr_core.report import data_uri, render_comparison, render_report, run_names, thumbnail_png

REQUIRED_COLUMNS = ("id", "source", "text", "confidence", "error", "label")
DISPLAY_COLUMNS = ("model", "decoder")
CONFUSIONS_TOP = 20


class EvaluateError(UsageError):
    """The evaluation cannot start (a missing or malformed input); the message names the input and the fix."""


def _is_uri(path: str) -> bool:
    return "://" in path


def _absolute(path: str) -> str:
    return path if _is_uri(path) else os.path.abspath(path)


def source_key(source: str) -> str:
    """The join key of an image path: local paths normalised (predict and build-dataset resolve them)."""
    return source if _is_uri(source) else os.path.normpath(source)


def _open(path: str):
    return FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)


# --- predictions --------------------------------------------------------------------------------------


def read_predictions(path: str) -> list[dict]:
    """All rows of the predictions table (REQUIRED_COLUMNS plus model/decoder when present) as dicts; a watch
    output reads as the union of its committed windows (`ocr_core.predictions.read_table`).

    Raises:
        EvaluateError: the path does not exist, is not Parquet, or lacks a column of the predictions SCHEMA.
    """
    try:
        table = read_table(path, REQUIRED_COLUMNS, DISPLAY_COLUMNS)
    except TableError as e:
        raise EvaluateError(f"--predictions {e}") from None
    if not table.committed:
        print(f"ocr evaluate: warning: {path} has no {SUCCESS}; the predict run may not have finished and "
              "the table may be incomplete", file=sys.stderr)
    return table.rows


# --- labels -------------------------------------------------------------------------------------------


class LabelEntry(NamedTuple):
    """One ground-truth word: the id the predictions should carry, its image and its text."""

    id: str
    source: str
    label: str
    shard: str | None = None  # dataset labels: the TFRecord shard holding the preprocessed pixels


class Labels(NamedTuple):
    kind: str  # table | manifest | dataset
    entries: list[LabelEntry]
    rejects: int = 0  # manifest lines that are not (path, non-empty label)
    split: str | None = None


def read_labels(path: str | None, split: str) -> Labels:
    """The ground truth of --labels: a manifest (tsv/csv/MJSynth annotation or label-in-name glob), a dataset
    directory (records of `split`), or None for the predictions table's own `label` column."""
    if path is None:
        return Labels("table", [])
    uri = _absolute(path)
    if Dataset.exists(uri):
        return _dataset_labels(path, uri, split)
    fix = ("pass a manifest (.tsv/.csv/annotation*.txt), a dataset directory (with manifest.json), "
           "or omit --labels to use the table's `label` column")
    if not _is_uri(uri) and os.path.isdir(uri):
        raise EvaluateError(f"--labels {path}: a directory without {MANIFEST} (not a dataset, or its build "
                            f"did not finish); {fix}")
    try:
        kind = manifest_kind(uri)
    except UsageError as e:
        raise EvaluateError(f"--labels {path}: {e}") from None
    if kind == "glob":
        if not FileSystems.match([uri], limits=[1])[0].metadata_list:
            raise EvaluateError(f"--labels {path}: matched no files; {fix}")
    elif not FileSystems.exists(uri):
        raise EvaluateError(f"--labels {path}: no such file; {fix}")
    entries, rejects = [], 0
    for e in read_input(InputSpec(0, uri, kind, path)):
        if isinstance(e, Reject) or e.label == "":
            rejects += 1
        else:
            entries.append(LabelEntry(record_id(e.source, e.label), e.source, e.label))
    return Labels("manifest", entries, rejects)


def _dataset_labels(given: str, root: str, split: str) -> Labels:
    """The records of a dataset's `split` ("auto": the one `ocr predict` reads), every version's."""
    try:
        dataset = Dataset.load(root)
    except DatasetError as e:
        raise EvaluateError(f"--labels {given}: {e}") from None
    try:
        split = dataset.resolve_split(split)
    except DatasetError as e:
        raise EvaluateError(f"--labels {given}: {e}; choose another --split") from None
    entries = []
    for shard, _ in dataset.shard_files(split):
        with _open(shard) as fh:
            for data in iter_tfrecords(fh, shard):
                r = WordRecord.decode(data)
                entries.append(LabelEntry(r.id, r.source, r.text, shard))
    return Labels("dataset", entries, split=split)


# --- join and score -----------------------------------------------------------------------------------


class Joined(NamedTuple):
    scored: list[dict]  # prediction rows with their label (error rows included)
    unlabelled: int  # prediction rows without a label
    missing: list[LabelEntry]  # labels without a prediction row
    duplicate_rows: int  # prediction rows repeating an earlier row's id (ignored)


def join(rows: list[dict], labels: Labels) -> Joined:
    """Pairs prediction rows with labels: by id first, then by image path (manifest vs. glob predictions)."""
    unique, seen = [], set()
    for r in rows:
        if r["id"] not in seen:
            seen.add(r["id"])
            unique.append(r)
    duplicates = len(rows) - len(unique)
    if labels.kind == "table":
        scored = [{**r, "label_id": r["id"]} for r in unique if r["label"]]
        return Joined(scored, len(unique) - len(scored), [], duplicates)
    by_id = {r["id"]: i for i, r in enumerate(unique)}
    by_source = {}
    for i, r in enumerate(unique):
        by_source.setdefault(source_key(r["source"]), i)
    scored, missing, matched, done = [], [], set(), set()
    for e in labels.entries:
        if e.id in done:  # the same (image, label) twice: build-dataset keeps one record, so do we
            continue
        done.add(e.id)
        i = by_id.get(e.id)
        if i is None:
            i = by_source.get(source_key(e.source))
        if i is None:
            missing.append(e)
            continue
        matched.add(i)
        scored.append({**unique[i], "label": e.label, "label_id": e.id})
    return Joined(scored, len(unique) - len(matched), missing, duplicates)


def error_reason(error: str) -> str:
    """'missing_file: no such file' -> 'missing_file' (predict's error column format)."""
    return error.split(":", 1)[0].strip()


def score(joined: Joined, worst: int) -> dict:
    """The metrics dict (without the input description) of joined rows; see KEYS_DOC."""
    scored = joined.scored
    pairs = [(s["label"], "" if s["error"] else (s["text"] or "")) for s in scored]
    metrics = summarize(pairs)
    metrics["by_length"] = by_length(pairs)
    metrics["by_length_group"] = by_length_group(pairs)
    reasons = Counter(error_reason(s["error"]) for s in scored if s["error"])
    metrics["errors"] = {"count": sum(reasons.values()), "by_reason": dict(sorted(reasons.items()))}
    metrics["unlabelled"] = joined.unlabelled
    metrics["missing_predictions"] = len(joined.missing)
    metrics["duplicate_rows"] = joined.duplicate_rows
    readable = [s for s in scored if not s["error"]]
    with_conf = [(s["confidence"], s["text"] == s["label"]) for s in readable if s["confidence"] is not None]
    means = mean_confidence_by_outcome(with_conf)
    metrics["mean_confidence_right"], metrics["mean_confidence_wrong"] = means["right"], means["wrong"]
    metrics["calibration"] = calibration(with_conf)
    metrics["expected_calibration_error"] = expected_calibration_error(metrics["calibration"])
    metrics["confusions"] = confusions(((s["label"], s["text"]) for s in readable), top=CONFUSIONS_TOP)
    metrics["worst"] = [{"id": w["id"], "source": w["source"], "label": w["label"], "prediction": w["text"],
                         "confidence": w["confidence"], "edit_distance": w["edit_distance"], "ned": w["ned"],
                         "label_id": w["label_id"]}
                        for w in worst_mistakes(readable, worst)]
    return metrics




# --- images -------------------------------------------------------------------------------------------


def load_thumbnails(worst: list[dict], labels: Labels) -> dict[str, str]:
    """label_id -> PNG data URI of each worst mistake's image, where it can be read.

    Dataset labels show the stored preprocessed pixels (what the model saw); otherwise the original file,
    decoded by the preprocessing contract (gray, alpha over white) and scaled, never the full-size file.
    """
    out = {}
    if labels.kind == "dataset":
        wanted = {e.id: e.shard for e in labels.entries if e.id in {w["label_id"] for w in worst}}
        for shard in sorted(set(wanted.values())):
            with _open(shard) as fh:
                for data in iter_tfrecords(fh, shard):
                    r = WordRecord.decode(data)
                    if r.id in wanted:
                        out[r.id] = data_uri(thumbnail_png(r.image))
        return out
    spec = PreprocessSpec()
    for w in worst:
        try:
            with _open(w["source"]) as fh:
                data = fh.read(spec.max_bytes + 1)
            out[w["label_id"]] = data_uri(thumbnail_png(decode_gray(data, spec)))
        except Exception as e:  # a missing file (BeamIOError), an undecodable image: the card says so
            print(f"ocr evaluate: warning: no image for the report: {w['source']} "
                  f"({type(e).__name__}: {e})"[:300], file=sys.stderr)
    return out


# --- report files (the page itself: ocr_core.report) ----------------------------------------------------


def _write(path: str, data: bytes) -> None:
    with FileSystems.create(path, compression_type=CompressionTypes.UNCOMPRESSED) as fh:
        fh.write(data)


def write_report(out_dir: str, metrics: dict, page: str) -> None:
    if not _is_uri(out_dir):
        os.makedirs(out_dir, exist_ok=True)
    _write(posixpath.join(out_dir, "metrics.json"), (json.dumps(metrics, indent=2, ensure_ascii=False) + "\n")
           .encode())
    _write(posixpath.join(out_dir, "index.html"), page.encode())


# --- the command ----------------------------------------------------------------------------------------


def parse_args(argv):
    keys = "\n".join(f"  {k:<31} {v}" for k, v in KEYS_DOC.items())
    p = argparse.ArgumentParser(prog="ocr evaluate", description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=f"Metrics go to stdout as JSON (warnings to stderr). Keys:\n{keys}")
    p.add_argument("--predictions", required=True, metavar="PARQUET", action="extend", nargs="+",
                   help="output directory of `ocr predict` (its part-*.parquet files) or one .parquet file; "
                        "two or more (repeat the flag, or list them) compare models on the same labels: "
                        "the JSON is {\"comparison\": [metrics per table], \"names\": [...]} and the "
                        "report shows them side by side")
    p.add_argument("--labels", metavar="MANIFEST|DATASET_DIR",
                   help="labels.tsv/.csv/annotation*.txt (joined on the image path) or a dataset directory "
                        "(joined on record id); the table's `label` column is then ignored. "
                        "Default: the table's `label` column")
    p.add_argument("--split", default="auto", choices=["auto", "test", "val", "train", "all"],
                   help="dataset labels: which split (auto: test, else val, else train, as `ocr predict` "
                        "reads it); the JSON's `split` names the one used")
    p.add_argument("--report", metavar="DIR", help="write DIR/metrics.json and DIR/index.html")
    p.add_argument("--worst", type=_non_negative, default=24, metavar="N",
                   help="worst mistakes to list (default %(default)s)")
    return p.parse_args(argv)


def _non_negative(text: str) -> int:
    n = int(text)
    if n < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return n


def _rounded(x, digits: int = 6):
    if isinstance(x, float):
        return round(x, digits)
    if isinstance(x, dict):
        return {k: _rounded(v, digits) for k, v in x.items()}
    if isinstance(x, list):
        return [_rounded(v, digits) for v in x]
    return x


def evaluate(predictions: str, labels_path: str | None, split: str = "auto",
             worst: int = 24) -> tuple[dict, Labels]:
    """Reads, joins and scores; returns (metrics as printed, the labels used). Raises EvaluateError."""
    pred_uri = _absolute(predictions)
    rows = read_predictions(pred_uri)
    labels = read_labels(labels_path, split)
    joined = join(rows, labels)
    if labels.kind == "table" and not joined.scored:
        raise EvaluateError(f"--predictions {predictions}: no row has a label ({len(rows)} rows, `label` "
                            "column empty: predictions of unlabelled images); pass --labels "
                            "MANIFEST|DATASET_DIR")
    if labels.kind != "table" and labels.entries and not joined.scored:
        print(f"ocr evaluate: warning: no prediction row matches a label of {labels_path}; were the "
              "predictions made from these images"
              + (" and with this --split?" if labels.kind == "dataset" else "?"), file=sys.stderr)
    for e in joined.missing[:5]:
        print(f"ocr evaluate: no prediction for {e.source} ({e.label!r})", file=sys.stderr)
    if len(joined.missing) > 5:
        print(f"ocr evaluate: ... and {len(joined.missing) - 5} more labels without a prediction",
              file=sys.stderr)
    metrics = {"predictions": pred_uri, "labels": None if labels_path is None else _absolute(labels_path),
               "label_source": labels.kind, "split": labels.split,
               "models": sorted({r["model"] for r in rows if r.get("model")}), "rows": len(rows),
               "label_rejects": labels.rejects}
    metrics.update(score(joined, worst))
    return _rounded(metrics), labels


def run(argv=None) -> int:
    """Scores predictions; prints the metrics JSON and returns 0. See `ocr evaluate --help`.

    Raises:
        EvaluateError: a message naming the input and the fix (`pipelines/cli.py`: one line, exit 2).
    """
    args = parse_args(argv)
    if args.report:
        check_output_dir(_absolute(args.report), "--report")
    try:
        runs, labels = [], None
        for path in args.predictions:
            metrics, labels = evaluate(path, args.labels, args.split, args.worst)
            runs.append(metrics)
        if len(runs) > 1:
            metrics = {"comparison": runs, "names": run_names(runs)}
        if args.report:
            worst = list({w["label_id"]: w for r in runs for w in r["worst"]}.values())
            thumbs = load_thumbnails(worst, labels)
            page = render_report(runs[0], thumbs) if len(runs) == 1 else render_comparison(runs, thumbs)
            write_report(_absolute(args.report), metrics, page)
    except RecordError as e:
        raise EvaluateError(str(e)) from None
    print(json.dumps(metrics, indent=2, ensure_ascii=False))
    if args.report:
        print(f"ocr evaluate: report -> {posixpath.join(_absolute(args.report), 'index.html')}",
              file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(run())
