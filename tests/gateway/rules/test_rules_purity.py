"""The engine is pure: no clock, no randomness, no I/O; same inputs, same decision."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from rules_factories import campaign, decide, history, item, member, purchase, rules

import gateway.rules

SOURCES = sorted(Path(gateway.rules.__file__).parent.glob("*.py"))
FORBIDDEN_MODULES = {
    "random", "secrets", "time", "os", "io", "pathlib", "socket", "sqlite3", "subprocess",
    "uuid", "zoneinfo", "sqlalchemy", "httpx", "requests", "web3", "fastapi", "logging",
}  # fmt: skip
FORBIDDEN_CALLS = {"now", "utcnow", "today", "open"}


@pytest.mark.parametrize("source", SOURCES, ids=[s.name for s in SOURCES])
def test_module_imports_nothing_impure(source: Path) -> None:
    tree = ast.parse(source.read_text())
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    } | {
        (node.module or "").split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
    }

    assert not imported & FORBIDDEN_MODULES


@pytest.mark.parametrize("source", SOURCES, ids=[s.name for s in SOURCES])
def test_module_reads_no_clock_and_opens_no_file(source: Path) -> None:
    tree = ast.parse(source.read_text())
    called = {
        node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
    }

    assert not called & FORBIDDEN_CALLS


@pytest.mark.parametrize("source", SOURCES, ids=[s.name for s in SOURCES])
def test_module_is_small_and_documented(source: Path) -> None:
    text = source.read_text()

    assert ast.get_docstring(ast.parse(text))
    assert len(text.splitlines()) <= 250


def test_same_inputs_give_the_same_decision() -> None:
    def once() -> object:
        return decide(
            purchase(250, "GBP", items=[item("books", 100, eco=True)]),
            member(purchases=history(6, 200), birth_month=6, is_first_purchase_at_merchant=True),
            rule_set=rules(campaigns=[campaign(categories=["books"])]),
        )

    assert once() == once()
