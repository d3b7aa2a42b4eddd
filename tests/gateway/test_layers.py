"""The layers hold at run time too (import-linter checks the static imports in `make test`):
importing a module loads nothing of the layers it must not know."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from chain.config import PROJECT_ROOT


def loaded_after_import(module: str) -> set[str]:
    """The top-level-and-below module names a fresh interpreter has after ``import module``."""
    code = f"import sys, json, {module}; print(json.dumps(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
    )
    return set(json.loads(result.stdout))


@pytest.mark.parametrize(
    "module,forbidden",
    [
        ("chain.audit", ("gateway", "bench")),
        ("chain.deploy", ("gateway", "bench")),
        ("gateway.rules", ("sqlalchemy", "fastapi", "httpx", "web3", "gateway.db")),
        ("gateway.schemas", ("gateway.db", "gateway.models", "sqlalchemy")),
        ("gateway.app", ("bench",)),
        ("gateway.cli", ("bench",)),
    ],
)
def test_importing_a_module_loads_none_of_the_layers_it_must_not_know(
    module: str, forbidden: tuple[str, ...]
) -> None:
    loaded = loaded_after_import(module)
    leaked = sorted(m for m in loaded for f in forbidden if m == f or m.startswith(f + "."))
    assert leaked == []
