"""The synthetic word generator: deterministic output, both layouts, valid labels, font split and CLI."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from ocr_core import synth
from ocr_core.charset import Charset, ctc_min_steps
from ocr_core.preprocess import preprocess_word_image
from ocr_core.synth import render
from pipelines import cli

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


def test_sampler_covers_many_labels_quickly():
    sampler = synth.TextSampler()
    rng = np.random.default_rng(0)
    labels = [sampler.sample(rng) for _ in range(2000)]
    assert all(synth.fits_ctc(label) for label in labels)
    assert len(set(labels)) > 1000
    assert np.mean([len(label) for label in labels]) < 9  # short words dominate, as in running text


def test_lexicon_drops_words_outside_the_charset(tmp_path):
    words = tmp_path / "words"
    words.write_text("don't\ncafé\nhello\nHello\nhello\nx-ray\n" + "a" * 30 + "\n")
    assert synth.load_lexicon(str(words)) == ("hello", "Hello")


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


def test_font_split_is_disjoint_by_family_and_design():
    train, heldout, every = synth.fonts("train"), synth.fonts("heldout"), synth.fonts("all")
    assert train and heldout
    assert {f.path for f in train} | {f.path for f in heldout} == {f.path for f in every}
    assert not {f.family for f in train} & {f.family for f in heldout}
    assert not {f.group for f in train} & {f.group for f in heldout}
    families = {f.family for f in every}
    held = {f.family for f in heldout}
    assert len(held) >= 3 and len(held) <= 0.3 * len(families)
    assert len({f.family for f in train}) >= 10


def test_symbol_and_borrowed_latin_fonts_are_excluded():
    names = " ".join(Path(f.path).name + " " + f.family for f in synth.fonts("all")).lower()
    for word in ("symbol", "math", "dingbat", "keyboard", "d050000l", "nushu"):
        assert word not in names


def test_splits_depend_on_names_only():
    groups = {f"Family {i}": f"Group {i // 2}" for i in range(40)}
    a = synth.assign_splits(groups)
    b = synth.assign_splits(dict(reversed(list(groups.items()))))
    assert a == b
    held = [f for f, s in a.items() if s == "heldout"]
    assert 3 <= len(held) <= 10
    for i in range(0, 40, 2):  # families of one group share a split
        assert a[f"Family {i}"] == a[f"Family {i + 1}"]


def test_pinned_heldout_designs_survive_new_fonts():
    base = {"EB Garamond": "EB Garamond", "C059": "C059", "TeX Gyre Schola": "C059", "Lato": "Lato",
            "Roboto": "Roboto", "Carlito": "Carlito", "DejaVu Sans": "DejaVu Sans"}
    pinned = frozenset({"EB Garamond", "C059", "TeX Gyre Schola"})
    before = synth.assign_splits(base, pinned)
    assert {f for f, s in before.items() if s == "heldout"} == set(pinned)
    # More fonts, one of them a clone that joins (and renames) the C059 group: the pinned designs stay held
    # out; their new clone is used by neither split (training on it would leak the design, holding it out
    # would change the pinned images); the other new families train; nothing held out moves to train.
    more = {**base, "Aaa Schoolbook": "Aaa Schoolbook", "C059": "Aaa Schoolbook",
            "TeX Gyre Schola": "Aaa Schoolbook",
            **{f"New {i}": f"New {i}" for i in range(30)}}
    after = synth.assign_splits(more, pinned)
    assert {f for f, s in after.items() if s == "heldout"} == set(pinned)
    assert after["Aaa Schoolbook"] == "excluded"
    # Too few pinned families present: topped up to MIN_HELDOUT_FAMILIES; all pinned: one group still trains.
    few = synth.assign_splits({"EB Garamond": "EB Garamond", **{f"New {i}": f"New {i}" for i in range(9)}},
                              pinned)
    assert sum(s == "heldout" for s in few.values()) == synth.MIN_HELDOUT_FAMILIES
    assert few["EB Garamond"] == "heldout"
    only = synth.assign_splits({f: f for f in pinned}, pinned)
    assert sorted(only.values()) == ["heldout", "heldout", "train"]


def test_default_fonts_hold_out_the_pinned_designs():
    held = {f.family for f in synth.fonts("heldout")}
    present = {f.family for f in synth.fonts("all")} & synth.PINNED_HELDOUT_FAMILIES
    assert present and present <= held


def test_a_new_file_of_a_heldout_family_changes_nothing(tmp_path):
    """A package that adds a weight to a held-out family (fonts-dejavu-extra: DejaVu Sans Condensed) must not
    change the pinned held-out images, nor put that design into training."""
    held = synth.fonts("heldout")
    dejavu = [f for f in held if f.family == "DejaVu Sans"]
    if not dejavu:
        pytest.skip("DejaVu Sans (fonts-dejavu-core) is not installed")
    shutil.copy(dejavu[0].path, tmp_path / "DejaVuSansNewWeight.ttf")
    with_copy = synth.fonts("all", str(tmp_path))
    assert not [f for f in with_copy if f.path.startswith(str(tmp_path))]
    assert synth.fonts("heldout", str(tmp_path)) == held


def test_version_3_uses_background_pictures_and_version_2_ignores_them(tmp_path):
    pictures = tmp_path / "pictures"
    pictures.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):  # smooth colour fields as stand-in photographs
        img = cv2.resize(rng.integers(0, 256, size=(6, 9, 3), dtype=np.uint8), (1200, 800))
        cv2.imwrite(str(pictures / f"p{i}.jpg"), img)
    kw = dict(seed=4, workers=1, progress=False)
    v3 = synth.generate(tmp_path / "v3", 40, background_dirs=(str(pictures),), **kw).parent
    meta = json.loads((v3 / "synth.json").read_text())
    assert meta["synth_version"] == 3 and len(meta["backgrounds"]) == 3
    plain = synth.generate(tmp_path / "v3plain", 40, background_dirs=(), **kw).parent
    assert _images(v3) != _images(plain)  # the pictures are drawn on
    a = synth.generate(tmp_path / "v2a", 20, version=2, background_dirs=(str(pictures),), **kw).parent
    b = synth.generate(tmp_path / "v2b", 20, version=2, background_dirs=(), **kw).parent
    assert _images(a) == _images(b) and json.loads((a / "synth.json").read_text())["synth_version"] == 2
    assert (a / "labels.tsv").read_text() == (b / "labels.tsv").read_text()


def _images(root):
    return [p.read_bytes() for p in sorted((root / "images").rglob("*.jpg"))]


def test_heldout_fonts_render(tmp_path):
    out = tmp_path / "heldout"
    synth.generate(out, 20, seed=1, workers=1, font_split="heldout", progress=False)
    heldout = {f.family for f in synth.fonts("heldout")}
    assert {line.split("\t")[1] for line in (out / "fonts.tsv").read_text().splitlines()} <= heldout


def test_oldstyle_figures_are_rendered_in_fonts_that_have_them(monkeypatch):
    train = synth.fonts("train")
    with_onum = [f for f in train if synth.has_oldstyle_figures(f.path)]
    without = [f for f in train if "DejaVu" in f.family]
    assert with_onum and without and not any(synth.has_oldstyle_figures(f.path) for f in without)
    font = with_onum[0]

    def draw(share: float, text: str) -> np.ndarray:
        monkeypatch.setattr(render, "OLDSTYLE_SHARE", share)
        return render._draw_text(np.random.default_rng(0), text, font.path, 40, 0, "", "").fill

    assert not np.array_equal(draw(0.0, "1985"), draw(1.0, "1985"))
    assert np.array_equal(draw(0.0, "word"), draw(1.0, "word"))  # letters never switch glyphs


def test_cli_end_to_end(tmp_path, capsys):
    out = tmp_path / "cli"
    args = ["synth", "--out", str(out), "--count", "30", "--seed", "5", "--workers", "1", "--no-progress"]
    assert cli.main(args) == 0
    summary = capsys.readouterr().out
    assert "30 images" in summary and "images/s" in summary
    assert len((out / "labels.tsv").read_text().splitlines()) == 30

    assert cli.main(args) == 2  # refuses to write over a dataset
    assert "--overwrite" in capsys.readouterr().err

    assert cli.main(args[:4] + ["10", "--layout", "mjsynth", "--workers", "1", "--no-progress",
                                "--overwrite"]) == 0
    assert not (out / "labels.tsv").exists() and not (out / "images").exists()
    assert len((out / "annotation.txt").read_text().splitlines()) == 10
