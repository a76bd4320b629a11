"""Loading Sigma rules with pySigma: parse, resolve, compile, and say what did not load.

Concept: the *rule set* of the alert engine (issue 4, "Sigma rules loaded with pySigma ...
Report which corpus rules load and which do not, and why"). pySigma parses each YAML file
(``SigmaCollection``: rules, correlation rules, multi-document files) and applies value
modifiers; :mod:`auditseal.alerts.matcher` compiles detections, this module the conditions
(at the end) and :mod:`auditseal.alerts.correlation` the correlations. Every file and rule gets a
:class:`LoadStatus`: loaded, loaded with warnings (a field no Azure record shape we know
carries, so the rule can only match records that have it under that very name), or not
loaded with the reason (pySigma's error, an unsupported modifier or correlation type, a
log source that is not an Azure log we collect, a placeholder with no value).

The built-in Azure pack ships as package data (``auditseal/alerts/rules/*.yml``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from sigma.collection import SigmaCollection
from sigma.conditions import (
    ConditionAND,
    ConditionIdentifier,
    ConditionItem,
    ConditionNOT,
    ConditionOR,
    ConditionSelector,
)
from sigma.correlations import (
    SigmaCorrelationCondition,
    SigmaCorrelationConditionOperator,
    SigmaCorrelationRule,
)
from sigma.exceptions import SigmaError
from sigma.rule import SigmaDetection, SigmaDetectionItem, SigmaRule

from auditseal.alerts.checks import detection_check
from auditseal.alerts.correlation import KINDS, CorrelationSpec, NewValueSpec
from auditseal.alerts.fields import EventView, is_known_field
from auditseal.alerts.matcher import (
    Check,
    DetectionMatcher,
    Gate,
    Hit,
    and_gate,
    or_gate,
)
from auditseal.alerts.matcher import compile_detection as _compile_detection
from auditseal.alerts.prefilter import Needles, rule_needles
from auditseal.errors import FormatError

__all__ = ["CompiledRule", "LoadStatus", "RuleSet", "builtin_rule_texts", "load_rules",
           "load_texts"]

SERVICES = frozenset({"activitylogs", "auditlogs", "signinlogs", "riskdetection", "keyvault",
                      "kubernetes"})
_SERVICE_ALIASES = {"pim": "auditlogs", "azureactivity": "activitylogs",
                    "aks": "kubernetes", "kube-audit": "kubernetes"}
"""PIM alerts and role activations are Entra audit records (loggedByService "PIM")."""


@dataclass(frozen=True)
class LoadStatus:
    """What became of one rule (or of a file that held none)."""

    path: str
    id: str | None
    title: str | None
    kind: str  # "rule", "correlation" or "file"
    loaded: bool
    reason: str | None = None
    warnings: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {"path": self.path, "id": self.id, "title": self.title, "kind": self.kind,
                "loaded": self.loaded, "reason": self.reason, "warnings": list(self.warnings)}


@dataclass(frozen=True)
class CompiledRule:
    """A single-event Sigma rule ready to evaluate."""

    id: str
    title: str
    level: str
    description: str
    service: str | None
    check: Check
    gate: Gate | None
    detections: dict[str, DetectionMatcher]
    path: str
    generate: bool = True
    new_value: NewValueSpec | None = None
    needles: Needles | None = None
    """Literals one of which the raw record must show (the byte prefilter), if known."""

    def matches(self, view: EventView) -> bool:
        """Whether the record matches this rule (log source included)."""
        if self.service is not None and view.service != self.service:
            return False
        return self.check(view)

    def explain(self, view: EventView) -> tuple[bool, list[Hit]]:
        """Whether it matches, and which detections, fields and values did."""
        return self.matches(view), self.hits(view)

    def hits(self, view: EventView) -> list[Hit]:
        """Which detections, fields and values matched (for a record known to match)."""
        return [hit for detection in self.detections.values() for hit in detection.explain(view)]


@dataclass
class RuleSet:
    """Every loaded rule, and the report of what loaded."""

    rules: list[CompiledRule] = field(default_factory=list)
    correlations: list[CorrelationSpec] = field(default_factory=list)
    report: list[LoadStatus] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """Loaded / loaded with warnings / not loaded, over rules and correlations."""
        rules = [s for s in self.report if s.kind != "file"]
        return {
            "total": len(rules),
            "loaded": sum(s.loaded for s in rules),
            "with_warnings": sum(s.loaded and bool(s.warnings) for s in rules),
            "not_loaded": sum(not s.loaded for s in rules),
        }


def builtin_rule_texts() -> list[tuple[str, str]]:
    """(name, YAML text) of every rule of the built-in Azure pack."""
    folder = resources.files("auditseal.alerts") / "rules"
    return sorted((f"builtin:{item.name}", item.read_text("utf-8"))
                  for item in folder.iterdir() if item.name.endswith(".yml"))


def load_rules(paths: Sequence[Path], *, builtin: bool = False) -> RuleSet:
    """Load the rules in ``paths`` (files or directories searched for ``*.yml``/``*.yaml``).

    Raises:
        ConfigError is never raised for a bad rule: each is reported in ``RuleSet.report``.
        FileNotFoundError: a path does not exist.
    """
    texts = builtin_rule_texts() if builtin else []
    for path in paths:
        files = ([path] if path.is_file() else
                 sorted(p for p in path.rglob("*") if p.suffix in (".yml", ".yaml")))
        if not path.exists():
            raise FileNotFoundError(f"no rule file or directory at {path}")
        texts.extend((str(p), p.read_text("utf-8")) for p in files)
    return load_texts(texts)


def load_texts(texts: Iterable[tuple[str, str]]) -> RuleSet:
    """Load rules from (name, YAML text) pairs; see :func:`load_rules`."""
    ruleset = RuleSet()
    parsed: list[tuple[str, SigmaRule | SigmaCorrelationRule]] = []
    for name, text in texts:
        try:
            documents = [d for d in yaml.safe_load_all(text) if d is not None]
            collection = SigmaCollection.from_dicts(documents, collect_errors=True,
                                                    resolve_references=False)
        except yaml.YAMLError as exc:
            ruleset.report.append(LoadStatus(name, None, None, "file", False,
                                             f"not valid YAML: {_why(exc)}"))
            continue
        except SigmaError as exc:
            ruleset.report.append(LoadStatus(name, None, None, "file", False, _why(exc)))
            continue
        for error in collection.errors:
            ruleset.report.append(LoadStatus(name, None, None, "file", False, _why(error)))
        parsed.extend((name, rule) for rule in collection.rules)
    everything = SigmaCollection([rule for _, rule in parsed], resolve_references=False)
    correlated: dict[str, bool] = {}  # base rule id -> does a correlation let it generate?
    for name, rule in parsed:
        if isinstance(rule, SigmaCorrelationRule):
            status, spec = _load_correlation(name, rule, everything)
            ruleset.report.append(status)
            if spec is not None:
                ruleset.correlations.append(spec)
                for rule_id in spec.rule_ids:
                    correlated[rule_id] = correlated.get(rule_id, False) or rule.generate
    for name, rule in parsed:
        if isinstance(rule, SigmaRule):
            status, compiled = _load_rule(name, rule)
            ruleset.report.append(status)
            if compiled is not None:
                generate = correlated.get(compiled.id, True)
                ruleset.rules.append(_with_generate(compiled, generate))
    known = {rule.id for rule in ruleset.rules}
    for spec in list(ruleset.correlations):
        missing = [r for r in spec.rule_ids if r not in known]
        if missing:  # a referenced rule did not load: the correlation cannot run either
            ruleset.correlations.remove(spec)
            ruleset.report = [
                LoadStatus(s.path, s.id, s.title, s.kind, False,
                           f"referenced rule {', '.join(missing)} did not load")
                if s.kind == "correlation" and s.id == spec.id else s
                for s in ruleset.report
            ]
    return ruleset


def _with_generate(rule: CompiledRule, generate: bool) -> CompiledRule:
    if generate == rule.generate:
        return rule
    return CompiledRule(rule.id, rule.title, rule.level, rule.description, rule.service,
                        rule.check, rule.gate, rule.detections, rule.path, generate,
                        rule.new_value, rule.needles)


def _why(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0][:300]


def _load_rule(name: str, rule: SigmaRule) -> tuple[LoadStatus, CompiledRule | None]:
    rule_id = str(rule.id) if rule.id is not None else (rule.name or rule.title)

    def failed(reason: str) -> tuple[LoadStatus, None]:
        return LoadStatus(name, rule_id, rule.title, "rule", False, reason), None

    if rule.errors:
        return failed(_why(rule.errors[0]))
    logsource = rule.logsource
    product = (logsource.product or "").lower()
    service = (logsource.service or "").lower() or None
    service = _SERVICE_ALIASES.get(service, service) if service else None
    if product not in ("azure", "") or (not product and service is None):
        return failed(f"log source {product or '-'}/{logsource.service or '-'} is not Azure")
    if service is not None and service not in SERVICES:
        return failed(f"log source service {logsource.service!r} is not an Azure log we collect")
    if logsource.category is not None:
        return failed(f"log source category {logsource.category!r} is not an Azure log")
    try:
        detections = {key: _compile_detection(key, detection)
                      for key, detection in rule.detection.detections.items()}
        check, gate = compile_condition(rule, detections)
        needles = rule_needles(rule, detections)
        new_value = _new_value(rule.custom_attributes.get("auditseal"))
    except (SigmaError, FormatError, ValueError, KeyError) as exc:
        return failed(_why(exc))
    fields = sorted({item.field for detection in rule.detection.detections.values()
                     for item in _items(detection) if item.field is not None})
    warnings = tuple(f"field {f!r} is not in any Azure record shape auditseal knows"
                     for f in fields if not is_known_field(f))
    compiled = CompiledRule(
        id=rule_id, title=rule.title, level=str(rule.level or "medium").lower(),
        description=(rule.description or "").strip(), service=service, check=check,
        gate=gate, detections=detections, path=name, new_value=new_value, needles=needles,
    )
    return LoadStatus(name, rule_id, rule.title, "rule", True, None, warnings), compiled


def _items(detection: SigmaDetection) -> Iterable[SigmaDetectionItem]:
    for item in detection.detection_items:
        if isinstance(item, SigmaDetection):
            yield from _items(item)
        else:
            yield item


def _new_value(extension: object) -> NewValueSpec | None:
    if extension is None:
        return None
    spec = extension.get("new-value") if isinstance(extension, dict) else None
    if not isinstance(spec, dict) or not isinstance(spec.get("field"), str):
        raise FormatError("auditseal.new-value needs a 'field' (and optional 'group-by' list)")
    group_by = spec.get("group-by", [])
    if not isinstance(group_by, list) or not all(isinstance(g, str) for g in group_by):
        raise FormatError("auditseal.new-value.group-by must be a list of field names")
    return NewValueSpec(spec["field"], tuple(group_by))


def _load_correlation(name: str, rule: SigmaCorrelationRule, everything: SigmaCollection
                      ) -> tuple[LoadStatus, CorrelationSpec | None]:
    rule_id = str(rule.id) if rule.id is not None else (rule.name or rule.title)

    def failed(reason: str) -> tuple[LoadStatus, None]:
        return LoadStatus(name, rule_id, rule.title, "correlation", False, reason), None

    if rule.errors:
        return failed(_why(rule.errors[0]))
    kind = str(rule.type.name).lower()
    if kind not in KINDS:
        return failed(f"correlation type {kind} is not supported (only {', '.join(sorted(KINDS))})")
    condition = rule.condition
    if not isinstance(condition, SigmaCorrelationCondition):
        return failed("extended correlation conditions (and/or/not of rules) are not supported")
    try:
        rule.resolve_rule_references(everything)
    except SigmaError as exc:
        return failed(_why(exc))
    referenced: list[str] = []
    for reference in rule.rules or []:
        target = reference.rule
        if isinstance(target, SigmaCorrelationRule):
            return failed("correlations of correlations are not supported")
        referenced.append(str(target.id) if target.id is not None else target.title)
    by_ref = {ref.reference: rid for ref, rid in zip(rule.rules or [], referenced, strict=True)}
    group_by = tuple(
        (alias, _alias_map(rule, alias, by_ref)) for alias in (rule.group_by or [])
    )
    value_field: dict[str, str] = {}
    fieldref = condition.fieldref
    if kind == "value_count":
        if not isinstance(fieldref, str):
            return failed("value_count needs condition.field")
        mapping = _alias_map(rule, fieldref, by_ref)
        value_field = {rid: mapping.get(rid, fieldref) for rid in referenced}
    op = condition.op.name.lower()
    default = condition.op is SigmaCorrelationConditionOperator.GTE and condition.count == 1
    spec = CorrelationSpec(
        id=rule_id, title=rule.title, level=str(rule.level or "medium").lower(),
        description=(rule.description or "").strip(), kind=kind, rule_ids=tuple(referenced),
        group_by=group_by, timespan_s=float(rule.timespan.seconds), op=op,
        count=float(condition.count), value_field=value_field,
        require_all=kind == "temporal" and default,
    )
    return LoadStatus(name, rule_id, rule.title, "correlation", True), spec


def _alias_map(rule: SigmaCorrelationRule, alias: str, by_ref: dict[str, str]) -> dict[str, str]:
    found = rule.aliases.aliases.get(alias)
    if found is None:
        return {}
    return {by_ref.get(ref.reference, ref.reference): name for ref, name in found.mapping.items()}


# --- conditions ------------------------------------------------------------------------------


def compile_condition(rule: SigmaRule, detections: dict[str, DetectionMatcher]
                      ) -> tuple[Check, Gate | None]:
    """Compile a rule's conditions (OR-linked when it lists several) and derive its gate."""
    compiled = [_node(condition.parse(postprocess=False), rule, detections)
                for condition in rule.detection.parsed_condition]
    checks = [check for check, _ in compiled]
    gate = or_gate([g for _, g in compiled]) if len(compiled) > 1 else compiled[0][1]
    if len(checks) == 1:
        return checks[0], gate
    return (lambda view: any(check(view) for check in checks)), gate


