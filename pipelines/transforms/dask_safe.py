"""Helpers that keep a pipeline correct on Beam 2.77's DaskRunner as on every other runner.

- `only(kind)`: the DaskRunner feeds every tagged output of a multi-output ParDo to every consumer, so each
  consumer keeps its own kind of element again (a no-op elsewhere).
- `shard_of`: the one stable hash (`ocr_core.split.stable_hash`) for every sharding decision, the same in
  every process (never `hash()`).
- `WithEveryShard`: one empty marker (None) per planned file, so a shard no element hashes to still gets its
  (empty) file, written once by the one DoFn call that owns the shard.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable

import apache_beam as beam

from ocr_core.split import stable_shard


def only(*kinds: type) -> beam.PTransform:
    """Keeps the elements of these types."""
    return beam.Filter(_isinstance, kinds)


def _isinstance(element, kinds) -> bool:
    return isinstance(element, kinds)


def shard_of(salt: str, key: str, num_shards: int) -> int:
    """Which of `num_shards` files the element with `key` goes to."""
    return stable_shard(salt, key, num_shards)


class WithEveryShard(beam.PTransform):
    """(shard key, element) -> (shard key, elements), every planned shard key present, empty ones too.

    Args:
        shards: the planned shard keys, or a function of the singleton PCollection `count` giving them.
        count: a singleton PCollection (e.g. a number of files counted in the pipeline) `shards` is applied
            to; None when `shards` is a fixed list.
    """

    def __init__(self, shards: Iterable | Callable, count: beam.PCollection | None = None):
        super().__init__()
        self.shards, self.count = shards, count

    def expand(self, keyed):
        if self.count is None:
            markers = keyed.pipeline | "ListShards" >> beam.Create([(k, None) for k in self.shards])
        else:
            markers = self.count | "ListShards" >> beam.FlatMap(
                lambda n, shards: [(k, None) for k in shards(n)], self.shards)
        return ((keyed, markers)
                | "WithEmptyShards" >> beam.Flatten()
                | "GroupByShard" >> beam.GroupByKey())
