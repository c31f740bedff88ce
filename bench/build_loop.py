"""The plain-loop contenders of bench/build_dataset.py: what `ocr build-dataset` does per image, without Beam.

    python bench/build_loop.py MANIFEST OUT_DIR --processes 1            # one process, one shard
    python bench/build_loop.py MANIFEST OUT_DIR --processes 2 --parts 8  # multiprocessing.Pool

Per manifest line (tab-separated path and label, the path relative to the manifest's folder): label check
(charset, CTC length <= 31 steps), read the image (at most max_bytes + 1 bytes), preprocess_word_image,
record id = hash of path and label, WordRecord.encode, TFRecord frame, write. With --processes P > 1 the
manifest is cut into --parts byte ranges (each line belongs to the range its first byte lies in, as in
ocr_core.manifest_bytes.range_lines: no process reads the whole file); a Pool of P processes takes the ranges
one at a time, and each process appends to its own TFRecord shard. Prints {"written", "rejected", ...} as
JSON.

Only numpy/cv2/ocr_core.{charset,preprocess,records} are imported (not Apache Beam): a plain loop's start-up.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the repo, not bench/

from ocr_core.charset import Charset, ctc_min_steps  # noqa: E402
from ocr_core.errors import InputError  # noqa: E402
from ocr_core.preprocess import PreprocessSpec, preprocess_word_image  # noqa: E402
from ocr_core.records import WordRecord, frame, record_id  # noqa: E402

SPEC = PreprocessSpec()
MAX_STEPS = 31  # the CRNN's CTC time steps at 32x128
_sink = None  # this process's shard file


def range_lines(fh, start: int, end: int):
    """The raw lines of binary `fh` whose first byte lies in [start, end)."""
    if start > 0:
        fh.seek(start - 1)
        if fh.read(1) != b"\n":
            fh.readline()  # the rest of a line that began before `start`: its range reads it
    while fh.tell() < end:
        raw = fh.readline()
        if not raw:
            return
        yield raw


def build_range(manifest: str, start: int, end: int, sink) -> tuple[int, int]:
    """Writes the records of the manifest lines in [start, end) to `sink`; (written, rejected)."""
    charset, base = Charset(), os.path.dirname(manifest)
    written = rejected = 0
    with open(manifest, "rb") as fh:
        for raw in range_lines(fh, start, end):
            path, label = raw.decode("utf-8").rstrip("\r\n").split("\t")
            source = os.path.normpath(os.path.join(base, path))
            try:
                if not label or charset.unknown(label):
                    raise InputError("bad_label", label)
                ids = charset.encode(label)
                if ctc_min_steps(ids) > MAX_STEPS:
                    raise InputError("label_too_long", label)
                with open(source, "rb") as img:
                    image, content_width = preprocess_word_image(img.read(SPEC.max_bytes + 1), SPEC)
            except (InputError, OSError, ValueError):
                rejected += 1
                continue
            record = WordRecord(record_id(source, label), source, image, content_width, label, ids)
            sink.write(frame(record.encode()))
            written += 1
    return written, rejected


def _open_shard(out_dir: str) -> None:
    global _sink
    index = multiprocessing.current_process()._identity[0]  # 1..P in a Pool
    _sink = open(os.path.join(out_dir, f"part-{index:05d}.tfrecord"), "ab")


def _task(args) -> tuple[int, int, int]:
    manifest, start, end = args
    written, rejected = build_range(manifest, start, end, _sink)
    _sink.flush()  # Pool workers leave through os._exit: nothing buffered may be left behind
    return written, rejected, os.getpid()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("manifest")
    parser.add_argument("out_dir")
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--parts", type=int, default=0, help="byte ranges (default 4 per process)")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    manifest = os.path.abspath(args.manifest)
    os.makedirs(args.out_dir, exist_ok=True)
    size = os.path.getsize(manifest)
    if args.processes <= 1:
        with open(os.path.join(args.out_dir, "part-00001.tfrecord"), "wb") as sink:
            written, rejected = build_range(manifest, 0, size, sink)
        print(json.dumps({"written": written, "rejected": rejected, "processes": 1, "ranges": 1,
                          "seconds_in_main": round(time.perf_counter() - t0, 2)}))
        return
    parts = args.parts or 4 * args.processes
    bounds = [size * i // parts for i in range(parts + 1)]
    tasks = [(manifest, bounds[i], bounds[i + 1]) for i in range(parts)]
    pool = multiprocessing.Pool(args.processes, initializer=_open_shard, initargs=(args.out_dir,))
    try:
        done = list(pool.imap_unordered(_task, tasks))
        pool.close()
    except BaseException:
        pool.terminate()
        raise
    finally:
        pool.join()  # reaped: their CPU time counts in this process's RUSAGE_CHILDREN
    print(json.dumps({"written": sum(d[0] for d in done), "rejected": sum(d[1] for d in done),
                      "processes": len({d[2] for d in done}), "ranges": parts,
                      "seconds_in_main": round(time.perf_counter() - t0, 2)}))


if __name__ == "__main__":
    main()
