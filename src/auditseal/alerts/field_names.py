"""Which Sigma field names resolve to a field of the Azure records we know of.

Concept: the *field-name report* of rule loading (issue 4, "Report which corpus rules load
and which do not, and why"): a rule naming a field no known record shape carries still
loads, but the report says so, because it can only match records that carry exactly that
name. Kept apart from :mod:`auditseal.alerts.fields`, which resolves names per record.
"""

from __future__ import annotations

__all__ = ["has_known_root"]

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
