"""The Azure Blob backend's own behaviour, beyond the shared storage contract.

Error translation is checked with the exceptions the SDK itself raises: a canned HTTP
responder (``CannedAzureDouble``) answers with Azure's status codes, ``x-ms-error-code``
headers and XML error bodies, and the real SDK turns them into its exception objects.
Everything else runs on Azurite.
"""

from __future__ import annotations

import importlib
import importlib.util
import threading
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from azure.core.exceptions import (
    AzureError,
    ResourceExistsError,
    ResourceNotFoundError,
    ServiceRequestError,
)
from azure.identity import CredentialUnavailableError
from azure.storage.blob import BlobServiceClient

from auditseal.errors import (
    ConfigError,
    ObjectNotFound,
    StorageConflict,
    StorageError,
    StorageRefused,
    StorageUnavailable,
)
from auditseal.storage.azure_blob import (
    AzureBlobHeadStore,
    AzureBlobObjectStore,
    AzureImmutabilityConfig,
)
from auditseal.storage.azure_errors import AzureRetryConfig, RequestCounter, redact, translate
from auditseal.storage.azure_location import client_options
from tests.azurite import ACCOUNT, KEY, Azurite, free_port

NO_RETRY = AzureRetryConfig(retries=0, connection_timeout_s=1.0, read_timeout_s=2.0)


class CannedAzureDouble(ThreadingHTTPServer):
    """Answers every request with one canned Azure error (status, error code, XML body)."""

    status = 500
    code = "InternalError"
    seen = 0


class _Handler(BaseHTTPRequestHandler):
    server: CannedAzureDouble

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        self.server.seen += 1
        body = (f'<?xml version="1.0" encoding="utf-8"?><Error><Code>{self.server.code}</Code>'
                f"<Message>canned {self.server.code}</Message></Error>").encode()
        self.send_response(self.server.status)
        self.send_header("x-ms-error-code", self.server.code)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_PUT = do_HEAD = do_DELETE = _answer  # noqa: N815

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def canned() -> Iterator[CannedAzureDouble]:
    server = CannedAzureDouble(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _stores(port: int, retry: AzureRetryConfig = NO_RETRY
            ) -> tuple[AzureBlobObjectStore, AzureBlobHeadStore, RequestCounter]:
    counter = RequestCounter()
    service = BlobServiceClient.from_connection_string(
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};"
        f"BlobEndpoint=http://127.0.0.1:{port}/{ACCOUNT};",
        **client_options(retry, counter, pool_size=4))
    objects = AzureBlobObjectStore(service.get_container_client("data"), counter=counter,
                                   create_container=False)
    head = AzureBlobHeadStore(service.get_container_client("head"), counter=counter,
                              create_container=False)
    return objects, head, counter


# status, code, operation -> the auditseal error and what it must carry.
TRANSLATION = [
    pytest.param(404, "BlobNotFound", "read", ObjectNotFound, id="404-read"),
    pytest.param(409, "BlobImmutableDueToPolicy", "create-unrelated", StorageRefused,
                 id="409-worm-policy"),
    pytest.param(409, "BlobImmutableDueToLegalHold", "swap", StorageRefused, id="409-legal-hold"),
    pytest.param(409, "ContainerImmutabilityPolicyLocked", "read", StorageRefused,
                 id="409-container-locked"),
    pytest.param(412, "ConditionNotMet", "swap", StorageConflict, id="412-head"),
    pytest.param(409, "BlobAlreadyExists", "swap", StorageConflict, id="409-head-exists"),
    pytest.param(503, "ServerBusy", "read", StorageUnavailable, id="503-throttled"),
    pytest.param(500, "InternalError", "create", StorageUnavailable, id="500"),
    pytest.param(500, "OperationTimedOut", "swap", StorageUnavailable, id="500-timeout"),
    pytest.param(429, "TooManyRequests", "read", StorageUnavailable, id="429"),
    pytest.param(403, "AuthorizationPermissionMismatch", "create", StorageError, id="403"),
    pytest.param(400, "InvalidHeaderValue", "read", StorageError, id="400-other"),
]


@pytest.mark.parametrize(("status", "code", "operation", "expected"), TRANSLATION)
def test_sdk_errors_are_translated(canned: CannedAzureDouble, status: int, code: str,
                                   operation: str, expected: type[Exception]) -> None:
    canned.status, canned.code = status, code
    objects, head, _ = _stores(canned.server_address[1])
    calls: dict[str, Callable[[], object]] = {
        "read": lambda: objects.read("tile/0/000"),
        "create": lambda: objects.create("tile/0/000", b"x"),
        # A refusal on a key we did not create-if-absent (e.g. a raw overwrite).
        "create-unrelated": lambda: objects.list("tile/"),
        "swap": lambda: head.swap(b"new", '"0x1"'),
    }
    with pytest.raises(expected) as caught:
        calls[operation]()
    assert type(caught.value) is expected
    if expected is StorageRefused:
        assert isinstance(caught.value, StorageRefused)
        assert caught.value.code == code
    if expected is StorageError:
        assert f"HTTP {status} {code}" in str(caught.value)


