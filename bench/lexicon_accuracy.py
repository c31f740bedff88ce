"""Lexicon-constrained decoding (ocr_core.lexicon) on the real dev crops of ../shared/realwords/*/dev.tsv.

The model runs forward once over every crop (the shipped bundle's model.onnx through `ocr predict`'s own
model handler and preprocessing); every condition then decodes the same probabilities:

  none          greedy decoding, no lexicon;
  lex50         a 50-word lexicon per crop, as IIIT5K's 50-word lists (the CRNN paper: 97.8 %): the true
                word plus 49 distractors, half drawn from the other train/dev labels of all three folders,
                half from the dictionary (/usr/share/dict/words, charset words only), shuffled;
  lex1000       the same with 1,000 words per crop (999 distractors);
  dictionary    one lexicon for every crop: the whole dictionary plus every train/dev label (the truth is
                always in it, as in the paper's 50k-word Hunspell condition);
and, to show what the search costs and buys: each per-crop lexicon scored only within δ of the reading
(no top-up to DEFAULT_MIN_CANDIDATES nearest words), lex1000 with δ = 1 and 5 and with an exhaustive scan
(every word's CTC likelihood, argmax), and the dictionary with δ = 2 and 1.

The true word is the label with everything but 0-9A-Za-z removed (its case kept); distractors never match
it case-insensitively. Seeded per crop (`--seed`), so every condition and run draws the same lexicons.
Scores: word accuracy under the scene-text protocol (bench/real_accuracy.py's `score`: lowercase,
alphanumerics only); decoding time per crop (greedy decoding plus the lexicon search, without the forward
pass), and the time to build the lexicon's tree (per crop for lex50/lex1000, once for dictionary); the mean
number of words scored per crop; and how well a confidence separates right from wrong answers (AUROC):
the posterior among the scored words, the plain CTC probability of the word, and the posterior with the
unconstrained reading counted as one more candidate.

    python bench/lexicon_accuracy.py                  # all dev crops (~1538); ~6 min on 2 busy cores
    python bench/lexicon_accuracy.py --n 100          # the first 100 crops of each folder

Prints a table and writes bench/results/lexicon_accuracy.json (a --n run: lexicon_accuracy-nN.json).
"""
from __future__ import annotations

import argparse
import json
import random
import re
import sys
import time
from pathlib import Path

import numpy as np
import real_accuracy  # noqa: E402  (imports bench/fixtures, which puts the repo on sys.path)
from fixtures import RESULTS, machine, table

from ocr_core.charset import Charset
from ocr_core.ctc import greedy_decode
from ocr_core.lexicon import (
    DEFAULT_MAX_DISTANCE,
    DEFAULT_MIN_CANDIDATES,
    Lexicon,
    LexiconDecoder,
    ctc_log_likelihood,
    match_key,
)
from ocr_core.metrics import scene_text_normalize
from ocr_core.synth import load_lexicon as dictionary_words

_NOT_ALNUM = re.compile(r"[^0-9A-Za-z]")


def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def forward(model: str, sources: list[str], batch: int = 64) -> tuple[np.ndarray, Charset]:
    """Probabilities [N, T, C] of every crop, and the model's charset (onnx engine, one thread)."""
    from ocr_core.engine import open_model
    from pipelines.transforms.recognise import Item, preprocess_item

    ref = open_model(model, "onnx")
    charset, run = Charset(ref.characters), ref.load(threads=1)
    items = [preprocess_item(Item(source=s), ref) for s in sources]
    if bad := [it for it in items if it.get("error")]:
        raise RuntimeError(f"{len(bad)} crop(s) do not load, e.g. {bad[0]['source']}: {bad[0]['error']}")
    pixels = np.stack([it["pixels"] for it in items])
    probs = [p for i in range(0, len(pixels), batch) for p in run(list(pixels[i:i + batch]))]
    return np.stack(probs), charset


def label_pool(realwords: Path) -> list[str]:
    """Every train/dev label of every folder, alphanumerics only, one spelling per lowercase form."""
    from pipelines.evaluate import read_labels

    words = {}
    for tsv in sorted(realwords.glob("*/train.tsv")) + sorted(realwords.glob("*/dev.tsv")):
        for e in read_labels(str(tsv), "all").entries:
            w = _NOT_ALNUM.sub("", e.label)
            if w:
                words.setdefault(w.lower(), w)
    return list(words.values())


