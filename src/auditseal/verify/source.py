"""Where the verifier reads a log from: a narrow read-only view of a tlog-tiles tree."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from auditseal.errors import ObjectNotFound


class LogSource(Protocol):
    """Read access to a log's objects; every storage backend's store satisfies it."""

    def read(self, key: str) -> bytes:
        """Return the object's bytes or raise ObjectNotFound."""
        ...

    def list(self, prefix: str = "") -> list[str]:
        """Return the keys under ``prefix``, sorted."""
        ...


class DirectorySource:
    """A log directory (or a copy of one) on the local file system, read-only."""

    def __init__(self, root: Path) -> None:
        """Read the tree under ``root``."""
        self.root = root

    def read(self, key: str) -> bytes:
        """Return the file's bytes or raise ObjectNotFound."""
        try:
            return (self.root / key).read_bytes()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise ObjectNotFound(key) from None

    def list(self, prefix: str = "") -> list[str]:
        """Every file under ``prefix`` as a '/'-separated key, skipping private state."""
        base = self.root / prefix if prefix else self.root
        if base.is_file():
            return [prefix]
        if not base.is_dir():
            return []
        keys = []
        for path in base.rglob("*"):
            relative = path.relative_to(self.root).as_posix()
            if relative.startswith(".") or "/." in relative or not path.is_file():
                continue
            keys.append(relative)
        return sorted(keys)
