"""Per-category knowledge of Azure audit records, as data: which table, which fields.

Concept: the *field map* of an Azure log table. For each Log Analytics table that an Azure
audit record belongs in, it lists where each normalized field may be found, best candidate
first. :mod:`auditseal.ingest.normalize` walks these lists; adding a category means adding
rows here, not code there. This module holds the maps for diagnostic-settings records and
the Activity Log REST shape; the maps for Log Analytics rows, whose columns are named
differently, are in :mod:`auditseal.ingest.azure_analytics`.

Sources for the table names and field positions (docs/azure.md sections 3.4-3.5, 5.2):

* resource-log top-level schema:
  https://learn.microsoft.com/en-us/azure/azure-monitor/essentials/resource-logs-schema
* Activity Log REST / storage / Log Analytics shapes:
  https://learn.microsoft.com/en-us/azure/azure-monitor/essentials/activity-log-schema
* Entra sign-in and audit schemas:
  https://learn.microsoft.com/en-us/entra/identity/monitoring-health/concept-activity-log-schemas
* Key Vault logging, Storage ``StorageBlobLogs``, AKS ``kube-audit``, SQL audit-log format
  pages of learn.microsoft.com, and the real records in the shared corpus.

A path is a tuple of keys (matched case-insensitively, so ``Level``/``level`` and
``CallerIPAddress``/``callerIpAddress`` are one path) and list indexes. Strings met on the way
that hold JSON are decoded (AKS ``properties.log``). A candidate that starts with ``@`` names
a derivation that combines several fields (``@k8s_operation``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Literal

__all__ = [
    "ACTIVITY_CATEGORIES",
    "CATEGORY_TABLES",
    "DERIVATIONS",
    "DIAGNOSTIC_DEFAULT",
    "FALLBACK_TABLE",
    "FIELD_MAPS",
    "LEVEL_NAMES",
    "RESOURCE_TABLES",
    "RESULT_SPELLINGS",
    "ByResource",
    "FieldMap",
    "Lookup",
    "Path",
    "ResultKind",
]

Path = tuple[str | int, ...]
Lookup = Callable[[Path], "str | None"]
"""Text at a path of the record being normalized (case-insensitive, JSON strings decoded)."""
ResultKind = Literal["status", "code", "http", "bool"]
"""How to read a result value: ``status`` text (Succeeded, Failed, Start...), an Entra
``code`` (0 is success, anything else an AADSTS error), an ``http`` status, or a ``bool``."""

FALLBACK_TABLE = "AzureEvent"

LEVEL_NAMES = {
    **dict.fromkeys(["1", "critical", "crit", "fatal", "alert", "emerg", "emergency"], "Critical"),
    **dict.fromkeys(["2", "error", "err"], "Error"),
    **dict.fromkeys(["3", "warning", "warn"], "Warning"),
    **dict.fromkeys(["4", "informational", "information", "info", "notice"], "Informational"),
    **dict.fromkeys(["5", "verbose", "debug", "trace"], "Verbose"),
}
"""Lower-cased level -> name. Azure writes names or ETW EventLevel numbers (1 Critical ...
4 Informational, 5 Verbose; Entra exports carry ``"Level": 4``); Syslog shares the names."""

RESULT_SPELLINGS = {
    **dict.fromkeys(["success", "succeeded", "succeed", "ok"], "Success"),
    **dict.fromkeys(["failure", "failed", "fail"], "Failure"),
    **dict.fromkeys(["start", "started"], "Started"),
    **dict.fromkeys(["accept", "accepted"], "Accepted"),
    **dict.fromkeys(["cancel", "canceled", "cancelled"], "Canceled"),
}
"""Lower-cased result text -> canonical spelling; other texts are kept as found."""

# Claim URIs are keys full of dots and slashes, hence tuples rather than dotted strings.
UPN_CLAIM = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn"
NAME_CLAIM = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name"
OID_CLAIM = "http://schemas.microsoft.com/identity/claims/objectidentifier"
TID_CLAIM = "http://schemas.microsoft.com/identity/claims/tenantid"


@dataclass(frozen=True)
class FieldMap:
    """Where each normalized field lives in one table's records, best candidate first."""

    time: tuple[Path, ...] = (("time",), ("timeStamp",))
    category: tuple[Path, ...] = (("category",),)
    operation: tuple[Path | str, ...] = (("operationName",),)
    caller: tuple[Path, ...] = ()
    caller_ip: tuple[Path, ...] = (("callerIpAddress",),)
    result: tuple[tuple[Path, ResultKind], ...] = ((("resultType",), "status"),)
    resource_id: tuple[Path, ...] = (("resourceId",),)
    subscription_id: tuple[Path, ...] = (("subscriptionId",),)
    tenant_id: tuple[Path, ...] = (("tenantId",),)
    correlation_id: tuple[Path, ...] = (("correlationId",),)
    level: tuple[Path, ...] = (("Level",),)


