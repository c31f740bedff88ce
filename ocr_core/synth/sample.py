"""One dataset image as a pure function of (seed, index): its label, font, neighbouring fragments and encoded
bytes, so any number of workers writes the same files."""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from ocr_core.synth.fontset import FontInfo
from ocr_core.synth.render import IMAGE_FORMATS, SYNTH_VERSION, SYNTH_VERSIONS, encode_image, render_word
from ocr_core.synth.signs import StylePool, render_sign, style_pool
from ocr_core.synth.text import DEFAULT_WORDS, TextSampler, punctuate

PUNCTUATED_SHARE = 0.4  # version 4: of the images, drawn with punctuation their label leaves out
SIGN_SHARE = 0.35  # version 5: of the images, large sign crops drawn by `signs.render_sign`
STYLE_FONT_SHARE = 0.6  # version 5: of the sign crops, in a script, brush or display face (else any font)


@dataclass(frozen=True)
class Sample:
    """One generated image."""

    index: int
    label: str
    font: FontInfo
    data: bytes


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
    """

    def __init__(self, seed: int, font_list: tuple[FontInfo, ...], image_format: str = "jpg",
                 words_path: str = DEFAULT_WORDS, version: int = SYNTH_VERSION,
                 backgrounds: tuple[str, ...] = ()):
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
        self.version, self.backgrounds = version, tuple(backgrounds)
        tree: dict[str, dict[str, list[FontInfo]]] = {}
        for f in sorted(font_list, key=lambda f: f.path):
            tree.setdefault(f.group, {}).setdefault(f.family, []).append(f)
        self._tree = [[fam for _, fam in sorted(fams.items())] for _, fams in sorted(tree.items())]

    @functools.cached_property
    def sampler(self) -> TextSampler:
        return TextSampler(self.words_path)

    @functools.cached_property
    def styles(self) -> StylePool:
        return style_pool(self.font_list)

    def __getstate__(self) -> dict:  # each process loads its own word list and style pool
        return {k: v for k, v in self.__dict__.items() if k not in ("sampler", "styles")}

    def pick_font(self, rng: np.random.Generator) -> FontInfo:
        families = self._tree[rng.integers(len(self._tree))]
        files = families[rng.integers(len(families))]
        return files[rng.integers(len(files))]

    def __call__(self, index: int) -> Sample:
        rng = np.random.default_rng([self.seed, index])
        label = self.sampler.sample(rng, upper_share=0.35 if self.version >= 3 else None)
        font = self.pick_font(rng)
        left = self.sampler.word(rng)[-3:] if rng.random() < 0.08 else ""
        right = self.sampler.word(rng)[:3] if rng.random() < 0.08 else ""
        shown = punctuate(label, rng) if self.version >= 4 and rng.random() < PUNCTUATED_SHARE else label
        if self.version >= 5 and rng.random() < SIGN_SHARE:
            styled = self.styles.pick(rng, shown) if rng.random() < STYLE_FONT_SHARE else None
            font = styled or font
            rgb = render_sign(shown, font, rng, self.backgrounds)
        else:
            rgb = render_word(shown, font, rng, left, right, self.version, self.backgrounds)
        return Sample(index, label, font, encode_image(rgb, self.image_format, rng, self.version))
