"""Shared helpers of the alert tests: rules from inline YAML, events from the corpus."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from auditseal.alerts.fields import EventView
from auditseal.alerts.sigma import CompiledRule, RuleSet, load_texts
from tests.conftest import CORPUS

PANTHER = CORPUS / "panther-labs_panther-analysis" / "rules"
SIGMAHQ = CORPUS / "sigmahq_sigma"


def rule(detection: str, *, service: str = "activitylogs") -> CompiledRule:
    """One compiled rule from the body of its ``detection:`` section."""
    text = (f"title: t\nid: 5d0c5d2e-0000-4000-8000-000000000001\nlogsource:\n"
            f"  product: azure\n  service: {service}\ndetection:\n{detection}\n")
    ruleset = load_texts([("inline", text)])
    assert ruleset.rules, ruleset.report
    return ruleset.rules[0]


def matches(compiled: CompiledRule, event: dict[str, Any]) -> bool:
    """Whether the rule matches the event."""
    return compiled.matches(EventView(event))


def panther_tests(relative: str) -> list[tuple[str, bool, dict[str, Any]]]:
    """(name, expected, event) of a Panther rule's Tests[] (vendor-labelled fixtures).

    Source: github.com/panther-labs/panther-analysis, copied unmodified into
    ../shared/corpus/panther-labs_panther-analysis (see SOURCES.md there for the commit).
    """
    document = yaml.safe_load((PANTHER / relative).read_text())
    return [(t["Name"], bool(t["ExpectedResult"]), t["Log"]) for t in document["Tests"]]


def builtin() -> RuleSet:
    """The built-in pack."""
    from auditseal.alerts.sigma import load_rules

    return load_rules([], builtin=True)


def needs_corpus(path: Path) -> None:
    """Skip when the shared corpus is not beside the repository."""
    import pytest

    if not path.exists():
        pytest.skip(f"shared corpus not found at {path}")
