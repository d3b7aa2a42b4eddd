""".env.example lists every setting, nothing else, and shows the defaults."""

from __future__ import annotations

import re

import pytest

from chain.config import PROJECT_ROOT, ChainSettings
from gateway.settings import Settings

EXAMPLE = PROJECT_ROOT / ".env.example"
#: variables read straight from the environment by one process, not settings fields
PROCESS_VARIABLES = {
    "POINTSNET_ANVIL_BIN": "chain/toolchain.py",
    "POINTSNET_FORGE_BIN": "chain/toolchain.py",
    "POINTSNET_FAULT": "gateway/faults.py",
}
LINE = re.compile(r"^(?P<comment>#\s*)?(?P<name>POINTSNET_[A-Z0-9_]+)=(?P<value>\S*)")


def example_lines() -> list[re.Match[str]]:
    return [m for line in EXAMPLE.read_text().splitlines() if (m := LINE.match(line))]


def test_every_setting_is_in_the_example() -> None:
    named = {m["name"] for m in example_lines()}
    fields = {f"POINTSNET_{name.upper()}" for name in Settings.model_fields}
    assert sorted(fields - named) == []


def test_the_example_names_nothing_unknown() -> None:
    fields = {f"POINTSNET_{name.upper()}" for name in Settings.model_fields}
    unknown = {m["name"] for m in example_lines()} - fields - set(PROCESS_VARIABLES)
    assert sorted(unknown) == []


@pytest.mark.parametrize("name,module", sorted(PROCESS_VARIABLES.items()))
def test_process_variables_are_read_where_the_example_says(name: str, module: str) -> None:
    assert f'"{name}"' in (PROJECT_ROOT / module).read_text()


def test_written_values_are_the_defaults() -> None:
    written = {m["name"]: m["value"] for m in example_lines() if not m["comment"]}
    parsed = Settings.model_validate(
        {name.removeprefix("POINTSNET_").lower(): value for name, value in written.items()}
    )
    for name in written:
        field = name.removeprefix("POINTSNET_").lower()
        assert getattr(parsed, field) == Settings.model_fields[field].default, name


def test_chain_settings_are_the_chain_part_of_settings() -> None:
    assert set(ChainSettings.model_fields) < set(Settings.model_fields)
    chain_only = {"host", "port", "database_url", "secret_key", "metrics_token"}
    assert not chain_only & set(ChainSettings.model_fields)
