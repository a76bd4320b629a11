"""The storage probe on the filesystem backend: what root can and cannot do to sealed files.

The tests run as root in CI. Root ignores mode 0444, so only the Linux immutable attribute
(``chattr +i``, set by the default ``WriterConfig``) makes the kernel refuse.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from auditseal.cli import commands_probe
from auditseal.clock import FixedClock
from auditseal.config import WriterConfig
from auditseal.errors import StorageError
from auditseal.storage import FilesystemObjectStore, clear_immutable
from auditseal.storage.filesystem_tamper import FilesystemTamper
from auditseal.storage.probe import (
    Attempt,
    Outcome,
    ProbeReport,
    canary_key,
    run_probe,
)
from tests.conftest import run_cli

CLOCK = FixedClock(datetime(2026, 11, 27, 8, 30, 5, tzinfo=UTC))


def _immutable_supported(folder: Path) -> bool:
    store = FilesystemObjectStore(folder / "check", fsync=False, set_immutable=True)
    store.create("x", b"x")
    supported = bool(store.immutable_attr_supported)
    clear_immutable(folder / "check")
    return supported


@pytest.fixture
def immutable_ok(tmp_path: Path) -> None:
    if not _immutable_supported(tmp_path):
        pytest.skip("the immutable attribute cannot be set here (needs CAP_LINUX_IMMUTABLE "
                    "and ext4/xfs/btrfs)")


def test_canary_key_is_outside_the_tree_and_unique() -> None:
    key = canary_key(CLOCK, "00112233aabbccdd")
    assert key == "probe/canary-20261127T083005Z-00112233aabbccdd"
    assert canary_key(CLOCK) != canary_key(CLOCK)
    assert not key.startswith(("tile/", "checkpoint"))


@pytest.mark.skipif(os.geteuid() != 0, reason="root-only behaviour: root ignores mode 0444")
def test_root_without_immutable_attribute_is_not_protected(tmp_path: Path) -> None:
    store = FilesystemObjectStore(tmp_path, fsync=False, set_immutable=False)
    report = run_probe(store, FilesystemTamper(store), clock=CLOCK)
    outcomes = {a.action: a.outcome for a in report.attempts}
    assert outcomes == {"overwrite": Outcome.NOT_REFUSED, "set_metadata": Outcome.NOT_REFUSED,
                        "set_tier": Outcome.NOT_APPLICABLE, "delete": Outcome.NOT_REFUSED}
    assert not report.protected
    assert report.verdict().startswith("the storage is NOT protected: overwrite, set metadata "
                                       "and delete of a sealed object succeeded")
    assert not store.exists(report.canary_key)
    assert "was deleted" in report.canary_note


def test_immutable_attribute_refuses_everything(tmp_path: Path, immutable_ok: None) -> None:
    store = FilesystemObjectStore(tmp_path, fsync=False, set_immutable=True)
    try:
        report = run_probe(store, FilesystemTamper(store), clock=CLOCK)
        assert [(a.action, a.outcome, a.code) for a in report.attempts] == [
            ("overwrite", Outcome.REFUSED, "EPERM"),
            ("set_metadata", Outcome.REFUSED, "EPERM"),
            ("set_tier", Outcome.NOT_APPLICABLE, ""),
            ("delete", Outcome.REFUSED, "EPERM"),
        ]
        assert report.protected
        assert store.read(report.canary_key).startswith(b"auditseal storage probe canary")
        assert "stays in the storage" in report.canary_note
        assert not any(p.name.endswith(".probe.tmp") for p in tmp_path.rglob("*"))
    finally:
        clear_immutable(tmp_path)


@pytest.mark.parametrize(
    ("attempts", "protected", "phrase"),
    [
        pytest.param([Attempt("overwrite", Outcome.REFUSED, "X")], True, "is protected",
                     id="all-refused"),
        pytest.param([Attempt("overwrite", Outcome.REFUSED, "X"),
                      Attempt("set_tier", Outcome.NOT_REFUSED, decides=False)], True,
                     "is protected", id="tier-change-does-not-count"),
        pytest.param([Attempt("delete", Outcome.ERROR, "StorageError")], False,
                     "delete failed for another reason", id="error-is-not-proof"),
        pytest.param([Attempt("set_tier", Outcome.NOT_APPLICABLE, decides=False)], False,
                     "NOT protected", id="nothing-deciding-is-not-proof"),
    ],
)
def test_verdict(attempts: list[Attempt], protected: bool, phrase: str) -> None:
    report = ProbeReport("somewhere", "probe/canary-x", tuple(attempts))
    assert report.protected is protected
    assert phrase in report.verdict()


def test_other_failures_are_errors_not_refusals(tmp_path: Path) -> None:
    class Broken(FilesystemTamper):
        def overwrite(self, key: str, data: bytes) -> None:
            raise StorageError("disk on fire")

    store = FilesystemObjectStore(tmp_path, fsync=False, set_immutable=False)
    report = run_probe(store, Broken(store), clock=CLOCK)
    assert report.attempts[0] == Attempt("overwrite", Outcome.ERROR, "StorageError",
                                         "disk on fire")
    assert not report.protected


def test_cli_probe_on_default_log_is_protected(
        log_dir: tuple[Path, str], immutable_ok: None, capsys: pytest.CaptureFixture[str]
) -> None:
    root, _ = log_dir
    try:
        assert run_cli("probe", "--log", root) == 0
        out = capsys.readouterr().out
        assert "the storage is protected" in out
        assert "overwrite     refused         EPERM" in out
        assert run_cli("probe", "--log", root, "--json") == 0
        report = orjson.loads(capsys.readouterr().out)
        assert report["protected"] is True
        assert [a["outcome"] for a in report["attempts"]] == [
            "refused", "refused", "not applicable", "refused"]
        assert run_cli("verify", "--log", root) == 0  # the canary is not part of the tree
    finally:
        clear_immutable(root)


def test_cli_probe_missing_directory_is_a_config_error(tmp_path: Path) -> None:
    assert run_cli("probe", "--log", tmp_path / "nope") == 5


@pytest.mark.skipif(os.geteuid() != 0, reason="root-only behaviour: root ignores mode 0444")
def test_cli_probe_without_immutable_attribute_says_not_protected(
        log_dir: tuple[Path, str], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    root, _ = log_dir
    monkeypatch.setattr(commands_probe, "WriterConfig",
                        lambda: WriterConfig(set_immutable=False))
    assert run_cli("probe", "--log", root) == 1
    out = capsys.readouterr().out
    assert "the storage is NOT protected: overwrite, set metadata and delete of a sealed " \
           "object succeeded" in out
    assert "overwrite     NOT refused" in out
