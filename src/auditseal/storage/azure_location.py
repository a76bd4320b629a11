"""``azblob://`` URLs: where an Azure Blob log lives and how we authenticate to it.

``auditseal.log.location`` imports this module for the ``azblob`` scheme only, so other
logs never load the Azure SDK. URL forms::

    azblob://CONTAINER[/PREFIX][?OPTIONS]
        account and endpoint from AUDITSEAL_AZURE_CONNECTION_STRING (also how Azurite
        is reached: its connection string names its endpoint)
    azblob://ACCOUNT.blob.core.windows.net/CONTAINER[/PREFIX][?OPTIONS]
        https://ACCOUNT.blob.core.windows.net (any host with a dot: sovereign clouds,
        private endpoints)
    azblob://HOST:PORT/ACCOUNT/CONTAINER[/PREFIX][?OPTIONS]
        an emulator's path-style endpoint, http://HOST:PORT/ACCOUNT (HOST an IP address
        or localhost), e.g. Azurite at 127.0.0.1:10000

OPTIONS (query parameters):

* ``head=HEADCONTAINER[/BLOB]``: where the mutable head (the tlog-tiles ``checkpoint``)
  lives. Default: container ``<CONTAINER>-head``, blob ``<PREFIX>/checkpoint`` (or
  ``checkpoint``). Keep it out of the WORM container: a locked policy refuses its every
  update (``StorageRefused``).
* ``head_account=ACCOUNT``: the head lives in another storage account of the same cloud
  (``https://ACCOUNT.<the data account's endpoint suffix>``), so that the people who may
  move the head need no rights on the sealed data, and the other way round. Its
  credentials: ``AUDITSEAL_AZURE_HEAD_ACCOUNT_KEY``, ``AUDITSEAL_AZURE_HEAD_SAS_TOKEN``,
  else ``DefaultAzureCredential``. Or set ``AUDITSEAL_AZURE_HEAD_CONNECTION_STRING``: the
  head's account and endpoint come from it (any endpoint, Azurite included).
* ``retention_days=N`` and ``legal_hold=true``: per-blob (version-level) immutability on
  every sealed blob (``AzureImmutabilityConfig``).
* ``workers=N``: concurrent uploads per publish (default 16).

Credentials, first found wins: ``AUDITSEAL_AZURE_CONNECTION_STRING``;
``AUDITSEAL_AZURE_ACCOUNT_KEY`` (with the account from the URL);
``AUDITSEAL_AZURE_SAS_TOKEN``; else ``DefaultAzureCredential`` from azure-identity
(managed identity in production, ``az login`` on a workstation). ``describe`` names the
kind of credential, never its value.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from azure.core.credentials import AzureNamedKeyCredential, AzureSasCredential
from azure.core.pipeline.transport import RequestsTransport
from azure.storage.blob import BlobServiceClient
from requests import Session
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from auditseal.errors import ConfigError
from auditseal.storage.azure_blob import (
    DEFAULT_WORKERS,
    AzureBlobHeadStore,
    AzureBlobObjectStore,
    AzureImmutabilityConfig,
)
from auditseal.storage.azure_errors import AzureRetryConfig, RequestCounter
from auditseal.storage.base import validate_key

SCHEME = "azblob"
CONNECTION_STRING_ENV = "AUDITSEAL_AZURE_CONNECTION_STRING"
ACCOUNT_KEY_ENV = "AUDITSEAL_AZURE_ACCOUNT_KEY"
SAS_TOKEN_ENV = "AUDITSEAL_AZURE_SAS_TOKEN"  # noqa: S105 -- a variable name, not a secret
HEAD_CONNECTION_STRING_ENV = "AUDITSEAL_AZURE_HEAD_CONNECTION_STRING"
HEAD_ACCOUNT_KEY_ENV = "AUDITSEAL_AZURE_HEAD_ACCOUNT_KEY"
HEAD_SAS_TOKEN_ENV = "AUDITSEAL_AZURE_HEAD_SAS_TOKEN"  # noqa: S105 -- a variable name
HEAD_SUFFIX = "-head"
_CONTAINER = re.compile(r"^(?!.*--)[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
_ACCOUNT = re.compile(r"^[a-z0-9]{3,24}$")
_OPTIONS = {"head", "head_account", "retention_days", "legal_hold", "workers"}
_TRUE, _FALSE = {"true", "1", "yes"}, {"false", "0", "no"}


@dataclass(frozen=True)
class AzureBlobURL:
    """A parsed ``azblob://`` URL (see the module docstring).

    Attributes:
        container: the data container (may carry a WORM policy).
        prefix: the log's folder in it ("" for the whole container).
        head_container: the head's container.
        head_blob: the head's blob name.
        head_account: the head's own storage account (None: the data account's).
        host: "ACCOUNT.blob.core.windows.net" or "HOST:PORT"; None: from the connection string.
        account: the account named by the URL (None with the short form).
        immutability: per-blob immutability to request.
        workers: concurrent uploads per publish.
    """

    container: str
    prefix: str
    head_container: str
    head_blob: str
    host: str | None = None
    account: str | None = None
    immutability: AzureImmutabilityConfig = field(default_factory=AzureImmutabilityConfig)
    workers: int = DEFAULT_WORKERS
    head_account: str | None = None

    @property
    def endpoint(self) -> str | None:
        """The account's blob endpoint, when the URL names it."""
        if self.host is None:
            return None
        if _is_emulator_host(self.host):
            return f"http://{self.host}/{self.account}"
        return f"https://{self.host}"