def test_transient_errors_are_retried_with_backoff_then_reported(
        canned: CannedAzureDouble) -> None:
    canned.status, canned.code = 503, "ServerBusy"
    retry = AzureRetryConfig(retries=2, initial_backoff_s=0.01, increment_base_s=0.01,
                             jitter_s=0.0)
    objects, _, counter = _stores(canned.server_address[1], retry)
    before = canned.seen
    with pytest.raises(StorageUnavailable, match="HTTP 503 ServerBusy"):
        objects.read("tile/0/000")
    assert canned.seen - before == 3
    assert counter.count == 3


def test_not_retried_when_the_answer_is_final(canned: CannedAzureDouble) -> None:
    canned.status, canned.code = 409, "BlobImmutableDueToPolicy"
    retry = AzureRetryConfig(retries=3, initial_backoff_s=0.01, increment_base_s=1.0)
    objects, _, counter = _stores(canned.server_address[1], retry)
    with pytest.raises(StorageRefused):
        objects.read("tile/0/000")
    assert counter.count == 1


def test_connection_refused_is_unavailable() -> None:
    objects, head, counter = _stores(free_port())
    with pytest.raises(StorageUnavailable, match="ServiceRequestError"):
        objects.create("tile/0/000", b"x")
    with pytest.raises(StorageUnavailable):
        head.load()
    assert counter.count == 2


@pytest.mark.parametrize(("exc", "head", "expected"), [
    pytest.param(ResourceNotFoundError("gone"), False, ObjectNotFound, id="not-found"),
    pytest.param(ResourceExistsError("exists"), True, StorageConflict, id="head-409"),
    pytest.param(ServiceRequestError("reset"), False, StorageUnavailable, id="connection"),
    pytest.param(CredentialUnavailableError("no identity"), False, ConfigError,
                 id="no-credentials"),
])
def test_translate_sdk_exception_objects(exc: Exception, head: bool,
                                         expected: type[Exception]) -> None:
    assert isinstance(exc, AzureError)
    assert type(translate(exc, "k", head=head)) is expected


def test_secrets_never_reach_messages() -> None:
    url = ("HTTPConnectionPool(host='x', port=1): Max retries exceeded with url: "
           "/c/b?sv=2024-01-01&sig=S3CRET%2Fsig&se=2030")
    error = translate(ServiceRequestError(url), "tile/0/000")
    assert "S3CRET" not in str(error)
    assert "sig=REDACTED" in str(error)
    assert redact(f"AccountKey={KEY};x") == "AccountKey=REDACTED;x"


def test_retry_config_is_bounded_and_validated() -> None:
    config = AzureRetryConfig()
    assert config.max_backoff_s < 5
    with pytest.raises(ConfigError):
        AzureRetryConfig(retries=11)
    with pytest.raises(ConfigError):
        AzureImmutabilityConfig(retention_days=0)


# --- on Azurite ------------------------------------------------------------------------------


@pytest.fixture
def service(azurite: Azurite) -> Iterator[tuple[BlobServiceClient, RequestCounter]]:
    counter = RequestCounter()
    client = BlobServiceClient.from_connection_string(
        azurite.connection_string, **client_options(NO_RETRY, counter, pool_size=16))
    yield client, counter
    client.close()


def _name() -> str:
    return f"blob-{uuid.uuid4().hex[:16]}"


def test_prefix_keys_and_lazy_container_creation(
        service: tuple[BlobServiceClient, RequestCounter]) -> None:
    client, counter = service
    container = client.get_container_client(_name())
    store = AzureBlobObjectStore(container, "/logs/prod/", counter=counter)
    assert store.list() == []  # no container yet: nothing, and no error
    assert store.create("tile/0/000", b"A") is True  # creates the container on the way
    assert list(container.list_blob_names()) == ["logs/prod/tile/0/000"]
    assert store.list() == ["tile/0/000"]
    assert store.describe().endswith(f"/{container.container_name}/logs/prod")


def test_create_many_is_one_put_per_object(
        service: tuple[BlobServiceClient, RequestCounter]) -> None:
    client, counter = service
    store = AzureBlobObjectStore(client.get_container_client(_name()), counter=counter)
    store.create("tile/0/000", b"warm")  # the container exists from here on
    items = [(f"tile/entries/{i:03d}", bytes([i]) * 100) for i in range(64)]
    before = store.requests
    assert store.create_many(items) == [True] * 64
    assert store.requests - before == 64
    # Re-publishing after a crash: a 409 and a read-back per object, nothing overwritten.
    assert store.create_many(items) == [False] * 64
    assert store.requests - before == 64 * 3


