"""``POST /v1/events``: events in, sealed durably, each answered with index and leaf hash.

Concept: *HTTP ingest* (docs/api.md, "Ingest"). The body is split exactly as
``auditseal append`` splits a file (:func:`auditseal.ingest.records.iter_batches`: one
object, an array, an Azure Monitor ``{"records": [...]}`` envelope, or JSON lines), so each
event is sealed with its bytes as received. Bad items are reported with their position
and reason and the good ones are kept, unless ``?atomic=true`` asks for all or nothing.
The answer is sent only after the writer's group commit made the accepted events durable.
With an ``Idempotency-Key`` header the answer is also remembered before it is sent, so a
retry of the same request is answered again without sealing anything
(:mod:`auditseal.api.idempotency`).
"""

from __future__ import annotations

import asyncio
import io
import logging
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from auditseal.api import idempotency
from auditseal.api.auth import Principal, require
from auditseal.api.limits import ApiError, require_media_type, retry_after, too_large
from auditseal.api.service import AuditService
from auditseal.errors import FormatError, OverloadError, StorageError
from auditseal.ingest.records import Rejected, iter_batches

log = logging.getLogger("auditseal.serve")
router = APIRouter(tags=["ingest"])
JSON_TYPES = ("application/json",)
NDJSON_TYPES = ("application/x-ndjson", "application/jsonl", "application/x-jsonlines",
                "application/json-seq")
_BODY_DOC = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": {"oneOf": [
        {"type": "object"}, {"type": "array", "items": {"type": "object"}},
        {"type": "object", "properties": {"records": {"type": "array"}}}]}},
    "application/x-ndjson": {"schema": {"type": "string"}}}}}


@dataclass
class Batch:
    """The items of one request: events to seal and rejected items, by position."""

    # (item, event bytes); a view into the request body, copied once, into its entry
    events: list[tuple[int, bytes | memoryview]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)


def split_body(body: bytes, max_event_bytes: int) -> Batch:
    """Split a request body into items; over-large events are rejected per item.

    Through :func:`~auditseal.ingest.records.iter_batches` (one validating parse per
    event and no object per event, as ``auditseal append`` does); item numbers count
    events and rejected parts together in body order, merged by their byte offsets.
    """
    batch = Batch()
    item = 0
    for part in iter_batches(io.BytesIO(body), chunk_bytes=len(body) + 1):
        rejected = part.rejected
        r = 0
        for data, line, offset in zip(part.events, part.lines, part.offsets, strict=True):
            while r < len(rejected) and rejected[r].offset < offset:
                batch.errors.append(_rejected(item, rejected[r]))
                item, r = item + 1, r + 1
            if len(data) > max_event_bytes:
                batch.errors.append(_too_big(item, line, len(data), max_event_bytes))
            else:
                batch.events.append((item, data))
            item += 1
        for left in rejected[r:]:
            batch.errors.append(_rejected(item, left))
            item += 1
    return batch


def _rejected(item: int, part: Rejected) -> dict[str, Any]:
    return {"item": item, "line": part.line, "reason": part.reason}


def _too_big(item: int, line: int, size: int, limit: int) -> dict[str, Any]:
    return {"item": item, "line": line,
            "reason": f"event is {size} bytes; one entry holds at most {limit} "
                      "bytes of event (tlog-tiles limits an entry to 65,535 bytes)"}


async def read_body(request: Request) -> bytes:
    """The whole body (the size limit is enforced by ``BodyLimit`` as it arrives)."""
    chunks = [chunk async for chunk in request.stream()]
    return b"".join(chunks)


def service_of(request: Request) -> AuditService:
    """The app's service."""
    found: AuditService = request.app.state.service
    return found


async def seal_batch(request: Request, principal: Principal,
                     events: Sequence[tuple[int, bytes | memoryview]],
                     errors: list[dict[str, Any]], atomic: bool) -> Response:
    """Rate-limit, apply the atomic rule, seal, and answer with the documented document."""
    service = service_of(request)
    if errors and atomic:
        body = _result([], errors)
        raise ApiError(400, "rejected", f"{len(errors)} items rejected; atomic request: "
                       "nothing was sealed", body=body)
    if errors and not events:
        raise ApiError(400, "no_valid_events", "every item was rejected; nothing was sealed",
                       body=_result([], errors))
    request.app.state.rate_limiter.take(principal.ident, len(events))
    sealed: list[tuple[int, str]] = []
    if events:
        try:
            sealed = await run_in_threadpool(service.append, [e for _, e in events],
                                             f"http:{principal.ident}")
        except OverloadError as exc:
            raise ApiError(503, "overloaded", f"nothing was accepted: {exc}",
                           headers=retry_after(exc.retry_after_s)) from None
        except StorageError as exc:
            raise ApiError(503, "storage_unavailable",
                           f"nothing was accepted: storage failed ({exc})",
                           headers=retry_after(service.settings.retry_after_s)) from None
    entries = [{"item": item, "index": index, "leaf_hash": leaf}
               for (item, _), (index, leaf) in zip(events, sealed, strict=True)]
    # orjson: the stdlib encoder behind fastapi.JSONResponse cost ~5 % of the server's CPU here
    return Response(orjson.dumps(_result(entries, errors)), media_type="application/json")


