"""Who is calling, and may they: bearer API keys and Entra ID tokens mapped to roles.

Concept: *authentication and roles* (docs/api.md, "Authentication and roles"). A route
declares the role it needs with ``Depends(require("reader"))`` and receives the
:class:`Principal`. Roles nest: admin may do everything, auditor everything a reader may;
ingest may only append. A token starting ``as_`` is an auditseal API key
(:mod:`auditseal.api.keys`); any other token goes to the Entra ID validator when one is
configured. 401 ``unauthenticated`` (with ``WWW-Authenticate: Bearer``) for a missing or
bad token, 403 ``forbidden`` for a role that may not. Every refusal is sealed in the log
as an administrative record (``kind: "admin"``) without the token itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Request

from auditseal.api.keys import KeyStore, Role, looks_like_api_key
from auditseal.api.limits import ApiError
from auditseal.api.settings import TokenValidator

_GRANTS: dict[Role, frozenset[Role]] = {
    "ingest": frozenset({"ingest", "admin"}),
    "reader": frozenset({"reader", "auditor", "admin"}),
    "auditor": frozenset({"auditor", "admin"}),
    "admin": frozenset({"admin"}),
}
SealAdmin = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class Principal:
    """An authenticated caller.

    Attributes:
        name: for people and the log (a key's name, a token's user or app name).
        role: the role granted.
        key_id: the API key's id, for an API key.
        subject: the token's subject (``oid``/``sub``), for an Entra ID token.
    """

    name: str
    role: Role
    key_id: str | None = None
    subject: str | None = None

    @property
    def ident(self) -> str:
        """A stable name for rate limits and the ``src`` of what this caller seals."""
        if self.key_id is not None:
            return f"key/{self.key_id}"
        return f"entra/{self.subject or self.name}"


def may(role: Role, needed: Role) -> bool:
    """Whether ``role`` grants what ``needed`` requires."""
    return role in _GRANTS[needed]


class Authenticator:
    """Turns an Authorization header into a principal, sealing every refusal."""

    def __init__(self, keys: KeyStore, seal_admin: SealAdmin,
                 entra: TokenValidator | None = None) -> None:
        """Check keys in ``keys``, tokens with ``entra``; record refusals via ``seal_admin``."""
        self.keys = keys
        self.entra = entra
        self._seal = seal_admin

    def authenticate(self, request: Request) -> Principal:
        """The caller of ``request``.

        Raises:
            ApiError: 401 for a missing, malformed, unknown, expired or revoked credential.
        """
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if not header:
            self._refuse(request, "no credentials", None)
        if scheme.lower() != "bearer" or not token:
            self._refuse(request, "not a Bearer token", None)
        if looks_like_api_key(token):
            check = self.keys.check(token)
            if check.key is None:
                self._refuse(request, check.reason, check.key_id)
            key = check.key
            assert key is not None
            return Principal(name=key.name, role=key.role, key_id=key.id)
        if self.entra is not None:
            try:
                principal = self.entra.validate(token)
                why = self.entra.last_reason
            except Exception as exc:
                principal, why = None, f"validator failed ({type(exc).__name__})"
            if principal is not None:
                return principal
            # the log gets the validator's reason; the caller only that the token was refused
            self._refuse(request, "invalid or unauthorized Entra ID token", None,
                         sealed=f"Entra ID token refused: {why or 'invalid'}")
        self._refuse(request, "unknown token (not an auditseal API key)", None)
        raise AssertionError("unreachable")  # pragma: no cover

    def authorize(self, request: Request, principal: Principal, needed: Role) -> Principal:
        """``principal`` if its role grants ``needed``.

        Raises:
            ApiError: 403 ``forbidden``.
        """
        if may(principal.role, needed):
            return principal
        self.seal(request, "auth.forbidden", f"role {principal.role} may not; needs {needed}",
                  principal)
        raise ApiError(403, "forbidden",
                       f"this {principal.role} credential may not do this; it needs {needed}")

    def seal(self, request: Request, action: str, detail: str,
             principal: Principal | None = None, key_id: str | None = None,
             **extra: Any) -> None:
        """Seal one administrative record about ``request``."""
        record: dict[str, Any] = {
            "auditseal": action,
            "detail": detail,
            "method": request.method,
            "path": request.url.path,
            "client": request.client.host if request.client else None,
        }
        if principal is not None:
            record["principal"] = {"name": principal.name, "role": principal.role,
                                   "id": principal.ident}
        if key_id is not None:
            record["key_id"] = key_id
        record.update(extra)
        self._seal(record)

    def _refuse(self, request: Request, reason: str, key_id: str | None,
                sealed: str | None = None) -> None:
        self.seal(request, "auth.failed", sealed or reason, key_id=key_id)
        raise ApiError(401, "unauthenticated", f"authentication failed: {reason}",
                       headers={"WWW-Authenticate": 'Bearer realm="auditseal"'})


def authenticator(request: Request) -> Authenticator:
    """The app's authenticator."""
    found: Authenticator = request.app.state.auth
    return found


def require(role: Role) -> Callable[[Request], Principal]:
    """A FastAPI dependency that admits callers whose role grants ``role``."""

    def dependency(request: Request) -> Principal:
        auth = authenticator(request)
        return auth.authorize(request, auth.authenticate(request), role)

    dependency.__name__ = f"require_{role}"
    return dependency


def optional_principal(request: Request) -> Principal | None:
    """The caller if credentials are given (for public routes that may say more)."""
    if not request.headers.get("authorization"):
        return None
    return authenticator(request).authenticate(request)
