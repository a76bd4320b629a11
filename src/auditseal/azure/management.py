"""Container immutability through Azure Resource Manager: retention policies and legal holds.

The data plane can only *see* that a container has a policy; setting, locking and extending
a container's time-based retention policy and its legal-hold tags are control-plane (ARM)
operations of ``azure-mgmt-storage``'s ``blob_containers`` (reference notes 1.3, 1.4, 1.9):

* ``create_or_update_immutability_policy``: an Unlocked policy (1 to 146,000 days);
* ``lock_immutability_policy``: Unlocked -> Locked, irreversible, needs the policy's ETag;
* ``extend_immutability_policy``: Locked only, longer only, at most 5 times per container;
* ``set_legal_hold`` / ``clear_legal_hold``: 1-10 tags of 3-23 alphanumerics, lower-cased.

The ETag methods changed spelling across releases: 2x releases take ``if_match=etag``, the
TypeSpec-generated ones (25.x) take ``etag=..., match_condition=MatchConditions.IfNotModified``
(1.9 "Signature churn"). ``_etag_kwargs`` inspects the installed method and uses whichever
it has. SDK failures become auditseal errors here, once.

Credentials: ``DefaultAzureCredential`` unless ``AUDITSEAL_AZURE_ARM_TOKEN`` holds an access
token (``az account get-access-token --query accessToken``). ``AUDITSEAL_AZURE_ARM_ENDPOINT``
(or ``endpoint=``) replaces the public-cloud ARM URL (sovereign clouds, test doubles); trust
for a private certificate comes from ``REQUESTS_CA_BUNDLE`` as for any requests client.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from azure.core import MatchConditions
from azure.core.credentials import AccessToken, TokenCredential
from azure.core.exceptions import AzureError, ClientAuthenticationError, HttpResponseError
from azure.mgmt.storage import StorageManagementClient
from azure.mgmt.storage.models import ImmutabilityPolicy, LegalHold
from azure.storage.blob import ContainerClient

from auditseal.errors import (
    ConfigError,
    StorageConflict,
    StorageError,
    StorageRefused,
    StorageUnavailable,
)
from auditseal.storage.azure_errors import is_not_implemented, translate

ARM_ENDPOINT_ENV = "AUDITSEAL_AZURE_ARM_ENDPOINT"
ARM_TOKEN_ENV = "AUDITSEAL_AZURE_ARM_TOKEN"  # noqa: S105 -- a variable name, not a secret
MIN_DAYS, MAX_DAYS = 1, 146_000
MAX_EXTENSIONS = 5
_TAG = re.compile(r"^[A-Za-z0-9]{3,23}$")
_T = TypeVar("_T")


@dataclass(frozen=True)
class ContainerPolicy:
    """A container's time-based retention policy as ARM reports it.

    Attributes:
        days: immutabilityPeriodSinceCreationInDays; 0 means no policy.
        state: "Unlocked" or "Locked".
        etag: the policy's ETag, quoted as ARM sends it.
        allow_protected_append_writes: append blobs may grow under the policy.
        allow_protected_append_writes_all: append and block blobs may grow (DFS only).
        extensions: how many times a locked policy was extended (from its update history;
            None when the history was not returned).
    """

    days: int
    state: str
    etag: str
    allow_protected_append_writes: bool = False
    allow_protected_append_writes_all: bool = False
    extensions: int | None = None

    @property
    def exists(self) -> bool:
        """Whether the container has a policy at all."""
        return self.days > 0

    @property
    def locked(self) -> bool:
        """Locked: cannot be shortened or deleted (what compliance requires)."""
        return self.exists and self.state.lower() == "locked"


@dataclass(frozen=True)
class LegalHoldState:
    """A container's legal hold: its tags (lower case), empty when there is none."""

    tags: tuple[str, ...]

    @property
    def active(self) -> bool:
        """Whether any tag holds the container."""
        return bool(self.tags)


class StaticTokenCredential:
    """A ``TokenCredential`` handing out one access token obtained elsewhere."""

    def __init__(self, token: str, lifetime_s: int = 3600) -> None:
        """Use ``token`` for ``lifetime_s`` seconds from now."""
        if not token.strip():
            raise ConfigError(f"{ARM_TOKEN_ENV} is empty")
        self._token = token.strip()
        self._expires = int(time.time()) + lifetime_s

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:  # noqa: ARG002
        """The token (scopes are the caller's business; ARM checks the audience)."""
        return AccessToken(self._token, self._expires)


def management_client(subscription_id: str, *, endpoint: str | None = None,
                      credential: TokenCredential | None = None,
                      env: Mapping[str, str] | None = None) -> StorageManagementClient:
    """A ``StorageManagementClient`` for ``subscription_id`` (see module docstring).

    Raises:
        ConfigError: no subscription given.
    """
    env = os.environ if env is None else env
    if not subscription_id:
        raise ConfigError("an Azure subscription id is needed for management calls "
                          "(--subscription or AUDITSEAL_AZURE_SUBSCRIPTION_ID)")
    if credential is None:
        token = env.get(ARM_TOKEN_ENV)
        if token:
            credential = StaticTokenCredential(token)
        else:
            from azure.identity import DefaultAzureCredential

            credential = DefaultAzureCredential()
    base_url = endpoint or env.get(ARM_ENDPOINT_ENV) or None
    return StorageManagementClient(credential, subscription_id, base_url=base_url,
                                   retry_total=2)


