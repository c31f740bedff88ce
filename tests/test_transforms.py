"""The Beam transforms of `pipelines/transforms/`, each alone on a TestPipeline with a handful of elements."""
from __future__ import annotations

import apache_beam as beam
from apache_beam.testing import test_pipeline
from apache_beam.testing.util import assert_that, equal_to

from ocr_core.inputs import Entry, InputSpec, Reject
from ocr_core.records import record_id
from ocr_core.split import SplitPlan, stable_hash, stable_shard
from pipelines.transforms.dask_safe import WithEveryShard, only
from pipelines.transforms.dedup import DedupByImage
from pipelines.transforms.labels import ValidateLabel, ValidateLabels
from pipelines.transforms.read_inputs import ReadInputs
from pipelines.transforms.recognise import Decoding, Item, item_of
from pipelines.transforms.shards import AssignSplitAndShard, GroupByShard
from pipelines.transforms.write import every_part, key_by_shard


def entry(source: str, label: str, n: int, id_: str = "") -> Entry:
    return Entry(id_, source, label, (), f"labels.tsv:{n}", (0, n), source)


def test_validate_labels_keeps_good_labels_and_rejects_bad_ones():
    entries = [entry("/a.png", "ab", 1), entry("/b.png", "", 2), entry("/c.png", "a-b", 3)]
    with test_pipeline.TestPipeline() as p:
        valid, rejects = p | beam.Create(entries) | ValidateLabels(ValidateLabel("ab", "reject", 31))
        assert_that(valid | "Ids" >> beam.Map(lambda e: (e.source, e.id, e.label_ids)),
                    equal_to([("/a.png", record_id("/a.png", "ab"), (1, 2))]), label="valid")
        assert_that(rejects | "Reasons" >> beam.Map(lambda r: (r.source, r.reason)),
                    equal_to([("/b.png", "empty_label"), ("/c.png", "oov_characters")]), label="rejects")


def test_dedup_keeps_the_first_of_duplicates_and_none_of_a_conflict():
    """The Dask path's dedup (a GroupByKey by image); the spilled one is `build_runs`, tested beside."""
    entries = [entry("/a.png", "x", 2), entry("/a.png", "x", 1), entry("/b.png", "x", 3),
               entry("/b.png", "y", 4), entry("/c.png", "z", 5)]
    with test_pipeline.TestPipeline() as p:
        unique, rejects = (p | beam.Create(entries, reshuffle=True)
                           | DedupByImage())
        assert_that(unique | "Kept" >> beam.Map(lambda e: e.origin),
                    equal_to(["labels.tsv:1", "labels.tsv:5"]), label="unique")
        assert_that(rejects | "Why" >> beam.Map(lambda r: (r.origin, r.reason)),
                    equal_to([("labels.tsv:2", "duplicate"), ("labels.tsv:3", "conflicting_label"),
                              ("labels.tsv:4", "conflicting_label")]), label="rejects")


def test_split_and_shard_give_every_planned_shard_and_follow_the_stable_hash():
    plan = SplitPlan(val_fraction=0.5, train_shards=3)
    entries = [entry(f"/img/{i}.png", "w", i) for i in range(6)]
    with test_pipeline.TestPipeline() as p:
        grouped = (p | beam.Create(entries) | AssignSplitAndShard(plan)
                   | GroupByShard(plan)
                   | beam.MapTuple(lambda key, es: (key, sorted(e.source for e in es if e is not None))))
        want = {key: [] for key in plan.every_shard()}
        for e in entries:
            key = record_id(e.key, e.label)
            split = plan.split_of(key)
            want[(split, plan.shard_of(key, split))].append(e.source)
        assert_that(grouped, equal_to([(k, sorted(v)) for k, v in want.items()]))


def test_the_one_hash_is_stable_and_spreads():
    assert stable_hash("split", "a") == stable_hash("split", "a") != stable_hash("shard", "a")
    assert {stable_shard("part", str(i), 4) for i in range(100)} == {0, 1, 2, 3}
    assert key_by_shard({"id": "x"}, 3) == ((stable_shard("part", "x", 3), 3), {"id": "x"})


def test_with_every_shard_counted_in_the_pipeline_and_only():
    with test_pipeline.TestPipeline() as p:
        count = p | "Count" >> beam.Create([3])
        keyed = p | "Rows" >> beam.Create([((1, 3), "r")])
        grouped = keyed | WithEveryShard(every_part, count)
        assert_that(grouped | beam.MapTuple(lambda k, v: (k, sorted(x for x in v if x is not None))),
                    equal_to([((0, 3), []), ((1, 3), ["r"]), ((2, 3), [])]), label="every")
        mixed = p | "Mixed" >> beam.Create([1, "a", 2])
        assert_that(mixed | only(int), equal_to([1, 2]), label="only")


def test_read_inputs_of_predict_carries_no_label_and_items_keep_errors(tmp_path):
    (tmp_path / "1_word_2.png").write_bytes(b"x")
    (tmp_path / "labels.tsv").write_text("1_word_2.png\tword\nno tab\n")
    glob = InputSpec(0, str(tmp_path / "*.png"), "glob", "*.png")
    manifest = InputSpec(1, str(tmp_path / "labels.tsv"), "tsv", "labels.tsv")
    with test_pipeline.TestPipeline() as p:
        entries, rejects, _ = p | ReadInputs([glob, manifest], labelled=False)
        items = (entries, rejects) | beam.Flatten() | beam.Map(item_of)
        assert_that(items | beam.Map(lambda it: (it["label"], (it.get("error") or "")[:14])),
                    equal_to([(None, ""), ("word", ""), (None, "malformed_line")]))
    bad = Reject("", "labels.tsv:2", None, "malformed_line", "x", (1, 2))
    assert item_of(bad)["source"] == "labels.tsv:2"
    assert isinstance(item_of(entry("/a.png", "a", 1)), Item)


def test_decoding_names_its_column():
    assert Decoding().label == "greedy" and Decoding("beam", 5).label == "beam(5)"
