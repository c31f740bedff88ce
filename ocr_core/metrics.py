"""Recognition metrics: word accuracy (case-sensitive, case-insensitive, scene-text protocol), line (exact
whole-text) accuracy, CER, WER, and the breakdowns `ocr evaluate` reports (by label length, character
confusions, confidence calibration).
Edit distances come from rapidfuzz's Levenshtein."""
from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

from rapidfuzz.distance import Levenshtein

_NON_ALNUM = re.compile(r"[^0-9a-z]")


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (insert, delete, substitute all cost 1)."""
    return Levenshtein.distance(a, b)


def scene_text_normalize(text: str) -> str:
    """The usual scene-text protocol: lowercase, keep only 0-9a-z."""
    return _NON_ALNUM.sub("", text.lower())


def summarize(pairs: Iterable[tuple[str, str]]) -> dict:
    """Metrics over (label, prediction) pairs.

    Returns:
        n; word_accuracy (exact); word_accuracy_case_insensitive (lowercased);
        word_accuracy_alnum (scene-text protocol); line_accuracy (the whole text exact, spaces included:
        equal to word_accuracy on word crops, the share of lines read exactly on line crops); cer (total
        edit distance / total label length); wer (total word-level edit distance / total label words, words
        split on whitespace); mean_ned (mean normalised edit distance, 1 - ned is the ICDAR-style score).
    """
    n = exact = nocase = alnum = dist = chars = word_dist = words = 0
    ned = 0.0
    for label, pred in pairs:
        pred = pred or ""
        n += 1
        exact += pred == label
        nocase += pred.lower() == label.lower()
        alnum += scene_text_normalize(pred) == scene_text_normalize(label)
        d = edit_distance(label, pred)
        dist += d
        chars += len(label)
        ned += d / max(len(label), len(pred), 1)
        label_words = label.split()
        word_dist += Levenshtein.distance(label_words, pred.split())
        words += len(label_words)
    if n == 0:
        return {"n": 0, "word_accuracy": None, "word_accuracy_case_insensitive": None,
                "word_accuracy_alnum": None, "line_accuracy": None, "cer": None, "wer": None,
                "mean_ned": None}
    return {"n": n, "word_accuracy": exact / n, "word_accuracy_case_insensitive": nocase / n,
            "word_accuracy_alnum": alnum / n, "line_accuracy": exact / n, "cer": dist / max(chars, 1),
            "wer": word_dist / max(words, 1), "mean_ned": ned / n}


# --- breakdowns used by `ocr evaluate` ----------------------------------------------------------------

LENGTH_BUCKETS = ("1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11-15", "16+")


def length_bucket(length: int) -> str:
    """The LENGTH_BUCKETS name of a label length (lengths below 1 go to "1")."""
    if length <= 10:
        return str(max(length, 1))
    return "11-15" if length <= 15 else "16+"


def by_length(pairs: Iterable[tuple[str, str]]) -> list[dict]:
    """Exact word accuracy per label-length bucket, every bucket listed (accuracy None when empty).

    Returns:
        [{"length": "1", "n": int, "accuracy": float | None}, ...] in LENGTH_BUCKETS order.
    """
    n = dict.fromkeys(LENGTH_BUCKETS, 0)
    right = dict.fromkeys(LENGTH_BUCKETS, 0)
    for label, pred in pairs:
        b = length_bucket(len(label))
        n[b] += 1
        right[b] += (pred or "") == label
    return [{"length": b, "n": n[b], "accuracy": right[b] / n[b] if n[b] else None} for b in LENGTH_BUCKETS]



LENGTH_GROUPS = ((1, 3), (4, 6), (7, 11), (12, None))  # short, medium, long, very long words


def length_group(length: int) -> str:
    """The name of a label length's group in LENGTH_GROUPS ("1-3", "4-6", "7-11", "12+"; 0 goes to "1-3")."""
    for lo, hi in LENGTH_GROUPS:
        if hi is None or length <= hi:
            return f"{lo}+" if hi is None else f"{lo}-{hi}"
    raise AssertionError("the last group is open")


