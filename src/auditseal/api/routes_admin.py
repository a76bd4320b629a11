"""Administration over HTTP: API keys, alert rules and run-time settings.

Concept: the *admin role's* routes (docs/api.md, "Administration": "admin (keys, rules,
settings)"). Keys live in :mod:`auditseal.api.keys`, rules in
:mod:`auditseal.api.rule_catalog`, run-time settings in
:mod:`auditseal.api.runtime_settings`; this module turns requests into their calls and
seals every administrative action *and its outcome* -- refusals included -- as an
``admin`` record in the log, so the log itself shows who changed what the service does.

None of these routes touches an event: keys, rules and settings are configuration.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from auditseal.api.auth import Principal, require
from auditseal.api.ingest import read_body, service_of
from auditseal.api.keys import Role
from auditseal.api.limits import ApiError, RateLimiter, require_media_type, too_large
from auditseal.api.rule_catalog import (
    MAX_RULE_BYTES,
    AlertTarget,
    RuleCatalog,
    RuleConflict,
    RuleRejected,
)
from auditseal.api.runtime_settings import RuntimeSettings, SettingsStore
from auditseal.errors import ConfigError

log = logging.getLogger("auditseal.serve")
router = APIRouter(tags=["admin"])
_ADMIN = Depends(require("admin"))
_READER = Depends(require("reader"))
RULE_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml",
              "text/plain")
SEALED_YAML_BYTES = 16 << 10
"""An uploaded rule up to 16 KiB is sealed whole in its admin record (one entry holds at
most 64 KiB); a larger one by its SHA-256 only."""


class KeyRequest(BaseModel):
    """A new API key."""

    role: Role
    name: str = Field("", max_length=200)
    expires_in_days: float | None = Field(None, gt=0)


def install(app: FastAPI, catalog: RuleCatalog, settings: SettingsStore) -> None:
    """Attach the rule catalog and the settings store to ``app`` and add the routes."""
    app.state.rules = catalog
    app.state.runtime = settings
    app.include_router(router)


def apply_alert_config(request: Request) -> bool:
    """Ask the service's follower to build its alert engine again from the files.

    Returns False when it cannot now (the follower is not running): the change is stored
    and applies when it starts.
    """
    target: AlertTarget = request.app.state.service
    try:
        target.reload_rules()
    except (RuntimeError, OSError) as exc:
        log.warning("could not reload the alert rules now: %s", exc)
        return False
    return True


def _seal(request: Request, action: str, detail: str, principal: Principal,
          **extra: Any) -> None:
    request.app.state.auth.seal(request, action, detail, principal, **extra)


# -- keys -------------------------------------------------------------------------------------

@router.post("/v1/keys", status_code=201)
def create_key(body: KeyRequest, request: Request, principal: Principal = _ADMIN
               ) -> JSONResponse:
    """Create an API key; the token is in this answer only."""
    key, token = service_of(request).keys.create(body.role, body.name, body.expires_in_days)
    _seal(request, "key.created", f"{key.role} key {key.name}", principal, key_id=key.id)
    return JSONResponse({**key.public(key.created), "key": token}, status_code=201)


@router.get("/v1/keys")
def list_keys(request: Request, _: Principal = _ADMIN) -> JSONResponse:
    """Every key's metadata, never a secret."""
    now = datetime.now(UTC)
    return JSONResponse([key.public(now) for key in service_of(request).keys.all()])


@router.delete("/v1/keys/{key_id}")
def revoke_key(key_id: str, request: Request, principal: Principal = _ADMIN) -> JSONResponse:
    """Revoke a key (keys are configuration, not events)."""
    try:
        key = service_of(request).keys.revoke(key_id)
    except ConfigError as exc:
        raise ApiError(404, "not_found", str(exc)) from None
    _seal(request, "key.revoked", f"{key.role} key {key.name}", principal, key_id=key.id)
    return JSONResponse(key.public(key.revoked or key.created))


# -- rules ------------------------------------------------------------------------------------

def _catalog(request: Request) -> RuleCatalog:
    found: RuleCatalog = request.app.state.rules
    return found


@router.get("/v1/rules", tags=["alerts"])
def list_rules(request: Request, _: Principal = _READER) -> JSONResponse:
    """The alert rules: id, title, level, source (built-in/configured/custom), enabled."""
    catalog = _catalog(request)
    return JSONResponse({"rules": catalog.listing(), "not_loaded": catalog.not_loaded()})


@router.post("/v1/rules", status_code=201, tags=["alerts"], openapi_extra={"requestBody": {
    "required": True, "content": {t: {"schema": {"type": "string"}} for t in RULE_TYPES}}})
async def upload_rule(request: Request, principal: Principal = _ADMIN) -> JSONResponse:
    """Add (or replace) a Sigma rule; 422 with the loader's reason when it does not load."""
    require_media_type(request.headers.get("content-type"), RULE_TYPES)
    data = await read_body(request)
    if len(data) > MAX_RULE_BYTES:
        raise too_large(MAX_RULE_BYTES)
    return await run_in_threadpool(_upload, request, principal, data)


