"""Entra ID bearer tokens through the real server: a local RSA key, its JWKS on 127.0.0.1,
tokens with issuer, audience, expiry and app roles; each role's access, and each bad token
answered 401 and sealed as a failed authentication (with the reason, without the token)."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

import jwt
import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from auditseal.api.entra import EntraValidator
from tests.api.conftest import Api, admin_records
from tests.api.test_entra import AUDIENCE, TENANT, V1_ISSUER, V2_ISSUER, JwksServerDouble

EVENT = b'{"operationName": "entra-ingest", "category": "Administrative"}'


@pytest.fixture(scope="module")
def keys() -> dict[str, rsa.RSAPrivateKey]:
    return {kid: rsa.generate_private_key(public_exponent=65537, key_size=2048)
            for kid in ("k1", "rogue")}


@pytest.fixture
def server(make_server: Callable[..., AbstractContextManager[Api]],
           keys: dict[str, rsa.RSAPrivateKey]) -> Iterator[tuple[Api, JwksServerDouble]]:
    jwks = JwksServerDouble()
    jwks.publish(("k1", keys["k1"]))
    validator = EntraValidator(TENANT, AUDIENCE, jwks_url=jwks.url, min_refresh_interval_s=0)
    try:
        with make_server(entra=validator) as running:
            yield running, jwks
    finally:
        jwks.close()


def bearer(keys: dict[str, rsa.RSAPrivateKey], *, kid: str = "k1",
           sign_with: str | None = None, **over: Any) -> dict[str, str]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": V2_ISSUER, "aud": AUDIENCE, "tid": TENANT, "oid": "oid-7", "sub": "sub-7",
        "preferred_username": "carol@contoso.example", "iat": now - 60, "nbf": now - 60,
        "exp": now + 3600, "roles": ["auditseal.reader"]}
    claims.update(over)
    token = jwt.encode({k: v for k, v in claims.items() if v is not None},
                       keys[sign_with or kid], algorithm="RS256", headers={"kid": kid})
    return {"Authorization": f"Bearer {token}"}


# role -> the routes it may use; every other route of the table is 403 for it
ACCESS = [
    ("POST", "/v1/events", {"ingest", "admin"}),
    ("GET", "/v1/integrity", {"reader", "auditor", "admin"}),
    ("GET", "/v1/rules", {"reader", "auditor", "admin"}),
    ("GET", "/v1/proofs/inclusion?index=0", {"auditor", "admin"}),
    ("GET", "/v1/keys", {"admin"}),
    ("GET", "/v1/settings", {"admin"}),
]


@pytest.mark.parametrize("role", ["ingest", "reader", "auditor", "admin"])
def test_each_app_role_gets_its_access(server: tuple[Api, JwksServerDouble],
                                       keys: dict[str, rsa.RSAPrivateKey], role: str) -> None:
    api, _ = server
    with api.client("ingest", **{"Content-Type": "application/json"}) as seed:
        assert seed.post("/v1/events", content=EVENT).status_code == 200  # entry 0 exists
    api.wait_sealed()
    headers = {**bearer(keys, roles=[f"auditseal.{role}"]), "Content-Type": "application/json"}
    with api.client(**headers) as client:
        for method, path, allowed in ACCESS:
            answer = client.request(method, path, content=EVENT if method == "POST" else None)
            expected = 200 if role in allowed else 403
            assert answer.status_code == expected, (role, method, path, answer.text)


def test_ingest_by_token_is_sealed_under_its_subject(
        server: tuple[Api, JwksServerDouble], keys: dict[str, rsa.RSAPrivateKey]) -> None:
    api, _ = server
    headers = {**bearer(keys, roles=["auditseal.ingest"]), "Content-Type": "application/json"}
    with api.client(**headers) as client:
        index = client.post("/v1/events", content=EVENT).json()["entries"][0]["index"]
    api.wait_sealed()
    with api.client("reader") as reader:
        entry = reader.get(f"/v1/entries/{index}").json()
    assert entry["source"] == "http:entra/oid-7"
    assert base64.b64decode(entry["event_b64"]) == EVENT


def test_admin_actions_by_token_name_the_principal(
        server: tuple[Api, JwksServerDouble], keys: dict[str, rsa.RSAPrivateKey]) -> None:
    api, _ = server
    start = api.service.writer.size
    with api.client(**bearer(keys, roles=["auditseal.admin"])) as admin:
        created = admin.post("/v1/keys", json={"role": "reader", "name": "from-entra"})
    assert created.status_code == 201
    [record] = [r for r in admin_records(api, start) if r["auditseal"] == "key.created"]
    assert record["principal"] == {"name": "carol@contoso.example", "role": "admin",
                                   "id": "entra/oid-7"}


NOW_S = int(time.time())


@pytest.mark.parametrize(
    ("over", "reason"),
    [
        pytest.param({"exp": NOW_S - 3600}, "token expired", id="expired"),
        pytest.param({"nbf": NOW_S + 3600}, "not valid before", id="not-yet-valid"),
        pytest.param({"aud": "api://other"}, "audience", id="wrong-audience"),
        pytest.param({"iss": "https://login.microsoftonline.com/evil/v2.0"}, "issuer",
                     id="wrong-issuer"),
        pytest.param({"tid": "evil-tenant"}, "tenant", id="wrong-tenant"),
        pytest.param({"roles": ["Some.Other.Role"]}, "no auditseal app role", id="no-role"),
        pytest.param({"sign_with": "rogue"}, "signature does not verify", id="bad-signature"),
        pytest.param({"kid": "rogue"}, "not in the tenant's key set", id="unknown-key"),
    ],
)
def test_a_bad_token_is_401_and_sealed_with_its_reason(
        server: tuple[Api, JwksServerDouble], keys: dict[str, rsa.RSAPrivateKey],
        over: dict[str, Any], reason: str) -> None:
    api, _ = server
    start = api.service.writer.size
    headers = bearer(keys, **over)
    token = headers["Authorization"].removeprefix("Bearer ")
    with api.client(**headers) as client:
        answer = client.get("/v1/integrity")
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    assert answer.json()["error"]["code"] == "unauthenticated"
    assert reason not in answer.text  # the caller learns only that it was refused
    failed = [r for r in admin_records(api, start) if r["auditseal"] == "auth.failed"]
    assert len(failed) == 1
    assert reason in failed[0]["detail"]
    assert failed[0]["path"] == "/v1/integrity"
    assert token.split(".")[2] not in orjson.dumps(failed).decode()


def test_v1_issuer_and_garbage(server: tuple[Api, JwksServerDouble],
                               keys: dict[str, rsa.RSAPrivateKey]) -> None:
    api, jwks = server
    with api.client(**bearer(keys, iss=V1_ISSUER)) as client:
        assert client.get("/v1/integrity").status_code == 200
    with api.client(Authorization="Bearer not.a.jwt") as client:
        assert client.get("/v1/integrity").status_code == 401
    assert jwks.requests >= 1  # the keys really came over HTTP from the JWKS endpoint