def _node(node: Any, rule: SigmaRule, detections: dict[str, DetectionMatcher]
          ) -> tuple[Check, Gate | None]:
    if isinstance(node, ConditionIdentifier):
        detection = detections.get(node.identifier)
        if detection is None:
            raise FormatError(f"condition names {node.identifier!r}, which is not a detection")
        return detection_check(detection), detection.gate()
    if isinstance(node, ConditionSelector):
        names = [ident.identifier
                 for ident in node.resolve_referenced_detections(rule.detection)]
        if not names:
            raise FormatError(f"'{node.args[0]} of {node.pattern}' matches no detection")
        children = [_node(ConditionIdentifier([name]), rule, detections) for name in names]
        conjunction = node.cond_class is ConditionAND
        return _combine(children, conjunction=conjunction)
    if isinstance(node, ConditionNOT):
        inner, _ = _node(node.args[0], rule, detections)
        return (lambda view: not inner(view)), None
    if isinstance(node, ConditionAND | ConditionOR):
        children = [_node(arg, rule, detections) for arg in node.args]
        return _combine(children, conjunction=isinstance(node, ConditionAND))
    if isinstance(node, ConditionItem):  # pragma: no cover - pySigma adds a new operator
        raise FormatError(f"unsupported condition element {type(node).__name__}")
    raise FormatError(f"unsupported condition element {node!r}")


def _combine(children: list[tuple[Check, Gate | None]], *, conjunction: bool
             ) -> tuple[Check, Gate | None]:
    checks = tuple(check for check, _ in children)
    gates = [gate for _, gate in children]
    if len(checks) == 1:
        return checks[0], gates[0]
    if conjunction:
        def every(view: EventView) -> bool:  # loops, not all(generator): runs per record
            for check in checks:  # noqa: SIM110
                if not check(view):
                    return False
            return True
        return every, and_gate(gates)

    def some(view: EventView) -> bool:
        for check in checks:  # noqa: SIM110
            if check(view):
                return True
        return False
    return some, or_gate(gates)
