"""Split and shard of the build: entry -> ((split, shard), entry) by the one stable hash of its
location-independent key (`ocr_core.split.SplitPlan`), then grouped per shard with every planned shard
present, so a split always has all its N files."""
from __future__ import annotations

import apache_beam as beam

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


class GroupByShard(beam.PTransform):
    """((split, shard), entry) -> ((split, shard), entries), empty shards too (a GroupByKey of the entries:
    the Dask path; every other runner spills, see `build_runs`)."""

    def __init__(self, plan: SplitPlan):
        super().__init__()
        self.plan = plan

    def expand(self, keyed):
        return keyed | "EveryShard" >> WithEveryShard(self.plan.every_shard())
