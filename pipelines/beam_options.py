"""Runner choice shared by the Beam jobs (`ocr build-dataset`, `ocr predict`).

Our flags `--runner direct|dask|<name>`, `--workers N` and `--dask_address HOST:PORT` become
`PipelineOptions`; every other flag passes through to Beam untouched (a passed-through Beam flag wins over
the defaults set here) if Beam's options parser knows it — `parse_job_args` refuses the rest, so a
misspelt job flag (`--val-fracton`) is an error instead of an option Beam drops with a warning.
`--runner dask` without an address starts a local `distributed` cluster for the run and the returned
cleanup closes it.

Known limits of Beam's DaskRunner (2.77) that the jobs are written around:
- only the last-applied leaf transform and its ancestors are computed, so a job must end in one sink that
  depends on everything else;
- every output of a multi-output ParDo reaches each consumer, so tagged outputs are re-filtered by type;
- Reshuffle is a no-op and parallelism comes from `Create` partitions (`--dask_npartitions`, set to
  `--workers` here) carried through every GroupByKey;
- `result.metrics()` is not implemented: jobs must not rely on metrics for their results.
"""
from __future__ import annotations

import argparse
import logging
import os
import re
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

from apache_beam.options.pipeline_options import PipelineOptions

from ocr_core.errors import JobFailed
from pipelines.flags import positive_int

DIRECT_RUNNER = "DirectRunner"
DASK_RUNNER = "apache_beam.runners.dask.dask_runner.DaskRunner"
RUNNER_ALIASES = {
    "direct": DIRECT_RUNNER,
    "dask": DASK_RUNNER,
    "dataflow": "DataflowRunner",
    "flink": "FlinkRunner",
    "spark": "SparkRunner",
    "portable": "PortableRunner",
}


def add_runner_arguments(parser: argparse.ArgumentParser, default_workers: int = 2) -> None:
    """Adds --runner, --workers and --dask_address to a job's argument parser."""
    g = parser.add_argument_group("runner")
    g.add_argument("--runner", default="direct",
                   help="direct (default: DirectRunner, multi_processing), dask, dataflow, flink, spark, "
                        "portable, or a fully qualified runner class name")
    g.add_argument("--workers", type=positive_int, default=default_workers,
                   help="worker processes for the direct runner (--direct_num_workers) and for the local "
                        "Dask cluster started when --runner dask has no --dask_address (default %(default)s)")
    g.add_argument("--dask_address", default=None,
                   help="HOST:PORT of a running Dask scheduler (--runner dask); without it a local "
                        "cluster of --workers processes is started for the run")


def _beam_options_parser() -> argparse.ArgumentParser:
    """A parser of every option Beam's PipelineOptions classes define (what `get_all_options` builds)."""
    from apache_beam.options.pipeline_options import _BeamArgumentParser

    class Parser(_BeamArgumentParser):
        def error(self, message):
            raise ValueError(message)

    parser = Parser(allow_abbrev=False, add_help=False)
    # As Beam does: one class per name (a class can be defined twice in a main session).
    for cls in {str(c): c for c in PipelineOptions.__subclasses__()}.values():
        cls._add_argparse_args(parser)  # Beam's own way to enumerate its options
    return parser


def unknown_beam_args(beam_args: list[str], runner: str = "direct") -> list[str]:
    """The arguments among `beam_args` that no Beam PipelineOptions class accepts (ValueError for a known
    option with a bad value)."""
    if runner_name(runner) == DASK_RUNNER:
        import apache_beam.runners.dask.dask_runner  # noqa: F401  -- defines DaskOptions (--dask_*)
    return _beam_options_parser().parse_known_args(beam_args)[1]


def parse_job_args(parser: argparse.ArgumentParser, argv) -> tuple[argparse.Namespace, list[str]]:
    """`parser.parse_known_args`, then the leftovers must be Beam options: else one line and exit 2.

    Returns:
        (the job's arguments, the Beam flags to hand to `pipeline_options`).
    """
    args, beam_args = parser.parse_known_args(argv)
    try:
        unknown = unknown_beam_args(beam_args, args.runner)
    except ValueError as e:
        parser.exit(2, f"{parser.prog}: error: Beam option: {e}\n")
    if unknown:
        parser.exit(2, f"{parser.prog}: error: unrecognized arguments: {' '.join(unknown)} (not an option of "
                       f"{parser.prog} nor of Beam's PipelineOptions; see --help)\n")
    return args, beam_args


def runner_name(runner: str) -> str:
    """The Beam runner name for one of our aliases (or the name itself)."""
    return RUNNER_ALIASES.get(runner.lower(), runner)


def limit_worker_blas_threads() -> None:
    """Makes worker processes started from here use one BLAS thread (unless OPENBLAS_NUM_THREADS is set).

    Beam workers are data-parallel processes; OpenBLAS adding a thread per core on top oversubscribes the
    CPUs, and the small matrix products of `preprocess_word_image` then run ~10x slower (7 ms instead of
    0.7 ms per image on a busy 2-core machine). Spawned workers (DirectRunner multi_processing, a
    LocalCluster started here) inherit this environment; this process's numpy is already loaded and keeps
    its setting.
    """
    for var in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")


