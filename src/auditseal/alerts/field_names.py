"""Which Sigma field names resolve to a field of the Azure records we know of, and where.

Concept: the *field-name report* of rule loading (issue 4, "Report which corpus rules load
and which do not, and why"): a rule naming a field no known record shape carries still
loads, but the report says so, because it can only match records that carry exactly that
name. Also the *alias table*: the Log Analytics column names whose value lives elsewhere in
the diagnostic export. Kept apart from :mod:`auditseal.alerts.fields`, which resolves names
per record.
"""

from __future__ import annotations

__all__ = ["ALIASES", "has_known_root"]

Path = tuple[str, ...]

_ROOTS = frozenset((
    "time", "timegenerated", "resourceid", "operationname", "operationversion", "category",
    "resulttype", "resultsignature", "resultdescription", "durationms", "calleripaddress",
    "correlationid", "identity", "level", "location", "properties", "tenantid", "caller",
    "claims", "authorization", "eventtimestamp", "httprequest", "status", "substatus",
    "resourcegroupname", "resourceprovidername", "resourcetype", "subscriptionid",
    "eventdataid", "eventname", "operationid",
))
_PROPERTY_ROOTS = frozenset((
    "message", "requestbody", "responsebody", "statuscode", "entity", "eventcategory",
    "hierarchy", "userprincipalname", "userdisplayname", "userid", "appid", "appdisplayname",
    "ipaddress", "clientappused", "useragent", "devicedetail", "location",
    "authenticationrequirement", "conditionalaccessstatus", "appliedconditionalaccesspolicies",
    "networklocationdetails", "riskdetail", "risklevelaggregated", "risklevelduringsignin",
    "riskstate", "riskeventtypes", "riskeventtypes_v2", "resourcedisplayname", "isinteractive",
    "authenticationdetails", "mfadetail", "usertype", "crosstenantaccesstype", "id",
    "activitydisplayname", "activitydatetime", "loggedbyservice", "operationtype",
    "initiatedby", "targetresources", "additionaldetails", "result", "resultreason",
    "riskeventtype", "detectiontimingtype", "log", "pod", "stream", "objectref", "verb",
    "requesturi", "clientinfo", "httpstatuscode",
))


def has_known_root(name: str) -> bool:
    """Whether ``name`` starts with a key of some Azure record shape we know of (its first
    segment at the record's root or in its ``properties``), in any case."""
    head = name.lower().split(".", 1)[0]
    return head in _ROOTS or head in _PROPERTY_ROOTS


_UPN = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn"
_NAME = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name"
_OID = "http://schemas.microsoft.com/identity/claims/objectidentifier"


def _p(dotted: str) -> Path:
    return tuple(dotted.split("."))


_CALLER: tuple[Path, ...] = (  # the most common shapes first: each miss costs a lookup
    ("identity", "claims", _UPN), ("caller",), ("claims", _UPN), ("identity", "claims", "upn"),
    ("identity", "claim", "upn"), _p("properties.userPrincipalName"),
    _p("properties.servicePrincipalName"), _p("properties.servicePrincipalId"),
    _p("properties.initiatedBy.user.userPrincipalName"), _p("properties.log.user.username"),
    ("identity", "claims", _OID), ("identity", "claim", "oid"), ("identity", "claims", "appid"),
    ("identity", "claim", "appid"), _p("properties.initiatedBy.app.appId"),
    ("identity", "claims", _NAME), ("identity",),
)

ALIASES: dict[str, tuple[bool, tuple[Path, ...]]] = {
    # name (lower case): (merge every candidate's values?, candidate paths)
    "caller": (False, _CALLER),
    "callerobjectid": (False, (("identity", "claim", "oid"), ("identity", "claims", _OID),
                               _p("properties.initiatedBy.user.id"), _p("properties.userId"))),
    "calleripaddress": (False, (("callerIpAddress",), _p("properties.ipAddress"),
                                _p("properties.initiatedBy.user.ipAddress"),
                                _p("httpRequest.clientIpAddress"))),
    "ipaddress": (False, (_p("properties.ipAddress"), ("callerIpAddress",))),
    "userprincipalname": (False, (_p("properties.userPrincipalName"),
                                  _p("properties.initiatedBy.user.userPrincipalName"))),
    "username": (False, (_p("properties.userPrincipalName"),)),
    "location": (False, (_p("properties.location.countryOrRegion"), ("location",))),
    # REST {"value": ...} objects yield their value, so one path serves both shapes.
    "operationnamevalue": (False, (("operationName",),)),
    "categoryvalue": (False, (("category",),)),
    "activitystatusvalue": (False, (("resultType",), ("status",))),
    "activitysubstatusvalue": (False, (("resultSignature",), ("subStatus",))),
    "resourceprovidervalue": (False, (_p("resourceProviderName.value"), ("@provider",))),
    "resourceid": (False, (("resourceId",), ("_ResourceId",))),
    # Entra audit: the LA "Category" column is the audit category, not the log category.
    "category": (False, (_p("properties.category"), ("category",))),
    "status": (True, (("@result",), _p("properties.status.failureReason"),
                      _p("properties.status.additionalDetails"), _p("properties.result"))),
    "resultdescription": (False, (("resultDescription",), _p("properties.status.failureReason"),
                                  _p("properties.resultReason"))),
    "clientapp": (False, (_p("properties.clientAppUsed"),)),
    "initiatedby": (False, (_p("properties.initiatedBy"),)),
    "target": (False, (_p("properties.targetResources"),)),
    "activitytype": (False, (_p("properties.activityDisplayName"), ("operationName",))),
    "activitydetails": (False, (_p("properties.activityDisplayName"), ("operationName",))),
    "properties.message": (False, (_p("properties.message"), _p("properties.activityDisplayName"),
                                   ("operationName",))),
}
"""Log Analytics column names (and SigmaHQ spellings) whose value lives elsewhere in the
diagnostic export. ``@result`` and ``@provider`` are derived (see ``_derive``)."""
