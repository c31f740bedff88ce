"""Lexicon-constrained decoding: the CTC forward score, the BK-tree and lexicon files."""
import itertools
import math
import random
import string

import numpy as np
import pytest

from ocr_core.charset import Charset
from ocr_core.lexicon import BKTree, Lexicon, LexiconDecoder, LexiconError, ctc_log_likelihood, match_key
from ocr_core.metrics import edit_distance


def brute_force_likelihoods(probs: np.ndarray) -> dict[tuple, float]:
    """p(label) of every label the frames can emit: the sum over all C**T paths, collapsed by CTC's rule."""
    steps, classes = probs.shape
    total: dict[tuple, float] = {}
    for path in itertools.product(range(classes), repeat=steps):
        label = tuple(c for i, c in enumerate(path) if c != 0 and (i == 0 or c != path[i - 1]))
        total[label] = total.get(label, 0.0) + float(np.prod(probs[np.arange(steps), path]))
    return total


@pytest.mark.parametrize("steps,classes,seed", [(1, 3, 0), (4, 3, 1), (5, 4, 2), (6, 3, 3)])
def test_ctc_forward_equals_the_sum_over_all_alignments(steps, classes, seed):
    probs = np.random.default_rng(seed).dirichlet(np.full(classes, 0.7), size=steps)
    truth = brute_force_likelihoods(probs)
    assert math.isclose(sum(truth.values()), 1.0)
    labels = [list(label) for label in truth if label]  # mixed lengths, repeats like (1, 1) included
    got = np.exp(ctc_log_likelihood(np.log(probs), labels))
    np.testing.assert_allclose(got, [truth[tuple(label)] for label in labels], rtol=1e-9, atol=1e-300)
    # labels the frames cannot emit: longer than T, or needing a blank between repeats that do not fit
    too_long = [[1] * (steps + 1), [2, 2] * ((steps + 1) // 2)]
    assert np.all(ctc_log_likelihood(np.log(probs), too_long) == -np.inf)


def test_ctc_forward_handles_many_words_in_chunks():
    rng = np.random.default_rng(4)
    probs = rng.dirichlet(np.ones(5), size=12)
    labels = [list(rng.integers(1, 5, size=rng.integers(1, 7))) for _ in range(5000)]  # > one chunk
    whole = ctc_log_likelihood(np.log(probs), labels)
    one_by_one = [ctc_log_likelihood(np.log(probs), [label])[0] for label in labels[::250]]
    np.testing.assert_allclose(whole[::250], one_by_one)


def random_words(rng: random.Random, n: int, alphabet: str = "abcde", max_len: int = 8) -> list[str]:
    return ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, max_len))) for _ in range(n)]


@pytest.mark.parametrize("seed", range(3))
def test_bk_tree_queries_equal_a_full_scan(seed):
    rng = random.Random(seed)
    words = random_words(rng, 400)  # small alphabet: many near neighbours, repeats and the empty word
    tree = BKTree(words)
    for query in random_words(rng, 40) + ["", "abcdeabcdeab"]:
        scan = [(edit_distance(query, w), i) for i, w in enumerate(words)]
        for radius in (0, 1, 2, 3, 5):
            close = sorted(x for x in scan if x[0] <= radius)
            assert tree.search(query, radius) == close
            for at_least in (1, 7, 64, 500):  # the nearest words when too few are that close
                want = close if len(close) >= at_least else sorted(scan)[:at_least]
                assert tree.search(query, radius, at_least) == want
    assert BKTree([]).search("a", 3) == [] and BKTree([]).search("a", 0, 5) == []


def test_lexicon_file_rules():
    text = "\ufeffPark\n\n  park \nMain St\nCAFÉ\nstreet\nPARK\nStreet\n\ncafé\n"
    lex = Lexicon.parse(text, Charset())
    assert lex.words == ("Park", "street")  # blank lines, case-insensitive repeats and the BOM dropped
    assert lex.skipped == ("Main St", "CAFÉ") and lex.unknown == " É"  # "café" repeats "CAFÉ"
    assert lex.skipped_note() == ("2 of 4 words skipped, characters outside the model's charset ( É): "
                                  "Main St, CAFÉ")
    keep_case = Lexicon.parse(text.replace("\ufeff", ""), Charset(), case_sensitive=True)
    assert keep_case.words == ("Park", "park", "street", "PARK", "Street")
    assert keep_case.skipped == ("Main St", "CAFÉ", "café")
    with pytest.raises(LexiconError, match="no words"):
        Lexicon.parse("\n \n", Charset())
    with pytest.raises(LexiconError, match=r"none of its 2 words .*: éï\)"):
        Lexicon.parse("café\nnaïve", Charset(string.ascii_lowercase))
    assert Lexicon.parse("café\nnaïve", Charset(string.ascii_lowercase + "ï")).words == ("naïve",)


