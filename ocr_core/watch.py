"""The bookkeeping of `ocr predict --watch`: which files have landed completely, which were already recognised
(the committed windows of the output are the durable record), what the next window is called, and whether a
newer model bundle was published. Plain functions and small classes over Beam's filesystems, no pipeline.
"""
from __future__ import annotations

import contextlib
import os
import posixpath
import re
import time
from collections.abc import Iterable

from apache_beam.io.filesystems import FileSystems

from ocr_core import publish
from ocr_core.errors import UsageError
from ocr_core.inputs import IMAGE_EXTENSIONS
from ocr_core.predictions import WINDOW_PREFIX, committed_windows, read_file, table_files

_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """Seconds of '30s', '2m', '1.5h' or '45' (seconds)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d*)?)\s*([smh]?)\s*", text)
    if not m:
        raise UsageError(f"{text!r} is not a duration: use e.g. 30s, 2m, 1h")
    return float(m.group(1)) * _UNITS[m.group(2)]


def window_name(start: float) -> str:
    """The folder of the window that started at `start` (UTC, to the second): window=2026-12-01T10:00:00."""
    return WINDOW_PREFIX + time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(start))


def watch_pattern(given: str) -> tuple[str, bool]:
    """(the pattern to list, whether to keep image extensions only) of a --watch value: a glob as it is, a
    folder as every file in it and its subfolders."""
    if any(c in given for c in "*?["):
        return given, False
    return FileSystems.join(given.rstrip("/"), "**"), True


def recover(out: str) -> set[str]:
    """Prepares a watch output for a (re)start and returns the sources already recognised in it.

    A window folder without its commit marker, and the staging folder of a job that died, is what a stopped
    run left half done: it is deleted, so its files are recognised again, once, in a new window.
    """
    committed = set(committed_windows(out))
    found = FileSystems.match([posixpath.join(out, f"{WINDOW_PREFIX}*", "**")])
    stale = {_top_folder(out, m.path) for r in found for m in r.metadata_list} - committed
    stale |= {posixpath.join(out, p) for p in publish.dead_stagings(out)}
    if stale:
        FileSystems.delete(sorted(stale))
    if "://" not in out:
        with contextlib.suppress(OSError):  # empty once the dead jobs' folders are gone
            os.rmdir(posixpath.join(out, publish.STAGING_DIR))
    done = set()
    for window in committed:
        for f in table_files(window)[0]:
            done.update(read_file(f, ["source"]).column("source").to_pylist())
    return done


def _top_folder(out: str, path: str) -> str:
    """The child of `out` that `path` lies in."""
    return posixpath.join(out, path[len(out.rstrip("/")) + 1:].split("/", 1)[0])


class LandedFiles:
    """Tells which files of a pattern have landed: seen with the same size and mtime on two polls in a row
    (a local file still being written keeps changing), and not recognised before."""

    def __init__(self, pattern: str, images_only: bool, done: Iterable[str] = ()):
        self.pattern, self.images_only = pattern, images_only
        self.done = set(done)
        self._last: dict[str, tuple[int, float]] = {}  # not yet done: path -> (size, mtime) at the last poll
        self.ready: list[str] = []  # landed, waiting for the next window

    def poll(self) -> bool:
        """Lists the pattern once; returns whether anything new appeared or changed since the last poll."""
        seen, changed, queued = {}, False, set(self.ready)
        for m in FileSystems.match([self.pattern])[0].metadata_list:
            path = m.path
            if path in self.done or path in queued:
                continue
            if self.images_only and not path.lower().endswith(IMAGE_EXTENSIONS):
                continue
            state = (m.size_in_bytes, m.last_updated_in_seconds)
            if self._last.get(path) == state:
                self.ready.append(path)
            else:
                seen[path] = state
                changed = True
        self._last = seen
        return changed

    def take(self) -> list[str]:
        """The landed files for this window (sorted), counted as done from now on: the caller commits them
        or stops (a restart finds them in no committed window and takes them again)."""
        ready, self.ready = sorted(self.ready), []
        self.done.update(ready)
        return ready


class BundleWatch:
    """Newly published model bundles under a glob: a bundle counts once its model.keras exists (save_bundle
    moves it into place last) and is new if that file was not there, or had another mtime, at start."""

    def __init__(self, pattern: str):
        self.pattern = pattern if pattern.rstrip("/").endswith("model.keras") else \
            posixpath.join(pattern.rstrip("/"), "model.keras")
        self._known = self._markers()

    def _markers(self) -> dict[str, float]:
        return {m.path: m.last_updated_in_seconds
                for m in FileSystems.match([self.pattern])[0].metadata_list}

    def retry(self, bundle: str) -> None:
        """Makes `bundle` (a directory `newest` returned) new again, so the next call returns it once more: a
        bundle that did not load (still being copied, say) is tried again, not forgotten."""
        self._known.pop(posixpath.join(bundle, posixpath.basename(self.pattern)), None)

    def newest(self) -> str | None:
        """The directory of the newest bundle published since the last call (or start), else None."""
        now = self._markers()
        new = [(mtime, path) for path, mtime in now.items() if self._known.get(path) != mtime]
        self._known = now
        return posixpath.dirname(max(new)[1]) if new else None