def parse_url(url: str) -> AzureBlobURL:
    """Parse an ``azblob://`` URL; no network, no credentials.

    Raises:
        ConfigError: the URL is malformed; the message says what to write instead.
    """
    parts = urlsplit(url)
    if parts.scheme != SCHEME or not parts.netloc:
        raise ConfigError(f"{url}: expected azblob://CONTAINER[/PREFIX] or "
                          "azblob://ACCOUNT.blob.core.windows.net/CONTAINER[/PREFIX]")
    segments = [s for s in parts.path.split("/") if s]
    host: str | None = None
    account: str | None = None
    if _is_emulator_host(parts.netloc):
        host = parts.netloc
        account, segments = (segments[0], segments[1:]) if segments else (None, [])
        if account is None:
            raise ConfigError(f"{url}: an emulator URL names the account: "
                              "azblob://HOST:PORT/ACCOUNT/CONTAINER[/PREFIX]")
    elif "." in parts.netloc:
        host = parts.netloc.lower()
        account = host.split(".", 1)[0]
    else:
        segments = [parts.netloc, *segments]
    if account is not None and not _ACCOUNT.match(account):
        raise ConfigError(f"{url}: {account!r} is not a storage account name "
                          "(3-24 lowercase letters and digits)")
    if not segments:
        raise ConfigError(f"{url}: no container named")
    container, prefix = _container(url, segments[0]), "/".join(segments[1:])
    if prefix:
        _key(url, prefix, "prefix")
    options = _options(url, parts.query)
    head_container, head_blob = _head(url, options.get("head"), container, prefix)
    head_account = options.get("head_account")
    if head_account is not None and not _ACCOUNT.match(head_account):
        raise ConfigError(f"{url}: head_account {head_account!r} is not a storage account name "
                          "(3-24 lowercase letters and digits)")
    retention = _int(url, options, "retention_days")
    workers = _int(url, options, "workers")
    try:
        immutability = AzureImmutabilityConfig(
            retention_days=retention, legal_hold=_bool(url, options, "legal_hold"))
    except ConfigError as exc:
        raise ConfigError(f"{url}: {exc}") from None
    if workers is not None and not 1 <= workers <= 256:
        raise ConfigError(f"{url}: workers must be between 1 and 256")
    return AzureBlobURL(container=container, prefix=prefix, head_container=head_container,
                        head_blob=head_blob, host=host, account=account,
                        immutability=immutability, workers=workers or DEFAULT_WORKERS,
                        head_account=head_account)


def client_options(retry: AzureRetryConfig, counter: RequestCounter, pool_size: int
                   ) -> dict[str, Any]:
    """Keyword arguments for a ``BlobServiceClient``: our retry policy, request counting,
    and a connection pool as large as the upload thread pool (requests' default of 10
    would open and drop a connection per extra thread)."""
    session = Session()
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size,
                          max_retries=Retry(total=False, redirect=False, raise_on_status=False))
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    transport = RequestsTransport(session=session, connection_timeout=retry.connection_timeout_s,
                                  read_timeout=retry.read_timeout_s)
    return {"retry_policy": retry.policy(), "raw_request_hook": counter,
            "transport": transport}


