"""The reference implementation of the storage Protocol, in memory.

Every other backend must behave as these two classes do: the contract suite
(``tests/contract/test_storage_contract.py``) runs the same tests against all of them.
They also serve tests directly: counters tell how many reads, creates and durability
barriers a piece of code caused, and ``tamper`` plays an attacker with write access to
the storage account, which is what the verifier and ``fsck`` must catch.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from auditseal.errors import ObjectNotFound, StorageConflict
from auditseal.storage.base import Head, ObjectProtection, validate_key

_CONFLICT = "exists with different content"
_HEAD_CONFLICT = "head changed concurrently"


class MemoryObjectStore:
    """Write-once objects in a dict; thread-safe.

    Attributes:
        reads: calls of ``read`` that found their object.
        creates: objects newly created (identical re-creates and conflicts not counted).
        barriers: durability barriers: one per ``create`` and one per non-empty
            ``create_many``, which is what group commit is meant to save.
    """

    def __init__(self, name: str = "memory") -> None:
        """Create an empty store; ``name`` only appears in ``describe``."""
        self._name = name
        self._objects: dict[str, bytes] = {}
        self._lock = threading.Lock()
        self.reads = 0
        self.creates = 0
        self.barriers = 0

    def read(self, key: str) -> bytes:
        """Return the object's bytes (see ``ObjectStore.read``)."""
        validate_key(key)
        with self._lock:
            try:
                data = self._objects[key]
            except KeyError:
                raise ObjectNotFound(key) from None
            self.reads += 1
            return data

    def create(self, key: str, data: bytes) -> bool:
        """Create the object unless it exists (see ``ObjectStore.create``)."""
        return self.create_many([(key, data)])[0]

    def create_many(self, items: Sequence[tuple[str, bytes]]) -> list[bool]:
        """Create several objects; conflicts raise after the rest are stored."""
        for key, _ in items:
            validate_key(key)
        results: list[bool] = []
        conflict: str | None = None
        with self._lock:
            for key, data in items:
                # bytes() copies a bytearray, so a caller reusing its buffer cannot
                # change a sealed object afterwards.
                value = bytes(data)
                existing = self._objects.get(key)
                if existing is None:
                    self._objects[key] = value
                    self.creates += 1
                    results.append(True)
                elif existing == value:
                    results.append(False)
                else:
                    conflict = conflict or key
                    results.append(False)
            if items:
                self.barriers += 1
        if conflict is not None:
            raise StorageConflict(conflict, _CONFLICT)
        return results

    def exists(self, key: str) -> bool:
        """Whether an object has this key."""
        validate_key(key)
        with self._lock:
            return key in self._objects

    def list(self, prefix: str = "") -> list[str]:
        """Keys starting with ``prefix``, sorted."""
        with self._lock:
            return sorted(key for key in self._objects if key.startswith(prefix))

    def protection(self, key: str) -> ObjectProtection:
        """Nothing but this API protects an object held in memory."""
        validate_key(key)
        with self._lock:
            if key not in self._objects:
                raise ObjectNotFound(key)
        return ObjectProtection(
            read_only=False,
            immutable_attr=None,
            detail="held in process memory: no protection beyond the API, nothing persists",
        )

    def describe(self) -> str:
        """``memory <name>``."""
        return f"memory {self._name}"

    def tamper(self, key: str, data: bytes | None) -> None:
        """Replace (or with None, delete) an object behind the Protocol's back.

        For tests only: it simulates someone with direct access to the storage, so
        that tests can show the verifier catching modified, truncated or missing objects.
        """
        validate_key(key)
        with self._lock:
            if data is None:
                self._objects.pop(key, None)
            else:
                self._objects[key] = bytes(data)


class MemoryHeadStore:
    """The mutable head in memory; versions are generation numbers ("1", "2", ...).

    A generation changes on every swap, even to identical bytes, so a writer holding an
    old version loses even if the head came back to the same content (no ABA).

    Attributes:
        swaps: successful swaps.
    """

    def __init__(self, name: str = "memory") -> None:
        """Create a store with no head; ``name`` only appears in ``describe``."""
        self._name = name
        self._head: Head | None = None
        self._generation = 0
        self._lock = threading.Lock()
        self.swaps = 0

    def load(self) -> Head | None:
        """The current head, or None."""
        with self._lock:
            return self._head

    def swap(self, data: bytes, expected: str | None) -> str:
        """Replace the head if its version is still ``expected``."""
        with self._lock:
            current = None if self._head is None else self._head.version
            if current != expected:
                raise StorageConflict(self.describe(), _HEAD_CONFLICT)
            self._generation += 1
            self._head = Head(data=bytes(data), version=str(self._generation))
            self.swaps += 1
            return self._head.version

    def describe(self) -> str:
        """``memory head <name>``."""
        return f"memory head {self._name}"
