"""Why an input did not become a record (build) or a prediction (predict): one error class, one reason list.

A bad input is never fatal: the build writes it to rejects-*.jsonl as `reason` + `detail`, predict writes an
error row `"<reason>: <detail>"`. The reason is a short stable code (counted in manifests and summaries); the
detail says what is wrong in words and numbers, and never quotes the file's content.
User mistakes that stop a job before it starts (bad options, missing manifest) are not InputErrors but
UsageErrors: one line on stderr and exit code 2. A job that started and cannot finish (a manifest that ends
early, a corrupt shard) raises JobFailed: one line naming the input and the cause, exit code 1. Only
`pipelines/cli.py` turns these into messages and exit codes.
"""
from __future__ import annotations

import re

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

    Each job subclasses it (BuildError, PredictError, EvaluateError). Jobs raise it; only `pipelines/cli.py`
    turns it into `ocr COMMAND: error: ...` and exit code 2.
    """


class JobFailed(RuntimeError):
    """A job that started and could not finish (a manifest that ends early, a corrupt shard): exit 1 with
    one line naming the input and the cause. Raised inside a Beam worker it reaches the launcher wrapped in
    the runner's own exception; `failure_message` finds it there again."""


_FAILED = re.compile(r"(?:^|[\s.])JobFailed: (.+?)(?: \[while running [^\]]*\])*$", re.M)
_LAST_ERROR = re.compile(r"^(\w+(?:\.\w+)*(?:Error|Exception|Failed)): (.+)$", re.M)


def failure_message(exc: BaseException) -> str:
    """The one line to show for a job that failed with `exc`: a `JobFailed` message wherever it is in the
    exception's chain or in the text of a traceback a runner passed on, else the last "SomeError: ..." line
    of that text (a worker's bug), else `exc` itself."""
    seen, texts = set(), []
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, JobFailed):
            return _strip_beam_context(str(e))
        texts.append(str(e))
        e = e.__cause__ or e.__context__
    for text in texts:
        found = _FAILED.findall(text)
        if found:
            return _strip_beam_context(found[-1])
    for text in texts:
        found = _LAST_ERROR.findall(text)
        if found:
            kind, message = found[-1]
            return f"{kind.rsplit('.', 1)[-1]}: {_strip_beam_context(message)}"
    first = (texts[0].strip().splitlines() or [""])[0] if texts else ""
    return f"{type(exc).__name__}: {_strip_beam_context(first)}" if first else type(exc).__name__


def _strip_beam_context(message: str) -> str:
    """Beam appends " [while running 'Step']" to an exception's message, once per enclosing stage."""
    return re.sub(r"(?: \[while running [^\]]*\])+", "", message).strip()
