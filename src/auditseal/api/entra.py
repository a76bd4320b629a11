"""Microsoft Entra ID bearer tokens: validating an access token and mapping its app roles.

Concept: the *Entra ID* half of authentication (docs/api.md, "Authentication and roles").
An Entra access token is a JWT (RFC 7519) signed with RS256 by one of the tenant's keys,
published as a JWK Set (RFC 7517) at
``https://login.microsoftonline.com/<tenant>/discovery/v2.0/keys``. A token is accepted
only if all of these hold (Microsoft identity platform, "Access tokens", "Validate
tokens"):

- the header names ``alg: RS256`` and a ``kid`` found in the tenant's key set (the set is
  cached and fetched again once when a token names an unknown ``kid``, which is how key
  rotation shows up; forced fetches are rate-limited so junk tokens cannot make us hammer
  the endpoint);
- the signature verifies with that key;
- ``iss`` is the tenant's v2 issuer ``https://login.microsoftonline.com/<tenant>/v2.0`` or
  v1 issuer ``https://sts.windows.net/<tenant>/`` (or what the caller configured), and
  ``tid``, when present, is the tenant;
- ``aud`` is (or contains) one of the configured audiences (app ID URI or client id);
- ``exp`` is in the future and ``nbf`` in the past, with a small leeway for clock skew;
- the ``roles`` claim holds at least one app role in the role map
  (``auditseal.ingest|reader|auditor|admin``); the highest one wins.

:meth:`EntraValidator.validate` never raises: any failure is ``None``, and the reason is
kept for the failed-authentication audit event (:meth:`EntraValidator.check` returns it,
and :attr:`EntraValidator.last_reason` holds it for the calling thread).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast
from urllib.parse import urlsplit

import httpx
import jwt

from auditseal.api.auth import Principal
from auditseal.api.keys import ROLES, Role
from auditseal.clock import Clock, SystemClock
from auditseal.errors import ConfigError

__all__ = ["DEFAULT_ROLE_MAP", "EntraCheck", "EntraValidator", "JwksCache", "entra_issuers"]

DEFAULT_ROLE_MAP: Mapping[str, Role] = {f"auditseal.{role}": role for role in ROLES}
"""Entra app role value -> auditseal role."""

_RANK: dict[Role, int] = {role: rank for rank, role in enumerate(ROLES)}  # admin highest
_LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})
_NAME_CLAIMS = ("preferred_username", "upn", "unique_name", "app_displayname", "azp", "appid")

Fetch = Callable[[str], bytes]


def entra_issuers(tenant_id: str) -> tuple[str, str]:
    """The v2 and v1 issuers of a tenant's access tokens."""
    return (f"https://login.microsoftonline.com/{tenant_id}/v2.0",
            f"https://sts.windows.net/{tenant_id}/")


@dataclass(frozen=True)
class EntraCheck:
    """The outcome of validating one token.

    Attributes:
        principal: the caller, or None when the token was refused.
        reason: why it was refused ("" when accepted); never contains the token.
    """

    principal: Principal | None
    reason: str = ""


class _Refused(Exception):
    """Internal: a check failed; the message is the reason."""


