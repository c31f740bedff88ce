"""`ocr evaluate`: exact metrics on hand-made Parquet tables, label joins (table column, manifest, dataset),
the HTML report, and clear errors. The metric helpers are tested in test_metrics.py."""
import base64
import html
import json
import re
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ocr_core.predictions import SCHEMA, SUCCESS
from ocr_core.records import WordRecord, iter_tfrecords, record_id
from ocr_core.report import THUMB_HEIGHT
from pipelines import build_dataset, cli, evaluate
from tests import images
from tests.conftest import PYTHON, REPO

# --- helpers ------------------------------------------------------------------------------------------


def row(id_, label, text, confidence=None, error=None, source=None):
    return {"id": id_, "source": source or f"/data/{id_}.png", "text": text, "confidence": confidence,
            "candidates": None if text is None else [{"text": text, "score": confidence}],
            "model": "demo@model", "decoder": "greedy", "error": error, "label": label}


def write_table(out: Path, rows: list[dict], parts: int = 1) -> Path:
    """An `ocr predict`-shaped output directory: part files written with the SCHEMA, then _SUCCESS."""
    out.mkdir(parents=True, exist_ok=True)
    for i in range(parts):
        pq.write_table(pa.Table.from_pylist(rows[i::parts], schema=SCHEMA),
                       out / f"part-{i:05d}-of-{parts:05d}.parquet")
    (out / SUCCESS).write_text("{}")
    return out


def run_evaluate(capsys, *argv) -> dict:
    assert evaluate.run([str(a) for a in argv]) == 0
    return json.loads(capsys.readouterr().out)


def data_uris(page: str) -> list[np.ndarray]:
    found = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    return [cv2.imdecode(np.frombuffer(base64.b64decode(b), np.uint8), cv2.IMREAD_UNCHANGED) for b in found]


# Confidences are dyadic so float32 storage keeps them exact (0.9 would become 0.8999999761 and change bin).
HAND_MADE = [
    row("hello", "Hello", "Hello", 0.9375),  # right
    row("world", "World", "world", 0.8125),  # right ignoring case
    row("its", "it's", "its", 0.75),  # right under the alphanumeric protocol only
    row("cat", "cat", "cut", 0.96875),  # substitution a->u
    row("long", "abcdefghijkl", "abcdefghijk", 0.375),  # deletion of l, length bucket 11-15
    row("dog", "dog", None, None, "missing_file: no such file"),  # error row: wrong, prediction ""
    row("ok", "ok", "okk", 0.5),  # insertion of k
    row("nolabel", None, "xyz", 0.25),  # unlabelled
]


def test_metrics_of_a_hand_made_table(tmp_path, capsys):
    table = write_table(tmp_path / "pred", HAND_MADE, parts=2)
    m = run_evaluate(capsys, "--predictions", table, "--worst", 3)
    assert m["rows"] == 8 and m["n"] == 7 and m["label_source"] == "table"
    assert m["word_accuracy"] == pytest.approx(1 / 7)
    assert m["word_accuracy_case_insensitive"] == pytest.approx(2 / 7)
    assert m["word_accuracy_alnum"] == pytest.approx(3 / 7)
    assert m["cer"] == pytest.approx(8 / 34)  # distances 0+1+1+1+1+3+1 over 5+5+4+3+12+3+2 label chars
    assert m["mean_ned"] == pytest.approx((0 + 1 / 5 + 1 / 4 + 1 / 3 + 1 / 12 + 1 + 1 / 3) / 7)
    assert m["line_accuracy"] == pytest.approx(1 / 7) and m["wer"] == pytest.approx(6 / 7)  # one word each
    groups = {g["length"]: (g["n"], g["accuracy"], g["cer"]) for g in m["by_length_group"]}
    assert groups == {"1-3": (3, 0.0, pytest.approx(5 / 8, abs=1e-6)),
                      "4-6": (3, pytest.approx(1 / 3, abs=1e-6), pytest.approx(2 / 14, abs=1e-6)),
                      "7-11": (0, None, None), "12+": (1, 0.0, pytest.approx(1 / 12, abs=1e-6))}
    assert m["errors"] == {"count": 1, "by_reason": {"missing_file": 1}}
    assert m["unlabelled"] == 1 and m["missing_predictions"] == 0 and m["duplicate_rows"] == 0
    assert m["models"] == ["demo@model"]
    lengths = {b["length"]: (b["n"], b["accuracy"]) for b in m["by_length"] if b["n"]}
    assert lengths == {"2": (1, 0.0), "3": (2, 0.0), "4": (1, 0.0), "5": (2, 0.5), "11-15": (1, 0.0)}
    assert m["mean_confidence_right"] == 0.9375
    assert m["mean_confidence_wrong"] == pytest.approx((0.8125 + 0.75 + 0.96875 + 0.375 + 0.5) / 5)
    cal = {b["bin"]: (b["n"], b["accuracy"]) for b in m["calibration"] if b["n"]}
    assert cal == {"0.3-0.4": (1, 0.0), "0.5-0.6": (1, 0.0), "0.7-0.8": (1, 0.0), "0.8-0.9": (1, 0.0),
                   "0.9-1.0": (2, 0.5)}
    c = m["confusions"]
    assert c["substitutions"] == [{"label": "W", "predicted": "w", "count": 1},
                                  {"label": "a", "predicted": "u", "count": 1}]
    assert c["deletions"] == [{"char": "'", "count": 1}, {"char": "l", "count": 1}]  # not dog's: error row
    assert c["insertions"] == [{"char": "k", "count": 1}]
    # equally wrong (NED 1/3): the confident 'cut' first; error rows are not "mistakes" of the recogniser
    assert [w["id"] for w in m["worst"]] == ["cat", "ok", "its"]
    assert m["worst"][0] == {"id": "cat", "source": "/data/cat.png", "label": "cat", "prediction": "cut",
                             "confidence": 0.96875, "edit_distance": 1, "ned": pytest.approx(1 / 3, abs=1e-6),
                             "label_id": "cat"}


