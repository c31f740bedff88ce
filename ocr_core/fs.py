"""Paths that are local or remote: one set of file operations for training outputs, datasets and bundles.

A plain path uses the local filesystem. A path with a scheme (gs://, s3://, hdfs://, ram://, ...) goes
through Beam's `FileSystems` when Beam knows the scheme (gs:// with `ocr[gcp]`, s3://, hdfs://, a filesystem
registered by a test), so the TensorFlow-free jobs (build, inspect, evaluate, ONNX predict) stay
TensorFlow-free on remote paths too, and every process sees the same files whether or not it has loaded
TensorFlow. A scheme only TensorFlow knows (ram://, or gs:// without `ocr[gcp]`) goes through `tf.io.gfile`.
Keras saves and loads only local files: `staged_write` and `local_copy` give it a local path and copy.
"""
from __future__ import annotations

import contextlib
import glob as globlib
import os
import posixpath
import shutil
import tempfile
import uuid
from collections.abc import Iterator


def is_remote(path) -> bool:
    """True for a path with a scheme (`gs://bucket/x`, `ram://x`)."""
    return "://" in str(path)


def _gfile():
    import tensorflow as tf

    return tf.io.gfile


def _beam(path):
    """Beam's `FileSystems` for a remote `path` when Beam knows its scheme, else None (tf.io.gfile)."""
    try:
        from apache_beam.io.filesystems import FileSystems
    except ImportError:  # a training-only environment
        return None
    try:
        FileSystems.get_filesystem(str(path))
    except ValueError:  # a scheme no installed Beam filesystem handles
        return None
    return FileSystems


def _uncompressed():
    from apache_beam.io.filesystem import CompressionTypes

    return CompressionTypes.UNCOMPRESSED


def join(base, *parts: str) -> str:
    base = str(base)
    return posixpath.join(base, *parts) if is_remote(base) else os.path.join(base, *parts)


def basename(path) -> str:
    path = str(path).rstrip("/")
    return posixpath.basename(path) if is_remote(path) else os.path.basename(os.path.abspath(path))


def exists(path) -> bool:
    if not is_remote(path):
        return os.path.exists(path)
    beam = _beam(path)
    return beam.exists(str(path)) if beam else _gfile().exists(str(path))


def isdir(path) -> bool:
    """A local directory; remotely a directory, or (object stores) a prefix with something under it."""
    if not is_remote(path):
        return os.path.isdir(path)
    if _beam(path):
        return bool(glob(join(path, "*")))
    return _gfile().isdir(str(path))


def makedirs(path) -> None:
    if not is_remote(path):
        os.makedirs(path, exist_ok=True)
    elif _beam(path):
        if not exists(path):
            _beam(path).mkdirs(str(path))  # a no-op on object stores
    else:
        _gfile().makedirs(str(path))


def read_text(path) -> str:
    with open_binary(path) as fh:
        return fh.read().decode("utf-8")


def write_text(path, text: str) -> None:
    """Writes (replaces) a whole text file."""
    with create_binary(path) as fh:
        fh.write(text.encode("utf-8"))


def write_atomically(path, text: str) -> None:
    """Writes a whole text file under a temporary name beside it, then renames it into place: a reader never
    sees it half-written."""
    tmp = f"{path}.{uuid.uuid4().hex[:8]}.tmp"
    write_text(tmp, text)
    rename(tmp, path)


def open_binary(path):
    """A binary read handle (a context manager)."""
    if not is_remote(path):
        return open(path, "rb")
    beam = _beam(path)
    return beam.open(str(path), compression_type=_uncompressed()) if beam else _gfile().GFile(str(path), "rb")


def create_binary(path):
    """A binary write handle (a context manager) creating or replacing `path`; local parents are made."""
    if not is_remote(path):
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        return open(path, "wb")
    beam = _beam(path)
    if beam:
        return beam.create(str(path), compression_type=_uncompressed())
    return _gfile().GFile(str(path), "wb")


def rename(src, dest) -> None:
    """Moves the file `src` to `dest`, replacing it: atomic for local paths on one filesystem; on object
    stores a copy then a delete."""
    if not is_remote(src):
        os.replace(src, dest)
    elif _beam(src):
        _beam(src).rename([str(src)], [str(dest)])  # object stores: a copy (replacing dest), then a delete
    else:
        _gfile().rename(str(src), str(dest), overwrite=True)


def glob(pattern) -> list[str]:
    """The sorted paths matching `pattern` (`*` within a name, `**` across folders)."""
    if not is_remote(pattern):
        return sorted(globlib.glob(str(pattern), recursive=True))
    beam = _beam(pattern)
    if beam:
        return sorted(m.path for m in beam.match([str(pattern)])[0].metadata_list)
    return sorted(_gfile().glob(str(pattern)))


def create_exclusive(path, text: str) -> bool:
    """Creates the text file `path` unless it exists; False when it exists.

    Atomic for local paths (O_CREAT | O_EXCL): of several processes exactly one gets True. Remotely it is
    a check then a write, because neither Beam's FileSystems nor tf.io.gfile offers a conditional create:
    two processes within that window can both get True.
    """
    if is_remote(path):
        if exists(path):
            return False
        write_text(path, text)
        return True
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    return True


def remove(path) -> None:
    """Deletes a file or a directory tree; nothing when it does not exist."""
    if is_remote(path) and _beam(path):
        found = glob(join(path, "**")) + ([str(path)] if exists(path) else [])
        if found:
            _beam(path).delete(found)
    elif is_remote(path):
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
