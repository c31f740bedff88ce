"""Lexicon-constrained CTC decoding: the lexicon word the model's per-frame posteriors support best.

The criterion is the CRNN paper's lexicon-based transcription (Shi et al. 2015, sec. 2.3.2): the word w of
the lexicon D with the highest CTC likelihood p(w | y), the sum over every alignment of w to the T frames,
computed exactly by the forward algorithm (`ctc_log_likelihood`, log space, vectorised over words).

Search: a BK-tree over edit distance, as in the paper. The words within `max_distance` (δ, default 3, the
paper's value) of the unconstrained reading (the greedy text, or each of the beam's top-k texts) are
scored; when fewer than `min_candidates` (64) are that close, the 64 nearest words are scored instead, so a
lexicon of up to 64 words is always scored in full (the exact argmax over the lexicon, for about one
forward pass's time) and a reading far from every word still gets its nearest ones (the fallback). Why a
BK-tree rather than a beam search constrained to a trie of the lexicon:
- the chosen word's score is the exact likelihood of the criterion, not a pruned beam's partial sum, and
  the candidates are scored together in one vectorised forward pass instead of a per-frame Python loop
  over prefixes (a trie beam's cost, which grows with T x width x fan-out);
- a misread first letter costs a trie beam the word (its prefix is pruned in the first frames) but only
  one edit here;
- it sits after any decoder: the tree is queried with whatever text the greedy or beam decoder read;
- a query visits the part of the tree within reach of the reading, not the whole lexicon, and no CTC
  score is computed for a word outside the candidates (measured on a 75k-word dictionary: ~45 % of the
  nodes visited at δ = 3, ~1,450 words scored). The price: a likely word more than δ edits from every
  reading is missed when 64 others are closer; `bench/lexicon_accuracy.py` measures that against scoring
  every word (real dev crops, 1,000-word lexicons: 83.0 % vs 83.1 %).

Case: by default the match ignores case (the scene-text protocol). Each letter's upper- and lower-case
classes are folded into one class (their per-frame probabilities summed) and words are scored in that
folded alphabet, so "PARK", "Park" and "park" in the image all support the lexicon word "Park". The result
is spelled as in the lexicon (its first spelling when it lists several that differ only in case).
`case_sensitive=True` scores words as spelled, in the model's own classes.

Confidence: the chosen word's posterior among the scored candidates, p(w | y) / sum of p(c | y) over the
candidates: the probability that w is the word, given that the word is in the lexicon (uniform prior over
its words), with the unscored words' likelihood taken as negligible. On the real dev crops it separates
right from wrong lexicon answers better (AUROC 0.98 with 50- and 1,000-word lexicons, 0.96 with the 75k
dictionary) than the plain p(w | y) (0.95, 0.94, 0.91) or than counting the unconstrained reading as one
more candidate (0.88-0.90); it needs the 64-word top-up, without which a lone word within δ scores 1.0
(AUROC 0.64 at 50 words). `LexiconMatch.probability` keeps the plain p(w | y).
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from rapidfuzz.distance import Levenshtein
from rapidfuzz.process import cdist

from ocr_core.charset import BLANK_ID, Charset, ctc_min_steps

DEFAULT_MAX_DISTANCE = 3
DEFAULT_MIN_CANDIDATES = 64
# Measured on one core (random 3-11 letter words, 50k-200k of them): indexing costs ~15 µs a word, and each
# image's query visits a share of the tree that grows with it, ~1.7 µs a word. Above LARGE_LEXICON words a
# note gives the expected times: 2M words take ~30 s to index and ~3 s per image.
INDEX_SECONDS_PER_WORD = 15e-6
QUERY_SECONDS_PER_WORD = 1.7e-6
LARGE_LEXICON = 100_000
_CHUNK = 2048  # words per forward pass: bounds the [T, words, states] emission array
_MIN_SPLIT = 64


class LexiconError(ValueError):
    """A lexicon that cannot be used (no words, or none the model can spell)."""


class LexiconWarning(UserWarning):
    """A usable lexicon with words left out, or one large enough to be slow (`Lexicon.notes`)."""


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
        too_long: the words left out because the model cannot emit them: more CTC time steps (characters,
            plus a blank between repeated ones) than `max_steps`.
        max_steps: the model's CTC time steps (None: not checked).
    """

    words: tuple[str, ...]
    skipped: tuple[str, ...] = ()
    unknown: str = ""
    case_sensitive: bool = False
    too_long: tuple[str, ...] = ()
    max_steps: int | None = None

    @classmethod
    def from_words(cls, words: Iterable[str], charset: Charset, case_sensitive: bool = False,
                   max_steps: int | None = None) -> Lexicon:
        """Builds a lexicon: surrounding whitespace stripped, blank entries and repeats (same match key)
        ignored, words the charset cannot spell skipped, and with `max_steps` (the model's CTC time steps)
        words the model can never emit left out too: scoring them is wasted work, and a lexicon of them
        alone would answer with a word the image cannot show.

        Raises:
            LexiconError: no words, or none the charset can spell and the model emit.
        """
        alphabet = {_fold_char(c, case_sensitive) for c in charset.characters}
        kept, skipped, too_long, seen, unknown = [], [], [], set(), {}
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
            elif max_steps is not None and ctc_min_steps(key) > max_steps:  # repeats in the matched form
                too_long.append(word)
            else:
                kept.append(word)
        if not kept and not skipped and not too_long:
            raise LexiconError("no words (empty, or blank lines only)")
        if not kept and not too_long:
            raise LexiconError(f"none of its {len(skipped)} words can be spelled with the model's charset "
                               f"(characters outside it: {''.join(unknown)})")
        if not kept:
            raise LexiconError(f"none of its {len(skipped) + len(too_long)} words can be read: "
                               f"{len(too_long)} need more than the model's {max_steps} CTC time steps "
                               "(characters, plus a blank between repeated ones)"
                               + (f", {len(skipped)} have characters outside its charset" if skipped else ""))
        return cls(tuple(kept), tuple(skipped), "".join(unknown), case_sensitive, tuple(too_long), max_steps)

    @classmethod
    def parse(cls, text: str, charset: Charset, case_sensitive: bool = False,
              max_steps: int | None = None) -> Lexicon:
        """A lexicon from a file's text: one word per line, a leading byte-order mark ignored (see
        `from_words`; pass the model's CTC time steps as `max_steps` to leave out words it cannot emit)."""
        return cls.from_words(text.removeprefix("\ufeff").splitlines(), charset, case_sensitive, max_steps)

    def notes(self, examples: int = 5) -> list[str]:
        """One line per thing the user should know: words skipped (charset), words refused (too long for
        the model), and a lexicon so large that matching takes long, with the expected times."""
        lines = [self.skipped_note(examples)] if self.skipped else []
        if self.too_long:
            total = len(self.words) + len(self.skipped) + len(self.too_long)
            lines.append(f"{len(self.too_long)} of {total} words refused, longer than the model can emit in "
                         f"its {self.max_steps} CTC time steps (characters, plus a blank between repeated "
                         f"ones): {_examples(self.too_long, examples)}")
        n = len(self.words)
        if n > LARGE_LEXICON:
            index, query = n * INDEX_SECONDS_PER_WORD, n * QUERY_SECONDS_PER_WORD
            lines.append(f"{n:,} words is a large lexicon: expect about {index:.0f} s to index it before the "
                         f"first image, then about {query:.1f} s per image ({query * 1000 / 60:.0f} min per "
                         "1,000 images) on one core; keep only the words that can occur in your images")
        return lines

    def skipped_note(self, examples: int = 5) -> str:
        """One line on the skipped words, or "" when none were skipped."""
        if not self.skipped:
            return ""
        total = len(self.skipped) + len(self.words) + len(self.too_long)
        return (f"{len(self.skipped)} of {total} words skipped, characters outside the model's charset "
                f"({self.unknown}): {_examples(self.skipped, examples)}")


