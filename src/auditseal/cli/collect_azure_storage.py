"""Placeholder registration: replaced by the collector's own command module."""

from __future__ import annotations

import argparse
from typing import Any


def register(sources: Any, parents: list[argparse.ArgumentParser]) -> None:
    """Add nothing yet."""
