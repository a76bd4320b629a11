"""``auditseal azure status|retention|legal-hold|blob-hold`` and the management wrapper,
against plain Azurite and the WORM double (real azure-mgmt-storage and azure-storage-blob)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from azure.core import MatchConditions
from azure.storage.blob import BlobServiceClient

from auditseal.azure.management import ContainerImmutability, ContainerPolicy, _etag_kwargs
from auditseal.azure.status import CRITICAL, WARNING, ContainerFacts, assess
from tests.azurite import Azurite
from tests.conftest import run_cli
from tests.doubles import AzureWormDouble
from tests.doubles.azure_worm import ARM_TOKEN, RESOURCE_GROUP, SUBSCRIPTION


@pytest.fixture(scope="module")
def worm(azurite: Azurite) -> Iterator[AzureWormDouble]:
    with AzureWormDouble(azurite) as double:
        yield double


@pytest.fixture
def log_url(worm: AzureWormDouble, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh log on the double, with management pointed at the ARM double."""
    name = f"st-{uuid.uuid4().hex[:10]}"
    monkeypatch.setenv("AUDITSEAL_STATE", str(tmp_path / "state"))
    monkeypatch.setenv("AUDITSEAL_AZURE_CONNECTION_STRING", worm.connection_string)
    monkeypatch.setenv("AUDITSEAL_AZURE_ARM_ENDPOINT", worm.arm_endpoint)
    monkeypatch.setenv("AUDITSEAL_AZURE_ARM_TOKEN", ARM_TOKEN)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(worm.ca_bundle))
    monkeypatch.setenv("AUDITSEAL_AZURE_SUBSCRIPTION_ID", SUBSCRIPTION)
    monkeypatch.setenv("AUDITSEAL_AZURE_RESOURCE_GROUP", RESOURCE_GROUP)
    url = f"azblob://{name}/audit"
    assert run_cli("init", "--log", url, "--name", "test.local/azlog") == 0
    return url


def _status(capsys: pytest.CaptureFixture[str], url: str, *extra: str) -> tuple[int, Any]:
    capsys.readouterr()
    code = run_cli("azure", "status", "--log", url, "--json", *extra)
    return code, orjson.loads(capsys.readouterr().out)


def _codes(status: Any) -> dict[str, str]:
    return {f["code"]: f["severity"] for f in status["findings"]}


