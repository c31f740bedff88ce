"""bench/memory.py --where: put this folder on PYTHONPATH (with OCR_MEMTRACE_DIR set) and every Python process
of the job (the launcher, each Beam SDK worker) runs tracemalloc and, each time its RSS passes its previous
peak by 5 %, writes the top allocation sites to OCR_MEMTRACE_DIR/<role>-<pid>.json. Nothing without the
variable."""
import os

if os.environ.get("OCR_MEMTRACE_DIR"):
    import json
    import sys
    import threading
    import time
    import tracemalloc

    def _rss() -> int:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def _buffers() -> dict:
        """The FnApiRunner's buffers between stages alive here (the launcher): ListBuffers hold encoded
        bytes; GroupingBuffers decoded values per key until they are partitioned, then encoded bytes."""
        execution = sys.modules.get("apache_beam.runners.portability.fn_api_runner.execution")
        if execution is None:
            return {}
        import gc

        out = {"list_buffer_mb": 0.0, "grouping_values": 0, "grouping_values_shallow_mb": 0.0,
               "grouping_encoded_mb": 0.0}
        for obj in gc.get_objects():
            if isinstance(obj, execution.ListBuffer):
                out["list_buffer_mb"] += sum(len(b) for b in obj._inputs) / 2**20
            elif isinstance(obj, execution.GroupingBuffer):
                for values in obj._table.values():
                    out["grouping_values"] += len(values)
                    out["grouping_values_shallow_mb"] += sum(sys.getsizeof(v) for v in values) / 2**20
                for part in obj._grouped_output or []:
                    out["grouping_encoded_mb"] += sum(len(b) for b in part) / 2**20
        return {k: round(v, 1) for k, v in out.items()}

    def _watch(path: str) -> None:
        best, t0 = 0, time.monotonic()
        while True:
            time.sleep(1.0)
            rss = _rss()
            if rss <= best * 1.05:
                continue
            best = rss
            snap = tracemalloc.take_snapshot()
            snap = snap.filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)])
            traced = tracemalloc.get_traced_memory()
            report = {"pid": os.getpid(), "cmd": _cmd.replace("\0", " ")[:200],
                      "t": round(time.monotonic() - t0, 1),
                      "rss_mb": round(rss / 2**20), "traced_mb": round(traced[0] / 2**20),
                      "traced_peak_mb": round(traced[1] / 2**20),
                      "buffers": _buffers(),
                      "top": [{"mb": round(s.size / 2**20, 2), "blocks": s.count, "site": str(s.traceback[0])}
                              for s in snap.statistics("lineno")[:15]],
                      "stacks": [{"mb": round(s.size / 2**20, 2), "frames": [str(f) for f in s.traceback]}
                                 for s in snap.statistics("traceback")[:5]]}
            with open(path + ".tmp", "w") as fh:
                json.dump(report, fh, indent=1)
            os.replace(path + ".tmp", path)

    with open("/proc/self/cmdline", "rb") as fh:  # sys.argv lacks the -m module this early
        _cmd = fh.read().decode(errors="replace")
    role = "worker" if "sdk_worker_main" in _cmd else "launcher"
    if role == "worker" or "pipelines.cli" in _cmd or "--inner-where" in _cmd:
        tracemalloc.start(8)
        out = os.path.join(os.environ["OCR_MEMTRACE_DIR"], f"{role}-{os.getpid()}.json")
        threading.Thread(target=_watch, args=(out,), name="ocr-memtrace", daemon=True).start()