@dataclass(frozen=True)
class ByResource:
    """A category whose table depends on the resource type (Storage services, Logic Apps).

    Attributes:
        default: the table when no marker matches.
        markers: (lower-case substring of the resource id, table) pairs, first match wins.
    """

    default: str
    markers: tuple[tuple[str, str], ...]


DIAGNOSTIC_DEFAULT = FieldMap()
"""The resource-log top-level schema: what any diagnostic-settings record offers."""

_STORAGE = ByResource(
    "StorageBlobLogs",
    (
        ("/blobservices/", "StorageBlobLogs"),
        ("/fileservices/", "StorageFileLogs"),
        ("/queueservices/", "StorageQueueLogs"),
        ("/tableservices/", "StorageTableLogs"),
    ),
)

# Activity Log categories; the storage/Event Hubs schema of 2018 filed events under the verb
# (Write, Delete, Action) instead.
ACTIVITY_CATEGORIES = (
    "administrative",
    "security",
    "servicehealth",
    "resourcehealth",
    "alert",
    "autoscale",
    "recommendation",
    "policy",
    "write",
    "delete",
    "action",
)

CATEGORY_TABLES: dict[str, str | ByResource] = {
    **dict.fromkeys(ACTIVITY_CATEGORIES, "AzureActivity"),
    # "Policy" is also an Entra audit sub-category; tenant-scoped records are Entra's.
    "policy": ByResource("AzureActivity", (("/providers/microsoft.aadiam", "AuditLogs"),)),
    "signinlogs": "SigninLogs",
    "noninteractiveusersigninlogs": "AADNonInteractiveUserSignInLogs",
    "serviceprincipalsigninlogs": "AADServicePrincipalSignInLogs",
    # (inferred) Microsoft's own first-party service principals sign in like other ones.
    "microsoftserviceprincipalsigninlogs": "AADServicePrincipalSignInLogs",
    "managedidentitysigninlogs": "AADManagedIdentitySignInLogs",
    "auditlogs": "AuditLogs",
    "provisioninglogs": "AADProvisioningLogs",
    "microsoftgraphactivitylogs": "MicrosoftGraphActivityLogs",
    "riskyusers": "AADRiskyUsers",
    "userriskevents": "AADUserRiskEvents",
    "riskyserviceprincipals": "AADRiskyServicePrincipals",
    "serviceprincipalriskevents": "AADServicePrincipalRiskEvents",
    **dict.fromkeys(
        # Key Vault, SQL audit, NSG: the legacy catch-all table (docs/azure.md 3.5).
        [
            "auditevent",
            "sqlsecurityauditevents",
            "networksecuritygroupevent",
            "networksecuritygroupflowevent",
            "networksecuritygrouprulecounter",
        ],
        "AzureDiagnostics",
    ),
    "workflowruntime": ByResource(
        "AzureDiagnostics", (("/microsoft.web/sites/", "LogicAppWorkflowRuntime"),)
    ),
    "storageread": _STORAGE,
    "storagewrite": _STORAGE,
    "storagedelete": _STORAGE,
    "kube-audit": "AKSAudit",
    "kube-audit-admin": "AKSAuditAdmin",
    "functionapplogs": "FunctionAppLogs",
}
"""Lower-cased ``category`` -> table."""

