"""The search index's tables: one physical table of sealed events, Log Analytics views on it.

Concept: the *index schema*. Every sealed entry is one row of the physical table
``_events`` (normalized fields from :mod:`auditseal.ingest.normalize`, the sealed event as
JSON, its log index and leaf hash). Users query *views* named and shaped like the Azure
Monitor Log Analytics tables they know (``AzureActivity``, ``SigninLogs``, ``AuditLogs``,
``AzureDiagnostics``, ``AKSAudit``, ...; column names from the Azure Monitor table
reference, https://learn.microsoft.com/en-us/azure/azure-monitor/reference/tables-index),
plus ``AuditEvents``, every event whatever its table.

A view column is either a normalized field or a JSON path into the sealed event. Each JSON
column lists the diagnostic-settings path first (``properties.appDisplayName``) and the Log
Analytics column second (``AppDisplayName``), so the view reads both shapes of record. The
views are created as TEMP views by each query connection from this module, never stored in
the index file: the index is untrusted derived data, and a view edited in the file could
otherwise change what a query answers. The mapping is the data below; ``view_columns(table)``
lists it per table (and docs/search.md, generated from it, for people).
"""

from __future__ import annotations

from collections.abc import Iterable

from auditseal.ingest import azure_categories as cat
from auditseal.ingest.azure_analytics import ANALYTICS_MAPS

__all__ = [
    "ALL_EVENTS",
    "COMMON_COLUMNS",
    "EVENTS_TABLE",
    "INDEX_FORMAT",
    "PHYSICAL_COLUMNS",
    "STATE_TABLE",
    "TABLES",
    "TABLE_COLUMNS",
    "create_statements",
    "kql_schema",
    "view_columns",
    "view_statements",
]

INDEX_FORMAT = 1
"""Bump when the physical table or the derivation changes: old indexes must be rebuilt."""

EVENTS_TABLE = "_events"
STATE_TABLE = "_index_state"
ALL_EVENTS = "AuditEvents"

PHYSICAL_COLUMNS: tuple[tuple[str, str], ...] = (
    ("_LogIndex", "BIGINT"),  # the entry's index in the log
    ("_LeafHash", "VARCHAR"),  # hex SHA-256(0x00 || entry), RFC 9162 section 2.1.1
    ("_TimeReceived", "TIMESTAMP"),  # entry header "t": when auditseal received it (UTC)
    ("_Source", "VARCHAR"),  # entry header "src"
    ("_Kind", "VARCHAR"),  # entry header "kind": event, alert, admin
    ("Type", "VARCHAR"),  # NormalizedEvent.table
    ("TimeGenerated", "TIMESTAMP"),  # NormalizedEvent.time, else the receive time (UTC)
    ("Category", "VARCHAR"),
    ("OperationName", "VARCHAR"),
    ("Caller", "VARCHAR"),
    ("CallerIpAddress", "VARCHAR"),
    ("Result", "VARCHAR"),
    ("ResourceId", "VARCHAR"),
    ("SubscriptionId", "VARCHAR"),
    ("TenantId", "VARCHAR"),
    ("CorrelationId", "VARCHAR"),
    ("Level", "VARCHAR"),
    ("_Event", "JSON"),  # the sealed event; a JSON string when it is not JSON
)
"""The physical table, in insertion order. Timestamps are naive UTC, as duckdb-kql wants."""


def _path(path: str) -> str:
    return "$." + ".".join(f'"{key}"' for key in path.split("."))


def _text(*paths: str) -> str:
    """First non-null text among JSON paths of the sealed event."""
    return "coalesce(" + ", ".join(f"_Event->>'{_path(p)}'" for p in paths) + ")"


def _json(*paths: str) -> str:
    """First non-null JSON value among paths of the sealed event (a ``dynamic`` column)."""
    return "coalesce(" + ", ".join(f"_Event->'{_path(p)}'" for p in paths) + ")"


