"""AzureWormDouble: Azure Blob immutable storage (WORM) in front of Azurite, plus its ARM API.

Azurite emulates the blob data plane but enforces no immutability and has no control plane
(azure.md section 2.1: 501 ``APINotImplemented`` for the per-blob policy calls, container
properties hard-coded to ``hasImmutabilityPolicy: false``). This double is two real HTTP
servers on 127.0.0.1 sharing one WORM state:

* a **data-plane proxy** (plain HTTP, Shared Key passes through unchanged) that forwards every
  request to Azurite and refuses, before forwarding, what Azure refuses;
* an **ARM double** (HTTPS with a throw-away self-signed certificate, because azure-core sends
  bearer tokens over TLS only) answering ``azure-mgmt-storage``'s container calls.

Reproduced, with the azure.md section it comes from:

* 1.1/1.3/1.6 container time-based retention, Unlocked or Locked: while active, Delete Blob,
  overwriting Put Blob / Put Block List / Copy Blob, Set Blob Metadata, Set Blob Properties,
  Put Page, Snapshot Blob and Incremental Copy get **409 BlobImmutableDueToPolicy** with the
  XML error body and ``x-ms-error-code``; creating new blobs and Set Blob Tier stay allowed
  (1.10). Expiry = blob creation time + the *current* interval (append blobs under protected
  append writes: last modification + interval); after expiry Delete is allowed, overwrites
  and metadata/property writes are still refused.
* 1.4 container legal hold (tags): the same refusals with **409 BlobImmutableDueToLegalHold**
  and no expiry; a hold wins over a policy when both apply.
* 1.5 Append Block allowed only under ``allowProtectedAppendWrites(All)``.
* 1.7 per-blob ("version-level") policy and legal hold: Set/Delete Blob Immutability Policy and
  Set Blob Legal Hold are answered (not forwarded), remembered per blob (also when given as
  ``x-ms-immutability-policy-*`` / ``x-ms-legal-hold`` headers on Put Blob) and returned in Get
  Blob Properties headers. Unlocked -> until-date up or down, deletable; Locked -> extend only,
  never back to Unlocked, not deletable; past until-dates are 400.
* 1.7 container properties ``x-ms-has-immutability-policy`` / ``x-ms-has-legal-hold`` /
  ``x-ms-immutable-storage-with-versioning-enabled`` reflect the state.
* 1.2 data-plane Delete Container: 409 ContainerImmutabilityPolicyLocked (locked policy) or
  ContainerHasLegalHold.
* 1.9 ARM: PUT/GET/DELETE ``.../immutabilityPolicies/default``, POST ``lock`` (If-Match
  required), POST ``extend`` (Locked only, longer only, at most 5 times), POST
  ``setLegalHold`` (appends; 1-10 tags of 3-23 alphanumerics, lower-cased) and
  ``clearLegalHold``, GET container (policy with update history, hold tags), ETags that
  change on every policy change, 401 without a bearer token.

Not reproduced (tests must not rely on these):

* Blob versioning: Azurite has none, so the double behaves like an account *without*
  versioning ("for a write to succeed you must have versioning enabled or no hold or policy",
  1.1): overwriting a blob with a per-blob policy is refused instead of creating a version.
  The version-level-WORM prerequisite is not checked; ``enable_version_level_worm`` only sets
  the container header.
* Account-level default policies, ``begin_object_level_worm``, the 10,000-container limit,
  account deletion, lifecycle management, List Blobs' immutability fields, DFS append+flush.
* Exact error texts beyond those quoted in azure.md 1.6. Inferred codes (not confirmed against
  live Azure): 412 ContainerImmutabilityPolicyFailure for a wrong ETag (seen in
  pulumi/pulumi-azure-native#2156), 400 ContainerImmutabilityPolicyFailure for a missing or
  unquoted If-Match, 409 ContainerImmutabilityPolicyFailure for extend-when-unlocked and the
  sixth extension, 409 ImmutabilityPolicyLocked for shortening, unlocking or deleting a
  locked per-blob policy, 400/404 ContainerOperationFailure for bad input / unknown container, and a
  GET of a container without a policy answering 200 with period 0 and state Unlocked.
* If-None-Match: * on an existing blob is left to Azurite (precondition before immutability).
"""

from __future__ import annotations