RESOURCE_TABLES: tuple[tuple[str, str | ByResource], ...] = (
    ("/providers/microsoft.storage/storageaccounts/", _STORAGE),
    # Tenant-scoped records whose category is an Entra audit sub-category
    # (DirectoryManagement, ApplicationManagement, ...) rather than "AuditLogs".
    ("/providers/microsoft.aadiam", "AuditLogs"),
)
"""Lower-case resource-id substring -> table, for records whose category is missing or
unknown (Storage logs forwarded without ``category``)."""

_ACTIVITY = FieldMap(
    time=(("time",), ("eventTimestamp",), ("submissionTimestamp",)),
    caller=(
        ("caller",),
        ("identity", "claims", UPN_CLAIM),
        ("identity", "claims", NAME_CLAIM),
        ("claims", UPN_CLAIM),
        ("claims", NAME_CLAIM),
        ("identity", "claims", "upn"),
        ("identity", "claims", OID_CLAIM),
        ("claims", OID_CLAIM),
        ("identity", "claims", "oid"),
        ("identity", "claims", "appid"),
        ("claims", "appid"),
        ("identity", "authorization", "evidence", "principalId"),
        # The short JWT "name" claim is usually a display name: only when nothing better.
        ("identity", "claims", "name"),
    ),
    caller_ip=(
        ("callerIpAddress",),
        ("httpRequest", "clientIpAddress"),
        ("identity", "claims", "ipaddr"),
        ("claims", "ipaddr"),
    ),
    # REST: status is {"value": "Succeeded", "localizedValue": ...}; normalize unwraps it.
    result=((("resultType",), "status"), (("status",), "status")),
    tenant_id=(("tenantId",), ("identity", "claims", TID_CLAIM), ("claims", TID_CLAIM)),
    level=(("Level",),),
)

_SIGN_IN = replace(
    DIAGNOSTIC_DEFAULT,
    caller=(
        ("properties", "userPrincipalName"),
        ("properties", "appId"),
        ("properties", "servicePrincipalId"),
        ("identity",),
    ),
    caller_ip=(("callerIpAddress",), ("properties", "ipAddress")),
    result=(
        (("resultType",), "code"),
        (("properties", "status", "errorCode"), "code"),
    ),
    correlation_id=(("correlationId",), ("properties", "correlationId")),
)

_ENTRA_AUDIT = replace(
    DIAGNOSTIC_DEFAULT,
    caller=(
        ("properties", "initiatedBy", "user", "userPrincipalName"),
        ("properties", "initiatedBy", "app", "appId"),
        ("properties", "initiatedBy", "app", "servicePrincipalId"),
        ("properties", "initiatedBy", "user", "id"),
        ("identity",),
    ),
    caller_ip=(("callerIpAddress",), ("properties", "initiatedBy", "user", "ipAddress")),
    result=((("properties", "result"), "status"), (("resultType",), "status")),
)

_RISK = replace(
    DIAGNOSTIC_DEFAULT,
    caller=(("properties", "userPrincipalName"), ("properties", "userId"), ("identity",)),
    caller_ip=(("callerIpAddress",), ("properties", "ipAddress")),
)