def frames_spelling(text: str, charset: Charset, sharpness: float = 4.0, seed: int = 0) -> np.ndarray:
    """Probabilities [T, C] that read `text` (a blank between letters) over random noise."""
    rng = np.random.default_rng(seed)
    path = [0]
    for ch in text:
        path += [charset.encode(ch)[0], 0]
    logits = rng.normal(size=(len(path), charset.num_classes))
    logits[np.arange(len(path)), path] += sharpness
    e = np.exp(logits - logits.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def test_decoder_picks_the_likeliest_near_word_and_keeps_the_lexicon_spelling():
    charset = Charset()
    lex = Lexicon.from_words(["Harbour", "harbor", "arbour", "Market", "garden"], charset)
    probs = frames_spelling("HARB0UR", charset)  # upper case, and a zero for the O
    scores = LexiconDecoder(lex, charset).score_all(probs)  # every word's log-likelihood
    assert lex.words[int(np.argmax(scores))] == "Harbour"
    for min_candidates, scored in [(64, 5), (1, 3)]:  # the whole small lexicon, or only those within δ
        m = LexiconDecoder(lex, charset, min_candidates=min_candidates).decode(probs, ["HARB0UR"])
        assert m.word == "Harbour" and m.distance == 1 and m.candidates == scored
        assert 0.0 < m.probability <= m.confidence <= 1.0
        near = [i for i, w in enumerate(lex.words) if edit_distance(match_key(w), "harb0ur") <= 3]
        posterior = math.exp(scores[0] - np.logaddexp.reduce(scores[near if scored == 3 else slice(None)]))
        assert math.isclose(m.confidence, posterior) and math.isclose(m.probability, math.exp(scores[0]))
    # case folding: the upper-case frames support "Harbour" far better when case is ignored
    strict = LexiconDecoder(Lexicon.from_words(lex.words, charset, case_sensitive=True), charset)
    assert strict.score_all(probs)[0] < scores[0] - 5


def test_decoder_falls_back_to_the_nearest_words():
    charset = Charset()
    lex = Lexicon.from_words(["hi", "sesquipedalian", "ha", "xyzzy", "plugh"], charset)
    decoder = LexiconDecoder(lex, charset, max_distance=1, min_candidates=2)
    probs = frames_spelling("xyzzq", charset)
    assert decoder.candidates(["xyzzq"]) == [(1, 3), (5, 0)]  # one within 1, topped up: hi/ha/plugh tie at 5
    assert LexiconDecoder(lex, charset, max_distance=1, min_candidates=1).candidates(["xyzzq"]) == [(1, 3)]
    assert decoder.candidates(["qqqq"]) == [(4, 0), (4, 2)]  # none within 1: the two nearest
    assert decoder.candidates(["qqqq", "xyzzq"]) == [(1, 3), (4, 0), (4, 2)]  # each reading's own
    assert decoder.decode(probs, ["xyzzq"]).word == "xyzzy"
    assert len(LexiconDecoder(lex, charset, max_distance=50, min_candidates=1).candidates([""])) == 5


def test_decoder_over_random_lexicons_matches_the_restricted_full_scan():
    charset = Charset("abcdef")
    rng = random.Random(7)
    for trial in range(20):
        lex = Lexicon.from_words(random_words(rng, 60, "abcdef", 7), charset)
        decoder = LexiconDecoder(lex, charset, max_distance=2, min_candidates=8)
        truth = rng.choice(lex.words)
        probs = frames_spelling(truth, charset, sharpness=1.5, seed=trial)  # noisy: readings go wrong
        reading = charset.decode(v for i, v in enumerate(probs.argmax(1))
                                 if v and (i == 0 or v != probs[i - 1].argmax()))
        m = decoder.decode(probs, [reading])
        scores = decoder.score_all(probs)
        dist = np.array([edit_distance(reading, w) for w in lex.words])
        pool = np.nonzero(dist <= 2)[0]
        if len(pool) < 8:
            pool = np.array(sorted(range(len(dist)), key=lambda i: (dist[i], i))[:8])
        assert m.word == lex.words[pool[np.argmax(scores[pool])]] and m.candidates == len(pool)

