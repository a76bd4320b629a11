"""The absence screen: records skipped unwalked only when no rule can be a candidate.

Each raw record goes through the engine (screen on for its log) and through every rule's
general matcher on the decoded record: they must agree, including records whose gate value
is spelled with JSON escapes, non-ASCII case folds, or numbers re-spelled on decoding.
"""

from __future__ import annotations

import orjson

from auditseal.alerts.absence import absence_screen
from auditseal.alerts.engine import AlertEngine, EngineConfig
from auditseal.alerts.fields import EventView
from tests.alerts.test_selection import _rules

_KUBE = (b'{"category":"kube-audit","time":"2026-03-14T02:14:33Z","properties":{"log":'
         b'"{\\"verb\\":\\"create\\",\\"requestObject\\":{\\"roleRef\\":{\\"name\\":\\"%s\\"}}}"}}')
_VAULT = b'{"category":"AuditEvent","time":"2026-03-14T02:14:33Z","operationName":"%s"}'


def _agree(bodies: tuple[tuple[str, str], ...], records: list[bytes]) -> list[int]:
    """Engine verdicts == the general matchers' on every record; the indexes that fired."""
    ruleset, general = _rules(*bodies)
    engine = AlertEngine(ruleset, EngineConfig(suppress_window_s=0))
    fired = []
    for index, raw in enumerate(records):
        got = sorted(a.rule_id for a in engine.process(index, raw) if a.kind == "rule")
        view = EventView(orjson.loads(raw), raw)
        assert got == sorted(r.id for r in general.rules if r.matches(view)), raw
        if got:
            fired.append(index)
    return fired


def test_escaped_or_folded_gate_values_still_match() -> None:
    bodies = (("kubernetes", "  selection:\n    properties.log.requestObject.roleRef.name: "
                             "cluster-admin\n  condition: selection"),
              ("keyvault", "  selection:\n    operationName: KeyGet\n  condition: selection"))
    records = [_KUBE % b"view", _KUBE % b"Cluster-Admin", _KUBE % b"cluster\\\\u002dadmin",
               _KUBE % b"cluster\\\\u002Dadmin", _VAULT % b"SecretGet", _VAULT % b"KEYGET",
               _VAULT % b"\\u004beyGet", _VAULT % "\u212aeyGet".encode(),
               _VAULT % b"Key\\/Get"]
    assert _agree(bodies, records) == [1, 2, 3, 5, 6, 7]


def test_numeric_or_derived_gate_values_are_not_screened() -> None:
    bodies = (("keyvault", "  selection:\n    properties.code: 100000\n  condition: selection"),
              ("signinlogs", "  selection:\n    Status: Success\n  condition: selection"))
    ruleset, _ = _rules(*bodies)
    engine = AlertEngine(ruleset)
    assert engine._selectors["keyvault"].screen is None
    assert engine._selectors["signinlogs"].screen is None
    records = [b'{"category":"AuditEvent","properties":{"code":1e5}}',
               b'{"category":"AuditEvent","properties":{"code":100000.0}}',
               b'{"category":"SignInLogs","resultType":"0"}']
    assert _agree(bodies, records) == [0, 1, 2]


def test_screen_says_no_only_without_any_gate_value() -> None:
    bodies = (("keyvault", "  selection:\n    operationName|startswith: Vault\n"
                           "  condition: selection"),)
    ruleset, _ = _rules(*bodies)
    screen = AlertEngine(ruleset)._selectors["keyvault"].screen
    assert screen is not None
    assert not screen(_VAULT % b"SecretGet")
    assert screen(_VAULT % b"VAULTDelete")
    assert screen(_VAULT % b"x\\u0041")
    assert _agree(bodies, [_VAULT % b"SecretGet", _VAULT % b"VaultGet"]) == [1]
    no_log = absence_screen(AlertEngine(ruleset)._tables[None])  # no rule for such records
    assert no_log is not None
    assert not no_log(b'{"category":"Other"}')
