"""Entra ID token validation against a locally generated JWKS served over real HTTP."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from auditseal.api.entra import EntraValidator, entra_issuers
from auditseal.clock import FixedClock
from auditseal.errors import ConfigError

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
AUDIENCE = "api://auditseal"
NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
V2_ISSUER, V1_ISSUER = entra_issuers(TENANT)


class JwksServerDouble:
    """Serves a JWK Set on 127.0.0.1 as Entra's discovery/v2.0/keys endpoint does."""

    def __init__(self) -> None:
        self.keys: list[dict[str, Any]] = []
        self.requests = 0
        self.fail = False
        double = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                double.requests += 1
                if double.fail:
                    self.send_response(503)
                    self.end_headers()
                    return
                body = orjson.dumps({"keys": double.keys})
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/{TENANT}/discovery/v2.0/keys"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,),
                                       daemon=True)
        self.thread.start()

    def publish(self, *pairs: tuple[str, rsa.RSAPrivateKey]) -> None:
        self.keys = []
        for kid, key in pairs:
            jwk = orjson.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
            jwk.update({"kid": kid, "use": "sig", "x5t": kid})
            self.keys.append(jwk)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def rsa_keys() -> dict[str, rsa.RSAPrivateKey]:
    return {kid: rsa.generate_private_key(public_exponent=65537, key_size=2048)
            for kid in ("k1", "k2", "rogue")}


@pytest.fixture
def jwks(rsa_keys: dict[str, rsa.RSAPrivateKey]) -> Iterator[JwksServerDouble]:
    server = JwksServerDouble()
    server.publish(("k1", rsa_keys["k1"]))
    yield server
    server.close()


@pytest.fixture
def validator(jwks: JwksServerDouble) -> EntraValidator:
    return EntraValidator(TENANT, AUDIENCE, jwks_url=jwks.url, clock=FixedClock(NOW),
                          min_refresh_interval_s=0.0)


def claims(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "iss": V2_ISSUER, "aud": AUDIENCE, "tid": TENANT, "oid": "oid-1", "sub": "sub-1",
        "azp": "app-client-id", "preferred_username": "alice@contoso.example",
        "iat": int(NOW.timestamp()) - 60, "nbf": int(NOW.timestamp()) - 60,
        "exp": int((NOW + timedelta(hours=1)).timestamp()), "roles": ["auditseal.reader"],
    }
    base.update(over)
    return {k: v for k, v in base.items() if v is not None}


def token(keys: dict[str, rsa.RSAPrivateKey], kid: str = "k1", sign_with: str | None = None,
          alg: str = "RS256", **over: Any) -> str:
    return jwt.encode(claims(**over), keys[sign_with or kid], algorithm=alg,
                      headers={"kid": kid})


def test_valid_token_gives_principal(validator: EntraValidator,
                                     rsa_keys: dict[str, rsa.RSAPrivateKey]) -> None:
    principal = validator.validate(token(rsa_keys))
    assert principal is not None
    assert principal.role == "reader"
    assert principal.name == "alice@contoso.example"
    assert principal.subject == "oid-1"
    assert principal.key_id is None
    assert validator.last_reason == ""


def test_v1_issuer_and_audience_list_are_accepted(
        validator: EntraValidator, rsa_keys: dict[str, rsa.RSAPrivateKey]) -> None:
    check = validator.check(token(rsa_keys, iss=V1_ISSUER, aud=["other", AUDIENCE],
                                  preferred_username=None, upn="bob@contoso.example"))
    assert check.reason == ""
    assert check.principal is not None
    assert check.principal.name == "bob@contoso.example"