import http.client
import ipaddress
import re
import secrets
import shutil
import ssl
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import orjson
from azure.core.credentials import AccessToken
from azure.core.exceptions import ResourceNotFoundError
from azure.mgmt.storage import StorageManagementClient
from azure.storage.blob import BlobProperties, BlobServiceClient
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.azurite import ACCOUNT, KEY, Azurite

SUBSCRIPTION = "00000000-0000-0000-0000-00000000d0b1"
RESOURCE_GROUP = "rg-auditseal-double"
ARM_TOKEN = "auditseal-test-arm-token"  # a fixed test value, not a secret
MAX_EXTENSIONS = 5
POLICY_DAYS = (1, 146_000)
_MESSAGES = {
    "BlobImmutableDueToPolicy": "This operation is not permitted as the blob is immutable due "
    "to a policy.",
    "BlobImmutableDueToLegalHold": "This operation is not permitted as the blob is immutable due "
    "to one or more legal holds.",
    "ContainerHasLegalHold": "The requested operation is not allowed as the container has one or "
    "more legal holds.",
    "ContainerImmutabilityPolicyLocked": "The requested operation is not allowed as the container "
    "has a locked immutability policy.",
}
_MODIFY = {"metadata", "properties", "page", "snapshot", "incrementalcopy"}
_ARM_PATH = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/Microsoft\.Storage/"
    r"storageAccounts/(?P<acct>[^/]+)/blobServices/default/containers/(?P<c>[^/]+)(?P<rest>/.*)?$",
    re.IGNORECASE,
)


@dataclass
class Reply:
    """One HTTP response of a double."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes = b""


class ArmError(Exception):
    """An ARM error response: status, code, message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass
class ContainerPolicyState:
    """A container's time-based retention policy, as ARM keeps it."""

    days: int
    state: str = "Unlocked"
    append: bool = False
    append_all: bool = False
    etag: str = ""
    extensions: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class ContainerWormState:
    """What protects one container: policy, legal-hold tags, version-level WORM flag."""

    policy: ContainerPolicyState | None = None
    tags: dict[str, str] = field(default_factory=dict)  # tag -> timestamp
    hold_append_all: bool = False
    version_level_worm: bool = False


@dataclass
class BlobWormState:
    """A blob's own ("version-level") policy and legal hold."""

    until: datetime | None = None
    mode: str = ""
    legal_hold: bool = False


class StaticTokenCredentialDouble:
    """A TokenCredential that hands out one fixed token (the ARM double accepts only it)."""

    def __init__(self, token: str = ARM_TOKEN) -> None:
        """Hand out ``token``."""
        self.token = token

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        """The fixed token, valid for an hour."""
        return AccessToken(self.token, int(datetime.now(UTC).timestamp()) + 3600)


def _etag() -> str:
    return f'"8d{secrets.token_hex(7)}"'


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