def _prop(name: str, *more: str) -> str:
    """A Log Analytics column that diagnostic records keep under ``properties.<camelCase>``."""
    return _text(f"properties.{name[0].lower()}{name[1:]}", name, *more)


def _prop_json(name: str) -> str:
    return _json(f"properties.{name[0].lower()}{name[1:]}", name)


def _number(expression: str) -> str:
    return f"TRY_CAST({expression} AS DOUBLE)"


def _id_part(pattern: str) -> str:
    """A piece of the ARM resource id (case-insensitive regular expression, group 1)."""
    return f"nullif(regexp_extract(ResourceId, '(?i){pattern}', 1), '')"


_PROPERTIES = _json("properties", "Properties")
_RESOURCE_GROUP = f"coalesce(_Event->>'$.ResourceGroup', {_id_part('/resourcegroups/([^/]+)')})"

COMMON_COLUMNS: tuple[tuple[str, str], ...] = (
    ("TimeGenerated", "TimeGenerated"),
    ("Type", "Type"),
    ("Category", "Category"),
    ("OperationName", "OperationName"),
    ("Caller", "Caller"),
    ("CallerIpAddress", "CallerIpAddress"),
    ("Result", "Result"),
    ("ResourceId", "ResourceId"),
    ("_ResourceId", "ResourceId"),
    ("SubscriptionId", "SubscriptionId"),
    ("_SubscriptionId", "SubscriptionId"),
    ("TenantId", "TenantId"),
    ("CorrelationId", "CorrelationId"),
    ("Level", "Level"),
    ("Properties", _PROPERTIES),
    ("_TimeReceived", "_TimeReceived"),
    ("_Source", "_Source"),
    ("_Kind", "_Kind"),
    ("_LogIndex", "_LogIndex"),
    ("_LeafHash", "_LeafHash"),
    ("_Event", "_Event"),
)
"""Columns every view has (``AuditEvents`` has exactly these); a table's own columns of the
same name replace them."""

_ACTIVITY = (
    ("OperationNameValue", "OperationName"),
    ("OperationName", "coalesce(_Event->>'$.operationName.localizedValue', "
                      "_Event->>'$.OperationName', OperationName)"),
    ("CategoryValue", "Category"),
    ("ActivityStatusValue", f"coalesce({_text('resultType', 'status.value')}, "
                            f"_Event->>'$.ActivityStatusValue', Result)"),
    ("ActivityStatus", f"coalesce({_text('status.localizedValue', 'ActivityStatus')}, Result)"),
    ("ActivitySubstatusValue", _text("resultSignature", "subStatus.value",
                                     "ActivitySubstatusValue")),
    ("ResourceGroup", _RESOURCE_GROUP),
    ("ResourceProviderValue", f"coalesce({_text('resourceProviderName.value')}, "
                              f"_Event->>'$.ResourceProviderValue', "
                              f"upper(nullif(split_part(OperationName, '/', 1), '')))"),
    ("Authorization", _json("identity.authorization", "authorization", "Authorization_d")),
    ("Claims", _json("identity.claims", "claims", "Claims_d")),
    ("HTTPRequest", _json("httpRequest", "HTTPRequest")),
    ("Properties_d", _PROPERTIES),
)

