"""The ``auditseal`` command: parsing and error mapping only; commands live beside it.

Every user mistake ends in one line of text on stderr and a distinct exit code
(``exitcodes``); a traceback means a bug in auditseal.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from auditseal.cli import (
    commands_alerts,
    commands_azure,
    commands_collect,
    commands_index,
    commands_keys,
    commands_log,
    commands_probe,
    commands_query,
    commands_serve,
    commands_verify,
    demo,
    exitcodes,
)
from auditseal.errors import AuditsealError

LOG_ENV = "AUDITSEAL_LOG"


def default_log_dir() -> str:
    """``$AUDITSEAL_LOG``, else ``$XDG_DATA_HOME/auditseal/log`` (~/.local/share/...)."""
    configured = os.environ.get(LOG_ENV)
    if configured:
        return configured
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return str(Path(data_home) / "auditseal" / "log")


def build_parser() -> argparse.ArgumentParser:
    """The whole command line."""
    log_option = argparse.ArgumentParser(add_help=False)
    log_option.add_argument(
        "--log", default=None, metavar="DIR|URL",
        help=f"the log: a directory or an azblob:// URL (default: ${LOG_ENV} or "
        "~/.local/share/auditseal/log)",
    )
    json_option = argparse.ArgumentParser(add_help=False)
    json_option.add_argument("--json", action="store_true", help="machine-readable output")
    key_option = argparse.ArgumentParser(add_help=False)
    key_option.add_argument(
        "--key", action="append", default=[], metavar="VKEY",
        help="trusted verifier key (name+hash+base64) or a file of them; repeatable",
    )

    parser = argparse.ArgumentParser(
        prog="auditseal",
        description="Immutable, verifiable audit logs: seal events in an append-only "
        "Merkle log on write-once storage and prove it offline.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    parents = [log_option, json_option]
    commands_log.register(commands, parents=parents)
    commands_verify.register(commands, log_parents=parents, key_option=key_option,
                             json_option=json_option)
    commands_collect.register(commands, parents=parents)
    commands_alerts.register(commands, parents=parents)
    commands_index.register(commands, parents=parents)
    commands_query.register(commands, parents=parents)
    commands_probe.register(commands, parents=parents)
    commands_azure.register(commands, parents=parents)
    commands_keys.register(commands, parents=parents)
    commands_serve.register(commands, parents=parents)
    demo.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command and return its exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "log", "absent") is None:
        args.log = default_log_dir()
    try:
        code: int = args.handler(args)
    except AuditsealError as exc:
        print(f"auditseal: {exc}", file=sys.stderr)
        return exitcodes.exit_code_for(exc)
    except KeyboardInterrupt:
        print("auditseal: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return exitcodes.OK
    return code


def entry_point() -> None:
    """Console-script entry."""
    sys.exit(main())
