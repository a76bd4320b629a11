"""Durability primitives for local files: exclusive create + fsync, directory fsync, syncfs.

Kept apart from the object store so the rules for "durable when this returns" live in one
place: a file's content is flushed before its name can appear, and a name is durable once
its directory (or the whole file system) is synced.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import secrets
from collections.abc import Callable
from pathlib import Path


def write_new(path: Path, data: bytes, mode: int, *, fsync: bool) -> None:
    """Write a file that must not exist yet; removed again if anything fails."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    try:
        os.fchmod(fd, mode)  # whatever the umask
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        if fsync:
            os.fsync(fd)
    except BaseException:
        os.close(fd)
        path.unlink(missing_ok=True)
        raise
    os.close(fd)


def replace_file(path: Path, data: bytes, *, fsync: bool = True) -> None:
    """Replace ``path``'s content atomically: readers see the old bytes or the new ones.

    A temporary file beside it is written (and fsynced), renamed over ``path``, and the
    folder fsynced; a failure leaves ``path`` as it was and no temporary file behind.
    """
    temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        write_new(temp, data, 0o644, fsync=fsync)
        temp.replace(path)
    finally:
        temp.unlink(missing_ok=True)
    if fsync:
        fsync_dir(path.parent)


def _load_syncfs() -> Callable[[int], int] | None:
    """glibc's syncfs(2): flush one file system's dirty data and metadata in one call."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        function: Callable[[int], int] = libc.syncfs
    except (OSError, AttributeError):
        return None
    return function


SYNCFS = _load_syncfs()
"""syncfs(2) where libc has it, else None."""


def sync_filesystem(folder: Path) -> None:
    assert SYNCFS is not None
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        if SYNCFS(fd) != 0:
            code = ctypes.get_errno()
            raise OSError(code, f"syncfs: {os.strerror(code)}")
    finally:
        os.close(fd)


def fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