def test_one_parquet_file_and_duplicate_rows(tmp_path, capsys):
    path = tmp_path / "one.parquet"
    pq.write_table(pa.Table.from_pylist(HAND_MADE[:2] + HAND_MADE[:1], schema=SCHEMA), path)
    m = run_evaluate(capsys, "--predictions", path)
    assert (m["n"], m["duplicate_rows"], m["word_accuracy"]) == (2, 1, 0.5)


@pytest.fixture()
def crops(tmp_path) -> Path:
    d = tmp_path / "crops"
    for name, word in [("a", "alpha"), ("b", "Beta"), ("c", "gamma"), ("d", "delta"), ("e", "x<y")]:
        images.write_word(d / f"{name}.png", word)
    return d


def test_manifest_labels_join_on_path(crops, tmp_path, capsys):
    """Predictions of a glob (ids without labels) scored against a manifest written elsewhere."""
    manifest = images.write_manifest(crops / "labels.tsv", [
        ("a.png", "alpha"), ("b.png", "Beta"), ("./sub/../c.png", "gamma"), ("missing.png", "ghost"),
        "no tab on this line", ("a.png", "alpha")])  # the repeat is one label, as in build-dataset
    src = {n: str(crops / f"{n}.png") for n in "abcde"}
    table = write_table(tmp_path / "pred", [
        row(record_id(src["a"], ""), None, "alpha", 0.875, source=src["a"]),
        row(record_id(src["b"], ""), None, "beta", 0.625, source=src["b"]),
        row(record_id(src["c"], ""), None, None, None, "truncated: PNG has no IEND chunk", source=src["c"]),
        row(record_id(src["d"], ""), None, "delta", 0.5, source=src["d"]),  # not in the manifest
    ])
    m = run_evaluate(capsys, "--predictions", table, "--labels", manifest)
    assert m["label_source"] == "manifest" and m["labels"] == str(manifest)
    assert (m["n"], m["unlabelled"], m["missing_predictions"], m["label_rejects"]) == (3, 1, 1, 1)
    assert m["word_accuracy"] == pytest.approx(1 / 3)
    assert m["word_accuracy_case_insensitive"] == pytest.approx(2 / 3)
    assert m["errors"] == {"count": 1, "by_reason": {"truncated": 1}}


