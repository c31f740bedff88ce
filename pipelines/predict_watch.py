"""`ocr predict --watch`: repeated bounded micro-batches, one Beam pipeline per window, because the Python
DirectRunner cannot carry the streaming form (docs/architecture.md): each window's landed files are listed
in its `_inputs.txt` and recognised by the batch job's own chain into OUT/window=<start>/, committed by its
_SUCCESS.json. One watcher per OUT (`OUT/_watch.lock`); a newer model bundle (--model-watch) replaces the
model at the next window, and one that does not load yet is tried again at the next."""
from __future__ import annotations

import contextlib
import os
import posixpath
import signal
import sys
import time

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from ocr_core.engine import ModelRef
from ocr_core.predictions import SUCCESS
from ocr_core.publish import PublishConflict, output_lock
from ocr_core.watch import BundleWatch, LandedFiles, parse_duration, recover, watch_pattern, window_name
from pipelines.predict_options import PredictError, absolute, decoding_of, model_lexicon, on_dask
from pipelines.transforms.read_inputs import ReadPathList, write_path_list
from pipelines.transforms.recognise import path_item

WATCH_LOCK = "_watch.lock"


class _Stop:
    """Set by SIGTERM: the running window finishes and commits, then the job ends (exit 0)."""

    requested = False

    @classmethod
    def handle(cls, *_):
        cls.requested = True


class ModelSwap:
    """The model of the next window: the newest bundle published under --model-watch once it loads; a bundle
    that does not load (yet) keeps the current model, is reported once, and is tried again next window."""

    def __init__(self, model: ModelRef, bundles: BundleWatch | None, engine: str, open_model):
        self.model, self.bundles, self.engine, self.open_model = model, bundles, engine, open_model
        self.reported: dict[str, str] = {}

    def next(self) -> ModelRef:
        bundle = self.bundles.newest() if self.bundles else None
        if bundle is None:
            return self.model
        try:
            model = self.open_model(bundle, self.engine)
        except PredictError as e:
            self.bundles.retry(bundle)
            if self.reported.get(bundle) != str(e):
                self.reported[bundle] = str(e)
                print(f"ocr predict --watch: warning: keeping {self.model.name} for now: {e}",
                      file=sys.stderr, flush=True)
            return self.model
        print(f"ocr predict --watch: model {self.model.name} -> {model.name}", flush=True)
        self.model = model
        return model


def recognise_window(args, beam_args, model: ModelRef, decoding, out: str, start: float, paths: list[str],
                     run_table):
    """One window: the list of its files, then one bounded pipeline (the batch job's chain) into
    OUT/window=<start>/, committed by its _SUCCESS.json. Returns the PipelineResult."""
    name = window_name(start)
    while FileSystems.exists(posixpath.join(out, name, SUCCESS)):  # a restart within the same second
        start += 1
        name = window_name(start)
    folder = posixpath.join(out, name)
    listing = posixpath.join(folder, "_inputs.txt")
    write_path_list(listing, paths)
    parts = args.workers if on_dask(args) else 1
    read = ReadPathList(listing, parts) | "FileItems" >> beam.Map(path_item)
    result, summary = run_table(args, beam_args, model, decoding, read, folder, input=args.watch, window=name)
    print(f"ocr predict --watch: {name}: {summary['rows']} rows ({summary['errors']} failed) with "
          f"{model.name} in {summary['seconds']}s", flush=True)
    return result


def watch(args, beam_args, lexicon_text: str | None, open_model, run_table):
    """Recognises the files of --watch as they land, one committed window at a time, until --idle-timeout
    passes without a new file or SIGTERM; returns the last window's PipelineResult (None if none ran).

    Raises:
        PredictError: bad watch options, or another watcher holds OUT.
    """
    window, poll = parse_duration(args.window), parse_duration(args.poll)
    idle = parse_duration(args.idle_timeout) if args.idle_timeout else None
    if window < 1 or poll <= 0 or poll > window:
        raise PredictError("need --window >= 1s and 0 < --poll <= --window")
    out = absolute(args.output)
    if "://" not in out:
        os.makedirs(out, exist_ok=True)
    _Stop.requested = False
    signal.signal(signal.SIGTERM, _Stop.handle)  # from here on (the model may take a while to load)
    with contextlib.ExitStack() as held:
        try:
            held.enter_context(output_lock(out, f"watch-{os.getpid()}", "watch job", lock=WATCH_LOCK))
        except PublishConflict:
            raise PredictError(f"--output {out}: another `ocr predict --watch` is watching into it; one "
                               "watcher per output") from None
        return _watch(args, beam_args, lexicon_text, open_model, run_table, out, window, poll, idle)


def _watch(args, beam_args, lexicon_text, open_model, run_table, out, window, poll, idle):
    model = open_model(args.model, args.engine)
    decoding = decoding_of(args, model_lexicon(args, lexicon_text, model))
    bundles = BundleWatch(absolute(args.model_watch)) if args.model_watch else None
    swap = ModelSwap(model, bundles, args.engine, open_model)
    pattern, images_only = watch_pattern(absolute(args.watch))
    files = LandedFiles(pattern, images_only, recover(out))
    print(f"ocr predict --watch: {pattern} -> {out} ({len(files.done)} files done before), window "
          f"{window:g}s, model {model.name}", flush=True)
    result, window_start, last_news = None, time.time(), time.time()
    while True:
        if files.poll():
            last_news = time.time()
        now = time.time()
        ending = _Stop.requested or (idle is not None and now - last_news >= idle)
        if now - window_start >= window or ending:
            swapped = swap.next()
            if swapped is not model:
                model = swapped
                decoding = decoding_of(args, model_lexicon(args, lexicon_text, model))
            if files.ready:
                result = recognise_window(args, beam_args, model, decoding, out, window_start, files.take(),
                                          run_table)
            window_start = now
        if ending:
            why = "stopped" if _Stop.requested else f"no new file for {idle:g}s"
            print(f"ocr predict --watch: {why}; {len(files.done)} files done in {out}", flush=True)
            return result
        time.sleep(poll)
