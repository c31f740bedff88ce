"""Making a job's output visible: the one staging and publish lifecycle for every output that has a commit
marker (a dataset's manifest.json, a predictions table's _SUCCESS.json, a watch window's).

A job writes everything into its own staging directory, `OUT/_staging/<job id>/` (`staging`: created with an
owner file naming the job, host and process, and removed when the job ends, however it ends; the staging
folders of jobs that died on this host are what `dead_stagings` lists, swept by the next publish), then
`publish`:
1. takes the output's publish lock (`OUT/_publish.lock`);
2. checks the precondition: the marker is still the generation the job started from (`generation`: a hash
   of its bytes, None when absent) — otherwise another job published meanwhile, and this one publishes
   nothing (`PublishConflict`);
3. if it removes anything the current marker describes, takes the marker down first (the old output stops
   looking complete), then removes those paths;
4. moves the staged files into place, then writes the new marker (a temporary file renamed over it): last;
5. releases the lock and deletes the staging directory.

The lock: for local paths an `fcntl.flock` on the lock file, which a killed process releases by dying (no
stale locks). Remote (object stores): a check-then-create lock file (`fs.create_exclusive`), because neither
Beam's FileSystems nor tf.io.gfile offers a conditional write; two publishes within that window can both
proceed. A remote lock left by a killed publish names itself in the error.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import time
import uuid
from collections.abc import Iterator

from ocr_core import fs
from ocr_core.errors import UsageError

LOCK = "_publish.lock"
STAGING_DIR = "_staging"  # one folder per job: _staging/<job id>
OWNER_FILE = "_owner.json"


class PublishConflict(UsageError):
    """Another job published into the same output, or is publishing now: this one published nothing."""


class OutputError(UsageError):
    """An output that cannot be written: a file where a directory must be, a folder that cannot be made."""


def new_job_id() -> str:
    """A job's id: its UTC start time and 12 random hex digits (sorts by time, unique across hosts)."""
    return f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{uuid.uuid4().hex[:12]}"


def check_output_dir(out: str, flag: str = "--output") -> None:
    """Refuses an output that exists as a file (a directory is needed)."""
    if not fs.is_remote(out) and os.path.exists(out) and not os.path.isdir(out):
        raise OutputError(f"{flag} {out}: is a file, not a directory; choose another {flag}")


@contextlib.contextmanager
def staging(out: str, job_id: str, flag: str = "--output") -> Iterator[str]:
    """This job's staging folder `out`/_staging/<job id> (with its owner file) for the block; removed at the
    end whatever happened (`publish` has moved a published job's files out of it), and `_staging` with it
    when no other job stages there."""
    check_output_dir(out, flag)
    folder = fs.join(out, STAGING_DIR, job_id)
    try:
        fs.makedirs(out)
        fs.write_text(fs.join(folder, OWNER_FILE), json.dumps(owner(job_id)))
    except OSError as e:
        raise OutputError(f"{flag} {out}: cannot create the directory ({e.strerror or e})") from e
    try:
        yield folder
    finally:
        fs.remove(folder)
        if not fs.is_remote(out):
            with contextlib.suppress(OSError):
                os.rmdir(fs.join(out, STAGING_DIR))


def dead_stagings(out: str) -> list[str]:
    """Staging folders (relative to `out`) of jobs whose process has died on this host (killed jobs)."""
    dead = []
    for owner_file in fs.glob(fs.join(out, STAGING_DIR, "*", OWNER_FILE)):
        try:
            holder = json.loads(fs.read_text(owner_file))
        except (OSError, ValueError):
            continue
        if is_alive(holder) is False:
            dead.append(f"{STAGING_DIR}/{holder['job']}")
    return dead


def generation_of(data: bytes) -> str:
    """The generation of a marker's content (what a publish compares)."""
    return hashlib.sha256(data).hexdigest()


def generation(path: str) -> str | None:
    """The generation of the marker file at `path`, None when there is none."""
    if not fs.exists(path):
        return None
    with fs.open_binary(path) as fh:
        return generation_of(fh.read())


def owner(job_id: str) -> dict:
    """Who holds a lock or a staging directory: the job, host and process."""
    return {"job": job_id, "host": socket.gethostname(), "pid": os.getpid(),
            "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def is_alive(holder: dict) -> bool | None:
    """Whether the process of `holder` still runs: True/False on this host, None (unknown) elsewhere."""
    if holder.get("host") != socket.gethostname():
        return None
    try:
        os.kill(int(holder["pid"]), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, KeyError, ValueError, TypeError):
        return True  # exists (another user's), or unreadable: assume it runs
    return True


@contextlib.contextmanager
def output_lock(out: str, job_id: str, kind: str = "job", lock: str = LOCK) -> Iterator[None]:
    """Holds `out`/`lock` (default _publish.lock) for the block; PublishConflict when another job holds it."""
    path = fs.join(out, lock)
    if fs.is_remote(out):
        if not fs.create_exclusive(path, json.dumps(owner(job_id))):
            raise PublishConflict(f"{out}: another {kind} is publishing into it (lock {path}; if none is "
                                  "running, a killed publish left it: remove it)")
        try:
            yield
        finally:
            fs.remove(path)
        return
    import fcntl

    fs.makedirs(out)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise PublishConflict(f"{out}: another {kind} is publishing into it now; this {kind} "
                                  "published nothing") from None
        try:  # the previous holder may have removed the file between our open and our lock
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        os.write(fd, json.dumps(owner(job_id)).encode())
        yield
    finally:
        os.unlink(path)  # while still locked, so no one locks a file that is about to go
        os.close(fd)


def publish(out: str, staging: str, files: dict[str, str], marker: str, text: str, *, job_id: str,
            expected: str | None, replace: list[str] = (), stale: list[str] = (), kind: str = "job") -> None:
    """Moves a job's staged files into `out` and writes its commit marker last (the rule above).

    Args:
        out: the output directory.
        staging: this job's staging directory (deleted at the end, also after a conflict).
        files: staged path (relative to `staging`) -> final path (relative to `out`).
        marker: the marker's name in `out`; `text` its new content.
        job_id: this job, named in the lock.
        kind: what a job is called in messages ("build").
        expected: the marker's generation when the job started (None: there was none).
        replace: paths in `out` the current marker describes and this publish removes (an overwrite).
        stale: paths in `out` no marker describes (left by an interrupted publish), removed first.

    Raises:
        PublishConflict: another job published (the marker changed) or is publishing.
    """
    marker_path = fs.join(out, marker)
    try:
        with output_lock(out, job_id, kind):
            current = generation(marker_path)
            if current != expected:
                raise PublishConflict(f"{out}: another {kind} published into it while this one ran; this "
                                      f"{kind} published nothing")
            if replace and current is not None:
                fs.remove(marker_path)
            for path in (*replace, *stale):
                fs.remove(fs.join(out, path))
            for src, dest in files.items():
                dest = fs.join(out, dest)
                if not fs.is_remote(dest):
                    fs.makedirs(os.path.dirname(dest))
                fs.rename(fs.join(staging, src), dest)
            tmp = fs.join(out, f".{marker}.{uuid.uuid4().hex}.tmp")
            fs.write_text(tmp, text)
            fs.rename(tmp, marker_path)
    finally:
        fs.remove(staging)
