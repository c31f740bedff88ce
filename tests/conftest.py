"""Shared fixtures. TensorFlow is imported first on purpose: `ocr_core.records` then uses TensorFlow's copy of
the Example proto in this process, so build tests and TF tests can share one pytest run (see records.py).
The TensorFlow-free build path is proven by a test that runs it in a separate process."""
import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import tensorflow  # noqa: E402,F401

REPO = Path(__file__).resolve().parents[1]
PYTHON = sys.executable


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO
