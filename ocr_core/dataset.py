"""The dataset manifest (`DIR/manifest.json`): its keys, reading and writing it, and what every reader asks of
it (shards per split, split resolution, counts, versions). The one module that parses or writes the file.

A dataset is one or more *versions* (the first build, then one per `--append`); the manifest's top-level
counts, shards and rejects are the totals across versions, so a reader that only wants "the train shards"
never needs to know about versions. Paths in the manifest are relative to the dataset directory (version 1 at
its top, version n in `v000n/`). All file access goes through `ocr_core.fs` (local, gs://, ...).
"""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from itertools import islice

from ocr_core import fs, publish, records
from ocr_core.charset import Charset
from ocr_core.errors import UsageError
from ocr_core.split import SPLITS

MANIFEST = "manifest.json"
AUTO_ORDER = ("test", "val")  # --split auto: the first of these with records, else train

# The one list of manifest keys: what each top-level key holds. A version (an entry of `versions`) has the
# keys marked [v] for its own data; at the top level they are the totals across versions.
KEYS = {
    "schema_version": "record schema version (ocr_core.records.SCHEMA_VERSION)",
    "record_schema": "feature key -> description (ocr_core.records.SCHEMA)",
    "charset": "the alphabet; label id i is charset[i - 1]",
    "blank_id": "the CTC blank id (0)",
    "image_shape": "[height, width, 1] of the stored images",
    "preprocessing": "the preprocessing contract (ocr_core.preprocess.PreprocessSpec.to_dict)",
    "max_time_steps": "CTC time steps of the CRNN for image_shape",
    "split_root": "the directory split keys are relative to (image paths relative to it are hashed)",
    "build_id": "id of the build that last published this manifest (the generation a build checks)",
    "inputs": "[v] [{input, uri, kind, entries}] per --input",
    "counts": "[v] split -> records",
    "totals": "[v] inputs, written, rejected, inputs_equal_written_plus_rejected",
    "rejects": "[v] reason -> count",
    "reject_files": "[v] rejects-*.jsonl paths",
    "index_files": "[v] index-*.jsonl paths: `[record id, source]` of every record, sorted by id",
    "splits": "[v] split -> {fraction, num_shards}",
    "label_length_histogram": "[v] split -> {label length: count}",
    "shards": "[v] [{split, path, count, bytes}]",
    "ocr_version": "[v] the ocr version that wrote it",
    "options": "[v] the build options",
    "created": "[v] UTC time of the publish",
    "versions": "[{version, build_id, directory, ...[v] keys}] oldest first",
}
VERSION_KEYS = tuple(k for k, v in KEYS.items() if v.startswith("[v]"))


class DatasetError(UsageError):
    """A dataset directory that cannot be read or used; the message names it and the fix."""


def version_dir(number: int) -> str:
    """Where version `number`'s files live, relative to the dataset directory ('' for the first)."""
    return "" if number == 1 else f"v{number:04d}"