def _examples(words: Sequence[str], n: int, width: int = 40) -> str:
    shown = [w if len(w) <= width else w[:width - 3] + "..." for w in words[:n]]
    return ", ".join(shown) + (", ..." if len(words) > n else "")


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
    order = np.array(sorted(range(len(labels)), key=lambda i: len(labels[i])), dtype=np.int64)
    for chunk in _chunks([len(labels[i]) for i in order]):
        out[order[chunk]] = _forward([labels[i] for i in order[chunk]], log_probs)
    return out


def _chunks(lengths: Sequence[int]) -> Iterable[slice]:
    """Cuts labels sorted by length into forward passes: at most _CHUNK labels each (memory), and a new
    pass once padding to the longest label would cost half again the labels' own states (a per-pass cost
    of T small NumPy steps, so a few dozen words always share one pass)."""
    start, own = 0, 0
    for i, n in enumerate(lengths):
        own += 2 * n + 1
        count = i - start + 1
        if count > _CHUNK or (count > _MIN_SPLIT and count * (2 * n + 1) > 1.5 * own):
            yield slice(start, i)
            start, own = i, 2 * n + 1
    if start < len(lengths):
        yield slice(start, len(lengths))


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
    # The skip s-2 -> s is allowed into a non-blank state whose label differs from the one two back; as a
    # log-domain mask: 0 where allowed, -inf where not.
    skip = np.full((words, states), -np.inf)
    skip[:, 3::2] = np.where(ext[:, 3::2] != ext[:, 1:-2:2], 0.0, -np.inf)
    emit = log_probs[:, ext]  # [T, words, states]
    alpha = np.full((words, states), -np.inf)
    alpha[:, :2] = emit[0, :, :2]
    one, two = np.full_like(alpha, -np.inf), np.full_like(alpha, -np.inf)  # from s-1 and from s-2
    with np.errstate(divide="ignore", invalid="ignore"):
        for t in range(1, log_probs.shape[0]):
            one[:, 1:] = alpha[:, :-1]
            np.add(alpha[:, :-2], skip[:, 2:], out=two[:, 2:])
            # log(e^a + e^b + e^c) around the largest term; a state no path reaches stays -inf
            top = np.maximum(np.maximum(alpha, one), two)
            top[top == -np.inf] = 0.0
            alpha = top + np.log(np.exp(alpha - top) + np.exp(one - top) + np.exp(two - top)) + emit[t]
    rows = np.arange(words)
    return np.logaddexp(alpha[rows, 2 * lengths], alpha[rows, 2 * lengths - 1])


