"""A label as the dataset stores it: the --oov policy, the charset and the CTC length limit applied to one raw
label (`validate_label`). Pure; the build's ValidateLabels step calls it per entry."""
from __future__ import annotations

from ocr_core.charset import Charset, ctc_min_steps
from ocr_core.errors import InputError
from ocr_core.preprocess import PreprocessSpec

OOV_POLICIES = ("reject", "lowercase", "drop")


def validate_label(label: str, charset: Charset, oov: str, max_steps: int) -> tuple[str, list[int]]:
    """The label as stored and its ids; raises InputError(empty_label | oov_characters | label_too_long).

    Args:
        label: the raw label.
        charset: the alphabet.
        oov: reject | lowercase (lowercase a label with unknown characters, then re-check) | drop
            (remove unknown characters; reject when nothing is left).
        max_steps: CTC time steps of the model; a label needing more can never be emitted.
    """
    if label == "":
        raise InputError("empty_label", "label is empty")
    text = label
    bad = charset.unknown(text)
    if bad and oov == "lowercase":
        text = text.lower()
        bad = charset.unknown(text)
    elif bad and oov == "drop":
        text = "".join(c for c in text if c not in bad)
        if not text:
            raise InputError("oov_characters", f"label {label!r} has no characters in the charset")
        bad = ""
    if bad:
        hint = "extend --charset" if oov == "lowercase" else "use --oov lowercase|drop or extend --charset"
        raise InputError("oov_characters",
                         f"label {label!r} has characters outside the charset ({bad}); {hint}")
    ids = charset.encode(text)
    steps = ctc_min_steps(ids)
    if steps > max_steps:
        raise InputError("label_too_long", f"label {text!r} needs {steps} CTC time steps "
                                           f"(characters + repeats) but the model has {max_steps}")
    return text, ids


def max_time_steps(spec: PreprocessSpec) -> int:
    """CTC time steps of the CRNN for the spec's image width (32x128 -> 31)."""
    from ocr_core.config import ModelConfig

    return ModelConfig(height=spec.height, width=spec.width).time_steps
