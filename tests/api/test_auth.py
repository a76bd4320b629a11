"""Authentication and roles: the 401/403 matrix, key life cycle, sealing, no mutation."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from fastapi.routing import APIRoute

from auditseal.api.keys import KeyStore
from tests.api.conftest import Api

EVENT = b'{"operationName":"x"}'
# (method, path, body, the lowest roles allowed)
ROUTES = [
    ("POST", "/v1/events", EVENT, {"ingest", "admin"}),
    ("GET", "/v1/entries/0", None, {"reader", "auditor", "admin"}),
    ("GET", "/log/checkpoint", None, {"reader", "auditor", "admin"}),
    ("GET", "/v1/checkpoints", None, {"reader", "auditor", "admin"}),
    ("GET", "/v1/integrity", None, {"reader", "auditor", "admin"}),
    ("GET", "/v1/stats/timeline", None, {"reader", "auditor", "admin"}),
    ("GET", "/v1/proofs/inclusion?index=0", None, {"auditor", "admin"}),
    ("GET", "/v1/proofs/consistency?old=1", None, {"auditor", "admin"}),
    ("GET", "/v1/keys", None, {"admin"}),
]
ROLES = ["ingest", "reader", "auditor", "admin"]


@pytest.mark.parametrize(("method", "path", "body", "allowed"), ROUTES,
                         ids=[f"{m} {p}" for m, p, _, _ in ROUTES])
def test_role_matrix(api: Api, method: str, path: str, body: bytes | None,
                     allowed: set[str]) -> None:
    headers = {"Content-Type": "application/json"}
    with api.client("ingest", **headers) as ingest:  # entry 0 and a second checkpoint exist,
        assert ingest.post("/v1/events", content=EVENT).status_code == 200  # in any order
    api.wait_sealed()
    for role in ROLES:
        with api.client(role, **headers) as client:
            answer = client.request(method, path, content=body)
        if role in allowed:
            assert answer.status_code in (200, 201), (role, answer.text)
        else:
            assert answer.status_code == 403, (role, answer.text)
            assert answer.json()["error"]["code"] == "forbidden"
    with api.client(**headers) as anonymous:
        answer = anonymous.request(method, path, content=body)
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    assert answer.json()["error"]["code"] == "unauthenticated"


@pytest.mark.parametrize("header", [
    pytest.param("Bearer as_000000000000_" + "A" * 43, id="unknown-key"),
    pytest.param("Bearer as_garbage", id="malformed-key"),
    pytest.param("Basic dXNlcjpwYXNz", id="basic-scheme"),
    pytest.param("Bearer eyJhbGciOiJub25lIn0.e30.", id="jwt-without-entra"),
])
def test_bad_credentials_are_401(api: Api, header: str) -> None:
    with api.client(Authorization=header) as client:
        answer = client.get("/v1/integrity")
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "unauthenticated"


def test_expired_and_revoked_keys_are_refused(api: Api) -> None:
    store = KeyStore(api.log.state)
    _, expired = store.create("reader", "old", 1, now=datetime.now(UTC) - timedelta(days=2))
    key, revoked = store.create("reader", "gone")
    with api.client(Authorization=f"Bearer {revoked}") as client:
        assert client.get("/v1/integrity").status_code == 200
    store.revoke(key.id)
    for token, why in ((expired, "expired"), (revoked, "revoked")):
        with api.client(Authorization=f"Bearer {token}") as client:
            answer = client.get("/v1/integrity")
        assert answer.status_code == 401
        assert why in answer.json()["error"]["message"]


def _admin_records(api: Api) -> list[dict[str, object]]:
    api.wait_sealed()
    found = []
    with api.client("reader") as client:
        for index in range(api.service.checkpoint.size):
            entry = client.get(f"/v1/entries/{index}").json()
            if entry["kind"] == "admin":
                found.append(orjson.loads(base64.b64decode(entry["event_b64"])))
    return found


def test_failed_authentication_is_sealed_without_the_token(api: Api) -> None:
    token = "as_abcdefabcdef_" + "B" * 43
    with api.client(Authorization=f"Bearer {token}") as client:
        assert client.get("/v1/search").status_code in (401, 405)
        assert client.get("/v1/integrity").status_code == 401
    records = [r for r in _admin_records(api) if r.get("key_id") == "abcdefabcdef"]
    assert records
    assert records[-1]["auditseal"] == "auth.failed"
    assert records[-1]["path"] == "/v1/integrity"
    assert "B" * 43 not in orjson.dumps(records).decode()


def test_keys_api_creates_lists_and_revokes_and_seals_each(api: Api) -> None:
    with api.client("admin", **{"Content-Type": "application/json"}) as admin:
        created = admin.post("/v1/keys", json={"role": "reader", "name": "ui"})
        assert created.status_code == 201
        token, key_id = created.json()["key"], created.json()["id"]
        listed = admin.get("/v1/keys").json()
        assert key_id in {k["id"] for k in listed}
        assert all("key" not in k and "secret_sha256" not in k for k in listed)
        with api.client(Authorization=f"Bearer {token}") as new:
            assert new.get("/v1/integrity").status_code == 200
            assert admin.delete(f"/v1/keys/{key_id}").json()["state"] == "revoked"
            assert new.get("/v1/integrity").status_code == 401
        assert admin.post("/v1/keys", json={"role": "root"}).status_code == 400
    actions = [(r["auditseal"], r.get("key_id")) for r in _admin_records(api)]
    assert ("key.created", key_id) in actions
    assert ("key.revoked", key_id) in actions


def test_no_route_modifies_or_deletes_an_event(api: Api) -> None:
    """Every route x method: only the documented methods exist; the rest is 405."""
    app_routes = [r for r in _app_routes(api) if isinstance(r, APIRoute)]
    paths: dict[str, set[str]] = {r.path: set() for r in app_routes}
    for route in app_routes:
        paths[route.path] |= route.methods or set()
    mutating = {"PUT", "PATCH", "DELETE"}
    for path, methods in paths.items():
        concrete = (path.replace("{index}", "0").replace("{path:path}", "0/000")
                    .replace("{run_id}", "x").replace("{key_id}", "x")
                    .replace("{rule_id}", "x"))
        configuration = {"/v1/keys/{key_id}": {"DELETE"}, "/v1/settings": {"PATCH"}}
        assert not methods & mutating - configuration.get(path, set()), path
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
            if method in methods:
                continue
            with api.client("admin") as admin:
                answer = admin.request(method, concrete)
            assert answer.status_code == 405, (method, path, answer.text)
            assert answer.json()["error"]["code"] == "method_not_allowed"
    for path in ("/log/tile/entries/000", "/log/checkpoint", "/v1/entries/0", "/v1/events"):
        for method in sorted(mutating):
            with api.client("admin") as admin:
                assert admin.request(method, path).status_code == 405, (method, path)


def _app_routes(api: Api) -> list[object]:
    with api.client() as client:
        spec = client.get("/openapi.json").json()
    assert spec["paths"]
    from auditseal.api import create_app

    return list(create_app(api.service, api.service.settings, manage_service=False).routes)


def test_openapi_is_published(api: Api) -> None:
    with api.client() as client:
        spec = client.get("/openapi.json")
        assert client.get("/healthz").json() == {"ok": True}
        assert client.get("/v1/verifier-key").json()["verifier_key"] == api.vkey
    assert spec.status_code == 200
    paths = spec.json()["paths"]
    for path in ("/v1/events", "/v1/search", "/v1/receipts/{index}", "/log/checkpoint",
                 "/v1/otlp/v1/logs", "/v1/integrity/verify"):
        assert path in paths
