"""The fonts: the train/held-out split by family and design, pinned held-out designs and files, excluded
symbol and borrowed-Latin fonts."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ocr_core import synth


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
