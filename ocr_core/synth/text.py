"""The labels synth draws: common and dictionary words, numbers, codes and random strings, each written in the
charset and short enough for the CRNN's CTC frames."""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from ocr_core.charset import DEFAULT_CHARACTERS, Charset, ctc_min_steps

DEFAULT_WORDS = "/usr/share/dict/words"
MAX_LABEL_LEN = 24
MAX_CTC_STEPS = 31  # the CRNN emits 32 frames for a 128-wide input; keep one spare
LINE_CHARACTERS = " .,'-!?:;()&/\""  # what a line adds to the word charset (configs/lines.yaml has these too)
SIGN_MARKS = "$%#@+"  # prices, percentages, numbers, handles, phone numbers: configs/lines.yaml reads them
PRICED_SHARE = 0.12  # with marks labelled (`ocr synth --for-config`): of the words, and of a line's tokens, a
# price, percentage, #number, @handle or +phone number written with the marks the charset has
LINE_WORDS = (2, 8)  # a line holds 2..7 words or numbers
MAX_LINE_LEN = 80

# The most frequent English words plus common sign/label words, in rough frequency order (Zipf-weighted).
COMMON_WORDS = tuple("""
the of and to a in is you that it he was for on are as with his they I at be this have from or one had by
but not what all were we when your can said there use an each which she do how their if will up other about
out many then them these so some her would make like him into time has look two more write go see number no
way could people my than first been call who its now find long down day did get come made may part new sale
open free shop street road exit stop price store hotel cafe bar menu news best off only entrance push pull
welcome avenue parking taxi bank pizza police market center city park coffee food house home car school
service office station bus train north south east west left right here today love life world great good
big small old year years work show book books club room hall line area high low
""".split())
_LENGTH_WEIGHTS = {1: 0.01, 2: 0.04, 3: 0.09, 4: 0.13, 5: 0.14, 6: 0.14, 7: 0.13, 8: 0.11, 9: 0.08,
                   10: 0.055, 11: 0.035, 12: 0.02, 13: 0.012, 14: 0.007}  # longer: 0.6 times the previous
_UNITS = ("km", "kg", "mm", "cm", "ml", "mg", "th", "st", "nd", "rd", "h", "am", "pm", "GB", "MB", "V", "W",
          "x")


@functools.lru_cache(maxsize=4)
def load_lexicon(path: str = DEFAULT_WORDS, characters: str = DEFAULT_CHARACTERS) -> tuple[str, ...]:
    """The distinct words of a word list (one a line) written only with `characters`, up to MAX_LABEL_LEN.

    Words like "don't" or "café" are dropped rather than changed, so every label is a real spelling.
    """
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError as e:
        raise FileNotFoundError(f"{path}: word list not found; install the Debian package wamerican "
                                "(make system-deps) or pass another words file") from e
    allowed = set(characters)
    words = dict.fromkeys(w for w in (line.strip() for line in text.splitlines())
                          if w and len(w) <= MAX_LABEL_LEN and set(w) <= allowed)
    if not words:
        raise ValueError(f"{path}: no word is written only with the charset's characters")
    return tuple(words)


def fits_ctc(label: str, charset: Charset = Charset()) -> bool:
    """Whether the label is non-empty, in the charset, at most MAX_LABEL_LEN long and fits MAX_CTC_STEPS."""
    return (0 < len(label) <= MAX_LABEL_LEN and not charset.unknown(label)
            and ctc_min_steps(charset.encode(label)) <= MAX_CTC_STEPS)


