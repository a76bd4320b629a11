"""The probe's tamper interface on a local file system, as the current process.

Each attempt does what an intruder (or a careless administrator) with this process's rights
would do to a sealed file, and lets the kernel answer:

* overwrite: write new bytes into the file in place; if that is refused, rename a new file
  over it (``os.replace``) -- a writable folder is enough for that, whatever the file's mode;
* set_metadata: ``chmod`` it writable and change its times (``utime``);
* set_tier: a file system has no access tiers (not applicable);
* delete: ``unlink`` it.

``PermissionError`` (EACCES from mode 0444 for ordinary users; EPERM from the immutable
attribute, even for root) becomes ``StorageRefused`` with the errno name as its code. Root
ignores mode bits, so without the immutable attribute root's attempts succeed -- which is
exactly what the probe must report.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from auditseal.errors import ObjectNotFound, StorageError, StorageRefused
from auditseal.storage.filesystem import FilesystemObjectStore


class FilesystemTamper:
    """``TamperTarget`` for a ``FilesystemObjectStore`` (see module docstring)."""

    def __init__(self, store: FilesystemObjectStore) -> None:
        """Tamper with files of ``store``."""
        self._store = store

    def overwrite(self, key: str, data: bytes) -> None:
        """Write in place; if refused, try to rename a new file over it."""
        path = self._existing(key)
        try:
            with path.open("r+b") as out:
                out.write(data)
                out.truncate()
        except OSError as exc:
            in_place = exc
        else:
            return
        if not isinstance(in_place, PermissionError):
            raise _error(key, "overwrite", in_place)
        temp = path.with_name(f".{path.name}.probe.tmp")  # a dot-name is never an object key
        try:
            temp.write_bytes(data)
            temp.replace(path)
        except OSError as exc:
            temp.unlink(missing_ok=True)
            if isinstance(exc, PermissionError):
                raise StorageRefused(
                    key, _errno_name(exc),
                    f"write in place: {in_place.strerror}; rename over it: {exc.strerror}",
                ) from exc
            raise _error(key, "overwrite (rename)", exc) from exc

    def delete(self, key: str) -> None:
        """Unlink the file."""
        path = self._existing(key)
        try:
            path.unlink()
        except OSError as exc:
            raise _error(key, "delete", exc) from exc

    def set_metadata(self, key: str) -> None:
        """Make the file writable and change its times."""
        path = self._existing(key)
        try:
            path.chmod(0o644)
            os.utime(path, (0, 0))
        except OSError as exc:
            raise _error(key, "change metadata", exc) from exc

    def set_tier(self, key: str) -> None:
        """Not applicable: files have no access tiers."""
        raise NotImplementedError("a local file system has no access tiers")

    def describe(self) -> str:
        """``filesystem <root> (as uid N)``."""
        return f"{self._store.describe()} (tampering as uid {os.geteuid()})"

    def _existing(self, key: str) -> Path:
        path = self._store.path(key)
        if not path.is_file():
            raise ObjectNotFound(key)
        return path


def _errno_name(exc: OSError) -> str:
    return errno.errorcode.get(exc.errno or 0, "EPERM")


def _error(key: str, action: str, exc: OSError) -> StorageError:
    if isinstance(exc, PermissionError):
        return StorageRefused(key, _errno_name(exc), f"{action}: {exc.strerror}")
    if isinstance(exc, FileNotFoundError):
        return ObjectNotFound(key)
    return StorageError(f"{key}: {action} failed: {exc}")
