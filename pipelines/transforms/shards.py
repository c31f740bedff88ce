"""Split and shard of the build: entry -> ((split, shard), entry) by the one stable hash of its
location-independent key (`ocr_core.split.SplitPlan`), then grouped per shard with every planned shard
present, so a split always has all its N files."""
from __future__ import annotations

import pickle
import uuid

import apache_beam as beam
from apache_beam.transforms.window import GlobalWindows

from ocr_core import fs
from ocr_core.inputs import Entry
from ocr_core.records import record_id
from ocr_core.split import SplitPlan
from pipelines.transforms.dask_safe import WithEveryShard


def assign(entry: Entry, plan: SplitPlan) -> tuple[tuple[str, int], Entry]:
    """((split, shard), entry). Hashed on the location-independent key, so building from a copy of the data
    elsewhere (another machine, gs://) puts every image in the same split and shard."""
    key = record_id(entry.key or entry.source, entry.label)
    split = plan.split_of(key)
    return (split, plan.shard_of(key, split)), entry


class AssignSplitAndShard(beam.PTransform):
    """entry -> ((split, shard), entry)."""

    def __init__(self, plan: SplitPlan):
        super().__init__()
        self.plan = plan

    def expand(self, entries):
        return entries | "HashKey" >> beam.Map(assign, self.plan)


RUN_ENTRIES = 20000  # entries a worker holds before it spills them (~10 MB)
RUNS_DIR = "_runs"  # in the build's staging folder; never published (only listed files are)


class SpillEntries(beam.DoFn):
    """((split, shard), entry) -> paths of run files in `directory`: every `run_entries` entries of a bundle
    (and its rest at the end of the bundle), pickled as one list sorted by (shard key, id).

    So the entries never cross a shuffle, which on the DirectRunner the launcher (also the runner) would
    hold (issue 23); only the run paths do. A retried bundle writes new runs under new names; only the
    committed attempt's paths are read. Needs `finish_bundle` output (Beam 2.77's DaskRunner drops it)."""

    def __init__(self, directory: str, run_entries: int = RUN_ENTRIES):
        self.directory, self.run_entries = directory, run_entries

    def start_bundle(self):
        self._items = []

    def process(self, keyed):
        self._items.append(keyed)
        if len(self._items) >= self.run_entries:
            yield self._spill()

    def finish_bundle(self):
        if self._items:
            yield GlobalWindows.windowed_value(self._spill())

    def _spill(self) -> str:
        items = sorted(self._items, key=lambda kv: (kv[0], kv[1].id))
        self._items = []
        path = fs.join(self.directory, RUNS_DIR, f"entries-{uuid.uuid4().hex}.pickle")
        with fs.create_binary(path) as fh:  # its path is emitted only once it is complete
            fh.write(pickle.dumps(items, protocol=pickle.HIGHEST_PROTOCOL))
        return path


class ShardFromRuns(beam.DoFn):
    """A planned (split, shard), every run path -> ((split, shard), the shard's entries from the runs)."""

    def process(self, shard_key, runs):
        entries = []
        for path in sorted(runs):
            with fs.open_binary(path) as fh:
                entries.extend(e for key, e in pickle.loads(fh.read()) if key == shard_key)
        yield shard_key, entries


class GroupByShard(beam.PTransform):
    """((split, shard), entry) -> ((split, shard), entries), empty shards too.

    Args:
        plan: the split plan (its every_shard).
        spill_dir: where entries are spilled as runs (`SpillEntries`) so that only run paths cross a
            shuffle, and each shard is read back from the runs in the DoFn that writes it; None: a
            GroupByKey of the entries (Dask, which drops `finish_bundle` output).
    """

    def __init__(self, plan: SplitPlan, spill_dir: str | None = None, run_entries: int = RUN_ENTRIES):
        super().__init__()
        self.plan, self.spill_dir, self.run_entries = plan, spill_dir, run_entries

    def expand(self, keyed):
        if self.spill_dir is None:
            return keyed | "EveryShard" >> WithEveryShard(self.plan.every_shard())
        runs = keyed | "SpillEntries" >> beam.ParDo(SpillEntries(self.spill_dir, self.run_entries))
        return (keyed.pipeline
                | "EveryShard" >> beam.Create(list(self.plan.every_shard()), reshuffle=True)
                | "ShardFromRuns" >> beam.ParDo(ShardFromRuns(), beam.pvalue.AsList(runs)))