_SIGN_IN = (
    ("UserPrincipalName", _prop("UserPrincipalName")),
    ("UserDisplayName", _prop("UserDisplayName")),
    ("UserId", _prop("UserId")),
    ("AppDisplayName", _prop("AppDisplayName")),
    ("AppId", _prop("AppId")),
    ("ResourceDisplayName", _prop("ResourceDisplayName")),
    ("ServicePrincipalName", _prop("ServicePrincipalName")),
    ("ServicePrincipalId", _prop("ServicePrincipalId")),
    ("IPAddress", "CallerIpAddress"),
    ("ResultType", _text("resultType", "properties.status.errorCode", "ResultType")),
    ("ResultDescription", _text("resultDescription", "properties.status.failureReason",
                                "ResultDescription")),
    ("ResultSignature", _text("resultSignature", "ResultSignature")),
    ("Location", _text("location", "properties.location.countryOrRegion", "Location")),
    ("LocationDetails", _json("properties.location", "LocationDetails")),
    ("ClientAppUsed", _prop("ClientAppUsed")),
    ("ConditionalAccessStatus", _prop("ConditionalAccessStatus")),
    ("ConditionalAccessPolicies", _json("properties.appliedConditionalAccessPolicies",
                                        "ConditionalAccessPolicies")),
    ("AuthenticationRequirement", _prop("AuthenticationRequirement")),
    ("AuthenticationDetails", _prop_json("AuthenticationDetails")),
    ("DeviceDetail", _prop_json("DeviceDetail")),
    ("Status", _prop_json("Status")),
    ("UserAgent", _prop("UserAgent")),
    ("IsInteractive", _prop("IsInteractive")),
    ("RiskLevelDuringSignIn", _prop("RiskLevelDuringSignIn")),
    ("RiskState", _prop("RiskState")),
    ("Identity", _text("identity", "Identity")),
    ("Id", _prop("Id")),
    ("AADTenantId", "TenantId"),
)

_ENTRA_AUDIT = (
    ("ActivityDisplayName", _prop("ActivityDisplayName")),
    ("Category", f"coalesce({_text('properties.category', 'Category')}, Category)"),
    ("Result", f"coalesce({_text('properties.result', 'Result')}, Result)"),
    ("ResultReason", _prop("ResultReason")),
    ("ResultDescription", _text("resultDescription", "ResultDescription")),
    ("InitiatedBy", _prop_json("InitiatedBy")),
    ("TargetResources", _prop_json("TargetResources")),
    ("AdditionalDetails", _prop_json("AdditionalDetails")),
    ("LoggedByService", _prop("LoggedByService")),
    ("OperationType", _prop("OperationType")),
    ("Identity", _text("identity", "Identity")),
    ("Id", _prop("Id")),
    ("AADTenantId", "TenantId"),
)

_GRAPH = (
    ("RequestId", _prop("RequestId")),
    ("RequestMethod", _prop("RequestMethod")),
    ("RequestUri", _prop("RequestUri")),
    ("ResponseStatusCode", _number(_prop("ResponseStatusCode"))),
    ("UserId", _prop("UserId")),
    ("AppId", _prop("AppId")),
    ("ServicePrincipalId", _prop("ServicePrincipalId")),
    ("IPAddress", "CallerIpAddress"),
    ("UserAgent", _prop("UserAgent")),
    ("Roles", _prop("Roles")),
    ("Scopes", _prop("Scopes")),
    ("ClientRequestId", _prop("ClientRequestId")),
    ("ApiVersion", _prop("ApiVersion")),
    ("SignInActivityId", _prop("SignInActivityId")),
    ("Location", _text("location", "properties.location", "Location")),
)

_RISK = (
    ("UserPrincipalName", _prop("UserPrincipalName")),
    ("UserDisplayName", _prop("UserDisplayName")),
    ("UserId", _prop("UserId")),
    ("RiskLevel", _prop("RiskLevel")),
    ("RiskState", _prop("RiskState")),
    ("RiskDetail", _prop("RiskDetail")),
    ("RiskEventType", _prop("RiskEventType")),
    ("DetectionTimingType", _prop("DetectionTimingType")),
    ("IpAddress", "CallerIpAddress"),
    ("ServicePrincipalId", _prop("ServicePrincipalId")),
)