def by_length_group(pairs: Iterable[tuple[str, str]]) -> list[dict]:
    """Exact accuracy and CER per coarse label-length group (LENGTH_GROUPS), every group listed.

    Returns:
        [{"length": "1-3", "n": int, "accuracy": float | None, "cer": float | None}, ...] short to long;
        accuracy and cer are None for an empty group.
    """
    names = [length_group(lo) for lo, _ in LENGTH_GROUPS]
    n, right, dist, chars = (dict.fromkeys(names, 0) for _ in range(4))
    for label, pred in pairs:
        g = length_group(len(label))
        n[g] += 1
        right[g] += (pred or "") == label
        dist[g] += edit_distance(label, pred or "")
        chars[g] += len(label)
    return [{"length": g, "n": n[g], "accuracy": right[g] / n[g] if n[g] else None,
             "cer": dist[g] / max(chars[g], 1) if n[g] else None} for g in names]

def align(label: str, pred: str) -> list[tuple[str, str, str]]:
    """One minimal edit-distance alignment of label -> prediction, in reading order.

    Walking back from the ends, ties prefer a match/substitution, then a deletion, then an insertion, so the
    result is deterministic and confusions count substitutions where they can. (rapidfuzz's own `editops`
    breaks ties the other way: "ab" -> "ba" would be an insertion and a deletion, not two substitutions.)

    Returns:
        (op, label_char, pred_char) with op "=" (match), "s" (substitution), "d" (label char missing from
        the prediction; pred_char "") or "i" (extra predicted char; label_char "").
    """
    ops = []
    i, j = len(label), len(pred)
    d = Levenshtein.distance(label, pred)  # of label[:i] and pred[:j], kept while walking back
    while d:
        cost = int(i > 0 and j > 0 and label[i - 1] != pred[j - 1])
        if i and j and Levenshtein.distance(label[:i - 1], pred[:j - 1]) == d - cost:
            ops.append(("s" if cost else "=", label[i - 1], pred[j - 1]))
            i, j, d = i - 1, j - 1, d - cost
        elif i and Levenshtein.distance(label[:i - 1], pred[:j]) == d - 1:
            ops.append(("d", label[i - 1], ""))
            i, d = i - 1, d - 1
        else:
            ops.append(("i", "", pred[j - 1]))
            j, d = j - 1, d - 1
    ops += [("=", c, c) for c in reversed(label[:i])]  # distance 0 left: the prefixes are equal
    return ops[::-1]


def confusions(pairs: Iterable[tuple[str, str]], top: int | None = 20) -> dict:
    """Character confusions over (label, prediction) pairs, counted on the `align` alignment.

    Args:
        pairs: (label, prediction); a None prediction counts as "".
        top: keep the `top` most frequent of each kind (None: all).

    Returns:
        {"substitutions": [{"label", "predicted", "count"}], "deletions": [{"char", "count"}],
        "insertions": [{"char", "count"}]}, each most frequent first (ties in character order).
    """
    subs, dels, ins = Counter(), Counter(), Counter()
    for label, pred in pairs:
        if label == pred:
            continue
        for op, a, b in align(label, pred or ""):
            if op == "s":
                subs[(a, b)] += 1
            elif op == "d":
                dels[a] += 1
            elif op == "i":
                ins[b] += 1

    def ranked(counter):
        return sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))[:top]

    return {"substitutions": [{"label": a, "predicted": b, "count": c} for (a, b), c in ranked(subs)],
            "deletions": [{"char": a, "count": c} for a, c in ranked(dels)],
            "insertions": [{"char": b, "count": c} for b, c in ranked(ins)]}


def calibration(scored: Iterable[tuple[float, bool]], bins: int = 10) -> list[dict]:
    """Reliability table: accuracy per equal-width confidence bin (deciles by default), every bin listed.

    Args:
        scored: (confidence in [0, 1], prediction was right).
        bins: number of bins over [0, 1]; confidence 1.0 falls in the last one.

    Returns:
        [{"bin": "0.9-1.0", "n", "mean_confidence", "accuracy"}, ...] from low to high confidence; the
        two means are None for an empty bin.
    """
    n, conf, right = [0] * bins, [0.0] * bins, [0] * bins
    for c, ok in scored:
        b = min(max(int(c * bins), 0), bins - 1)
        n[b] += 1
        conf[b] += c
        right[b] += bool(ok)
    return [{"bin": f"{b / bins:.1f}-{(b + 1) / bins:.1f}", "n": n[b],
             "mean_confidence": conf[b] / n[b] if n[b] else None,
             "accuracy": right[b] / n[b] if n[b] else None} for b in range(bins)]