FIELD_MAPS: dict[str, FieldMap] = {
    "AzureActivity": _ACTIVITY,
    "SigninLogs": _SIGN_IN,
    "AADNonInteractiveUserSignInLogs": _SIGN_IN,
    "AADServicePrincipalSignInLogs": _SIGN_IN,
    "AADManagedIdentitySignInLogs": _SIGN_IN,
    "AuditLogs": _ENTRA_AUDIT,
    "AADProvisioningLogs": _ENTRA_AUDIT,
    "MicrosoftGraphActivityLogs": replace(
        DIAGNOSTIC_DEFAULT,
        operation=("@http_request", ("operationName",)),
        caller=(("properties", "userId"), ("properties", "appId")),
        caller_ip=(("callerIpAddress",), ("properties", "ipAddress")),
        result=(
            (("properties", "responseStatusCode"), "http"),
            (("resultSignature",), "http"),
        ),
        tenant_id=(("tenantId",), ("properties", "tenantId")),
    ),
    "AADRiskyUsers": _RISK,
    "AADUserRiskEvents": _RISK,
    "AADRiskyServicePrincipals": _RISK,
    "AADServicePrincipalRiskEvents": _RISK,
    # Key Vault AuditEvent, SQL audit, NSG and Logic Apps share AzureDiagnostics; each
    # category's own fields are listed side by side (absent ones are simply skipped).
    "AzureDiagnostics": replace(
        DIAGNOSTIC_DEFAULT,
        time=(("time",), ("properties", "event_time")),
        operation=(("properties", "action_name"), ("operationName",)),
        caller=(
            ("identity", "claim", "upn"),
            ("identity", "claim", UPN_CLAIM),
            ("identity", "claim", "oid"),
            ("identity", "claim", OID_CLAIM),
            ("identity", "claim", "appid"),
            ("properties", "server_principal_name"),
        ),
        caller_ip=(("callerIpAddress",), ("properties", "client_ip")),
        result=(
            (("resultType",), "status"),
            (("properties", "succeeded"), "bool"),
            (("properties", "httpStatusCode"), "http"),
        ),
    ),
    **dict.fromkeys(
        ("StorageBlobLogs", "StorageFileLogs", "StorageQueueLogs", "StorageTableLogs"),
        replace(
            DIAGNOSTIC_DEFAULT,
            caller=(
                ("identity", "requester", "upn"),
                ("identity", "requester", "objectId"),
                ("identity", "requester", "appId"),
            ),
            result=(
                (("statusCode",), "http"),
                (("statusText",), "status"),
                (("properties", "metricResponseType"), "status"),
            ),
        ),
    ),
    **dict.fromkeys(
        ("AKSAudit", "AKSAuditAdmin"),
        replace(
            DIAGNOSTIC_DEFAULT,
            time=(("time",), ("properties", "log", "stageTimestamp")),
            operation=("@k8s_operation",),
            caller=(("properties", "log", "user", "username"),),
            caller_ip=(("properties", "log", "sourceIPs", 0),),
            result=((("properties", "log", "responseStatus", "code"), "http"),),
        ),
    ),
    "FunctionAppLogs": replace(DIAGNOSTIC_DEFAULT, level=(("level",), ("properties", "level"))),
}
"""Table -> field map for diagnostic-settings records (and the Activity Log REST shape)."""

# --- derived operations ----------------------------------------------------------------------


def _k8s_operation(get: Lookup) -> str | None:
    """``verb resource[/subresource] namespace/name`` (or ``verb requestURI``) of a Kubernetes
    audit event, from the JSON in ``properties.log`` or from the AKSAudit columns."""
    for base in (("properties", "log"), ()):
        if verb := get((*base, "verb")):
            break
    else:
        return None
    resource = get((*base, "objectRef", "resource"))
    if resource is None:
        uri = get((*base, "requestURI"))
        return f"{verb} {uri}" if uri else verb
    if subresource := get((*base, "objectRef", "subresource")):
        resource = f"{resource}/{subresource}"
    where = (get((*base, "objectRef", "namespace")), get((*base, "objectRef", "name")))
    target = "/".join(part for part in where if part)
    return f"{verb} {resource} {target}" if target else f"{verb} {resource}"


def _http_request(get: Lookup) -> str | None:
    """``METHOD uri`` of a Microsoft Graph activity record (diagnostic or LA shape)."""
    method = get(("properties", "requestMethod")) or get(("RequestMethod",))
    uri = get(("properties", "requestUri")) or get(("RequestUri",))
    return f"{method} {uri}" if method and uri else None


DERIVATIONS: dict[str, Callable[[Lookup], str | None]] = {
    "@k8s_operation": _k8s_operation,
    "@http_request": _http_request,
}
"""``@name`` candidates of :attr:`FieldMap.operation` -> function of the record's lookup."""
