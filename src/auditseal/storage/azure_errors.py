"""Azure SDK failures as auditseal errors, and the retry policy that decides which are transient.

This is the one place where ``azure.core.exceptions`` become ``auditseal.errors`` (the
adapters call ``translate`` and nothing else looks at an Azure exception), as httpx maps
httpcore's exceptions at one boundary. The table, from the Blob service error codes
(https://learn.microsoft.com/rest/api/storageservices/blob-service-error-codes) and the
immutable-storage pages (reference notes, section 1.6):

==========================================================  ============================
Azure                                                       auditseal
==========================================================  ============================
404 (``ResourceNotFoundError``: BlobNotFound, ...)          ``ObjectNotFound(key)``
409 BlobImmutableDueToPolicy / BlobImmutableDueToLegalHold  ``StorageRefused(key, code)``
409 ContainerImmutabilityPolicyLocked / ContainerHasLegalHold ``StorageRefused(key, code)``
412 ConditionNotMet, 409 BlobAlreadyExists on the head      ``StorageConflict(head, ...)``
connection errors, timeouts, 408, 429, 500, 502-504         ``StorageUnavailable``
credentials not found (``CredentialUnavailableError``)      ``ConfigError``
401/403 and everything else                                 ``StorageError`` with the code
==========================================================  ============================

Transient failures are retried inside the SDK pipeline first (``AzureRetryConfig``:
exponential backoff with a bounded total), so ``StorageUnavailable`` means "still failing
after the retries"; the log's background publisher then retries on its next round.
``RequestCounter`` counts the requests (retries included) for the benchmark.
Messages are redacted: a SAS signature or account key never reaches an error message.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from typing import Any

from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.core.pipeline import PipelineRequest
from azure.storage.blob import ExponentialRetry

from auditseal.errors import (
    ConfigError,
    ObjectNotFound,
    StorageConflict,
    StorageError,
    StorageRefused,
    StorageUnavailable,
)

REFUSED_CODES = frozenset({
    "BlobImmutableDueToPolicy",
    "BlobImmutableDueToLegalHold",
    "ContainerImmutabilityPolicyLocked",
    "ContainerHasLegalHold",
})
"""Codes with which Azure refuses to change a protected blob or container (WORM)."""
TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})
TRANSIENT_CODES = frozenset({"ServerBusy", "OperationTimedOut", "InternalError"})
NOT_IMPLEMENTED_CODE = "APINotImplemented"  # Azurite, for immutability and legal holds
HEAD_CONFLICT = "head changed concurrently"

# SAS query values and connection-string secrets, wherever an SDK message echoes a URL.
_SECRETS = re.compile(r"(?i)\b(sig|AccountKey|SharedAccessSignature)=([^&;\s'\"]+)")
_XML_CODE = re.compile(r"<Code>([^<]+)</Code>")


@dataclass(frozen=True)
class AzureRetryConfig:
    """How the SDK retries a transient failure before we report ``StorageUnavailable``.

    Backoff before retry n (n = 0, 1, ...) is ``initial_backoff_s + increment_base_s ** n``
    (n > 0), jittered by ``jitter_s``: with the defaults 0.2, 1.7, 2.45 s, about 4.4 s
    at most before giving up, then the writer's publisher retries on its own cadence.
    The SDK's own default (15 s + 3**n, 3 retries) would stall a publish for a minute.

    Attributes:
        retries: retries after the first attempt (connect, read and status retries alike).
        initial_backoff_s: wait before the first retry, seconds.
        increment_base_s: base of the exponential growth, seconds (below 1 the waits
            shrink instead: only for tests).
        jitter_s: +/- random spread of every wait, seconds.
        connection_timeout_s: TCP connect timeout per attempt, seconds.
        read_timeout_s: wait for a response per attempt, seconds.
    """

    retries: int = 3
    initial_backoff_s: float = 0.2
    increment_base_s: float = 1.5
    jitter_s: float = 0.1
    connection_timeout_s: float = 5.0
    read_timeout_s: float = 30.0

    def __post_init__(self) -> None:
        if not 0 <= self.retries <= 10:
            raise ConfigError("retries must be between 0 and 10")
        if self.initial_backoff_s < 0 or self.increment_base_s <= 0 or self.jitter_s < 0:
            raise ConfigError("backoff must be >= 0 s, its increment base > 0, jitter >= 0 s")
        if self.connection_timeout_s <= 0 or self.read_timeout_s <= 0:
            raise ConfigError("timeouts must be positive")

    @property
    def max_backoff_s(self) -> float:
        """The longest total wait between attempts (jitter included), seconds."""
        waits = [
            self.initial_backoff_s + (0 if n == 0 else self.increment_base_s ** n)
            for n in range(self.retries)
        ]
        return sum(waits) + self.retries * self.jitter_s

    def policy(self) -> ExponentialRetry:
        """The SDK retry policy (pass as ``retry_policy=`` to a client)."""
        # The SDK annotates these as int but computes with floats throughout.
        return ExponentialRetry(
            initial_backoff=self.initial_backoff_s,  # type: ignore[arg-type]
            increment_base=self.increment_base_s,  # type: ignore[arg-type]
            retry_total=self.retries,
            random_jitter_range=self.jitter_s,  # type: ignore[arg-type]
            retry_connect=self.retries,
            retry_read=self.retries,
            retry_status=self.retries,
        )


class RequestCounter:
    """Counts HTTP requests, retries included: pass it as a client's ``raw_request_hook``.

    (The storage SDK builds its own pipeline and ignores ``per_retry_policies``; its
    request hook runs after the retry policy, so once per attempt.)
    """

    def __init__(self) -> None:
        """Start at zero."""
        self._lock = threading.Lock()
        self.count = 0

    def __call__(self, request: PipelineRequest[Any]) -> None:  # noqa: ARG002 -- SDK hook
        """Count one request."""
        with self._lock:
            self.count += 1


def error_code(exc: AzureError) -> str | None:
    """The service's error code ("BlobAlreadyExists"), wherever this exception keeps it.

    Storage errors carry ``error_code``; some generated operations (the immutability
    calls Azurite answers with 501) raise a bare ``HttpResponseError``, whose code is only
    in the ``x-ms-error-code`` header or the XML body.
    """
    code = getattr(exc, "error_code", None)
    if code:
        return str(getattr(code, "value", code))
    response = getattr(exc, "response", None)
    if response is not None:
        header = response.headers.get("x-ms-error-code")
        if header:
            return str(header)
    found = _XML_CODE.search(str(getattr(exc, "message", "") or exc))
    return found.group(1) if found else None


def status_code(exc: AzureError) -> int | None:
    """The HTTP status, or None when no response came back."""
    status = getattr(exc, "status_code", None)
    return int(status) if status is not None else None


def redact(text: str) -> str:
    """``text`` with SAS signatures and account keys replaced by "REDACTED"."""
    return _SECRETS.sub(lambda m: f"{m.group(1)}=REDACTED", text)


def is_already_exists(exc: AzureError) -> bool:
    """A create-if-absent found the blob there (409 BlobAlreadyExists).

    A blob under a WORM policy may answer a conditional create with its immutability code
    instead; that, too, means the blob exists (a new name is never refused).
    """
    code = error_code(exc)
    return status_code(exc) == 409 and (
        code == "BlobAlreadyExists" or code in {"BlobImmutableDueToPolicy",
                                                 "BlobImmutableDueToLegalHold"}
    )


def is_container_missing(exc: AzureError) -> bool:
    """The container does not exist (404 ContainerNotFound)."""
    return isinstance(exc, ResourceNotFoundError) and error_code(exc) == "ContainerNotFound"


def is_not_implemented(exc: AzureError) -> bool:
    """The storage does not implement the call (Azurite: 501 APINotImplemented)."""
    return status_code(exc) == 501 or error_code(exc) == NOT_IMPLEMENTED_CODE


def is_transient(exc: AzureError) -> bool:
    """Worth retrying later: no response, a timeout, throttling or a server fault."""
    if isinstance(exc, ServiceRequestError | ServiceResponseError):
        return True
    return status_code(exc) in TRANSIENT_STATUS or error_code(exc) in TRANSIENT_CODES


def translate(exc: AzureError, key: str, *, head: bool = False) -> StorageError | ConfigError:
    """The auditseal error for an Azure SDK failure on ``key`` (raise it ``from exc``).

    Args:
        exc: what the SDK raised.
        key: the object key (or, for the head, the head's description).
        head: the failure is on the head's compare-and-swap, where 409/412 mean another
            writer moved it.
    """
    code = error_code(exc)
    status = status_code(exc)
    message = redact(_first_line(exc))
    if code in REFUSED_CODES:
        return StorageRefused(key, code, message)
    if head and (isinstance(exc, ResourceModifiedError | ResourceExistsError)
                 or status in {409, 412}):
        return StorageConflict(key, HEAD_CONFLICT)
    if isinstance(exc, ResourceNotFoundError) or status == 404:
        return ObjectNotFound(key)
    if type(exc).__name__ == "CredentialUnavailableError":  # azure-identity, imported lazily
        return ConfigError(
            "no Azure credentials found: set AUDITSEAL_AZURE_CONNECTION_STRING, "
            "AUDITSEAL_AZURE_ACCOUNT_KEY or AUDITSEAL_AZURE_SAS_TOKEN, or run where a managed "
            f"identity or 'az login' is available ({message})"
        )
    if is_transient(exc):
        what = f"HTTP {status} {code}" if status else type(exc).__name__
        return StorageUnavailable(f"{key}: Azure storage unavailable ({what}): {message}")
    if isinstance(exc, ClientAuthenticationError) or status in {401, 403}:
        return StorageError(
            f"{key}: Azure refused the credentials (HTTP {status} {code}); check the key, SAS "
            f"permissions or role assignment (Storage Blob Data Contributor): {message}"
        )
    if isinstance(exc, HttpResponseError) and status is not None:
        return StorageError(f"{key}: Azure storage error (HTTP {status} {code}): {message}")
    return StorageError(f"{key}: Azure storage error ({type(exc).__name__}): {message}")


def _first_line(exc: AzureError) -> str:
    text = str(getattr(exc, "message", None) or exc)
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__
