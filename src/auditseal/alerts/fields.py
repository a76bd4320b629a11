"""Field names of Sigma rules, resolved against the Azure audit records we seal.

Concept: the *field mapping* of the alert engine (issue 4, "against the field names those
rules use on Azure logs"; docs/azure.md sections 3.4-3.5 and 5.2). SigmaHQ's Azure rules name
fields three ways, often in one rule: as the diagnostic-export JSON has them
(``operationName``, ``properties.message``), as Log Analytics columns (``ResultType``,
``OperationNameValue``, ``AuthenticationRequirement``, ``TargetResources``) and in spellings
of their own (``Status``, ``Initiatedby``). A field resolves, in order:

1. through :data:`ALIASES`, for Log Analytics columns whose value lives elsewhere in the
   export (``CategoryValue`` -> ``category`` or REST ``category.value``; ``Status`` -> the
   sign-in result, its failure reason and the audit ``result``);
2. as a dotted path from the record's root, then from ``properties`` (Log Analytics
   flattens the ``properties`` of a record into columns, so ``DeviceDetail.deviceId`` is
   ``properties.deviceDetail.deviceId``).

Keys match case-insensitively (``ResultType`` is ``resultType``; Azure itself mixes
``Level``/``level``). Lists on the way fan out (any element may match, as Sigma backends
treat multi-valued fields); strings on the way that hold JSON are decoded
(``properties.requestbody``, AKS ``properties.log``). Objects and lists at the end are also
offered as compact JSON text, so ``TargetResources|contains: Admin`` and
``NetworkLocationDetails: '[]'`` work as they do on Log Analytics' dynamic columns.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

from auditseal.ingest.azure_times import parse_azure_time

__all__ = [
    "ALIASES",
    "EventView",
    "FieldRef",
    "as_text",
    "compile_field",
    "event_service",
    "event_time",
    "is_known_field",
]

Path = tuple[str, ...]

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


def is_known_field(name: str) -> bool:
    """Whether ``name`` resolves to a field of some Azure record shape we know of.

    Used for the load report: a rule on an unknown field still loads, but it is reported,
    because it can only match if the records carry that field under exactly that name.
    """
    lowered = name.lower()
    if lowered in ALIASES:
        return True
    head = lowered.split(".", 1)[0]
    return head in _ROOTS or head in _PROPERTY_ROOTS


@dataclass(frozen=True)
class FieldRef:
    """A Sigma field name compiled to the paths it may be found at (lower-cased)."""

    name: str
    candidates: tuple[Path, ...]
    merge: bool
    """True: values of every candidate count; False: the first candidate found wins."""
    key: str = ""
    """The memo key: field names are case-insensitive."""


def compile_field(name: str) -> FieldRef:
    """Compile a Sigma field name (dotted, any case) to its candidate paths."""
    alias = ALIASES.get(name.lower())
    if alias is not None:
        merge, candidates = alias[0], alias[1]
    else:
        path = _p(name)
        merge = False
        candidates = (path,) if path[0].lower() == "properties" else (path, ("properties", *path))
    return FieldRef(name, tuple(candidates), merge, name.lower())


_Folded = tuple[dict[str, str], tuple[str, ...]]
"""A JSON object's keys: lower-cased -> as spelled, and the lower-cased ones holding dots."""
_SHAPES: dict[tuple[str, ...], _Folded] = {}
_MAX_SHAPES = 4096


