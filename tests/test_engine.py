"""The recognition engines (ocr_core.engine) and the Python API (ocr_core.Recognizer) on real fonts and real
networks: the shipped CRNN bundle and PP-OCRv6 small from the rapidocr wheel."""
from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from PIL import Image

from ocr_core import Reading, Recognizer, engine, preprocess
from ocr_core.engine import PPOCR, PpocrSpec, canvas_width, open_model, padded_width, ppocr_batch, ppocr_width
from ocr_core.errors import InputError
from ocr_core.lexicon import LexiconWarning
from ocr_core.preprocess import decode_bgr
from tests import images

WORDS = ["Hello", "market", "OPEN", "Station", "42", "coffee"]
rendered = images.rendered_text


def png(img: np.ndarray) -> bytes:
    return cv2.imencode(".png", img)[1].tobytes()


@pytest.fixture(scope="module")
def ppocr():
    return Recognizer(PPOCR)


def test_pp_ocrv6_reads_rendered_words_and_a_line(ppocr):
    lines = ["Open daily from 9 to 5", "Price: $2.50 per cup"]
    got = ppocr.read([rendered(w) for w in WORDS + lines])
    assert [r.text for r in got] == WORDS + lines
    assert all(r.error is None and 0 < r.confidence <= 1.0 for r in got)
    assert min(r.confidence for r in got[:len(WORDS)]) > 0.9  # best-path probability: clean words are sure
    assert ppocr.name == PPOCR


def test_width_groups_hold_one_padded_width_and_every_index_once():
    widths = [300, 40, 48, 1000, 44, 310, 45, 47]
    groups = engine.width_groups(widths, size=2)
    assert sorted(i for g in groups for i in g) == list(range(len(widths)))
    assert [padded_width(w) for w in (8, 40, 47, 150, 300, 1000, 2400)] == [8, 40, 48, 160, 320, 1024, 2560]
    margin = PpocrSpec().margin
    for g in groups:
        assert len(g) <= 2 and len({canvas_width(widths[i]) for i in g}) == 1
        for i in g:
            assert margin <= canvas_width(widths[i]) - widths[i] <= margin + (widths[i] + margin) / 8
    # a batch in any order gives each crop the same probabilities as running it alone
    m = open_model(PPOCR)
    forward = m.load(threads=1)
    crops = [m.prepare(png(rendered(w))) for w in ["a", "Hello world again", "Station", "hi"]]
    together = forward(crops)
    for crop, probs in zip(crops, together):
        alone = forward([crop])[0]
        assert probs.shape == alone.shape
        np.testing.assert_allclose(probs, alone, atol=1e-5)


def test_ppocr_preprocessing_keeps_the_aspect_ratio_and_scales_to_minus_one_one():
    spec = PpocrSpec()
    assert ppocr_width(200, 100, spec) == 96 and ppocr_width(2000, 40, spec) == 2400
    assert ppocr_width(10_000, 10, spec) == spec.max_width and ppocr_width(5, 500, spec) == spec.min_width
    m = open_model(PPOCR)
    x = m.prepare(png(rendered("Hello", size=80)))
    assert x.dtype == np.uint8 and x.shape[0] == 48 and x.shape[2] == 3
    batch = ppocr_batch([x, x[:, :20]])
    assert batch.shape == (2, 3, 48, canvas_width(x.shape[1])) and batch.min() >= -1 and batch.max() <= 1
    assert batch.shape[3] >= x.shape[1] + PpocrSpec().margin  # blank frames after the text, as PP-OCR expects
    assert (batch[1, :, :, 20:] == 0).all()  # padding is 0 after scaling


def test_decode_bgr_composites_alpha_over_white_and_expands_gray():
    rgba = np.zeros((4, 4, 4), np.uint8)  # fully transparent black
    assert (decode_bgr(png(rgba)) == 255).all()
    gray = np.full((3, 5), 77, np.uint8)
    assert decode_bgr(png(gray)).shape == (3, 5, 3) and (decode_bgr(png(gray)) == 77).all()
    deep = np.full((3, 5, 3), 65535, np.uint16)
    assert (decode_bgr(png(deep)) == 255).all()
    with pytest.raises(InputError):
        decode_bgr(b"\x89PNG\r\n\x1a\n broken")


def test_recognizer_takes_paths_bytes_and_arrays_and_reports_bad_items_in_order(tmp_path):
    path = tmp_path / "word.png"
    path.write_bytes(png(rendered("Station")))
    jpeg = io.BytesIO()
    Image.fromarray(cv2.cvtColor(rendered("market"), cv2.COLOR_BGR2RGB)).save(jpeg, "JPEG", quality=95)
    items = [str(path), tmp_path / "missing.png", jpeg.getvalue(), b"not an image",
             cv2.cvtColor(rendered("OPEN"), cv2.COLOR_BGR2GRAY), np.zeros((0, 4), np.uint8), 3.5]
    got = Recognizer(batch_size=3).read(items)  # the shipped model; batches cut across good and bad items
    assert len(got) == len(items) and all(isinstance(r, Reading) for r in got)
    assert [r.text for r in got[::2][:3]] == ["Station", "market", "OPEN"]
    for bad, reason in zip((got[1], got[3], got[5], got[6]),
                           ("missing_file", "not_an_image", "not_an_image", "not_an_image")):
        assert bad.text is None and bad.confidence is None and bad.error.startswith(reason + ":")


