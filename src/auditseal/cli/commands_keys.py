"""``auditseal keys create|list|revoke``: the service's API keys (docs/api.md).

``create`` prints the new key once, alone on stdout (``KEY=$(auditseal keys create ...)``
works); the store keeps only its hash. Each change is sealed in the log as an
administrative record: here when no writer holds the log, else by the running
``auditseal serve``, which notices the changed key file.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from typing import Any

import orjson

from auditseal.api.keys import ROLES, ApiKey, KeyStore
from auditseal.cli import exitcodes
from auditseal.cli.output import print_json
from auditseal.errors import LogLocked
from auditseal.log.local import LocalLog, load_log, open_writer


def register(commands: Any, parents: list[argparse.ArgumentParser]) -> None:
    """Add ``keys`` and its subcommands."""
    keys = commands.add_parser("keys", help="API keys of the HTTP service")
    sub = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    create = sub.add_parser("create", parents=parents, help="create a key; printed once")
    create.add_argument("--role", required=True, choices=ROLES)
    create.add_argument("--name", default="", help="a label for people")
    create.add_argument("--expires-in-days", type=float, default=None, metavar="DAYS")
    create.set_defaults(handler=run_create)
    listing = sub.add_parser("list", parents=parents, help="keys and their state, no secrets")
    listing.set_defaults(handler=run_list)
    revoke = sub.add_parser("revoke", parents=parents, help="revoke a key by id")
    revoke.add_argument("id", help="the key id (12 hex digits, from 'keys list')")
    revoke.set_defaults(handler=run_revoke)


def run_create(args: argparse.Namespace) -> int:
    """Create a key and print it once."""
    log = load_log(args.log)
    key, token = KeyStore(log.state).create(args.role, args.name, args.expires_in_days)
    _seal(log, "key.created", key)
    if args.json:
        print_json({**key.public(key.created), "key": token})
    else:
        print(token)
        expiry = f", expires {key.public(key.created)['expires']}" if key.expires else ""
        print(f"created {key.role} key {key.id} ({key.name}{expiry}); it is shown only now",
              file=sys.stderr)
    return exitcodes.OK


def run_list(args: argparse.Namespace) -> int:
    """List keys: id, role, name, state."""
    log = load_log(args.log)
    now = datetime.now(UTC)
    keys = [key.public(now) for key in KeyStore(log.state).all()]
    if args.json:
        print_json(keys)
        return exitcodes.OK
    for key in keys:
        print(f"{key['id']}  {key['role']:<8} {key['state']:<8} {key['name']}"
              f"{'  expires ' + key['expires'] if key['expires'] else ''}")
    if not keys:
        print("no API keys yet: auditseal keys create --role ROLE", file=sys.stderr)
    return exitcodes.OK


def run_revoke(args: argparse.Namespace) -> int:
    """Revoke a key."""
    log = load_log(args.log)
    key = KeyStore(log.state).revoke(args.id)
    _seal(log, "key.revoked", key)
    if args.json:
        print_json(key.public(datetime.now(UTC)))
    else:
        print(f"revoked {key.role} key {key.id} ({key.name})")
    return exitcodes.OK


def _seal(log: LocalLog, action: str, key: ApiKey) -> None:
    record = {"auditseal": action, "detail": "by the keys CLI", "key_id": key.id,
              "role": key.role, "name": key.name,
              "time": datetime.now(UTC).isoformat().replace("+00:00", "Z")}
    try:
        with open_writer(log) as writer:
            writer.append([orjson.dumps(record)], source="auditseal/keys", kind="admin")
    except LogLocked:
        pass  # a running 'auditseal serve' holds the log; it seals the change itself
