"""`ocr augment` and its geometry (ocr_core/synth/tilt.py): new views of labelled crops, turned the way the
angle says, every input written or listed as skipped, the same seed the same bytes, and a manifest
`ocr build-dataset` builds."""
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from ocr_core.dataset import Dataset
from ocr_core.errors import UsageError
from ocr_core.synth import tilt
from pipelines import augment, build_dataset, cli
from tests import images


def ink_angle(image: np.ndarray) -> float:
    """The direction of the dark pixels' long axis, degrees counter-clockwise from horizontal."""
    gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    ys, xs = np.nonzero(gray < 128)
    cov = np.cov(np.stack([xs, -ys]).astype(float))
    vals, vecs = np.linalg.eigh(cov)
    x, y = vecs[:, np.argmax(vals)]
    angle = float(np.degrees(np.arctan2(y, x)))  # an axis: fold into (-90, 90]
    return angle - 180 if angle > 90 else angle + 180 if angle <= -90 else angle


def bar(h: int = 30, w: int = 200) -> np.ndarray:
    img = np.full((h, w, 3), 255, np.uint8)
    img[h // 2 - 4:h // 2 + 4, 20:w - 20] = 0
    return img


@pytest.mark.parametrize("angle", [-35.0, -10.0, 0.0, 20.0, 40.0])
def test_a_turn_turns_the_ink_by_the_angle_inside_the_grown_box(angle):
    out = tilt.turned(bar(), angle)
    assert ink_angle(out) == pytest.approx(angle, abs=1.0)
    a = np.radians(abs(angle))
    assert out.shape[1] == pytest.approx(200 * np.cos(a) + 30 * np.sin(a), abs=1.5)
    assert out.shape[0] == pytest.approx(30 * np.cos(a) + 200 * np.sin(a), abs=1.5)


def test_no_turn_and_no_margin_is_the_crop_and_a_margin_grows_the_box():
    img = bar()
    assert np.array_equal(tilt.turned(img, 0.0), img)
    assert tilt.turned(img, 0.0, margin=0.2).shape[:2] == (30 + 12, 200 + 12)
    assert tilt.turned(img, 0.0, margin=-0.1).shape[:2] == (30 - 6, 200 - 6)


def test_views_are_seeded_cover_both_directions_and_skip_tiny_crops():
    img = bar()
    a, b = tilt.views(img, 12, seed=3, index=5), tilt.views(img, 12, seed=3, index=5)
    assert all(np.array_equal(x, y) for x, y in zip(a, b)) and len(a) == 12
    assert not np.array_equal(a[0], tilt.views(img, 1, seed=3, index=6)[0])
    angles = [ink_angle(v) for v in a]
    assert min(angles) < -4 and max(angles) > 4 and max(abs(x) for x in angles) <= tilt.MAX_ANGLE + 2
    assert tilt.views(np.zeros((6, 100, 3), np.uint8), 3, seed=0, index=0) == []


@pytest.fixture()
def manifest(tmp_path) -> Path:
    rows = images.write_words(tmp_path / "crops", ["Hello", "OPEN", "coffee"])
    images.write(tmp_path / "crops" / "tiny.png", images.encode(np.zeros((5, 40), np.uint8)))
    images.write(tmp_path / "crops" / "cut.png", images.truncated_png(images.word_image("cut")))
    rows = [(f"crops/{p}", label) for p, label in rows]
    rows += [("crops/tiny.png", "tiny"), ("crops/cut.png", "cut"), ("crops/gone.png", "gone")]
    path = images.write_manifest(tmp_path / "labels.tsv", rows)
    with open(path, "a") as fh:
        fh.write("no tab on this line\n")
    return path


def test_every_input_is_a_view_or_a_skipped_row_and_the_seed_fixes_the_bytes(manifest, tmp_path, capsys):
    out1, out2 = tmp_path / "v1", tmp_path / "v2"
    for out in (out1, out2):
        assert augment.run(["--input", str(manifest), "--out", str(out), "--views", "3", "--seed", "7"]) == 0
    assert "7 crops -> 9 views" in capsys.readouterr().out
    lines = (out1 / "labels.tsv").read_text().splitlines()
    assert sorted(line.split("\t")[1] for line in lines) == sorted(["Hello", "OPEN", "coffee"] * 3)
    skipped = [line.split("\t")[1] for line in (out1 / "skipped.tsv").read_text().splitlines()]
    assert sorted(skipped) == ["malformed_line", "missing_file", "too_small", "truncated"]
    meta = json.loads((out1 / "augment.json").read_text())
    assert meta["crops"] == meta["viewed"] + meta["skipped"] == 7 and meta["images"] == 9
    for line in lines:
        name = line.split("\t")[0]
        assert (out1 / name).read_bytes() == (out2 / name).read_bytes()
        assert cv2.imread(str(out1 / name)) is not None


def test_the_views_build_into_a_dataset(manifest, tmp_path):
    out = tmp_path / "views"
    augment.run(["--input", str(manifest), "--out", str(out), "--views", "2"])
    ds = tmp_path / "ds"
    build_dataset.run(["--input", str(out / "labels.tsv"), "--output", str(ds), "--workers", "1",
                       "--val-fraction", "0", "--shards", "1"])
    assert Dataset.load(str(ds)).count("train") == 6


def test_an_earlier_output_is_kept_without_overwrite(manifest, tmp_path, capsys):
    out = tmp_path / "views"
    augment.run(["--input", str(manifest), "--out", str(out)])
    before = (out / "labels.tsv").read_bytes()
    with pytest.raises(UsageError, match="--overwrite"):
        augment.run(["--input", str(manifest), "--out", str(out)])
    assert (out / "labels.tsv").read_bytes() == before
    assert cli.main(["augment", "--input", str(manifest), "--out", str(out), "--views", "1",
                     "--overwrite"]) == 0
    assert len((out / "labels.tsv").read_text().splitlines()) == 3
    assert cli.main(["augment", "--input", str(manifest), "--out", str(out / "labels.tsv")]) == 2
    assert "is a file" in capsys.readouterr().err


@pytest.mark.parametrize("flags, message", [(["--seed", "-1"], "--seed must be >= 0"),
                                            (["--max-angle", "100"], "--max-angle must be within 0..90"),
                                            (["--views", "0"], "must be an integer >= 1")])
def test_bad_flags_are_one_line_errors_and_write_nothing(manifest, tmp_path, capsys, flags, message):
    out = tmp_path / "views"
    try:
        code = cli.main(["augment", "--input", str(manifest), "--out", str(out), *flags])
    except SystemExit as e:  # argparse's own errors (a count flag's type) exit from the parser
        code = e.code
    assert code == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) <= 3  # argparse adds its usage line
    assert not out.exists()
