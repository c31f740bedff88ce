"""Version 3's background pictures: drawn on in version 3, ignored by version 2."""
from __future__ import annotations

import json

import cv2
import numpy as np

from ocr_core import synth


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
