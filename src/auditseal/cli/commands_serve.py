"""``auditseal serve``: the HTTP API and web UI in one process (docs/api.md).

Opens the log's writer (creating the log on first start when there is none), starts the
publisher and the index/alert follower, and serves with uvicorn until SIGINT or SIGTERM;
then the writer closes with a final publish, so everything acknowledged is sealed.

uvicorn, FastAPI and the service (which loads DuckDB and pySigma) are imported by the
handler, so that only ``auditseal serve`` pays for them, not the CLI's start-up.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import secrets
import signal
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from auditseal.api.settings import DEFAULT_MAX_REQUEST_BYTES, ServeSettings, TokenValidator
from auditseal.cli import exitcodes
from auditseal.errors import ConfigError
from auditseal.log.local import STATE_DIR, LocalLog, init_log, latest_checkpoint, load_log
from auditseal.log.location import resolve

if TYPE_CHECKING:
    import uvicorn

WEB_DIR = Path(__file__).resolve().parents[1] / "web"


def register(commands: Any, parents: list[argparse.ArgumentParser]) -> None:
    """Add ``serve``."""
    serve = commands.add_parser(
        "serve", parents=parents[:1],
        help="serve the HTTP API and web UI: ingest, tlog-tiles, proofs, search, alerts")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=int, default=8421, help="port (default 8421)")
    serve.add_argument("--public-log", action="store_true",
                       help="serve /log/ (the tlog-tiles tree) without authentication")
    serve.add_argument("--max-request-bytes", type=int, default=DEFAULT_MAX_REQUEST_BYTES,
                       metavar="N", help="largest request body (default 16 MiB)")
    serve.add_argument("--rate-limit-events-per-s", type=float, default=0.0, metavar="N",
                       help="per-key ingest rate limit (default 0: none)")
    serve.add_argument("--no-index", action="store_true", help="do not feed the search index")
    serve.add_argument("--no-alerts", action="store_true", help="do not evaluate alert rules")
    serve.add_argument("--rules", action="append", default=[], type=Path, metavar="PATH",
                       help="extra Sigma rule file or folder; repeatable")
    serve.add_argument("--no-builtin-rules", action="store_true",
                       help="leave out the built-in Azure rule pack")
    serve.add_argument("--entra-tenant", default=None, metavar="TENANT_ID",
                       help="also accept Entra ID access tokens of this tenant")
    serve.add_argument("--entra-audience", action="append", default=[], metavar="AUD",
                       help="accepted token audience (app ID URI or client id); repeatable")
    serve.add_argument("--entra-jwks-url", default=None, help="override the tenant's JWKS URL")
    serve.add_argument("--log-level", default="info",
                       choices=["critical", "error", "warning", "info", "debug"])
    serve.set_defaults(handler=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    """Serve until interrupted."""
    import uvicorn

    from auditseal.api.allocator import bound_allocator
    from auditseal.api.app import create_app
    from auditseal.api.service import AuditService

    bound_allocator()  # before any serving thread exists
    log = _open_or_create(str(args.log))
    settings = ServeSettings(
        max_request_bytes=args.max_request_bytes,
        rate_limit_events_per_s=args.rate_limit_events_per_s,
        public_log=args.public_log, index=not args.no_index, alerts=not args.no_alerts,
        rules_paths=tuple(args.rules), builtin_rules=not args.no_builtin_rules,
        ui_dir=WEB_DIR, entra=_entra(args),
    )
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    service = AuditService(log, settings)
    service.start()  # before listening: a locked or damaged log fails here, with its exit code
    try:
        app = create_app(service, settings, manage_service=False)
        print(f"auditseal: serving {log.name} on http://{args.host}:{args.port}/ "
              f"(size {service.checkpoint.size})", file=sys.stderr)
        config = uvicorn.Config(app, host=args.host, port=args.port, log_level=args.log_level,
                                lifespan="on", server_header=False, access_log=False)
        _serve_until_signalled(uvicorn.Server(config))
    finally:
        service.stop()
        print(f"auditseal: stopped; log size {_size(log)}", file=sys.stderr)
    return exitcodes.OK


def _serve_until_signalled(server: uvicorn.Server) -> None:
    """Run ``server`` until SIGINT/SIGTERM, then return (so the caller closes the writer).

    uvicorn re-raises the signal that stopped it once it has shut down; with the default
    SIGTERM action that would kill the process before the final publish, so while serving
    these signals only note that they came.
    """
    received: list[int] = []
    previous = {sig: signal.signal(sig, lambda number, _: received.append(number))
                for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _open_or_create(spec: str) -> LocalLog:
    """The log at ``spec``; created (printing its verifier key) if nothing is there yet."""
    try:
        return load_log(spec)
    except ConfigError:
        location = resolve(spec)
        root = location.state_root
        state = root if location.remote is not None else root / STATE_DIR
        if (state / "log.json").exists():
            raise
    host = "".join(c for c in socket.gethostname().split(".")[0] if c.isalnum() or c in "-_")
    log, vkey = init_log(spec, f"{host or 'localhost'}/auditseal/{secrets.token_hex(4)}")
    print(f"auditseal: created log {log.name}", file=sys.stderr)
    print("verifier key (give this to auditors; it verifies every checkpoint):", file=sys.stderr)
    print(vkey)
    return log


def _entra(args: argparse.Namespace) -> TokenValidator | None:
    if args.entra_tenant is None:
        return None
    if not args.entra_audience:
        raise ConfigError("--entra-tenant needs at least one --entra-audience")
    if importlib.util.find_spec("auditseal.api.entra") is None:
        raise ConfigError("this build has no Entra ID support (auditseal.api.entra)")
    from auditseal.api.entra import EntraValidator  # optional part

    validator: TokenValidator = EntraValidator(tenant_id=args.entra_tenant,
                                               audience=args.entra_audience,
                                               jwks_url=args.entra_jwks_url)
    return validator


def _size(log: LocalLog) -> int:
    checkpoint = latest_checkpoint(log)
    return checkpoint.size if checkpoint else 0
