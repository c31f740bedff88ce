"""argparse types shared by the jobs' command lines: one rule and one message for every count flag."""
from __future__ import annotations

import argparse


def positive_int(text: str) -> int:
    """An argparse `type`: an integer >= 1 (`--workers 0` would start no worker, or hang, instead of failing).

    Raises:
        argparse.ArgumentTypeError: argparse prints it as `argument --workers: must be an integer >= 1, ...`.
    """
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}")
    return n
