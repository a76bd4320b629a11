"""Azure Monitor exports in a storage account: the blobs a collector tails.

Diagnostic settings with a storage destination write one append blob per resource and
hour (reference azure.md section 3.2)::

    insights-activity-logs/resourceId=/SUBSCRIPTIONS/<SUB>/y=YYYY/m=MM/d=DD/h=HH/m=00/PT1H.json
    insights-logs-<category>/resourceId=/SUBSCRIPTIONS/<SUB>/RESOURCEGROUPS/<RG>/PROVIDERS/
        <RP>/<TYPE>/<NAME>/y=YYYY/m=MM/d=DD/h=HH/m=00/PT1H.json

This source lists every ``insights-*`` container and its ``PT1H.json`` blobs, and reads
byte ranges of them. It only reads (list and ranged GET), so the export container may be
under a WORM policy. Azure SDK exceptions are translated here, once, into
``auditseal.errors``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.storage.blob import BlobServiceClient

from auditseal.errors import ConfigError, ObjectNotFound, StorageError, StorageUnavailable
from auditseal.ingest.collector import BlobInfo

CONTAINER_PREFIX = "insights-"
BLOB_SUFFIX = "/PT1H.json"
_TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})


class AzureExportSource:
    """The ``insights-*`` export blobs of one storage account, read-only."""

    def __init__(self, service: BlobServiceClient, *, container_prefix: str = CONTAINER_PREFIX
                 ) -> None:
        """Read through ``service`` (see :func:`open_export_source`)."""
        self._service = service
        self._prefix = container_prefix

    @property
    def account(self) -> str:
        """The storage account name."""
        name: str = self._service.account_name or "unknown"
        return name

    def list_blobs(self) -> list[BlobInfo]:
        """Every ``PT1H.json`` blob in every ``insights-*`` container, with its size."""
        found: list[BlobInfo] = []
        with _translated(f"{self.account}/{self._prefix}*"):
            for container in self._service.list_containers(name_starts_with=self._prefix):
                client = self._service.get_container_client(container.name)
                found.extend(
                    BlobInfo(
                        key=f"{container.name}/{blob.name}",
                        size=int(blob.size or 0),
                        last_modified=blob.last_modified,
                    )
                    for blob in client.list_blobs()
                    if blob.name.endswith(BLOB_SUFFIX) or blob.name == BLOB_SUFFIX[1:]
                )
        return found

    def read(self, key: str, start: int, end: int) -> bytes:
        """Bytes ``start <= i < end`` of the blob ``<container>/<name>`` (one ranged GET).

        Raises:
            ObjectNotFound: the blob or its container is gone.
        """
        if end <= start:
            return b""
        container, _, name = key.partition("/")
        with _translated(key):
            blob = self._service.get_blob_client(container, name)
            data: bytes = blob.download_blob(offset=start, length=end - start).readall()
        return data


def open_export_source(
    *, connection_string: str | None = None, account_url: str | None = None
) -> AzureExportSource:
    """Connect with a connection string, or to an account URL with Azure AD
    (``DefaultAzureCredential``: managed identity, environment, Azure CLI login).

    Raises:
        ConfigError: neither or both given, or the connection string is malformed.
    """
    if (connection_string is None) == (account_url is None):
        raise ConfigError(
            "give the storage account to collect from: --connection-string (or "
            "$AZURE_STORAGE_CONNECTION_STRING), or --account-url with an Azure AD login"
        )
    if connection_string is not None:
        try:
            service = BlobServiceClient.from_connection_string(connection_string)
        except ValueError as exc:
            raise ConfigError(f"the storage connection string is not usable: {exc}") from None
        return AzureExportSource(service)
    from azure.identity import DefaultAzureCredential

    assert account_url is not None
    return AzureExportSource(BlobServiceClient(account_url, credential=DefaultAzureCredential()))


@contextmanager
def _translated(where: str) -> Iterator[None]:
    """Turn Azure SDK exceptions into auditseal errors (the one place that does)."""
    try:
        yield
    except ResourceNotFoundError as exc:
        raise ObjectNotFound(where) from exc
    except ClientAuthenticationError as exc:
        raise ConfigError(
            f"{where}: the storage account refused our credentials ({exc.reason or exc})"
        ) from exc
    except (ServiceRequestError, ServiceResponseError) as exc:
        raise StorageUnavailable(f"{where}: cannot reach the storage account: {exc}") from exc
    except HttpResponseError as exc:
        code = getattr(exc, "error_code", None) or exc.reason
        if exc.status_code in _TRANSIENT_STATUS:
            raise StorageUnavailable(f"{where}: {exc.status_code} {code}") from exc
        if exc.status_code == 403:
            raise ConfigError(
                f"{where}: access denied ({code}); the collector needs list and read "
                "permission on the account's insights-* containers"
            ) from exc
        raise StorageError(f"{where}: {exc.status_code} {code}") from exc
    except AzureError as exc:
        raise StorageError(f"{where}: {exc}") from exc