class ContainerImmutability:
    """Read and change the immutability of containers in one storage account.

    Args:
        client: a ``StorageManagementClient`` (``management_client``).
        resource_group: the account's resource group.
        account: the storage account name.
    """

    def __init__(self, client: StorageManagementClient, resource_group: str,
                 account: str) -> None:
        """Manage containers of ``account`` in ``resource_group``."""
        if not resource_group or not account:
            raise ConfigError("management calls need the resource group and the storage "
                              "account (--resource-group, --account)")
        self._ops: Any = client.blob_containers
        self.resource_group = resource_group
        self.account = account

    def get_policy(self, container: str) -> ContainerPolicy:
        """The container's time-based policy (``days == 0`` when it has none).

        The extension count comes from the container's policy update history, which ARM
        returns with the container, not with the policy.
        """
        policy = _policy(self._call(container, self._ops.get_immutability_policy))
        if not policy.locked:
            return policy
        found = self._call(container, self._ops.get)
        history = getattr(getattr(found, "immutability_policy", None), "update_history", None)
        if history is None:
            return policy
        extensions = sum(1 for item in history if _update_kind(item) == "extend")
        return dataclasses.replace(policy, extensions=extensions)

    def set_policy(self, container: str, days: int, *,
                   allow_protected_append_writes: bool = False) -> ContainerPolicy:
        """Create or change the container's Unlocked policy.

        Raises:
            StorageRefused: the policy is locked (only ``extend_policy`` may change it).
        """
        _check_days(days)
        current = self.get_policy(container)
        params = _policy_params(days, allow_protected_append_writes=allow_protected_append_writes)
        extra = _etag_kwargs(self._ops.create_or_update_immutability_policy, current.etag) \
            if current.exists else {}
        return _policy(self._call(container, self._ops.create_or_update_immutability_policy,
                                  parameters=params, **extra))

    def lock_policy(self, container: str) -> ContainerPolicy:
        """Lock the container's policy. Irreversible: it can then only be extended.

        Raises:
            ConfigError: the container has no policy to lock.
        """
        current = self.get_policy(container)
        if not current.exists:
            raise ConfigError(f"container {container} has no retention policy to lock; set one "
                              "first with 'auditseal azure retention set --days N'")
        if current.locked:
            return current
        method = self._ops.lock_immutability_policy
        return _policy(self._call(container, method, **_etag_kwargs(method, current.etag)))

    def extend_policy(self, container: str, days: int) -> ContainerPolicy:
        """Lengthen a locked policy to ``days`` (Azure allows 5 extensions per container).

        Raises:
            ConfigError: no locked policy, or ``days`` is not longer than the current one.
        """
        _check_days(days)
        current = self.get_policy(container)
        if not current.locked:
            raise ConfigError(f"container {container}: only a locked policy is extended; an "
                              "unlocked one is changed with 'auditseal azure retention set'")
        if days <= current.days:
            raise ConfigError(f"container {container}: a locked policy can only grow; {days} "
                              f"days is not more than the current {current.days}")
        method = self._ops.extend_immutability_policy
        params = _policy_params(days)
        return _policy(self._call(container, method, parameters=params,
                                  **_etag_kwargs(method, current.etag)))

    def get_legal_hold(self, container: str) -> LegalHoldState:
        """The container's legal-hold tags."""
        found = self._call(container, self._ops.get)
        hold = getattr(found, "legal_hold", None)
        tags = getattr(hold, "tags", None) or []
        return LegalHoldState(tuple(sorted(str(getattr(t, "tag", t)).lower() for t in tags)))

    def set_legal_hold(self, container: str, tags: list[str]) -> LegalHoldState:
        """Add legal-hold ``tags`` (Azure keeps the existing ones)."""
        hold = self._call(container, self._ops.set_legal_hold,
                          legal_hold=LegalHold(tags=_check_tags(tags)))
        return LegalHoldState(tuple(sorted(str(t).lower() for t in hold.tags or [])))

    def clear_legal_hold(self, container: str, tags: list[str]) -> LegalHoldState:
        """Remove legal-hold ``tags``; the others stay."""
        hold = self._call(container, self._ops.clear_legal_hold,
                          legal_hold=LegalHold(tags=_check_tags(tags)))
        return LegalHoldState(tuple(sorted(str(t).lower() for t in hold.tags or [])))

    def _call(self, container: str, method: Callable[..., _T], **kwargs: Any) -> _T:
        try:
            return method(self.resource_group, self.account, container, **kwargs)
        except AzureError as exc:
            raise translate_management(exc, f"{self.account}/{container}") from exc


