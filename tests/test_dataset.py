"""`ocr_core.dataset`: the manifest's one home — load (local and ram://), split resolution, shards of every
version, counts, the manifest writer, and the readers (predict, evaluate, inspect, training) that use it."""
from __future__ import annotations

import json
from pathlib import Path

import images
import pytest

from ocr_core import dataset, fs
from ocr_core.charset import Charset
from ocr_core.dataset import Dataset, DatasetError
from ocr_core.publish import generation_of
from ocr_core.records import SCHEMA_VERSION, WordRecord, iter_tfrecords
from pipelines import build_dataset, inspect_dataset

WORDS = ["Hello", "World", "foo", "Bar42", "ocr", "Beam", "tf", "Data", "word", "x1y2", "Q", "zz9", "seven",
         "Eight", "nine9", "Ten"]


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("words")
    images.write_manifest(root / "labels.tsv", images.write_words(root, WORDS))
    out = root / "ds"
    build_dataset.run(["--input", str(root / "labels.tsv"), "--output", str(out), "--workers", "1",
                       "--shards", "2", "--val-fraction", "0.3", "--test-fraction", "0.2"])
    return out


def test_load_counts_and_contract(built):
    d = Dataset.load(built)
    m = json.loads((built / "manifest.json").read_text())
    assert d.manifest == m and d.charset == Charset().characters and d.image_shape == (32, 128)
    assert sum(d.counts.values()) == len(WORDS) and d.count("nope") == 0
    assert set(dataset.KEYS) <= set(m) and d.build_id == m["build_id"]
    assert [v["version"] for v in d.versions] == [1]
    assert d.versions[0]["shards"] == m["shards"] and d.versions[0]["directory"] == ""


def test_split_resolution(built):
    d = Dataset.load(built)
    assert d.count("test") and d.resolve_split("auto") == "test"
    assert d.resolve_split("all") == "all" and d.resolve_split("val") == "val"
    with pytest.raises(DatasetError, match=r"no split 'dev' \(has test, val, train\)"):
        d.resolve_split("dev")
    only_train = Dataset("x", {"counts": {"train": 3, "val": 0}, "shards": []})
    assert only_train.resolve_split("auto") == "train" and only_train.present_splits == ["train"]
    assert only_train.shard_files("test") == []  # a split the dataset lacks has no shards


def test_shards_are_absolute_and_hold_their_counts(built):
    d = Dataset.load(built)
    every = d.shard_files("all")
    assert sum(n for _, n in every) == len(WORDS)
    assert sorted(d.shards("train") + d.shards("val") + d.shards("test")) == sorted(p for p, _ in every)
    for path, n in every:
        assert Path(path).is_absolute() and Path(path).parent == built
        with open(path, "rb") as fh:
            assert len(list(iter_tfrecords(fh, path))) == n
    assert d.shard_files("auto") == d.shard_files("test")


def test_manifests_of_many_versions_total_across_them(built):
    m = Dataset.load(built).manifest
    v1 = m["versions"][0]
    v2 = {**json.loads(json.dumps(v1)), "version": 2, "build_id": "b2", "directory": "v0002"}
    v2["shards"] = [{**s, "path": f"v0002/{s['path']}"} for s in v1["shards"]]
    contract = {k: m[k] for k in ("schema_version", "record_schema", "charset", "blank_id", "image_shape",
                                  "preprocessing", "max_time_steps")}
    both = dataset.make_manifest(contract, [v1, v2], m["split_root"])
    d = Dataset("/data/ds", both)
    assert d.counts == {s: 2 * n for s, n in m["counts"].items()} and d.build_id == "b2"
    assert both["totals"]["inputs"] == 2 * m["totals"]["inputs"]
    assert both["splits"]["train"]["num_shards"] == 2 * m["splits"]["train"]["num_shards"]
    assert [p for p in d.shards("train") if "/v0002/" in p] == [
        f"/data/ds/v0002/{s['path']}" for s in v1["shards"] if s["split"] == "train" and s["count"]]


