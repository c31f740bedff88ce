"""The alphabet a model reads: text <-> class ids, with the CTC blank fixed at id 0."""
from __future__ import annotations

import json
import string
import unicodedata
from dataclasses import dataclass

BLANK_ID = 0
DEFAULT_CHARACTERS = string.digits + string.ascii_lowercase + string.ascii_uppercase


class CharsetError(ValueError):
    """A label cannot be expressed in the charset."""


@dataclass(frozen=True)
class Charset:
    """An ordered set of characters; character i has class id i + 1 (0 is the CTC blank).

    Args:
        characters: the characters, in id order, without duplicates.
    """

    characters: str = DEFAULT_CHARACTERS

    def __post_init__(self):
        if not self.characters:
            raise CharsetError("a charset needs at least one character")
        if len(set(self.characters)) != len(self.characters):
            dups = sorted({c for c in self.characters if self.characters.count(c) > 1})
            raise CharsetError(f"charset has duplicate characters: {''.join(dups)!r}")
        object.__setattr__(self, "_index", {c: i + 1 for i, c in enumerate(self.characters)})

    @property
    def num_classes(self) -> int:
        """Size of the softmax: the characters plus the blank."""
        return len(self.characters) + 1

    @staticmethod
    def normalize(text: str) -> str:
        """`text` in the form labels are stored and compared in: Unicode NFC. A label typed or exported as
        NFD ("é" as "e" + U+0301) would otherwise be refused as out of charset, or stored as two
        classes, and never match the model's precomposed output."""
        return unicodedata.normalize("NFC", text)

    def unknown(self, text: str) -> str:
        """The characters of `text` outside the charset, in order of first appearance."""
        return "".join(dict.fromkeys(c for c in text if c not in self._index))

    def encode(self, text: str) -> list[int]:
        """Maps text to ids 1..N; raises CharsetError naming the characters that do not fit."""
        bad = self.unknown(text)
        if bad:
            raise CharsetError(f"label {text!r} has characters outside the charset ({bad})")
        return [self._index[c] for c in text]

    def decode(self, ids) -> str:
        """Maps ids back to text, skipping blanks (0) and padding."""
        n = len(self.characters)
        return "".join(self.characters[i - 1] for i in (int(x) for x in ids) if 0 < i <= n)

    def to_json(self) -> str:
        return json.dumps({"characters": self.characters, "blank_id": BLANK_ID}, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> Charset:
        data = json.loads(text)
        if data.get("blank_id", BLANK_ID) != BLANK_ID:
            raise CharsetError(f"unsupported blank id {data['blank_id']}; ocr uses {BLANK_ID}")
        return cls(data["characters"])


def ctc_min_steps(ids) -> int:
    """Time steps CTC needs to emit a label: one per character plus a blank between adjacent repeats."""
    ids = list(ids)
    return len(ids) + sum(1 for a, b in zip(ids, ids[1:]) if a == b)
