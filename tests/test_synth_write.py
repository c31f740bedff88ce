"""Writing datasets: deterministic output for any worker count, both layouts, valid labels and images, the
fonts used."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from ocr_core import synth
from ocr_core.charset import Charset, ctc_min_steps
from ocr_core.preprocess import preprocess_word_image

COUNT = 120


def read_tsv(out: Path) -> list[tuple[str, str]]:
    return [tuple(line.split("\t")) for line in (out / "labels.tsv").read_text().splitlines()]


def image_bytes(out: Path, rows) -> list[bytes]:
    return [(out / rel).read_bytes() for rel, _ in rows]


@pytest.fixture(scope="module")
def datasets(tmp_path_factory) -> dict[str, Path]:
    """The same seed on 2 workers and in-process, another seed, and the MJSynth layout as PNG."""
    root = tmp_path_factory.mktemp("synth")
    runs = {
        "seed3_pool": dict(count=COUNT, seed=3, workers=2),
        "seed3_inline": dict(count=COUNT, seed=3, workers=1),
        "seed4": dict(count=COUNT, seed=4, workers=1),
        "mjsynth": dict(count=60, seed=3, workers=2, layout="mjsynth", image_format="png"),
    }
    for name, kw in runs.items():
        synth.generate(root / name, progress=False, **kw)
    return {name: root / name for name in runs}


def test_same_seed_gives_identical_files_for_any_worker_count(datasets):
    a, b = datasets["seed3_pool"], datasets["seed3_inline"]
    assert (a / "labels.tsv").read_bytes() == (b / "labels.tsv").read_bytes()
    rows = read_tsv(a)
    assert len(rows) == COUNT
    assert image_bytes(a, rows) == image_bytes(b, rows)
    assert (a / "synth.json").read_bytes() == (b / "synth.json").read_bytes()


def test_another_seed_gives_other_images(datasets):
    a, c = read_tsv(datasets["seed3_pool"]), read_tsv(datasets["seed4"])
    assert [label for _, label in a] != [label for _, label in c]
    pairs = zip(image_bytes(datasets["seed3_pool"], a), image_bytes(datasets["seed4"], c))
    assert not any(x == y for x, y in pairs)


def test_tsv_layout(datasets):
    out = datasets["seed3_pool"]
    rows = read_tsv(out)
    assert [rel for rel, _ in rows] == [f"images/000/{i:07d}.jpg" for i in range(COUNT)]
    assert sorted(p.relative_to(out).as_posix() for p in (out / "images").rglob("*.jpg")) == \
        [rel for rel, _ in rows]


def test_mjsynth_layout(datasets):
    out = datasets["mjsynth"]
    lexicon = (out / "lexicon.txt").read_text().splitlines()
    labels = []
    for i, line in enumerate((out / "annotation.txt").read_text().splitlines()):
        rel, lexidx = line.split(" ")
        assert rel.startswith("./1/1/") and rel.endswith(".png")
        stem = Path(rel).stem
        label = stem[stem.find("_") + 1:stem.rfind("_")]
        assert stem == f"{i}_{label}_{lexidx}"
        assert lexicon[int(lexidx)] == label
        assert (out / rel).read_bytes().startswith(b"\x89PNG")
        labels.append(label)
    # Labels are drawn before any format-dependent choice: one seed gives the same words in either layout.
    assert labels == [label for _, label in read_tsv(datasets["seed3_pool"])][:60]


def test_labels_fit_the_charset_and_ctc(datasets):
    charset = Charset()
    labels = [label for _, label in read_tsv(datasets["seed3_pool"]) + read_tsv(datasets["seed4"])]
    for label in labels:
        assert 0 < len(label) <= synth.MAX_LABEL_LEN
        assert ctc_min_steps(charset.encode(label)) <= 31
    # A mix of lowercase words, capitalised or upper-case words, and strings with digits.
    assert any(label.islower() for label in labels)
    assert any(label[:1].isupper() for label in labels)
    assert any(any(c.isdigit() for c in label) for label in labels)


def test_every_image_passes_preprocessing(datasets):
    for name in ("seed3_pool", "mjsynth"):
        for path in sorted(p for p in datasets[name].rglob("*") if p.suffix in (".jpg", ".png")):
            img, width = preprocess_word_image(path.read_bytes())
            assert img.shape == (32, 128) and width >= 1


def test_image_heights_and_fonts_are_varied(datasets):
    import cv2

    out = datasets["seed3_pool"]
    heights = [cv2.imread(str(p)).shape[0] for p in (out / "images").rglob("*.jpg")]
    assert min(heights) >= 12 and max(heights) <= 110 and len(set(heights)) > 10  # version 3 ranges
    used = [line.split("\t") for line in (out / "fonts.tsv").read_text().splitlines()]
    assert len(used) == COUNT
    assert len({family for _, family, _ in used}) >= 8
    meta = json.loads((out / "synth.json").read_text())
    assert sum(meta["font_usage"].values()) == COUNT
    train = {f.family for f in synth.fonts("train")}
    assert {family for _, family, _ in used} <= train


def test_heldout_fonts_render(tmp_path):
    out = tmp_path / "heldout"
    synth.generate(out, 20, seed=1, workers=1, font_split="heldout", progress=False)
    heldout = {f.family for f in synth.fonts("heldout")}
    assert {line.split("\t")[1] for line in (out / "fonts.tsv").read_text().splitlines()} <= heldout
