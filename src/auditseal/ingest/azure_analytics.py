"""Field maps of Log Analytics rows: where each normalized field lives in a table's columns.

Concept: the *Log Analytics field map*, the counterpart for query results and data-export
rows of the diagnostic-settings maps in :mod:`auditseal.ingest.azure_categories` (docs/azure.md
sections 3.4-3.5). A Log Analytics row is flat and its columns are named differently
(``TimeGenerated``, ``OperationNameValue``, ``_ResourceId``, ``identity_claim_upn_s``), so
each table gets its own map, built from :data:`ANALYTICS_DEFAULT`.

Sources for the column names: the pages listed in :mod:`auditseal.ingest.azure_categories`
(the Activity Log schema page also gives its Log Analytics columns) and the Log Analytics
rows in the shared corpus.
"""

from __future__ import annotations

from dataclasses import replace

from auditseal.ingest.azure_categories import FieldMap

__all__ = ["ANALYTICS_DEFAULT", "ANALYTICS_MAPS"]

# Log Analytics rows: ``TenantId`` there is the *workspace* id, never the Entra tenant, so
# the LA maps read the tenant only from AADTenantId.
ANALYTICS_DEFAULT = FieldMap(
    time=(("TimeGenerated",),),
    category=(("Category",),),
    operation=(("OperationName",),),
    caller=(("Identity",),),
    caller_ip=(("CallerIpAddress",), ("IPAddress",)),
    result=((("ResultType",), "status"), (("Result",), "status")),
    resource_id=(("_ResourceId",), ("ResourceId",)),
    subscription_id=(("_SubscriptionId",), ("SubscriptionId",)),
    tenant_id=(("AADTenantId",),),
    correlation_id=(("CorrelationId",),),
    level=(("Level",), ("SeverityLevel",)),
)

_LA_SIGN_IN = replace(
    ANALYTICS_DEFAULT,
    caller=(("UserPrincipalName",), ("AppId",), ("ServicePrincipalId",), ("Identity",)),
    result=((("ResultType",), "code"),),
)

ANALYTICS_MAPS: dict[str, FieldMap] = {
    "AzureActivity": replace(
        ANALYTICS_DEFAULT,
        category=(("CategoryValue",), ("Category",)),
        operation=(("OperationNameValue",), ("OperationName",)),
        caller=(("Caller",),),
        result=((("ActivityStatusValue",), "status"), (("ActivityStatus",), "status")),
    ),
    "SigninLogs": _LA_SIGN_IN,
    "AADNonInteractiveUserSignInLogs": _LA_SIGN_IN,
    "AADServicePrincipalSignInLogs": _LA_SIGN_IN,
    "AADManagedIdentitySignInLogs": _LA_SIGN_IN,
    "AuditLogs": replace(
        ANALYTICS_DEFAULT,
        caller=(
            ("InitiatedBy", "user", "userPrincipalName"),
            ("InitiatedBy", "app", "appId"),
            ("InitiatedBy", "app", "servicePrincipalId"),
            ("Identity",),
        ),
        caller_ip=(("InitiatedBy", "user", "ipAddress"),),
        result=((("Result",), "status"),),
    ),
    "MicrosoftGraphActivityLogs": replace(
        ANALYTICS_DEFAULT,
        operation=("@http_request",),
        caller=(("UserId",), ("AppId",)),
        result=((("ResponseStatusCode",), "http"),),
    ),
    "AzureDiagnostics": replace(
        ANALYTICS_DEFAULT,
        operation=(("action_name_s",), ("OperationName",)),
        caller=(
            ("identity_claim_upn_s",),
            ("identity_claim_http_schemas_xmlsoap_org_ws_2005_05_identity_claims_upn_s",),
            ("identity_claim_oid_g",),
            ("identity_claim_appid_g",),
            ("server_principal_name_s",),
        ),
        caller_ip=(("CallerIPAddress",), ("client_ip_s",)),
        result=((("ResultType",), "status"), (("succeeded_s",), "bool")),
    ),
    "StorageBlobLogs": replace(
        ANALYTICS_DEFAULT,
        caller=(("RequesterUpn",), ("RequesterObjectId",), ("RequesterAppId",)),
        result=((("StatusCode",), "http"), (("StatusText",), "status")),
    ),
    **dict.fromkeys(
        ("AKSAudit", "AKSAuditAdmin"),
        replace(
            ANALYTICS_DEFAULT,
            operation=("@k8s_operation",),
            caller=(("User", "username"),),
            caller_ip=(("SourceIps", 0),),
            result=((("ResponseStatus", "code"), "http"),),
        ),
    ),
    "Syslog": replace(ANALYTICS_DEFAULT, operation=(("ProcessName",),), caller=()),
}
"""Table -> field map for Log Analytics rows (query results and data-export records)."""
