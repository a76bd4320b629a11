"""Reading the sealed log over HTTP: tlog-tiles, entries, proofs, receipts, checkpoints.

Concept: the *read side* (docs/api.md, "Reading the log"). ``/log/...`` serves the C2SP
tlog-tiles tree byte for byte (https://c2sp.org/tlog-tiles: checkpoint, hash tiles,
entry bundles, with the cache rules of its "Cache-Control" guidance), so any tlog client
or witness can follow the log. The ``/v1`` routes give entries, RFC 9162 inclusion and
consistency proofs, C2SP tlog-proof receipts (https://c2sp.org/tlog-proof) and the
checkpoint history. Only GET routes exist here: nothing modifies or deletes an entry.
"""

from __future__ import annotations

import base64
from typing import Any

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response

from auditseal.api.auth import Principal, authenticator, may, require
from auditseal.api.ingest import service_of
from auditseal.api.limits import ApiError, retry_after
from auditseal.api.service import AuditService
from auditseal.core.checkpoint import VerifiedCheckpoint, parse_unverified
from auditseal.core.entry import decode_entry, format_time
from auditseal.core.hashing import leaf_hash
from auditseal.core.tiles import parse_tile_path
from auditseal.errors import FormatError, ObjectNotFound

router = APIRouter()
_IMMUTABLE = "public, max-age=31536000, immutable"
_TEXT = "text/plain; charset=utf-8"


def log_access(request: Request) -> Principal | None:
    """Readers, or anyone when the service runs with ``--public-log``."""
    if service_of(request).settings.public_log:
        return None
    auth = authenticator(request)
    return auth.authorize(request, auth.authenticate(request), "reader")


def receipt_access(request: Request) -> Principal:
    """Auditors, or ingest keys (for entries they sealed, checked by the route)."""
    auth = authenticator(request)
    principal = auth.authenticate(request)
    if principal.role == "ingest":
        return principal
    return auth.authorize(request, principal, "auditor")


# -- tlog-tiles ------------------------------------------------------------------------------


@router.get("/log/checkpoint", tags=["tlog-tiles"], response_class=Response,
            dependencies=[Depends(log_access)])
def get_checkpoint(request: Request) -> Response:
    """The latest signed checkpoint (C2SP tlog-checkpoint)."""
    note = service_of(request).checkpoint.note_bytes
    return Response(note, media_type=_TEXT, headers={"Cache-Control": "no-cache"})


@router.get("/log/tile/{path:path}", tags=["tlog-tiles"], response_class=Response,
            dependencies=[Depends(log_access)])
def get_tile(path: str, request: Request) -> Response:
    """A hash tile or entry bundle, byte for byte."""
    key = f"tile/{path}"
    try:
        tile = parse_tile_path(key)
        data = service_of(request).read_object(key)
    except (FormatError, ObjectNotFound):
        raise ApiError(404, "not_found", f"no tile at {key}") from None
    cache = "no-cache" if tile.is_partial else _IMMUTABLE
    return Response(data, media_type="application/octet-stream",
                    headers={"Cache-Control": cache})


# -- entries and proofs ----------------------------------------------------------------------


def _index_error(exc: IndexError) -> ApiError:
    return ApiError(404, "not_found", str(exc))


@router.get("/v1/entries/{index}", tags=["log"])
def get_entry(index: int, request: Request,
              _: Principal = Depends(require("reader"))) -> JSONResponse:  # noqa: B008
    """One sealed entry: its header fields, the event, and the exact event bytes."""
    service = service_of(request)
    try:
        raw = service.reader().entry(index)
    except IndexError as exc:
        raise _index_error(exc) from None
    return JSONResponse(entry_json(index, raw))


def entry_json(index: int, raw: bytes) -> dict[str, Any]:
    """The documented entry document."""
    entry = decode_entry(raw)
    try:
        event: Any = orjson.loads(entry.event)
    except orjson.JSONDecodeError:
        event = None
    return {"index": index, "leaf_hash": leaf_hash(raw).hex(),
            "received": format_time(entry.header.received), "source": entry.header.source,
            "kind": entry.header.kind, "event": event,
            "event_b64": base64.b64encode(entry.event).decode("ascii")}


def _checkpoint_or_404(service: AuditService, size: int | None) -> VerifiedCheckpoint:
    if size is None:
        return service.checkpoint
    checkpoint = service.checkpoint_at(size)
    if checkpoint is None:
        raise ApiError(404, "not_found", f"no published checkpoint of size {size}")
    return checkpoint


