"""A manifest's bytes: its lines, whole or in byte ranges (so several workers can share a large one), where a
compressed manifest that ends early or is not what its name says fails the job (`JobFailed`, naming the file
and the lines read) instead of losing lines. What the lines mean is `ocr_core.inputs`."""
from __future__ import annotations

import bz2
import contextlib
import gzip
import sys
import zlib
from typing import NamedTuple

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from ocr_core.errors import JobFailed

RANGE_BYTES = 64 << 20  # a worker's share of a large manifest


class ByteRange(NamedTuple):
    """Part of a manifest: the lines whose first byte lies in [start, end)."""

    index: int
    start: int
    end: int


def byte_ranges(spec, parts: int, range_bytes: int = RANGE_BYTES) -> list[ByteRange]:
    """At least `parts` ranges of at most about `range_bytes` bytes each; one range for a compressed
    manifest (its bytes cannot be addressed without decompressing)."""
    if CompressionTypes.detect_compression_type(spec.uri) != CompressionTypes.UNCOMPRESSED:
        return [ByteRange(0, 0, sys.maxsize)]
    size = FileSystems.match([spec.uri])[0].metadata_list[0].size_in_bytes
    n = max(1, parts, -(-size // range_bytes))
    bounds = [size * i // n for i in range(n + 1)]
    return [ByteRange(i, bounds[i], bounds[i + 1]) for i in range(n)]


def range_lines(fh, start: int, end: int):
    """The raw lines of the seekable binary `fh` whose first byte lies in [start, end)."""
    if start > 0:
        fh.seek(start - 1)
        if fh.read(1) != b"\n":
            fh.readline()  # the rest of a line that began before `start` (its range reads it)
    while fh.tell() < end:
        raw = fh.readline()
        if not raw:
            return
        yield raw


_DECOMPRESSORS = {".gz": lambda raw: gzip.GzipFile(fileobj=raw, mode="rb"), ".bz2": bz2.BZ2File}


@contextlib.contextmanager
def open_manifest(uri: str):
    """A manifest's (decompressed) bytes as a binary file. gzip and bzip2 are decompressed by Python's own
    readers, which raise at a truncated or non-compressed file, where Beam's return what they got as if the
    file ended there; other compressions go through Beam's."""
    wrap = next((cls for ext, cls in _DECOMPRESSORS.items() if uri.lower().endswith(ext)), None)
    if wrap is None:
        with FileSystems.open(uri) as fh:
            yield fh
        return
    with FileSystems.open(uri, compression_type=CompressionTypes.UNCOMPRESSED) as raw, wrap(raw) as fh:
        yield fh


def manifest_lines(spec, start: int = 0, end: int = sys.maxsize):
    """The raw lines of a manifest whose first byte lies in [start, end).

    Raises:
        JobFailed: the manifest cannot be read to its end (a compressed file that is truncated or is not
            compressed at all): naming the file and how many lines were read, since a job that went on
            would publish a dataset or table silently missing the rest.
    """
    n = 0
    try:
        with open_manifest(spec.uri) as fh:
            for raw in range_lines(fh, start, end):
                n += 1
                yield raw
    except EOFError:
        raise JobFailed(f"{spec.given}: the compressed file ends early (truncated) after {n:,} lines; "
                        "nothing was published: restore the whole file") from None
    except (zlib.error, OSError) as e:  # gzip.BadGzipFile is an OSError
        raise JobFailed(f"{spec.given}: cannot be read after {n:,} lines ({e}); nothing was published: "
                        "is it really compressed as its name says?") from None