class AzureBlobLocation:
    """An Azure Blob log: the ``RemoteStorage`` that ``auditseal.log.location`` expects."""

    def __init__(self, url: AzureBlobURL, *, env: Mapping[str, str] | None = None,
                 retry: AzureRetryConfig | None = None) -> None:
        """Pick the credentials from ``env`` (default: the process environment)."""
        self.url = url
        self.retry = retry or AzureRetryConfig()
        env = os.environ if env is None else env
        self._connection_string = env.get(CONNECTION_STRING_ENV) or None
        self._key = env.get(ACCOUNT_KEY_ENV) or None
        self._sas = (env.get(SAS_TOKEN_ENV) or "").lstrip("?") or None
        self.account, self.endpoint = self._account_and_endpoint()
        self._head_credentials = _HeadCredentials.from_env(env)
        self.head_endpoint = self._head_endpoint()
        self._objects: AzureBlobObjectStore | None = None
        self._head: AzureBlobHeadStore | None = None

    @property
    def credential_kind(self) -> str:
        """Which credential is used (never its value)."""
        if self._connection_string:
            return "connection string"
        if self._key:
            return "account key"
        return "SAS token" if self._sas else "DefaultAzureCredential"

    @property
    def state_name(self) -> str:
        """``ACCOUNT/CONTAINER[/PREFIX]``, path-safe."""
        name = "/".join(p for p in (self.account, self.url.container, self.url.prefix) if p)
        return re.sub(r"[^A-Za-z0-9._/-]", "_", name)

    def object_store(self) -> AzureBlobObjectStore:
        """The data container's write-once objects (one store per location)."""
        if self._objects is None:
            counter = RequestCounter()
            service = self._service(counter, self.url.workers)
            self._objects = AzureBlobObjectStore(
                service.get_container_client(self.url.container), self.url.prefix,
                immutability=self.url.immutability, max_workers=self.url.workers,
                counter=counter)
        return self._objects

    def head_store(self) -> AzureBlobHeadStore:
        """The head blob, in its own container (and maybe its own account)."""
        if self._head is None:
            counter = RequestCounter()
            service = (self._service(counter, 2) if self.head_endpoint is None
                       else self._head_service(counter))
            self._head = AzureBlobHeadStore(
                service.get_container_client(self.url.head_container), self.url.head_blob,
                counter=counter)
        return self._head

    def describe(self) -> str:
        """Endpoint, container, prefix and head; the kind of credential, not the secret."""
        where = "/".join(p for p in (self.endpoint, self.url.container, self.url.prefix) if p)
        extra = (f"; immutability {self.url.immutability.describe()}"
                 if self.url.immutability.enabled else "")
        head = "/".join(p for p in (self.head_endpoint, self.url.head_container,
                                    self.url.head_blob) if p)
        return (f"azblob {where} (head {head}; credentials: {self.credential_kind}{extra})")

    def close(self) -> None:
        """Close the stores' connections and threads."""
        for store in (self._objects, self._head):
            if store is not None:
                store.close()
        self._objects = self._head = None

    def _account_and_endpoint(self) -> tuple[str, str]:
        if self._connection_string:
            account, endpoint = _connection_target(self._connection_string, CONNECTION_STRING_ENV)
            if self.url.account is not None and self.url.account != account:
                raise ConfigError(
                    f"the URL names account {self.url.account!r} but {CONNECTION_STRING_ENV} "
                    f"is for {account!r}; unset it or use azblob://{self.url.container}/...")
            return account, endpoint
        if self.url.endpoint is None or self.url.account is None:
            raise ConfigError(
                f"azblob://{self.url.container}: the short form takes the account from "
                f"{CONNECTION_STRING_ENV}, which is not set; set it or write "
                "azblob://ACCOUNT.blob.core.windows.net/CONTAINER[/PREFIX]")
        return self.url.account, self.url.endpoint

    def _head_endpoint(self) -> str | None:
        """The head account's endpoint; None when the head shares the data account."""
        head = self._head_credentials
        if head.connection_string:
            return _connection_target(head.connection_string, HEAD_CONNECTION_STRING_ENV)[1]
        if self.url.head_account is None:
            return None
        scheme, _, host = self.endpoint.partition("://")
        if _is_emulator_host(host.split("/", 1)[0]):
            raise ConfigError(f"head_account={self.url.head_account}: an emulator has no "
                              f"per-account host names; set {HEAD_CONNECTION_STRING_ENV}")
        suffix = host.split(".", 1)[1] if "." in host else "blob.core.windows.net"
        return f"{scheme}://{self.url.head_account}.{suffix}"

    def _head_service(self, counter: RequestCounter) -> BlobServiceClient:
        options = client_options(self.retry, counter, 2)
        head = self._head_credentials
        if head.connection_string:
            return BlobServiceClient.from_connection_string(head.connection_string, **options)
        assert self.head_endpoint is not None
        return BlobServiceClient(self.head_endpoint, credential=_credential(
            str(self.url.head_account), head.key, head.sas), **options)

    def _service(self, counter: RequestCounter, pool_size: int) -> BlobServiceClient:
        options = client_options(self.retry, counter, pool_size)
        if self._connection_string:
            return BlobServiceClient.from_connection_string(self._connection_string, **options)
        return BlobServiceClient(self.endpoint, credential=_credential(
            self.account, self._key, self._sas), **options)


