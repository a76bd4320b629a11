"""The CLI starts without its heavy dependencies (a structural rule, not a timing one).

``auditseal verify`` or ``auditseal append`` must not pay for the Azure SDK, DuckDB, pySigma
or the web stack: each command module imports at top only what building its parser needs
and loads the rest in its handler. The rule is checked on the module names that
``python -X importtime`` reports, in a fresh interpreter, so no earlier test's imports count.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

# Top-level packages that only the commands needing them may load.
HEAVY = ("azure", "duckdb", "sigma", "fastapi", "uvicorn", "starlette", "httpx", "pydantic")


def _imported_modules(module: str) -> list[str]:
    """Every module a fresh interpreter imports for ``import <module>``, in import order."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}"],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 0, done.stderr
    # Lines read "import time: <self us> | <cumulative us> | <indented module name>".
    names = [line.rsplit("|", 1)[1].strip() for line in done.stderr.splitlines()
             if line.startswith("import time:") and line.count("|") == 2]
    assert names[-1] == module, f"unexpected -X importtime output: {done.stderr[-500:]}"
    return names


@pytest.mark.parametrize("module", [
    "auditseal.cli.main",  # every command's parser
    "auditseal.api",       # what `auditseal keys` and the serve parser read (keys, settings)
])
def test_startup_imports_no_heavy_dependency(module: str) -> None:
    names = _imported_modules(module)
    heavy = sorted({name for name in names if name.split(".")[0] in HEAVY})
    assert heavy == [], f"import {module} loads {heavy}; import them in the command handler"


def test_parser_builds_every_command_without_heavy_dependencies() -> None:
    # Building the parser (what `auditseal --help` does) must stay light too, not only import.
    code = (
        "import sys\n"
        "from auditseal.cli.main import build_parser\n"
        "build_parser().format_help()\n"
        f"print(sorted({{n for n in sys.modules if n.split('.')[0] in {HEAVY!r}}}))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_query_default_max_rows_matches_the_index() -> None:
    # commands_query repeats the constant so that its parser does not load DuckDB.
    from auditseal.cli.commands_query import DEFAULT_MAX_ROWS
    from auditseal.index.query import DEFAULT_MAX_ROWS as INDEX_DEFAULT

    assert DEFAULT_MAX_ROWS == INDEX_DEFAULT


def test_lazy_api_exports_resolve_to_their_definitions() -> None:
    import auditseal.api
    from auditseal.api.app import create_app
    from auditseal.api.auth import Principal, require
    from auditseal.api.service import AuditService

    assert auditseal.api.create_app is create_app
    assert auditseal.api.AuditService is AuditService
    assert auditseal.api.Principal is Principal
    assert auditseal.api.require is require
    assert set(auditseal.api.__all__) <= set(dir(auditseal.api))
    with pytest.raises(AttributeError, match="no attribute 'missing'"):
        _ = auditseal.api.missing