@pytest.mark.parametrize(
    ("roles", "role"),
    [
        pytest.param(["auditseal.ingest"], "ingest", id="ingest"),
        pytest.param(["auditseal.reader", "auditseal.admin", "x"], "admin", id="highest-wins"),
        pytest.param(["auditseal.auditor", "auditseal.reader"], "auditor", id="auditor"),
        pytest.param(["auditseal.ingest", "auditseal.reader"], "reader", id="reader-over-ingest"),
    ],
)
def test_app_roles_map_to_our_roles(validator: EntraValidator,
                                    rsa_keys: dict[str, rsa.RSAPrivateKey],
                                    roles: list[str], role: str) -> None:
    principal = validator.validate(token(rsa_keys, roles=roles))
    assert principal is not None
    assert principal.role == role


def test_custom_role_map(jwks: JwksServerDouble, rsa_keys: dict[str, rsa.RSAPrivateKey]) -> None:
    custom = EntraValidator(TENANT, AUDIENCE, jwks_url=jwks.url, clock=FixedClock(NOW),
                            role_map={"Audit.Write": "ingest"})
    principal = custom.validate(token(rsa_keys, roles=["Audit.Write", "auditseal.admin"]))
    assert principal is not None
    assert principal.role == "ingest"


NOW_S = int(NOW.timestamp())


@pytest.mark.parametrize(
    ("over", "reason"),
    [
        pytest.param({"exp": NOW_S - 121}, "token expired at 2026-05-01T11:57:59+00:00",
                     id="expired"),
        pytest.param({"exp": None}, "no expiry", id="no-exp"),
        pytest.param({"exp": "soon"}, "'exp' is not a number", id="exp-not-number"),
        pytest.param({"nbf": NOW_S + 600}, "not valid before", id="not-yet-valid"),
        pytest.param({"aud": "api://someone-else"}, "audience", id="wrong-audience"),
        pytest.param({"aud": None}, "audience", id="no-audience"),
        pytest.param({"iss": "https://login.microsoftonline.com/other/v2.0"}, "issuer",
                     id="wrong-issuer"),
        pytest.param({"tid": "other-tenant"}, "tenant", id="wrong-tenant"),
        pytest.param({"roles": None}, "no auditseal app role", id="no-roles"),
        pytest.param({"roles": ["Reader"]}, "no auditseal app role", id="unmapped-role"),
        pytest.param({"roles": "auditseal.admin"}, "no auditseal app role", id="roles-not-list"),
    ],
)
def test_invalid_claims_are_refused(validator: EntraValidator,
                                    rsa_keys: dict[str, rsa.RSAPrivateKey],
                                    over: dict[str, Any], reason: str) -> None:
    assert validator.validate(token(rsa_keys, **over)) is None
    assert reason in validator.last_reason


def test_leeway_accepts_small_skew(validator: EntraValidator,
                                   rsa_keys: dict[str, rsa.RSAPrivateKey]) -> None:
    assert validator.validate(token(rsa_keys, exp=NOW_S - 100, nbf=NOW_S + 100)) is not None


def test_bad_signature_is_refused(validator: EntraValidator,
                                  rsa_keys: dict[str, rsa.RSAPrivateKey]) -> None:
    assert validator.validate(token(rsa_keys, sign_with="rogue")) is None
    assert validator.last_reason == "token signature does not verify"


def test_tampered_payload_is_refused(validator: EntraValidator,
                                     rsa_keys: dict[str, rsa.RSAPrivateKey]) -> None:
    header, _, signature = token(rsa_keys).split(".")
    forged = jwt.utils.base64url_encode(orjson.dumps(claims(roles=["auditseal.admin"])))
    assert validator.validate(f"{header}.{forged.decode()}.{signature}") is None
    assert "signature" in validator.last_reason


