"""Beam transforms that expand an --input inside the pipeline, so neither the launcher nor the job graph holds
anything proportional to the number of inputs: a glob or folder becomes its files through `fileio.MatchAll`, a
manifest its lines through Beam's splittable text reading (byte ranges of 64 MB read in parallel).

The lines are parsed with `ocr_core.inputs.line_at`; a malformed line keeps the origin `MANIFEST:line` of a
sequential reader: the splittable reader knows only each line's byte offset, so the few malformed lines are
grouped per file and their line numbers counted in one pass over that file (no pass at all when every line
is well-formed).

Beam's DaskRunner (2.77) takes its parallelism only from `Create` partitions (Reshuffle is a no-op and a
GroupByKey keeps the partition count), so with `parts > 1` the expansion starts from `parts` elements instead:
each part lists the glob and keeps its share of the files, or reads its share of the manifest's byte range.
"""
from __future__ import annotations

import math
import zlib
from functools import partial

import apache_beam as beam
from apache_beam import coders
from apache_beam.io import fileio, textio
from apache_beam.io.filebasedsource import (
    ReadAllFiles,
    _determine_splittability_from_compression_type,
    _ReadRange,
)
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.io.range_trackers import OffsetRangeTracker
from apache_beam.io.restriction_trackers import OffsetRange

from ocr_core.inputs import IMAGE_EXTENSIONS, Entry, InputSpec, Reject, line_at, line_numbers

DESIRED_BUNDLE_BYTES = 64 << 20  # as Beam's ReadAllFromText


class _LastClaim:
    """A RangeTracker that remembers the position last claimed. Beam's text source claims each line's start
    offset right before it reads the line, so that position is the offset of the line it yields next."""

    def __init__(self, tracker):
        self._tracker, self.position = tracker, None

    def try_claim(self, position):
        self.position = position
        return self._tracker.try_claim(position)

    def __getattr__(self, name):
        return getattr(self._tracker, name)


class _LinesWithOffsets(textio._TextSource):
    """Beam's splittable text source, yielding (byte offset, raw line without its line break)."""

    def read_records(self, file_name, range_tracker):
        tracker = _LastClaim(range_tracker)
        for line in super().read_records(file_name, tracker):
            yield tracker.position, line


def _lines_source(path: str) -> _LinesWithOffsets:
    return _LinesWithOffsets(path, min_bundle_size=0, compression_type=CompressionTypes.AUTO,
                             strip_trailing_newlines=True, coder=coders.BytesCoder(), validate=False)


def _part_ranges(uri: str, parts: int) -> list:
    """(file metadata, byte range) of each of `parts` shares of a file; one range if it is compressed."""
    meta = FileSystems.match([uri])[0].metadata_list[0]
    if not _determine_splittability_from_compression_type(uri, CompressionTypes.AUTO):
        return [(meta, OffsetRange(0, OffsetRangeTracker.OFFSET_INFINITY))]
    whole = OffsetRange(0, max(1, meta.size_in_bytes))
    return [(meta, r) for r in whole.split(max(1, math.ceil(meta.size_in_bytes / parts)))]


class ReadManifestLines(beam.PTransform):
    """A manifest -> (byte offset, raw line) of each line, read in byte ranges by several workers."""

    def __init__(self, uri: str, parts: int = 1, bundle_bytes: int = DESIRED_BUNDLE_BYTES):
        super().__init__()
        self.uri, self.parts, self.bundle_bytes = uri, parts, bundle_bytes

    def expand(self, pbegin):
        if self.parts == 1:
            return (pbegin | "Manifest" >> beam.Create([self.uri])
                    | "ReadLines" >> ReadAllFiles(True, CompressionTypes.AUTO, self.bundle_bytes, 0,
                                                  _lines_source))
        return (pbegin | "ByteRanges" >> beam.Create(_part_ranges(self.uri, self.parts))
                | "ReadLines" >> beam.ParDo(_ReadRange(_lines_source)))


def _parse_line(offset_line: tuple[int, bytes], spec: InputSpec):
    entry = line_at(spec, offset_line[1], offset_line[0])
    if entry is not None:
        yield entry