class TextSampler:
    """Draws labels: common words (Zipf by rank), dictionary words (weighted by a word-length prior, as in
    running text), numbers, codes and random strings, in lower, Capitalised and UPPER case.

    Args:
        words_path: the dictionary, one word a line.
        charset: labels use only its characters.
    """

    def __init__(self, words_path: str = DEFAULT_WORDS, charset: Charset = Charset()):
        self.charset = charset
        self.words = load_lexicon(words_path, charset.characters)
        by_len: dict[int, list[str]] = {}
        for w in self.words:
            by_len.setdefault(len(w), []).append(w)
        self._lengths = sorted(by_len)
        self._by_len = [tuple(by_len[n]) for n in self._lengths]
        p = np.array([_LENGTH_WEIGHTS.get(n, 0.007 * 0.6 ** (n - 14)) for n in self._lengths])
        self._length_p = p / p.sum()
        common = [w for w in COMMON_WORDS if not charset.unknown(w)] or list(self.words[:100])
        self._common = tuple(dict.fromkeys(common))
        zipf = 1.0 / (np.arange(len(self._common)) + 2.7)
        self._common_p = zipf / zipf.sum()
        self._digits = "".join(c for c in "0123456789" if c in charset.characters) or charset.characters
        self._upper = "".join(c for c in charset.characters if c.isupper()) or charset.characters
        self._lower = "".join(c for c in charset.characters if c.islower()) or charset.characters

    def word(self, rng: np.random.Generator) -> str:
        """A common word (1 in 3) or a dictionary word of a length drawn from the prior."""
        if rng.random() < 0.33:
            return self._common[rng.choice(len(self._common), p=self._common_p)]
        bucket = self._by_len[rng.choice(len(self._lengths), p=self._length_p)]
        return bucket[rng.integers(len(bucket))]

    def _case(self, text: str, rng: np.random.Generator) -> str:
        u = rng.random()
        if u < 0.55:  # as in the dictionary: lowercase, proper nouns capitalised
            return text
        if u < 0.82:
            return text[:1].upper() + text[1:].lower()
        return text.upper()

    def _chars(self, alphabet: str, n: int, rng: np.random.Generator) -> str:
        return "".join(alphabet[i] for i in rng.integers(len(alphabet), size=n))

    def _number(self, rng: np.random.Generator) -> str:
        u = rng.random()
        if u < 0.2:
            return str(int(rng.integers(1900, 2036)))  # a year
        if u < 0.45:
            cents = (0, 50, 95, 99, int(rng.integers(100)))[rng.integers(5)]
            return f"{int(rng.integers(1, 1000))}{cents:02d}"  # a price without its separator
        if u < 0.55:
            return self._chars(self._digits, int(rng.integers(7, 11)), rng)  # phone-like
        return str(int(10 ** rng.uniform(0, 6)))  # Benford-like magnitudes

    def priced(self, rng: np.random.Generator, marks: str) -> str:
        """A price ($4, $4.99, $1,250), a percentage (25%), a #number, an @handle or a +phone number, with
        those of the marks `$ % # @ + . ,` that `marks` holds (a mark it lacks is left out of the text)."""
        kinds = [k for k in "$%#@+" if k in marks] or ["$"]
        kind = kinds[rng.integers(len(kinds))]
        if kind == "$":
            whole = int(10 ** rng.uniform(0, 4))
            u = rng.random()
            if u < 0.4:
                cents = (0, 50, 95, 99, int(rng.integers(100)))[rng.integers(5)]
                text = f"${whole}.{cents:02d}"
            elif u < 0.55 and whole >= 1000:
                text = f"${whole:,}"
            else:
                text = f"${whole}"
        elif kind == "%":
            text = f"{int(rng.integers(1, 100))}%" if rng.random() < 0.85 else f"{rng.uniform(0, 20):.1f}%"
        elif kind == "#":
            text = f"#{int(10 ** rng.uniform(0, 3))}"
        elif kind == "@":
            handle = self.word(rng).lower()
            text = "@" + handle + (str(int(rng.integers(1, 100))) if rng.random() < 0.3 else "")
        else:
            text = "+" + self._chars(self._digits, int(rng.integers(6, 12)), rng)
        return "".join(c for c in text if c.isalnum() or c in marks)

    def _code(self, rng: np.random.Generator) -> str:
        """Like AB12C, X7, B2B, SW1A: alternating runs of letters and digits."""
        letters = self._upper if rng.random() < 0.8 else self._lower
        runs, digit = int(rng.integers(1, 5)), rng.random() < 0.3
        parts = []
        for _ in range(runs):
            parts.append(self._chars(self._digits if digit else letters, int(rng.integers(1, 4)), rng))
            digit = not digit
        return "".join(parts)

    def _synthetic(self, rng: np.random.Generator) -> str:
        u = rng.random()
        if u < 0.35:
            return self._number(rng)
        if u < 0.65:
            return self._code(rng)
        if u < 0.85:
            return self._chars(self.charset.characters, int(rng.integers(1, 11)), rng)
        word = self._case(self.word(rng), rng)
        if rng.random() < 0.5:
            return word + str(int(rng.integers(1, 100)))  # Route66, room12
        return str(int(rng.integers(1, 1000))) + _UNITS[rng.integers(len(_UNITS))]  # 24h, 5km, 3rd

    def sign_text(self, rng: np.random.Generator) -> str:
        """A label for a sign (version 5): mostly a word (45 % capitals, as on shop fronts), else a number
        (house numbers, years, prices) or any label; fits the charset and MAX_CTC_STEPS."""
        while True:
            u = rng.random()
            if u < 0.75:
                word = self.word(rng)
                text = word.upper() if rng.random() < 0.45 else self._case(word, rng)
            elif u < 0.9:
                text = self._number(rng) if rng.random() < 0.5 else str(int(rng.integers(1, 400)))
            else:
                return self.sample(rng, upper_share=0.35)
            if self.charset.unknown(text) and not self.charset.unknown(text.lower()):
                text = text.lower()
            if fits_ctc(text, self.charset):
                return text

    def line(self, rng: np.random.Generator, marks: str = "") -> str:
        """A text line (`ocr synth --lines`): LINE_WORDS words, numbers and codes separated by single spaces,
        in sentence case, Title Case or capitals, with the punctuation of running text labelled as drawn
        (commas, a final stop, a colon, a dash, brackets, quotes, &, a slash, an apostrophe); at most
        MAX_LINE_LEN characters, all of them in the word charset or LINE_CHARACTERS.

        `marks` (`ocr synth --for-config`): the punctuation of the model's charset; with any of SIGN_MARKS in
        it, PRICED_SHARE of the tokens are prices, percentages, ... (`priced`), and those marks allowed."""
        priced = bool(set(marks) & set(SIGN_MARKS))
        while True:
            n = int(rng.integers(*LINE_WORDS))
            tokens = [self.word(rng) if rng.random() < 0.8 else self._synthetic(rng) for _ in range(n)]
            if priced:
                tokens = [self.priced(rng, marks) if rng.random() < PRICED_SHARE else t for t in tokens]
            case = rng.random()
            if case < 0.15:
                tokens = [t.upper() for t in tokens]
            elif case < 0.35:
                tokens = [t[:1].upper() + t[1:] for t in tokens]
            elif case < 0.85:
                tokens[0] = tokens[0][:1].upper() + tokens[0][1:]
            text = _line_punctuation(tokens, rng)
            allowed = set(self.charset.characters) | set(LINE_CHARACTERS) | set(marks)
            if len(text) <= MAX_LINE_LEN and set(text) <= allowed:
                return text

    def sample(self, rng: np.random.Generator, upper_share: float | None = None) -> str:
        """One label: 70% words, 30% numbers/codes/strings; always fits the charset and MAX_CTC_STEPS.

        `upper_share`: the share of words set in capitals instead of the dictionary's own mix (v3: signs and
        posters are mostly capitals).
        """
        while True:
            if rng.random() < 0.7:
                word = self.word(rng)
                if upper_share is not None and rng.random() < upper_share:
                    text = word.upper()
                else:
                    text = self._case(word, rng)
            else:
                text = self._synthetic(rng)
            if self.charset.unknown(text) and not self.charset.unknown(text.lower()):
                text = text.lower()
            if fits_ctc(text, self.charset):
                return text