class AzureWormDouble:
    """Azure immutable blob storage and its management API, for tests (see module docstring).

    Args:
        azurite: the running Azurite to forward data-plane requests to.

    Attributes:
        now: the double's clock for retention expiry; tests replace it to skip ahead.
    """

    def __init__(self, azurite: Azurite) -> None:
        """Prepare (not start) the double in front of ``azurite``."""
        self.azurite = azurite
        self.now: Callable[[], datetime] = lambda: datetime.now(UTC)
        self.containers: dict[str, ContainerWormState] = {}
        self.blobs: dict[tuple[str, str], BlobWormState] = {}
        self._lock = threading.RLock()
        self._service = BlobServiceClient.from_connection_string(azurite.connection_string)
        self._servers: list[_Server] = []
        self._tmp = Path(tempfile.mkdtemp(prefix="armdouble-"))
        self.ca_bundle = self._tmp / "arm-double.pem"

    # -- lifecycle and endpoints -------------------------------------------------------------

    def start(self) -> AzureWormDouble:
        """Start both servers."""
        context = self._tls_context()
        self._servers = [serve(self, "data", None), serve(self, "arm", context)]
        return self

    def stop(self) -> None:
        """Stop both servers."""
        for server in self._servers:
            server.shutdown()
            server.server_close()
        self._servers = []
        shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> AzureWormDouble:
        """Start."""
        return self.start()

    def __exit__(self, *exc: object) -> None:
        """Stop."""
        self.stop()

    @property
    def blob_endpoint(self) -> str:
        """The data-plane endpoint (Azurite's account path, on the double's port)."""
        return f"http://127.0.0.1:{self._servers[0].server_address[1]}/{ACCOUNT}"

    @property
    def connection_string(self) -> str:
        """A connection string whose blob endpoint is the double."""
        return (f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};"
                f"BlobEndpoint={self.blob_endpoint};")

    @property
    def arm_endpoint(self) -> str:
        """The ARM base URL (HTTPS; trust ``ca_bundle``)."""
        return f"https://127.0.0.1:{self._servers[1].server_address[1]}"

    @property
    def account(self) -> str:
        """The storage account name (Azurite's)."""
        return ACCOUNT

    def management_client(self, token: str = ARM_TOKEN) -> StorageManagementClient:
        """azure-mgmt-storage's real client, pointed at the ARM double."""
        return StorageManagementClient(
            StaticTokenCredentialDouble(token), SUBSCRIPTION, base_url=self.arm_endpoint,
            connection_verify=str(self.ca_bundle), retry_total=0,
        )

    # -- test shortcuts (what a portal user would click) -------------------------------------

    def set_container_policy(self, container: str, days: int, *, locked: bool,
                             allow_protected_append_writes: bool = False) -> None:
        """Give ``container`` a time-based policy directly (no ARM round trip)."""
        with self._lock:
            state = self.containers.setdefault(container, ContainerWormState())
            state.policy = ContainerPolicyState(
                days=days, state="Locked" if locked else "Unlocked",
                append=allow_protected_append_writes, etag=_etag(),
            )

    def set_container_legal_hold(self, container: str, *tags: str) -> None:
        """Put legal-hold ``tags`` on ``container`` directly (no ARM round trip)."""
        with self._lock:
            state = self.containers.setdefault(container, ContainerWormState())
            for tag in tags:
                state.tags.setdefault(tag.lower(), _iso(datetime.now(UTC)))

    def enable_version_level_worm(self, container: str) -> None:
        """Report version-level WORM as enabled on ``container`` (header only; see docstring)."""
        with self._lock:
            self.containers.setdefault(container, ContainerWormState()).version_level_worm = True

    # -- data plane ----------------------------------------------------------------------------

    def data_plane(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Reply:
        """Answer one data-plane request: refuse, answer locally, or forward to Azurite."""
        split = urlsplit(path)
        query = {k.lower(): v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        parts = unquote(split.path).lstrip("/").split("/", 2)
        container = parts[1] if len(parts) > 1 else ""
        blob = parts[2] if len(parts) > 2 else ""
        comp = query.get("comp", "").lower()
        if blob:
            local = self._blob_request(method, comp, container, blob, headers)
            if local is not None:
                return local
            reply = self._forward(method, path, headers, body)
            self._after_blob(method, comp, container, blob, headers, reply)
            return reply
        if container and query.get("restype") == "container" and not comp:
            if method == "DELETE":
                refusal = self._container_delete_refusal(container)
                if refusal:
                    return self.storage_error(409, refusal, headers)
            reply = self._forward(method, path, headers, body)
            if method in ("GET", "HEAD") and reply.status == 200:
                self._add_container_headers(container, reply)
            return reply
        return self._forward(method, path, headers, body)

    def _blob_request(self, method: str, comp: str, container: str, blob: str,
                      headers: dict[str, str]) -> Reply | None:
        if comp in ("immutabilitypolicies", "legalhold"):
            from tests.doubles.azure_worm_rules import blob_policy_call

            return blob_policy_call(self, method, comp, container, blob, headers)
        if method == "PUT" and not comp and headers.get("if-none-match") == "*":
            return None  # Azurite answers 409 BlobAlreadyExists if it exists
        action = self._action(method, comp)
        if action is None:
            return None
        code = self.refusal(action, container, blob)
        return None if code is None else self.storage_error(409, code, headers)

    @staticmethod
    def _action(method: str, comp: str) -> str | None:
        if method == "DELETE" and not comp:
            return "delete"
        if method != "PUT":
            return None
        if comp in ("", "blocklist"):
            return "overwrite"
        if comp == "appendblock":
            return "append"
        return "modify" if comp in _MODIFY else None

    def blob_properties(self, container: str, blob: str) -> BlobProperties | None:
        """Azurite's properties of a blob, or None when it does not exist."""
        try:
            return self._service.get_blob_client(container, blob).get_blob_properties()
        except ResourceNotFoundError:
            return None

    def azurite_container_exists(self, container: str) -> bool:
        """Whether Azurite has this container."""
        return bool(self._service.get_container_client(container).exists())

    def refusal(self, action: str, container: str, blob: str) -> str | None:
        """The error code Azure would refuse ``action`` on this blob with, or None.

        ``action`` is overwrite, modify, delete or append (azure.md 1.6).
        """
        with self._lock:
            cstate = self.containers.get(container, ContainerWormState())
            bstate = self.blobs.get((container, blob), BlobWormState())
            if cstate.policy is None and not cstate.tags and bstate.until is None \
                    and not bstate.legal_hold:
                return None
        props = self.blob_properties(container, blob)
        if props is None:
            return None  # creating a new blob is always allowed
        appendable = props.blob_type == "AppendBlob"
        if bstate.legal_hold or cstate.tags:
            if action == "append" and appendable and not bstate.legal_hold \
                    and cstate.hold_append_all:
                return None
            return "BlobImmutableDueToLegalHold"
        policy = cstate.policy
        if action == "append" and appendable and policy is not None \
                and (policy.append or policy.append_all) and bstate.until is None:
            return None
        if action != "delete":
            return "BlobImmutableDueToPolicy"  # even after expiry: never overwritten (1.1)
        now = self.now()
        active = bstate.until is not None and now < bstate.until
        if policy is not None:
            start = props.last_modified if appendable and (policy.append or policy.append_all) \
                else props.creation_time
            active = active or now < start + timedelta(days=policy.days)
        return "BlobImmutableDueToPolicy" if active else None

    def _after_blob(self, method: str, comp: str, container: str, blob: str,
                    headers: dict[str, str], reply: Reply) -> None:
        if not 200 <= reply.status < 300:
            return
        with self._lock:
            if method == "DELETE" and not comp:
                self.blobs.pop((container, blob), None)
            elif method == "PUT" and comp in ("", "blocklist"):
                until = headers.get("x-ms-immutability-policy-until-date")
                hold = headers.get("x-ms-legal-hold", "").lower() == "true"
                if until or hold:
                    self.blobs[(container, blob)] = BlobWormState(
                        until=parsedate_to_datetime(until) if until else None,
                        mode=headers.get("x-ms-immutability-policy-mode", "Unlocked").title()
                        if until else "",
                        legal_hold=hold,
                    )
            elif method in ("GET", "HEAD") and not comp:
                state = self.blobs.get((container, blob))
                if state is not None:
                    reply.headers.extend(blob_state_headers(state))

    def _container_delete_refusal(self, container: str) -> str | None:
        with self._lock:
            state = self.containers.get(container)
            if state is None:
                return None
            if state.tags:
                return "ContainerHasLegalHold"
            if state.policy is not None and state.policy.state == "Locked":
                return "ContainerImmutabilityPolicyLocked"
            return None

    def _add_container_headers(self, container: str, reply: Reply) -> None:
        with self._lock:
            state = self.containers.get(container, ContainerWormState())
            values = {
                "x-ms-has-immutability-policy": state.policy is not None,
                "x-ms-has-legal-hold": bool(state.tags),
                "x-ms-immutable-storage-with-versioning-enabled": state.version_level_worm,
            }
        reply.headers = [(k, v) for k, v in reply.headers if k.lower() not in values]
        reply.headers.extend((k, "true" if v else "false") for k, v in values.items())

    def storage_error(self, status: int, code: str, request_headers: dict[str, str],
                      message: str = "") -> Reply:
        """An error reply shaped as Azure Storage sends it (XML body, x-ms-error-code)."""
        request_id = str(uuid.uuid4())
        text = message or _MESSAGES.get(code, code)
        body = (
            '<?xml version="1.0" encoding="utf-8"?><Error><Code>'
            f"{code}</Code><Message>{text}\nRequestId:{request_id}\n"
            f"Time:{_iso(datetime.now(UTC))}</Message></Error>"
        ).encode()
        return Reply(status, [
            ("Content-Type", "application/xml"), ("x-ms-error-code", code),
            ("x-ms-request-id", request_id),
            ("x-ms-version", request_headers.get("x-ms-version", "2026-06-06")),
            ("Date", format_datetime(datetime.now(UTC), usegmt=True)),
        ], body)

    def _forward(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Reply:
        conn = http.client.HTTPConnection(self.azurite.host, self.azurite.port, timeout=30)
        try:
            # Shared Key signs the path, query, x-ms-* headers and Content-Length, never
            # the Host, so the request stays valid with only Host changed.
            forwarded = {k: v for k, v in headers.items()
                         if k not in ("host", "connection", "transfer-encoding")}
            forwarded["host"] = f"{self.azurite.host}:{self.azurite.port}"
            if "content-length" in headers or "transfer-encoding" in headers:
                forwarded["content-length"] = str(len(body))
            conn.request(method, path, body=body or None, headers=forwarded)
            response = conn.getresponse()
            data = response.read()
            kept = [(k, v) for k, v in response.getheaders()
                    if k.lower() not in ("transfer-encoding", "connection")]
        finally:
            conn.close()
        if method != "HEAD":
            kept = [(k, v) for k, v in kept if k.lower() != "content-length"]
            kept.append(("Content-Length", str(len(data))))
        return Reply(response.status, kept, data)

    # -- control plane (ARM) -----------------------------------------------------------------

    def arm(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Reply:
        """Answer one ARM request (see module docstring)."""
        from tests.doubles.azure_worm_rules import arm_call

        try:
            payload, etag = arm_call(self, method, _arm_route(path, headers), headers, body)
        except ArmError as exc:
            error = {"error": {"code": exc.code, "message": exc.message}}
            return Reply(exc.status, [("Content-Type", "application/json"),
                                      ("x-ms-request-id", str(uuid.uuid4()))],
                         orjson.dumps(error))
        out = [("Content-Type", "application/json"), ("x-ms-request-id", str(uuid.uuid4()))]
        if etag:
            out.append(("ETag", etag))
        return Reply(200, out, orjson.dumps(payload))

    @property
    def lock(self) -> threading.RLock:
        """The lock guarding the WORM state."""
        return self._lock

    def _tls_context(self) -> ssl.SSLContext:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "auditseal ARM double")])
        start = datetime.now(UTC) - timedelta(minutes=5)
        cert = (
            x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(start + timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
                critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256())
        )
        self.ca_bundle.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path = self._tmp / "arm-double.key"
        key_path.write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.ca_bundle, key_path)
        return context


