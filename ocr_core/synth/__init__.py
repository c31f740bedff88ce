"""Offline MJSynth-like word images: the fonts installed on this machine, dictionary and code-like text, and
scene-text effects. Every image is a pure function of (seed, index), so any worker count writes the same
files.

Modules, lowest first (each imports only those before it): `fontset` (fonts and their train/held-out split),
`text` (labels), `scene` (version 3's photographic looks), `render` (one word image), `signs` (version 5's
large sign crops: arcs, script/brush/display faces, relief, ornaments), `sample` (image i of a dataset),
`write` (the dataset on disk).
"""
from ocr_core.synth.fontset import (
    DEFAULT_FONT_DIRS,
    FONT_SPLITS,
    MIN_HELDOUT_FAMILIES,
    PINNED_HELDOUT_FAMILIES,
    PINNED_HELDOUT_FILES,
    FontInfo,
    assign_splits,
    discover_fonts,
    fonts,
    has_oldstyle_figures,
)
from ocr_core.synth.render import IMAGE_FORMATS, SYNTH_VERSION, SYNTH_VERSIONS, encode_image, render_word
from ocr_core.synth.sample import Sample, SampleMaker
from ocr_core.synth.scene import BACKGROUND_DIRS
from ocr_core.synth.text import DEFAULT_WORDS, MAX_LABEL_LEN, TextSampler, fits_ctc, load_lexicon
from ocr_core.synth.write import LAYOUTS, existing_dataset, generate, labels_file

__all__ = [
    "BACKGROUND_DIRS", "DEFAULT_FONT_DIRS", "DEFAULT_WORDS", "FONT_SPLITS", "IMAGE_FORMATS", "LAYOUTS",
    "MAX_LABEL_LEN", "MIN_HELDOUT_FAMILIES", "PINNED_HELDOUT_FAMILIES", "PINNED_HELDOUT_FILES",
    "SYNTH_VERSION", "SYNTH_VERSIONS", "FontInfo", "Sample", "SampleMaker", "TextSampler", "assign_splits",
    "discover_fonts", "encode_image", "existing_dataset", "fits_ctc", "fonts", "generate",
    "has_oldstyle_figures", "labels_file", "load_lexicon", "render_word",
]