# Version 4: the punctuation real signs and labels carry around and inside words ($2.00, 72%, 1/24, www.x.com,
# "OPEN!", co-op). Labelled without it, as the real crops' labels are (the charset has none), so the model
# learns to pass over these marks instead of reading $ as S or % as 96. ASCII only: every Latin text font
# draws these.
# Marks before, after and inside a text (a repeated mark is drawn more often): numbers are mostly prices and
# percentages, as on real signs.
_NUMBER_MARKS = ("$$$$#+-(~", "%%%.,)!:-+*", ".....,,//:-")
_WORD_MARKS = ('"\'(#@*-&', '.,!?:;)"\'-*', "-'.&/.")


def _line_punctuation(tokens: list[str], rng: np.random.Generator) -> str:
    """Tokens joined by spaces with the punctuation of running text, every mark part of the label."""
    out = []
    for i, t in enumerate(tokens):
        if not t:  # joined to the token before it by a slash
            continue
        last = i == len(tokens) - 1
        u = rng.random()
        if u < 0.04 and t.isalpha() and len(t) > 1:
            t = t + "'s"
        elif u < 0.07:
            t = f"({t})"
        elif u < 0.10:
            t = f'"{t}"'
        if not last:
            v = rng.random()
            if v < 0.12:
                t += ","
            elif v < 0.15:
                t += ":"
            elif v < 0.17:
                t += ";"
            elif v < 0.21:
                t += " -" if rng.random() < 0.5 else " &"
            elif v < 0.23:
                t += "/" + tokens[i + 1]
                tokens[i + 1] = ""
        out.append(t)
    text = " ".join(t for t in out if t)
    end = rng.random()
    if end < 0.35:
        text += "."
    elif end < 0.40:
        text += "!" if rng.random() < 0.5 else "?"
    return text


def _mark(rng: np.random.Generator, marks: str) -> str:
    return marks[rng.integers(len(marks))]


def punctuate(text: str, rng: np.random.Generator) -> str:
    """`text` as drawn with punctuation marks before, after or inside it; its alphanumerics stay `text`.

    Numbers get a price or percent sign half the time ($2.00 is labelled 200 in the real crops)."""
    prefix, suffix, infix = _NUMBER_MARKS if text.isdigit() else _WORD_MARKS
    u = rng.random() if len(text) > 1 else 1.0
    if u < 0.35:
        cut = int(rng.integers(1, len(text)))
        text = text[:cut] + _mark(rng, infix) + text[cut:]
    if text.replace(".", "").replace(",", "").isdigit() and rng.random() < 0.5:
        return ("$" + text) if rng.random() < 0.7 else (text + "%")
    if u >= 0.25 and rng.random() < 0.6:
        text = _mark(rng, prefix) + text
    if u >= 0.25 and (rng.random() < 0.6 or not any(not c.isalnum() for c in text)):
        text = text + _mark(rng, suffix)
    return text
