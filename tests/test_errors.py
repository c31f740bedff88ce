"""`ocr_core.errors`: an InputError carries one of the listed reasons and a detail, an unknown reason is
refused, and the reason list holds exactly the reasons the jobs raise."""
import re

import pytest

from ocr_core.errors import REASONS, InputError, UsageError


def test_an_input_error_is_its_reason_and_detail():
    e = InputError("too_large", "declared size 30000x30000")
    assert isinstance(e, ValueError) and not isinstance(e, UsageError)
    assert (e.reason, e.detail) == ("too_large", "declared size 30000x30000")
    assert str(e) == "too_large: declared size 30000x30000"  # predict's error rows are exactly this


def test_an_unknown_reason_is_refused():
    with pytest.raises(ValueError, match="unknown input error reason 'too_big'"):
        InputError("too_big", "x")
    assert len(set(REASONS)) == len(REASONS)
    assert all(re.fullmatch(r"[a-z]+(_[a-z]+)*", r) for r in REASONS)  # short stable codes


def test_every_listed_reason_is_raised_somewhere_and_every_raised_one_is_listed(repo):
    files = [p for folder in ("ocr_core", "pipelines") for p in (repo / folder).rglob("*.py")]
    code = "\n".join(p.read_text() for p in files if p != repo / "ocr_core" / "errors.py")
    raised = set(re.findall(r'InputError\(\s*"(\w+)"', code))
    assert len(raised) >= 10 and raised <= set(REASONS), raised - set(REASONS)
    assert [r for r in REASONS if f'"{r}"' not in code] == []  # no reason that nothing can produce
