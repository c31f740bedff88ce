"""`ocr label` and `ocr predict --model pp-ocrv6` end to end on real fonts, the real PP-OCRv6 network and the
DirectRunner: confident crops become a manifest `ocr build-dataset` reads, the rest go to review."""
from pathlib import Path

import numpy as np
import pytest

from ocr_core import Recognizer, predictions
from ocr_core.dataset import Dataset
from ocr_core.errors import UsageError
from pipelines import build_dataset, label, predict
from tests import images

WORDS = ["Hello", "market", "OPEN", "Station", "coffee"]
IN_MEMORY = ["--workers", "1"]


@pytest.fixture(scope="module")
def crops(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("crops")
    for i, word in enumerate(WORDS):
        images.write(d / f"w{i}.png", images.encode(images.rendered_text(word)))
    rng = np.random.default_rng(0)
    images.write(d / "noise.png", images.encode(rng.integers(0, 256, (48, 160, 3), dtype=np.uint8)))
    images.write(d / "broken.png", images.truncated_png(images.word_image("cut")))
    return d


def test_predict_with_pp_ocrv6_reads_crops_and_agrees_with_the_python_api(crops, tmp_path):
    out = tmp_path / "pred"
    predict.run(["--model", "pp-ocrv6", "--input", str(crops), "--output", str(out), *IN_MEMORY])
    rows = {Path(r["source"]).name: r for r in predictions.read_table(str(out)).rows}
    assert {r["model"] for r in rows.values()} == {"pp-ocrv6"} and len(rows) == 7
    assert [rows[f"w{i}.png"]["text"] for i in range(len(WORDS))] == WORDS
    assert rows["broken.png"]["error"].startswith("truncated")
    api = Recognizer("pp-ocrv6", batch_size=2).read([str(crops / name) for name in sorted(rows)])
    for name, r in zip(sorted(rows), api):
        assert (r.text, r.error and r.error.split(":")[0]) == (rows[name]["text"],
                                                                rows[name]["error"] and
                                                                rows[name]["error"].split(":")[0])
        if r.confidence is not None:
            assert r.confidence == pytest.approx(rows[name]["confidence"], abs=1e-4)


def test_label_writes_a_manifest_build_dataset_reads_and_a_review_file(crops, tmp_path, capsys):
    out = tmp_path / "lab" / "labels.tsv"
    label.run(["--input", str(crops), "--output", str(out), "--min-confidence", "0.9", *IN_MEMORY])
    lines = out.read_text().splitlines()
    assert lines[0] == "path\tlabel"
    got = {Path(p).name: text for p, text in (line.split("\t") for line in lines[1:])}
    assert got == {f"w{i}.png": w for i, w in enumerate(WORDS)}
    review = (tmp_path / "lab" / "review.tsv").read_text()
    entries = [x for x in review.splitlines() if x and not x.startswith("#") and x != "path\tlabel"]
    assert [Path(x.split("\t")[0]).name for x in entries] == ["noise.png"]
    assert "broken.png\ttruncated" in review  # the unreadable crop, as a comment
    assert not list((tmp_path / "lab").glob("_label-*")) and not list((tmp_path / "lab").glob("*.tmp"))
    assert "5 labelled" in capsys.readouterr().out
    # both files are manifests: the labels build into records, the reviewed crop appends to them
    ds = tmp_path / "ds"
    build_dataset.run(["--input", str(out), "--output", str(ds), "--val-fraction", "0", *IN_MEMORY])
    assert Dataset.load(str(ds)).counts["train"] == len(WORDS)
    (tmp_path / "lab" / "review.tsv").write_text(review.replace("\t" + entries[0].split("\t")[1], "\tnoise"))
    build_dataset.run(["--input", str(tmp_path / "lab" / "review.tsv"), "--output", str(ds), "--append",
                       "--val-fraction", "0", *IN_MEMORY])
    assert Dataset.load(str(ds)).counts["train"] == len(WORDS) + 1


def test_check_labels_keeps_the_crops_whose_label_the_model_reads_and_reviews_the_rest(crops, tmp_path):
    manifest = tmp_path / "given.tsv"  # two wrong labels among right ones, one crop without a readable word
    given = {"w0.png": "HELLO", "w1.png": "marked", "w2.png": "open", "w3.png": "Station", "w4.png": "toffee",
             "noise.png": "noise"}
    manifest.write_text("path\tlabel\n" + "".join(f"{crops / n}\t{t}\n" for n, t in given.items()))
    out = tmp_path / "lab" / "labels.tsv"
    label.run(["--input", str(manifest), "--output", str(out), "--check-labels", *IN_MEMORY])
    kept = dict(line.split("\t") for line in out.read_text().splitlines()[1:])
    assert {Path(p).name: t for p, t in kept.items()} == {"w0.png": "HELLO", "w2.png": "open",
                                                          "w3.png": "Station"}
    review = (tmp_path / "lab" / "review.tsv").read_text()
    assert "did not read" in review and "the model read 'market'" in review
    entries = [x.split("\t") for x in review.splitlines()
               if x and not x.startswith("#") and x != "path\tlabel"]
    assert sorted((Path(p).name, t) for p, t in entries) == [("noise.png", "noise"), ("w1.png", "marked"),
                                                               ("w4.png", "toffee")]


def test_label_refuses_to_overwrite_and_a_directory_output(crops, tmp_path):
    out = tmp_path / "labels.tsv"
    out.write_text("keep me\n")
    with pytest.raises(UsageError, match="already exist"):
        label.run(["--input", str(crops), "--output", str(out)])
    assert out.read_text() == "keep me\n"
    with pytest.raises(UsageError, match="is a directory"):
        label.run(["--input", str(crops), "--output", str(tmp_path)])
    with pytest.raises(UsageError, match="min-confidence"):
        label.run(["--input", str(crops), "--output", str(tmp_path / "x.tsv"), "--min-confidence", "2"])