def draw_lexicon(truth: str, size: int, labels: list[str], dictionary: list[str], rng: random.Random) -> list:
    """The true word plus size - 1 distractors (half labels, half dictionary words), shuffled."""
    taken = {truth.lower()}
    words = [truth] if truth else []

    def draw(pool: list[str], n: int) -> None:
        for w in rng.sample(pool, min(len(pool), n + len(taken))):
            if n and w.lower() not in taken:
                taken.add(w.lower())
                words.append(w)
                n -= 1

    draw(labels, (size - 1) // 2)
    draw(dictionary, size - len(words))
    rng.shuffle(words)
    return words


def auroc(scores: list[float], right: list[bool]) -> float | None:
    """P(a right answer's score > a wrong one's), ties counting half; None without both kinds."""
    s, r = np.asarray(scores), np.asarray(right, bool)
    pos, neg = s[r], s[~r]
    if not len(pos) or not len(neg):
        return None
    return float(((pos[:, None] > neg[None]).sum() + 0.5 * (pos[:, None] == neg[None]).sum())
                 / (len(pos) * len(neg)))


def posterior_with_reading(decoder: LexiconDecoder, keys: set[str], probs: np.ndarray, reading: str,
                           probability: float, posterior: float) -> float:
    """An alternative confidence: the word's share of the candidates' likelihood plus the unconstrained
    reading's when the reading is not a lexicon word (the model's own preference as one more candidate)."""
    key = match_key(reading, decoder.lexicon.case_sensitive)
    if not key or posterior == 0 or key in keys:
        return posterior
    own = float(np.exp(ctc_log_likelihood(decoder.log_probs(probs), [decoder.label(key)])[0]))
    return probability / (probability / posterior + own)


def run_condition(name: str, probs: np.ndarray, truths: list[str], charset: Charset, lexicons,
                  distance: int | None, min_candidates: int) -> dict:
    """Decodes every crop with its lexicon (`lexicons`: a word list per crop, or one `Lexicon` for all);
    distance None: an exhaustive scan. Returns the texts, timings and confidence AUROCs."""
    def decoder_for(words) -> tuple[LexiconDecoder, float]:
        lexicon = words if isinstance(words, Lexicon) else Lexicon.from_words(words, charset)
        t0 = time.perf_counter()
        decoder = LexiconDecoder(lexicon, charset, DEFAULT_MAX_DISTANCE if distance is None else distance,
                                 min_candidates)
        return decoder, time.perf_counter() - t0

    shared, build = decoder_for(lexicons) if isinstance(lexicons, Lexicon) else (None, 0.0)
    texts, conf, prob, with_reading, scored, decode, keys = [], [], [], [], [], 0.0, None
    for i, p in enumerate(probs):
        decoder = shared
        if decoder is None:
            decoder, seconds = decoder_for(lexicons[i])
            build += seconds
        t0 = time.perf_counter()
        ids, _ = greedy_decode(p[None])  # the reading the lexicon search starts from
        if distance is None:
            logp = decoder.score_all(p)
            best = int(np.argmax(logp))
            word, n = decoder.lexicon.words[best], len(logp)
            posterior = float(np.exp(logp[best] - np.logaddexp.reduce(logp)))
            probability = float(np.exp(logp[best]))
        else:
            m = decoder.decode(p, [charset.decode(ids[0])])
            word, n, posterior, probability = m.word, m.candidates, m.confidence, m.probability
        decode += time.perf_counter() - t0
        texts.append(word)
        conf.append(posterior)
        prob.append(probability)
        scored.append(n)
        if keys is None or decoder is not shared:
            keys = {match_key(w) for w in decoder.lexicon.words}
        with_reading.append(posterior_with_reading(decoder, keys, p, charset.decode(ids[0]), probability,
                                                   posterior))
    right = [scene_text_normalize(t) == scene_text_normalize(g) for t, g in zip(texts, truths)]
    return {"name": name, "delta": distance, "min_candidates": min_candidates, "texts": texts,
            "decode_ms_per_crop": 1000 * decode / len(probs),
            "build_ms": 1000 * build / (1 if shared is not None else len(probs)),
            "build_per": "lexicon" if shared is not None else "crop",
            "mean_words_scored": float(np.mean(scored)),
            "auroc_posterior": auroc(conf, right), "auroc_probability": auroc(prob, right),
            "auroc_posterior_with_reading": auroc(with_reading, right)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=str(real_accuracy.DEFAULT_MODEL),
                    help="model bundle with a model.onnx (default: the shipped one)")
    ap.add_argument("--realwords", type=Path, default=real_accuracy.DEFAULT_REALWORDS)
    ap.add_argument("--n", type=int, help="first N crops of each folder (default: all)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    realwords = args.realwords.resolve()
    folders, _ = real_accuracy.load_folders(realwords, args.n)
    entries = [(f, e) for f, es in folders.items() for e in es]
    say(f"{len(entries)} crops; forward pass ...")
    t0 = time.perf_counter()
    probs, charset = forward(args.model, [e.source for _, e in entries])
    forward_ms = 1000 * (time.perf_counter() - t0) / len(entries)

    truths = [e.label for _, e in entries]
    t0 = time.perf_counter()
    ids, _ = greedy_decode(probs)
    greedy_ms = 1000 * (time.perf_counter() - t0) / len(entries)
    readings = [charset.decode(x) for x in ids]
    labels, dictionary = label_pool(realwords), list(dictionary_words())
    say(f"distractor pools: {len(labels)} labels, {len(dictionary)} dictionary words")
    per_crop = {}
    for size in (50, 1000):
        per_crop[size] = [draw_lexicon(_NOT_ALNUM.sub("", e.label), size, labels, dictionary,
                                       random.Random(f"{args.seed}:{size}:{f}:{e.source}"))
                          for f, e in entries]
    everything = Lexicon.from_words(labels + dictionary, charset)
    d3, k = DEFAULT_MAX_DISTANCE, DEFAULT_MIN_CANDIDATES
    plan = [("lex50", per_crop[50], d3, k), ("lex50, δ-ball only", per_crop[50], d3, 1),
            ("lex1000", per_crop[1000], d3, k), ("lex1000, δ-ball only", per_crop[1000], d3, 1),
            ("lex1000 δ=1", per_crop[1000], 1, k), ("lex1000 δ=5", per_crop[1000], 5, k),
            ("lex1000 exhaustive", per_crop[1000], None, k),
            *((f"dictionary ({len(everything.words)} words){'' if d == d3 else f' δ={d}'}", everything, d, k)
              for d in (d3, 2, 1))]
    runs = [{"name": "none (greedy)", "delta": None, "texts": readings, "decode_ms_per_crop": greedy_ms,
             "build_ms": None, "build_per": None, "mean_words_scored": 0, "auroc_posterior": None,
             "auroc_probability": None, "auroc_posterior_with_reading": None}]
    for name, lexicons, distance, min_candidates in plan:
        say(f"{name} ...")
        runs.append(run_condition(name, probs, truths, charset, lexicons, distance, min_candidates))

    order = list(folders)
    rows = []
    for r in runs:
        start, r["folders"] = 0, {}
        for f in order:
            n = len(folders[f])
            r["folders"][f] = real_accuracy.score(folders[f], r["texts"][start:start + n])
            start += n
        whole = real_accuracy.score([e for _, e in entries], r["texts"])
        r["word_accuracy_alnum"] = whole["word_accuracy_alnum"]
        rows.append([r["name"], *(100 * r["folders"][f]["word_accuracy_alnum"] for f in order),
                     100 * r["word_accuracy_alnum"], r["decode_ms_per_crop"],
                     "—" if r["build_ms"] is None else f"{r['build_ms']:.1f}/{r['build_per']}",
                     r["mean_words_scored"],
                     *("—" if r[k] is None else r[k] for k in ("auroc_posterior", "auroc_probability",
                                                               "auroc_posterior_with_reading"))])
    headers = ["condition", *(f"{f} ({len(folders[f])})" for f in order), "all", "decode ms/crop",
               "build ms", "words scored", "AUROC post.", "AUROC p(w)", "AUROC post.+reading"]
    text = table(headers, rows)
    results = {"realwords": str(realwords), "model": args.model, "seed": args.seed, "n_per_folder": args.n,
               "crops": {f: len(folders[f]) for f in order}, "forward_ms_per_crop": forward_ms,
               "distractor_pools": {"labels": len(labels), "dictionary": len(dictionary)},
               "protocol": "word accuracy, scene-text protocol (lowercase, 0-9a-z only), in %",
               "runs": [{k: v for k, v in r.items() if k != "texts"} for r in runs],
               "table": text, "machine": machine(),
               "command": " ".join([Path(sys.executable).name, *sys.argv])}
    out = args.out or RESULTS / f"lexicon_accuracy{f'-n{args.n}' if args.n else ''}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"forward pass {forward_ms:.2f} ms/crop (not in the decode times)\n\n{text}\n\n-> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