def expected_calibration_error(table: list[dict]) -> float | None:
    """ECE of a `calibration` table: the n-weighted mean |accuracy - mean confidence| over the bins."""
    total = sum(row["n"] for row in table)
    if not total:
        return None
    return sum(row["n"] * abs(row["accuracy"] - row["mean_confidence"]) for row in table if row["n"]) / total


def mean_confidence_by_outcome(scored: Iterable[tuple[float, bool]]) -> dict:
    """{"right": mean confidence of right predictions, "wrong": of wrong ones}; None when there are none."""
    sums, counts = [0.0, 0.0], [0, 0]
    for c, ok in scored:
        sums[bool(ok)] += c
        counts[bool(ok)] += 1
    return {"right": sums[1] / counts[1] if counts[1] else None,
            "wrong": sums[0] / counts[0] if counts[0] else None}


def worst_mistakes(rows: Iterable[dict], n: int) -> list[dict]:
    """The n worst wrong predictions: highest normalised edit distance first, then highest confidence.

    Normalising keeps long words from crowding out short ones that are entirely wrong; among equally wrong
    words the confident ones come first, because a confidence threshold cannot catch them (and a confident
    "mistake" is often a wrong label).

    Args:
        rows: dicts with "label", "text" (prediction) and "confidence" (None sorts as 0); other keys are
            kept. Rows whose text equals the label are skipped.
        n: how many to return.

    Returns:
        Copies of the chosen rows with "edit_distance" and "ned" added, worst first.
    """
    wrong = []
    for r in rows:
        pred = r.get("text") or ""
        if pred == r["label"]:
            continue
        d = edit_distance(r["label"], pred)
        wrong.append({**r, "edit_distance": d, "ned": d / max(len(r["label"]), len(pred), 1)})
    wrong.sort(key=lambda r: (-r["ned"], -(r.get("confidence") or 0.0), -r["edit_distance"], r["label"],
                              str(r.get("id", ""))))
    return wrong[:max(n, 0)]


# What each key of `ocr evaluate`'s JSON means (its --help lists them).
KEYS_DOC = {
    "n": "scored words: prediction rows that have a label (error rows included, as the prediction '')",
    "word_accuracy": "exact match, case-sensitive",
    "word_accuracy_case_insensitive": "match after lowercasing both",
    "word_accuracy_alnum": "scene-text protocol: lowercase, only 0-9a-z kept",
    "line_accuracy": "the whole text exact (= word_accuracy on word crops; lines read exactly on line crops)",
    "cer": "character error rate: total edit distance / total label characters",
    "wer": "word error rate: total word-level edit distance / total label words (split on whitespace)",
    "mean_ned": "mean of edit distance / max(len(label), len(prediction))",
    "by_length": "exact accuracy per label length bucket (1..10, 11-15, 16+)",
    "by_length_group": "exact accuracy and CER per label length group (1-3, 4-6, 7-11, 12+)",
    "errors": "scored rows whose image could not be read (counted wrong), by reason",
    "unlabelled": "prediction rows without a label (not scored)",
    "missing_predictions": "labels without a prediction row (not scored)",
    "label_rejects": "manifest lines that gave no label (malformed line or empty label)",
    "duplicate_rows": "prediction rows repeating an earlier row's id (ignored)",
    "mean_confidence_right": "mean confidence of exactly right predictions (error rows excluded)",
    "mean_confidence_wrong": "mean confidence of wrong predictions (error rows excluded)",
    "calibration": "exact accuracy per confidence decile",
    "expected_calibration_error": "n-weighted mean |accuracy - confidence| over the deciles",
    "confusions": "character substitutions label->predicted, deletions, insertions (error rows excluded)",
    "worst": "worst mistakes: highest normalised edit distance, then highest confidence (error rows "
             "excluded); id is the prediction row's, label_id the label's (dataset labels: the record id)",
}