class JwksCache:
    """The tenant's signing keys by ``kid``: fetched lazily, refreshed on an unknown kid."""

    def __init__(self, url: str, *, fetch: Fetch, ttl_s: float, min_refresh_interval_s: float,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        """Serve keys from ``url``; keep them ``ttl_s``; force a fetch at most once per
        ``min_refresh_interval_s``."""
        self.url = url
        self._fetch = fetch
        self._ttl_s = ttl_s
        self._min_refresh_s = min_refresh_interval_s
        self._monotonic = monotonic
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: float | None = None
        self._lock = threading.Lock()
        self.fetches = 0

    def key(self, kid: str) -> jwt.PyJWK:
        """The key named ``kid``.

        Raises:
            _Refused: the key set cannot be fetched, or has no such key after a refresh.
        """
        with self._lock:
            now = self._monotonic()
            stale = self._fetched_at is None or now - self._fetched_at >= self._ttl_s
            if stale or (kid not in self._keys and self._may_refresh(now)):
                self._refresh(now)
            found = self._keys.get(kid)
        if found is None:
            raise _Refused(f"signing key {kid!r} is not in the tenant's key set")
        return found

    def _may_refresh(self, now: float) -> bool:
        return self._fetched_at is None or now - self._fetched_at >= self._min_refresh_s

    def _refresh(self, now: float) -> None:
        self.fetches += 1
        try:
            document = self._fetch(self.url)
            key_set = jwt.PyJWKSet.from_json(document.decode())
        except (httpx.HTTPError, jwt.PyJWKSetError, ValueError, UnicodeDecodeError) as exc:
            if self._keys:
                return  # keep serving the keys we have; retry after the interval
            raise _Refused(f"cannot fetch the tenant's signing keys: {exc}") from None
        finally:
            self._fetched_at = now
        keys: dict[str, jwt.PyJWK] = {}
        for key in key_set.keys:
            if key.key_id and key.public_key_use in (None, "sig"):
                keys[key.key_id] = key
        self._keys = keys


class EntraValidator:
    """Validates Entra ID access tokens for one tenant and API (see the module docstring)."""

    def __init__(
        self,
        tenant_id: str,
        audience: str | Sequence[str],
        *,
        jwks_url: str | None = None,
        issuer: str | Sequence[str] | None = None,
        role_map: Mapping[str, Role] = DEFAULT_ROLE_MAP,
        clock: Clock | None = None,
        leeway_s: float = 120.0,
        jwks_ttl_s: float = 24 * 3600.0,
        min_refresh_interval_s: float = 60.0,
        fetch: Fetch | None = None,
        http_timeout_s: float = 5.0,
    ) -> None:
        """Validate tokens of ``tenant_id`` for ``audience``.

        Args:
            tenant_id: the directory (tenant) id.
            audience: accepted ``aud`` values: the API's app ID URI and/or client id.
            jwks_url: the key set; defaults to the tenant's v2 keys endpoint. Must be HTTPS
                unless it is on a loopback address (tests serve one on 127.0.0.1).
            issuer: accepted ``iss`` values; default: the tenant's v2 and v1 issuers.
            role_map: Entra app role value -> auditseal role.
            clock: time for ``exp``/``nbf``; the system clock by default.
            leeway_s: clock skew allowed on ``exp`` and ``nbf``, in seconds.
            jwks_ttl_s: how long a fetched key set is used before it is fetched again.
            min_refresh_interval_s: least time between fetches forced by unknown kids.
            fetch: fetches a URL's bytes; default: an HTTPS GET with httpx.
            http_timeout_s: timeout of the default fetch.

        Raises:
            ConfigError: an empty tenant or audience, or a plain-HTTP key set URL that is
                not on a loopback address.
        """
        if not tenant_id or not audience:
            raise ConfigError("Entra ID validation needs a tenant id and an audience")
        self.tenant_id = tenant_id
        self.audiences = frozenset([audience] if isinstance(audience, str) else audience)
        self.issuers = frozenset(
            entra_issuers(tenant_id) if issuer is None
            else [issuer] if isinstance(issuer, str) else issuer
        )
        url = jwks_url or f"https://login.microsoftonline.com/{tenant_id}/discovery/v2.0/keys"
        parts = urlsplit(url)
        if parts.scheme != "https" and not (
                parts.scheme == "http" and parts.hostname in _LOOPBACK):
            raise ConfigError(f"the JWKS URL must use https: {url}")
        self.role_map = dict(role_map)
        self.leeway_s = leeway_s
        self._clock = clock or SystemClock()
        self.jwks = JwksCache(url, fetch=fetch or _https_fetcher(http_timeout_s),
                              ttl_s=jwks_ttl_s, min_refresh_interval_s=min_refresh_interval_s)
        self._local = threading.local()

    @property
    def last_reason(self) -> str:
        """Why the last token this thread validated was refused ("" if it was accepted)."""
        return cast(str, getattr(self._local, "reason", ""))

    def validate(self, token: str) -> Principal | None:
        """The caller a valid token names, or None for any invalid token (never raises)."""
        return self.check(token).principal

    def check(self, token: str) -> EntraCheck:
        """Validate ``token``; return the principal or the reason it was refused."""
        try:
            result = EntraCheck(self._principal(token))
        except _Refused as exc:
            result = EntraCheck(None, str(exc))
        except Exception as exc:  # a refusal, never an error for the caller
            result = EntraCheck(None, f"token could not be validated ({type(exc).__name__})")
        self._local.reason = result.reason
        return result

    def _principal(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise _Refused("not a well-formed JWT") from None
        if header.get("alg") != "RS256":
            raise _Refused(f"token algorithm {str(header.get('alg'))[:20]!r} is not RS256")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise _Refused("token header has no key id (kid)")
        key = self.jwks.key(kid)
        try:
            claims: dict[str, Any] = jwt.decode(
                token, key.key, algorithms=["RS256"],
                # Time, issuer and audience are checked below, against our clock and with
                # reasons of our own; only the signature and the encoding are left to PyJWT.
                options={"verify_exp": False, "verify_nbf": False, "verify_iat": False,
                         "verify_aud": False, "verify_iss": False},
            )
        except jwt.InvalidSignatureError:
            raise _Refused("token signature does not verify") from None
        except jwt.PyJWTError as exc:
            raise _Refused(f"token does not decode: {exc}") from None
        self._check_claims(claims)
        return Principal(name=_name(claims), role=self._role(claims),
                         subject=_text(claims.get("oid")) or _text(claims.get("sub")))

    def _check_claims(self, claims: dict[str, Any]) -> None:
        issuer = claims.get("iss")
        if issuer not in self.issuers:
            raise _Refused(f"token issuer {str(issuer)[:120]!r} is not this tenant's")
        tid = claims.get("tid")
        if tid is not None and tid != self.tenant_id:
            raise _Refused(f"token is for tenant {str(tid)[:60]!r}")
        audience = claims.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if not self.audiences.intersection(a for a in audiences if isinstance(a, str)):
            raise _Refused(f"token audience {str(audience)[:120]!r} is not this API")
        now = self._clock.now()
        expires = _timestamp(claims, "exp")
        if expires is None:
            raise _Refused("token has no expiry (exp)")
        if now.timestamp() > expires + self.leeway_s:
            raise _Refused(f"token expired at {_iso(expires)}")
        not_before = _timestamp(claims, "nbf")
        if not_before is not None and now.timestamp() + self.leeway_s < not_before:
            raise _Refused(f"token is not valid before {_iso(not_before)}")

    def _role(self, claims: dict[str, Any]) -> Role:
        roles = claims.get("roles")
        granted = [self.role_map[r] for r in roles or () if isinstance(r, str)
                   and r in self.role_map] if isinstance(roles, list) else []
        if not granted:
            raise _Refused("token has no auditseal app role (roles claim)")
        return max(granted, key=_RANK.__getitem__)


def _https_fetcher(timeout_s: float) -> Fetch:
    def fetch(url: str) -> bytes:
        response = httpx.get(url, timeout=timeout_s, follow_redirects=False)
        response.raise_for_status()
        return response.content

    return fetch


def _timestamp(claims: dict[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Refused(f"token claim {name!r} is not a number")
    return float(value)


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).isoformat(timespec="seconds")


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _name(claims: dict[str, Any]) -> str:
    for claim in _NAME_CLAIMS:
        if text := _text(claims.get(claim)):
            return text[:200]
    return _text(claims.get("oid")) or _text(claims.get("sub")) or "entra-token"
