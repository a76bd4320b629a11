"""Which Azure log a record comes from, as Sigma's ``logsource.service`` names it.

Concept: the *log classification* of the alert engine (issue 4: rules are written per log,
so a record is only evaluated against its log's rules). Read from the diagnostic export's
``category``, the REST ``category.value`` or the Log Analytics ``Type`` (docs/azure.md).
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["event_service"]

_SERVICE_BY_CATEGORY = {
    **dict.fromkeys(
        ["administrative", "security", "servicehealth", "resourcehealth", "alert", "autoscale",
         "recommendation", "policy", "write", "delete", "action"], "activitylogs"),
    **dict.fromkeys(
        ["signinlogs", "noninteractiveusersigninlogs", "serviceprincipalsigninlogs",
         "managedidentitysigninlogs", "microsoftserviceprincipalsigninlogs"], "signinlogs"),
    "auditlogs": "auditlogs",
    **dict.fromkeys(
        ["userriskevents", "riskyusers", "riskyserviceprincipals", "serviceprincipalriskevents"],
        "riskdetection"),
    "auditevent": "keyvault",
    "kube-audit": "kubernetes",
    "kube-audit-admin": "kubernetes",
}
_SERVICE_BY_TABLE = {
    "azureactivity": "activitylogs",
    "signinlogs": "signinlogs",
    "aadnoninteractiveusersigninlogs": "signinlogs",
    "aadserviceprincipalsigninlogs": "signinlogs",
    "aadmanagedidentitysigninlogs": "signinlogs",
    "auditlogs": "auditlogs",
    "aaduserriskevents": "riskdetection",
    "aadriskyusers": "riskdetection",
    "azkvauditlogs": "keyvault",
    "aksaudit": "kubernetes",
    "aksauditadmin": "kubernetes",
}


def event_service(event: Mapping[str, object]) -> str | None:
    """The Sigma ``logsource.service`` of a record ("activitylogs", "signinlogs", ...).

    Read from the category (diagnostic export), the REST ``category.value`` or the Log
    Analytics ``Type``; records on tenant resources with an Entra audit sub-category
    (``RoleManagement``...) are audit logs. None when the record is none of these.
    """
    table = event.get("Type")
    if table is not None and isinstance(table, str):
        service = _SERVICE_BY_TABLE.get(table.lower())
        if service is not None:
            return service
        if table == "AzureDiagnostics" and str(event.get("ResourceProvider")).upper() == (
            "MICROSOFT.KEYVAULT"
        ):
            return "keyvault"
    category = event.get("category", _MISSING)
    if category is _MISSING:
        category = event.get("Category", event.get("CategoryValue"))
    if type(category) is not str:  # checked first: the ABC check below costs
        if isinstance(category, Mapping):
            category = category.get("value")
        if not isinstance(category, str):
            return "activitylogs" if "eventTimestamp" in event else None
    service = _SERVICE_BY_CATEGORY.get(category.lower())
    if service in _TENANT_SERVICES:
        return service  # what the resource check below would return too: skip lower()
    resource = event.get("resourceId")
    if isinstance(resource, str) and "/providers/microsoft.aadiam" in resource.lower():
        return service if service in ("signinlogs", "riskdetection") else "auditlogs"
    return service


_MISSING = object()
_TENANT_SERVICES = frozenset(("signinlogs", "riskdetection", "auditlogs"))
"""Services a tenant (``microsoft.aadiam``) resource leaves as they are."""
