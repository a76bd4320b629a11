"""New-value state keyed without per-record tuples, and log classification shortcuts.

Both fast paths are checked against a straightforward model of what they must compute:
``NewValueState`` keys its history by the group's text itself when there is one group-by
field (by a tuple of texts otherwise), and ``event_service`` skips lower-casing the
``resourceId`` of records whose category already names a tenant log.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from auditseal.alerts.correlation import Fired, NewValueSpec, NewValueState
from auditseal.alerts.fields import EventView, as_text
from auditseal.alerts.logs import event_service

_USERS: list[object] = ["alice@x", "bob@x", "ALICE@x", 7, 7.0, True, None, ""]
_COUNTRIES: list[object] = ["NL", "nl", "DE", "US", None, 3]


def _record(rng: random.Random) -> dict[str, Any]:
    props: dict[str, Any] = {"location": {"countryOrRegion": rng.choice(_COUNTRIES)}}
    user = rng.choice(_USERS)
    if user != "":
        props["userPrincipalName"] = user
    props["appDisplayName"] = rng.choice(["Portal", "CLI", 1])
    return {"category": "SignInLogs", "properties": props}


def _model(group_by: tuple[str, ...], records: list[dict[str, Any]]
           ) -> list[tuple[tuple[tuple[str, str], ...], int] | None]:
    """What the state must fire: the obvious way, tuples of (name, text) as group keys."""
    seen: dict[tuple[tuple[str, str], ...], set[str]] = {}
    paths = {"UserPrincipalName": "userPrincipalName", "AppDisplayName": "appDisplayName"}
    out: list[tuple[tuple[tuple[str, str], ...], int] | None] = []
    for index, record in enumerate(records):
        props = record["properties"]
        country = props["location"]["countryOrRegion"]
        if country is None:
            out.append(None)
            continue
        value = as_text(country).lower()
        group = tuple((name, "" if props.get(paths[name]) is None
                       else as_text(props[paths[name]])) for name in group_by)
        known = seen.get(group)
        if known is None:
            seen[group] = {value}
            out.append(None)
        elif value in known:
            out.append(None)
        else:
            known.add(value)
            out.append(((*group, ("Location", value)), index))
    return out


@pytest.mark.parametrize("group_by", [("UserPrincipalName",),
                                      ("UserPrincipalName", "AppDisplayName")])
def test_new_value_state_fires_as_the_model(group_by: tuple[str, ...]) -> None:
    rng = random.Random(4)
    records = [_record(rng) for _ in range(600)]
    state = NewValueState("r", NewValueSpec("Location", group_by))
    got: list[tuple[tuple[tuple[str, str], ...], int] | None] = []
    for index, record in enumerate(records):
        fired = state.observe(EventView(record), float(index), index)
        assert fired is None or isinstance(fired, Fired)
        got.append(None if fired is None else (fired.group, fired.indexes[0]))
    expected = _model(group_by, records)
    assert got == expected
    assert sum(1 for item in expected if item is not None) > 10  # it did fire


@pytest.mark.parametrize("category", ["SignInLogs", "AuditLogs", "UserRiskEvents",
                                      "Administrative", "AuditEvent", "Other", "ServiceHealth"])
@pytest.mark.parametrize("resource", ["/tenants/1/providers/Microsoft.aadiam",
                                      "/SUBSCRIPTIONS/1/PROVIDERS/MICROSOFT.AADIAM/X",
                                      "/subscriptions/1/providers/Microsoft.Web/sites/a", None])
def test_event_service_tenant_resources(category: str, resource: str | None) -> None:
    record: dict[str, Any] = {"category": category}
    if resource is not None:
        record["resourceId"] = resource
    by_category = {"signinlogs": "signinlogs", "auditlogs": "auditlogs",
                   "userriskevents": "riskdetection", "administrative": "activitylogs",
                   "auditevent": "keyvault", "servicehealth": "activitylogs"}
    service = by_category.get(category.lower())
    if resource is not None and "/providers/microsoft.aadiam" in resource.lower():
        service = service if service in ("signinlogs", "riskdetection") else "auditlogs"
    assert event_service(record) == service