def _connection_target(connection_string: str, variable: str) -> tuple[str, str]:
    """The account and blob endpoint a connection string names (no network)."""
    try:
        client = BlobServiceClient.from_connection_string(connection_string)
    except ValueError:
        raise ConfigError(f"{variable} is not a valid storage connection string") from None
    return str(client.account_name), str(client.primary_endpoint).split("?", 1)[0].rstrip("/")


def _credential(account: str, key: str | None, sas: str | None) -> Any:
    """An account key, else a SAS token, else ``DefaultAzureCredential``."""
    if key:
        return AzureNamedKeyCredential(account, key)
    if sas:
        return AzureSasCredential(sas)
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential()


@dataclass(frozen=True)
class _HeadCredentials:
    """The head account's own credentials, when it has its own account."""

    connection_string: str | None
    key: str | None
    sas: str | None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> _HeadCredentials:
        return cls(env.get(HEAD_CONNECTION_STRING_ENV) or None,
                   env.get(HEAD_ACCOUNT_KEY_ENV) or None,
                   (env.get(HEAD_SAS_TOKEN_ENV) or "").lstrip("?") or None)


def open_remote(url: str) -> AzureBlobLocation:
    """Open an ``azblob://`` log (the hook ``auditseal.log.location`` calls).

    Raises:
        ConfigError: the URL is malformed or names no usable account.
    """
    return AzureBlobLocation(parse_url(url))


# -- parsing helpers ---------------------------------------------------------------------


def _is_emulator_host(netloc: str) -> bool:
    host = netloc.rsplit(":", 1)[0] if netloc.count(":") == 1 else netloc
    if host.lower() == "localhost":
        return True
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def _container(url: str, name: str) -> str:
    if not _CONTAINER.match(name):
        raise ConfigError(f"{url}: {name!r} is not a container name (3-63 lowercase letters, "
                          "digits and single hyphens, starting and ending with a letter or digit)")
    return name


def _key(url: str, text: str, what: str) -> str:
    try:
        return validate_key(text)
    except Exception as exc:
        raise ConfigError(f"{url}: {what} {text!r}: {exc}") from None


def _options(url: str, query: str) -> dict[str, str]:
    parsed = parse_qs(query, keep_blank_values=True, strict_parsing=False)
    unknown = sorted(set(parsed) - _OPTIONS)
    if unknown:
        raise ConfigError(f"{url}: unknown option(s) {', '.join(unknown)} "
                          f"(known: {', '.join(sorted(_OPTIONS))})")
    return {name: values[-1] for name, values in parsed.items()}


def _head(url: str, value: str | None, container: str, prefix: str) -> tuple[str, str]:
    default_blob = f"{prefix}/checkpoint" if prefix else "checkpoint"
    if value is None:
        name = container + HEAD_SUFFIX
        if len(name) > 63:
            raise ConfigError(f"{url}: container name too long to derive {name!r} for the "
                              "head; name one with head=CONTAINER[/BLOB]")
        return name, default_blob
    head_container, _, blob = value.strip("/").partition("/")
    return _container(url, head_container), _key(url, blob, "head blob") if blob else default_blob


def _int(url: str, options: Mapping[str, str], name: str) -> int | None:
    text = options.get(name)
    if text is None:
        return None
    if not text.isdigit():
        raise ConfigError(f"{url}: {name} must be a whole number, got {text!r}")
    return int(text)


def _bool(url: str, options: Mapping[str, str], name: str) -> bool:
    text = options.get(name, "false").lower()
    if text not in _TRUE | _FALSE:
        raise ConfigError(f"{url}: {name} must be true or false, got {text!r}")
    return text in _TRUE
