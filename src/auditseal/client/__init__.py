"""auditseal's Python client: send audit events, batched, retried and buffered on disk.

Usage::

    from auditseal.client import AuditsealClient, AuditLogHandler

    client = AuditsealClient("http://127.0.0.1:8080", api_key, buffer_dir="/var/lib/app/audit")
    client.send({"action": "login", "user": "alice"})
    logging.getLogger("audit").addHandler(AuditLogHandler(client))

See :mod:`auditseal.client.client` for delivery semantics and :func:`verify_receipt` for
checking a receipt offline against the log's pinned verifier key.
"""

from auditseal.client.buffer import DiskBuffer, MemoryQueue
from auditseal.client.client import AuditsealClient, Delivery, Rejection
from auditseal.client.handler import AuditLogHandler
from auditseal.client.receipt import verify_receipt

__all__ = [
    "AuditLogHandler",
    "AuditsealClient",
    "Delivery",
    "DiskBuffer",
    "MemoryQueue",
    "Rejection",
    "verify_receipt",
]
