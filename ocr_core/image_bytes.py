"""Reading one input image: every way a file can fail to be read is an InputError (a reject in the build, an
error row in predict), never a crash of the job. Local paths are read directly, other schemes through Beam's
FileSystems.
"""
from __future__ import annotations

import errno
import os
import stat

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from ocr_core.errors import InputError
from ocr_core.preprocess import PreprocessSpec

_FILE_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
               (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def os_error_reason(e: OSError, uri: str) -> InputError:
    """The InputError for an OSError raised while opening or reading `uri`: missing_file (ENOENT, also a
    not a symlink), not_an_image (EISDIR), else unreadable with the errno name (ELOOP, EACCES,
    ENAMETOOLONG, ENOTDIR, EIO, ...)."""
    if isinstance(e, FileNotFoundError):  # errno ENOENT
        if os.path.islink(uri):  # listed (it exists as a link), but what it points to does not
            return InputError("unreadable", f"ENOENT (a symbolic link to a file that does not exist): {uri}")
        return InputError("missing_file", f"no such file: {uri}")
    if isinstance(e, IsADirectoryError):  # errno EISDIR
        return InputError("not_an_image", f"is a directory: {uri}")
    if e.errno:
        name = errno.errorcode.get(e.errno, f"errno {e.errno}")
        return InputError("unreadable", f"{name} ({os.strerror(e.errno)}): {uri}")
    return InputError("unreadable", f"{type(e).__name__}: {uri}")


def read_image_bytes(uri: str, max_bytes: int = PreprocessSpec.max_bytes) -> bytes:
    """Up to max_bytes + 1 bytes of the file at `uri` (one more than allowed is enough to say "too large").

    Local paths are opened directly and non-blocking (a FIFO or device in a manifest cannot hang the job);
    only regular files are read. Every local OSError becomes an InputError (see `os_error_reason`).
    scheme:// URIs go through Beam's FileSystems: not-found and permission errors become InputErrors, anything
    else (network, quota) is left to raise so the runner retries instead of rejecting a good image.

    Raises:
        InputError: missing_file, not_an_image (a directory or other non-regular file) or unreadable.
    """
    if "://" in uri:
        return _read_remote(uri, max_bytes)
    try:
        fd = os.open(uri, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as e:
        raise os_error_reason(e, uri) from e
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = next((name for test, name in _FILE_KINDS if test(mode)), "a special file")
            raise InputError("not_an_image", f"is {kind}, not a file: {uri}")
        with os.fdopen(fd, "rb", closefd=False) as fh:
            return fh.read(max_bytes + 1)
    except OSError as e:
        raise os_error_reason(e, uri) from e
    finally:
        os.close(fd)


def _read_remote(uri: str, max_bytes: int) -> bytes:
    try:
        with FileSystems.open(uri, compression_type=CompressionTypes.UNCOMPRESSED) as fh:
            return fh.read(max_bytes + 1)
    except (FileNotFoundError, PermissionError, IsADirectoryError) as e:
        raise os_error_reason(e, uri) from e
    except Exception as e:
        kind = type(e).__name__  # object stores: google.api_core.exceptions.NotFound / Forbidden
        if kind == "NotFound":
            raise InputError("missing_file", f"no such object: {uri}") from e
        if kind == "Forbidden":
            raise InputError("unreadable", f"permission denied: {uri}") from e
        raise
