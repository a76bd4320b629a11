"""The rule book of ``AzureWormDouble``: per-blob policy calls and the ARM container API.

Split from ``azure_worm`` to keep each module readable; the behaviours and their azure.md
sources are listed in that module's docstring.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import TYPE_CHECKING, Any

import orjson

from tests.doubles.azure_worm import (
    MAX_EXTENSIONS,
    POLICY_DAYS,
    RESOURCE_GROUP,
    SUBSCRIPTION,
    ArmError,
    BlobWormState,
    ContainerPolicyState,
    ContainerWormState,
    Reply,
    _etag,
    _iso,
)

if TYPE_CHECKING:
    from tests.doubles.azure_worm import AzureWormDouble

_TAG = re.compile(r"^[A-Za-z0-9]{3,23}$")
_POLICY_TYPE = "Microsoft.Storage/storageAccounts/blobServices/containers/immutabilityPolicies"
_CONTAINER_TYPE = "Microsoft.Storage/storageAccounts/blobServices/containers"
_IDENTITY = {"objectIdentifier": "00000000-0000-0000-0000-0000000000aa",
             "tenantId": "00000000-0000-0000-0000-0000000000bb", "upn": "tester@double.invalid"}


# -- data plane: Set/Delete Blob Immutability Policy, Set Blob Legal Hold (azure.md 1.7) ------


def blob_policy_call(double: AzureWormDouble, method: str, comp: str, container: str, blob: str,
                     headers: dict[str, str]) -> Reply:
    """Answer the per-blob calls Azurite 501s, remembering the result per blob."""
    if double.blob_properties(container, blob) is None:
        return double.storage_error(404, "BlobNotFound", headers,
                                    "The specified blob does not exist.")
    key = (container, blob)
    with double.lock:
        state = double.blobs.setdefault(key, BlobWormState())
        if comp == "legalhold" and method == "PUT":
            value = headers.get("x-ms-legal-hold", "").lower()
            if value not in ("true", "false"):
                return double.storage_error(400, "InvalidHeaderValue", headers,
                                            "x-ms-legal-hold must be true or false.")
            state.legal_hold = value == "true"
            return _ok(headers, [("x-ms-legal-hold", value)])
        if comp == "immutabilitypolicies" and method == "DELETE":
            if state.mode == "Locked":
                return double.storage_error(409, "ImmutabilityPolicyLocked", headers,
                                            "A locked immutability policy cannot be deleted.")
            state.until, state.mode = None, ""
            return _ok(headers, [])
        if comp == "immutabilitypolicies" and method == "PUT":
            return _set_blob_policy(double, state, headers)
    return double.storage_error(405, "UnsupportedHttpVerb", headers,
                                "The resource doesn't support the specified HTTP verb.")


def _set_blob_policy(double: AzureWormDouble, state: BlobWormState,
                     headers: dict[str, str]) -> Reply:
    raw = headers.get("x-ms-immutability-policy-until-date")
    if not raw:
        return double.storage_error(400, "MissingRequiredHeader", headers,
                                    "x-ms-immutability-policy-until-date is required.")
    try:
        until = parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return double.storage_error(400, "InvalidHeaderValue", headers,
                                    "x-ms-immutability-policy-until-date is not an RFC 1123 date.")
    mode = headers.get("x-ms-immutability-policy-mode", "Unlocked").title()
    if mode not in ("Unlocked", "Locked") or until <= double.now():
        return double.storage_error(400, "InvalidHeaderValue", headers,
                                    "The until-date must be in the future and the mode "
                                    "Unlocked or Locked.")
    if state.mode == "Locked" and (mode == "Unlocked" or (state.until and until < state.until)):
        return double.storage_error(409, "ImmutabilityPolicyLocked", headers,
                                    "A locked immutability policy can only be extended.")
    state.until, state.mode = until, mode
    return _ok(headers, [("x-ms-immutability-policy-until-date",
                          format_datetime(until.astimezone(UTC), usegmt=True)),
                         ("x-ms-immutability-policy-mode", mode)])


def _ok(headers: dict[str, str], extra: list[tuple[str, str]]) -> Reply:
    base = [("x-ms-request-id", "double"), ("x-ms-version", headers.get("x-ms-version", "")),
            ("Date", format_datetime(datetime.now(UTC), usegmt=True))]
    return Reply(200, base + extra)


# -- control plane: azure-mgmt-storage BlobContainersOperations (azure.md 1.4, 1.9) ------------


def arm_call(double: AzureWormDouble, method: str, match: re.Match[str],
             headers: dict[str, str], body: bytes) -> tuple[dict[str, Any], str]:
    """Dispatch one ARM container call; returns (JSON body, ETag header or "")."""
    if match["sub"] != SUBSCRIPTION:
        raise ArmError(404, "SubscriptionNotFound", f"subscription {match['sub']} not found")
    if match["rg"].lower() != RESOURCE_GROUP.lower():
        raise ArmError(404, "ResourceGroupNotFound", f"resource group {match['rg']} not found")
    if match["acct"] != double.account:
        raise ArmError(404, "ResourceNotFound", f"storage account {match['acct']} not found")
    name = match["c"]
    if not double.azurite_container_exists(name):
        raise ArmError(404, "ContainerOperationFailure", "The specified container does not exist.")
    rest = (match["rest"] or "").lower()
    request = orjson.loads(body) if body else {}
    with double.lock:
        state = double.containers.setdefault(name, ContainerWormState())
        route = (method, rest)
        if route == ("GET", ""):
            return _container_json(double, name, state), ""
        if rest.startswith("/immutabilitypolicies/default"):
            return _policy_call(double, name, state, method, rest, headers, request)
        if route == ("POST", "/setlegalhold"):
            return _legal_hold(state, request, add=True), ""
        if route == ("POST", "/clearlegalhold"):
            return _legal_hold(state, request, add=False), ""
    raise ArmError(405, "MethodNotAllowed", f"{method} {rest or '/'} is not supported")


def _policy_call(double: AzureWormDouble, name: str, state: ContainerWormState, method: str,
                 rest: str, headers: dict[str, str], request: dict[str, Any]
                 ) -> tuple[dict[str, Any], str]:
    policy = state.policy
    action = {("GET", ""): "get", ("PUT", ""): "put", ("DELETE", ""): "delete",
              ("POST", "/lock"): "lock", ("POST", "/extend"): "extend"}.get(
        (method, rest.removeprefix("/immutabilitypolicies/default")))
    if action is None:
        raise ArmError(405, "MethodNotAllowed", f"{method} {rest} is not supported")
    if action == "get":
        return _policy_json(double, name, policy), policy.etag if policy else ""
    _check_if_match(headers, policy, required=action != "put")
    props = request.get("properties", {})
    if action == "put":
        if policy is not None and policy.state == "Locked":
            raise ArmError(409, "ContainerImmutabilityPolicyLocked",
                           "The requested operation is not allowed as the container has a locked "
                           "immutability policy.")
        days = _days(props)
        append, append_all = (bool(props.get("allowProtectedAppendWrites")),
                              bool(props.get("allowProtectedAppendWritesAll")))
        if append and append_all:
            raise ArmError(400, "ContainerOperationFailure", "allowProtectedAppendWrites and "
                           "allowProtectedAppendWritesAll are mutually exclusive.")
        policy = state.policy = ContainerPolicyState(days=days, append=append,
                                                     append_all=append_all,
                                                     history=policy.history if policy else [])
    elif policy is None:
        raise ArmError(409, "ContainerImmutabilityPolicyFailure",
                       "The container has no immutability policy.")
    elif action == "delete":
        if policy.state == "Locked":
            raise ArmError(409, "ContainerImmutabilityPolicyLocked",
                           "A locked immutability policy cannot be deleted.")
        state.policy = None
        deleted = _policy_json(double, name, None)
        return deleted, deleted["etag"]
    elif action == "lock":
        if policy.state == "Locked":
            raise ArmError(409, "ContainerImmutabilityPolicyLocked",
                           "The policy is already locked.")
        policy.state = "Locked"
    else:
        _extend(policy, props)
    policy.etag = _etag()
    policy.history.append({"update": action if action != "put" else "put",
                           "immutabilityPeriodSinceCreationInDays": policy.days,
                           "timestamp": _iso(datetime.now(UTC)), **_IDENTITY,
                           "allowProtectedAppendWrites": policy.append,
                           "allowProtectedAppendWritesAll": policy.append_all})
    return _policy_json(double, name, policy), policy.etag


def _extend(policy: ContainerPolicyState, props: dict[str, Any]) -> None:
    if policy.state != "Locked":
        raise ArmError(409, "ContainerImmutabilityPolicyFailure",
                       "Only a locked immutability policy can be extended; change an unlocked "
                       "one with a PUT.")
    days = _days(props)
    if days <= policy.days:
        raise ArmError(400, "ContainerImmutabilityPolicyFailure",
                       f"A locked policy can only be extended: {days} days is not more than "
                       f"the current {policy.days}.")
    for flag, current in (("allowProtectedAppendWrites", policy.append),
                          ("allowProtectedAppendWritesAll", policy.append_all)):
        if flag in props and bool(props[flag]) != current:
            raise ArmError(400, "ContainerImmutabilityPolicyFailure",
                           f"{flag} cannot be changed on a locked policy.")
    if policy.extensions >= MAX_EXTENSIONS:
        raise ArmError(409, "ContainerImmutabilityPolicyFailure",
                       f"A locked policy can be extended at most {MAX_EXTENSIONS} times.")
    policy.extensions += 1
    policy.days = days


def _days(props: dict[str, Any]) -> int:
    days = props.get("immutabilityPeriodSinceCreationInDays")
    if not isinstance(days, int) or not POLICY_DAYS[0] <= days <= POLICY_DAYS[1]:
        raise ArmError(400, "ContainerOperationFailure",
                       f"immutabilityPeriodSinceCreationInDays must be {POLICY_DAYS[0]} to "
                       f"{POLICY_DAYS[1]} days, got {days!r}.")
    return days


def _check_if_match(headers: dict[str, str], policy: ContainerPolicyState | None, *,
                    required: bool) -> None:
    value = headers.get("if-match")
    if value is None:
        if required:
            raise ArmError(400, "ContainerImmutabilityPolicyFailure",
                           "ETag in If-Match is required for this operation.")
        return
    if not (len(value) > 2 and value.startswith('"') and value.endswith('"')):
        raise ArmError(400, "ContainerImmutabilityPolicyFailure",
                       f"If-Match {value!r} is not a quoted ETag.")
    if policy is None or value != policy.etag:
        raise ArmError(412, "ContainerImmutabilityPolicyFailure",
                       "Operation not allowed on immutability policy with incorrect etag.")


def _policy_json(double: AzureWormDouble, name: str, policy: ContainerPolicyState | None
                 ) -> dict[str, Any]:
    base = (f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}/providers/"
            f"Microsoft.Storage/storageAccounts/{double.account}/blobServices/default/"
            f"containers/{name}/immutabilityPolicies/default")
    props = {
        "immutabilityPeriodSinceCreationInDays": policy.days if policy else 0,
        "state": policy.state if policy else "Unlocked",
        "allowProtectedAppendWrites": policy.append if policy else False,
        "allowProtectedAppendWritesAll": policy.append_all if policy else False,
    }
    return {"id": base, "name": "default", "type": _POLICY_TYPE,
            "etag": policy.etag if policy else _etag(), "properties": props}


def _container_json(double: AzureWormDouble, name: str, state: ContainerWormState
                    ) -> dict[str, Any]:
    policy = state.policy
    props: dict[str, Any] = {
        "publicAccess": "None",
        "hasImmutabilityPolicy": policy is not None,
        "hasLegalHold": bool(state.tags),
        "legalHold": {"hasLegalHold": bool(state.tags),
                      "tags": [{"tag": tag, "timestamp": when, **_IDENTITY}
                               for tag, when in sorted(state.tags.items())]},
        "immutableStorageWithVersioning": {"enabled": state.version_level_worm},
    }
    if policy is not None:
        policy_json = _policy_json(double, name, policy)
        props["immutabilityPolicy"] = {"etag": policy.etag, "properties": policy_json["properties"],
                                       "updateHistory": policy.history}
    return {"id": _policy_json(double, name, None)["id"].rsplit("/immutabilityPolicies", 1)[0],
            "name": name, "type": _CONTAINER_TYPE, "etag": _etag(), "properties": props}


def _legal_hold(state: ContainerWormState, request: dict[str, Any], *, add: bool
                ) -> dict[str, Any]:
    tags = request.get("tags")
    if not isinstance(tags, list) or not 1 <= len(tags) <= 10:
        raise ArmError(400, "ContainerOperationFailure", "A legal hold needs 1 to 10 tags.")
    for tag in tags:
        if not isinstance(tag, str) or not _TAG.match(tag):
            raise ArmError(400, "ContainerOperationFailure",
                           f"Legal hold tag {tag!r} must be 3 to 23 alphanumeric characters.")
    normalised = [tag.lower() for tag in tags]  # Azure lower-cases tags (azure.md 1.4)
    if add:
        merged = set(state.tags) | set(normalised)
        if len(merged) > 10:
            raise ArmError(400, "ContainerOperationFailure",
                           "A container can hold at most 10 legal hold tags.")
        now = _iso(datetime.now(UTC))
        for tag in normalised:
            state.tags.setdefault(tag, now)
        if "allowProtectedAppendWritesAll" in request:
            state.hold_append_all = bool(request["allowProtectedAppendWritesAll"])
    else:
        for tag in normalised:
            state.tags.pop(tag, None)
    return {"hasLegalHold": bool(state.tags), "tags": sorted(state.tags),
            "allowProtectedAppendWritesAll": state.hold_append_all}