def verbose() -> bool:
    """Whether the user asked for everything on stderr (`ocr --verbose`, which sets OCR_VERBOSE=1)."""
    return os.environ.get("OCR_VERBOSE", "") not in ("", "0")


class WorkerDied(JobFailed):
    """A worker process of the DirectRunner ended abnormally (killed, aborted): the job failed, nothing was
    published. The message is one line; the worker's own last words, if it wrote any, are on stderr above."""


_WORKER_EXIT = re.compile(r"Worker subprocess exited with return code (-?\d+)")
# Beam loggers that print the launcher's side of a dead worker's broken gRPC channel as tracebacks.
_CHANNEL_LOGGERS = ("apache_beam.runners.worker.data_plane",
                    "apache_beam.runners.portability.fn_api_runner.worker_handlers")


_WORKER_MODULE = b"apache_beam.runners.worker.sdk_worker_main"


def worker_processes(marker: bytes = _WORKER_MODULE) -> list[int]:
    """The processes below this one whose command line holds `marker` and that have no such process below
    them (from /proc; none where it is missing). A DirectRunner worker runs as `sh -c "python -m
    ...sdk_worker_main"`: this finds the python process, whose end the shell then reports as Beam expects."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # the command name in (...) may hold spaces and parentheses: the parent pid follows the last ')'
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            pass
    below = {os.getpid()}
    grown = True
    while grown:
        more = {pid for pid, parent in parents.items() if parent in below} - below
        below |= more
        grown = bool(more)
    below.discard(os.getpid())
    matched = set()
    for pid in below:
        try:
            if marker in Path(f"/proc/{pid}/cmdline").read_bytes():
                matched.add(pid)
        except OSError:
            pass
    return sorted(pid for pid in matched if not any(parents.get(other) == pid for other in matched))


def describe_exit(code: int) -> str:
    """`exit code 137 (signal 9, SIGKILL: ...)`: the worker runs under `sh -c`, so a signal N is 128 + N."""
    sig = code - 128 if code > 128 else -code if code < 0 else 0
    if not sig:
        return f"exit code {code}"
    try:
        name = signal.Signals(sig).name
    except ValueError:
        name = f"signal {sig}"
    why = {"SIGKILL": "killed, e.g. by the kernel's out-of-memory killer",
           "SIGABRT": "aborted by a native library",
           "SIGSEGV": "a crash in native code"}.get(name, "")
    return f"exit code {code} (signal {sig}, {name}" + (f": {why})" if why else ")")


class WorkerWatch:
    """Collects the deaths of DirectRunner worker processes during one run.

    Beam reports a dead worker as a RuntimeError in one of its own threads, while the main thread fails later
    with "Channel closed prematurely" and a page of gRPC tracebacks that never say which worker died or how.
    During the run this hook keeps those thread exceptions (and the two Beam loggers of the broken channel)
    back; `verdict` then turns a death into one WorkerDied line, and replays what it held back otherwise
    (with `ocr --verbose`; without, the run's own failure is the CLI's one line).

    After a death the runner's shutdown can also wait forever: it joins the thread of every other worker, and
    a surviving worker does not always leave when its control channel closes (1 run in 5 on 2 cores). So if
    `verdict` has not been reached `grace` seconds after a death, the surviving workers (`worker_processes`)
    are ended: SIGTERM, then SIGKILL `grace` seconds later. The job has failed by then; those workers could
    only finish bundles nobody will publish.
    """

    def __init__(self, grace: float = 5.0, marker: bytes = _WORKER_MODULE):
        self.codes: list[int] = []
        self._held: list = []
        self._running = True
        self._grace = grace
        self._marker = marker
        self._ended = threading.Event()
        self._previous = threading.excepthook
        self._levels = {name: logging.getLogger(name).level for name in _CHANNEL_LOGGERS}
        threading.excepthook = self._hook
        for name in _CHANNEL_LOGGERS:
            logging.getLogger(name).setLevel(logging.CRITICAL)
        # A process started in the background by a shell without job control (`cmd &` in a script, as CI
        # runners do) inherits SIGINT ignored, and the interrupt `_hook` sends would then do nothing: the run
        # hung after a worker died. For the run, SIGINT raises KeyboardInterrupt again.
        self._sigint = None
        if (threading.current_thread() is threading.main_thread()
                and signal.getsignal(signal.SIGINT) is signal.SIG_IGN):
            self._sigint = signal.signal(signal.SIGINT, signal.default_int_handler)

    def _hook(self, args) -> None:
        found = _WORKER_EXIT.search(str(args.exc_value))
        if not found:
            self._held.append(args)
            return
        self.codes.append(int(found.group(1)))
        if self._running:
            # The runner does not always notice: about every other time it waits forever for the dead worker's
            # bundle. Interrupt the main thread; `verdict` turns that into WorkerDied.
            self._running = False
            # a real SIGINT to the main thread: it also wakes a blocking wait (interrupt_main would not)
            signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)
            threading.Thread(target=self._end_survivors, name="ocr-worker-reaper", daemon=True).start()

    def _end_survivors(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            if self._ended.wait(self._grace):
                return
            for pid in worker_processes(self._marker):
                try:
                    os.kill(pid, sig)
                except OSError:  # it left meanwhile
                    pass

    def verdict(self, failed: bool) -> None:
        """Ends the watch. Raises WorkerDied when a worker died (after a failed run, the dead worker's thread
        may report a moment after the main thread: wait up to 2 s for it). Call it from the `finally` of the
        run: a death interrupts the main thread with KeyboardInterrupt, which this replaces."""
        self._running = False
        self._ended.set()
        deadline = time.monotonic() + (2.0 if failed else 0.0)
        while failed and not self.codes and time.monotonic() < deadline:
            time.sleep(0.05)
        threading.excepthook = self._previous
        if self._sigint is not None and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, self._sigint)
        for name, level in self._levels.items():
            logging.getLogger(name).setLevel(level)
        if self.codes:
            raise WorkerDied(f"a Beam worker process died ({describe_exit(self.codes[0])}); the job failed "
                             "and published nothing")
        if failed and verbose():  # else the CLI shows the run's failure as one line
            for args in self._held:
                self._previous(args)


def _has_flag(beam_args: list[str], *names: str) -> bool:
    return any(a == n or a.startswith(n + "=") for a in beam_args for n in names)


def pipeline_options(beam_args: list[str], runner: str = "direct", workers: int = 2,
                     dask_address: str | None = None
                     ) -> tuple[PipelineOptions, Callable[..., None]]:
    """Builds the PipelineOptions of a job run, starting a local Dask cluster when needed.

    Args:
        beam_args: the flags the job itself did not parse (passed to Beam as they are).
        runner: an alias from RUNNER_ALIASES or a runner (class) name.
        workers: worker processes for the DirectRunner / the local Dask cluster (>= 1).
        dask_address: scheduler address for the Dask runner; None starts a LocalCluster.

    Returns:
        (options, cleanup). Call `cleanup(result)` when the run has finished (also on failure, with
        `result=None`): it closes the Dask client the runner opened and the cluster started here.
    """
    if workers < 1:
        raise ValueError(f"--workers must be >= 1, got {workers}")
    name = runner_name(runner)
    if dask_address is not None and name != DASK_RUNNER:
        raise ValueError(f"--dask_address needs --runner dask (runner is {name})")
    args = [f"--runner={name}"]
    cluster = None
    if name == DIRECT_RUNNER or (name == DASK_RUNNER and dask_address is None):
        limit_worker_blas_threads()
    if name == DIRECT_RUNNER:
        if not _has_flag(beam_args, "--direct_running_mode"):
            args.append("--direct_running_mode=" + ("multi_processing" if workers > 1 else "in_memory"))
        if not _has_flag(beam_args, "--direct_num_workers"):
            args.append(f"--direct_num_workers={workers}")
        if not _has_flag(beam_args, "--default_sdk_harness_log_level"):
            # The worker processes otherwise print ~35 INFO lines of gRPC set-up per job into the console, and
            # at WARNING each still repeats Beam-internal notices (unparseable internal args, no
            # semi_persistent_directory, ...) twice. A failing worker still raises in this process, where the
            # CLI shows it as one line; the workers' own copies of that trace (their ERROR logs, relayed again
            # by the launcher's job service) only with `ocr --verbose`.
            args.append("--default_sdk_harness_log_level=" + ("ERROR" if verbose() else "CRITICAL"))
            if not verbose():
                logging.getLogger("apache_beam.runners.portability.local_job_service").setLevel(logging.CRITICAL)
    elif name == DASK_RUNNER:
        address = dask_address
        if address is None and not _has_flag(beam_args, "--dask_client_address", "--dask_scheduler_file"):
            from distributed import LocalCluster

            cluster = LocalCluster(n_workers=workers, processes=True, threads_per_worker=1,
                                   dashboard_address=None, silence_logs=logging.ERROR)
            address = cluster.scheduler_address
        if address is not None:
            args.append(f"--dask_client_address={address}")
        if not _has_flag(beam_args, "--dask_npartitions", "--dask_partition_size"):
            args.append(f"--dask_npartitions={workers}")

    watch = WorkerWatch() if name == DIRECT_RUNNER else None

    def cleanup(result=None) -> None:
        """Closes what the run opened; raises WorkerDied when a DirectRunner worker died during the run."""
        try:
            _close_dask(result)
        finally:
            if watch is not None:
                watch.verdict(failed=result is None)

    def _close_dask(result) -> None:
        client = getattr(result, "client", None)  # DaskRunnerResult keeps the client it opened
        if client is None and cluster is not None:  # the run failed before returning its result
            from distributed import Client

            try:
                client = Client.current()
            except ValueError:
                client = None
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()

    return PipelineOptions(args + list(beam_args)), cleanup
