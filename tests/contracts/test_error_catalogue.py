"""Every custom error the network declares is decodable and specified by a test here."""

from __future__ import annotations

from pathlib import Path

import pytest
from eth_abi import encode
from eth_utils import function_signature_to_4byte_selector

from chain.artifacts import load_artifact
from chain.contracts import decode_revert

#: The project's own errors are declared in these interfaces (and named after them).
OWN_ERROR_PREFIXES = ("LoyaltyNetwork", "PointsToken", "BadgeCollection")
HERE = Path(__file__).parent


def _own_errors() -> list[dict]:
    seen: dict[str, dict] = {}
    for contract in OWN_ERROR_PREFIXES:
        for item in load_artifact(contract)["abi"]:
            if item["type"] == "error" and item["name"].startswith(OWN_ERROR_PREFIXES):
                seen[item["name"]] = item
    return sorted(seen.values(), key=lambda item: item["name"])


OWN_ERRORS = _own_errors()


def _test_sources() -> str:
    return "\n".join(
        path.read_text() for path in HERE.glob("test_*.py") if path.name != Path(__file__).name
    )


def test_the_catalogue_lists_the_errors_of_all_three_contracts():
    for prefix in OWN_ERROR_PREFIXES:
        assert any(error["name"].startswith(prefix) for error in OWN_ERRORS), prefix


@pytest.mark.parametrize("error", OWN_ERRORS, ids=lambda error: error["name"])
def test_custom_error_has_a_test_asserting_it(error):
    sources = _test_sources()
    assert f'"{error["name"]}"' in sources, f"no test names {error['name']}"


@pytest.mark.parametrize("error", OWN_ERRORS, ids=lambda error: error["name"])
def test_custom_error_decodes_to_its_name_and_arguments(error):
    types = [i["type"] for i in error["inputs"]]
    samples = {"address": "0x" + "11" * 20, "bytes32": b"\x22" * 32, "bool": True}
    values = [samples.get(t, 3) for t in types]
    selector = function_signature_to_4byte_selector(f"{error['name']}({','.join(types)})")

    decoded = decode_revert(selector + encode(types, values))

    assert decoded.name == error["name"]
    assert list(decoded.args_by_name) == [i["name"] for i in error["inputs"]]
