"""The storage Protocol on Azure Blob Storage: write-once blobs and an ETag-swapped head.

Sealed objects (tiles, entry bundles, history checkpoints) are block blobs created with
``If-None-Match: *``; a 409 BlobAlreadyExists is answered by reading the blob back: the
same bytes make a re-publish a no-op, different bytes are a ``StorageConflict``. Nothing
here overwrites or deletes, so the data container may carry a *locked* time-based
retention policy (container-level WORM still allows new blobs). A Put Blob is durable when
it returns, so ``create_many``'s barrier is "every upload has returned"; a batch's uploads
run concurrently on a bounded thread pool.

The head (the tlog-tiles ``checkpoint``) must move, so it lives apart from any WORM policy
(by default in container ``<container>-head``) and is swapped by ETag: ``If-None-Match: *``
for the first, ``If-Match`` after; the ETag changes on every write (no ABA).

``AzureImmutabilityConfig`` adds a version-level immutability policy and/or legal hold to
every new blob (reference notes 1.7; needs version-level WORM on the container). Azurite
ignores those headers and answers 501 to the explicit calls; the store finds out after its
first upload and ``protection`` says so. Errors are translated in ``azure_errors``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from azure.core import MatchConditions
from azure.core.exceptions import AzureError, HttpResponseError, ResourceNotFoundError
from azure.storage.blob import (
    BlobClient,
    BlobImmutabilityPolicyMode,
    ContainerClient,
    ImmutabilityPolicy,
)

from auditseal.errors import ConfigError, FormatError, StorageConflict
from auditseal.storage.azure_errors import (
    HEAD_CONFLICT,
    RequestCounter,
    error_code,
    is_already_exists,
    is_container_missing,
    is_not_implemented,
    translate,
)
from auditseal.storage.base import MAX_KEY_LENGTH, Head, ObjectProtection, validate_key

DEFAULT_WORKERS = 16
_CONFLICT = "exists with different content"
_NOT_SUPPORTED = "not supported by this storage"
_T = TypeVar("_T")


@dataclass(frozen=True)
class AzureImmutabilityConfig:
    """Version-level immutability to put on every blob we create.

    Attributes:
        retention_days: an Unlocked time-based policy expiring this many days after the
            upload (None: no per-blob policy; a container policy may still apply).
            Lock it later with Azure's tools; Azure allows 1 to 146,000 days.
        legal_hold: also set a legal hold (kept until someone clears it explicitly).
    """

    retention_days: int | None = None
    legal_hold: bool = False

    def __post_init__(self) -> None:
        if self.retention_days is not None and not 1 <= self.retention_days <= 146_000:
            raise ConfigError("retention_days must be between 1 and 146,000 (Azure's limits)")

    @property
    def enabled(self) -> bool:
        """Whether anything is asked for."""
        return self.retention_days is not None or self.legal_hold

    def describe(self) -> str:
        """"retention 2555 days, legal hold" and the like."""
        parts = [f"retention {self.retention_days} days"] if self.retention_days else []
        return ", ".join([*parts, *(["legal hold"] if self.legal_hold else [])]) or "none"


class AzureBlobObjectStore:
    """Write-once objects as block blobs under ``prefix`` in one container.

    Args:
        container: the data container's client (may carry a locked WORM policy).
        prefix: folder of this log inside the container ("" for the whole container).
        immutability: per-blob immutability to request on every upload.
        max_workers: most uploads in flight during one ``create_many``.
        counter: the ``RequestCounter`` installed in ``container``'s pipeline, if any.
        create_container: create the container when a write finds it missing.
    """

    def __init__(
        self,
        container: ContainerClient,
        prefix: str = "",
        *,
        immutability: AzureImmutabilityConfig | None = None,
        max_workers: int = DEFAULT_WORKERS,
        counter: RequestCounter | None = None,
        create_container: bool = True,
    ) -> None:
        """Use ``container``; nothing is sent until the first call."""
        if not 1 <= max_workers <= 256:
            raise ConfigError("max_workers must be between 1 and 256")
        self._container = container
        self._prefix = f"{validate_key(prefix.strip('/'))}/" if prefix.strip("/") else ""
        self._immutability = immutability or AzureImmutabilityConfig()
        self._workers = max_workers
        self._counter = counter
        self._create_container = create_container
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._container_protection: tuple[bool, bool] | None = None
        self.immutability_status: str | None = None  # after the first upload: "applied"/why not

    @property
    def requests(self) -> int:
        """HTTP requests this store's client has sent (0 without a counter)."""
        return self._counter.count if self._counter else 0

    def read(self, key: str) -> bytes:
        """Return the blob's bytes (see ``ObjectStore.read``)."""
        name = self._name(key)
        try:
            return bytes(self._container.download_blob(name, max_concurrency=1).readall())
        except AzureError as exc:
            raise translate(exc, key) from exc

    def create(self, key: str, data: bytes) -> bool:
        """Create the blob unless it exists (see ``ObjectStore.create``)."""
        return self.create_many([(key, data)])[0]

    def create_many(self, items: Sequence[tuple[str, bytes]]) -> list[bool]:
        """Upload concurrently; returns when every upload has returned.

        A repeated key is created once, its later copies compared afterwards (results
        follow batch order). A non-conflict failure (``StorageUnavailable``...) is raised
        before any conflict: then not every other item may be stored.
        """
        names = [self._name(key) for key, _ in items]  # validates every key first
        firsts: dict[str, int] = {}
        for index, (key, _) in enumerate(items):
            firsts.setdefault(key, index)
        later = [index for index, (key, _) in enumerate(items) if firsts[key] != index]
        outcomes: list[bool | Exception] = [False] * len(items)

        def attempt(index: int) -> bool | Exception:
            try:
                return self._create_one(items[index][0], names[index], items[index][1])
            except Exception as exc:  # collected; raised below, in batch order
                return exc

        primary = list(firsts.values())
        if len(primary) == 1:
            outcomes[primary[0]] = attempt(primary[0])
        elif primary:
            for index, outcome in zip(primary, self._executor().map(attempt, primary),
                                      strict=True):
                outcomes[index] = outcome
        for index in later:
            outcomes[index] = attempt(index)
        failures = [o for o in outcomes if isinstance(o, Exception)]
        serious = [f for f in failures if not isinstance(f, StorageConflict)]
        if serious or failures:
            raise (serious or failures)[0]
        return [bool(o) for o in outcomes]

    def exists(self, key: str) -> bool:
        """Whether a blob has this key."""
        name = self._name(key)
        try:
            self._container.get_blob_client(name).get_blob_properties()
        except ResourceNotFoundError:
            return False
        except AzureError as exc:
            raise translate(exc, key) from exc
        return True

    def list(self, prefix: str = "") -> list[str]:
        """Keys starting with ``prefix``, sorted; blobs that are not valid keys are skipped."""
        start = len(self._prefix)
        try:
            names = [
                str(name)
                for name in self._container.list_blob_names(
                    name_starts_with=self._prefix + prefix
                )
            ]
        except ResourceNotFoundError:
            return []  # no container yet: no objects
        except AzureError as exc:
            raise translate(exc, prefix or "(list)") from exc
        return sorted(key for key in (n[start:] for n in names) if _is_key(key))

    def protection(self, key: str) -> ObjectProtection:
        """The blob's immutability policy and legal hold, and its container's, read back."""
        name = self._name(key)
        try:
            props = self._container.get_blob_client(name).get_blob_properties()
        except AzureError as exc:
            raise translate(exc, key) from exc
        policy = props.immutability_policy
        expiry = getattr(policy, "expiry_time", None)
        active = expiry is not None and expiry > datetime.now(UTC)
        container_policy, container_hold = self._read_container_protection()
        found = {
            f"version-level immutability policy ({getattr(policy, 'policy_mode', '?')}) until "
            f"{expiry.isoformat() if expiry else ''}" + ("" if active else " (expired)"):
                expiry is not None,
            "legal hold on this blob": bool(props.has_legal_hold),
            "container has a time-based retention policy (container-level WORM)":
                container_policy,
            "container has a legal hold": container_hold,
        }
        parts = [text for text, present in found.items() if present]
        protected = active or bool(props.has_legal_hold) or container_policy or container_hold
        if not protected:
            parts.append("no active immutability policy or legal hold: anyone with write "
                         "access to the container can overwrite or delete it")
        if self._immutability.enabled and self.immutability_status != "applied":
            why = self.immutability_status or "not checked yet in this process"
            parts.append(f"per-blob immutability ({self._immutability.describe()}) was "
                         f"requested: {why}")
        return ObjectProtection(read_only=protected, immutable_attr=None,
                                detail="; ".join(parts))

    def describe(self) -> str:
        """``azure blob <endpoint>/<container>/<prefix>`` (no credentials)."""
        return f"azure blob {_safe_url(self._container.url)}/{self._prefix}".rstrip("/")

    def close(self) -> None:
        """Stop the upload threads and close the HTTP connections."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)
        self._container.close()

    # -- internals -------------------------------------------------------------------------

    def _name(self, key: str) -> str:
        name = self._prefix + validate_key(key)
        if len(name) > MAX_KEY_LENGTH:
            raise FormatError(f"object key {key!r} under prefix {self._prefix!r} makes a blob "
                              f"name of {len(name)} characters; Azure allows {MAX_KEY_LENGTH}")
        return name

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="azblob")
            return self._pool

    def _create_one(self, key: str, name: str, data: bytes) -> bool:
        blob = self._container.get_blob_client(name)
        value = bytes(data)
        try:
            self._with_container(lambda: blob.upload_blob(
                value, overwrite=False, max_concurrency=1, **self._upload_options()))
        except HttpResponseError as exc:
            if not is_already_exists(exc):
                raise translate(exc, key) from exc
            # Also what a retry sees when our first attempt landed but its answer was lost.
            if self.read(key) == value:
                return False
            raise StorageConflict(key, _CONFLICT) from None
        except AzureError as exc:
            raise translate(exc, key) from exc
        if self._immutability.enabled and self.immutability_status is None:
            self._check_immutability(blob)
        return True

    def _upload_options(self) -> dict[str, Any]:
        config = self._immutability
        return ({"immutability_policy": self._policy()} if config.retention_days else {}) | (
            {"legal_hold": True} if config.legal_hold else {})

    def _policy(self) -> ImmutabilityPolicy:
        days = self._immutability.retention_days or 1
        return ImmutabilityPolicy(expiry_time=datetime.now(UTC) + timedelta(days=days),
                                  policy_mode=BlobImmutabilityPolicyMode.UNLOCKED)

    def _with_container(self, call: Callable[[], _T]) -> _T:
        """Run ``call``; if the container is missing, create it and run ``call`` again."""
        try:
            return call()
        except ResourceNotFoundError as exc:
            if not (self._create_container and is_container_missing(exc)):
                raise
        _ensure_container(self._container)
        return call()

    def _check_immutability(self, blob: BlobClient) -> None:
        """Find out once whether the storage applied what the upload asked for."""
        config = self._immutability
        try:
            props = blob.get_blob_properties()
            if (config.retention_days is not None
                    and getattr(props.immutability_policy, "expiry_time", None) is None):
                # The upload's headers were ignored (Azurite does): ask outright, which
                # names the reason (501 APINotImplemented, or Azure's refusal code).
                blob.set_immutability_policy(self._policy())
            if config.legal_hold and not props.has_legal_hold:
                blob.set_legal_hold(True)
            status = "applied"
        except HttpResponseError as exc:
            code = error_code(exc) or f"HTTP {exc.status_code}"
            status = (f"{_NOT_SUPPORTED} ({code})" if is_not_implemented(exc)
                      else f"refused by the storage ({code})")
        except AzureError as exc:
            status = f"unknown: the check failed ({type(exc).__name__})"
        self.immutability_status = status

    def _read_container_protection(self) -> tuple[bool, bool]:
        if self._container_protection is None:
            try:
                props = self._container.get_container_properties()
            except AzureError as exc:
                raise translate(exc, str(self._container.container_name)) from exc
            self._container_protection = (bool(props.has_immutability_policy),
                                          bool(props.has_legal_hold))
        return self._container_protection


class AzureBlobHeadStore:
    """The head as one block blob in ``container`` (never under WORM: it is replaced),
    swapped by ETag; versions are ETags. ``counter`` and ``create_container`` are as for
    ``AzureBlobObjectStore``."""

    def __init__(self, container: ContainerClient, blob_name: str = "checkpoint", *,
                 counter: RequestCounter | None = None, create_container: bool = True) -> None:
        """Use ``container``/``blob_name``; nothing is sent until the first call."""
        self._container = container
        self._blob = container.get_blob_client(validate_key(blob_name))
        self._counter = counter
        self._create_container = create_container

    @property
    def requests(self) -> int:
        """HTTP requests this head's client has sent (0 without a counter)."""
        return self._counter.count if self._counter else 0

    def load(self) -> Head | None:
        """The current head and its ETag, or None."""
        try:
            download = self._blob.download_blob(max_concurrency=1)
            data = bytes(download.readall())
        except ResourceNotFoundError:
            return None
        except AzureError as exc:
            raise translate(exc, self.describe(), head=True) from exc
        return Head(data=data, version=str(download.properties.etag))

    def swap(self, data: bytes, expected: str | None) -> str:
        """Replace the head if its ETag is still ``expected`` (None: must not exist)."""
        value = bytes(data)
        options: dict[str, Any] = (
            {"overwrite": False} if expected is None else
            {"overwrite": True, "etag": expected, "match_condition": MatchConditions.IfNotModified}
        )
        try:
            result = self._upload(value, options)
        except AzureError as exc:
            error = translate(exc, self.describe(), head=True)
            if isinstance(exc, ResourceNotFoundError) and expected is not None:
                error = StorageConflict(self.describe(), HEAD_CONFLICT)  # the head vanished
            if isinstance(error, StorageConflict):
                # A retried request whose first attempt landed (its answer lost) loses to
                # itself: the head then holds exactly our bytes, so we did win.
                current = self.load()
                if current is not None and current.data == value:
                    return current.version
            raise error from exc
        return str(result["etag"])

    def describe(self) -> str:
        """``azure blob <endpoint>/<container>/<blob>`` (no credentials)."""
        return f"azure blob {_safe_url(self._blob.url)}"

    def close(self) -> None:
        """Close the HTTP connections."""
        self._container.close()

    def _upload(self, value: bytes, options: dict[str, Any]) -> dict[str, Any]:
        try:
            return dict(self._blob.upload_blob(value, max_concurrency=1, **options))
        except ResourceNotFoundError as exc:
            if not (self._create_container and is_container_missing(exc)):
                raise
        _ensure_container(self._container)
        return dict(self._blob.upload_blob(value, max_concurrency=1, **options))


def _ensure_container(container: ContainerClient) -> None:
    try:
        container.create_container()
    except HttpResponseError as exc:
        if error_code(exc) != "ContainerAlreadyExists":
            raise


def _safe_url(url: str) -> str:
    """``url`` without its query (a SAS token lives there)."""
    return url.split("?", 1)[0].rstrip("/")


def _is_key(name: str) -> bool:
    try:
        validate_key(name)
    except FormatError:
        return False
    return True

