"""Recognition metrics: word accuracy (case-sensitive, case-insensitive, scene-text protocol) and CER."""
from __future__ import annotations

import re
from collections.abc import Iterable

_NON_ALNUM = re.compile(r"[^0-9a-z]")


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (insert, delete, substitute all cost 1)."""
    if len(a) < len(b):
        a, b = b, a
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def scene_text_normalize(text: str) -> str:
    """The usual scene-text protocol: lowercase, keep only 0-9a-z."""
    return _NON_ALNUM.sub("", text.lower())


def summarize(pairs: Iterable[tuple[str, str]]) -> dict:
    """Metrics over (label, prediction) pairs.

    Returns:
        n; word_accuracy (exact); word_accuracy_case_insensitive (lowercased);
        word_accuracy_alnum (scene-text protocol); cer (total edit distance / total label length);
        mean_ned (mean normalised edit distance, 1 - ned is the ICDAR-style score).
    """
    n = exact = nocase = alnum = dist = chars = 0
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
    if n == 0:
        return {"n": 0, "word_accuracy": None, "word_accuracy_case_insensitive": None,
                "word_accuracy_alnum": None, "cer": None, "mean_ned": None}
    return {"n": n, "word_accuracy": exact / n, "word_accuracy_case_insensitive": nocase / n,
            "word_accuracy_alnum": alnum / n, "cer": dist / max(chars, 1), "mean_ned": ned / n}