@dataclass(frozen=True)
class Dataset:
    """A built dataset: its directory and its manifest."""

    root: str
    manifest: dict
    generation: str | None = None  # of the manifest's bytes as loaded: what a publish into `root` checks

    @classmethod
    def load(cls, root) -> Dataset:
        """Reads `root`/manifest.json (`root` local or any scheme `ocr_core.fs` knows).

        Raises:
            DatasetError: no such directory, no manifest (not a dataset, or its build did not finish), or a
                schema version this code does not read.
        """
        root = str(root).rstrip("/") if fs.is_remote(root) else str(root)
        path = fs.join(root, MANIFEST)
        if not fs.exists(path):
            if not fs.is_remote(root) and not fs.isdir(root):
                raise DatasetError(f"{root}: no such dataset directory; build one with `ocr build-dataset`")
            raise DatasetError(f"{root}: no {MANIFEST} — not a complete dataset (the build did not finish, "
                               "or this is not a dataset directory); run `ocr build-dataset`")
        with fs.open_binary(path) as fh:
            data = fh.read()
        try:
            manifest = json.loads(data.decode("utf-8"))
        except ValueError as e:
            raise DatasetError(f"{path}: not valid JSON ({e}); rebuild the dataset") from None
        if manifest.get("schema_version") != records.SCHEMA_VERSION:
            raise DatasetError(f"{path}: schema_version {manifest.get('schema_version')} is not supported "
                               f"(this ocr reads {records.SCHEMA_VERSION}); rebuild the dataset")
        return cls(root, manifest, publish.generation_of(data))

    @staticmethod
    def exists(root) -> bool:
        """True when `root` holds a manifest (a complete dataset, perhaps of another schema)."""
        return fs.exists(fs.join(str(root), MANIFEST))

    def path(self, relative: str) -> str:
        """A manifest path made absolute (paths already absolute or with a scheme are kept)."""
        if fs.is_remote(relative) or relative.startswith("/"):
            return relative
        return fs.join(self.root, relative)

    @property
    def charset(self) -> str:
        return self.manifest["charset"]

    @property
    def image_shape(self) -> tuple[int, int]:
        h, w = self.manifest["image_shape"][:2]
        return int(h), int(w)

    @property
    def build_id(self) -> str | None:
        """The generation: the id of the build that published this manifest (None before versions)."""
        return self.manifest.get("build_id")

    @property
    def versions(self) -> list[dict]:
        """The versions, oldest first; a manifest written before versions existed is one version."""
        if "versions" in self.manifest:
            return self.manifest["versions"]
        first = {k: self.manifest[k] for k in VERSION_KEYS if k in self.manifest}
        return [{"version": 1, "build_id": None, "directory": "", **first}]

    @property
    def counts(self) -> dict[str, int]:
        return {s: int(n) for s, n in self.manifest.get("counts", {}).items()}

    def count(self, split: str) -> int:
        return self.counts.get(split, 0)

    @property
    def present_splits(self) -> list[str]:
        """Splits holding records, in the order test, val, train."""
        return [s for s in (*AUTO_ORDER, "train") if self.count(s)]

    def resolve_split(self, split: str) -> str:
        """`split` as readers use it: "auto" -> test if it has records, else val, else train; "all" stays.

        Raises:
            DatasetError: a split the dataset was not built with ("no split 'x' (has ...)").
        """
        if split == "auto":
            return next((s for s in AUTO_ORDER if self.count(s)), "train")
        if split != "all" and split not in self.counts:
            raise DatasetError(f"no split {split!r} (has {', '.join(self.present_splits) or 'no records'})")
        return split

    def shard_files(self, split: str) -> list[tuple[str, int]]:
        """(absolute shard path, record count) of a split ("all": every split, "auto" as resolve_split;
        a split the dataset lacks has none), every version's, skipping shards without records."""
        split = self.resolve_split(split) if split == "auto" else split
        return [(self.path(s["path"]), int(s["count"])) for s in self.manifest.get("shards", [])
                if split in ("all", s["split"]) and s.get("count", 1) > 0]

    def shards(self, split: str) -> list[str]:
        """Absolute shard paths of a split (only those holding records)."""
        return [path for path, _ in self.shard_files(split)]

    def verify_sample(self, per_split: int = 32) -> None:
        """Reads the first records of each split's first shard with their CRCs and checks that their label
        ids encode their text in the manifest charset; DatasetError otherwise (e.g. an edited charset)."""
        charset = Charset(self.charset)
        for split in SPLITS:
            for shard in self.shards(split)[:1]:
                try:
                    with fs.open_binary(shard) as fh:
                        for data in islice(records.iter_tfrecords(fh, shard), per_split):
                            records.check_label(records.WordRecord.decode(data), charset, shard)
                except records.RecordError as e:
                    raise DatasetError(str(e)) from None


    def verify_records(self, split: str = "all") -> tuple[int, int]:
        """Reads every record of a split ("all": every split, every version): both TFRecord CRCs, the
        Example decode, label ids against the manifest charset, and each shard's record count against the
        manifest (a shard cut at a record boundary passes every CRC).

        Returns:
            (records checked, shards checked).

        Raises:
            DatasetError: naming the shard and the byte offset or record of the first problem.
        """
        charset = Charset(self.charset)
        n_records = n_shards = 0
        for shard, expected in self.shard_files(split):
            n = 0
            try:
                with fs.open_binary(shard) as fh:
                    for data in records.iter_tfrecords(fh, shard):
                        try:
                            record = records.WordRecord.decode(data)
                        except Exception as e:  # CRC-valid bytes that are not our Example: a bad writer
                            raise records.RecordError(f"{shard}: record {n + 1} is not an ocr Example "
                                                      f"({type(e).__name__}); rebuild the dataset") from None
                        records.check_label(record, charset, shard)
                        n += 1
            except records.RecordError as e:
                raise DatasetError(str(e)) from None
            if n != expected:
                raise DatasetError(f"{shard}: {n} records, the manifest says {expected} — the shard is "
                                   "truncated or was replaced; rebuild the dataset")
            n_records += n
            n_shards += 1
        return n_records, n_shards


# --- writing ------------------------------------------------------------------------------------------


