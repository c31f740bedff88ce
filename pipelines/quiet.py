"""Known harmless noise on stderr, dropped from the console of every `ocr` command (`ocr --verbose` keeps it).

Beam worker processes, TensorFlow's C++ start-up and libpng write these lines straight to file descriptor 2,
before any logging configuration of ours can apply (a Beam worker prints them while importing Beam, ahead
of its pipeline options). So the filter sits on the descriptor itself: fd 2 becomes a pipe that a thread
copies to the real stderr line by line, leaving out the lines below. Child processes (DirectRunner workers,
a local Dask cluster) inherit the pipe, so their noise goes the same way. Everything else passes unchanged,
tracebacks included, except a worker's copy of a failed bundle's traceback (see TracebackFilter).
"""
from __future__ import annotations

import atexit
import os
import re
import sys
import threading

NOISE = re.compile("|".join([
    # Beam imports its BigQuery client at `import apache_beam`; without Beam's gcp extra it says so, once
    # per process (the launcher and every worker)
    r"WARNING:root:apitools not found, and bigquery client libraries are not available",
    # a Beam worker's INFO line from before it reads the log level of its options
    r"INFO:[\w.]+:Logging handler created\.",
    # TensorFlow (absl) start-up notices, printed before TF_CPP_MIN_LOG_LEVEL can apply
    r"WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR",
    r"I\d{4} [\d:.]+ +\d+ port\.cc:\d+\] oneDNN custom operations are on",
    # tf.data on a Python generator (the validation stream)
    r"W\d{4} [\d:.]+ +\d+ dataset\.cc:\d+\] Input of GeneratorDatasetOp::Dataset will not be optimized",
    # PNG metadata libpng fixes or ignores while decoding (e.g. an odd ICC profile): not an image error
    r"libpng warning: ",
    # gRPC's notice when a job's channels close
    r"I\d{4} [\d:.]+ +\d+ chttp2_transport\.cc:\d+\] .*Got goaway",
]))
# After a worker dies, the surviving workers' log forwarders retry the launcher's closed logging server every
# few seconds, five lines each time; the job's own one-line WorkerDied message says what happened.
BLOCK_START = "Logging client failed: <_MultiThreadedRendezvous"
BLOCK_END = ">... resetting"


def is_noise(line: str) -> bool:
    return NOISE.match(line) is not None


# A Beam worker prints the traceback of a failed bundle straight to its stderr, then sends it to the
# launcher, where the job fails with it: `ocr` shows that failure as one line (`pipelines/cli.py`), so the
# worker's copy, a traceback whose last exception line ends with "[while running 'Step']", is dropped
# (`ocr --verbose` keeps it). Other tracebacks pass unchanged, held only until it is clear they are not one.
TRACEBACK = "Traceback (most recent call last):"
CHAINED = ("During handling of the above exception", "The above exception was the direct cause")
BUNDLE_FAILURE = re.compile(r".*\[while running '[^\]]*'\]$")


class TracebackFilter:
    """Holds the lines of a traceback; `feed` returns the lines to write now (a bundle failure's: none)."""

    def __init__(self):
        self.held: list[str] | None = None
        self.last = ""  # the last non-blank line held

    def feed(self, line: str) -> list[str]:
        if self.held is None:
            if line.startswith(TRACEBACK):
                self.held, self.last = [line], line
                return []
            return [line]
        if not line.strip() and BUNDLE_FAILURE.match(self.last):
            self.held = None  # the worker's copy of a bundle failure: dropped with its blank line
            return []
        if line.strip() and not line.startswith((" ", TRACEBACK, *CHAINED)) and not self.last.startswith(
                " ") and self.last != TRACEBACK and not self.last.startswith(CHAINED):
            # a line after the exception line that is no part of a traceback: the traceback is not a bundle
            # failure's; write it and go on
            out, self.held = [*self.held, line], None
            return out
        self.held.append(line)
        if line.strip():
            self.last = line
        return []

    def flush(self) -> list[str]:
        out, self.held = self.held or [], None
        return out


class NoiseFilter:
    """Line by line: False for noise, and for every line of a retry block (two workers' blocks can share a
    line: a block starts wherever BLOCK_START appears and ends with its BLOCK_END line and a blank line)."""

    def __init__(self):
        self.in_block = False
        self.just_ended = False

    def keep(self, line: str) -> bool:
        just_ended, self.just_ended = self.just_ended, False
        if BLOCK_START in line:
            self.in_block = True
            return False
        if self.in_block:
            if line.startswith(BLOCK_END):
                self.in_block, self.just_ended = False, True
            return False
        if just_ended and not line.strip():
            return False
        return not is_noise(line)


def filter_stderr() -> None:
    """Routes fd 2 through the noise filter for the rest of this process (and the processes it starts)."""
    sys.stderr.flush()
    real = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)

    noise, tracebacks = NoiseFilter(), TracebackFilter()

    def copy() -> None:
        with os.fdopen(read_end, "rb", buffering=0) as src:
            pending = b""
            while chunk := src.read(65536):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                kept = [t for line in lines if noise.keep(text := line.decode("utf-8", "replace"))
                        for t in tracebacks.feed(text)]
                if kept:
                    os.write(real, "".join(t + "\n" for t in kept).encode("utf-8", "replace"))
            rest = tracebacks.flush() + ([pending.decode("utf-8", "replace")] if pending else [])
            if rest:
                os.write(real, "\n".join(rest).encode("utf-8", "replace"))

    thread = threading.Thread(target=copy, name="ocr-stderr-filter", daemon=True)
    thread.start()

    def restore() -> None:
        # Put the real stderr back and let the thread drain what is in the pipe. A child still holding the
        # pipe open would keep it from ending: wait briefly, never hang the exit.
        sys.stderr.flush()
        os.dup2(real, 2)
        thread.join(timeout=2.0)

    atexit.register(restore)
