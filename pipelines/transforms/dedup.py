"""Dedup of the build: one entry per image. Entries are grouped by image (only light entries are shuffled);
the same image twice with one label keeps the first, with different labels keeps none, and an image an
earlier version of the dataset holds (--append) is never written again."""
from __future__ import annotations

import json
from typing import NamedTuple

import apache_beam as beam

from ocr_core import fs
from ocr_core.errors import InputError
from ocr_core.inputs import Entry, Reject, reject_entry
from ocr_core.records import WordRecord, iter_tfrecords
from pipelines.transforms.dask_safe import only


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


class DedupByImage(beam.PTransform):
    """entries -> (at most one entry per image, `duplicate` and `conflicting_label` rejects). Only light
    entries are grouped. `known`: the (file, version, kind) to read an earlier version's records from."""

    def __init__(self, known: list[tuple[str, int, str]] = ()):
        super().__init__()
        self.known = list(known)

    def expand(self, entries):
        if self.known:
            known = (entries.pipeline
                     | "ListEarlierVersions" >> beam.Create(self.known)
                     | "ReadEarlierRecords" >> beam.ParDo(ReadKnown()))
            entries = (entries, known) | "WithEarlierRecords" >> beam.Flatten()
        out = (entries
               | "KeyByImage" >> beam.Map(lambda e: (e.source, e))
               | "GroupByImage" >> beam.GroupByKey()
               | "KeepOnePerImage" >> beam.ParDo(KeepOnePerImage()).with_outputs(
                   KeepOnePerImage.REJECTS, main="unique"))
        return (out.unique | "OnlyEntries" >> only(Entry),
                out[KeepOnePerImage.REJECTS] | "OnlyRejects" >> only(Reject))
