"""One dataset image as a pure function of (seed, index): its label, font, neighbouring fragments and encoded
bytes, so any number of workers writes the same files."""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from ocr_core.synth.fontset import FontInfo
from ocr_core.synth.render import IMAGE_FORMATS, SYNTH_VERSION, SYNTH_VERSIONS, encode_image, render_word
from ocr_core.synth.signs import (
    StylePool,
    misdraws_letters,
    novelty_face,
    plain_letters,
    render_sign,
    style_pool,
)
from ocr_core.synth.text import DEFAULT_WORDS, PRICED_SHARE, SIGN_MARKS, TextSampler, punctuate

PUNCTUATED_SHARE = 0.4  # version 4: of the images, drawn with punctuation their label leaves out
SIGN_SHARE = 0.35  # version 5: of the images, large sign crops drawn by `signs.render_sign`
STYLE_FONT_SHARE = 0.6  # version 5: of the sign crops, in a script, brush or display face (else any font)
SIGN_PUNCTUATED_SHARE = 0.15  # version 5: of the sign crops, drawn with punctuation the label leaves out


@dataclass(frozen=True)
class Sample:
    """One generated image."""

    index: int
    label: str
    font: FontInfo
    data: bytes


def _font_tree(font_list: tuple[FontInfo, ...]) -> list[list[list[FontInfo]]]:
    """Fonts as design group -> family -> files, each level sorted."""
    tree: dict[str, dict[str, list[FontInfo]]] = {}
    for f in sorted(font_list, key=lambda f: f.path):
        tree.setdefault(f.group, {}).setdefault(f.family, []).append(f)
    return [[fam for _, fam in sorted(fams.items())] for _, fams in sorted(tree.items())]


class SampleMaker:
    """Makes image `index` of a dataset from (seed, index) alone; picklable, so pool workers get a copy.

    Fonts are drawn design group first, then family, then file, so the many weights of Lato or the three
    Helvetica clones do not crowd out single-file designs.

    Args:
        seed: the dataset seed (>= 0).
        font_list: the fonts to draw with.
        image_format: "jpg" or "png".
        words_path: the dictionary.
        version: synth version (see SYNTH_VERSIONS).
        backgrounds: (version 3) picture files for natural backgrounds.
        lines: every image is a text line (`TextSampler.line`, punctuation labelled) drawn with the version's
            looks instead of a word; no neighbouring fragments, no sign crops.
        marks: the punctuation of the charset the labels are for (`ocr synth --for-config`). The marks a word
            or sign is drawn with (versions 4-5) are labelled when they are in `marks` and left out otherwise;
            with any of SIGN_MARKS in it, PRICED_SHARE of the words, signs and line tokens are prices,
            percentages, #numbers, @handles or +phone numbers. Empty (the default): the images of before.
    """

    def __init__(self, seed: int, font_list: tuple[FontInfo, ...], image_format: str = "jpg",
                 words_path: str = DEFAULT_WORDS, version: int = SYNTH_VERSION,
                 backgrounds: tuple[str, ...] = (), lines: bool = False, marks: str = ""):
        if seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        if not font_list:
            raise ValueError("no fonts to draw with; install the Debian font packages (make system-deps)")
        if image_format not in IMAGE_FORMATS:
            raise ValueError(f"image format {image_format!r} is not one of {', '.join(IMAGE_FORMATS)}")
        self.seed, self.font_list = seed, font_list
        if version not in SYNTH_VERSIONS:
            raise ValueError(f"synth version {version} is not one of {SYNTH_VERSIONS}")
        self.image_format, self.words_path = image_format, words_path
        self.version, self.backgrounds, self.lines = version, tuple(backgrounds), lines
        if any(c.isalnum() or c.isspace() for c in marks):
            raise ValueError(f"marks {marks!r}: punctuation only")
        self.marks = marks
        self._priced = bool(set(marks) & set(SIGN_MARKS))
        self._tree = _font_tree(font_list)
        # version 5's sign crops: no novelty faces (the rest of `plain_letters` is checked per pick)
        self._sign_tree = _font_tree(tuple(f for f in font_list if not novelty_face(f))) or self._tree

    @functools.cached_property
    def sampler(self) -> TextSampler:
        return TextSampler(self.words_path)

    @functools.cached_property
    def styles(self) -> StylePool:
        return style_pool(self.font_list)

    def __getstate__(self) -> dict:  # each process loads its own word list and style pool
        return {k: v for k, v in self.__dict__.items() if k not in ("sampler", "styles")}

    def pick_font(self, rng: np.random.Generator, tree: list[list[list[FontInfo]]] | None = None) -> FontInfo:
        tree = self._tree if tree is None else tree
        families = tree[rng.integers(len(tree))]
        files = families[rng.integers(len(families))]
        return files[rng.integers(len(files))]

    def __call__(self, index: int) -> Sample:
        rng = np.random.default_rng([self.seed, index])
        if self.lines:
            return self._line(index, rng)
        if self.version >= 5 and rng.random() < SIGN_SHARE:
            return self._sign(index, rng)
        if self._priced and rng.random() < PRICED_SHARE:
            label = self.sampler.priced(rng, self.marks)
        else:
            label = self.sampler.sample(rng, upper_share=0.35 if self.version >= 3 else None)
        font = self.pick_font(rng)
        for _ in range(8 if self.version >= 5 else 0):  # v5: no font whose letters are not the label's
            if not misdraws_letters(font):
                break
            font = self.pick_font(rng)
        left = self.sampler.word(rng)[-3:] if rng.random() < 0.08 else ""
        right = self.sampler.word(rng)[:3] if rng.random() < 0.08 else ""
        shown = punctuate(label, rng) if self.version >= 4 and rng.random() < PUNCTUATED_SHARE else label
        rgb = render_word(shown, font, rng, left, right, self.version, self.backgrounds)
        return Sample(index, self._labelled(label, shown), font,
                      encode_image(rgb, self.image_format, rng, self.version))

    def _labelled(self, label: str, shown: str) -> str:
        """The label of a word drawn as `shown`: with the marks of `self.marks` it shows, not the others."""
        if not self.marks or shown == label:
            return label
        return "".join(c for c in shown if c.isalnum() or c in self.marks)

    def _sign(self, index: int, rng: np.random.Generator) -> Sample:
        """Version 5's large sign crop: a sign-like label in a script, brush or display face (or any font that
        draws plain letters), fewer punctuation marks than version 4."""
        if self._priced and rng.random() < PRICED_SHARE:
            label = self.sampler.priced(rng, self.marks)
        else:
            label = self.sampler.sign_text(rng)
        shown = punctuate(label, rng) if rng.random() < SIGN_PUNCTUATED_SHARE else label
        font = self.styles.pick(rng, shown) if rng.random() < STYLE_FONT_SHARE else None
        for _ in range(8):
            if font is not None and plain_letters(font):
                break
            font = self.pick_font(rng, self._sign_tree)
        rgb = render_sign(shown, font, rng, self.backgrounds)
        return Sample(index, self._labelled(label, shown), font,
                      encode_image(rgb, self.image_format, rng, self.version))

    def _line(self, index: int, rng: np.random.Generator) -> Sample:
        """A text line: its words, numbers and punctuation all in the label."""
        label = self.sampler.line(rng, self.marks)
        font = self.pick_font(rng)
        for _ in range(8):  # a face that draws every letter and mark of the line as itself
            if not misdraws_letters(font):
                break
            font = self.pick_font(rng)
        rgb = render_word(label, font, rng, version=self.version, backgrounds=self.backgrounds, line=True)
        return Sample(index, label, font, encode_image(rgb, self.image_format, rng, self.version))