@router.get("/v1/proofs/inclusion", tags=["proofs"], response_model=None)
def get_inclusion(
    request: Request,
    index: int = Query(..., ge=0),
    size: int | None = Query(None, ge=1),
    format: str = Query("json", pattern="^(json|tlog-proof)$"),
    _: Principal = Depends(require("auditor")),  # noqa: B008
) -> Response:
    """An RFC 9162 inclusion proof of ``index`` (JSON, or a C2SP tlog-proof)."""
    service = service_of(request)
    reader = service.reader(_checkpoint_or_404(service, size))
    try:
        if format == "tlog-proof":
            return Response(reader.tlog_proof(index).to_bytes(), media_type=_TEXT)
        proof = reader.inclusion_proof(index)
        raw = reader.entry(index)
    except IndexError as exc:
        raise _index_error(exc) from None
    return JSONResponse({
        "index": index, "tree_size": reader.size, "leaf_hash": leaf_hash(raw).hex(),
        "proof": [base64.b64encode(h).decode() for h in proof],
        "checkpoint": reader.checkpoint.note_bytes.decode("utf-8"),
    })


@router.get("/v1/proofs/consistency", tags=["proofs"])
def get_consistency(
    request: Request,
    old: int = Query(..., ge=0),
    new: int | None = Query(None, ge=0),
    _: Principal = Depends(require("auditor")),  # noqa: B008
) -> JSONResponse:
    """An RFC 9162 consistency proof between two published tree sizes."""
    service = service_of(request)
    newer = _checkpoint_or_404(service, new)
    older = service.checkpoint_at(old) if old else None
    try:
        proof = service.reader(newer).consistency_proof(old)
    except IndexError as exc:
        raise ApiError(400, "bad_request", str(exc)) from None
    return JSONResponse({
        "old_size": old, "new_size": newer.size,
        "proof": [base64.b64encode(h).decode() for h in proof],
        "old_checkpoint": older.note_bytes.decode() if older is not None else None,
        "new_checkpoint": newer.note_bytes.decode(),
    })


@router.get("/v1/receipts/{index}", tags=["proofs"], response_class=Response,
            responses={202: {"description": "not_yet_sealed"}})
def get_receipt(index: int, request: Request,
                principal: Principal = Depends(receipt_access),  # noqa: B008
                ) -> Response:
    """The tlog-proof of an entry once a signed checkpoint covers it (202 before)."""
    service = service_of(request)
    checkpoint = service.checkpoint
    if index < 0 or index >= service.writer.size:
        raise ApiError(404, "not_found", f"entry {index} is not in the log")
    if index >= checkpoint.size:
        retry = service.settings.receipt_retry_after_s
        return JSONResponse(
            {"error": {"code": "not_yet_sealed", "message": f"entry {index} is durable but "
                       "not yet in a signed checkpoint; retry shortly"}},
            status_code=202, headers=retry_after(retry))
    reader = service.reader(checkpoint)
    proof = reader.tlog_proof(index)
    if not may(principal.role, "auditor"):
        assert proof.extra is not None
        if decode_entry(proof.extra).header.source != f"http:{principal.ident}":
            authenticator(request).seal(request, "auth.forbidden",
                                        "receipt of an entry another key sealed", principal)
            raise ApiError(403, "forbidden", "an ingest key may fetch receipts only of "
                           "entries it sealed; auditors may fetch any")
    return Response(proof.to_bytes(), media_type=_TEXT)


@router.get("/v1/checkpoints", tags=["log"])
async def get_checkpoints(request: Request, limit: int = Query(50, ge=1, le=1000),
                          _: Principal = Depends(require("reader"))) -> JSONResponse:  # noqa: B008
    """Published checkpoints, newest first."""
    notes = await run_in_threadpool(service_of(request).history, limit)
    items = []
    for note in notes:
        checkpoint = parse_unverified(note)
        items.append({"size": checkpoint.size, "root_hash": checkpoint.root_hash.hex(),
                      "note": note.decode("utf-8")})
    return JSONResponse(items)


@router.get("/v1/verifier-key", tags=["log"])
def get_verifier_key(request: Request) -> JSONResponse:
    """The log's verifier key and origin, public (pinning it from here is trust on first use)."""
    service = service_of(request)
    return JSONResponse({"verifier_key": service.log.verifier_key,
                         "origin": service.log.origin})
