"""The probe's tamper interface on Azure Blob Storage.

Each attempt is the data-plane call an intruder holding the account key (or a SAS with
write/delete rights) would make; only an immutability policy or legal hold stops it
(reference notes 1.6):

* overwrite: ``upload_blob(overwrite=True)`` (Put Blob without a condition);
* set_metadata: ``set_blob_metadata`` (Set Blob Metadata);
* set_tier: ``set_standard_blob_tier("Cool")`` -- allowed under WORM by design (1.10);
* delete: ``delete_blob`` (Delete Blob).

SDK failures are translated by ``auditseal.storage.azure_errors.translate``, so a WORM
refusal arrives as ``StorageRefused`` carrying Azure's code (``BlobImmutableDueToPolicy``).
"""

from __future__ import annotations

from collections.abc import Callable

from azure.core.exceptions import AzureError
from azure.storage.blob import BlobClient, ContainerClient, StandardBlobTier

from auditseal.errors import ConfigError
from auditseal.storage.azure_blob import AzureBlobObjectStore
from auditseal.storage.azure_errors import redact, translate
from auditseal.storage.base import validate_key

PROBE_METADATA = {"auditsealprobe": "tampered"}
_Action = Callable[[BlobClient], object]


class AzureBlobTamper:
    """``TamperTarget`` for blobs of one container under ``prefix``.

    Args:
        container: the data container's client, with rights to write and delete.
        prefix: the log's folder in the container ("" for the whole container).
    """

    def __init__(self, container: ContainerClient, prefix: str = "") -> None:
        """Tamper with blobs ``prefix/<key>`` in ``container``."""
        self._container = container
        self._prefix = f"{prefix.strip('/')}/" if prefix.strip("/") else ""

    @classmethod
    def for_store(cls, store: AzureBlobObjectStore) -> AzureBlobTamper:
        """The tamper target for the same container and prefix as ``store``.

        Raises:
            ConfigError: the store does not expose its container client.
        """
        return cls(container_client_of(store), prefix_of(store))

    def overwrite(self, key: str, data: bytes) -> None:
        """Put Blob over the existing blob."""
        self._call(key, lambda blob: blob.upload_blob(data, overwrite=True))

    def delete(self, key: str) -> None:
        """Delete Blob."""
        self._call(key, lambda blob: blob.delete_blob())

    def set_metadata(self, key: str) -> None:
        """Set Blob Metadata."""
        self._call(key, lambda blob: blob.set_blob_metadata(PROBE_METADATA))

    def set_tier(self, key: str) -> None:
        """Set Blob Tier to Cool (online; Archive would make the canary unreadable)."""
        self._call(key, lambda blob: blob.set_standard_blob_tier(StandardBlobTier.COOL))

    def describe(self) -> str:
        """``azure blob <container URL>/<prefix>`` without credentials."""
        url = redact(str(self._container.url)).split("?", 1)[0]
        return f"azure blob {url}/{self._prefix}".rstrip("/")

    def _call(self, key: str, action: _Action) -> None:
        blob = self._container.get_blob_client(self._prefix + validate_key(key))
        try:
            action(blob)
        except AzureError as exc:
            raise translate(exc, key) from exc



def container_client_of(store: object) -> ContainerClient:
    """The ``ContainerClient`` an Azure object or head store talks to.

    Raises:
        ConfigError: ``store`` is not backed by an Azure container.
    """
    # The stores keep their client private; prefer a public accessor once they offer one.
    container = getattr(store, "container_client", None) or getattr(store, "_container", None)
    if not isinstance(container, ContainerClient):
        describe = getattr(store, "describe", None)
        where = describe() if callable(describe) else type(store).__name__
        raise ConfigError(f"{where} is not an Azure Blob container")
    return container


def prefix_of(store: object) -> str:
    """The log's folder inside the store's container ("" for the whole container)."""
    prefix = getattr(store, "prefix", None)
    if prefix is None:
        prefix = getattr(store, "_prefix", "")
    return str(prefix).strip("/")