_DIAGNOSTICS = (
    ("ResultType", _text("resultType", "ResultType")),
    ("ResultSignature", _text("resultSignature", "ResultSignature")),
    ("ResultDescription", _text("resultDescription", "ResultDescription")),
    ("DurationMs", _number(_text("durationMs", "DurationMs"))),
    ("CallerIPAddress", "CallerIpAddress"),
    ("Resource", f"coalesce(_Event->>'$.Resource', upper({_id_part('/([^/]+)$')}))"),
    ("ResourceGroup", _RESOURCE_GROUP),
    ("ResourceProvider", f"coalesce(_Event->>'$.ResourceProvider', "
                         f"upper({_id_part('/providers/([^/]+)')}))"),
    ("ResourceType", f"coalesce(_Event->>'$.ResourceType', "
                     f"upper({_id_part('/providers/[^/]+/([^/]+)')}))"),
    ("identity_claim_upn_s", _text("identity.claim.upn", "identity_claim_upn_s")),
    ("identity_claim_oid_g", _text("identity.claim.oid", "identity_claim_oid_g")),
    ("identity_claim_appid_g", _text("identity.claim.appid", "identity_claim_appid_g")),
    ("requestUri_s", _text("properties.requestUri", "requestUri_s")),
    ("id_s", _text("properties.id", "id_s")),
    ("clientInfo_s", _text("properties.clientInfo", "clientInfo_s")),
    ("httpStatusCode_d", _number(_text("properties.httpStatusCode", "httpStatusCode_d"))),
    ("action_name_s", _text("properties.action_name", "action_name_s")),
    ("server_principal_name_s", _text("properties.server_principal_name",
                                      "server_principal_name_s")),
    ("client_ip_s", _text("properties.client_ip", "client_ip_s")),
    ("database_name_s", _text("properties.database_name", "database_name_s")),
    ("statement_s", _text("properties.statement", "statement_s")),
    ("succeeded_s", _text("properties.succeeded", "succeeded_s")),
)

_STORAGE = (
    ("AccountName", _prop("AccountName")),
    ("Location", _text("location", "Location")),
    ("Protocol", _text("protocol", "Protocol")),
    ("AuthenticationType", _text("identity.type", "AuthenticationType")),
    ("StatusCode", _text("statusCode", "StatusCode")),
    ("StatusText", _text("statusText", "StatusText")),
    ("DurationMs", _number(_text("durationMs", "DurationMs"))),
    ("Uri", _text("uri", "Uri")),
    ("RequesterUpn", _text("identity.requester.upn", "RequesterUpn")),
    ("RequesterObjectId", _text("identity.requester.objectId", "RequesterObjectId")),
    ("RequesterAppId", _text("identity.requester.appId", "RequesterAppId")),
    ("RequesterTenantId", _text("identity.requester.tenantId", "RequesterTenantId")),
    ("UserAgentHeader", _prop("UserAgentHeader")),
    ("ObjectKey", _prop("ObjectKey")),
)

# AKS diagnostic records carry the Kubernetes audit event as JSON text in properties.log.
_K8S = "TRY_CAST(_Event->>'$.properties.log' AS JSON)"


def _k8s(key: str, column: str, *, as_json: bool = False) -> str:
    arrow = "->" if as_json else "->>"
    return f"coalesce({_K8S}{arrow}'$.{key}', _Event{arrow}'$.{column}')"


_AKS = (
    ("Verb", _k8s("verb", "Verb")),
    ("RequestUri", _k8s("requestURI", "RequestUri")),
    ("User", _k8s("user", "User", as_json=True)),
    ("SourceIps", _k8s("sourceIPs", "SourceIps", as_json=True)),
    ("UserAgent", _k8s("userAgent", "UserAgent")),
    ("ObjectRef", _k8s("objectRef", "ObjectRef", as_json=True)),
    ("ResponseStatus", _k8s("responseStatus", "ResponseStatus", as_json=True)),
    ("RequestObject", _k8s("requestObject", "RequestObject", as_json=True)),
    ("Annotations", _k8s("annotations", "Annotations", as_json=True)),
    ("AuditId", _k8s("auditID", "AuditId")),
    ("Stage", _k8s("stage", "Stage")),
    ("Level", f"coalesce({_K8S}->>'$.level', _Event->>'$.Level', Level)"),
    ("PodName", _text("properties.pod", "PodName")),
    ("ContainerId", _text("properties.containerID", "ContainerId")),
)


