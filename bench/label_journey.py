"""`ocr label` measured: how right the teacher's confident labels are, and what labelling your own crops buys.

Part 1 (precision): `ocr label --model pp-ocrv6 --min-confidence C` on each folder's dev.tsv of
../shared/realwords (the labels column is ignored by the recogniser), then every kept label compared with the
true one: crops kept and sent to review, and the share of kept labels that are right (exact, and under the
scene-text protocol: lowercase alphanumerics).

Part 2 (the journey, --journey): a folder's train crops treated as unlabelled (a folder of symbolic links to
the images of its train.tsv) -> `ocr label` -> `ocr build-dataset` -> fine-tune the shipped model with the
README's recipe; beside it the same build and fine-tune on the true labels of the same crops; then all three
(shipped, teacher-labelled, true-labelled) scored on every dev folder by bench/real_accuracy.py.

    python bench/label_journey.py                          # part 1 only, threshold 0.9 (~2 min)
    python bench/label_journey.py --journey ic15_train     # + part 2 on IC15's 3,377 train crops (~15 min)

Results: bench/results/label_journey.json (printed as Markdown tables).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import fixtures  # noqa: E402  (also puts the repo on sys.path)

from ocr_core.metrics import scene_text_normalize  # noqa: E402

REPO = fixtures.REPO
REALWORDS = REPO.parent / "shared" / "realwords"
RECIPE = ["--config", "default", "--init-from", "shipped", "--learning-rate", "0.0003", "--epochs", "6"]


def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def read_manifest(path: Path) -> dict[str, str]:
    """Resolved image path -> label of a `path<TAB>label` manifest (paths relative to it; no comments)."""
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line or line.startswith("#") or line == "path\tlabel":
            continue
        rel, _, label = line.partition("\t")
        out[str((path.parent / rel).resolve())] = label
    return out


def label(inputs: str, out: Path, threshold: float) -> tuple[dict[str, str], int, float]:
    """`ocr label` into out/labels.tsv: (kept path -> label, crops sent to review, wall seconds)."""
    seconds = fixtures.run_ocr("label", "--input", inputs, "--output", out / "labels.tsv",
                               "--model", "pp-ocrv6", "--min-confidence", str(threshold), "--workers", "2",
                               "--overwrite", log=out / "label.log")
    kept = read_manifest(out / "labels.tsv")
    review = read_manifest(out / "review.tsv")
    return kept, len(review), seconds


def precision(kept: dict[str, str], truth: dict[str, str], review: int) -> dict:
    pairs = [(truth[p], t) for p, t in kept.items() if p in truth]
    missing = len(kept) - len(pairs)
    if missing:
        raise RuntimeError(f"{missing} labelled crops are not in the truth manifest")
    n = len(pairs)
    exact = sum(t == g for g, t in pairs)
    alnum = sum(scene_text_normalize(t) == scene_text_normalize(g) for g, t in pairs)
    return {"crops": n + review, "kept": n, "review": review, "kept_share": n / max(n + review, 1),
            "precision_exact": exact / n if n else None, "precision_alnum": alnum / n if n else None,
            "wrong_alnum": n - alnum}


def journey(folder: str, threshold: float, tmp: Path) -> dict:
    train = REALWORDS / folder / "train.tsv"
    truth = read_manifest(train)
    crops = tmp / f"{folder}-unlabelled"
    crops.mkdir(parents=True, exist_ok=True)
    for i, path in enumerate(sorted(truth)):  # unique names: a folder of links, no labels anywhere
        (crops / f"{i:06d}{Path(path).suffix}").symlink_to(path)
    say(f"journey: ocr label on {len(truth)} {folder} train crops (no labels) ...")
    kept, review, label_seconds = label(str(crops), tmp / "journey-label", threshold)
    # read_manifest resolves the links: the kept labels are compared with the true ones of the same images
    facts = {"folder": folder, "label_seconds": label_seconds, **precision(kept, truth, review)}
    models = {}
    sets = (("teacher-labelled", tmp / "journey-label" / "labels.tsv"), ("true-labelled", train))
    for name, manifest in sets:
        ds, model = tmp / f"ds-{name}", tmp / f"model-{name}"
        say(f"journey: build + fine-tune on the {name} crops ...")
        build = fixtures.run_ocr("build-dataset", "--input", manifest, "--output", ds,
                                 "--val-fraction", "0.1", "--oov", "drop", "--overwrite",
                                 log=tmp / f"build-{name}.log")
        train_s = fixtures.run_ocr("train", "--data", ds, *RECIPE, "--output", model, "--overwrite",
                                   log=tmp / f"train-{name}.log")
        models[name] = {"model": str(model), "build_seconds": build, "train_seconds": train_s}
    say("journey: bench/real_accuracy.py on shipped, teacher-labelled, true-labelled ...")
    scores = tmp / "real_accuracy.json"
    args = [sys.executable, str(REPO / "bench" / "real_accuracy.py"), "--peers", "none", "--out", str(scores),
            "--model", str(REPO / "ocr_core" / "assets" / "default_model"),
            "--name", "shipped (no fine-tune)"]
    for name, m in models.items():
        args += ["--model", m["model"], "--name", f"fine-tuned, {name}"]
    import subprocess

    proc = subprocess.run(args, cwd=REPO, capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(proc.stderr[-3000:])
    result = json.loads(scores.read_text())
    facts["models"] = models
    facts["dev"] = {r["name"]: {f: round(100 * m["word_accuracy_alnum"], 1) for f, m in r["folders"].items()}
                    for r in result["rows"]}
    facts["table_markdown"] = result["table_markdown"]
    return facts


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--min-confidence", type=float, default=0.9)
    ap.add_argument("--journey", metavar="FOLDER",
                    help="also run part 2 on this realwords folder's train crops")
    ap.add_argument("--realwords", type=Path, default=REALWORDS)
    args = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="label-journey-"))
    rows = {}
    for dev in sorted(args.realwords.glob("*/dev.tsv")):
        say(f"ocr label on {dev} ...")
        kept, review, seconds = label(str(dev), tmp / f"dev-{dev.parent.name}", args.min_confidence)
        rows[dev.parent.name] = {**precision(kept, read_manifest(dev), review), "seconds": seconds}
    total = {k: sum(r[k] for r in rows.values()) for k in ("crops", "kept", "review", "wrong_alnum")}
    total["precision_alnum"] = 1 - total["wrong_alnum"] / max(total["kept"], 1)
    lines = ["| dev folder | crops | kept (≥ threshold) | to review | kept labels right (alnum) | exact |",
             "|---|---|---|---|---|---|"]
    for f, r in rows.items():
        lines.append(f"| {f} | {r['crops']} | {r['kept']} ({100 * r['kept_share']:.0f} %) | {r['review']} | "
                     f"{100 * r['precision_alnum']:.1f} % | {100 * r['precision_exact']:.1f} % |")
    lines.append(f"| all | {total['crops']} | {total['kept']} | {total['review']} | "
                 f"{100 * total['precision_alnum']:.1f} % | |")
    results = {"min_confidence": args.min_confidence, "dev": rows, "dev_total": total,
               "table_markdown": "\n".join(lines), "machine": fixtures.machine(),
               "command": " ".join([Path(sys.executable).name, *sys.argv])}
    print(f"ocr label --model pp-ocrv6 --min-confidence {args.min_confidence} on the dev crops:\n")
    print(results["table_markdown"])
    if args.journey:
        results["journey"] = journey(args.journey, args.min_confidence, tmp)
        j = results["journey"]
        print(f"\n{j['folder']} train crops as unlabelled: {j['kept']} labelled, {j['review']} to review, "
              f"{j['wrong_alnum']} kept labels wrong ({100 * (1 - j['precision_alnum']):.1f} %)\n")
        print(j["table_markdown"])
    path = fixtures.write_results("label_journey", results)
    say(f"wrote {path} (scratch: {tmp})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
