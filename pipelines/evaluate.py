"""`ocr evaluate`: score an `ocr predict` table against labels -> JSON metrics, optionally an HTML report.

    ReadPredictions -> ReadLabels (manifest | dataset | the table's own `label` column) -> Join -> Score
    -> print metrics JSON; with --report: metrics.json + a self-contained index.html

Labels from a manifest are joined on the resolved image path (or on the id, which is the same for
predictions of that manifest), labels from a dataset directory on the record id. This is a small job over one
table, so it is plain pyarrow + Python, not a Beam pipeline, and it never imports TensorFlow (dataset
records are decoded with `ocr_core.records`). The metric logic lives in `ocr_core.metrics`.
"""
from __future__ import annotations

import argparse
import base64
import html
import json
import os
import posixpath
import sys
from collections import Counter
from collections.abc import Iterable
from itertools import groupby
from typing import NamedTuple

import cv2
import numpy as np
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from ocr_core.errors import UsageError
from ocr_core.inputs import InputSpec, Reject, read_input
from ocr_core.inputs import input_kind as manifest_kind
from ocr_core.metrics import (
    align,
    by_length,
    calibration,
    confusions,
    expected_calibration_error,
    mean_confidence_by_outcome,
    summarize,
    worst_mistakes,
)
from ocr_core.predictions import SUCCESS, TableError, read_table
from ocr_core.preprocess import PreprocessSpec, decode_gray
from ocr_core.records import RecordError, WordRecord, iter_tfrecords, record_id

REQUIRED_COLUMNS = ("id", "source", "text", "confidence", "error", "label")
DISPLAY_COLUMNS = ("model", "decoder")
CONFUSIONS_TOP = 20
THUMB_HEIGHT = 48
THUMB_MAX_WIDTH = 480
MANIFEST = "manifest.json"


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
    if FileSystems.exists(posixpath.join(uri, MANIFEST)):
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


def dataset_split(manifest: dict, split: str) -> str:
    """The split to score: `split`, or for "auto" the one `ocr predict` reads (test, else val, else train)."""
    present = [s for s in ("test", "val", "train") if manifest["counts"].get(s)]
    if split == "auto":
        return next((s for s in ("test", "val") if s in present), "train")
    if split != "all" and split not in manifest["counts"]:
        raise EvaluateError(f"no split {split!r} (has {', '.join(present) or 'no records'})")
    return split


def _dataset_labels(given: str, root: str, split: str) -> Labels:
    with _open(posixpath.join(root, MANIFEST)) as fh:
        manifest = json.loads(fh.read().decode())
    try:
        split = dataset_split(manifest, split)
    except EvaluateError as e:
        raise EvaluateError(f"--labels {given}: {e}; choose another --split") from None
    entries = []
    for s in manifest["shards"]:
        if s["count"] and split in ("all", s["split"]):
            shard = posixpath.join(root, s["path"])
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


KEYS_DOC = {
    "n": "scored words: prediction rows that have a label (error rows included, as the prediction '')",
    "word_accuracy": "exact match, case-sensitive",
    "word_accuracy_case_insensitive": "match after lowercasing both",
    "word_accuracy_alnum": "scene-text protocol: lowercase, only 0-9a-z kept",
    "cer": "total edit distance / total label characters",
    "mean_ned": "mean of edit distance / max(len(label), len(prediction))",
    "by_length": "exact accuracy per label length bucket (1..10, 11-15, 16+)",
    "errors": "scored rows whose image could not be read (counted wrong), by reason",
    "unlabelled": "prediction rows without a label (not scored)",
    "missing_predictions": "labels without a prediction row (not scored)",
    "label_rejects": "manifest lines that gave no label (malformed line or empty label)",
    "duplicate_rows": "prediction rows repeating an earlier row's id (ignored)",
    "mean_confidence_right": "mean confidence of exactly right predictions (error rows excluded)",
    "mean_confidence_wrong": "mean confidence of wrong predictions (error rows excluded)",
    "calibration": "exact accuracy per confidence decile",
    "expected_calibration_error": "n-weighted mean |accuracy - confidence| over the deciles",
    "confusions": "character substitutions label->predicted, deletions, insertions (error rows excluded)",
    "worst": "worst mistakes: highest normalised edit distance, then highest confidence (error rows "
             "excluded); id is the prediction row's, label_id the label's (dataset labels: the record id)",
}


# --- images -------------------------------------------------------------------------------------------


def thumbnail_png(gray: np.ndarray) -> bytes:
    """A uint8/float gray image scaled to THUMB_HEIGHT (width capped at THUMB_MAX_WIDTH), PNG-encoded."""
    h, w = gray.shape[:2]
    s = min(THUMB_HEIGHT / h, THUMB_MAX_WIDTH / w)
    size = (max(1, round(w * s)), max(1, round(h * s)))
    img = cv2.resize(np.rint(np.clip(gray, 0, 255)).astype(np.uint8), size,
                     interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC)
    ok, buf = cv2.imencode(".png", img)
    return buf.tobytes() if ok else b""


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


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
                        out[r.id] = _data_uri(thumbnail_png(r.image))
        return out
    spec = PreprocessSpec()
    for w in worst:
        try:
            with _open(w["source"]) as fh:
                data = fh.read(spec.max_bytes + 1)
            out[w["label_id"]] = _data_uri(thumbnail_png(decode_gray(data, spec)))
        except Exception as e:  # a missing file (BeamIOError), an undecodable image: the card says so
            print(f"ocr evaluate: warning: no image for the report: {w['source']} "
                  f"({type(e).__name__}: {e})"[:300], file=sys.stderr)
    return out


