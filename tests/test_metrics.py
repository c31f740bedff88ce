"""`ocr_core.metrics`: word accuracy protocols, length buckets, the edit-distance alignment and its
confusions, calibration."""
import random

import pytest

from ocr_core import metrics


def test_word_accuracy_protocols():
    m = metrics.summarize([("Hello!", "hello"), ("Hello", "hello"), ("HELLO", "HELLO"), ("it's", "its")])
    assert m["word_accuracy"] == 1 / 4
    assert m["word_accuracy_case_insensitive"] == 2 / 4
    assert m["word_accuracy_alnum"] == 1.0
    assert metrics.scene_text_normalize("Ça-va 42!") == "ava42"


def test_by_length_buckets():
    assert [metrics.length_bucket(n) for n in (1, 9, 10, 11, 15, 16, 40)] == \
        ["1", "9", "10", "11-15", "11-15", "16+", "16+"]
    table = metrics.by_length([("a", "a"), ("b", "x"), ("x" * 10, "x" * 10), ("y" * 12, "y" * 12),
                               ("z" * 15, ""), ("w" * 20, None)])
    assert [b["length"] for b in table] == list(metrics.LENGTH_BUCKETS)
    got = {b["length"]: (b["n"], b["accuracy"]) for b in table if b["n"]}
    assert got == {"1": (2, 0.5), "10": (1, 1.0), "11-15": (2, 0.5), "16+": (1, 0.0)}
    assert next(b for b in table if b["length"] == "5") == {"length": "5", "n": 0, "accuracy": None}


def test_alignment_and_confusions():
    assert metrics.align("hello", "hallo") == [("=", "h", "h"), ("s", "e", "a"), ("=", "l", "l"),
                                                ("=", "l", "l"), ("=", "o", "o")]
    assert metrics.align("abc", "ac") == [("=", "a", "a"), ("d", "b", ""), ("=", "c", "c")]
    assert metrics.align("ok", "okk") == [("=", "o", "o"), ("i", "", "k"), ("=", "k", "k")]
    assert metrics.align("", "ab") == [("i", "", "a"), ("i", "", "b")]
    for label, pred in [("kitten", "sitting"), ("Saturday", "Sunday"), ("", ""), ("abc", "")]:
        ops = metrics.align(label, pred)
        assert "".join(a for _, a, _ in ops) == label and "".join(b for _, _, b in ops) == pred
        assert sum(op != "=" for op, _, _ in ops) == metrics.edit_distance(label, pred)

    c = metrics.confusions([("Cloud", "C1oud"), ("ill", "i11"), ("hello", "hello"), ("abc", "ac"),
                            ("ok", "okk"), ("o", None)])
    assert c["substitutions"] == [{"label": "l", "predicted": "1", "count": 3}]
    assert c["deletions"] == [{"char": "b", "count": 1}, {"char": "o", "count": 1}]
    assert c["insertions"] == [{"char": "k", "count": 1}]
    assert metrics.confusions([("ab", "ba"), ("cd", "dc")], top=1)["substitutions"] == \
        [{"label": "a", "predicted": "b", "count": 1}]



def test_alignment_ties_prefer_substitutions_then_deletions():
    """Walking back from the ends: match/substitution, then deletion, then insertion (not rapidfuzz's
    editops order, which turns a swap into an insertion and a deletion)."""
    assert metrics.align("ab", "ba") == [("s", "a", "b"), ("s", "b", "a")]
    assert metrics.align("ab", "b") == [("d", "a", ""), ("=", "b", "b")]
    assert metrics.align("aa", "a") == [("d", "a", ""), ("=", "a", "a")]
    assert metrics.align("a", "aa") == [("i", "", "a"), ("=", "a", "a")]
    assert metrics.align("ab", "cd e") == [("i", "", "c"), ("i", "", "d"), ("s", "a", " "), ("s", "b", "e")]
    assert metrics.align("gamma", "garnma") == [("=", "g", "g"), ("=", "a", "a"), ("i", "", "r"),
                                                ("s", "m", "n"), ("=", "m", "m"), ("=", "a", "a")]


