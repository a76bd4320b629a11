"""Alerts: Sigma rules evaluated over sealed Azure audit events (issue 4, "Alerts").

Modules, one concept each: :mod:`~auditseal.alerts.sigma` loads rules with pySigma and
reports what loads; :mod:`~auditseal.alerts.matcher` evaluates detections and conditions;
:mod:`~auditseal.alerts.fields` maps Sigma field names onto Azure records;
:mod:`~auditseal.alerts.correlation` keeps correlation windows;
:mod:`~auditseal.alerts.engine` runs everything per sealed record, live or over history;
:mod:`~auditseal.alerts.sinks` delivers alerts (webhook, Teams, Slack, file, the log).
The built-in Azure rule pack is package data in ``auditseal/alerts/rules/``.
"""

from auditseal.alerts.engine import Alert, AlertEngine, EngineConfig, run_history
from auditseal.alerts.fields import EventView
from auditseal.alerts.sigma import CompiledRule, LoadStatus, RuleSet, load_rules, load_texts
from auditseal.alerts.sinks import (
    Dispatcher,
    FileSink,
    LogSink,
    RetryPolicy,
    Sink,
    WebhookSink,
    format_message,
)

__all__ = [
    "Alert",
    "AlertEngine",
    "CompiledRule",
    "Dispatcher",
    "EngineConfig",
    "EventView",
    "FileSink",
    "LoadStatus",
    "LogSink",
    "RetryPolicy",
    "RuleSet",
    "Sink",
    "WebhookSink",
    "format_message",
    "load_rules",
    "load_texts",
    "run_history",
]