class BKTree:
    """Strings indexed for edit-distance (Levenshtein) range and nearest-neighbour queries.

    Burkhard-Keller tree: each word hangs under the first word it met on insertion by its distance to
    it, so every word below edge e of a node lies exactly e edits from that node. By the triangle
    inequality, a query d edits from a node need only descend into the edges in [d - radius, d + radius].
    Queries walk the tree level by level: the distances of a whole level in one rapidfuzz call, the
    edges to follow picked with NumPy, which keeps a large tree's walk out of per-node Python.

    Args:
        words: the strings; results refer to them by index (repeats are allowed and all returned).
    """

    def __init__(self, words: Sequence[str]):
        self.words = list(words)
        children: list[dict[int, int]] = [{} for _ in self.words]
        for i in range(1, len(self.words)):
            node = 0
            while True:
                d = Levenshtein.distance(self.words[i], self.words[node])
                nxt = children[node].get(d)
                if nxt is None:
                    children[node][d] = i
                    break
                node = nxt
        # The edges as flat arrays: node n's children are _kid[_start[n]:_start[n + 1]], with _edge alike.
        self._start = np.concatenate([[0], np.cumsum([len(c) for c in children])]).astype(np.int64)
        self._edge = np.array([e for c in children for e in c], dtype=np.int64)
        self._kid = np.array([k for c in children for k in c.values()], dtype=np.int64)
        self._strings = np.empty(len(self.words), dtype=object)  # fancy-indexable, for one call per level
        self._strings[:] = self.words

    def __len__(self) -> int:
        return len(self.words)

    def search(self, query: str, radius: int, at_least: int = 0) -> list[tuple[int, int]]:
        """(distance, index) of every word within `radius` edits of `query`; when fewer than `at_least`
        are, the `at_least` nearest words instead (ties at the edge go to the lower index). Nearest first.

        The walk's radius is `radius`, or the `at_least`-th smallest distance met so far when that is
        larger: an upper bound of the final one, so no word that belongs to the answer is pruned.
        """
        level = np.zeros(1 if self.words else 0, dtype=np.int64)
        dists, nodes, reach = [], [], radius if at_least <= 0 else np.inf
        kth = np.zeros(0, np.int64)  # the at_least smallest distances met so far
        while level.size:
            d = cdist([query], self._strings[level], scorer=Levenshtein.distance, dtype=np.int64)[0]
            dists.append(d)
            nodes.append(level)
            if at_least > 0:
                kth = np.concatenate([kth, d])
                if kth.size >= at_least:
                    kth = np.partition(kth, at_least - 1)[:at_least]
                    reach = max(radius, int(kth.max()))
            counts = self._start[level + 1] - self._start[level]
            first = np.repeat(self._start[level] - np.cumsum(counts) + counts, counts)
            slots = first + np.arange(counts.sum())  # every child edge of this level
            follow = np.abs(self._edge[slots] - np.repeat(d, counts)) <= reach
            level = self._kid[slots[follow]]
        if not nodes:
            return []
        found = sorted(zip(np.concatenate(dists).tolist(), np.concatenate(nodes).tolist()))
        close = [x for x in found if x[0] <= radius]
        return close if len(close) >= at_least else found[:at_least]


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
        min_candidates: fewer words than this within δ: the nearest this many are scored instead (all of
            a lexicon this small).
    """

    def __init__(self, lexicon: Lexicon, charset: Charset, max_distance: int = DEFAULT_MAX_DISTANCE,
                 min_candidates: int = DEFAULT_MIN_CANDIDATES):
        if max_distance < 0 or min_candidates < 1:
            raise ValueError(f"need max_distance >= 0 and min_candidates >= 1, got {max_distance}, "
                             f"{min_candidates}")
        self.lexicon, self.max_distance, self.min_candidates = lexicon, max_distance, min_candidates
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
        """(distance, word index) of the words to score: for each reading, the words within δ of it, or
        its `min_candidates` nearest words when fewer are that close; each word once, at its smallest
        distance from any reading, nearest first."""
        keys = [match_key(r, self.lexicon.case_sensitive) for r in readings] or [""]
        best: dict[int, int] = {}
        for key in keys:
            for d, i in self._tree.search(key, self.max_distance, self.min_candidates):
                best[i] = min(d, best.get(i, d))
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
