"""Writing a synth dataset: samples made in this process or a worker pool, the tsv and mjsynth layouts,
fonts.tsv and synth.json, and the labels file published last by a rename."""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import cv2

from ocr_core.synth import scene
from ocr_core.synth.fontset import DEFAULT_FONT_DIRS, fonts, has_oldstyle_figures
from ocr_core.synth.render import SYNTH_VERSION
from ocr_core.synth.sample import Sample, SampleMaker
from ocr_core.synth.text import DEFAULT_WORDS

LAYOUTS = ("tsv", "mjsynth")
FILES_PER_DIR = 10_000
TSV_LABELS = "labels.tsv"
MJSYNTH_LABELS = "annotation.txt"

# A pool worker's SampleMaker, set once by the pool initializer so tasks carry only an index.
_worker_maker: SampleMaker | None = None


def _init_worker(maker: SampleMaker) -> None:
    global _worker_maker
    cv2.setNumThreads(1)  # the pool already uses every core
    _worker_maker = maker


def _make_in_worker(index: int) -> Sample:
    return _worker_maker(index)


@contextlib.contextmanager
def _sample_stream(maker: SampleMaker, count: int, workers: int) -> Iterator[Iterator[Sample]]:
    """Samples 0..count-1 in index order, made in this process (workers <= 1) or by a pool."""
    if workers <= 1 or count < 2:
        yield map(maker, range(count))
        return
    import multiprocessing

    # spawn, not fork: the caller (tests, a training job) may run TensorFlow threads that fork would copy in
    # an unknown state.
    with multiprocessing.get_context("spawn").Pool(workers, _init_worker, (maker,)) as pool:
        yield pool.imap(_make_in_worker, range(count), chunksize=max(1, min(64, count // (workers * 8))))


def _clear_previous(out_dir: Path) -> None:
    """Removes what an earlier `generate` wrote into out_dir, as named by its synth.json."""
    meta = out_dir / "synth.json"
    if not meta.exists():
        return
    layout = json.loads(meta.read_text()).get("layout")
    if layout == "tsv" and (out_dir / "images").is_dir():
        shutil.rmtree(out_dir / "images")
    elif layout == "mjsynth":
        for d in out_dir.iterdir():
            if d.is_dir() and d.name.isdigit():
                shutil.rmtree(d)
    for name in (TSV_LABELS, MJSYNTH_LABELS, "lexicon.txt", "fonts.tsv", "synth.json"):
        (out_dir / name).unlink(missing_ok=True)


def existing_dataset(out_dir: str | os.PathLike) -> Path | None:
    """The labels file of a dataset already in out_dir, if any."""
    found = [p for p in (Path(out_dir) / TSV_LABELS, Path(out_dir) / MJSYNTH_LABELS) if p.exists()]
    return found[0] if found else None


def labels_file(out_dir: str | os.PathLike, layout: str) -> Path:
    """Where `generate` writes the labels for a layout."""
    return Path(out_dir) / (TSV_LABELS if layout == "tsv" else MJSYNTH_LABELS)


def generate(out_dir: str | os.PathLike, count: int, seed: int = 0, layout: str = "tsv", workers: int = 2,
             font_split: str = "train", progress: bool = True, image_format: str = "jpg",
             font_dir: str | None = None, words_path: str = DEFAULT_WORDS, overwrite: bool = False,
             version: int = SYNTH_VERSION, background_dirs: tuple[str, ...] = scene.BACKGROUND_DIRS,
             lines: bool = False, marks: str = "") -> Path:
    """Writes `count` synthetic word images and their labels; the same seed gives byte-identical files.

    Layouts:
        tsv: images/000/0000000.jpg (10,000 a folder) and labels.tsv lines "images/000/0000000.jpg<TAB>label".
        mjsynth: <a>/<b>/<index>_<Label>_<lexidx>.jpg, annotation.txt lines "./<a>/<b>/<file> <lexidx>" and
            lexicon.txt (the distinct labels, lexidx = line number from 0).
    Both also write synth.json (options, fonts, usage) and fonts.tsv ("path<TAB>family<TAB>font file").

    Args:
        out_dir: the dataset directory (created).
        count: number of images.
        seed: dataset seed; image i depends only on (seed, i).
        layout: "tsv" or "mjsynth".
        workers: processes; 1 renders in this process. The output does not depend on it.
        font_split: "train", "heldout" or "all" (see `fonts`).
        progress: a tqdm bar on stderr.
        image_format: "jpg" or "png".
        font_dir: another directory of fonts besides the system ones.
        words_path: the dictionary.
        overwrite: replace an earlier dataset in out_dir instead of refusing.
        version: synth version; 2 reproduces the pinned held-out benchmark images.
        background_dirs: (version 3) where to find background pictures; without any, version 3 draws the
            procedural backgrounds only (synth.json lists the pictures used).
        lines: text lines instead of words (labels with spaces and punctuation; tsv layout only).
        marks: the punctuation of the charset the labels are for (see `SampleMaker`; "" as before).

    Returns:
        The labels file (labels.tsv or annotation.txt).
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout {layout!r} is not one of {', '.join(LAYOUTS)}")
    if lines and layout != "tsv":
        raise ValueError("text lines need the tsv layout: an mjsynth file name cannot hold a line's label")
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    out = Path(out_dir)
    existing = existing_dataset(out)
    if existing and not overwrite:
        raise FileExistsError(f"{existing} exists: {out} already holds a dataset")
    if overwrite:
        _clear_previous(out)
    font_list = fonts(font_split, font_dir)
    backgrounds = scene.background_files(tuple(background_dirs)) if version >= 3 else ()
    maker = SampleMaker(seed, font_list, image_format, words_path, version, backgrounds, lines, marks)
    out.mkdir(parents=True, exist_ok=True)

    from tqdm import tqdm

    usage: dict[str, int] = {}
    lexicon: dict[str, int] = {}
    made_dirs: set[Path] = set()
    target = labels_file(out, layout)
    tmp = target.with_name(target.name + ".tmp")
    with contextlib.ExitStack() as stack:
        samples = stack.enter_context(_sample_stream(maker, count, workers))
        bar = stack.enter_context(tqdm(total=count, desc="synth", unit="img", file=sys.stderr,
                                       disable=not progress))
        labels_out = stack.enter_context(open(tmp, "w", encoding="utf-8"))
        fonts_out = stack.enter_context(open(out / "fonts.tsv", "w", encoding="utf-8"))
        for s in samples:
            if layout == "tsv":
                rel = f"images/{s.index // FILES_PER_DIR:03d}/{s.index:07d}.{image_format}"
                labels_out.write(f"{rel}\t{s.label}\n")
            else:
                lex = lexicon.setdefault(s.label, len(lexicon))
                rel = (f"{s.index // FILES_PER_DIR + 1}/{s.index // 1000 % 10 + 1}/"
                       f"{s.index}_{s.label}_{lex}.{image_format}")
                labels_out.write(f"./{rel} {lex}\n")
            path = out / rel
            if path.parent not in made_dirs:
                path.parent.mkdir(parents=True, exist_ok=True)
                made_dirs.add(path.parent)
            path.write_bytes(s.data)
            fonts_out.write(f"{rel}\t{s.font.family}\t{Path(s.font.path).name}\n")
            usage[s.font.family] = usage.get(s.font.family, 0) + 1
            bar.update()

    if layout == "mjsynth":
        (out / "lexicon.txt").write_text("".join(f"{w}\n" for w in lexicon))
    meta = {
        "synth_version": version, "lines": lines, "marks": marks, "count": count, "seed": seed,
        "layout": layout,
        "image_format": image_format, "font_split": font_split, "font_dirs": list(DEFAULT_FONT_DIRS) + (
            [str(font_dir)] if font_dir else []),
        "words": {"path": str(words_path), "usable": len(maker.sampler.words)},
        "backgrounds": list(backgrounds),
        "font_usage": dict(sorted(usage.items())),
        "fonts": [asdict(f) for f in font_list],
        # Without libraqm (Debian libfribidi0) no font gets old-style figures: a different dataset.
        "oldstyle_figures": sorted(Path(f.path).name for f in font_list if has_oldstyle_figures(f.path)),
    }
    (out / "synth.json").write_text(json.dumps(meta, indent=1) + "\n")
    # The labels file appears last, by a rename: its presence means the dataset is complete.
    os.replace(tmp, target)
    return target
