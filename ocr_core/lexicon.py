"""Lexicon-constrained CTC decoding: the lexicon word the model's per-frame posteriors support best.

The criterion is the CRNN paper's lexicon-based transcription (Shi et al. 2015, sec. 2.3.2): the word w of
the lexicon D with the highest CTC likelihood p(w | y), the sum over every alignment of w to the T frames,
computed exactly by the forward algorithm (`ctc_log_likelihood`, log space, vectorised over words).

Search: a BK-tree over edit distance, as in the paper. Only the words within `max_distance` (δ, default 3,
the paper's value) of the unconstrained reading (the greedy text, or each of the beam's top-k texts) are
scored; when none is that close, the nearest words (all those at the smallest distance) are. Why a BK-tree
rather than a beam search constrained to a trie of the lexicon:
- the chosen word's score is the exact likelihood of the criterion, not a pruned beam's partial sum, and
  the candidates are scored together in one vectorised forward pass instead of a per-frame Python loop
  over prefixes (a trie beam's cost, which grows with T x width x fan-out);
- it sits after any decoder: the tree is queried with whatever text the greedy or beam decoder read;
- the cost of a query grows with the part of the tree within δ, not with the lexicon (a 50-word list
  is scored almost entirely; a 100k-word dictionary only near the reading). The price: a word more than
  δ edits from every reading is never scored, however likely; `bench/lexicon_accuracy.py` measures what
  that costs against scoring every word.

Case: by default the match ignores case (the scene-text protocol). Each letter's upper- and lower-case
classes are folded into one class (their per-frame probabilities summed) and words are scored in that
folded alphabet, so "PARK", "Park" and "park" in the image all support the lexicon word "Park". The result
is spelled as in the lexicon (its first spelling when it lists several that differ only in case).
`case_sensitive=True` scores words as spelled, in the model's own classes.

Confidence: the chosen word's posterior among the scored candidates, p(w | y) / sum of p(c | y) over the
candidates: the probability that w is the word, given that the word is in the lexicon (uniform prior over
its words) and ignoring the words too far from the reading to have been scored (their likelihood is
negligible next to the candidates'). `LexiconMatch.probability` keeps the plain p(w | y).
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from rapidfuzz.distance import Levenshtein

from ocr_core.charset import BLANK_ID, Charset

DEFAULT_MAX_DISTANCE = 3
_CHUNK = 2048  # words per forward pass: bounds the [T, words, states] emission array


class LexiconError(ValueError):
    """A lexicon that cannot be used (no words, or none the model can spell)."""


def _fold_char(ch: str, case_sensitive: bool) -> str:
    if case_sensitive:
        return ch
    low = ch.lower()
    return low if len(low) == 1 else ch  # "İ".lower() is two characters: keep such letters as they are


def match_key(word: str, case_sensitive: bool = False) -> str:
    """The form in which a word is matched: itself, or lowercased (letter by letter) when case is ignored."""
    return "".join(_fold_char(ch, case_sensitive) for ch in word)


@dataclass(frozen=True)
class Lexicon:
    """The words a reading must be one of.

    Attributes:
        words: the usable words in file order, spelled as given, one per match key.
        skipped: the words left out because they have characters outside the charset.
        unknown: those characters, in order of first appearance.
        case_sensitive: whether matching keeps case.
    """

    words: tuple[str, ...]
    skipped: tuple[str, ...] = ()
    unknown: str = ""
    case_sensitive: bool = False

    @classmethod
    def from_words(cls, words: Iterable[str], charset: Charset, case_sensitive: bool = False) -> Lexicon:
        """Builds a lexicon: surrounding whitespace stripped, blank entries and repeats (same match key)
        ignored, words the charset cannot spell skipped.

        Raises:
            LexiconError: no words, or none the charset can spell.
        """
        alphabet = {_fold_char(c, case_sensitive) for c in charset.characters}
        kept, skipped, seen, unknown = [], [], set(), {}
        for word in words:
            word = word.strip()
            key = match_key(word, case_sensitive)
            if not word or key in seen:
                continue
            seen.add(key)
            bad = [ch for ch, k in zip(word, key) if k not in alphabet]
            if bad:
                skipped.append(word)
                unknown.update(dict.fromkeys(bad))
            else:
                kept.append(word)
        if not kept and not skipped:
            raise LexiconError("no words (empty, or blank lines only)")
        if not kept:
            raise LexiconError(f"none of its {len(skipped)} words can be spelled with the model's charset "
                               f"(characters outside it: {''.join(unknown)})")
        return cls(tuple(kept), tuple(skipped), "".join(unknown), case_sensitive)

    @classmethod
    def parse(cls, text: str, charset: Charset, case_sensitive: bool = False) -> Lexicon:
        """A lexicon from a file's text: one word per line, a leading byte-order mark ignored (see
        `from_words`)."""
        return cls.from_words(text.removeprefix("\ufeff").splitlines(), charset, case_sensitive)

    def skipped_note(self, examples: int = 5) -> str:
        """One line on the skipped words, or "" when none were skipped."""
        if not self.skipped:
            return ""
        shown = ", ".join(self.skipped[:examples]) + (", ..." if len(self.skipped) > examples else "")
        return (f"{len(self.skipped)} of {len(self.skipped) + len(self.words)} words skipped, characters "
                f"outside the model's charset ({self.unknown}): {shown}")


def ctc_log_likelihood(log_probs: np.ndarray, labels: Sequence[Sequence[int]]) -> np.ndarray:
    """log p(label | frames) of each label under CTC: the forward algorithm in log space.

    Args:
        log_probs: [T, C] natural logs of the per-frame class probabilities (blank = class 0).
        labels: non-empty class-id sequences (ids 1..C-1).

    Returns:
        float64 [len(labels)]; -inf for a label the T frames cannot emit (too long, or probability 0).
    """
    log_probs = np.asarray(log_probs, dtype=np.float64)
    out = np.empty(len(labels))
    order = sorted(range(len(labels)), key=lambda i: len(labels[i]))  # similar lengths pad little
    for start in range(0, len(order), _CHUNK):
        chunk = order[start:start + _CHUNK]
        out[chunk] = _forward([labels[i] for i in chunk], log_probs)
    return out


def _forward(labels: Sequence[Sequence[int]], log_probs: np.ndarray) -> np.ndarray:
    lengths = np.array([len(seq) for seq in labels])
    if lengths.min() < 1:
        raise ValueError("ctc_log_likelihood needs non-empty labels")
    words, states = len(labels), 2 * lengths.max() + 1
    # Extended labels: blank, l1, blank, l2, ..., blank. Padding states past a label's end are blanks that
    # only receive from lower states, so they never feed back into the label's own states.
    ext = np.full((words, states), BLANK_ID)
    for i, seq in enumerate(labels):
        ext[i, 1:2 * len(seq):2] = seq
    # The skip s-2 -> s is allowed into a non-blank state whose label differs from the one two back.
    skip = np.zeros((words, states), bool)
    skip[:, 3::2] = ext[:, 3::2] != ext[:, 1:-2:2]
    emit = log_probs[:, ext]  # [T, words, states]
    alpha = np.full((words, states), -np.inf)
    alpha[:, :2] = emit[0, :, :2]
    for t in range(1, log_probs.shape[0]):
        step = alpha.copy()
        step[:, 1:] = np.logaddexp(step[:, 1:], alpha[:, :-1])
        step[:, 2:] = np.where(skip[:, 2:], np.logaddexp(step[:, 2:], alpha[:, :-2]), step[:, 2:])
        alpha = step + emit[t]
    rows = np.arange(words)
    return np.logaddexp(alpha[rows, 2 * lengths], alpha[rows, 2 * lengths - 1])


class BKTree:
    """Strings indexed for edit-distance (Levenshtein) range and nearest-neighbour queries.

    Burkhard-Keller tree: each child hangs under its parent by its distance to it, so by the triangle
    inequality a query at distance d from a node need only visit the children whose edge lies in
    [d - radius, d + radius].

    Args:
        words: the strings; results refer to them by index (repeats are allowed and all returned).
    """

    def __init__(self, words: Sequence[str]):
        self.words = list(words)
        self._children: list[dict[int, int]] = [{} for _ in self.words]
        for i in range(1, len(self.words)):
            node = 0
            while True:
                d = Levenshtein.distance(self.words[i], self.words[node])
                nxt = self._children[node].get(d)
                if nxt is None:
                    self._children[node][d] = i
                    break
                node = nxt

    def __len__(self) -> int:
        return len(self.words)

    def within(self, query: str, radius: int) -> list[tuple[int, int]]:
        """(distance, index) of every word within `radius` edits of `query`, nearest first."""
        found, stack = [], [0] if self.words else []
        while stack:
            node = stack.pop()
            d = Levenshtein.distance(query, self.words[node])
            if d <= radius:
                found.append((d, node))
            stack.extend(child for edge, child in self._children[node].items() if abs(edge - d) <= radius)
        return sorted(found)

    def nearest(self, query: str) -> list[tuple[int, int]]:
        """(distance, index) of every word at the smallest distance from `query`, in index order."""
        best, found = None, []
        stack = [(0, 0, 0)] if self.words else []  # (node, its edge, its parent's distance)
        while stack:
            node, edge, parent_d = stack.pop()
            if best is not None and abs(edge - parent_d) > best:  # `best` shrank since it was pushed
                continue
            d = Levenshtein.distance(query, self.words[node])
            if best is None or d < best:
                best, found = d, [node]
            elif d == best:
                found.append(node)
            stack.extend((child, e, d) for e, child in self._children[node].items() if abs(e - d) <= best)
        return [(best, i) for i in sorted(found)]


@dataclass(frozen=True)
class LexiconMatch:
    """The lexicon's answer for one image.

    Attributes:
        word: the chosen word, spelled as in the lexicon.
        confidence: its posterior among the scored candidates (see the module docstring), in [0, 1].
        probability: p(word | frames), its CTC likelihood (case-folded unless the lexicon keeps case).
        candidates: how many words were scored.
        distance: edit distance from the chosen word to the nearest reading (in match form).
    """

    word: str
    confidence: float
    probability: float
    candidates: int
    distance: int


class LexiconDecoder:
    """Chooses, for each image's CTC output, the lexicon word with the highest CTC likelihood among the
    words near its unconstrained reading(s).

    Args:
        lexicon: the words (a `Lexicon`: already checked against `charset`).
        charset: the model's charset (its class ids are the columns of the probabilities).
        max_distance: δ, the edit distance from a reading within which words are scored.
    """

    def __init__(self, lexicon: Lexicon, charset: Charset, max_distance: int = DEFAULT_MAX_DISTANCE):
        if max_distance < 0:
            raise ValueError(f"max_distance must be >= 0, got {max_distance}")
        self.lexicon, self.max_distance = lexicon, max_distance
        cs = lexicon.case_sensitive
        # Class c of the model -> class of the matching alphabet (blank stays 0; letters that differ only
        # in case share a class unless case is kept).
        classes: dict[str, int] = {}
        fold = [BLANK_ID]
        for ch in charset.characters:
            fold.append(classes.setdefault(_fold_char(ch, cs), len(classes) + 1))
        self._fold = None if len(classes) == len(charset.characters) else np.eye(len(classes) + 1)[fold]
        self._classes = classes
        self._keys = [match_key(w, cs) for w in lexicon.words]
        self._labels = [self.label(k) for k in self._keys]
        self._tree = BKTree(self._keys)

    def label(self, key: str) -> list[int]:
        """Class ids (in the matching alphabet) of a word already in match form."""
        return [self._classes[ch] for ch in key]

    def log_probs(self, probs: np.ndarray) -> np.ndarray:
        """[T, C] model probabilities -> log-probabilities over the matching alphabet (case folded)."""
        probs = np.asarray(probs, dtype=np.float64)
        if self._fold is not None:
            probs = probs @ self._fold
        with np.errstate(divide="ignore"):
            return np.log(probs)

    def candidates(self, readings: Sequence[str]) -> list[tuple[int, int]]:
        """(distance, word index) of the words to score: those within δ of any reading, else the nearest
        words of every reading; each word once, at its smallest distance."""
        keys = [match_key(r, self.lexicon.case_sensitive) for r in readings] or [""]
        best: dict[int, int] = {}
        for search in (lambda k: self._tree.within(k, self.max_distance), self._tree.nearest):
            for key in keys:
                for d, i in search(key):
                    best[i] = min(d, best.get(i, d))
            if best:
                break
        return sorted((d, i) for i, d in best.items())

    def decode(self, probs: np.ndarray, readings: Sequence[str]) -> LexiconMatch:
        """The lexicon word for one image.

        Args:
            probs: [T, C] the model's per-frame probabilities.
            readings: the unconstrained decoder's text(s), best first (greedy: one; beam: its top-k).

        Returns:
            The word with the highest CTC likelihood among the candidates; ties (and a set of candidates
            that the frames cannot emit at all) go to the smaller edit distance, then to lexicon order.
        """
        cands = self.candidates(readings)
        logp = ctc_log_likelihood(self.log_probs(probs), [self._labels[i] for _, i in cands])
        top = float(logp.max())
        pick = int(np.argmax(logp))  # first of the maxima: candidates are sorted by (distance, index)
        d, index = cands[pick]
        if top == -np.inf:
            return LexiconMatch(self.lexicon.words[index], 0.0, 0.0, len(cands), d)
        confidence = 1.0 / float(np.exp(logp - top).sum())
        return LexiconMatch(self.lexicon.words[index], confidence, float(np.exp(top)), len(cands), d)

    def score_all(self, probs: np.ndarray) -> np.ndarray:
        """log p(w | frames) of every lexicon word, in lexicon order (an exhaustive scan, for reference)."""
        return ctc_log_likelihood(self.log_probs(probs), self._labels)
