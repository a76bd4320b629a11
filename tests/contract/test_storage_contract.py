"""The storage contract: every backend behaves as the in-memory reference does.

Each test takes the ``store`` or ``head_store`` fixture, which is parametrized over
``OBJECT_BACKENDS`` / ``HEAD_BACKENDS``. A new backend (Azure Blob on Azurite) joins by
adding one factory to those tables; a factory may ``pytest.skip`` when its service is not
available here. The Azure backends run on the session's Azurite (``azurite`` fixture):
each test gets fresh containers.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest
from azure.storage.blob import BlobServiceClient

import auditseal.storage
from auditseal.errors import FormatError, ObjectNotFound, StorageConflict
from auditseal.storage import (
    FilesystemHeadStore,
    FilesystemObjectStore,
    Head,
    HeadStore,
    MemoryHeadStore,
    MemoryObjectStore,
    ObjectProtection,
    ObjectStore,
    clear_immutable,
)
from auditseal.storage.azure_blob import (
    AzureBlobHeadStore,
    AzureBlobObjectStore,
    AzureImmutabilityConfig,
)
from auditseal.storage.azure_errors import AzureRetryConfig, RequestCounter
from auditseal.storage.azure_location import client_options
from tests.azurite import Azurite

# --- backends ----------------------------------------------------------------------------


@contextmanager
def _memory_objects(tmp_path: Path) -> Iterator[ObjectStore]:
    yield MemoryObjectStore()


@contextmanager
def _filesystem_objects(tmp_path: Path) -> Iterator[ObjectStore]:
    yield FilesystemObjectStore(tmp_path / "log")


@contextmanager
def _filesystem_immutable_objects(tmp_path: Path) -> Iterator[ObjectStore]:
    # Where the attribute cannot be set the store still works; the contract must hold
    # either way. Clearing it afterwards lets pytest remove tmp_path.
    root = tmp_path / "log"
    try:
        yield FilesystemObjectStore(root, set_immutable=True)
    finally:
        clear_immutable(root)


@contextmanager
def _memory_head(tmp_path: Path) -> Iterator[HeadStore]:
    yield MemoryHeadStore()


@contextmanager
def _filesystem_head(tmp_path: Path) -> Iterator[HeadStore]:
    yield FilesystemHeadStore(tmp_path / "log" / "checkpoint")


def _azure_container(azurite: Azurite | None) -> tuple[BlobServiceClient, RequestCounter]:
    if azurite is None:
        pytest.skip("the Azure backends need the azurite fixture")
    counter = RequestCounter()
    # Retries off: a contract failure should show at once, not after backoff.
    options = client_options(AzureRetryConfig(retries=0), counter, pool_size=16)
    return BlobServiceClient.from_connection_string(azurite.connection_string,
                                                    **options), counter


@contextmanager
def _azure_objects(tmp_path: Path, azurite: Azurite | None = None,
                   immutability: AzureImmutabilityConfig | None = None) -> Iterator[ObjectStore]:
    service, counter = _azure_container(azurite)
    container = service.get_container_client(f"contract-{uuid.uuid4().hex[:16]}")
    backend = AzureBlobObjectStore(container, immutability=immutability, counter=counter)
    try:
        yield backend
    finally:
        backend.close()


@contextmanager
def _azure_immutability_objects(tmp_path: Path, azurite: Azurite | None = None
                                ) -> Iterator[ObjectStore]:
    # Azurite ignores per-blob immutability and answers 501 when asked outright: the
    # store must still behave, and say so in protection().
    config = AzureImmutabilityConfig(retention_days=1, legal_hold=True)
    with _azure_objects(tmp_path, azurite, config) as backend:
        yield backend


@contextmanager
def _azure_head(tmp_path: Path, azurite: Azurite | None = None) -> Iterator[HeadStore]:
    service, counter = _azure_container(azurite)
    container = service.get_container_client(f"contract-{uuid.uuid4().hex[:16]}-head")
    backend = AzureBlobHeadStore(container, "log/checkpoint", counter=counter)
    try:
        yield backend
    finally:
        backend.close()


OBJECT_BACKENDS: dict[str, Callable[..., AbstractContextManager[ObjectStore]]] = {
    "memory": _memory_objects,
    "filesystem": _filesystem_objects,
    "filesystem-immutable": _filesystem_immutable_objects,
    "azure": _azure_objects,
    "azure-immutability": _azure_immutability_objects,
}
HEAD_BACKENDS: dict[str, Callable[..., AbstractContextManager[HeadStore]]] = {
    "memory": _memory_head,
    "filesystem": _filesystem_head,
    "azure": _azure_head,
}


def _services(request: pytest.FixtureRequest) -> dict[str, Azurite]:
    """The services a backend needs, by keyword: Azurite for the azure ones (may skip)."""
    if str(request.param).startswith("azure"):
        return {"azurite": request.getfixturevalue("azurite")}
    return {}


@pytest.fixture(params=list(OBJECT_BACKENDS))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ObjectStore]:
    with OBJECT_BACKENDS[request.param](tmp_path, **_services(request)) as backend:
        yield backend


@pytest.fixture(params=list(HEAD_BACKENDS))
def head_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[HeadStore]:
    with HEAD_BACKENDS[request.param](tmp_path, **_services(request)) as backend:
        yield backend


# --- objects -----------------------------------------------------------------------------


def test_backend_satisfies_the_protocol(store: ObjectStore) -> None:
    assert isinstance(store, ObjectStore)
    assert store.describe().strip()


def test_read_of_missing_key_raises_object_not_found(store: ObjectStore) -> None:
    with pytest.raises(ObjectNotFound) as caught:
        store.read("tile/0/000")
    assert caught.value.key == "tile/0/000"
    assert not store.exists("tile/0/000")


def test_create_then_read(store: ObjectStore) -> None:
    assert store.create("tile/0/x001/234", b"hashes") is True
    assert store.read("tile/0/x001/234") == b"hashes"
    assert store.exists("tile/0/x001/234")


def test_create_of_identical_bytes_is_idempotent(store: ObjectStore) -> None:
    assert store.create("checkpoints/00000000000000000512", b"note") is True
    assert store.create("checkpoints/00000000000000000512", b"note") is False
    assert store.read("checkpoints/00000000000000000512") == b"note"


def test_create_of_different_bytes_conflicts_and_keeps_the_original(store: ObjectStore) -> None:
    store.create("tile/entries/005.p/17", b"original")
    with pytest.raises(StorageConflict) as caught:
        store.create("tile/entries/005.p/17", b"forged")
    assert caught.value.key == "tile/entries/005.p/17"
    assert caught.value.reason == "exists with different content"
    assert store.read("tile/entries/005.p/17") == b"original"


def test_empty_object_is_allowed(store: ObjectStore) -> None:
    assert store.create("empty", b"") is True
    assert store.read("empty") == b""
    assert store.create("empty", b"") is False
    with pytest.raises(StorageConflict):
        store.create("empty", b"x")


def test_one_mebibyte_object_round_trips(store: ObjectStore) -> None:
    data = bytes(range(256)) * 4096
    assert store.create("tile/entries/000", data) is True
    assert store.read("tile/entries/000") == data


def test_protection_describes_an_existing_object(store: ObjectStore) -> None:
    store.create("tile/0/000", b"x")
    protection = store.protection("tile/0/000")
    assert isinstance(protection, ObjectProtection)
    assert protection.detail
    with pytest.raises(ObjectNotFound):
        store.protection("tile/0/001")


# Each case: objects already stored, the batch, then either the results or the key the
# StorageConflict must name, and what every key must hold afterwards. Decision: every key
# is validated first; then each item is created independently; a conflict is raised only
# after all non-conflicting items are durable, and names the FIRST conflicting key.
CREATE_MANY_CASES = [
    pytest.param({}, [("a", b"A"), ("b", b"B")], [True, True], None,
                 {"a": b"A", "b": b"B"}, id="all-new"),
    pytest.param({"b": b"B"}, [("a", b"A"), ("b", b"B")], [True, False], None,
                 {"a": b"A", "b": b"B"}, id="new-and-identical"),
    pytest.param({}, [("a", b"A"), ("a", b"A")], [True, False], None,
                 {"a": b"A"}, id="same-key-twice-same-bytes"),
    pytest.param({"b": b"B"}, [("a", b"A"), ("b", b"X"), ("c", b"C")], None, "b",
                 {"a": b"A", "b": b"B", "c": b"C"}, id="conflict-mid-batch-others-written"),
    pytest.param({"b": b"B", "c": b"C"}, [("b", b"X"), ("a", b"A"), ("c", b"Y")], None, "b",
                 {"a": b"A", "b": b"B", "c": b"C"}, id="two-conflicts-first-named"),
    pytest.param({}, [("a", b"A"), ("a", b"X")], None, "a",
                 {"a": b"A"}, id="same-key-twice-different-bytes"),
]


@pytest.mark.parametrize(("before", "batch", "results", "conflict", "after"), CREATE_MANY_CASES)
def test_create_many(
    store: ObjectStore,
    before: dict[str, bytes],
    batch: list[tuple[str, bytes]],
    results: list[bool] | None,
    conflict: str | None,
    after: dict[str, bytes],
) -> None:
    for key, data in before.items():
        store.create(key, data)
    if conflict is None:
        assert store.create_many(batch) == results
    else:
        with pytest.raises(StorageConflict) as caught:
            store.create_many(batch)
        assert caught.value.key == conflict
    assert {key: store.read(key) for key in store.list()} == after


def test_create_many_of_nothing(store: ObjectStore) -> None:
    assert store.create_many([]) == []
    assert store.list() == []


def test_create_many_with_an_unsafe_key_writes_nothing(store: ObjectStore) -> None:
    with pytest.raises(FormatError):
        store.create_many([("tile/0/000", b"A"), ("../escape", b"B")])
    assert store.list() == []


LIST_KEYS = [
    "checkpoints/00000000000000000001",
    "checkpoints/00000000000000000256",
    "tile/0/000",
    "tile/0/001.p/5",
    "tile/1/000.p/1",
    "tile/entries/000",
    "tile/entries/001.p/5",
]


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        pytest.param("", LIST_KEYS, id="everything"),
        pytest.param("tile/", LIST_KEYS[2:], id="folder"),
        pytest.param("tile/0/", ["tile/0/000", "tile/0/001.p/5"], id="subfolder"),
        pytest.param("tile/0/001", ["tile/0/001.p/5"], id="name-prefix"),
        pytest.param("checkpoints/000000000000000002", [LIST_KEYS[1]], id="digits-prefix"),
        pytest.param("tile/entries/001.p/5", ["tile/entries/001.p/5"], id="exact-key"),
        pytest.param("tile/9/", [], id="no-such-folder"),
        pytest.param("../", [], id="unsafe-prefix-matches-nothing"),
    ],
)
def test_list_by_prefix_is_sorted(store: ObjectStore, prefix: str, expected: list[str]) -> None:
    store.create_many([(key, key.encode()) for key in reversed(LIST_KEYS)])
    assert store.list(prefix) == expected


# One case per rejection branch of validate_key.
UNSAFE_KEYS = [
    pytest.param("", id="empty"),
    pytest.param("t" * 1025, id="too-long"),
    pytest.param("tile/\x00/000", id="nul"),
    pytest.param("tile/0/000\n", id="control-character"),
    pytest.param("tile/0/\u00e9", id="non-ascii"),
    pytest.param("tile/0 000", id="space"),
    pytest.param("tile\\0\\000", id="backslash"),
    pytest.param("/etc/passwd", id="absolute"),
    pytest.param("tile/0/", id="trailing-slash"),
    pytest.param("tile//000", id="empty-segment"),
    pytest.param("..", id="dot-dot"),
    pytest.param("tile/../../escape", id="dot-dot-segment"),
    pytest.param("./tile", id="dot-segment"),
    pytest.param(".auditseal/signing.key", id="reserved-dot-name"),
]


@pytest.mark.parametrize("key", UNSAFE_KEYS)
def test_unsafe_keys_are_rejected_by_every_operation(store: ObjectStore, key: str) -> None:
    operations: list[Callable[[], object]] = [
        lambda: store.read(key),
        lambda: store.create(key, b"x"),
        lambda: store.create_many([(key, b"x")]),
        lambda: store.exists(key),
        lambda: store.protection(key),
    ]
    for operation in operations:
        with pytest.raises(FormatError):
            operation()
    assert store.list() == []


def test_longest_allowed_key_is_accepted(store: ObjectStore) -> None:
    key = "/".join(["k" * 200] * 5) + "/" + "k" * 19  # 1,024 characters
    assert len(key) == 1024
    assert store.create(key, b"x") is True
    assert store.read(key) == b"x"


def test_concurrent_creates_of_one_key_have_one_winner(store: ObjectStore) -> None:
    start = threading.Barrier(8)
    outcomes: list[object] = []

    def create(data: bytes) -> None:
        start.wait()
        try:
            outcomes.append(store.create("tile/0/000", data))
        except StorageConflict as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=create, args=(b"same",)) for _ in range(6)]
    threads += [threading.Thread(target=create, args=(b"other",)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes.count(True) == 1
    winner = store.read("tile/0/000")
    losers = 2 if winner == b"same" else 6
    assert sum(isinstance(o, StorageConflict) for o in outcomes) == losers
    assert outcomes.count(False) == 8 - 1 - losers


# --- head --------------------------------------------------------------------------------


def test_head_store_satisfies_the_protocol(head_store: HeadStore) -> None:
    assert isinstance(head_store, HeadStore)
    assert head_store.describe().strip()


def test_head_is_none_before_the_first_swap(head_store: HeadStore) -> None:
    assert head_store.load() is None


def test_first_swap_creates_the_head(head_store: HeadStore) -> None:
    version = head_store.swap(b"checkpoint 1", None)
    assert head_store.load() == Head(data=b"checkpoint 1", version=version)


def test_swap_expecting_no_head_loses_once_one_exists(head_store: HeadStore) -> None:
    version = head_store.swap(b"checkpoint 1", None)
    with pytest.raises(StorageConflict) as caught:
        head_store.swap(b"checkpoint 2", None)
    assert caught.value.reason == "head changed concurrently"
    assert head_store.load() == Head(data=b"checkpoint 1", version=version)


def test_swap_expecting_a_head_loses_when_none_exists(head_store: HeadStore) -> None:
    with pytest.raises(StorageConflict):
        head_store.swap(b"checkpoint 1", "no-such-version")
    assert head_store.load() is None


def test_swap_with_the_current_version_wins_and_a_stale_one_loses(head_store: HeadStore) -> None:
    first = head_store.swap(b"checkpoint 1", None)
    second = head_store.swap(b"checkpoint 2", first)
    assert second != first
    with pytest.raises(StorageConflict):
        head_store.swap(b"checkpoint 3", first)
    third = head_store.swap(b"checkpoint 3", second)
    assert head_store.load() == Head(data=b"checkpoint 3", version=third)


def _race_two_swaps(head_store: HeadStore, expected: str, label: str) -> tuple[list[bytes], int]:
    """Two threads swap from the same version at once; returns the winners' data, losses."""
    start = threading.Barrier(2)
    won: list[bytes] = []
    lost: list[StorageConflict] = []

    def swap(data: bytes) -> None:
        start.wait()
        try:
            head_store.swap(data, expected)
            won.append(data)
        except StorageConflict as exc:
            lost.append(exc)

    threads = [
        threading.Thread(target=swap, args=(f"{label} by {name}".encode(),)) for name in "ab"
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return won, len(lost)


def test_concurrent_swaps_have_exactly_one_winner(head_store: HeadStore) -> None:
    version = head_store.swap(b"checkpoint 0", None)
    for round_ in range(10):  # several rounds, so the threads really overlap some of them
        won, lost = _race_two_swaps(head_store, version, f"round {round_}")
        assert (len(won), lost) == (1, 1)
        head = head_store.load()
        assert head is not None
        assert head.data == won[0]
        version = head.version


# --- the reference implementation's own extras ---------------------------------------------


def test_memory_store_counts_reads_creates_and_barriers() -> None:
    memory = MemoryObjectStore()
    memory.create("a", b"A")
    memory.create("a", b"A")
    memory.create_many([("b", b"B"), ("c", b"C")])
    memory.create_many([])
    memory.read("a")
    with pytest.raises(ObjectNotFound):
        memory.read("z")
    assert (memory.reads, memory.creates, memory.barriers) == (1, 3, 3)


def test_memory_store_tamper_bypasses_write_once() -> None:
    memory = MemoryObjectStore()
    memory.create("a", b"A")
    memory.tamper("a", b"forged")
    assert memory.read("a") == b"forged"
    memory.tamper("a", None)
    assert not memory.exists("a")


def test_memory_head_versions_change_even_for_identical_bytes() -> None:
    head = MemoryHeadStore()
    first = head.swap(b"same", None)
    second = head.swap(b"same", first)
    assert first != second
    with pytest.raises(StorageConflict):
        head.swap(b"same", first)
    assert head.swaps == 2


def test_public_names_are_pinned() -> None:
    assert sorted(auditseal.storage.__all__) == sorted([
        "MAX_KEY_LENGTH", "FilesystemHeadStore", "FilesystemObjectStore", "Head",
        "HeadStore", "MemoryHeadStore", "MemoryObjectStore", "ObjectProtection",
        "ObjectStore", "WriterLock", "clear_immutable", "validate_key",
    ])
