"""The memoized explanation (:mod:`auditseal.alerts.explanations`) is the rule's own.

Differential: for every rule that matches a record, :class:`Explainer` must give exactly
``tuple(rule.hits(view))``, the memo warm (each record seen twice, after records that share
its key values). Records: the real-data corpus and Panther fixtures (as in
test_speedups.py), the benchmark's worst-case mix, plus records attacking each exactness
argument: numbers and booleans sharing a key, a ``fieldref`` reading another field, a
keyword another keyword can hide.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from auditseal.alerts.engine import AlertEngine, EngineConfig
from auditseal.alerts.explanations import Explainer
from auditseal.alerts.fields import EventView
from auditseal.alerts.sigma import CompiledRule, RuleSet, load_rules
from tests.alerts.helpers import SIGMAHQ, rule
from tests.alerts.test_speedups import _corpus_events
from tests.conftest import CORPUS


def _agree(explainer: Explainer, rules: list[CompiledRule], records: list[bytes]) -> int:
    """Assert memo == general explanation for every match; return the matches checked."""
    checked = 0
    for _ in range(2):  # the second pass is served from the memo
        for raw in records:
            for compiled in rules:
                view = EventView(orjson.loads(raw), raw)
                if not compiled.matches(view):
                    continue
                memoized = explainer.hits(compiled, view)
                assert memoized == tuple(compiled.hits(EventView(orjson.loads(raw), raw))), (
                    compiled.title, raw[:200])
                checked += 1
    return checked


@pytest.fixture(scope="module")
def ruleset() -> RuleSet:
    if not (SIGMAHQ.exists() and CORPUS.exists()):
        pytest.skip(f"shared corpus not found at {CORPUS}")
    return load_rules([SIGMAHQ / "rules" / "cloud" / "azure"], builtin=True)


def test_corpus_explanations_agree(ruleset: RuleSet) -> None:
    from bench.alerts import workload

    records = _corpus_events() + workload(400)
    assert _agree(Explainer(), ruleset.rules, records) > 500


def test_engine_alerts_agree_with_rule_hits(ruleset: RuleSet) -> None:
    """Every alert the engine emits explains itself as the rule's ``hits`` does."""
    from bench.alerts import workload

    records = workload(600) + _corpus_events()
    engine = AlertEngine(ruleset, EngineConfig(suppress_window_s=0))
    by_id = {r.id: r for r in ruleset.rules}
    seen = 0
    for index, raw in enumerate(records):
        for alert in engine.process(index, raw):
            if alert.kind == "rule":
                view = EventView(orjson.loads(raw), raw)
                assert alert.matches == tuple(by_id[alert.rule_id].hits(view))
                seen += 1
    assert seen > 300


def _raw(event: dict[str, Any]) -> bytes:
    return orjson.dumps({"category": "Administrative", **event})


@pytest.mark.parametrize(("detection", "records"), [
    # 1 == True == 1.0 in Python: keyed alike, they would share an explanation ("1" vs "true").
    ("  selection:\n    Flag:\n      - 1\n      - true\n  condition: selection",
     [{"Flag": 1}, {"Flag": True}, {"Flag": 1.0}, {"Flag": "1"}, {"Flag": "true"}]),
    # fieldref reads another field: same value of A, different B.
    ("  selection:\n    A|fieldref: B\n  other:\n    A: x\n  condition: selection or other",
     [{"A": "x", "B": "x"}, {"A": "x", "B": "y"}, {"A": "x", "B": "X"}]),
    # "abc" is hideable ("xab" consumes its beginning in "xabc"): the scan alone finds
    # {"xab"} in "xab" and in "xabc", whose explanations differ.
    ("  keywords:\n    - xab\n    - abc\n  condition: keywords",
     [{"m": "xab"}, {"m": "xabc"}, {"m": "abc"}, {"m": "xab abc"}]),
    # Values as written vs lower-cased: a regex reads the original text.
    ("  selection:\n    A|re: '^X'\n  other:\n    A: x\n  condition: selection or other",
     [{"A": "X"}, {"A": "x"}, {"A": ["X", "x"]}]),
    # Lists and objects: values in order, JSON text.
    ("  selection:\n    A|contains: b\n  condition: selection",
     [{"A": ["b", "c"]}, {"A": ["c", "b"]}, {"A": {"value": "b"}}, {"A": None}]),
])
def test_attack_records_agree(detection: str, records: list[dict[str, Any]]) -> None:
    compiled = rule(detection)
    raws = [_raw(r) for r in records]
    assert _agree(Explainer(), [compiled], raws) >= 2


def test_numbers_and_booleans_keep_their_own_text() -> None:
    compiled = rule("  selection:\n    Flag:\n      - 1\n      - true\n  condition: selection")
    explainer = Explainer()
    found = []
    for event in ({"Flag": 1}, {"Flag": True}, {"Flag": 1}):
        raw = _raw(event)
        found.append([h.found for h in explainer.hits(compiled, EventView(orjson.loads(raw),
                                                                          raw))])
    assert found == [["1"], ["true"], ["1"]]


def test_memo_serves_repeats() -> None:
    """Same key values: the very same explanation objects (the memo answered)."""
    compiled = rule("  selection:\n    operationName: a/b\n  condition: selection")
    explainer = Explainer()
    first, second = (explainer.hits(compiled, EventView({"operationName": "A/B", "x": i}))
                     for i in range(2))
    assert first == second
    assert first[0] is second[0]
    assert first[0].found == "A/B"
    third = explainer.hits(compiled, EventView({"operationName": "a/B"}))
    assert third[0].found == "a/B"
