"""Paths that are local or remote: one set of file operations for training outputs, datasets and bundles.

A path with a scheme (gs://, s3://, hdfs://, ram://, ...) goes through `tf.io.gfile`, which TensorFlow
provides for every filesystem it has a plugin for; a plain path uses the local filesystem, so callers that
never touch remote paths (the TensorFlow-free build and inspect jobs) do not import TensorFlow.
Keras saves and loads only local files: `staged_write` and `local_copy` give it a local path and copy.
"""
from __future__ import annotations

import contextlib
import os
import posixpath
import shutil
import tempfile
from collections.abc import Iterator


def is_remote(path) -> bool:
    """True for a path with a scheme (`gs://bucket/x`, `ram://x`)."""
    return "://" in str(path)


def _gfile():
    import tensorflow as tf

    return tf.io.gfile


def join(base, *parts: str) -> str:
    base = str(base)
    return posixpath.join(base, *parts) if is_remote(base) else os.path.join(base, *parts)


def basename(path) -> str:
    path = str(path).rstrip("/")
    return posixpath.basename(path) if is_remote(path) else os.path.basename(os.path.abspath(path))


def exists(path) -> bool:
    return _gfile().exists(str(path)) if is_remote(path) else os.path.exists(path)


def isdir(path) -> bool:
    return _gfile().isdir(str(path)) if is_remote(path) else os.path.isdir(path)


def makedirs(path) -> None:
    if is_remote(path):
        _gfile().makedirs(str(path))
    else:
        os.makedirs(path, exist_ok=True)


def read_text(path) -> str:
    if is_remote(path):
        with _gfile().GFile(str(path), "r") as fh:
            return fh.read()
    with open(path, encoding="utf-8") as fh:
        return fh.read()


def write_text(path, text: str) -> None:
    """Writes (replaces) a whole text file."""
    if is_remote(path):
        with _gfile().GFile(str(path), "w") as fh:
            fh.write(text)
    else:
        with open(path, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)


def open_binary(path):
    """A binary read handle (a context manager)."""
    return _gfile().GFile(str(path), "rb") if is_remote(path) else open(path, "rb")


def remove(path) -> None:
    """Deletes a file or a directory tree; nothing when it does not exist."""
    if is_remote(path):
        g = _gfile()
        if g.isdir(str(path)):
            g.rmtree(str(path))
        elif g.exists(str(path)):
            g.remove(str(path))
    elif os.path.isdir(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.unlink(path)


def move_into(src_dir: str, dest_dir, last: tuple[str, ...] = ()) -> None:
    """Moves every entry of the local directory `src_dir` into `dest_dir`, replacing same-named entries.

    Locally each entry is renamed (atomic per entry, on one filesystem); to a remote `dest_dir` it is
    copied, then the local copy is deleted. Entries named in `last` are moved after all others, so a
    reader that waits for them sees the rest complete. `src_dir` is removed at the end.
    """
    makedirs(dest_dir)
    for name in sorted(os.listdir(src_dir), key=lambda n: (n in last, n)):
        src, dest = os.path.join(src_dir, name), join(dest_dir, name)
        if os.path.isdir(src) or is_remote(dest):
            remove(dest)
        if is_remote(dest):
            _copy_tree_to_remote(src, dest)
        else:
            os.replace(src, dest)
    shutil.rmtree(src_dir, ignore_errors=True)


def _copy_tree_to_remote(src: str, dest: str) -> None:
    g = _gfile()
    if not os.path.isdir(src):
        g.copy(src, dest, overwrite=True)
        return
    for folder, _, files in os.walk(src):
        rel = os.path.relpath(folder, src)
        target = dest if rel == "." else posixpath.join(dest, rel.replace(os.sep, "/"))
        g.makedirs(target)
        for f in files:
            g.copy(os.path.join(folder, f), posixpath.join(target, f), overwrite=True)


@contextlib.contextmanager
def staged_write(path) -> Iterator[str]:
    """A local file path to write `path` through: `path` itself when local, else a temporary file copied
    to `path` when the block ends without an error."""
    if not is_remote(path):
        yield str(path)
        return
    with tempfile.TemporaryDirectory(prefix="ocr-stage-") as tmp:
        local = os.path.join(tmp, basename(path))
        yield local
        _gfile().copy(local, str(path), overwrite=True)


@contextlib.contextmanager
def local_copy(path) -> Iterator[str]:
    """A local path holding the file `path`: itself when local, else a temporary copy (same file name)."""
    if not is_remote(path):
        yield str(path)
        return
    with tempfile.TemporaryDirectory(prefix="ocr-fetch-") as tmp:
        local = os.path.join(tmp, basename(path))
        _gfile().copy(str(path), local, overwrite=True)
        yield local