def make_version(number: int, build_id: str, *, inputs: list[dict], shards: list[dict],
                 reject_files: list[dict], index_files: list[str], splits: dict[str, dict], options: dict,
                 created: str, ocr_version: str) -> dict:
    """One version's manifest entry from what its build wrote.

    Args:
        number: 1 for the first build, then one more per append.
        inputs: {input, uri, kind, entries} per --input.
        shards: {split, path, count, bytes, label_lengths: {length: n}} per shard file, in manifest order.
        reject_files: {path, count, by_reason: {reason: n}} per rejects file.
        index_files: the index-*.jsonl paths.
        splits: split -> {fraction, num_shards} of the plan.
    Paths are relative to the dataset directory.
    """
    counts = {split: sum(s["count"] for s in shards if s["split"] == split) for split in splits}
    by_reason = Counter()
    for r in reject_files:
        by_reason.update(r["by_reason"])
    lengths = {split: Counter() for split in splits}
    for s in shards:
        lengths[s["split"]].update({int(k): v for k, v in s["label_lengths"].items()})
    n_inputs = sum(i["entries"] for i in inputs)
    written, rejected = sum(counts.values()), sum(by_reason.values())
    return {
        "version": number,
        "build_id": build_id,
        "directory": version_dir(number),
        "inputs": inputs,
        "counts": counts,
        "totals": {"inputs": n_inputs, "written": written, "rejected": rejected,
                   "inputs_equal_written_plus_rejected": n_inputs == written + rejected},
        "rejects": dict(sorted(by_reason.items())),
        "reject_files": [r["path"] for r in reject_files],
        "index_files": list(index_files),
        "splits": splits,
        "label_length_histogram": {split: {str(k): v for k, v in sorted(c.items())}
                                   for split, c in lengths.items()},
        "shards": [{"split": s["split"], "path": s["path"], "count": s["count"], "bytes": s["bytes"]}
                   for s in shards],
        "ocr_version": ocr_version,
        "options": options,
        "created": created,
    }


def make_manifest(contract: dict, versions: list[dict], split_root: str) -> dict:
    """The manifest: the contract (schema, charset, image shape, preprocessing), the totals across
    `versions` under the keys a single build has always used, and the versions themselves.

    Args:
        contract: schema_version, record_schema, charset, blank_id, image_shape, preprocessing,
            max_time_steps.
        versions: make_version entries, oldest first.
        split_root: the directory split keys are relative to.
    """
    last = versions[-1]
    splits = {}
    for v in versions:
        for split, s in v["splits"].items():
            entry = splits.setdefault(split, {"fraction": s["fraction"], "num_shards": 0})
            entry["num_shards"] += s["num_shards"]
    counts = {split: sum(v["counts"].get(split, 0) for v in versions) for split in splits}
    totals = {k: sum(v["totals"][k] for v in versions) for k in ("inputs", "written", "rejected")}
    totals["inputs_equal_written_plus_rejected"] = all(
        v["totals"]["inputs_equal_written_plus_rejected"] for v in versions)
    rejects, lengths = Counter(), {split: Counter() for split in splits}
    for v in versions:
        rejects.update(v["rejects"])
        for split, hist in v["label_length_histogram"].items():
            lengths[split].update({int(k): n for k, n in hist.items()})
    return {
        **contract,
        "split_root": split_root,
        "build_id": last["build_id"],
        "inputs": [i for v in versions for i in v["inputs"]],
        "counts": counts,
        "totals": totals,
        "rejects": dict(sorted(rejects.items())),
        "reject_files": [p for v in versions for p in v["reject_files"]],
        "index_files": [p for v in versions for p in v.get("index_files", [])],
        "splits": splits,
        "label_length_histogram": {split: {str(k): n for k, n in sorted(c.items())}
                                   for split, c in lengths.items()},
        "shards": [s for v in versions for s in v["shards"]],
        "ocr_version": last["ocr_version"],
        "options": last["options"],
        "created": last["created"],
        "versions": versions,
    }


def manifest_text(manifest: dict) -> str:
    """The bytes of manifest.json (as text): indented, UTF-8, one trailing newline."""
    return json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"


def publish_manifest(root: str, staging: str, manifest: dict, files: dict[str, str], *, build_id: str,
                     expected: str | None, replace: list[str] = (), stale: list[str] = ()) -> None:
    """Publishes a build: its staged files into `root`, then manifest.json, by the one publish rule
    (`ocr_core.publish`: under the output's lock, only if the manifest is still generation `expected`).

    Raises:
        ocr_core.publish.PublishConflict: another build published into `root` meanwhile, or is publishing.
    """
    publish.publish(root, staging, files, MANIFEST, manifest_text(manifest), job_id=build_id,
                    expected=expected, replace=replace, stale=stale, kind="build")