def test_missing_incomplete_and_foreign_datasets_are_one_line_errors(tmp_path):
    with pytest.raises(DatasetError, match="no such dataset directory"):
        Dataset.load(tmp_path / "nope")
    (tmp_path / "half").mkdir()
    with pytest.raises(DatasetError, match="no manifest.json — not a complete dataset"):
        Dataset.load(tmp_path / "half")
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "manifest.json").write_text(json.dumps({"schema_version": SCHEMA_VERSION + 1}))
    with pytest.raises(DatasetError, match="schema_version 2 is not supported"):
        Dataset.load(tmp_path / "old")
    (tmp_path / "old" / "manifest.json").write_text("{not json")
    with pytest.raises(DatasetError, match="not valid JSON"):
        Dataset.load(tmp_path / "old")


def test_a_manifest_publishes_after_its_files_and_only_over_the_generation_it_expects(built, tmp_path):
    from ocr_core.publish import PublishConflict

    m = {**Dataset.load(built).manifest, "note": "é"}
    staging = tmp_path / "out" / "_staging" / "b1"
    staging.mkdir(parents=True)
    (staging / "x.tfrecord").write_bytes(b"")
    dataset.publish_manifest(str(tmp_path / "out"), str(staging), m, {"x.tfrecord": "v0002/x.tfrecord"},
                             build_id="b1", expected=None)
    out = tmp_path / "out"
    assert (out / "manifest.json").read_text(encoding="utf-8") == dataset.manifest_text(m)
    d = Dataset.load(out)
    assert d.manifest["note"] == "é" and (out / "v0002" / "x.tfrecord").exists()
    assert d.generation == generation_of((out / "manifest.json").read_bytes())
    staging.mkdir()
    with pytest.raises(PublishConflict, match="another build published into it"):
        dataset.publish_manifest(str(out), str(staging), m, {}, build_id="b2", expected=None)
    dataset.publish_manifest(str(out), str(staging), {**m, "note": 2}, {}, build_id="b2",
                             expected=d.generation)
    assert Dataset.load(out).manifest["note"] == 2


def test_a_dataset_on_a_remote_filesystem(built):
    """ram:// (TensorFlow's in-memory filesystem, loaded by conftest) stands in for gs://."""
    import tensorflow as tf

    remote = "ram://datasets/words"
    for p in built.iterdir():
        tf.io.gfile.makedirs(remote)
        tf.io.gfile.copy(str(p), f"{remote}/{p.name}", overwrite=True)
    d = Dataset.load(remote)
    assert d.manifest == Dataset.load(built).manifest
    assert all(p.startswith(f"{remote}/") for p in d.shards("all"))
    d.verify_sample()
    with fs.open_binary(d.shards("train")[0]) as fh:
        recs = [WordRecord.decode(b) for b in iter_tfrecords(fh)]
    assert len(recs) == d.shard_files("train")[0][1]
    with pytest.raises(DatasetError, match="no manifest.json"):
        Dataset.load("ram://datasets/none")


def test_readers_use_it(built, capsys):
    """predict's dataset_shards, evaluate's labels, inspect and training read shards through Dataset."""
    from ocr_core.data import DatasetInfo
    from pipelines import evaluate, predict

    d = Dataset.load(built)
    assert predict.dataset_shards(str(built), "auto") == d.shard_files("test")
    assert predict.dataset_shards(str(built), "all") == d.shard_files("all")
    with pytest.raises(predict.PredictError, match=rf"{built}: no split 'dev' \(has test, val, train\)"):
        predict.dataset_shards(str(built), "dev")
    labels = evaluate.read_labels(str(built), "val")
    assert labels.split == "val" and len(labels.entries) == d.count("val")
    assert DatasetInfo is Dataset and DatasetInfo.load(str(built)).shards("train") == d.shards("train")
    assert inspect_dataset.run([str(built), "--split", "val", "-n", "100"]) == 0
    assert capsys.readouterr().out.count("\nid ") == d.count("val")
