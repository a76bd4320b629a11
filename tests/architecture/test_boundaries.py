"""Architecture rules as tests: the pure core, the verifier's independence, module size,
and the public names of the packages (so a rename is a deliberate change)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import auditseal.storage
import auditseal.verify

SRC = Path(__file__).resolve().parents[2] / "src" / "auditseal"

# Modules whose import means I/O, a clock or the environment.
IO_MODULES = {
    "os", "io", "pathlib", "socket", "subprocess", "time", "datetime.datetime.now", "shutil",
    "tempfile", "threading", "asyncio", "urllib", "http", "fcntl", "random", "secrets",
    "sqlite3", "duckdb", "azure", "requests", "httpx",
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def _modules(package: str) -> list[Path]:
    return sorted((SRC / package).rglob("*.py"))


@pytest.mark.parametrize("path", _modules("core"), ids=lambda p: p.name)
def test_core_does_no_io(path: Path) -> None:
    bad = {m for m in _imports(path) if m.split(".")[0] in IO_MODULES}
    assert not bad, f"{path.name} imports {bad}: the core must stay pure"


@pytest.mark.parametrize("path", _modules("core"), ids=lambda p: p.name)
def test_core_depends_on_nothing_outside_it(path: Path) -> None:
    ours = {m for m in _imports(path) if m.startswith("auditseal")}
    assert ours <= {m for m in ours if m.startswith(("auditseal.core", "auditseal.errors"))}


@pytest.mark.parametrize("path", _modules("verify"), ids=lambda p: p.name)
def test_verifier_depends_only_on_the_core(path: Path) -> None:
    ours = {m for m in _imports(path) if m.startswith("auditseal")}
    allowed = ("auditseal.core", "auditseal.errors", "auditseal.verify")
    assert all(m.startswith(allowed) for m in ours), ours


def test_azure_sdk_only_in_azure_adapters() -> None:
    for path in SRC.rglob("*.py"):
        if any("azure" in part for part in path.relative_to(SRC).parts):
            continue  # the Azure adapters: azure_*.py modules and the auditseal.azure package
        assert not {m for m in _imports(path) if m.startswith("azure.")}, path


@pytest.mark.parametrize("path", sorted(SRC.rglob("*.py")), ids=lambda p: str(p.relative_to(SRC)))
def test_modules_stay_small(path: Path) -> None:
    lines = len(path.read_text().splitlines())
    assert lines <= 420, f"{path.name} has {lines} lines; split it by concept"


def test_public_names_are_pinned() -> None:
    assert sorted(auditseal.verify.__all__) == [
        "DirectorySource", "Finding", "LogSource", "VerifyReport", "verify_log",
    ]
    assert "ObjectStore" in auditseal.storage.__all__
    assert "HeadStore" in auditseal.storage.__all__
