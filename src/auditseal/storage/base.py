"""The storage Protocol: write-once objects plus one compare-and-swap head.

C2SP tlog-tiles (https://c2sp.org/tlog-tiles) lays a log out so that every object -- hash
tiles, entry bundles, and here the history of checkpoints -- is written exactly once and
never changed; only the latest checkpoint (the "head") moves. The storage interface is
shaped by that layout and kept small on purpose (as in Trillian Tessera):

* ``ObjectStore``: read, create-if-absent (idempotent for identical bytes, a conflict for
  different ones), and nothing that overwrites or deletes. So the same log can live in a
  container under a locked WORM (write-once, read-many) retention policy.
* ``HeadStore``: the one mutable pointer, moved by compare-and-swap. It is kept apart from
  the objects so that it can live in storage that is not WORM.

A method is added here only when a real backend needs it; ``create_many`` exists because
group commit needs one durability barrier per batch, not one per object.

Keys are '/'-separated relative paths ("tile/0/x001/234", "checkpoints/00000000000000000512").
``validate_key`` is the one rule every backend applies, so a key that is safe on one
backend is safe on all of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from auditseal.errors import FormatError

# Azure Blob names are at most 1,024 characters; holding every backend to the smallest
# limit keeps a log movable between backends.
MAX_KEY_LENGTH = 1024


@dataclass(frozen=True)
class Head:
    """The current head and the version token to pass back to ``HeadStore.swap``.

    Attributes:
        data: the head's bytes (a signed checkpoint note).
        version: opaque token naming this state of the head (a hash, generation or ETag).
    """

    data: bytes
    version: str


@dataclass(frozen=True)
class ObjectProtection:
    """What protects one stored object against change, as far as the backend can tell.

    Attributes:
        read_only: the object cannot be written through ordinary permissions (file mode
            0444, a WORM policy). Root or the account owner may still be able to.
        immutable_attr: a file system immutable attribute is set (True), is not set (False),
            or cannot be known or is not supported here (None).
        detail: one line for a human, e.g. "mode 0444; immutable attribute set".
    """

    read_only: bool
    immutable_attr: bool | None
    detail: str


@runtime_checkable
class ObjectStore(Protocol):
    """Write-once objects: created once, read many times, never overwritten or deleted."""

    def read(self, key: str) -> bytes:
        """Return the object's bytes.

        Raises:
            ObjectNotFound: no object has this key.
            FormatError: the key is unsafe (see ``validate_key``).
        """
        ...

    def create(self, key: str, data: bytes) -> bool:
        """Create the object unless it exists; durable when this returns.

        Returns:
            True if this call created it; False if it already held exactly ``data``
            (so retrying a write after a crash is harmless).

        Raises:
            StorageConflict: the key holds different bytes (reason "exists with different
                content"). Nothing is overwritten.
            FormatError: the key is unsafe.
        """
        ...

    def create_many(self, items: Sequence[tuple[str, bytes]]) -> list[bool]:
        """Create several objects behind one durability barrier (group commit).

        Every key is validated before anything is written. Then each item is created as
        by ``create``; a conflicting item does not stop the others. When this returns,
        every created object is durable.

        Returns:
            One bool per item, as ``create`` returns.

        Raises:
            StorageConflict: naming the first conflicting key, raised after every
                non-conflicting item has been created and made durable.
            FormatError: some key is unsafe; nothing was written.
        """
        ...

    def exists(self, key: str) -> bool:
        """Whether an object has this key."""
        ...

    def list(self, prefix: str = "") -> list[str]:
        """Every key that starts with ``prefix`` (a plain string prefix), sorted."""
        ...

    def protection(self, key: str) -> ObjectProtection:
        """What protects this object against change.

        Raises:
            ObjectNotFound: no object has this key.
        """
        ...

    def describe(self) -> str:
        """Where the objects live, for humans ("filesystem /var/log/audit")."""
        ...


@runtime_checkable
class HeadStore(Protocol):
    """The one mutable pointer of a log, moved only by compare-and-swap."""

    def load(self) -> Head | None:
        """The current head, or None when none was ever written."""
        ...

    def swap(self, data: bytes, expected: str | None) -> str:
        """Replace the head if it is still the one the caller read.

        Args:
            data: the new head.
            expected: version of the head the caller read; None when it must not exist yet.

        Returns:
            The version token of the new head.

        Raises:
            StorageConflict: the head is no longer ``expected`` (reason "head changed
                concurrently"); nothing was written.
        """
        ...

    def describe(self) -> str:
        """Where the head lives, for humans."""
        ...


def validate_key(key: str) -> str:
    """Check that ``key`` is a safe relative object key and return it unchanged.

    A key is 1 to ``MAX_KEY_LENGTH`` printable ASCII characters, made of non-empty
    '/'-separated segments. A segment may not start with '.': that rules out '.' and '..'
    (path traversal) and reserves dot-names for backends' own files (``.auditseal/``, the
    head's lock file), which therefore can never collide with an object.

    Raises:
        FormatError: the key is unsafe; the message says why.
    """
    if not isinstance(key, str) or not key:
        raise FormatError(f"object key must be a non-empty string, got {key!r}")
    if len(key) > MAX_KEY_LENGTH:
        raise FormatError(f"object key is {len(key)} characters; the limit is {MAX_KEY_LENGTH}")
    bad = next((ch for ch in key if not " " < ch < "\x7f"), None)
    if bad is not None:
        # Control characters (NUL cuts C paths short), spaces and non-ASCII read
        # ambiguously in listings and URLs; no tlog-tiles path needs them.
        raise FormatError(f"object key {key!r} contains {bad!r}; use printable ASCII only")
    if "\\" in key:
        raise FormatError(f"object key {key!r} contains a backslash; separate with '/'")
    if key.startswith("/"):
        raise FormatError(f"object key {key!r} is absolute; keys are relative paths")
    if key.endswith("/"):
        raise FormatError(f"object key {key!r} ends with '/'; that names a folder")
    for segment in key.split("/"):
        if not segment:
            raise FormatError(f"object key {key!r} has an empty segment ('//')")
        if segment.startswith("."):
            raise FormatError(
                f"object key {key!r} has segment {segment!r}: segments may not start with "
                "'.' ('.' and '..' would escape the log; dot-names are reserved)"
            )
    return key