def set_blob_legal_hold(container: ContainerClient, blob: str, hold: bool) -> bool:
    """Set or clear the legal hold of one blob (data plane; needs version-level WORM).

    Returns the hold as the service reports it.

    Raises:
        StorageRefused, StorageError: as the service answered; ConfigError when the storage
            does not implement per-blob holds (Azurite).
    """
    try:
        answer = container.get_blob_client(blob).set_legal_hold(hold)
    except AzureError as exc:
        if is_not_implemented(exc):
            raise ConfigError(f"{blob}: this storage does not implement per-blob legal holds "
                              "(Azurite answers 501); use a real account with version-level "
                              "WORM enabled") from exc
        raise translate(exc, blob) from exc
    return bool(answer.get("legal_hold", hold))


def _policy_params(days: int, **flags: bool) -> ImmutabilityPolicy:
    # The flattened keywords work in every SDK generation (msrest models take them, the
    # TypeSpec ones flatten them into ``properties``); only the type stubs disagree.
    fields: dict[str, Any] = {"immutability_period_since_creation_in_days": days, **flags}
    return ImmutabilityPolicy(**fields)


def _etag_kwargs(method: Callable[..., Any], etag: str) -> dict[str, Any]:
    """``if_match=etag`` for older SDKs, ``etag=, match_condition=`` for newer ones."""
    try:
        parameters = inspect.signature(method).parameters
    except (TypeError, ValueError):
        parameters = {}  # type: ignore[assignment]
    if "if_match" in parameters:
        return {"if_match": etag}
    return {"etag": etag, "match_condition": MatchConditions.IfNotModified}


def translate_management(exc: AzureError, where: str) -> StorageError | ConfigError:
    """The auditseal error for a failed ARM call (raise it ``from exc``)."""
    status = getattr(exc, "status_code", None)
    # ARM errors carry their code in ``error.code`` (ARMErrorFormat), storage ones in
    # ``error_code``.
    code = str(getattr(exc, "error_code", None)
               or getattr(getattr(exc, "error", None), "code", None) or "")
    message = str(getattr(exc, "message", None) or exc).strip().splitlines()[0]
    if code in {"ContainerImmutabilityPolicyLocked", "ContainerHasLegalHold"}:
        return StorageRefused(where, code, message)
    if status == 412:
        return StorageConflict(where, "the immutability policy changed meanwhile (ETag "
                                      "mismatch); read it again and retry")
    if isinstance(exc, ClientAuthenticationError) or status in {401, 403}:
        return ConfigError(f"{where}: Azure management refused the credentials (HTTP {status} "
                           f"{code}): {message}")
    if type(exc).__name__ == "CredentialUnavailableError":
        return ConfigError(f"no Azure management credentials: set {ARM_TOKEN_ENV}, run "
                           f"'az login' or use a managed identity ({message})")
    if status in {400, 404}:
        return ConfigError(f"{where}: Azure management rejected the request (HTTP {status} "
                           f"{code}): {message}")
    if not isinstance(exc, HttpResponseError) or status is None or status >= 500 or status == 429:
        return StorageUnavailable(f"{where}: Azure management unavailable: {message}")
    return StorageError(f"{where}: Azure management error (HTTP {status} {code}): {message}")


def _policy(found: Any) -> ContainerPolicy:
    history = getattr(getattr(found, "properties", None), "update_history", None)
    if history is None:
        history = getattr(found, "update_history", None)
    extensions = None if history is None else sum(
        1 for item in history if _update_kind(item) == "extend")
    return ContainerPolicy(
        days=int(getattr(found, "immutability_period_since_creation_in_days", 0) or 0),
        state=str(getattr(getattr(found, "state", ""), "value", getattr(found, "state", ""))),
        etag=str(getattr(found, "etag", "") or ""),
        allow_protected_append_writes=bool(getattr(found, "allow_protected_append_writes",
                                                   False)),
        allow_protected_append_writes_all=bool(
            getattr(found, "allow_protected_append_writes_all", False)),
        extensions=extensions,
    )


def _update_kind(item: Any) -> str:
    # TypeSpec models are mappings whose ``update`` attribute is dict.update: read the key.
    try:
        value = item["update"]
    except (TypeError, KeyError):
        value = getattr(item, "update", "")
    return str(getattr(value, "value", value)).lower()


def _check_days(days: int) -> None:
    if not MIN_DAYS <= days <= MAX_DAYS:
        raise ConfigError(f"retention must be {MIN_DAYS} to {MAX_DAYS} days (Azure's limits), "
                          f"got {days}")


def _check_tags(tags: list[str]) -> list[str]:
    if not 1 <= len(tags) <= 10:
        raise ConfigError("a legal hold takes 1 to 10 tags")
    bad = [tag for tag in tags if not _TAG.match(tag)]
    if bad:
        raise ConfigError(f"legal-hold tags must be 3 to 23 letters or digits: {', '.join(bad)}")
    return [tag.lower() for tag in tags]