def test_html_report_shows_worst_mistakes_escaped(crops, tmp_path, capsys):
    manifest = images.write_manifest(tmp_path / "labels.tsv", [
        (str(crops / "a.png"), "alpha"), (str(crops / "b.png"), "Beta"), (str(crops / "e.png"), 'x<y>&"z"'),
        (str(crops / "gone.png"), "gone")])
    rows = [row(record_id(str(crops / f"{n}.png"), label), label, text, conf, source=str(crops / f"{n}.png"))
            for n, label, text, conf in [("a", "alpha", "alpha", 0.9375), ("b", "Beta", "8eta", 0.875),
                                         ("e", 'x<y>&"z"', "<script>", 0.5), ("gone", "gone", "gone!", 0.25)]]
    table = write_table(tmp_path / "pred", rows)
    report = tmp_path / "report"
    m = run_evaluate(capsys, "--predictions", table, "--labels", manifest, "--report", report, "--worst", 5)
    assert json.loads((report / "metrics.json").read_text()) == m
    assert [w["label"] for w in m["worst"]] == ['x<y>&"z"', "Beta", "gone"]  # NED 1, 1/4, 1/5
    page = (report / "index.html").read_text()
    assert page.count('class="card"') == 3
    assert "<script" not in page and "<y>" not in page
    assert html.unescape(re.findall(r'alt="([^"]*)"', page)[0]) == 'x<y>&"z"'  # the label, escaped, as alt
    assert '<mark class="s">8</mark>eta' in page and "Accuracy by label length" in page
    assert f'<div class="src" title="{crops / "b.png"}">{crops / "b.png"}</div>' in page  # the full path
    assert "text-overflow:ellipsis" not in page
    shown = html.unescape(re.sub(r"<[^>]+>", " ", page))
    for metric in ("Line accuracy (whole text exact)", "Character error rate (CER)", "Word error rate (WER)"):
        assert metric in shown
    assert re.search(r"4-6\s+3\s+33.3 %\s+15.4 %", shown)  # alpha right; Beta, gone 1 char each of 13
    assert "Character confusions" in page and '<mark class="s">B</mark>' in page
    thumbs = data_uris(page)
    assert len(thumbs) == 2  # gone.png does not exist: its card says "no image"
    assert all(t.shape[0] == THUMB_HEIGHT for t in thumbs)
    assert "no image" in page


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> tuple[Path, list[WordRecord]]:
    """A tiny built dataset (one train shard) and its records; the source images are deleted afterwards."""
    d = tmp_path_factory.mktemp("ds")
    words = ["alpha", "Beta", "gamma", "delta"]
    for w in words:
        images.write_word(d / "img" / f"{w}.png", w, height=60)
    tsv = images.write_manifest(d / "labels.tsv", [(f"img/{w}.png", w) for w in words])
    out = d / "dataset"
    build_dataset.run(["--input", str(tsv), "--output", str(out), "--val-fraction", "0", "--shards", "1",
                       "--workers", "1"])
    for w in words:
        (d / "img" / f"{w}.png").unlink()  # the report must show the stored pixels, not the files
    manifest = json.loads((out / "manifest.json").read_text())
    records = []
    for shard in manifest["shards"]:
        with open(out / shard["path"], "rb") as fh:
            records += [WordRecord.decode(data) for data in iter_tfrecords(fh)]
    return out, sorted(records, key=lambda r: r.text)


def _dataset_predictions(records: list[WordRecord], out: Path) -> Path:
    by_text = {r.text: r for r in records}
    guesses = {"alpha": "alpha", "Beta": "Beia", "gamma": "garnma"}  # delta: no prediction row
    return write_table(out, [row(by_text[t].id, None, g, 0.75, source=by_text[t].source)
                             for t, g in guesses.items()])