def _tables() -> tuple[str, ...]:
    """Every table NormalizedEvent.table can name, from the ingest field maps."""
    names: list[str] = [cat.FALLBACK_TABLE, *cat.FIELD_MAPS, *ANALYTICS_MAPS]
    for rule in [*cat.CATEGORY_TABLES.values(), *(r for _, r in cat.RESOURCE_TABLES)]:
        if isinstance(rule, cat.ByResource):
            names.extend([rule.default, *(table for _, table in rule.markers)])
        else:
            names.append(rule)
    return tuple(sorted(set(names)))


TABLES: tuple[str, ...] = _tables()
"""The per-table views, one per value of NormalizedEvent.table (plus ALL_EVENTS)."""


def _own_columns(table: str) -> tuple[tuple[str, str], ...]:
    if table == "AzureActivity":
        return _ACTIVITY
    if table == "SigninLogs" or (table.startswith("AAD") and table.endswith("SignInLogs")):
        return _SIGN_IN
    if table in ("AuditLogs", "AADProvisioningLogs"):
        return _ENTRA_AUDIT
    if table == "MicrosoftGraphActivityLogs":
        return _GRAPH
    if table.startswith("AADRisky") or table.endswith("RiskEvents"):
        return _RISK
    if table == "AzureDiagnostics":
        return _DIAGNOSTICS
    if table.startswith("Storage") and table.endswith("Logs"):
        return _STORAGE
    if table.startswith("AKSAudit"):
        return _AKS
    return ()


def view_columns(table: str) -> tuple[tuple[str, str], ...]:
    """(column, SQL expression over ``_events``) of a view, in display order.

    TimeGenerated first, then the table's own columns, then the common ones not replaced.
    """
    own = _own_columns(table) if table != ALL_EVENTS else ()
    names = {name for name, _ in own}
    head = [COMMON_COLUMNS[0]]
    rest = [column for column in COMMON_COLUMNS[1:] if column[0] not in names]
    return (*head, *own, *rest)


TABLE_COLUMNS: dict[str, tuple[str, ...]] = {
    table: tuple(name for name, _ in view_columns(table)) for table in (ALL_EVENTS, *TABLES)
}
"""View -> column names: the schema duckdb-kql needs for ``join`` and ``union``."""


def kql_schema() -> dict[str, list[str]]:
    """The views' columns in the shape ``duckdb_kql.to_sql(schema=...)`` takes."""
    return {table: list(columns) for table, columns in TABLE_COLUMNS.items()}


def _select(columns: Iterable[tuple[str, str]]) -> str:
    return ",\n  ".join(
        expr if expr == name else f'{expr} AS "{name}"' for name, expr in columns
    )


def view_statements() -> list[str]:
    """CREATE TEMP VIEW statements for every view (run on each query connection)."""
    statements = [
        f'CREATE OR REPLACE TEMP VIEW "{ALL_EVENTS}" AS SELECT\n  '
        f"{_select(view_columns(ALL_EVENTS))}\nFROM {EVENTS_TABLE}"
    ]
    statements.extend(
        f'CREATE OR REPLACE TEMP VIEW "{table}" AS SELECT\n  {_select(view_columns(table))}\n'
        f"FROM {EVENTS_TABLE} WHERE Type = '{table}'"
        for table in TABLES
    )
    return statements


def create_statements() -> list[str]:
    """CREATE TABLE statements of a new index file: the events and the feed position."""
    # The sealed event is most of the bytes: zstd makes the file ~4x smaller than DuckDB's
    # automatic choice and is faster to write (a storage choice, invisible to queries).
    columns = ", ".join(f'"{name}" {kind}' + (" USING COMPRESSION zstd" if kind == "JSON" else "")
                        for name, kind in PHYSICAL_COLUMNS)
    return [
        f"CREATE TABLE {EVENTS_TABLE} ({columns})",
        f"CREATE TABLE {STATE_TABLE} (format INTEGER NOT NULL, origin VARCHAR NOT NULL, "
        "size BIGINT NOT NULL, root_hash VARCHAR)",
    ]