class ReadPathList(beam.PTransform):
    """A text file of paths, one a line (UTF-8) -> the paths, read in byte ranges like a manifest."""

    def __init__(self, uri: str, parts: int = 1):
        super().__init__()
        self.uri, self.parts = uri, parts

    def expand(self, pbegin):
        return (pbegin | "ReadLines" >> ReadManifestLines(self.uri, self.parts)
                | "Paths" >> beam.Map(lambda offset_line: offset_line[1].decode("utf-8")))


def _number_lines(keyed, spec: InputSpec):
    """The rejects of one manifest with their origins turned from MANIFEST@offset into MANIFEST:line."""
    _, rejects = keyed
    rejects = list(rejects)
    numbers = line_numbers(spec.uri, [r.order[1] for r in rejects])
    for r in rejects:
        line = numbers[r.order[1]]
        yield r._replace(origin=f"{spec.given}:{line}", order=(spec.index, line))


class ReadManifest(beam.PTransform):
    """A manifest -> an Entry per well-formed line and a Reject (malformed_line, origin MANIFEST:line) per
    malformed one; blank, comment and header lines give nothing."""

    def __init__(self, spec: InputSpec, parts: int = 1, bundle_bytes: int = DESIRED_BUNDLE_BYTES):
        super().__init__()
        self.spec, self.parts, self.bundle_bytes = spec, parts, bundle_bytes

    def expand(self, pbegin):
        spec = self.spec
        parsed = (pbegin
                  | "ReadLines" >> ReadManifestLines(spec.uri, self.parts, self.bundle_bytes)
                  | "ParseLines" >> beam.FlatMap(_parse_line, spec))
        # Filters rather than tagged outputs: Beam's DaskRunner feeds every tagged output to every consumer.
        entries = parsed | "WellFormed" >> beam.Filter(lambda e: isinstance(e, Entry))
        rejects = (parsed
                   | "Malformed" >> beam.Filter(lambda e: isinstance(e, Reject))
                   | "ByManifest" >> beam.Map(lambda r: (spec.uri, r))
                   | "GroupByManifest" >> beam.GroupByKey()
                   | "NumberLines" >> beam.FlatMap(_number_lines, spec))
        return (entries, rejects) | "AllLines" >> beam.Flatten()


def stable_part(path: str, parts: int) -> int:
    """Which of `parts` shares a file belongs to (the same in every process, unlike hash())."""
    return zlib.crc32(path.encode()) % parts


def _match_part(part: int, pattern: str, parts: int):
    for meta in FileSystems.match([pattern])[0].metadata_list:
        if stable_part(meta.path, parts) == part:
            yield meta


def is_image_name(path: str) -> bool:
    return path.lower().endswith(IMAGE_EXTENSIONS)


class MatchImageFiles(beam.PTransform):
    """A glob or folder -> the paths of its files, spread over the workers. A glob keeps every file it
    matches (a non-image becomes an error row later); a folder gives every file with an image extension in it
    and all its subfolders."""

    def __init__(self, spec: InputSpec, parts: int = 1):
        super().__init__()
        self.spec, self.parts = spec, parts

    def expand(self, pbegin):
        folder = self.spec.kind == "dir"
        pattern = FileSystems.join(self.spec.uri, "**") if folder else self.spec.uri
        if self.parts == 1:
            files = (pbegin | "Pattern" >> beam.Create([pattern])
                     | "MatchAll" >> fileio.MatchAll(fileio.EmptyMatchTreatment.ALLOW))
        else:
            files = (pbegin | "Parts" >> beam.Create(list(range(self.parts)))
                     | "MatchPart" >> beam.FlatMap(partial(_match_part, pattern=pattern, parts=self.parts)))
        paths = files | "Paths" >> beam.Map(lambda m: m.path)
        if folder:
            paths = paths | "Images" >> beam.Filter(is_image_name)
        # One element matched them all: spread them before the heavy steps (a no-op on Dask, see above).
        return paths | "Spread" >> beam.Reshuffle()

