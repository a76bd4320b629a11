"""Which rules a record is worth evaluating against: the gate tables, per log.

Concept: the *rule index* of the alert engine (issue 4, streaming evaluation within
microseconds per record). Rules are grouped by log (``logsource.service``), then by their
*gate* (:class:`~auditseal.alerts.matcher.Gate`: a field and the values one of which the
record must hold), so a record costs one dict lookup per gate field of its log instead of
one evaluation per rule. Each log's :class:`Table` also carries the :class:`Program` that
walks, in one pass of a record, every field its rules (and the log-less rules) read.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from auditseal.alerts.fields import FieldRef, Program, compile_field, compile_program
from auditseal.alerts.sigma import CompiledRule

__all__ = ["Bucket", "GateIndex", "Table", "index_rules", "programs", "tables"]


@dataclass
class GateIndex:
    """The rules of one gate field, by lower-cased value and by affix."""

    ref: FieldRef
    by_value: dict[str, list[CompiledRule]] = dataclasses.field(default_factory=dict)
    affixes: list[tuple[tuple[str, ...], tuple[str, ...], CompiledRule]] = dataclasses.field(
        default_factory=list)


@dataclass
class Bucket:
    """The rules of one log: those without a gate, and the gate indexes."""

    always: list[CompiledRule] = field(default_factory=list)
    gates: dict[str, GateIndex] = field(default_factory=dict)


def index_rules(rules: list[CompiledRule]) -> dict[str | None, Bucket]:
    """Rules by log, then by gate field and value."""
    buckets: dict[str | None, Bucket] = {}
    for rule in rules:
        bucket = buckets.setdefault(rule.service, Bucket())
        if rule.gate is None:
            bucket.always.append(rule)
            continue
        gate = rule.gate
        index = bucket.gates.setdefault(gate.field.key, GateIndex(gate.field))
        for value in gate.values:
            index.by_value.setdefault(value, []).append(rule)
        if gate.prefixes or gate.suffixes:
            index.affixes.append((gate.prefixes, gate.suffixes, rule))
    return buckets


def programs(rules: list[CompiledRule], extra: frozenset[int] = frozenset(),
             after: dict[str | None, list[FieldRef]] | None = None
             ) -> dict[str | None, Program]:
    """Per log, one walk for the gate and item fields of every rule that log may meet.

    ``extra``: paths the engine reads once a rule matched (the time, the caller), walked
    with the rest by the logs that have rules: a walk of their own would cost more.
    ``after``: per log, more fields read once a rule of that log matched (the group-by
    and counted fields of the correlations its rules feed), for the same reason.
    """
    fields: dict[str | None, list[FieldRef]] = {None: []}
    for service, refs in (after or {}).items():
        fields.setdefault(service, []).extend(refs)
    for rule in rules:
        refs = fields.setdefault(rule.service, [])
        if rule.gate is not None:
            refs.append(rule.gate.field)
        refs.extend(item.field for detection in rule.detections.values()
                    for item in detection.items() if item.field is not None)
        if rule.new_value is not None:
            refs.extend(map(compile_field, (rule.new_value.field, *rule.new_value.group_by)))
    common = fields[None]
    return {service: compile_program([*refs, *common], extra) if service is not None
            else compile_program(common, extra if common else frozenset())
            for service, refs in fields.items()}


@dataclass(frozen=True)
class Table:
    """What the engine does per record of one log: fields to walk, rules to try, gates."""

    program: Program
    always: tuple[CompiledRule, ...]
    gates: tuple[tuple[FieldRef, tuple[int, ...], dict[str, list[CompiledRule]],
                       list[tuple[tuple[str, ...], tuple[str, ...], CompiledRule]]], ...]
    """(field, its candidate path ids when it takes the first found (else empty), rules by
    value, rules by affix)."""


def tables(buckets: dict[str | None, Bucket], programs: dict[str | None, Program]
            ) -> dict[str | None, Table]:
    """Per log (None: records of no known log), its rules and the log-less rules together."""
    common = buckets.get(None, Bucket())
    tables: dict[str | None, Table] = {}
    for service in {*buckets, *programs, None}:
        parts = [common] if service is None else [buckets.get(service, Bucket()), common]
        tables[service] = Table(
            programs.get(service, programs[None]),
            tuple(rule for part in parts for rule in part.always),
            tuple((index.ref, index.ref.first_of, index.by_value, index.affixes)
                  for part in parts for index in part.gates.values()))
    return tables

