"""Which split and shard a record goes to, and the one stable hash every sharding decision uses.

The split and shard of a record hash its location-independent key (the image path relative to the inputs'
common directory, plus the label), so the same data copied elsewhere splits identically. Pure; no Beam.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property

from ocr_core.errors import UsageError

SPLITS = ("train", "val", "test")


class SplitError(UsageError):
    """Split options that cannot be met (fractions out of range, no shard)."""


def stable_hash(salt: str, key: str) -> int:
    """A 64-bit hash of `key` that is the same in every process and on every machine (unlike `hash()`): the
    one hash behind splits, shard files, reject and index files and predict's part files."""
    return int.from_bytes(hashlib.sha256(f"{salt}\n{key}".encode()).digest()[:8], "big")


def stable_shard(salt: str, key: str, num_shards: int) -> int:
    """Which of `num_shards` shards `key` belongs to."""
    return stable_hash(salt, key) % num_shards


@dataclass(frozen=True)
class SplitPlan:
    """Deterministic split and shard assignment by hashing a record's key. Owns the split defaults."""

    val_fraction: float = 0.1
    test_fraction: float = 0.0
    train_shards: int = 8
    only: str | None = None  # every record into this split (a fixed dev or test list), --shards shards

    def __post_init__(self):
        if self.train_shards < 1:
            raise SplitError("--shards must be >= 1")
        if self.only is not None:
            if self.only not in SPLITS:
                raise SplitError(f"--split must be one of {', '.join(SPLITS)}")
            return
        if not (0 <= self.val_fraction < 1 and 0 <= self.test_fraction < 1):
            raise SplitError("--val-fraction and --test-fraction must be in [0, 1)")
        if self.val_fraction + self.test_fraction >= 1:
            raise SplitError("--val-fraction + --test-fraction must be < 1 (something must be left to train)")

    @property
    def fractions(self) -> dict[str, float]:
        if self.only is not None:
            return {split: float(split == self.only) for split in SPLITS}
        train = 1.0 - self.val_fraction - self.test_fraction
        return {"train": train, "val": self.val_fraction, "test": self.test_fraction}

    @cached_property
    def num_shards(self) -> dict[str, int]:
        """Shards per split that gets data: train has --shards, val/test a proportional share (>= 1)."""
        if self.only is not None:
            return {self.only: self.train_shards}
        train = self.fractions["train"]
        out = {"train": self.train_shards}
        for split in ("val", "test"):
            frac = self.fractions[split]
            if frac > 0:
                out[split] = max(1, round(self.train_shards * frac / train))
        return out

    def split_of(self, key: str) -> str:
        if self.only is not None:
            return self.only
        u = stable_hash("split", key) / 2.0**64
        if u < self.test_fraction:
            return "test"
        if u < self.test_fraction + self.val_fraction:
            return "val"
        return "train"

    def shard_of(self, key: str, split: str) -> int:
        return stable_shard("shard", key, self.num_shards[split])

    def every_shard(self) -> list[tuple[str, int]]:
        """(split, shard) of every planned shard file, empty ones too."""
        return [(split, i) for split, n in self.num_shards.items() for i in range(n)]


def shard_name(split: str, shard: int, num_shards: int) -> str:
    return f"{split}-{shard:05d}-of-{num_shards:05d}.tfrecord"


def reject_file_name(shard: int, num_shards: int) -> str:
    return f"rejects-{shard:05d}-of-{num_shards:05d}.jsonl"


def index_file_name(shard: int, num_shards: int) -> str:
    return f"index-{shard:05d}-of-{num_shards:05d}.jsonl"
