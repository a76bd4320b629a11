"""RFC 6962 / RFC 9162 Merkle tree hashing with SHA-256 (RFC 9162 section 2.1.1).

Leaves and interior nodes are domain-separated by a one-byte prefix so that no leaf can
be passed off as a node (second-preimage resistance).
"""

from __future__ import annotations

import hashlib

HASH_SIZE = 32
"""Bytes in one SHA-256 hash."""

LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"

EMPTY_ROOT = hashlib.sha256(b"").digest()
"""MTH({}) = SHA-256 of the empty string: the root of a tree with no leaves."""

_sha256 = hashlib.sha256


def leaf_hash(entry: bytes) -> bytes:
    """Return ``SHA-256(0x00 || entry)``, the leaf hash of one entry."""
    return _sha256(LEAF_PREFIX + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Return ``SHA-256(0x01 || left || right)``, the hash of an interior node."""
    return _sha256(NODE_PREFIX + left + right).digest()
