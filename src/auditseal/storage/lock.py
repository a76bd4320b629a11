"""The writer lock: one writer per log, enforced with an exclusive ``flock``.

A log has exactly one writer: it keeps the tree's right edge in memory, and two writers
would seal conflicting tiles and checkpoints. ``WriterLock`` takes a non-blocking
exclusive ``flock(2)`` on ``<log>/.auditseal/lock`` and records the holder's pid in it, so
a second writer fails at once with a message naming the holder instead of corrupting the
log. flock belongs to the open file description and is released by the kernel when the
process dies, so a crash never leaves a stale lock.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType

from auditseal.errors import LogLocked
from auditseal.storage.filesystem import STATE_DIR

__all__ = ["WriterLock"]


class WriterLock:
    """Exclusive, non-blocking ``flock`` that keeps a second writer off a log.

    Each ``__enter__`` opens a fresh descriptor. flock belongs to the open file
    description, so a second WriterLock on the same file fails even in the same process,
    and the lock dies with the process that holds it (no stale lock after a crash).

    Raises:
        LogLocked: from ``__enter__``, when someone else holds the lock.
    """

    def __init__(self, path: Path) -> None:
        """Use ``path`` (e.g. ``<log>/.auditseal/lock``) as the lock file."""
        self.path = Path(path)
        self._fd: int | None = None

    def __enter__(self) -> WriterLock:
        """Take the lock and record our pid in it."""
        if self._fd is not None:
            raise RuntimeError(f"WriterLock {self.path} is already held by this object")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            folder = self.path.parent
            log = folder.parent if folder.name == STATE_DIR else folder
            raise LogLocked(
                f"log {log} is locked by another writer (pid {holder}); stop that process "
                f"or wait for it to finish (lock file {self.path})"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Release the lock."""
        if self._fd is not None:
            os.ftruncate(self._fd, 0)  # no stale pid for the next reader of the file
            os.close(self._fd)
            self._fd = None