def test_protection_reports_no_worm_on_azurite(
        service: tuple[BlobServiceClient, RequestCounter]) -> None:
    client, _ = service
    store = AzureBlobObjectStore(client.get_container_client(_name()))
    store.create("tile/0/000", b"x")
    protection = store.protection("tile/0/000")
    assert (protection.read_only, protection.immutable_attr) == (False, None)
    assert "no active immutability policy or legal hold" in protection.detail


def test_requested_immutability_is_reported_unsupported_on_azurite(
        service: tuple[BlobServiceClient, RequestCounter]) -> None:
    client, _ = service
    config = AzureImmutabilityConfig(retention_days=7, legal_hold=True)
    store = AzureBlobObjectStore(client.get_container_client(_name()), immutability=config)
    assert store.create("tile/0/000", b"x") is True  # the write itself still succeeds
    assert store.immutability_status == "not supported by this storage (APINotImplemented)"
    detail = store.protection("tile/0/000").detail
    assert "per-blob immutability (retention 7 days, legal hold) was requested: not supported "\
        "by this storage (APINotImplemented)" in detail
    assert store.protection("tile/0/000").read_only is False


def test_head_swap_whose_answer_was_lost_still_wins(
        service: tuple[BlobServiceClient, RequestCounter]) -> None:
    client, _ = service
    head = AzureBlobHeadStore(client.get_container_client(_name()), "log/checkpoint")
    first = head.swap(b"checkpoint 1", None)
    second = head.swap(b"checkpoint 2", first)
    # The retry of a swap that landed: the head already holds our bytes, so we won.
    assert head.swap(b"checkpoint 2", first) == second
    with pytest.raises(StorageConflict):
        head.swap(b"checkpoint 3", first)


# --- on a locked WORM container (the AzureWormDouble in front of Azurite) ----------------------


@pytest.fixture
def worm(azurite: Azurite) -> Iterator[Any]:
    """The WORM double, when the helper writing tests/doubles/azure_worm.py has delivered it."""
    if importlib.util.find_spec("tests.doubles.azure_worm") is None:
        pytest.skip("tests/doubles/azure_worm.py (the WORM double) is not there yet")
    module = importlib.import_module("tests.doubles.azure_worm")
    with module.AzureWormDouble(azurite) as double:
        yield double


def _worm_store(worm: Any, immutability: AzureImmutabilityConfig | None = None
                ) -> tuple[BlobServiceClient, AzureBlobObjectStore, str]:
    client = BlobServiceClient.from_connection_string(
        worm.connection_string, **client_options(NO_RETRY, RequestCounter(), pool_size=4))
    name = _name()
    client.create_container(name)
    worm.set_container_policy(name, 365, locked=True)
    store = AzureBlobObjectStore(client.get_container_client(name), "log",
                                 immutability=immutability)
    return client, store, name


def test_write_once_semantics_hold_under_a_locked_policy(worm: Any) -> None:
    client, store, name = _worm_store(worm)
    assert store.create_many([("tile/0/000", b"A"), ("tile/entries/000.p/1", b"B")]) == [
        True, True]
    assert store.create("tile/0/000", b"A") is False  # re-publish: no overwrite attempted
    with pytest.raises(StorageConflict):
        store.create("tile/0/000", b"forged")
    assert store.read("tile/0/000") == b"A"
    protection = store.protection("tile/0/000")
    assert protection.read_only is True
    assert "container has a time-based retention policy" in protection.detail
    # What the WORM policy refuses comes back as StorageRefused with Azure's code.
    blob = client.get_container_client(name).get_blob_client("log/tile/0/000")
    for attempt in (lambda: blob.upload_blob(b"forged", overwrite=True), blob.delete_blob):
        with pytest.raises(AzureError) as caught:
            attempt()
        refused = translate(caught.value, "tile/0/000")
        assert isinstance(refused, StorageRefused)
        assert refused.code == "BlobImmutableDueToPolicy"


def test_per_blob_immutability_is_applied_where_supported(worm: Any) -> None:
    config = AzureImmutabilityConfig(retention_days=30, legal_hold=True)
    _, store, _ = _worm_store(worm, config)
    assert store.create("tile/0/000", b"A") is True
    assert store.immutability_status == "applied"
    detail = store.protection("tile/0/000").detail
    assert "version-level immutability policy (Unlocked) until" in detail
    assert "legal hold on this blob" in detail


def test_head_in_a_worm_container_is_refused(worm: Any) -> None:
    client, _, name = _worm_store(worm)
    head = AzureBlobHeadStore(client.get_container_client(name), "log/checkpoint")
    first = head.swap(b"checkpoint 1", None)  # creating is allowed...
    with pytest.raises(StorageRefused) as caught:  # ...moving it is not
        head.swap(b"checkpoint 2", first)
    assert caught.value.code == "BlobImmutableDueToPolicy"