class EventView:
    """One decoded record, with field values memoized for every rule that asks."""

    __slots__ = ("_decoded", "_folded", "_lowered", "_memo", "_raw", "_text", "event", "service")

    def __init__(self, event: Mapping[str, object], raw: bytes | None = None) -> None:
        """Wrap ``event`` (a decoded JSON object); ``raw`` is its bytes, when at hand."""
        self.event = event
        self._raw = raw
        self.service = event_service(event)
        self._memo: dict[str, tuple[object, ...]] = {}
        self._lowered: dict[str, tuple[str | None, ...]] = {}
        self._folded: dict[int, _Folded] = {}
        self._decoded: dict[int, object] = {}  # JSON held in strings, decoded once
        self._text: str | None = None

    def values(self, ref: FieldRef) -> tuple[object, ...]:
        """The values of ``ref`` in this record; empty when the field is absent."""
        found = self._memo.get(ref.key)
        if found is not None:
            return found
        out: list[object] = []
        for path in ref.candidates:
            if path[0].startswith("@"):
                derived = _derive(path[0], self)
                if derived is not None:
                    out.append(derived)
            else:
                self._walk(self.event, path, 0, out)
            if out and not ref.merge:
                break
        found = self._memo[ref.key] = tuple(out)
        return found

    def lowered(self, ref: FieldRef) -> tuple[str | None, ...]:
        """The values of ``ref`` as lower-case text (None for JSON null), for matching."""
        found = self._lowered.get(ref.key)
        if found is None:
            found = self._lowered[ref.key] = tuple(
                None if v is None else as_text(v).lower() for v in self.values(ref)
            )
        return found

    def text(self) -> str:
        """The whole record as lower-case JSON text, for Sigma keyword searches."""
        if self._text is None:
            raw = self._raw if self._raw is not None else orjson.dumps(self.event)
            self._text = raw.decode("utf-8", "replace").lower()
        return self._text

    def _walk(self, node: object, path: Path, depth: int, out: list[object]) -> None:
        while depth < len(path) and type(node) is dict:  # fast path: nested objects
            value = node.get(path[depth], _ABSENT)  # the spelling asked for, usually right
            if value is _ABSENT:
                spelled = self._fold(node)[0].get(path[depth].lower())
                if spelled is None:
                    break
                value = node[spelled]
            node, depth = value, depth + 1
        if depth == len(path):
            _emit(node, out)
            return
        if isinstance(node, dict):
            dotted = self._fold(node)[1]
            if dotted and depth + 1 < len(path):
                # Keys holding dots (claim URIs) span several segments of a dotted name.
                rest = ".".join(path[depth:]).lower()
                for key in dotted:
                    if rest == key or rest.startswith(key + "."):
                        self._walk(node[self._fold(node)[0][key]], path,
                                   depth + key.count(".") + 1, out)
                        return
        elif isinstance(node, list):
            for item in node:
                self._walk(item, path, depth, out)
        elif isinstance(node, str) and node.lstrip()[:1] in ("{", "["):
            # The decoded value stays referenced by the view, so the ids that key the
            # folded-key cache are never reused within this record.
            decoded = self._decoded.get(id(node), _ABSENT)
            if decoded is _ABSENT:
                try:
                    decoded = orjson.loads(node)
                except orjson.JSONDecodeError:
                    decoded = None
                self._decoded[id(node)] = decoded
            if decoded is not None:
                self._walk(decoded, path, depth, out)

    def _fold(self, node: dict[str, object]) -> _Folded:
        """The object's keys by lower-cased spelling, shared by every object of its shape."""
        folded = self._folded.get(id(node))
        if folded is None:
            shape = tuple(node)
            folded = _SHAPES.get(shape)
            if folded is None:
                if len(_SHAPES) >= _MAX_SHAPES:
                    _SHAPES.clear()  # why: bounded memory on streams of ever-new shapes
                keys = {key.lower(): key for key in shape}
                folded = _SHAPES[shape] = (keys, tuple(k for k in keys if "." in k))
            self._folded[id(node)] = folded
        return folded

    def first(self, path: Path) -> object:
        """The first value at a lower-cased path, or None."""
        out: list[object] = []
        self._walk(self.event, path, 0, out)
        return out[0] if out else None

    def time(self) -> datetime | None:
        """When the record says it happened, in UTC; None when it carries no readable time."""
        for path in _TIME_PATHS:
            found = self.first(path)
            if isinstance(found, str) and found.endswith("Z") and "T" in found:
                try:  # the common spelling, far cheaper than the general reader
                    return datetime.fromisoformat(found).astimezone(UTC)
                except ValueError:
                    pass
            parsed = parse_azure_time(found)
            if parsed is not None:
                return parsed
        return None


def as_text(value: object) -> str:
    """A field value as Sigma compares it: JSON spelling for booleans, decimal numbers."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


_ABSENT = object()


def _emit(node: object, out: list[object]) -> None:
    if isinstance(node, list):
        out.extend(orjson.dumps(item).decode() if isinstance(item, dict | list) else item
                   for item in node)
        out.append(orjson.dumps(node).decode())
    elif isinstance(node, dict):
        value = node.get("value")
        if isinstance(value, str):  # REST shape: {"value": ..., "localizedValue": ...}
            out.append(value)
        out.append(orjson.dumps(node).decode())
    else:
        out.append(node)


def _derive(name: str, view: EventView) -> str | None:
    """Values Log Analytics computes at ingestion that the export does not hold."""
    if name == "@provider":  # "MICROSOFT.STORAGE/STORAGEACCOUNTS/..." -> "MICROSOFT.STORAGE"
        operation = view.first(("operationName",))
        if isinstance(operation, Mapping):
            operation = operation.get("value")
        return operation.split("/", 1)[0] if isinstance(operation, str) else None
    if name == "@result":  # Entra writes the AADSTS code: "0" is success
        found = view.first(("resultType",))
        if found is None:
            found = view.first(("properties", "status", "errorCode"))
        if found is None:
            return None
        code = as_text(found).strip()
        if code.isdigit():
            return "Success" if code == "0" else "Failure"
        return {"succeeded": "Success", "failed": "Failure"}.get(code.lower(), code)
    return None


# --- which log a record comes from -------------------------------------------------------------

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
    if isinstance(table, str):
        service = _SERVICE_BY_TABLE.get(table.lower())
        if service is not None:
            return service
        if table == "AzureDiagnostics" and str(event.get("ResourceProvider")).upper() == (
            "MICROSOFT.KEYVAULT"
        ):
            return "keyvault"
    category = event.get("category", event.get("Category", event.get("CategoryValue")))
    if isinstance(category, Mapping):
        category = category.get("value")
    if not isinstance(category, str):
        return "activitylogs" if "eventTimestamp" in event else None
    service = _SERVICE_BY_CATEGORY.get(category.lower())
    resource = event.get("resourceId")
    if isinstance(resource, str) and "/providers/microsoft.aadiam" in resource.lower():
        return service if service in ("signinlogs", "riskdetection") else "auditlogs"
    return service


_TIME_PATHS: tuple[Path, ...] = (
    ("time",), ("TimeGenerated",), ("eventTimestamp",), ("properties", "createdDateTime"),
    ("properties", "activityDateTime"),
)


def event_time(event: Mapping[str, object]) -> datetime | None:
    """When the record says it happened, in UTC; None when it carries no readable time."""
    return EventView(event).time()