def _result(entries: list[dict[str, Any]], errors: list[dict[str, Any]]) -> dict[str, Any]:
    return {"accepted": len(entries), "rejected": len(errors), "entries": entries,
            "errors": errors}


@router.post("/v1/events", openapi_extra=_BODY_DOC, summary="Seal events",
             responses={400: {"description": "no valid events / atomic rejection / "
                                             "bad_idempotency_key"},
                        409: {"description": "idempotency_key_in_flight"},
                        413: {"description": "payload_too_large"},
                        415: {"description": "unsupported_media_type"},
                        422: {"description": "idempotency_key_reused"},
                        429: {"description": "rate_limited"},
                        503: {"description": "overloaded / storage_unavailable"}})
async def post_events(
    request: Request,
    principal: Principal = Depends(require("ingest")),  # noqa: B008 -- FastAPI's idiom
    atomic: bool = Query(False, description="all or nothing: any rejection seals nothing"),
    idempotency_key: str | None = Header(  # validated by parse_key: 400, not FastAPI's 422
        None, alias=idempotency.KEY_HEADER,
        description="1-200 printable ASCII characters, new per batch, the same on its "
                    "retries: a retry is answered again without sealing (docs/api.md)"),
) -> Response:
    """Seal one event, an array, a ``{"records": [...]}`` envelope, or NDJSON lines.

    An ``Idempotency-Key`` header (1-200 printable ASCII characters) makes a retry of the
    same request answer the first answer again (``Idempotent-Replayed: true``).
    """
    require_media_type(request.headers.get("content-type"), JSON_TYPES + NDJSON_TYPES)
    key = idempotency.parse_key(idempotency_key)
    body = await read_body(request)
    if key is None:
        return await _seal_body(request, principal, body, atomic)
    guard = idempotency.idempotency_of(service_of(request))
    digest = idempotency.fingerprint(body, atomic)

    async def once() -> Response:
        async with guard.claim(principal.ident, key, digest) as claim:
            if claim.replay is not None:
                return claim.replay
            response = await _seal_body(request, principal, body, atomic)
            try:
                await claim.remember(bytes(response.body))
            except StorageError:
                # The events are durable and this answer says where, so the client needs
                # no retry; only if this answer is lost too would a retry seal them again.
                log.exception("answering without remembering its Idempotency-Key")
            return response

    # Shielded: were the request task cancelled after the append, the answer must still
    # be remembered (and the key held in flight until it is).
    return await asyncio.shield(once())


async def _seal_body(request: Request, principal: Principal, body: bytes, atomic: bool
                     ) -> Response:
    service = service_of(request)
    limit = service.max_event_bytes(f"http:{principal.ident}")
    batch = await run_in_threadpool(split_body, body, limit)
    return await seal_batch(request, principal, batch.events, batch.errors, atomic)


# -- OpenTelemetry OTLP/HTTP logs ------------------------------------------------------------

OTLP_TYPES = ("application/json", "application/x-protobuf")


def _inflate(body: bytes, encoding: str, limit: int) -> bytes:
    """Undo ``Content-Encoding: gzip`` (OTLP exporters compress), keeping the size limit."""
    if encoding in ("", "identity"):
        return body
    if encoding != "gzip":
        raise ApiError(415, "unsupported_media_type",
                       f"Content-Encoding {encoding} is not supported; use gzip or none")
    inflater = zlib.decompressobj(wbits=31)
    try:
        data = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise ApiError(400, "bad_request", f"gzip body does not decompress: {exc}") from None
    if len(data) > limit:
        raise too_large(limit)
    return data


@router.post("/v1/otlp/v1/logs", summary="OTLP/HTTP logs export",
             responses={200: {"content": {"application/x-protobuf": {}}}})
async def post_otlp_logs(
    request: Request,
    principal: Principal = Depends(require("ingest")),  # noqa: B008 -- FastAPI's idiom
) -> Response:
    """Seal each OTLP LogRecord as one event (canonical OTLP JSON); partial success."""
    from auditseal.api import otlp

    content_type = request.headers.get("content-type", "")
    kind = require_media_type(content_type, OTLP_TYPES)
    service = service_of(request)
    body = _inflate(await read_body(request),
                    request.headers.get("content-encoding", "").strip().lower(),
                    service.settings.max_request_bytes)
    try:
        batch = await run_in_threadpool(otlp.decode_otlp_logs, body, kind)
    except FormatError as exc:
        return Response(otlp.encode_otlp_status(str(exc), kind), status_code=400,
                        media_type=kind)
    limit = service.max_event_bytes(f"http:{principal.ident}")
    errors = [{"item": r.item, "reason": r.reason} for r in batch.rejected]
    events = []
    for event in batch.events:
        if len(event.data) > limit:
            errors.append({"item": event.item, "reason": f"record is {len(event.data)} bytes "
                           f"as an event; at most {limit} fit in one entry"})
        else:
            events.append((event.item, event.data))
    if events:
        await seal_batch(request, principal, events, [], atomic=False)
    message = "; ".join(f"record {e['item']}: {e['reason']}" for e in errors[:10])
    return Response(otlp.encode_otlp_response(len(errors), message, kind), media_type=kind)