def _upload(request: Request, principal: Principal, data: bytes) -> JSONResponse:
    digest = hashlib.sha256(data).hexdigest()
    catalog = _catalog(request)
    try:
        upload = catalog.upload(data)
    except RuleRejected as exc:
        report = [{**s.to_json(), "path": "upload"} for s in exc.report]
        _seal(request, "rule.rejected", str(exc), principal, yaml_sha256=digest)
        raise ApiError(422, "invalid_rule", str(exc), body={"report": report}) from None
    except RuleConflict as exc:
        _seal(request, "rule.rejected", str(exc), principal, yaml_sha256=digest)
        raise ApiError(409, "rule_exists", str(exc)) from None
    applied = apply_alert_config(request)
    ids = [s.id for s in upload.statuses if s.kind != "file"]
    listing = [item for item in catalog.listing() if item["file"] == upload.file]
    extra: dict[str, Any] = {"rule_ids": ids, "file": upload.file, "yaml_sha256": digest}
    if len(data) <= SEALED_YAML_BYTES:
        extra["yaml_b64"] = base64.b64encode(data).decode()
    action = "rule.replaced" if upload.replaced else "rule.added"
    _seal(request, action, f"{', '.join(str(i) for i in ids)} from {upload.file}", principal,
          **extra)
    return JSONResponse({"file": upload.file, "replaced": upload.replaced, "rules": listing,
                         "warnings": [w for s in upload.statuses for w in s.warnings],
                         "yaml_sha256": digest, "applied": applied}, status_code=201)


@router.post("/v1/rules/{rule_id}/disable", tags=["alerts"])
def disable_rule(rule_id: str, request: Request, principal: Principal = _ADMIN
                 ) -> JSONResponse:
    """Stop a rule from raising alerts (kept as a silent base of enabled correlations)."""
    return _set_enabled(request, principal, rule_id, enabled=False)


@router.post("/v1/rules/{rule_id}/enable", tags=["alerts"])
def enable_rule(rule_id: str, request: Request, principal: Principal = _ADMIN
                ) -> JSONResponse:
    """Let a disabled rule raise alerts again."""
    return _set_enabled(request, principal, rule_id, enabled=True)


def _set_enabled(request: Request, principal: Principal, rule_id: str, *, enabled: bool
                 ) -> JSONResponse:
    action = "rule.enabled" if enabled else "rule.disabled"
    try:
        changed = _catalog(request).set_enabled(rule_id, enabled)
    except KeyError:
        _seal(request, action, f"refused: no rule {rule_id}", principal, rule_id=rule_id,
              changed=False)
        raise ApiError(404, "not_found", f"no loaded rule has id {rule_id}") from None
    applied = apply_alert_config(request) if changed else True
    _seal(request, action, f"{rule_id} {'enabled' if enabled else 'disabled'}"
          f"{'' if changed else ' (already)'}", principal, rule_id=rule_id, changed=changed)
    return JSONResponse({"id": rule_id, "enabled": enabled, "changed": changed,
                         "applied": applied})


# -- settings ---------------------------------------------------------------------------------

def _runtime(request: Request) -> SettingsStore:
    found: SettingsStore = request.app.state.runtime
    return found


@router.get("/v1/settings")
def get_settings(request: Request, _: Principal = _ADMIN) -> JSONResponse:
    """The run-time settings, which of them an admin overrode, and the command line's."""
    return JSONResponse(_runtime(request).to_json())


@router.patch("/v1/settings", openapi_extra={"requestBody": {"required": True, "content": {
    "application/json": {"schema": {"type": "object", "additionalProperties": False,
                                    "properties": {name: {"type": ["number", "null"]}
                                                   for name in RuntimeSettings.names()}}}}}})
async def patch_settings(request: Request, principal: Principal = _ADMIN) -> JSONResponse:
    """Change run-time settings (``null`` = back to the command line); 422 if not valid."""
    require_media_type(request.headers.get("content-type"), ("application/json",))
    data = await read_body(request)
    store = _runtime(request)
    try:
        change = store.update(orjson.loads(data))
    except (orjson.JSONDecodeError, ConfigError) as exc:
        message = str(exc).splitlines()[0] if str(exc) else "not valid"
        if isinstance(exc, orjson.JSONDecodeError):
            message = f"the body is not JSON: {message}"
        _seal(request, "settings.rejected", message, principal)
        raise ApiError(422, "invalid_setting", message) from None
    state = request.app.state
    if {"rate_limit_events_per_s", "rate_limit_burst_s"} & set(change.changed):
        after = change.after  # a new limiter: every key starts with a full bucket
        state.rate_limiter = RateLimiter(after.rate_limit_events_per_s, after.rate_limit_burst_s)
    applied = True
    if "alert_suppress_window_s" in change.changed:
        applied = apply_alert_config(request)
    changes = {name: {"from": getattr(change.before, name), "to": getattr(change.after, name)}
               for name in change.changed}
    _seal(request, "settings.changed",
          ", ".join(f"{n} {c['from']:g} -> {c['to']:g}" for n, c in changes.items())
          or "no change", principal, changes=changes)
    return JSONResponse({**store.to_json(), "changed": list(change.changed), "applied": applied})
