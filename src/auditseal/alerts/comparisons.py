"""Sigma's non-string value tests: ``cidr`` addresses and numeric comparisons.

Concept: the *value comparisons* of the Sigma evaluator (Sigma specification v2, value
modifiers ``cidr``, ``gt``, ``gte``, ``lt``, ``lte``), kept apart from
:mod:`auditseal.alerts.matcher`, which buckets the string values. Hand-written: pySigma
parses these modifiers but ships no evaluator for them.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

from sigma.types import CompareOperators, SigmaCompareExpression

from auditseal.alerts.fields import EventView

__all__ = ["Compiled", "ValueTest", "compile_compare", "in_network"]

ValueTest = Callable[[object, str | None, EventView], bool]
"""(raw value, lower-cased text or None for null, view) -> match?"""
Compiled = tuple[str, str, str | None, ValueTest]
"""(label, kind, lower-cased text, test); kind is exact, prefix, suffix, contains or other."""


def in_network(text: str | None, network: ipaddress.IPv4Network | ipaddress.IPv6Network
               ) -> bool:
    """Whether the text is an address (``host``, ``host:port``, ``[v6]:port``) in it."""
    if not text:
        return False
    host = text
    if text.startswith("[") and "]" in text:
        host = text[1 : text.index("]")]
    elif text.count(":") == 1:
        host = text.split(":", 1)[0]
    try:
        return ipaddress.ip_address(host) in network
    except ValueError:
        return False


_COMPARE: dict[CompareOperators, Callable[[float, float], bool]] = {
    CompareOperators.LT: lambda a, b: a < b,
    CompareOperators.LTE: lambda a, b: a <= b,
    CompareOperators.GT: lambda a, b: a > b,
    CompareOperators.GTE: lambda a, b: a >= b,
    CompareOperators.NEQ: lambda a, b: a != b,
}


def compile_compare(value: SigmaCompareExpression) -> Compiled:
    """A ``gt``/``gte``/``lt``/``lte`` value: numbers (or numeric text), never booleans."""
    limit, compare = float(value.number.number), _COMPARE[value.op]

    def test(v: object, t: str | None, _view: EventView) -> bool:
        try:
            return t is not None and not isinstance(v, bool) and compare(float(t), limit)
        except ValueError:
            return False

    return f"{value.op.name.lower()} {value.number}", "other", None, test
