"""One owner per run folder: a lock file that names the process training into it.

Two `unionpose train` runs on one `output` would interleave their checkpoints, models and metrics, and a `--resume`
of a live run would fork it. So a run holds `RUN_LOCK` in its folder for as long as it trains: an exclusive `flock`,
which the operating system drops when the process dies however it dies (kill -9 included), plus a JSON record of the
owner (pid, host, start time, command) for the message a second run gets. A lock file whose `flock` is free but whose
record names a process is the leftover of a run that died: it is taken over, with a message naming that process.
"""
from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import time
from pathlib import Path
from types import TracebackType

RUN_LOCK = ".unionpose-run.lock"


class RunLockedError(FileExistsError):
    """The run folder belongs to a live process."""


class RunLock:
    """`with RunLock(run_dir):` — own `run_dir` for the block, or raise `RunLockedError` naming its owner.

    `taken_over` holds the record of a dead owner whose stale lock was taken, else None.
    """

    def __init__(self, run_dir: str | Path) -> None:
        self.path = Path(run_dir) / RUN_LOCK
        self.descriptor: int | None = None
        self.taken_over: dict | None = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.release()

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                owner = _describe(_read_record(descriptor))
                os.close(descriptor)
                raise RunLockedError(f"{self.path.parent}: this run folder is in use by {owner}; wait for it to "
                                     "finish, or train into another output (output=...)") from None
            # The owner before us may have removed the file between our open and our flock: lock the file that is
            # there now, not an unlinked one.
            if _same_inode(descriptor, self.path):
                break
            os.close(descriptor)
        previous = _read_record(descriptor)
        if previous:
            self.taken_over = previous
            print(f"{self.path.parent}: took over the lock of {_describe(previous)}, which is no longer running",
                  file=sys.stderr)
        record = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%d %H:%M:%S"),
                  "command": " ".join(sys.argv)}
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, json.dumps(record).encode(), 0)
        os.fsync(descriptor)
        self.descriptor = descriptor

    def release(self) -> None:
        """Remove the lock file, then drop the lock (in this order, so nobody locks a file about to vanish)."""
        if self.descriptor is None:
            return
        self.path.unlink(missing_ok=True)
        os.close(self.descriptor)
        self.descriptor = None


def _same_inode(descriptor: int, path: Path) -> bool:
    try:
        return os.fstat(descriptor).st_ino == os.stat(path).st_ino
    except FileNotFoundError:
        return False


def _read_record(descriptor: int) -> dict:
    """The owner record in the lock file; {} when it is empty or unreadable (a run killed while writing it)."""
    try:
        record = json.loads(os.pread(descriptor, 1 << 16, 0).decode() or "{}")
    except (ValueError, UnicodeDecodeError):
        return {}
    return record if isinstance(record, dict) else {}


def _describe(record: dict) -> str:
    if not record:
        return "another process"
    where = f" on {record['host']}" if record.get("host") else ""
    since = f", started {record['started']}" if record.get("started") else ""
    command = f": {record['command']}" if record.get("command") else ""
    return f"process {record.get('pid', '?')}{where}{since}{command}"
