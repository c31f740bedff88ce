"""Dedup of the build: one entry per image. Entries are grouped by image (only light entries are shuffled);
the same image twice with one label keeps the first, with different labels keeps none, and an image an
earlier version of the dataset holds (--append) is never written again."""
from __future__ import annotations

import json
from collections import defaultdict
from typing import NamedTuple

import apache_beam as beam
from apache_beam.transforms.window import GlobalWindows

from ocr_core import fs
from ocr_core.errors import InputError
from ocr_core.inputs import Entry, Reject, reject_entry
from ocr_core.records import WordRecord, iter_tfrecords
from pipelines.sinks import read_runs, write_run
from pipelines.transforms.dask_safe import only, shard_of

RUN_ENTRIES = 20000  # entries a worker holds before it spills them


class Known(NamedTuple):
    """A record of an earlier version of the dataset (appends): its image, record id and version."""

    source: str
    id: str
    version: int


class IndexEntry(NamedTuple):
    """One line of a version's index-*.jsonl: a written record's id and image."""

    id: str
    source: str

    def to_json(self) -> str:
        return json.dumps([self.id, self.source], ensure_ascii=False)


class ReadKnown(beam.DoFn):
    """(file, version, kind) -> Known per record of an earlier version: from its index file, or (a version
    built before indexes existed) from the shard's records themselves."""

    def process(self, task):
        path, version, kind = task
        with fs.open_binary(path) as fh:
            if kind == "index":
                for line in fh.read().decode("utf-8").splitlines():
                    id_, source = json.loads(line)
                    yield Known(source, id_, version)
            else:
                for data in iter_tfrecords(fh, path):
                    r = WordRecord.decode(data)
                    yield Known(r.source, r.id, version)


class KeepOnePerImage(beam.DoFn):
    """(image source, its valid entries and Known records) -> at most one entry; the others are dead letters.

    The same image with the same label more than once: the first in input order is kept, the others are
    `duplicate`. The same image with different labels: which one is right cannot be known, and keeping the
    first would make the dataset depend on input order, so *every* entry of that image is a
    `conflicting_label` reject and the image is not written. Labels are compared as stored (after --oov), so
    `Hello` and `hello` with --oov lowercase are duplicates. One entry per image means one split per image.
    An image an earlier version holds (appends) is never written again: its entries are `duplicate` when the
    label is the same, else `conflicting_label` (the earlier record stays; relabelling needs a rebuild).
    """

    REJECTS = "rejects"
    SHOWN = 3  # origins named in a conflicting_label detail

    def process(self, keyed):
        _, items = keyed
        entries = sorted((e for e in items if isinstance(e, Entry)), key=lambda e: e.order)
        known = min((k for k in items if isinstance(k, Known)), default=None, key=lambda k: k.version)
        if known is not None:
            yield from self.already_written(entries, known)
            return
        if len({e.label for e in entries}) > 1:
            for e in entries:
                others = [f"{o.origin} ({o.label!r})" for o in entries if o.label != e.label]
                more = f" and {len(others) - self.SHOWN} more" if len(others) > self.SHOWN else ""
                err = InputError("conflicting_label", "the same image is labelled differently at "
                                 f"{', '.join(others[:self.SHOWN])}{more}; none of its labels kept")
                yield beam.pvalue.TaggedOutput(self.REJECTS, reject_entry(e, err))
            return
        kept, *others = entries
        yield kept
        for e in others:
            yield beam.pvalue.TaggedOutput(
                self.REJECTS,
                reject_entry(e, InputError("duplicate", f"same image and label as {kept.origin} (kept)")))

    def already_written(self, entries, known: Known):
        for e in entries:
            if e.id == known.id:
                err = InputError("duplicate", f"same image and label as a record of version {known.version}")
            else:
                err = InputError("conflicting_label", f"the image is in version {known.version} with another "
                                 "label, which stays; rebuild with --overwrite to change a label")
            yield beam.pvalue.TaggedOutput(self.REJECTS, reject_entry(e, err))


class SpillByImage(beam.DoFn):
    """Entries (and Known records) -> (bucket, run path): every `run_entries` elements of a bundle (and its
    rest at the end of the bundle) pickled into one file per bucket of the image path's stable hash, so one
    image's entries all land in one bucket. Only these pairs cross the shuffle (issue 23: on the DirectRunner
    the launcher holds whatever does); a retried bundle's runs are never read. Needs `finish_bundle` output,
    which Beam 2.77's DaskRunner drops."""

    def __init__(self, directory: str, buckets: int, run_entries: int = RUN_ENTRIES):
        self.directory, self.buckets, self.run_entries = directory, buckets, run_entries

    def start_bundle(self):
        self._items, self._count = defaultdict(list), 0

    def process(self, element):
        self._items[shard_of("image", element.source, self.buckets)].append(element)
        self._count += 1
        if self._count >= self.run_entries:
            yield from self._spill()

    def finish_bundle(self):
        for pair in self._spill():
            yield GlobalWindows.windowed_value(pair)

    def _spill(self):
        for bucket, items in sorted(self._items.items()):
            yield bucket, write_run(self.directory, f"image-{bucket:03d}", items)
        self._items, self._count = defaultdict(list), 0


class KeepOnePerImageFromRuns(KeepOnePerImage):
    """(bucket, its run paths) -> KeepOnePerImage applied to each image of the bucket, read from the runs."""

    def process(self, keyed):
        _, paths = keyed
        by_image = defaultdict(list)
        for item in read_runs(paths):
            by_image[item.source].append(item)
        for source in sorted(by_image):
            items = by_image.pop(source)
            if len(items) == 1 and isinstance(items[0], Entry):
                yield items[0]  # what KeepOnePerImage keeps of one entry, without its checks
            else:
                yield from super().process((source, items))


class DedupByImage(beam.PTransform):
    """entries -> (at most one entry per image, `duplicate` and `conflicting_label` rejects), by a GroupByKey
    of the light entries by image (the Dask path; every other runner spills them, see `build_runs`).
    `known`: the (file, version, kind) to read an earlier version's records from."""

    def __init__(self, known: list[tuple[str, int, str]] = ()):
        super().__init__()
        self.known = list(known)

    def expand(self, entries):
        sources = [entries]
        if self.known:
            sources.append(entries.pipeline
                           | "ListEarlierVersions" >> beam.Create(self.known)
                           | "ReadEarlierRecords" >> beam.ParDo(ReadKnown()))
        grouped = (sources | "WithEarlierRecords" >> beam.Flatten()
                   | "KeyByImage" >> beam.Map(lambda e: (e.source, e))
                   | "GroupByImage" >> beam.GroupByKey())
        keep = KeepOnePerImage()
        out = grouped | "KeepOnePerImage" >> beam.ParDo(keep).with_outputs(
            KeepOnePerImage.REJECTS, main="unique")
        return (out.unique | "OnlyEntries" >> only(Entry),
                out[KeepOnePerImage.REJECTS] | "OnlyRejects" >> only(Reject))
