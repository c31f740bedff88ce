"""A Beam FileSystem for the scheme mem:// that keeps files in this process's memory: it stands in for gs://
in tests (offline), so code that goes through `FileSystems` is shown not to assume local paths. Importing this
module registers the scheme; only in-process runners (`--workers 1`) see the files."""
from __future__ import annotations

import io
import time

from apache_beam.io.filesystem import (
    CompressedFile,
    CompressionTypes,
    FileMetadata,
    FileSystem,
)

FILES: dict[str, tuple[bytes, float]] = {}  # path -> (content, mtime)


class _Writer(io.BytesIO):
    def __init__(self, path: str):
        super().__init__()
        self._path = path

    def close(self):
        if not self.closed:
            FILES[self._path] = (self.getvalue(), time.time())
        super().close()


class MemFileSystem(FileSystem):
    """Flat object store semantics like GCS: no directories, prefixes only."""

    @classmethod
    def scheme(cls):
        return "mem"

    def join(self, basepath, *paths):
        return "/".join([basepath.rstrip("/"), *(p.strip("/") for p in paths)])

    def split(self, path):
        head, _, tail = path.rpartition("/")
        return head, tail

    def mkdirs(self, path):
        pass

    def has_dirs(self):
        return False

    def _list(self, dir_or_prefix):
        for path, (data, mtime) in sorted(FILES.items()):
            if path.startswith(dir_or_prefix):
                yield FileMetadata(path, len(data), mtime)

    @staticmethod
    def _wrap(fh, path, compression_type):
        if compression_type == CompressionTypes.AUTO:
            compression_type = CompressionTypes.detect_compression_type(path)
        if compression_type == CompressionTypes.UNCOMPRESSED:
            return fh
        return CompressedFile(fh, compression_type)

    def create(self, path, mime_type="application/octet-stream", compression_type=CompressionTypes.AUTO):
        return self._wrap(_Writer(path), path, compression_type)

    def open(self, path, mime_type="application/octet-stream", compression_type=CompressionTypes.AUTO):
        if path not in FILES:
            raise FileNotFoundError(path)  # as LocalFileSystem does
        return self._wrap(io.BytesIO(FILES[path][0]), path, compression_type)

    def _prefixed(self, path):
        return [p for p in FILES if p == path or p.startswith(path.rstrip("/") + "/")]

    def copy(self, source_file_names, destination_file_names):
        for s, d in zip(source_file_names, destination_file_names):
            for p in self._prefixed(s):
                FILES[d + p[len(s):]] = FILES[p]

    def rename(self, source_file_names, destination_file_names):
        self.copy(source_file_names, destination_file_names)
        self.delete(source_file_names)

    def exists(self, path):
        return bool(self._prefixed(path))

    def size(self, path):
        return len(FILES[path][0])

    def last_updated(self, path):
        return FILES[path][1]

    def checksum(self, path):
        return str(hash(FILES[path][0]))

    def metadata(self, path):
        return FileMetadata(path, self.size(path), self.last_updated(path))

    def delete(self, paths):
        for path in paths:
            for p in self._prefixed(path):
                del FILES[p]
