"""What a build adds to a dataset: the checks of its output folder (`check_output`, `dataset_files`), the
version entry of its manifest made from the build's summary file (`make_version`), the manifest's contract
(`contract`), and for an --append the records of the earlier versions (`earlier_records`) and the folder
split keys hang from (`split_root`). Through `ocr_core.fs`, so any scheme works; no Beam pipeline."""
from __future__ import annotations

import json
import os
import posixpath
from collections import Counter
from datetime import datetime, timezone

import ocr_core
from ocr_core import dataset, fs, publish
from ocr_core.charset import BLANK_ID, Charset
from ocr_core.dataset import MANIFEST, SPLITS, Dataset
from ocr_core.inputs import InputSpec, common_root, input_dir
from ocr_core.labels import max_time_steps
from ocr_core.preprocess import PreprocessSpec
from ocr_core.publish import OutputError
from ocr_core.records import SCHEMA, SCHEMA_VERSION
from ocr_core.split import SplitPlan

SUMMARY_DIR = "_build_summary"  # in the staging folder: what the pipeline leaves for the launcher
SUMMARY_FILE = "summary.jsonl"


def check_output(out_dir: str, overwrite: bool, append: bool = False) -> tuple[str | None, Dataset | None]:
    """Refuses a file, or a directory holding a dataset unless overwrite or append; nothing is written or
    removed here (an overwrite replaces the old dataset when the new one publishes).

    Returns:
        The generation of the manifest the build will replace (None: there is none), and with append the
        dataset it adds a version to (None: there is none yet).
    """
    publish.check_output_dir(out_dir)
    if append and Dataset.exists(out_dir):
        current = Dataset.load(out_dir)
        return current.generation, current
    current = publish.generation(fs.join(out_dir, MANIFEST))
    old = dataset_files(out_dir)
    if (current or old) and not overwrite:
        what = "manifest.json" if current else f"{len(old)} shard/reject files"
        fix = "pass --overwrite to replace it, " + ("" if current is None else "--append to add to it, ")
        raise OutputError(f"{out_dir} already holds a dataset ({what}); {fix}or choose another --output")
    return current, None


def dataset_files(out_dir: str) -> list[str]:
    """What a dataset keeps in `out_dir` besides its manifest (relative paths): the first version's shard,
    rejects and index files, and the folders of later versions."""
    found = fs.glob(fs.join(out_dir, "*.tfrecord")) + fs.glob(fs.join(out_dir, "rejects-*.jsonl"))
    found += fs.glob(fs.join(out_dir, "index-*.jsonl"))
    found += sorted({posixpath.dirname(p.replace(os.sep, "/"))
                     for p in fs.glob(fs.join(out_dir, "v[0-9][0-9][0-9][0-9]", "*"))})
    return [p[len(out_dir.rstrip("/")) + 1:] for p in found]


def read_summary(staging: str) -> list[dict]:
    """The build summary the pipeline wrote into its staging folder (one JSON object a line)."""
    with fs.open_binary(fs.join(staging, SUMMARY_DIR, SUMMARY_FILE)) as fh:
        return [json.loads(line) for line in fh.read().decode().splitlines()]


def make_version(summary: list[dict], number: int, build_id: str, inputs: list[InputSpec], plan: SplitPlan,
                 options: dict) -> dict:
    """This build's version entry of the manifest, from the build summary; paths relative to the dataset."""
    per_input = Counter()
    for s in summary:
        if s["kind"] == "input":
            per_input[s["index"]] += s["entries"]
    where = dataset.version_dir(number)

    def placed(items):
        return [{**s, "path": posixpath.join(where, s["path"])} for s in items]

    shards = sorted((s for s in summary if s["kind"] == "shard"),
                    key=lambda s: (SPLITS.index(s["split"]), s["shard"]))
    reject_files = sorted((s for s in summary if s["kind"] == "rejects"), key=lambda s: s["path"])
    index_files = sorted(s["path"] for s in placed(s for s in summary if s["kind"] == "index"))
    return dataset.make_version(
        number, build_id,
        inputs=[{"input": s.given, "uri": s.uri, "kind": s.kind, "entries": per_input[s.index]}
                for s in inputs],
        shards=placed(shards), reject_files=placed(reject_files), index_files=index_files,
        splits={split: {"fraction": plan.fractions[split], "num_shards": n}
                for split, n in plan.num_shards.items()},
        options=options, created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        ocr_version=ocr_core.__version__)


def earlier_records(current: Dataset) -> list[tuple[str, int, str]]:
    """(file, version, kind) to read the records of every version from: its index files, or its shards for a
    version built before indexes existed."""
    files = []
    for v in current.versions:
        if v.get("index_files") is not None and (v["index_files"] or not v["totals"]["written"]):
            files += [(current.path(p), v["version"], "index") for p in v["index_files"]]
        else:
            files += [(current.path(s["path"]), v["version"], "shards") for s in v["shards"] if s["count"]]
    return files


def split_root(inputs: list[InputSpec], current: Dataset | None) -> str:
    """The directory split keys are relative to: the inputs' common directory, widened on --append to the
    one the dataset's keys hang from, so a record gets the split a full build over every input gives it."""
    if current is None:
        return inputs[0].root
    previous = current.manifest.get("split_root")
    if previous is None:  # a dataset built before the root was recorded
        previous = common_root([input_dir(i["uri"], i["kind"]) for i in current.manifest.get("inputs", [])])
    return common_root([previous, inputs[0].root])


def contract(charset: Charset, spec: PreprocessSpec) -> dict:
    """What a model trained on the dataset relies on: the record schema, charset and image contract."""
    return {"schema_version": SCHEMA_VERSION, "record_schema": SCHEMA, "charset": charset.characters,
            "blank_id": BLANK_ID, "image_shape": [spec.height, spec.width, 1],
            "preprocessing": spec.to_dict(), "max_time_steps": max_time_steps(spec)}