def test_alignment_is_minimal_on_random_pairs():
    rng = random.Random(0)
    for _ in range(500):
        label = "".join(rng.choice("abl1I ") for _ in range(rng.randint(0, 12)))
        pred = "".join(rng.choice("abl1I ") for _ in range(rng.randint(0, 12)))
        ops = metrics.align(label, pred)
        assert "".join(a for _, a, _ in ops) == label and "".join(b for _, _, b in ops) == pred
        assert all((op == "=") == (a == b) for op, a, b in ops if op in "=s")
        assert sum(op != "=" for op, _, _ in ops) == metrics.edit_distance(label, pred)
    assert metrics.edit_distance("kitten", "sitting") == 3 and metrics.edit_distance("", "abc") == 3


def test_distances_of_summary_and_worst_mistakes():
    pairs = [("kitten", "sitting"), ("abc", ""), ("same", "same"), ("", "x")]
    m = metrics.summarize(pairs)
    assert m["cer"] == pytest.approx((3 + 3 + 0 + 1) / 13)
    assert m["mean_ned"] == pytest.approx((3 / 7 + 1 + 0 + 1) / 4)
    worst = metrics.worst_mistakes([{"label": a, "text": b, "confidence": 0.5, "id": a} for a, b in pairs], 5)
    assert [(w["label"], w["edit_distance"], w["ned"]) for w in worst] == \
        [("abc", 3, 1.0), ("", 1, 1.0), ("kitten", 3, pytest.approx(3 / 7))]  # equal NED: longer distance

def test_calibration_and_confidence_means():
    scored = [(0.0, False), (0.05, False), (0.55, True), (0.95, True), (1.0, True), (0.95, False)]
    table = metrics.calibration(scored)
    assert [b["bin"] for b in table][:2] == ["0.0-0.1", "0.1-0.2"] and table[-1]["bin"] == "0.9-1.0"
    assert table[0] == {"bin": "0.0-0.1", "n": 2, "mean_confidence": pytest.approx(0.025), "accuracy": 0.0}
    assert table[5]["n"] == 1 and table[5]["accuracy"] == 1.0
    assert table[9]["n"] == 3 and table[9]["accuracy"] == pytest.approx(2 / 3)
    assert table[9]["mean_confidence"] == pytest.approx((0.95 + 1.0 + 0.95) / 3)
    assert table[3] == {"bin": "0.3-0.4", "n": 0, "mean_confidence": None, "accuracy": None}
    ece = (2 * 0.025 + 1 * 0.45 + 3 * abs(2 / 3 - 2.9 / 3)) / 6
    assert metrics.expected_calibration_error(table) == pytest.approx(ece)
    assert metrics.mean_confidence_by_outcome(scored) == {"right": pytest.approx(2.5 / 3),
                                                          "wrong": pytest.approx(1.0 / 3)}
    assert metrics.mean_confidence_by_outcome([]) == {"right": None, "wrong": None}


def test_line_accuracy_wer_and_length_groups():
    pairs = [("Open daily", "Open daily"), ("Open daily", "Open dally"), ("cat", "cut"), ("a b c", "a c")]
    m = metrics.summarize(pairs)
    assert m["line_accuracy"] == m["word_accuracy"] == 1 / 4
    assert m["cer"] == pytest.approx((0 + 1 + 1 + 2) / (10 + 10 + 3 + 5))
    assert m["wer"] == pytest.approx((0 + 1 + 1 + 1) / (2 + 2 + 1 + 3))
    assert [metrics.length_group(n) for n in (0, 1, 3, 4, 6, 7, 11, 12, 40)] == \
        ["1-3", "1-3", "1-3", "4-6", "4-6", "7-11", "7-11", "12+", "12+"]
    table = metrics.by_length_group([("ab", "ab"), ("abc", "abd"), ("abcdefgh", ""), ("x" * 12, "x" * 12)])
    assert table == [{"length": "1-3", "n": 2, "accuracy": 0.5, "cer": pytest.approx(1 / 5)},
                     {"length": "4-6", "n": 0, "accuracy": None, "cer": None},
                     {"length": "7-11", "n": 1, "accuracy": 0.0, "cer": 1.0},
                     {"length": "12+", "n": 1, "accuracy": 1.0, "cer": 0.0}]
    empty = metrics.summarize([])
    assert empty["line_accuracy"] is None and empty["wer"] is None
