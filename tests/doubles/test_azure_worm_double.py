"""AzureWormDouble behaves as Azure documents (reference notes 1.1-1.9), through the real SDKs."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError
from azure.mgmt.storage import StorageManagementClient
from azure.mgmt.storage.models import ImmutabilityPolicy as ArmPolicy
from azure.mgmt.storage.models import LegalHold
from azure.storage.blob import BlobServiceClient, ContainerClient, ImmutabilityPolicy

from tests.azurite import Azurite
from tests.doubles import AzureWormDouble
from tests.doubles.azure_worm import RESOURCE_GROUP

RG = RESOURCE_GROUP


@pytest.fixture(scope="module")
def worm(azurite: Azurite) -> Iterator[AzureWormDouble]:
    with AzureWormDouble(azurite) as double:
        yield double


@pytest.fixture
def container(worm: AzureWormDouble) -> ContainerClient:
    name = f"worm-{uuid.uuid4().hex[:12]}"
    return BlobServiceClient.from_connection_string(worm.connection_string).create_container(name)


@pytest.fixture
def arm(worm: AzureWormDouble) -> StorageManagementClient:
    return worm.management_client()


def _days(days: int) -> ArmPolicy:
    return ArmPolicy({"properties": {"immutabilityPeriodSinceCreationInDays": days}})


def _code(error: HttpResponseError) -> str | None:
    """The error code: data plane ``error_code``, ARM ``error.code``."""
    code = getattr(error, "error_code", None)
    return code if code else getattr(error.error, "code", None)


def _refused(call: Callable[[], Any]) -> HttpResponseError:
    with pytest.raises(HttpResponseError) as caught:
        call()
    return caught.value


def test_container_headers_follow_policy_and_hold(worm: AzureWormDouble,
                                                  container: ContainerClient) -> None:
    props = container.get_container_properties()
    assert (props.has_immutability_policy, props.has_legal_hold) == (False, False)
    worm.set_container_policy(container.container_name, 7, locked=False)
    worm.set_container_legal_hold(container.container_name, "Case1")
    props = container.get_container_properties()
    assert (props.has_immutability_policy, props.has_legal_hold) == (True, True)
    assert props.immutable_storage_with_versioning_enabled is False


@pytest.mark.parametrize("locked", [True, False], ids=["locked", "unlocked"])
def test_policy_refuses_changes_but_allows_new_blobs_reads_and_tiering(
        worm: AzureWormDouble, container: ContainerClient, locked: bool) -> None:
    blob = container.upload_blob("sealed", b"v1")
    worm.set_container_policy(container.container_name, 30, locked=locked)
    refusals: dict[str, Callable[[], Any]] = {
        "overwrite": lambda: blob.upload_blob(b"v2", overwrite=True),
        "delete": blob.delete_blob,
        "metadata": lambda: blob.set_blob_metadata({"a": "b"}),
        "properties": blob.set_http_headers,
        "snapshot": blob.create_snapshot,
    }
    for what, call in refusals.items():
        error = _refused(call)
        assert (error.status_code, _code(error)) == (409, "BlobImmutableDueToPolicy"), what
        response: Any = error.response
        assert b"<Code>BlobImmutableDueToPolicy</Code>" in response.body()
        assert response.headers["x-ms-error-code"] == "BlobImmutableDueToPolicy"
    container.upload_blob("new", b"fresh")  # creating is allowed
    blob.set_standard_blob_tier("Cool")  # "you can change the access tier" (1.10)
    assert blob.download_blob().readall() == b"v1"


def test_after_expiry_delete_is_allowed_but_overwrite_is_not(
        worm: AzureWormDouble, container: ContainerClient) -> None:
    first, second = container.upload_blob("a", b"a"), container.upload_blob("b", b"b")
    worm.set_container_policy(container.container_name, 1, locked=True)
    try:
        worm.now = lambda: datetime.now(UTC) + timedelta(days=2)
        assert _code(_refused(lambda: first.upload_blob(b"x", overwrite=True))) == \
            "BlobImmutableDueToPolicy"
        first.delete_blob()
        worm.now = lambda: datetime.now(UTC) + timedelta(hours=12)
        assert _code(_refused(second.delete_blob)) == "BlobImmutableDueToPolicy"
    finally:
        worm.now = lambda: datetime.now(UTC)


@pytest.mark.parametrize("append_writes", [False, True], ids=["plain", "protected-append"])
def test_append_block_needs_protected_append_writes(
        worm: AzureWormDouble, container: ContainerClient, append_writes: bool) -> None:
    blob = container.get_blob_client("PT1H.json")
    blob.create_append_blob()
    blob.append_block(b"one\n")
    worm.set_container_policy(container.container_name, 5, locked=True,
                              allow_protected_append_writes=append_writes)
    if append_writes:
        blob.append_block(b"two\n")
        assert blob.download_blob().readall() == b"one\ntwo\n"
    else:
        assert _code(_refused(lambda: blob.append_block(b"two\n"))) == \
            "BlobImmutableDueToPolicy"
    assert _code(_refused(blob.delete_blob)) == "BlobImmutableDueToPolicy"


def test_legal_hold_wins_and_has_no_expiry(worm: AzureWormDouble,
                                           container: ContainerClient) -> None:
    blob = container.upload_blob("held", b"h")
    worm.set_container_policy(container.container_name, 1, locked=True)
    worm.set_container_legal_hold(container.container_name, "case7")
    worm.now = lambda: datetime.now(UTC) + timedelta(days=400)
    try:
        error = _refused(blob.delete_blob)
        assert (error.status_code, _code(error)) == (409, "BlobImmutableDueToLegalHold")
        error = _refused(container.delete_container)
        assert _code(error) == "ContainerHasLegalHold"
    finally:
        worm.now = lambda: datetime.now(UTC)


def test_per_blob_policy_and_hold(worm: AzureWormDouble, container: ContainerClient) -> None:
    blob = container.upload_blob("v", b"v")
    soon = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
    blob.set_immutability_policy(ImmutabilityPolicy(expiry_time=soon, policy_mode="Unlocked"))
    props = blob.get_blob_properties()
    assert props.immutability_policy.expiry_time == soon
    assert props.immutability_policy.policy_mode == "Unlocked"
    assert _code(_refused(blob.delete_blob)) == "BlobImmutableDueToPolicy"
    blob.delete_immutability_policy()  # unlocked: allowed
    later = soon + timedelta(days=1)
    blob.set_immutability_policy(ImmutabilityPolicy(expiry_time=later, policy_mode="Locked"))
    shorter = ImmutabilityPolicy(expiry_time=soon, policy_mode="Locked")
    assert _refused(lambda: blob.set_immutability_policy(shorter)).status_code == 409
    assert _refused(blob.delete_immutability_policy).status_code == 409
    past = ImmutabilityPolicy(expiry_time=datetime.now(UTC) - timedelta(days=1),
                              policy_mode="Unlocked")
    assert _refused(lambda: blob.set_immutability_policy(past)).status_code == 400
    other = container.upload_blob("w", b"w")
    other.set_legal_hold(True)
    assert other.get_blob_properties().has_legal_hold is True
    assert _code(_refused(other.delete_blob)) == "BlobImmutableDueToLegalHold"
    other.set_legal_hold(False)
    other.delete_blob()


def test_policy_given_at_upload_is_remembered(worm: AzureWormDouble,
                                              container: ContainerClient) -> None:
    until = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)
    blob = container.upload_blob("u", b"u", legal_hold=True, immutability_policy=(
        ImmutabilityPolicy(expiry_time=until, policy_mode="Unlocked")))
    props = blob.get_blob_properties()
    assert (props.immutability_policy.expiry_time, props.has_legal_hold) == (until, True)


def test_arm_policy_lifecycle(worm: AzureWormDouble, container: ContainerClient,
                              arm: StorageManagementClient) -> None:
    ops: Any = arm.blob_containers
    name, acct = container.container_name, worm.account
    empty = ops.get_immutability_policy(RG, acct, name)
    assert empty.immutability_period_since_creation_in_days == 0
    policy = ops.create_or_update_immutability_policy(
        RG, acct, name, _days(3))
    assert (policy.state, policy.etag[0]) == ("Unlocked", '"')
    stale = policy.etag
    policy = ops.create_or_update_immutability_policy(
        RG, acct, name, _days(2),
        etag=stale, match_condition=MatchConditions.IfNotModified)  # shortened while unlocked
    assert policy.etag != stale
    match = MatchConditions.IfNotModified
    assert _refused(lambda: ops.lock_immutability_policy(
        RG, acct, name, etag=stale, match_condition=match)).status_code == 412
    # If-Match: * is not accepted (azure-rest-api-specs#29632); 25.x quotes bare ETags itself.
    assert _refused(lambda: ops.lock_immutability_policy(
        RG, acct, name, etag=policy.etag, match_condition=MatchConditions.IfPresent)
    ).status_code == 400
    assert _refused(lambda: ops.extend_immutability_policy(
        RG, acct, name, _days(9),
        etag=policy.etag, match_condition=match)).status_code == 409  # unlocked
    policy = ops.lock_immutability_policy(RG, acct, name, etag=policy.etag, match_condition=match)
    assert policy.state == "Locked"
    assert container.get_container_properties().has_immutability_policy is True
    for call in (
        lambda: ops.delete_immutability_policy(RG, acct, name, etag=policy.etag,
                                               match_condition=match),
        lambda: ops.create_or_update_immutability_policy(
            RG, acct, name, _days(1)),
        container.delete_container,
    ):
        error = _refused(call)
        assert (error.status_code, _code(error)) == (409, "ContainerImmutabilityPolicyLocked")
    assert _refused(lambda: ops.extend_immutability_policy(
        RG, acct, name, _days(2),
        etag=policy.etag, match_condition=match)).status_code == 400  # not longer
    for days in range(3, 8):  # five extensions are allowed ...
        policy = ops.extend_immutability_policy(
            RG, acct, name, _days(days),
            etag=policy.etag, match_condition=match)
    assert policy.immutability_period_since_creation_in_days == 7
    error = _refused(lambda: ops.extend_immutability_policy(  # ... the sixth is not
        RG, acct, name, _days(8),
        etag=policy.etag, match_condition=match))
    assert error.status_code == 409
    history = ops.get(RG, acct, name).immutability_policy.update_history
    assert [h["update"] for h in history][-6:] == ["lock"] + ["extend"] * 5


def test_arm_unlocked_policy_can_be_deleted(worm: AzureWormDouble, container: ContainerClient,
                                            arm: StorageManagementClient) -> None:
    ops: Any = arm.blob_containers
    name = container.container_name
    policy = ops.create_or_update_immutability_policy(
        RG, worm.account, name, _days(5))
    deleted = ops.delete_immutability_policy(RG, worm.account, name, etag=policy.etag,
                                             match_condition=MatchConditions.IfNotModified)
    assert deleted.immutability_period_since_creation_in_days == 0
    assert container.get_container_properties().has_immutability_policy is False


def test_arm_legal_hold_tags(worm: AzureWormDouble, container: ContainerClient,
                             arm: StorageManagementClient) -> None:
    ops: Any = arm.blob_containers
    name = container.container_name
    hold = ops.set_legal_hold(RG, worm.account, name, LegalHold(tags=["CaseOne"]))
    hold = ops.set_legal_hold(RG, worm.account, name, LegalHold(tags=["audit2026"]))
    assert (hold.has_legal_hold, hold.tags) == (True, ["audit2026", "caseone"])  # appended
    assert container.get_container_properties().has_legal_hold is True
    for bad in (["ab"], ["has-dash"], ["x" * 24], []):
        def attempt(tags: list[str] = bad) -> None:
            ops.set_legal_hold(RG, worm.account, name, LegalHold(tags=tags))

        assert _refused(attempt).status_code == 400
    hold = ops.clear_legal_hold(RG, worm.account, name, LegalHold(tags=["caseone", "audit2026"]))
    assert (hold.has_legal_hold, hold.tags) == (False, [])


@pytest.mark.parametrize(
    ("tamper", "status"),
    [
        pytest.param(lambda w: w.management_client(token="wrong"), 401, id="bad-token"),
        pytest.param(lambda w: StorageManagementClient(
            w.management_client()._config.credential, "other-subscription",
            base_url=w.arm_endpoint, connection_verify=str(w.ca_bundle)), 404,
            id="unknown-subscription"),
    ],
)
def test_arm_rejects_strangers(worm: AzureWormDouble, container: ContainerClient,
                               tamper: Callable[[AzureWormDouble], StorageManagementClient],
                               status: int) -> None:
    client = tamper(worm)
    error = _refused(lambda: client.blob_containers.get_immutability_policy(
        RG, worm.account, container.container_name))
    assert error.status_code == status


def test_arm_unknown_container_is_404(worm: AzureWormDouble, arm: StorageManagementClient) -> None:
    error = _refused(lambda: arm.blob_containers.get_immutability_policy(RG, worm.account,
                                                                         "no-such-container"))
    assert error.status_code == 404
