"""The byte prefilter gives exactly the matches of the general evaluator (differential).

Records: every event of the real-data corpus (../shared/corpus: DataDog azure-log-forwarding
fixtures and the OpenTelemetry azurelogs test data, copied unmodified, SOURCES.md there names
the commits), every Panther labelled Tests[].Log event (panther-labs/panther-analysis, same
corpus), each also spelled with spaces and upper-case, plus hand-made records that attack
each soundness argument of :mod:`auditseal.alerts.prefilter`.
Rules: the built-in pack and SigmaHQ's Azure rules.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
import yaml

from auditseal.alerts.engine import AlertEngine, EngineConfig
from auditseal.alerts.fields import EventView
from auditseal.alerts.prefilter import Needles
from auditseal.alerts.screen import AVAILABLE, Screen, scan_text
from auditseal.alerts.sigma import RuleSet, load_rules
from auditseal.ingest.records import split_records
from tests.alerts.helpers import PANTHER, SIGMAHQ, rule
from tests.conftest import CORPUS


def _corpus_events() -> list[bytes]:
    out: list[bytes] = []
    for folder in ("datadog_azure-log-forwarding-orchestration/forwarder",
                   "otel_collector_contrib"):
        for path in sorted((CORPUS / folder).rglob("*.json")):
            records, _ = split_records(path.read_bytes())
            for record in records:
                value = orjson.loads(record.data)
                if isinstance(value, dict) and list(value) == ["records"]:
                    value = value["records"]
                out.extend(orjson.dumps(v) for v in value) if isinstance(value, list) else (
                    out.append(record.data))
    for path in sorted(PANTHER.rglob("*.yml")):
        document = yaml.safe_load(path.read_text())
        tests = document.get("Tests", []) if isinstance(document, dict) else []
        out.extend(orjson.dumps(t["Log"]) for t in tests if isinstance(t.get("Log"), dict))
    return out


def _upper(value: Any) -> Any:
    """Every string value and key upper-cased (Sigma matches case-insensitively)."""
    if isinstance(value, str):
        return value.upper()
    if isinstance(value, list):
        return [_upper(v) for v in value]
    if isinstance(value, dict):
        return {k.upper(): _upper(v) for k, v in value.items()}
    return value


@pytest.fixture(scope="module")
def ruleset() -> RuleSet:
    if not (SIGMAHQ.exists() and CORPUS.exists()):
        pytest.skip(f"shared corpus not found at {CORPUS}")
    return load_rules([SIGMAHQ / "rules" / "cloud" / "azure"], builtin=True)


@pytest.fixture(scope="module")
def events() -> list[bytes]:
    if not CORPUS.exists():
        pytest.skip(f"shared corpus not found at {CORPUS}")
    found = _corpus_events()
    spaced = [json.dumps(orjson.loads(e), indent=1).encode() for e in found]
    upper = [orjson.dumps(_upper(orjson.loads(e))) for e in found]
    return found + spaced + upper


def screenable(raw: bytes) -> bool:
    return scan_text(raw) is not None


def test_corpus_is_large_and_mostly_screenable(events: list[bytes]) -> None:
    assert len(events) > 600
    assert sum(screenable(e) for e in events) > len(events) * 9 // 10


def test_screen_never_drops_a_matching_rule(ruleset: RuleSet, events: list[bytes]) -> None:
    screen = Screen([r.needles for r in ruleset.rules])
    checked = matched = 0
    for raw in events:
        hits = screen.hits(raw)
        if hits is None:
            continue
        view = EventView(orjson.loads(raw), raw)
        for position, compiled in enumerate(ruleset.rules):
            if compiled.matches(view):
                matched += 1
                assert position in hits or position in screen.unscreened, (compiled.title, raw)
            checked += 1
    assert matched > 50  # the test saw real matches
    assert checked > 50_000


def _alerts(ruleset: RuleSet, records: list[bytes], *, byte_screen: bool) -> list[Any]:
    engine = AlertEngine(ruleset, EngineConfig(0, byte_screen=byte_screen))
    return [a.to_json() for a in engine.feed(enumerate(records)) + engine.flush()]


def test_engine_with_screen_fires_the_same_alerts(ruleset: RuleSet,
                                                  events: list[bytes]) -> None:
    plain = _alerts(ruleset, events, byte_screen=False)
    assert len(plain) > 50
    assert _alerts(ruleset, events, byte_screen=True) == plain


# --- hand-made records against each soundness argument ---------------------------------------

RESULT = "  s:\n    ResultType: 50126\n  condition: s"
OPERATION = ("  s:\n    operationName: MICROSOFT.STORAGE/STORAGEACCOUNTS/LISTKEYS/ACTION\n"
             "  condition: s")
ATTACKS = [
    # (id, detection, service, raw record bytes, expected match)
    ("number-as-exponent", RESULT, "signinlogs",
     b'{"category":"SignInLogs","resultType":5.0126e4}', True),
    ("number-as-fraction", RESULT, "signinlogs",
     b'{"category":"SignInLogs","resultType":50126.0}', True),
    ("number-in-json-string-escaped-newline", "  s:\n    properties.body.code: 50126\n"
     "  condition: s", "signinlogs",
     b'{"category":"SignInLogs","properties":{"body":"{\\"code\\":\\n 5.0126e4}"}}', True),
    ("number-as-string", RESULT, "signinlogs",
     b'{"category":"SignInLogs","resultType":"50126"}', True),
    ("escaped-slash", OPERATION, "activitylogs",
     b'{"category":"Administrative","operationName":'
     b'"Microsoft.Storage\\/storageAccounts\\/listKeys\\/action"}', True),
    ("unicode-escape", OPERATION, "activitylogs",
     b'{"category":"Administrative","operationName":'
     b'"Microsoft.Storage/storageAccounts/listKeys/\\u0061ction"}', True),
    ("kelvin-sign-lowers-to-k", "  s:\n    operationName: listkeys\n  condition: s",
     "activitylogs", '{"category":"Administrative","operationName":"listKeys"}'
     .replace("K", "\u212a").encode(), True),
    ("value-inside-json-string", "  s:\n    properties.requestbody.access: allow\n"
     "  condition: s", "activitylogs",
     b'{"category":"Administrative","properties":{"requestbody":"{\\"access\\":\\"Allow\\"}"}}',
     True),
    ("boolean-value", "  s:\n    properties.isRbac: true\n  condition: s", "activitylogs",
     b'{"category":"Administrative","properties":{"isRbac":true}}', True),
    ("list-element", "  s:\n    properties.tags: pci\n  condition: s", "activitylogs",
     b'{"category":"Administrative","properties":{"tags":["prod","PCI"]}}', True),
    ("rest-value-object", OPERATION, "activitylogs",
     b'{"category":{"value":"Administrative"},"eventTimestamp":"x","operationName":'
     b'{"value":"Microsoft.Storage/storageAccounts/listKeys/action"}}', True),
    ("integer-after-escaped-newline-in-json-string", "  s:\n    properties.body.code: 50126\n"
     "  condition: s", "signinlogs",
     b'{"category":"SignInLogs","properties":{"body":"{\\"code\\":\\n50126}"}}', True),
    ("integer-in-list", "  s:\n    properties.codes: 50126\n  condition: s", "signinlogs",
     b'{"category":"SignInLogs","properties":{"codes":[1,50126]}}', True),
    ("negative-zero", "  s:\n    ResultType: 0\n  condition: s", "signinlogs",
     b'{"category":"SignInLogs","resultType":-0}', True),
    ("exponent-without-fraction", RESULT, "signinlogs",
     b'{"category":"SignInLogs","resultType":50126E0}', True),
    ("negative-exponent", RESULT, "signinlogs",
     b'{"category":"SignInLogs","resultType":501260e-1}', True),
    ("exponent-in-identifier-is-no-number", RESULT, "signinlogs",
     b'{"category":"SignInLogs","correlationId":"4732-5e4-0126","resultType":"0"}', False),
    ("integer-inside-longer-number", RESULT, "signinlogs",
     b'{"category":"SignInLogs","resultType":150126}', False),
    ("escaped-slash-in-json-string", "  s:\n    properties.requestbody.op: a/b\n"
     "  condition: s", "activitylogs",
     b'{"category":"Administrative","properties":{"requestbody":"{\\"op\\":\\"A\\\\\\/b\\"}"}}',
     True),
    ("dotted-capital-i-lowers-to-i", "  s:\n    operationName|contains: listi\n  condition: s",
     "activitylogs", '{"category":"Administrative","operationName":"LIST\u0130TEMS"}'.encode(),
     True),
    ("non-ascii-literal-on-non-ascii-record", "  s:\n    message: ['caf\u00e9', Coffee]\n"
     "  condition: s", "activitylogs",
     '{"category":"Administrative","properties":{"message":"CAF\u00c9"}}'.encode(), True),
    ("prefix-absent", "  s:\n    operationName|startswith: microsoft.storage/\n  condition: s",
     "activitylogs", b'{"category":"Administrative","operationName":"x/microsoft.storage/"}',
     False),
    ("exact-is-only-a-substring", OPERATION, "activitylogs",
     b'{"category":"Administrative","operationName":'
     b'"Microsoft.Storage/storageAccounts/listKeys/action/extra"}', False),
]


@pytest.mark.parametrize(("detection", "service", "raw", "expected"),
                         [a[1:] for a in ATTACKS], ids=[a[0] for a in ATTACKS])
def test_attack_records_agree(detection: str, service: str, raw: bytes,
                              expected: bool) -> None:
    compiled = rule(detection, service=service)
    ruleset = RuleSet([compiled])
    view = EventView(orjson.loads(raw), raw)
    assert compiled.matches(view) is expected
    hits = Screen([compiled.needles]).hits(raw)
    if expected and AVAILABLE:
        assert hits is None or hits == {0}
    assert bool(_alerts(ruleset, [raw], byte_screen=True)) is expected
    assert bool(_alerts(ruleset, [raw], byte_screen=False)) is expected


@pytest.mark.parametrize(("raw", "expected"), [
    (b'{"a":"B"}', b'{"a":"b"}'), (b'{"a":"CAF\xc3\x89"}', '{"a":"café"}'.encode()),
    (b'{"a":"\\u0041"}', None), (b'{"a":"\xff"}', None), (b'{"a":"A\\/b"}', b'{"a":"a/b"}'),
    (b'{"a":"{\\"b\\":\\"c\\\\\\/d\\"}"}', b'{"a":"{""b"":""c/d""}"}'),
    (b'{"a":"\\"quoted\\""}', b'{"a":"""quoted"""}'),
], ids=["plain", "non-ascii", "unicode-escape", "not-utf8", "escaped-slash",
        "escaped-slash-in-json-string", "escaped-quote"])
def test_scan_text(raw: bytes, expected: bytes | None) -> None:
    assert scan_text(raw) == expected


NEEDLE_CASES = [
    # (id, detection, expected needles or None)
    ("exact-values", "  s:\n    operationName: [A/B, C/D]\n  condition: s",
     Needles(exact=frozenset({b"a/b", b"c/d"}))),
    ("integer-is-a-number-needle", RESULT, Needles(numbers=(b"50126",))),
    ("boolean-is-a-substring", "  s:\n    isRbac: true\n  condition: s",
     Needles(contains=(b"true",))),
    ("non-ascii-value-dropped", "  s:\n    message: ['caf\u00e9', Coffee]\n  condition: s",
     Needles(exact=frozenset({b"coffee"}), ascii_only=True)),
    ("number-like-word-gives-none", "  s:\n    message: Tea\n  condition: s", None),
    ("negated-gives-none", "  s:\n    message|neq: x\n  condition: s", None),
    ("null-gives-none", "  s:\n    message: null\n  condition: s", None),
    ("not-gives-none", "  s:\n    message: x\n  condition: not s", None),
    ("derived-field-gives-none", "  s:\n    Status: success\n  condition: s", None),
    ("regex-gives-none", "  s:\n    message|re: 'a.b'\n  condition: s", None),
    ("and-keeps-the-most-selective",
     "  a:\n    category: Administrative\n  b:\n    operationName|contains: x/y\n"
     "  condition: a and b", Needles(exact=frozenset({b"administrative"}))),
    ("or-needs-both", "  a:\n    category: x\n  b:\n    message|re: y\n  condition: a or b",
     None),
    ("keyword", "  k:\n    - RoleAssignments/Write\n  condition: k",
     Needles(contains=(b"roleassignments/write",))),
    ("structural-char-gives-none", "  s:\n    message|contains: 'a:b'\n  condition: s", None),
]


@pytest.mark.parametrize(("detection", "expected"), [c[1:] for c in NEEDLE_CASES],
                         ids=[c[0] for c in NEEDLE_CASES])
def test_rule_needles(detection: str, expected: Needles | None) -> None:
    assert rule(detection).needles == expected


def test_sigmahq_rules_all_have_needles(ruleset: RuleSet) -> None:
    assert not [r.title for r in ruleset.rules if r.needles is None]


