"""Why an input did not become a record (build) or a prediction (predict): one error class, one reason list.

A bad input is never fatal: the build writes it to rejects-*.jsonl as `reason` + `detail`, predict writes an
error row `"<reason>: <detail>"`. The reason is a short stable code (counted in manifests and summaries); the
detail says what is wrong in words and numbers, and never quotes the file's content.
User mistakes that stop a job before it starts (bad options, missing manifest) are not InputErrors but
UsageErrors: one line on stderr and exit code 2.
"""
from __future__ import annotations

REASONS = (
    # a manifest line or file name that does not say which image and which label
    "malformed_line",
    "malformed_name",
    # the label
    "empty_label",
    "oov_characters",
    "label_too_long",
    # the picture: taller than a line of text can be (a word written top to bottom), for a model that reads
    # lines left to right (a dynamic-width bundle, see docs/lines.md)
    "vertical_text",
    # the same image listed more than once
    "duplicate",
    "conflicting_label",
    # the file
    "missing_file",
    "unreadable",
    "empty_file",
    "not_an_image",
    "truncated",
    "too_large",
    "corrupt",
    "unsupported",
)


class InputError(ValueError):
    """One input that cannot be used. `reason` is one of REASONS, `detail` a readable explanation."""

    def __init__(self, reason: str, detail: str):
        if reason not in REASONS:
            raise ValueError(f"unknown input error reason {reason!r} (not in ocr_core.errors.REASONS)")
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class UsageError(ValueError):
    """A user mistake that stops a job before it starts (bad option, missing input): one line, exit 2.

    Each job subclasses it (BuildError, PredictError, EvaluateError) so its message names the command.
    """
