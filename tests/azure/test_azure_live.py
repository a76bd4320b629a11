"""Opt-in: the storage contract and a WORM refusal check against a real Azure account.

Set ``AUDITSEAL_AZURE_LIVE_CONNECTION_STRING`` to run the whole storage contract there
(each test makes its own container and leaves it behind: use a throw-away account). For
the WORM check also set ``AUDITSEAL_AZURE_LIVE_WORM_CONTAINER`` to a container in that
account with a time-based retention policy (locked for a compliance check); the test only
creates new blobs there and then shows that overwriting and deleting them is refused.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from azure.core.exceptions import AzureError
from azure.storage.blob import BlobServiceClient

from auditseal.errors import StorageConflict, StorageRefused
from auditseal.storage import HeadStore, ObjectStore
from auditseal.storage.azure_blob import AzureBlobHeadStore, AzureBlobObjectStore
from auditseal.storage.azure_errors import AzureRetryConfig, RequestCounter, translate
from auditseal.storage.azure_location import client_options
from tests.contract import test_storage_contract as contract

LIVE = os.environ.get("AUDITSEAL_AZURE_LIVE_CONNECTION_STRING", "")
WORM = os.environ.get("AUDITSEAL_AZURE_LIVE_WORM_CONTAINER", "")
pytestmark = [
    pytest.mark.azure_live,
    pytest.mark.skipif(not LIVE, reason="needs a real Azure storage account: set "
                       "AUDITSEAL_AZURE_LIVE_CONNECTION_STRING to run (opt-in)"),
]


# The contract's tests, collected again here, where ``store``/``head_store`` are live.
globals().update({
    name: test for name, test in vars(contract).items()
    if name.startswith("test_") and "memory" not in name and name != "test_public_names_are_pinned"
})


def _service() -> BlobServiceClient:
    return BlobServiceClient.from_connection_string(
        LIVE, **client_options(AzureRetryConfig(), RequestCounter(), pool_size=16))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ObjectStore]:
    """Overrides the contract's fixture: every contract test runs on the live account."""
    backend = AzureBlobObjectStore(
        _service().get_container_client(f"auditseal-live-{uuid.uuid4().hex[:16]}"))
    yield backend
    backend.close()


@pytest.fixture
def head_store(tmp_path: Path) -> Iterator[HeadStore]:
    """Overrides the contract's fixture for the head tests."""
    backend = AzureBlobHeadStore(
        _service().get_container_client(f"auditseal-live-{uuid.uuid4().hex[:16]}"))
    yield backend
    backend.close()


@pytest.mark.skipif(not WORM, reason="set AUDITSEAL_AZURE_LIVE_WORM_CONTAINER to a container "
                    "with a time-based retention policy to run the WORM check (opt-in)")
def test_live_worm_container_refuses_overwrite_and_delete() -> None:
    service = _service()
    store = AzureBlobObjectStore(service.get_container_client(WORM), f"auditseal-live-check/"
                                 f"{uuid.uuid4().hex}")
    assert store.create("tile/0/000", b"sealed") is True
    assert store.create("tile/0/000", b"sealed") is False
    with pytest.raises(StorageConflict):
        store.create("tile/0/000", b"forged")
    protection = store.protection("tile/0/000")
    assert protection.read_only, protection.detail
    blob = service.get_container_client(WORM).get_blob_client(
        f"{store.describe().split('/' + WORM + '/', 1)[1]}/tile/0/000")
    for attempt in (lambda: blob.upload_blob(b"forged", overwrite=True), blob.delete_blob):
        with pytest.raises(AzureError) as caught:
            attempt()
        refused = translate(caught.value, "tile/0/000")
        assert isinstance(refused, StorageRefused), refused
        assert refused.code in {"BlobImmutableDueToPolicy", "BlobImmutableDueToLegalHold"}
    assert store.read("tile/0/000") == b"sealed"
