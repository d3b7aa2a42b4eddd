"""``pointsnet audit verify``: deployed runtime code against the sources in contracts/."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from audit_kit import AuditNet, Scenario
from eth_utils import to_checksum_address
from typer.testing import CliRunner

from chain.artifacts import load_artifact
from chain.audit import Rpc
from chain.cli import app
from chain.config import PROJECT_ROOT
from chain.devnet import rpc_call
from chain.verify import immutable_ranges, metadata_length, zero_ranges

runner = CliRunner()


def verify_json(net: AuditNet, *args: str) -> tuple[int, dict[str, Any]]:
    result = runner.invoke(
        app, ["audit", "verify", "--rpc-url", net.url, "--hub", net.hub, "--json", *args]
    )
    assert result.exit_code in (0, 1), result.output
    return result.exit_code, json.loads(result.stdout)


def verdicts(result: dict[str, Any]) -> dict[str, bool]:
    return {c["role"]: c["ok"] for c in result["contracts"]}


def tamper(net: AuditNet, address: str, offset: int) -> None:
    """Replace the code at ``address`` by itself with the byte at ``offset`` flipped."""
    code = bytearray(Rpc(net.url).get_code(address))
    code[offset] ^= 0xFF
    rpc_call(net.url, "anvil_setCode", [address, "0x" + code.hex()])


def plain_offset(artifact_name: str, at_least: int) -> int:
    """The first offset from ``at_least`` on that no immutable reference covers."""
    covered = {
        i
        for start, length in immutable_ranges(load_artifact(artifact_name))
        for i in range(start, start + length)
    }
    offset = at_least
    while offset in covered:
        offset += 1
    return offset


def test_verify_passes_for_the_deployed_network_against_committed_artifacts(
    scenario: Scenario,
) -> None:
    code, result = verify_json(scenario.net, "--committed")

    assert code == 0
    assert result["ok"] is True
    assert verdicts(result) == {"hub": True, "token": True, "badges": True, "timelock": True}
    hub = next(c for c in result["contracts"] if c["role"] == "hub")
    assert hub["immutables_zeroed"] == len(immutable_ranges(load_artifact("LoyaltyNetwork")))
    assert hub["address"] == scenario.net.hub


def test_verify_names_the_first_differing_byte_of_changed_runtime_code(
    after_scenario: Scenario,
) -> None:
    net = after_scenario.net
    offset = plain_offset("PointsToken", 1_000)
    tamper(net, net.network.token.address, offset)

    code, result = verify_json(net, "--committed")

    assert code == 1
    assert verdicts(result) == {"hub": True, "token": False, "badges": True, "timelock": True}
    token = next(c for c in result["contracts"] if c["role"] == "token")
    assert token["first_difference"] == offset
    assert token["differing_bytes"] == 1
    assert token["onchain_length"] == token["reference_length"]
    assert token["onchain_context"] != token["reference_context"]
    assert "[" in token["onchain_context"]

    terminal = runner.invoke(
        app, ["audit", "verify", "--rpc-url", net.url, "--hub", net.hub, "--committed"]
    )
    assert terminal.exit_code == 1
    assert f"first difference at byte {offset:,}" in terminal.stdout
    assert "bytecode verification FAILED" in terminal.stdout


def test_verify_ignores_the_metadata_tail_only_when_told(after_scenario: Scenario) -> None:
    net = after_scenario.net
    badges = net.network.badges.address
    code = Rpc(net.url).get_code(badges)
    tail = metadata_length(code)
    assert 40 < tail < 100
    tamper(net, badges, len(code) - tail + 10)  # inside the CBOR metadata (the IPFS hash)

    strict_code, strict = verify_json(net, "--committed")
    lenient_code, lenient = verify_json(net, "--committed", "--ignore-metadata")

    assert strict_code == 1 and verdicts(strict)["badges"] is False
    assert lenient_code == 0 and verdicts(lenient)["badges"] is True

    tamper(net, badges, plain_offset("BadgeCollection", 200))  # and now in the code itself
    still_code, still = verify_json(net, "--committed", "--ignore-metadata")
    assert still_code == 1 and verdicts(still)["badges"] is False


def test_verify_detects_a_contract_compiled_from_a_modified_source(
    scenario: Scenario, tmp_path: Path
) -> None:
    shutil.copytree(
        PROJECT_ROOT / "contracts",
        tmp_path / "contracts",
        ignore=shutil.ignore_patterns("artifacts"),
    )
    source = tmp_path / "contracts" / "LoyaltyNetwork.sol"
    text = source.read_text()
    assert "uint8 public constant MAX_TIER = 4;" in text
    source.write_text(text.replace("MAX_TIER = 4;", "MAX_TIER = 5;"))

    code, result = verify_json(scenario.net, "--sources", str(tmp_path))

    assert code == 1
    assert result["reference"].startswith("fresh compile of")
    # Only the hub's code changed; the token, badges and timelock sources did not.
    assert verdicts(result) == {"hub": False, "token": True, "badges": True, "timelock": True}
    hub = next(c for c in result["contracts"] if c["role"] == "hub")
    assert hub["first_difference"] is not None


def test_verify_fails_when_the_hub_admin_is_an_account_without_code(
    after_scenario: Scenario,
) -> None:
    net = after_scenario.net
    outsider = to_checksum_address("0x" + "ab" * 20)
    net.admin(net.network.hub.functions.grantRole(b"\x00" * 32, outsider))

    code, result = verify_json(net, "--committed")

    assert code == 1
    timelocks = [c for c in result["contracts"] if c["role"] == "timelock"]
    assert [c["ok"] for c in timelocks] == [True, False]
    assert "without code" in timelocks[1]["note"]


def test_zero_ranges_zeroes_only_the_given_ranges_and_clips_at_the_end() -> None:
    code = bytes(range(1, 11))
    assert zero_ranges(code, [(2, 3), (9, 5)]) == bytes([1, 2, 0, 0, 0, 6, 7, 8, 9, 0])


def test_metadata_length_reads_solc_cbor_tail_and_refuses_other_endings() -> None:
    artifact = load_artifact("LoyaltyNetwork")
    runtime = bytes.fromhex(artifact["deployedBytecode"][2:])
    tail = metadata_length(runtime)

    assert runtime[-tail] == 0xA2  # {"ipfs": ..., "solc": ...}
    assert runtime[-2:] == (tail - 2).to_bytes(2, "big")
    assert metadata_length(b"\x60\x00\xff\xff") == 0
    assert metadata_length(b"") == 0


def test_verify_exits_2_for_an_address_that_is_not_a_hub(scenario: Scenario) -> None:
    result = runner.invoke(
        app,
        [
            "audit",
            "verify",
            "--rpc-url",
            scenario.net.url,
            "--hub",
            "0x" + "12" * 20,
            "--committed",
        ],
    )
    assert result.exit_code == 2
    assert "no contract at" in result.output
