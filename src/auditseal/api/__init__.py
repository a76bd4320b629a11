"""The HTTP service: ``auditseal serve`` (issue 5; the contract is docs/api.md).

:func:`create_app` builds the FastAPI app around one :class:`AuditService` (the writer,
its publisher, the index and alert follower); :class:`ServeSettings` configures both.
"""

from auditseal.api.app import create_app
from auditseal.api.auth import Principal, require
from auditseal.api.keys import ApiKey, KeyStore, Role
from auditseal.api.service import AuditService
from auditseal.api.settings import ServeSettings

__all__ = ["ApiKey", "AuditService", "KeyStore", "Principal", "Role", "ServeSettings",
           "create_app", "require"]
