"""Search, timeline, alerts and integrity over HTTP.

Concept: the *query side* (docs/api.md, "Search and alerts", "Integrity"). Searches run
read-only on the DuckDB index (:mod:`auditseal.index.query`: one SELECT, external access
off); the timeline and the alert list are fixed SQL over the index's physical table; a
verification run re-derives the whole log in the background (:func:`auditseal.verify.
verify_log`) and is fetched by id; a storage probe (:mod:`auditseal.storage.probe`) runs on
request and is remembered for ``last_probe``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from auditseal.api.auth import Principal, require
from auditseal.api.ingest import service_of
from auditseal.api.limits import ApiError
from auditseal.errors import ConfigError, FormatError, StorageError, StorageUnavailable
from auditseal.index import QueryResult
from auditseal.index.query import Language

router = APIRouter()
_POSITION = re.compile(r"line (\d+),? column (\d+)", re.IGNORECASE)
_ALERT_LEVELS = {"informational", "low", "medium", "high", "critical"}


class SearchRequest(BaseModel):
    """A search: KQL (default) or DuckDB SQL over the index's Log Analytics views."""

    query: str = Field(..., min_length=1, max_length=100_000)
    language: Literal["kql", "sql"] = "kql"
    max_rows: int = Field(1000, ge=1, le=30_000)


async def _run(request: Request, text: str, language: Language, max_rows: int
               ) -> QueryResult:
    service = service_of(request)
    try:
        return await run_in_threadpool(service.query, text, language, max_rows)
    except FormatError as exc:
        message = str(exc)
        body: dict[str, Any] = {"detail": message}
        found = _POSITION.search(message)
        if found:
            body["position"] = {"line": int(found.group(1)), "column": int(found.group(2))}
        raise ApiError(400, "bad_query", message.splitlines()[0], body=body) from None
    except (ConfigError, StorageUnavailable) as exc:
        raise ApiError(503, "index_unavailable", f"the search index is not ready: {exc}",
                       headers={"Retry-After": "2"}) from None


@router.post("/v1/search", tags=["search"])
async def post_search(search: SearchRequest, request: Request,
                      _: Principal = Depends(require("reader"))) -> JSONResponse:  # noqa: B008
    """Run one read-only KQL or SQL query over the search index."""
    result = await _run(request, search.query, search.language, search.max_rows)
    return JSONResponse({"columns": list(result.columns), "rows": result.as_objects(),
                         "truncated": result.truncated})


@router.get("/v1/stats/timeline", tags=["search"])
async def get_timeline(request: Request, hours: int = Query(48, ge=1, le=24 * 366),
                       _: Principal = Depends(require("reader"))) -> JSONResponse:  # noqa: B008
    """Events per hour and category over the last ``hours`` hours (event time)."""
    since = (datetime.now(UTC) - timedelta(hours=hours)).replace(tzinfo=None)
    sql = ("SELECT date_trunc('hour', TimeGenerated) AS hour, "  # noqa: S608 -- no user text
           "coalesce(Category, Type, 'unknown') AS category, count(*) AS count "
           "FROM _events WHERE _Kind = 'event' AND TimeGenerated >= "
           f"TIMESTAMP '{since.isoformat(sep=' ', timespec='seconds')}' "
           "GROUP BY ALL ORDER BY hour, category")
    result = await _run(request, sql, "sql", 24 * 366 * 50)
    return JSONResponse([{"hour": row["hour"], "category": row["category"],
                          "count": row["count"]} for row in result.as_objects()])


@router.get("/v1/alerts", tags=["alerts"])
async def get_alerts(request: Request, limit: int = Query(100, ge=1, le=10_000),
                     _: Principal = Depends(require("reader"))) -> JSONResponse:  # noqa: B008
    """Fired alerts (sealed in the log as kind "alert"), newest first."""
    sql = ("SELECT _LogIndex AS index, _Event AS alert FROM _events "  # noqa: S608 -- an int
           f"WHERE _Kind = 'alert' ORDER BY _LogIndex DESC LIMIT {int(limit)}")
    result = await _run(request, sql, "sql", limit)
    return JSONResponse([alert_json(row["index"], row["alert"])
                         for row in result.as_objects()])


def alert_json(index: int, alert: Any) -> dict[str, Any]:
    """The documented alert shape from a sealed alert record."""
    data: dict[str, Any] = alert if isinstance(alert, dict) else {}
    level = str(data.get("level") or "")
    return {"index": index, "rule_id": data.get("rule_id"), "title": data.get("title"),
            "severity": level if level in _ALERT_LEVELS else (level or None),
            "time": data.get("time"), "group": data.get("group") or {},
            "kind": data.get("kind"), "log_indexes": data.get("indexes") or [],
            "description": data.get("description") or ""}


@router.get("/v1/integrity", tags=["integrity"])
def get_integrity(request: Request,
                  _: Principal = Depends(require("reader"))) -> JSONResponse:  # noqa: B008
    """Latest checkpoint, last full verification, last WORM probe, storage, errors."""
    service = service_of(request)
    checkpoint = service.checkpoint
    publish_error = service.writer.publish_error
    return JSONResponse({
        "checkpoint": {"size": checkpoint.size, "root_hash": checkpoint.root_hash.hex(),
                       "origin": checkpoint.origin},
        "last_verification": service.last_verification,
        "last_probe": service.last_probe,
        "storage": request.app.state.storage_description,
        "publish_error": None if publish_error is None else str(publish_error),
        "index": {"size": service.indexed, "error": service.follow_error},
        "alerts": {"size": service.alerted},
        "durable_size": service.writer.size,
    })


@router.post("/v1/integrity/verify", tags=["integrity"], status_code=202)
def post_verify(request: Request,
                principal: Principal = Depends(require("auditor"))) -> JSONResponse:  # noqa: B008
    """Start a full verification in the background; 202 with the run id."""
    service = service_of(request)
    run_id = service.start_verification()
    request.app.state.auth.seal(request, "integrity.verify", "verification run started",
                                principal, run_id=run_id)
    return JSONResponse({"id": run_id, "status": "running",
                         "href": f"/v1/integrity/verify/{run_id}"}, status_code=202)


@router.post("/v1/integrity/probe", tags=["integrity"])
def post_probe(request: Request,
               principal: Principal = Depends(require("admin"))) -> JSONResponse:  # noqa: B008
    """Probe the log's own storage for immutability; the recorded result.

    The canary lands under ``probe/`` and, on WORM storage, stays there for good.
    """
    service = service_of(request)
    try:
        record = service.probe(by=f"{principal.role}:{principal.name}")
    except (ConfigError, StorageError) as exc:
        request.app.state.auth.seal(request, "integrity.probe", f"probe failed: {exc}",
                                    principal, protected=None)
        if isinstance(exc, ConfigError):
            raise ApiError(409, "probe_unsupported", str(exc)) from None
        raise  # 503 storage_unavailable
    request.app.state.auth.seal(request, "integrity.probe", record["verdict"], principal,
                                protected=record["protected"],
                                canary_key=record["canary_key"])
    return JSONResponse(record)


@router.get("/v1/integrity/verify/{run_id}", tags=["integrity"])
def get_verify(run_id: str, request: Request,
               _: Principal = Depends(require("auditor"))) -> JSONResponse:  # noqa: B008
    """A verification run: running, done (with its report) or failed."""
    run = service_of(request).runs.get(run_id)
    if run is None:
        raise ApiError(404, "not_found", f"no verification run {run_id}")
    return JSONResponse(run)
