"""The FastAPI application: routes, error documents, limits, the UI, the service's life.

Concept: the *HTTP surface* (docs/api.md). :func:`create_app` wires one
:class:`~auditseal.api.service.AuditService` into a FastAPI app: the body-size middleware,
the authenticator, the routers (the admin routes for keys, rules and settings in
:mod:`auditseal.api.routes_admin`), ``/healthz`` and the static web UI.
Every error becomes ``{"error": {"code", "message"}}``; an unexpected exception is logged
here and answered 500 ``internal`` without a stack trace.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from auditseal.api import ingest, routes_admin, routes_log, routes_query
from auditseal.api.auth import Authenticator
from auditseal.api.limits import ApiError, BodyLimit, RateLimiter, error_body, retry_after
from auditseal.api.rule_catalog import RuleCatalog
from auditseal.api.runtime_settings import RuntimeSettings, SettingsStore
from auditseal.api.service import AuditService
from auditseal.api.settings import ServeSettings
from auditseal.errors import ConfigError, FormatError, OverloadError, StorageError

log = logging.getLogger("auditseal.serve")
_CODES = {400: "bad_request", 401: "unauthenticated", 403: "forbidden", 404: "not_found",
          405: "method_not_allowed", 406: "not_acceptable", 413: "payload_too_large",
          415: "unsupported_media_type", 422: "bad_request", 429: "rate_limited"}


def create_app(service: AuditService, settings: ServeSettings, *,
               manage_service: bool = True) -> FastAPI:
    """The app serving ``service``; with ``manage_service`` its lifespan starts and stops it."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if manage_service:
            await run_in_threadpool(service.start)
        try:
            yield
        finally:
            if manage_service:
                await run_in_threadpool(service.stop)

    app = FastAPI(title="auditseal", version=_version(), lifespan=lifespan,
                  description="Immutable, verifiable audit log: ingest, tlog-tiles, proofs, "
                  "search, alerts, integrity. See docs/api.md.")
    app.state.service = service
    app.state.settings = settings
    app.state.auth = Authenticator(service.keys, service.seal_admin, settings.entra)
    runtime = SettingsStore(service.log.state, RuntimeSettings.from_serve(settings))
    app.state.rate_limiter = RateLimiter(runtime.current.rate_limit_events_per_s,
                                         runtime.current.rate_limit_burst_s)
    app.state.storage_description = _describe_storage(service)
    app.add_middleware(BodyLimit, max_bytes=settings.max_request_bytes)
    _error_handlers(app, settings)
    app.include_router(ingest.router)
    app.include_router(routes_log.router)
    app.include_router(routes_query.router)
    routes_admin.install(app, RuleCatalog(service.log.state, settings.rules_paths,
                                          builtin=settings.builtin_rules), runtime)
    _service_routes(app)
    _ui(app, settings)
    return app


def _version() -> str:
    try:
        return version("auditseal")
    except PackageNotFoundError:
        return "0"


def _describe_storage(service: AuditService) -> str:
    try:
        return service.log.object_store().describe()
    except Exception:
        return service.log.name


def _error_handlers(app: FastAPI, settings: ServeSettings) -> None:
    def answer(status: int, code: str, message: str, headers: Mapping[str, str] | None = None,
               extra: dict[str, Any] | None = None) -> JSONResponse:
        body = {**(extra or {}), **error_body(code, message)}
        return JSONResponse(body, status_code=status, headers=headers)

    async def api_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return answer(exc.status_code, exc.code, exc.message, exc.headers, exc.body)

    async def http_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        code = _CODES.get(exc.status_code, "error")
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        return answer(exc.status_code, code, message, exc.headers)

    async def invalid(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return answer(400, "bad_request", f"{where}: {first.get('msg', 'invalid request')}")

    async def overload(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, OverloadError)
        return answer(503, "overloaded", str(exc), retry_after(exc.retry_after_s))

    async def storage(_: Request, exc: Exception) -> Response:
        return answer(503, "storage_unavailable", f"storage failed: {exc}",
                      retry_after(settings.retry_after_s))

    async def bad_format(_: Request, exc: Exception) -> Response:
        return answer(400, "bad_request", str(exc).splitlines()[0] if str(exc) else "bad input")

    async def config(_: Request, exc: Exception) -> Response:
        log.error("configuration problem while serving: %s", exc)
        return answer(500, "misconfigured", str(exc))

    async def internal(request: Request, exc: Exception) -> Response:
        log.error("unexpected error on %s %s", request.method, request.url.path,
                  exc_info=exc)
        return answer(500, "internal", "internal error; the server log has the details")

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(OverloadError, overload)
    app.add_exception_handler(StorageError, storage)
    app.add_exception_handler(FormatError, bad_format)
    app.add_exception_handler(ConfigError, config)
    app.add_exception_handler(Exception, internal)


def _service_routes(app: FastAPI) -> None:
    @app.get("/healthz", tags=["service"])
    def healthz() -> dict[str, bool]:
        """Liveness: the process serves (public)."""
        return {"ok": True}


def _ui(app: FastAPI, settings: ServeSettings) -> None:
    folder = settings.ui_dir
    if folder is None or not folder.is_dir():
        return
    app.mount("/ui", StaticFiles(directory=folder, html=True), name="ui")

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/ui/", status_code=307)
