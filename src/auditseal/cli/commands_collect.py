"""``auditseal collect SOURCE``: the collectors' command group.

Each source registers its own subcommand from its own module, so collectors can be added
without touching each other.
"""

from __future__ import annotations

import argparse
from typing import Any

from auditseal.cli import collect_azure_storage, collect_eventhubs


def register(commands: Any, parents: list[argparse.ArgumentParser]) -> None:
    """Add ``collect`` and its sources."""
    collect = commands.add_parser(
        "collect", help="collect audit events from a source and seal them"
    )
    sources = collect.add_subparsers(dest="source", required=True, metavar="SOURCE")
    collect_azure_storage.register(sources, parents=parents)
    collect_eventhubs.register(sources, parents=parents)