def _unsigned() -> str:
    encode = jwt.utils.base64url_encode
    header = encode(orjson.dumps({"alg": "none", "kid": "k1", "typ": "JWT"})).decode()
    return f"{header}.{encode(orjson.dumps(claims())).decode()}."


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        pytest.param(lambda k: "not-a-jwt", "not a well-formed JWT", id="garbage"),
        pytest.param(lambda k: "", "not a well-formed JWT", id="empty"),
        pytest.param(lambda k: jwt.encode(claims(), "secret-secret-secret-secret-secret!",
                                          algorithm="HS256", headers={"kid": "k1"}),
                     "is not RS256", id="hs256-confusion"),
        pytest.param(lambda k: _unsigned(), "is not RS256", id="alg-none"),
        pytest.param(lambda k: jwt.encode(claims(), k["k1"], algorithm="RS256"),
                     "no key id", id="no-kid"),
    ],
)
def test_malformed_tokens_are_refused(validator: EntraValidator,
                                      rsa_keys: dict[str, rsa.RSAPrivateKey],
                                      make: Any, reason: str) -> None:
    check = validator.check(make(rsa_keys))
    assert check.principal is None
    assert reason in check.reason


def test_unknown_kid_refreshes_once_then_fails(validator: EntraValidator, jwks: JwksServerDouble,
                                               rsa_keys: dict[str, rsa.RSAPrivateKey]) -> None:
    assert validator.validate(token(rsa_keys)) is not None
    assert jwks.requests == 1
    assert validator.validate(token(rsa_keys)) is not None
    assert jwks.requests == 1  # cached
    assert validator.validate(token(rsa_keys, kid="rogue")) is None
    assert jwks.requests == 2  # refreshed once for the unknown kid
    assert "'rogue' is not in the tenant's key set" in validator.last_reason


def test_unknown_kid_refreshes_are_rate_limited(
        jwks: JwksServerDouble, rsa_keys: dict[str, rsa.RSAPrivateKey]) -> None:
    limited = EntraValidator(TENANT, AUDIENCE, jwks_url=jwks.url, clock=FixedClock(NOW),
                             min_refresh_interval_s=3600)
    for _ in range(5):
        assert limited.validate(token(rsa_keys, kid="rogue")) is None
    assert jwks.requests == 1


def test_key_rotation(validator: EntraValidator, jwks: JwksServerDouble,
                      rsa_keys: dict[str, rsa.RSAPrivateKey]) -> None:
    assert validator.validate(token(rsa_keys, kid="k1")) is not None
    jwks.publish(("k2", rsa_keys["k2"]))  # Entra rolls over to a new key
    assert validator.validate(token(rsa_keys, kid="k2")) is not None
    assert jwks.requests == 2
    assert validator.validate(token(rsa_keys, kid="k1")) is None  # retired key, gone after refresh


def test_jwks_unavailable_is_a_refusal(jwks: JwksServerDouble,
                                       rsa_keys: dict[str, rsa.RSAPrivateKey]) -> None:
    jwks.fail = True
    fresh = EntraValidator(TENANT, AUDIENCE, jwks_url=jwks.url, clock=FixedClock(NOW))
    assert fresh.validate(token(rsa_keys)) is None
    assert "cannot fetch the tenant's signing keys" in fresh.last_reason


def test_cached_keys_survive_a_jwks_outage(validator: EntraValidator, jwks: JwksServerDouble,
                                           rsa_keys: dict[str, rsa.RSAPrivateKey]) -> None:
    assert validator.validate(token(rsa_keys)) is not None
    jwks.fail = True
    assert validator.validate(token(rsa_keys, kid="k2")) is None  # refresh fails
    assert validator.validate(token(rsa_keys)) is not None  # known key still works


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param({"tenant_id": "", "audience": AUDIENCE}, "tenant id", id="no-tenant"),
        pytest.param({"tenant_id": TENANT, "audience": ""}, "audience", id="no-audience"),
        pytest.param({"tenant_id": TENANT, "audience": AUDIENCE,
                      "jwks_url": "http://keys.example/keys"}, "https", id="plain-http"),
    ],
)
def test_bad_configuration(args: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        EntraValidator(**args)


def test_default_jwks_url_is_the_tenants_v2_keys() -> None:
    default = EntraValidator(TENANT, AUDIENCE)
    assert default.jwks.url == (
        f"https://login.microsoftonline.com/{TENANT}/discovery/v2.0/keys")
    assert default.issuers == {V2_ISSUER, V1_ISSUER}
