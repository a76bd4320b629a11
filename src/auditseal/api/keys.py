"""API keys: created once, stored hashed, revocable, optionally expiring.

Concept: the *API key store* (docs/api.md, "Authentication and roles"). A key reads
``as_<id>_<secret>``: ``id`` is 12 hex digits naming the key in listings and in the log,
``secret`` is 32 random bytes in URL-safe base64. Only SHA-256 of the secret is kept, in
``<log state>/api-keys.json`` (mode 0600, the log's private state folder, never served);
a presented secret is compared in constant time. A full-entropy secret needs no slow
password hash: nobody can guess 256 bits, so a stolen file yields no usable key.

The file is replaced atomically on every change. A serving process notices changes made
by ``auditseal keys create|revoke`` (it re-reads the file when its mtime or size changes)
and reports what changed, so the service can seal those administrative actions.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
import threading
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import orjson

from auditseal.errors import ConfigError

Role = Literal["ingest", "reader", "auditor", "admin"]
ROLES: tuple[Role, ...] = ("ingest", "reader", "auditor", "admin")
KEYS_FILE = "api-keys.json"
_FORMAT = 1
_TOKEN = re.compile(r"^as_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")


@dataclass(frozen=True)
class ApiKey:
    """What is kept of one key: never its secret.

    Attributes:
        id: 12 hex digits, public.
        name: a label for people.
        role: ingest, reader, auditor or admin.
        created: when it was made (UTC).
        expires: when it stops working, or None.
        revoked: when it was revoked, or None.
        secret_sha256: hex SHA-256 of the secret part.
    """

    id: str
    name: str
    role: Role
    created: datetime
    expires: datetime | None
    revoked: datetime | None
    secret_sha256: str

    def state(self, now: datetime) -> str:
        """"active", "revoked" or "expired"."""
        if self.revoked is not None:
            return "revoked"
        if self.expires is not None and now >= self.expires:
            return "expired"
        return "active"

    def public(self, now: datetime) -> dict[str, Any]:
        """Metadata for listings: everything but the hash."""
        return {"id": self.id, "name": self.name, "role": self.role,
                "created": _iso(self.created), "expires": _iso(self.expires),
                "revoked": _iso(self.revoked), "state": self.state(now)}


@dataclass(frozen=True)
class KeyCheck:
    """The outcome of presenting a token: the key, or why not."""

    key: ApiKey | None
    key_id: str | None
    reason: str


def parse_token(token: str) -> tuple[str, str] | None:
    """``(id, secret)`` of an API key token, or None if it is not one."""
    match = _TOKEN.match(token)
    return None if match is None else (match.group(1), match.group(2))


def looks_like_api_key(token: str) -> bool:
    """Whether a bearer token is meant as an auditseal API key (not a JWT)."""
    return token.startswith("as_")


class KeyStore:
    """The keys of one log, in its private state folder; safe across threads."""

    def __init__(self, state_dir: Path) -> None:
        """Use ``state_dir/api-keys.json`` (created on the first key)."""
        self.path = state_dir / KEYS_FILE
        self._lock = threading.Lock()
        self._keys: dict[str, ApiKey] = {}
        self._stamp: tuple[int, int] | None = None
        self._outside: list[tuple[str, ApiKey]] = []
        self._load()
        self._outside = []  # what was there at the start is no change

    def create(self, role: str, name: str = "", expires_in_days: float | None = None,
               now: datetime | None = None) -> tuple[ApiKey, str]:
        """Make a key; return it and the token (shown once, never stored).

        Raises:
            ConfigError: unknown role or a non-positive expiry.
        """
        if role not in ROLES:
            raise ConfigError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
        if expires_in_days is not None and expires_in_days <= 0:
            raise ConfigError("expires_in_days must be positive")
        now = now or datetime.now(UTC)
        key_id = secrets.token_hex(6)
        secret = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
        expires = None if expires_in_days is None else now + timedelta(days=expires_in_days)
        key = ApiKey(key_id, name or f"{role}-{key_id}", role, now, expires, None,
                     hashlib.sha256(secret.encode()).hexdigest())
        with self._lock:
            self._refresh()
            self._keys[key_id] = key
            self._save()
        return key, f"as_{key_id}_{secret}"

    def revoke(self, key_id: str, now: datetime | None = None) -> ApiKey:
        """Revoke a key (idempotent: an already revoked key keeps its time).

        Raises:
            ConfigError: no such key.
        """
        with self._lock:
            self._refresh()
            key = self._keys.get(key_id)
            if key is None:
                raise ConfigError(f"no API key with id {key_id!r}")
            if key.revoked is None:
                key = self._keys[key_id] = replace(key, revoked=now or datetime.now(UTC))
                self._save()
            return key

    def all(self) -> list[ApiKey]:
        """Every key, oldest first."""
        with self._lock:
            self._refresh()
            return sorted(self._keys.values(), key=lambda k: (k.created, k.id))

    def check(self, token: str, now: datetime | None = None) -> KeyCheck:
        """Whether ``token`` is an active key."""
        parsed = parse_token(token)
        if parsed is None:
            return KeyCheck(None, None, "malformed API key")
        key_id, secret = parsed
        with self._lock:
            self._refresh()
            key = self._keys.get(key_id)
        digest = hashlib.sha256(secret.encode()).hexdigest()
        expected = key.secret_sha256 if key is not None else "0" * 64
        matches = hmac.compare_digest(digest, expected)  # constant time, also for no key
        if key is None or not matches:
            return KeyCheck(None, key_id, "unknown API key")
        state = key.state(now or datetime.now(UTC))
        if state != "active":
            return KeyCheck(None, key_id, f"API key {state}")
        return KeyCheck(key, key_id, "ok")

    def changes(self) -> list[tuple[str, ApiKey]]:
        """What other processes changed in the file since the last call (re-reading it).

        Returns ``("created", key)`` and ``("revoked", key)`` pairs, for sealing; changes
        made through this store are not included (their caller records them).
        """
        with self._lock:
            self._refresh()
            found, self._outside = self._outside, []
            return found

    # -- file ------------------------------------------------------------------------------

    def _file_stamp(self) -> tuple[int, int] | None:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return None
        return stat.st_mtime_ns, stat.st_size

    def _refresh(self) -> None:
        if self._file_stamp() != self._stamp:
            self._load()

    def _load(self) -> None:
        self._stamp = self._file_stamp()
        if self._stamp is None:
            self._keys = {}
            return
        try:
            data = orjson.loads(self.path.read_bytes())
            keys = {item["id"]: _from_json(item) for item in data["keys"]}
        except (OSError, orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"{self.path} is damaged ({exc}); fix or remove it") from None
        if data.get("format") != _FORMAT:
            raise ConfigError(f"{self.path}: unsupported key file format")
        for key_id, key in keys.items():
            old = self._keys.get(key_id)
            if old is None:
                self._outside.append(("created", key))
            elif old.revoked is None and key.revoked is not None:
                self._outside.append(("revoked", key))
        self._keys = keys

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = {"format": _FORMAT, "keys": [_to_json(k) for k in self._keys.values()]}
        tmp = self.path.with_name(f".{KEYS_FILE}.{secrets.token_hex(4)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(orjson.dumps(data, option=orjson.OPT_INDENT_2) + b"\n")
            out.flush()
            os.fsync(out.fileno())
        tmp.replace(self.path)
        self._stamp = self._file_stamp()


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _parse(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text.replace("Z", "+00:00"))


def _to_json(key: ApiKey) -> dict[str, Any]:
    data = asdict(key)
    for name in ("created", "expires", "revoked"):
        data[name] = _iso(data[name])
    return data


def _from_json(item: dict[str, Any]) -> ApiKey:
    if item["role"] not in ROLES:
        raise ValueError(f"unknown role {item['role']!r}")
    created = _parse(item["created"])
    if created is None:
        raise ValueError("key without creation time")
    return ApiKey(str(item["id"]), str(item["name"]), item["role"], created,
                  _parse(item.get("expires")), _parse(item.get("revoked")),
                  str(item["secret_sha256"]))