def test_no_policy_is_critical(log_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, status = _status(capsys, log_url)
    assert code == 1
    assert _codes(status) == {"no-policy": CRITICAL, "head-unprotected": WARNING}
    assert status["data_container"]["policy"]["days"] == 0


def test_retention_set_lock_extend_through_the_cli(log_url: str,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli("azure", "retention", "set", "--log", log_url, "--days", "30") == 0
    code, status = _status(capsys, log_url, "--min-retention-days", "90")
    assert code == 1
    assert _codes(status) == {"policy-unlocked": CRITICAL, "retention-too-short": CRITICAL,
                              "head-unprotected": WARNING}
    assert run_cli("azure", "retention", "lock", "--log", log_url) == 5  # needs the flag
    assert run_cli("azure", "retention", "lock", "--log", log_url,
                   "--yes-lock-irreversibly", "--json") == 0
    assert orjson.loads(capsys.readouterr().out)["state"] == "Locked"
    assert run_cli("azure", "retention", "extend", "--log", log_url, "--days", "20") == 5
    assert run_cli("azure", "retention", "extend", "--log", log_url, "--days", "120") == 0
    code, status = _status(capsys, log_url, "--min-retention-days", "90")
    assert code == 0, status
    assert _codes(status) == {"head-unprotected": WARNING}
    assert status["data_container"]["policy"]["state"] == "Locked"
    assert status["data_container"]["policy"]["days"] == 120
    assert run_cli("probe", "--log", log_url) == 0  # and the double enforces it


def test_legal_hold_commands(log_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli("azure", "legal-hold", "set", "--log", log_url, "--tag", "Case42",
                   "--tag", "sec17a4", "--json") == 0
    assert orjson.loads(capsys.readouterr().out)["legal_hold_tags"] == ["case42", "sec17a4"]
    assert run_cli("azure", "legal-hold", "set", "--log", log_url, "--tag", "no") == 5
    code, status = _status(capsys, log_url)
    assert code == 0
    assert _codes(status) == {"legal-hold-only": "info", "head-unprotected": WARNING}
    assert run_cli("azure", "legal-hold", "clear", "--log", log_url, "--tag", "case42",
                   "--tag", "sec17a4") == 0


def test_head_container_under_worm_is_critical(worm: AzureWormDouble, log_url: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    head = log_url.removeprefix("azblob://").split("/")[0] + "-head"
    worm.set_container_policy(head, 7, locked=True)
    code, status = _status(capsys, log_url)
    assert code == 1
    assert _codes(status)["head-worm"] == CRITICAL


def test_blob_hold_on_the_double(worm: AzureWormDouble, log_url: str,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli("azure", "blob-hold", "set", "--log", log_url, "checkpoints/0000000000000"
                   "0000000") in (0, 5)
    container = log_url.removeprefix("azblob://").split("/")[0]
    service = BlobServiceClient.from_connection_string(worm.connection_string)
    names = list(service.get_container_client(container).list_blob_names())
    key = names[0].removeprefix("audit/")
    assert run_cli("azure", "blob-hold", "set", "--log", log_url, key) == 0
    blob = service.get_blob_client(container, names[0])
    assert blob.get_blob_properties().has_legal_hold is True
    assert run_cli("azure", "blob-hold", "clear", "--log", log_url, key) == 0
    assert blob.get_blob_properties().has_legal_hold is False


def test_blob_hold_on_plain_azurite_says_unsupported(azurite: Azurite, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUDITSEAL_STATE", str(tmp_path / "state"))
    monkeypatch.setenv("AUDITSEAL_AZURE_CONNECTION_STRING", azurite.connection_string)
    url = "azblob://plain-hold/x"
    assert run_cli("init", "--log", url, "--name", "test.local/plain") == 0
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    name = next(iter(service.get_container_client("plain-hold").list_blob_names()))
    assert run_cli("azure", "blob-hold", "set", "--log", url, name.removeprefix("x/")) == 5


def test_azure_commands_need_an_azure_log(tmp_path: Path) -> None:
    assert run_cli("azure", "status", "--log", tmp_path) == 5


class _OldSpelling:
    """The 2x-generation signature: ``if_match`` instead of ``etag``/``match_condition``."""

    def lock_immutability_policy(self, resource_group_name: str, account_name: str,
                                 container_name: str, if_match: str, **kwargs: Any) -> None:
        """Stand-in for azure-mgmt-storage < 25."""


def test_etag_keywords_follow_the_installed_signature(worm: AzureWormDouble) -> None:
    old = _etag_kwargs(_OldSpelling().lock_immutability_policy, '"8d1"')
    assert old == {"if_match": '"8d1"'}
    new_method = worm.management_client().blob_containers.lock_immutability_policy
    assert _etag_kwargs(new_method, '"8d1"') == {
        "etag": '"8d1"', "match_condition": MatchConditions.IfNotModified}


def test_manager_against_the_arm_double(worm: AzureWormDouble) -> None:
    name = f"mg-{uuid.uuid4().hex[:10]}"
    BlobServiceClient.from_connection_string(worm.connection_string).create_container(name)
    manager = ContainerImmutability(worm.management_client(), RESOURCE_GROUP, worm.account)
    assert not manager.get_policy(name).exists
    assert manager.set_policy(name, 10).state == "Unlocked"
    locked = manager.lock_policy(name)
    assert locked.locked
    assert manager.extend_policy(name, 11).days == 11
    assert manager.get_policy(name).extensions == 1
    assert manager.set_legal_hold(name, ["Alpha1"]).tags == ("alpha1",)
    assert manager.get_legal_hold(name).tags == ("alpha1",)
    assert not manager.clear_legal_hold(name, ["alpha1"]).active


@pytest.mark.parametrize(
    ("policy", "min_days", "expected"),
    [
        pytest.param(ContainerPolicy(30, "Locked", '"e"'), 30, {}, id="locked-long-enough"),
        pytest.param(ContainerPolicy(30, "Unlocked", '"e"'), None,
                     {"policy-unlocked": CRITICAL}, id="unlocked"),
        pytest.param(ContainerPolicy(10, "Locked", '"e"'), 30,
                     {"retention-too-short": CRITICAL}, id="too-short"),
        pytest.param(ContainerPolicy(30, "Locked", '"e"', extensions=4), None,
                     {"few-extensions-left": WARNING}, id="extensions-running-out"),
        pytest.param(None, None, {"policy-unverified": WARNING}, id="no-management-access"),
    ],
)
def test_assess(policy: ContainerPolicy | None, min_days: int | None,
                expected: dict[str, str]) -> None:
    data = ContainerFacts("logs", "data", True, False, False, policy=policy)
    head = ContainerFacts("logs-head", "head", False, False, False)
    found = {f.code: f.severity for f in assess(data, head, (), min_retention_days=min_days)}
    assert found == {**expected, "head-unprotected": WARNING}


def test_head_in_the_data_container_is_flagged() -> None:
    data = ContainerFacts("logs", "data", True, False, False)
    found = {f.code for f in assess(data, data, ())}
    assert "head-in-data-container" in found
