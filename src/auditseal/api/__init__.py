"""The HTTP service: ``auditseal serve`` (issue 5; the contract is docs/api.md).

:func:`create_app` builds the FastAPI app around one :class:`AuditService` (the writer,
its publisher, the index and alert follower); :class:`ServeSettings` configures both.

The names that need FastAPI, DuckDB or pySigma (:func:`create_app`, :class:`AuditService`,
:class:`Principal`, :func:`require`) are loaded on first use (PEP 562 ``__getattr__``), so
light users of this package -- ``auditseal keys`` reading :mod:`auditseal.api.keys`, the CLI
parser reading :mod:`auditseal.api.settings` -- do not pay for the web stack.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from auditseal.api.keys import ApiKey, KeyStore, Role
from auditseal.api.settings import ServeSettings

if TYPE_CHECKING:
    from auditseal.api.app import create_app
    from auditseal.api.auth import Principal, require
    from auditseal.api.service import AuditService

__all__ = ["ApiKey", "AuditService", "KeyStore", "Principal", "Role", "ServeSettings",
           "create_app", "require"]

# name -> the submodule that defines it; each imports FastAPI (and the service DuckDB, pySigma)
_LAZY = {
    "AuditService": "auditseal.api.service",
    "Principal": "auditseal.api.auth",
    "create_app": "auditseal.api.app",
    "require": "auditseal.api.auth",
}


def __getattr__(name: str) -> object:
    """Import the heavy exports on first access and cache them in the module."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """``dir()`` lists the lazy exports too."""
    return sorted({*globals(), *__all__})
