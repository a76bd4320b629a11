"""Test doubles for services that cannot run here (Azure's control plane, WORM enforcement).

Each double behaves as the vendor documents, with the same status and error codes, and its
module docstring says which behaviours it reproduces and which it does not.
"""

from tests.doubles.azure_worm import AzureWormDouble, StaticTokenCredentialDouble

__all__ = ["AzureWormDouble", "StaticTokenCredentialDouble"]
