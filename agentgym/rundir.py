"""The run directory's guard rails: one trainer at a time, and file-system errors a user
can act on.

``RunDirLock`` holds an exclusive ``flock`` on ``RUN_DIR/trainer.lock`` for a trainer's
whole life (the kernel drops it when the process dies, ``kill -9`` included, so a stale
lock never blocks a restart); the file records the holder's PID for the message a
second trainer gets. ``filesystem_error`` turns the OS and SQLite errors of a full
disk, a read-only directory or a path through a file into one line saying what to do.
"""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
import sqlite3
from pathlib import Path

from agentgym.errors import AgentGymError

LOCK_NAME = "trainer.lock"


class RunDirInUse(AgentGymError):
    """Another live trainer holds the run directory."""


class RunDirLock:
    """``with RunDirLock(run_dir):`` (or ``.acquire()`` / ``.release()``)."""

    def __init__(self, run_dir: str | Path):
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> RunDirLock:
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            friendly = filesystem_error(exc, "the run directory (logging.run_dir)")
            if friendly is None:
                raise
            raise friendly from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise RunDirInUse(f"{self.run_dir} is in use by another trainer (PID {holder}); "
                              "wait for it to finish or stop it, or set another "
                              "logging.run_dir") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return self

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)          # closing drops the flock

    def __enter__(self) -> RunDirLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


_NO_SPACE = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
_READ_ONLY = (errno.EROFS, errno.EACCES, errno.EPERM)
_NOT_A_DIRECTORY = (errno.ENOTDIR, errno.EEXIST)


def filesystem_error(exc: BaseException, what: str, path: str | Path | None = None) -> AgentGymError | None:
    """One line for a full disk, a read-only place or a path through a file while writing
    ``what``; None for any other error (let it surface as it is)."""
    where = path or getattr(exc, "filename", None) or ""
    code = getattr(exc, "errno", None)
    text = str(exc).lower()
    if code in _NO_SPACE or "disk is full" in text or "no space left" in text:
        free = _free_mb(where)
        return AgentGymError(f"no space left writing {what} at {where}{free}: free some "
                             "space (or move logging.run_dir to another disk), then continue "
                             "with `agentgym train --resume RUN_DIR`")
    if code in _READ_ONLY or "readonly database" in text or "read-only" in text:
        return AgentGymError(f"cannot write {what} at {where}: "
                             f"{os.strerror(code) if code else 'read-only'}; choose a writable "
                             "logging.run_dir or fix its permissions")
    if code in _NOT_A_DIRECTORY:
        return AgentGymError(f"cannot create {what} at {where}: part of that path is a file, "
                             "not a directory; choose another logging.run_dir")
    if isinstance(exc, sqlite3.DatabaseError) and ("malformed" in text or "not a database" in text):
        return AgentGymError(f"the episode store {where} is damaged ({exc}); restore it from a "
                             "copy, or start a new run in another logging.run_dir")
    return None


def _free_mb(path: str | Path) -> str:
    probe = Path(path) if path else Path.cwd()
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        return f" ({shutil.disk_usage(probe).free / 2**20:.1f} MiB free)"
    except OSError:
        return ""