def test_recognizer_reads_a_single_path_bytes_or_array_as_a_list_of_one(tmp_path):
    path = tmp_path / "word.png"
    path.write_bytes(png(rendered("Station")))
    rec = Recognizer()
    for item in (str(path), path, path.read_bytes(), rendered("Station")):  # was split into chars or rows
        got = rec.read(item)
        assert len(got) == 1 and got[0].text == "Station", item if isinstance(item, str) else type(item)


def test_recognizer_reads_a_phone_photo_stored_sideways_with_exif_orientation_6(ppocr):
    upright = Image.fromarray(cv2.cvtColor(rendered("Station"), cv2.COLOR_BGR2RGB))
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display": what a phone held upright writes
    jpeg = io.BytesIO()
    upright.transpose(Image.Transpose.ROTATE_90).save(jpeg, "JPEG", quality=95, exif=exif)
    assert [r.text for r in ppocr.read([jpeg.getvalue()])] == ["Station"]
    assert [r.text for r in Recognizer().read([jpeg.getvalue()])] == ["Station"]  # the shipped CRNN too


def test_a_word_written_sideways_is_read_turned_back_and_level_words_are_read_as_they_are():
    """A text-line model reads a crop 1.5-3 times as tall as wide also turned a quarter either way and keeps
    the most confident reading (ICDAR 2015's sideways words); before, it read the squeezed tall crop."""
    words = ["OPEN", "Exit", "SALE", "cafe"]
    tall = [cv2.rotate(rendered(w), turn) for w in words
            for turn in (cv2.ROTATE_90_CLOCKWISE, cv2.ROTATE_90_COUNTERCLOCKWISE)]
    assert all(1.5 <= t.shape[0] / t.shape[1] <= 3 for t in tall)
    rec = Recognizer()  # the shipped model: a text-line model
    assert [r.text for r in rec.read([png(t) for t in tall])] == [w for w in words for _ in range(2)]
    assert [r.text for r in rec.read([png(rendered(w)) for w in words])] == words


def test_only_a_line_models_tall_crops_get_turns():
    line, word = open_model().spec, engine.PreprocessSpec()  # the shipped line model's; a word model's
    assert line.dynamic_width and not word.dynamic_width
    square, tall, taller = (np.full((h, 40), 200, np.uint8) for h in (50, 80, 121))
    turns = engine.prepare_crnn(png(tall), line)
    assert isinstance(turns, engine.Turns)
    views, kept, upright = turns
    h = line.height  # the views at the model's height, each as wide as its aspect ratio makes it
    assert [t.shape for t in views] == [(h, h // 2), (h, 2 * h), (h, 2 * h)]
    assert [k.shape for k in kept] == [(40, 80)] * 2
    assert upright.shape == (min(80, 2 * h), min(40, h))  # kept to widen, at most twice the model's height
    assert turns.nbytes == sum(v.nbytes for v in views) + sum(k.nbytes for k in kept) + upright.nbytes
    assert not isinstance(engine.prepare_crnn(png(square), line), engine.Turns)
    assert not isinstance(engine.prepare_crnn(png(tall), word), engine.Turns)
    assert isinstance(open_model().prepare(png(tall)), np.ndarray)  # the network's input alone, unless asked
    assert isinstance(open_model().prepare(png(tall), straighten=True), engine.Turns)
    # over 3 times as tall: read turned only (a book's spine); without the turns, refused as before
    wide = preprocess.image_width(preprocess.target_width(121, 40, line), line)  # turned: 121 wide
    assert [t.shape for t in engine.prepare_crnn(png(taller), line)[0]] == [(h, wide), (h, wide)]
    with pytest.raises(InputError, match="vertical_text"):
        engine.prepare_crnn(png(taller), line, straighten=False)


def test_recognizer_beam_top_k_and_lexicon(tmp_path):
    crop = rendered("coffee")
    top = Recognizer(decoder="beam", beam_width=5, top_k=3).read([crop])[0]
    assert top.text == "coffee" and 1 <= len(top.candidates) <= 3
    assert top.candidates[0][0] == "coffee" and top.candidates[0][1] == pytest.approx(top.confidence)
    forced = Recognizer(lexicon=["toffee", "market"]).read([crop])[0]
    assert forced.text == "toffee"  # the lexicon word nearest to what the model read
    frames = open_model(None).time_steps  # of the widest crop the shipped model takes
    refused = f"1 of 3 words refused, longer than the model can emit in its {frames}"
    with pytest.warns(LexiconWarning, match=refused):
        api = Recognizer(lexicon=["toffee", "market", "coffee" * (frames // 6 + 1)])  # never emitted
    assert api.decode.matcher.lexicon.words == ("toffee", "market") and api.read([crop])[0].text == "toffee"


def test_unknown_model_names_and_bad_options_are_one_line_errors(tmp_path):
    from ocr_core.bundle import BundleError

    with pytest.raises(BundleError):
        Recognizer(tmp_path)  # not a bundle
    with pytest.raises(ValueError):
        Recognizer(batch_size=0)
    with pytest.raises(ValueError, match="ONNX Runtime only"):
        Recognizer(PPOCR, engine="tf")