# --- HTML report ----------------------------------------------------------------------------------------

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px auto;max-width:1120px;
 padding:0 16px;color:#1d2330;background:#fff}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #dde1e8;
 padding-bottom:4px}
.meta{color:#5a6270;font-size:12.5px;word-break:break-all}
table{border-collapse:collapse;margin:4px 0}td,th{padding:3px 10px;border-bottom:1px solid #eceef2;
 text-align:left;vertical-align:middle}th{background:#f5f6f9;font-weight:600}td.num{text-align:right;
 font-variant-numeric:tabular-nums}
.bar{background:#e8ebf1;width:160px;height:10px;border-radius:2px}.bar>div{background:#3b73d9;height:10px;
 border-radius:2px}
.cols{display:flex;gap:36px;flex-wrap:wrap;align-items:flex-start}
.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;white-space:pre}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(250px,1fr));gap:12px}
.card{border:1px solid #dde1e8;border-radius:6px;padding:8px;background:#fafbfc;overflow:hidden}
.card img{display:block;max-width:100%;height:auto;image-rendering:auto;background:#fff;border:1px solid #eee;
 margin-bottom:6px}
.card .noimg{height:48px;display:flex;align-items:center;justify-content:center;color:#8a919c;
 background:#f0f1f4;margin-bottom:6px;font-size:12px}
.card .k{color:#5a6270;display:inline-block;width:38px;font-size:12px}
.card .src{color:#8a919c;font-size:11px;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
mark{padding:0 1px;border-radius:2px}mark.s{background:#ffd98a}mark.d{background:#ffc2c2;
 text-decoration:line-through}mark.i{background:#c6e8c6}
.note{color:#5a6270;font-size:12.5px;max-width:900px}
"""


def _e(value) -> str:
    return html.escape(str(value), quote=True)


def _char(c: str) -> str:
    """A character made visible in a table cell (space and control characters spelled out)."""
    if c == " ":
        return "␣"
    if not c.isprintable():
        return f"U+{ord(c):04X}"
    return c


def _pct(x) -> str:
    return "–" if x is None else f"{100 * x:.1f} %"


def _num(x, digits: int = 3) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def _bar(x) -> str:
    return f'<div class="bar"><div style="width:{0 if x is None else round(100 * x, 1)}%"></div></div>'


def marked(label: str, pred: str) -> tuple[str, str]:
    """Escaped HTML of label and prediction with the edit-distance alignment's differences highlighted
    (<mark class="s|d|i"> for substituted, missing and extra characters)."""
    lab, prd = [], []
    for op, a, b in align(label, pred):
        cls = "" if op == "=" else op
        if a:
            lab.append((cls, a))
        if b:
            prd.append((cls, b))
    return _runs(lab), _runs(prd)


def _runs(chars: list[tuple[str, str]]) -> str:
    out = []
    for cls, group in groupby(chars, key=lambda x: x[0]):
        text = _e("".join(c for _, c in group))
        out.append(f'<mark class="{cls}">{text}</mark>' if cls else text)
    return "".join(out)


def _table(head: Iterable[str], rows: Iterable[Iterable[str]], num_from: int = 1) -> str:
    """An HTML table; cells are already-escaped HTML, columns from `num_from` are right-aligned."""
    out = ["<table><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>"]
    for row in rows:
        out.append("<tr>" + "".join(f'<td class="num">{c}</td>' if i >= num_from else f"<td>{c}</td>"
                                    for i, c in enumerate(row)) + "</tr>")
    return "".join(out) + "</table>"


def render_report(metrics: dict, thumbs: dict[str, str]) -> str:
    """The self-contained HTML report (inline CSS, images as data URIs); every text is HTML-escaped."""
    m = metrics
    summary = [
        ("Words scored", str(m["n"])),
        ("Word accuracy (exact)", _pct(m["word_accuracy"])),
        ("Word accuracy, case-insensitive", _pct(m["word_accuracy_case_insensitive"])),
        ("Word accuracy, alphanumeric (scene-text protocol)", _pct(m["word_accuracy_alnum"])),
        ("Character error rate", _pct(m["cer"])),
        ("Mean normalised edit distance", _num(m["mean_ned"])),
        ("Unreadable inputs (scored as wrong)", str(m["errors"]["count"])),
        ("Unlabelled prediction rows (not scored)", str(m["unlabelled"])),
        ("Labels without a prediction (not scored)", str(m["missing_predictions"])),
        ("Label lines rejected", str(m["label_rejects"])),
        ("Mean confidence: right / wrong", f"{_num(m['mean_confidence_right'])} / "
                                           f"{_num(m['mean_confidence_wrong'])}"),
        ("Expected calibration error", _num(m["expected_calibration_error"])),
    ]
    parts = [f"<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>OCR evaluation</title>"
             f"<style>{CSS}</style></head><body>",
             "<h1>OCR evaluation</h1>",
             f'<div class="meta">predictions {_e(m["predictions"])} · '
             f'labels {_e(m["labels"] or "table column")}'
             f' ({_e(m["label_source"])}{", split " + _e(m["split"]) if m["split"] else ""})'
             f' · model {_e(", ".join(m["models"]) or "?")} · {m["rows"]} rows</div>',
             "<h2>Summary</h2>", _table(["Metric", "Value"], [(_e(k), v) for k, v in summary])]
    if m["errors"]["by_reason"]:
        parts.append(_table(["Unreadable input", "Rows"],
                            [(_e(k), str(v)) for k, v in m["errors"]["by_reason"].items()]))

    length_rows = [(_e(b["length"]), str(b["n"]), _pct(b["accuracy"]), _bar(b["accuracy"]))
                   for b in m["by_length"] if b["n"]]
    cal_rows = [(_e(b["bin"]), str(b["n"]), _num(b["mean_confidence"]), _pct(b["accuracy"]),
                 _bar(b["accuracy"])) for b in m["calibration"] if b["n"]]
    parts += ['<div class="cols"><div><h2>Accuracy by label length</h2>',
              _table(["Length", "Words", "Exact", ""], length_rows) if length_rows else "<p>No words.</p>",
              "</div><div><h2>Calibration</h2>",
              _table(["Confidence", "Words", "Mean conf.", "Exact", ""], cal_rows) if cal_rows
              else "<p>No confidences.</p>", "</div></div>"]

    parts.append(f"<h2>Worst mistakes ({len(m['worst'])})</h2>")
    parts.append('<p class="note">Wrong predictions ranked by normalised edit distance (edit distance / '
                 "longer length), then by confidence: the most wrong words first, and among equally wrong "
                 "ones those the model was surest of, because a confidence threshold cannot catch them and "
                 "they often reveal label noise. Unreadable inputs are listed above, not here. "
                 '<mark class="s">substituted</mark> <mark class="d">missing</mark> '
                 '<mark class="i">extra</mark></p>')
    cards = []
    for w in m["worst"]:
        uri = thumbs.get(w["label_id"])
        img = (f'<img src="{uri}" alt="{_e(w["label"])}">' if uri else '<div class="noimg">no image</div>')
        lab, prd = marked(w["label"], w["prediction"] or "")
        cards.append(f'<div class="card">{img}'
                     f'<div><span class="k">label</span><span class="mono">{lab}</span></div>'
                     f'<div><span class="k">pred</span><span class="mono">{prd}</span></div>'
                     f'<div><span class="k">conf</span>{_num(w["confidence"])} · NED {_num(w["ned"], 2)}'
                     f' · dist {w["edit_distance"]}</div>'
                     f'<div class="src" title="{_e(w["source"])}">{_e(w["source"])}</div></div>')
    parts.append(f'<div class="grid">{"".join(cards)}</div>' if cards else "<p>No mistakes to show.</p>")

    c = m["confusions"]

    def mono(ch: str) -> str:
        return f'<span class="mono">{_e(_char(ch))}</span>'

    subs = [(mono(x["label"]), mono(x["predicted"]), str(x["count"])) for x in c["substitutions"]]
    dels = [(mono(x["char"]), str(x["count"])) for x in c["deletions"]]
    ins = [(mono(x["char"]), str(x["count"])) for x in c["insertions"]]
    parts += ["<h2>Character confusions</h2>",
              '<p class="note">From the edit-distance alignment of each wrong, readable prediction '
              "(␣ is a space).</p>", '<div class="cols"><div>',
              _table(["Label", "Predicted", "Count"], subs, 2) if subs else "<p>No substitutions.</p>",
              "</div><div>", _table(["Missing", "Count"], dels) if dels else "<p>No deletions.</p>",
              "</div><div>", _table(["Extra", "Count"], ins) if ins else "<p>No insertions.</p>",
              "</div></div></body></html>"]
    return "\n".join(parts)


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
    p.add_argument("--predictions", required=True, metavar="PARQUET",
                   help="output directory of `ocr predict` (its part-*.parquet files) or one .parquet file")
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
        SystemExit(2): with a message naming the input and the fix, like argparse's usage errors.
    """
    args = parse_args(argv)
    try:
        metrics, labels = evaluate(args.predictions, args.labels, args.split, args.worst)
        if args.report:
            page = render_report(metrics, load_thumbnails(metrics["worst"], labels))
            write_report(_absolute(args.report), metrics, page)
    except (EvaluateError, RecordError) as e:
        print(f"ocr evaluate: error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    print(json.dumps(metrics, indent=2, ensure_ascii=False))
    if args.report:
        print(f"ocr evaluate: report -> {posixpath.join(_absolute(args.report), 'index.html')}",
              file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(run())
