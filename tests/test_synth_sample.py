"""`ocr_core.synth.sample`: image i of a dataset is a pure function of (seed, i), survives pickling (pool
workers), and bad arguments are refused."""
from __future__ import annotations

import pickle

import pytest

from ocr_core import synth

FONTS = synth.fonts("train")


def test_a_sample_depends_on_seed_and_index_only():
    maker = synth.SampleMaker(7, FONTS)
    first = [maker(i) for i in range(4)]
    assert [s.index for s in first] == [0, 1, 2, 3]
    assert all(s.label and s.font in FONTS and s.data.startswith(b"\xff\xd8") for s in first)  # JPEG
    again = synth.SampleMaker(7, FONTS)  # another maker (another worker), in another order
    assert [again(i) for i in (3, 2, 1, 0)][::-1] == first
    copy = pickle.loads(pickle.dumps(maker))
    assert copy(2) == first[2]
    assert synth.SampleMaker(8, FONTS)(0).data != first[0].data
    assert len({s.data for s in first}) == 4


def test_png_format():
    sample = synth.SampleMaker(7, FONTS, image_format="png")(0)
    assert sample.data.startswith(b"\x89PNG")


@pytest.mark.parametrize("kwargs, message", [
    (dict(seed=-1), "seed must be >= 0"),
    (dict(font_list=()), "no fonts to draw with"),
    (dict(image_format="gif"), "image format 'gif' is not one of"),
    (dict(version=99), "synth version 99 is not one of"),
])
def test_bad_arguments_are_refused(kwargs, message):
    args = dict(seed=0, font_list=FONTS) | kwargs
    with pytest.raises(ValueError, match=message):
        synth.SampleMaker(**args)


def test_version_4_draws_punctuation_its_labels_leave_out():
    """Real labels drop the $ of $2.00 and the % of 72%: version 4 draws such marks into a share of the
    images, labelled with the alphanumerics alone (the same labels and fonts as version 3 for the same
    seed)."""
    import numpy as np

    from ocr_core.synth.text import punctuate

    rng = np.random.default_rng(3)
    for text in ["200", "1024", "hello", "OPEN", "Route66", "a", "7"] * 20:
        shown = punctuate(text, rng)
        assert "".join(c for c in shown if c.isalnum()) == text and shown.isascii()
        assert shown != text, (text, shown)  # always at least one mark
    v3, v4 = synth.SampleMaker(5, FONTS, version=3), synth.SampleMaker(5, FONTS, version=4)
    a, b = [v3(i) for i in range(40)], [v4(i) for i in range(40)]
    assert [(s.label, s.font) for s in a] == [(s.label, s.font) for s in b]
    assert all(s.label.isalnum() for s in b) and sum(x.data != y.data for x, y in zip(a, b)) == 40


def test_lines_are_whole_labelled_text_lines_a_line_model_can_emit(tmp_path):
    """`ocr synth --lines`: 2-7 words and numbers with spaces and punctuation, every mark in the label and in
    configs/lines.yaml's charset, up to 80 characters, wide images; the same seed gives the same bytes; the
    mjsynth layout (the label in a file name) is refused."""
    import cv2
    import numpy as np

    from ocr_core.config import load_config
    from ocr_core.synth.text import MAX_LINE_LEN

    charset = set(load_config("lines").charset)
    maker = synth.SampleMaker(9, FONTS, version=4, lines=True)
    samples = [maker(i) for i in range(12)]
    for s in samples:
        words = s.label.split(" ")
        assert 2 <= len(words) and all(words) and len(s.label) <= MAX_LINE_LEN, s.label
        assert set(s.label) <= charset, s.label
        h, w = cv2.imdecode(np.frombuffer(s.data, np.uint8), cv2.IMREAD_GRAYSCALE).shape
        assert w > 2 * h, (s.label, h, w)
    assert any(not c.isalnum() and c != " " for s in samples for c in s.label)  # punctuation is labelled
    assert [synth.SampleMaker(9, FONTS, version=4, lines=True)(i) for i in range(12)] == samples
    with pytest.raises(ValueError, match="tsv layout"):
        synth.generate(tmp_path / "x", 2, layout="mjsynth", lines=True, progress=False)


LINE_MARKS = "".join(c for c in __import__("ocr_core.config", fromlist=["x"]).load_config("lines").charset
                     if not (c.isalnum() or c == " "))


def test_priced_texts_use_only_the_marks_given():
    """`TextSampler.priced`: prices, percentages, #numbers, @handles and +phone numbers, with no mark the
    charset lacks (without "." a price keeps its digits)."""
    import numpy as np

    from ocr_core.synth.text import TextSampler

    sampler, rng = TextSampler(), np.random.default_rng(0)
    texts = [sampler.priced(rng, LINE_MARKS) for _ in range(400)]
    assert {t[0] for t in texts if not t[0].isalnum()} == {"$", "#", "@", "+"}
    assert any(t.endswith("%") for t in texts) and any("." in t for t in texts if t.startswith("$"))
    assert all(set(t) - set(LINE_MARKS) and any(c.isalnum() for c in t) for t in texts)
    dollars = [sampler.priced(rng, "$") for _ in range(100)]
    assert all(t.startswith("$") and t[1:].isdigit() for t in dollars), dollars


def test_marks_of_the_models_charset_are_labelled_as_drawn():
    """`marks` (`ocr synth --for-config lines`): words, signs and lines are labelled with the marks of the
    charset they show ($4.99, 25%, #12, @shop), every label in that charset; the same seed again gives the
    same samples; without marks the labels stay letters and digits."""
    charset = set(__import__("ocr_core.config", fromlist=["x"]).load_config("lines").charset)
    words = synth.SampleMaker(5, FONTS, version=5, marks=LINE_MARKS)
    samples = [words(i) for i in range(60)]
    assert all(set(s.label) <= charset and " " not in s.label for s in samples)
    assert sum(any(c in "$%#@+" for c in s.label) for s in samples) >= 5, [s.label for s in samples]
    assert [synth.SampleMaker(5, FONTS, version=5, marks=LINE_MARKS)(i) for i in range(60)] == samples
    assert all(synth.SampleMaker(5, FONTS, version=5)(i).label.isalnum() for i in range(60))

    lines = synth.SampleMaker(9, FONTS, version=3, lines=True, marks=LINE_MARKS)
    labels = [lines(i).label for i in range(20)]
    assert all(set(t) <= charset for t in labels)
    assert any(c in "$%#@+" for t in labels for c in t), labels
    plain = [synth.SampleMaker(9, FONTS, version=3, lines=True)(i).label for i in range(20)]
    assert not any(c in "$%#@+" for t in plain for c in t)
    with pytest.raises(ValueError, match="punctuation only"):
        synth.SampleMaker(0, FONTS, marks="$a")