def _arm_route(path: str, headers: dict[str, str]) -> re.Match[str]:
    """Authenticate and parse an ARM request path (raises ArmError)."""
    if headers.get("authorization", "") != f"Bearer {ARM_TOKEN}":
        raise ArmError(401, "AuthenticationFailed",
                       "Authentication failed. The 'Authorization' header is missing or its "
                       "token is not accepted.")
    split = urlsplit(path)
    if "api-version" not in parse_qs(split.query):
        raise ArmError(400, "MissingApiVersionParameter",
                       "The api-version query parameter (?api-version=) is required.")
    match = _ARM_PATH.match(split.path)
    if match is None:
        raise ArmError(404, "InvalidResourceType", f"no such resource: {split.path}")
    return match


def blob_state_headers(state: BlobWormState) -> Iterator[tuple[str, str]]:
    """Get Blob Properties headers for a blob's own policy and hold (azure.md 1.7)."""
    if state.until is not None:
        yield "x-ms-immutability-policy-until-date", format_datetime(state.until, usegmt=True)
        yield "x-ms-immutability-policy-mode", state.mode
    yield "x-ms-legal-hold", "true" if state.legal_hold else "false"


class _Handler(BaseHTTPRequestHandler):
    """Hands each request to the double: its data plane or its ARM API."""

    protocol_version = "HTTP/1.1"
    server: _Server

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            body = self._read_chunked()
        headers = {k.lower(): v for k, v in self.headers.items()}
        double = self.server.double
        answer = double.arm if self.server.plane == "arm" else double.data_plane
        reply = answer(self.command, self.path, headers, body)
        self.send_response(reply.status)
        names = {k.lower() for k, _ in reply.headers}
        for name, value in reply.headers:
            self.send_header(name, value)
        if "content-length" not in names:
            self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(reply.body)

    def _read_chunked(self) -> bytes:
        chunks: list[bytes] = []
        while True:
            size = int(self.rfile.readline().split(b";")[0], 16)
            if size == 0:
                self.rfile.readline()
                return b"".join(chunks)
            chunks.append(self.rfile.read(size))
            self.rfile.readline()

    do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = do_OPTIONS = _handle  # noqa: N815

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read results, not access logs."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, double: AzureWormDouble, plane: str) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.double = double
        self.plane = plane


def serve(double: AzureWormDouble, plane: str, context: ssl.SSLContext | None) -> _Server:
    """Start one server of the double in a background thread."""
    server = _Server(double, plane)
    if context is not None:
        server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, name=f"worm-double-{plane}",
                     daemon=True).start()
    return server
