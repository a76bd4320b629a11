"""Azurite starts, and the Azure SDK talks to it: the ground the Azure tests stand on."""

from __future__ import annotations

from azure.storage.blob import BlobServiceClient

from tests.azurite import Azurite


def test_upload_and_read_back(azurite: Azurite) -> None:
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    container = service.create_container("smoke")
    container.upload_blob("a/b.txt", b"hello")
    assert container.download_blob("a/b.txt").readall() == b"hello"
    assert [b.name for b in container.list_blobs()] == ["a/b.txt"]