def test_dataset_labels_join_on_record_id(dataset, tmp_path, capsys):
    root, records = dataset
    table = _dataset_predictions(records, tmp_path / "pred")
    report = tmp_path / "report"
    m = run_evaluate(capsys, "--predictions", table, "--labels", root, "--report", report)
    assert (m["label_source"], m["split"]) == ("dataset", "train")  # auto: no test or val split here
    assert (m["n"], m["missing_predictions"], m["unlabelled"]) == (3, 1, 0)
    assert m["word_accuracy"] == pytest.approx(1 / 3)
    c = m["confusions"]  # gamma -> garnma aligns as g a +r m->n m a (later substitutions win ties)
    assert {(s["label"], s["predicted"]) for s in c["substitutions"]} == {("t", "i"), ("m", "n")}
    assert c["insertions"] == [{"char": "r", "count": 1}] and c["deletions"] == []
    thumbs = data_uris((report / "index.html").read_text())
    h, w = records[0].image.shape  # the stored 32 x 128 pixels, scaled to the report height
    assert [t.shape for t in thumbs] == [(THUMB_HEIGHT, w * THUMB_HEIGHT // h)] * 2


@pytest.mark.slow
def test_cli_runs_without_tensorflow(dataset, tmp_path):
    """The real command in a fresh process: records decode with `tfrecord`'s proto, TensorFlow stays out."""
    root, records = dataset
    table = _dataset_predictions(records, tmp_path / "pred")
    code = ("import sys; from pipelines import cli; rc = cli.main(sys.argv[1:]); "
            "assert 'tensorflow' not in sys.modules, 'evaluate imported TensorFlow'; sys.exit(rc)")
    proc = subprocess.run([PYTHON, "-c", code, "evaluate", "--predictions", str(table), "--labels", str(root),
                           "--split", "train"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    m = json.loads(proc.stdout)
    assert (m["n"], m["split"]) == (3, "train")


# --- clear errors --------------------------------------------------------------------------------------


def _fails(capsys, *argv) -> str:
    assert cli.run_command("evaluate", [str(a) for a in argv]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    return captured.err


def test_missing_predictions_path(tmp_path, capsys):
    err = _fails(capsys, "--predictions", tmp_path / "nope")
    assert f"--predictions {tmp_path / 'nope'}: no such file or directory" in err and "ocr predict" in err
    (tmp_path / "empty").mkdir()
    assert "no part-*.parquet files" in _fails(capsys, "--predictions", tmp_path / "empty")


def test_table_without_expected_columns(tmp_path, capsys):
    path = tmp_path / "other.parquet"
    pq.write_table(pa.table({"id": ["a"], "text": ["x"]}), path)
    err = _fails(capsys, "--predictions", path)
    assert str(path) in err and "missing column(s) source, confidence, error, label" in err
    assert "write it with `ocr predict`" in err
    (tmp_path / "junk.parquet").write_text("not parquet")
    assert "not a Parquet file" in _fails(capsys, "--predictions", tmp_path / "junk.parquet")


def test_bad_labels_path(tmp_path, capsys):
    table = write_table(tmp_path / "pred", HAND_MADE)
    err = _fails(capsys, "--predictions", table, "--labels", tmp_path / "labels.tsv")
    assert f"--labels {tmp_path / 'labels.tsv'}: no such file" in err and "omit --labels" in err
    err = _fails(capsys, "--predictions", table, "--labels", tmp_path)
    assert "a directory without manifest.json" in err


def test_dataset_split_that_does_not_exist(dataset, tmp_path, capsys):
    table = write_table(tmp_path / "pred", HAND_MADE)
    err = _fails(capsys, "--predictions", table, "--labels", dataset[0], "--split", "test")
    assert f"--labels {dataset[0]}: no split 'test' (has train)" in err


def test_unlabelled_table_without_labels_is_an_error_not_n_0(tmp_path, capsys):
    table = write_table(tmp_path / "pred", [row("a", None, "alpha", 0.5), row("b", None, "beta", 0.5)])
    err = _fails(capsys, "--predictions", table)
    assert err.count("\n") == 1 and "no row has a label (2 rows" in err and "pass --labels" in err


def test_two_models_side_by_side(crops, tmp_path, capsys):
    deep = crops / ("a-very-long-directory-name-" * 4) / "b.png"  # a path longer than a card is wide
    deep.parent.mkdir()
    (crops / "b.png").rename(deep)
    src = {"alpha": str(crops / "a.png"), "Beta": str(deep), "gamma": str(crops / "c.png")}
    manifest = images.write_manifest(tmp_path / "labels.tsv", [(path, label) for label, path in src.items()])

    def table(name, model, guesses):
        return write_table(tmp_path / name, [{**row(record_id(src[label], label), label, text, 0.75,
                                                     source=src[label]), "model": model}
                                             for label, text in guesses.items()])

    a = table("a", "crnn@1", {"alpha": "alpha", "Beta": "8eta", "gamma": "gamma"})
    b = table("b", "pp-ocrv6", {"alpha": "alpha", "Beta": "Beta", "gamma": "garnma"})
    single = [run_evaluate(capsys, "--predictions", t, "--labels", manifest) for t in (a, b)]
    report = tmp_path / "report"
    both = run_evaluate(capsys, "--predictions", a, "--predictions", b, "--labels", manifest,
                        "--report", report)
    assert both == {"comparison": single, "names": ["crnn@1", "pp-ocrv6"]}
    assert run_evaluate(capsys, "--predictions", a, b, "--labels", manifest) == both  # one flag, two tables
    assert json.loads((report / "metrics.json").read_text()) == both
    page = (report / "index.html").read_text()
    shown = html.unescape(re.sub(r"<[^>]+>", " ", page))
    assert "<th>Metric</th><th>crnn@1</th><th>pp-ocrv6</th>" in page
    assert re.search(r"Word accuracy \(exact\)\s+66.7 %\s+66.7 %", shown)
    assert re.search(r"Character error rate \(CER\)\s+7.1 %\s+14.3 %", shown)  # 1/14 vs 2/14
    assert "crnn@1: exact" in page and "pp-ocrv6: CER" in page
    assert page.count('class="card"') == 2 and len(data_uris(page)) == 2
    # the full source path is in the card (wrapped by CSS, and on hover), not cut off with an ellipsis
    assert f'<div class="src" title="{deep}">{deep}</div>' in page
    assert "text-overflow:ellipsis" not in page and "the predictions table" not in shown
    assert f"{a} (3 prediction rows)" in shown and "(a labels manifest)" in shown
