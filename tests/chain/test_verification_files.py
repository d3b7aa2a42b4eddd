"""Verification files for public explorers and the exact (metadata hash) match.

The IPFS hashing is checked against vectors solc itself wrote (every source's
``dweb:/ipfs/`` URL in the committed metadata, every artifact's CBOR tail); the
files and verdicts against a network deployed on the session anvil; "one source
byte changed" by recompiling the badges' standard-JSON input with a comment edited.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_utils import keccak
from factories import AnvilNode, devnet_settings
from typer.testing import CliRunner
from web3 import Web3

from chain.artifacts import DEPLOYED_CONTRACTS, load_artifact
from chain.audit.reader import AuditLog
from chain.bytecode_metadata import (
    IPFS_CHUNK_BYTES,
    cbor_item,
    cid_v0,
    metadata_tail,
)
from chain.cli import app
from chain.compile import collect_sources, run_compiler
from chain.contracts import Network
from chain.deploy import NetworkParams, deploy
from chain.deployment import Deployment
from chain.jsonrpc import Rpc
from chain.toolchain import NODE_MODULES
from chain.verification import (
    EXACT,
    MISMATCH,
    PARTIAL,
    VerificationFilesError,
    check_metadata,
    constructor_types,
    creation_transaction,
    standard_input_for,
)
from chain.verify import (
    Reference,
    compare_code,
    immutable_ranges,
    reference_artifacts,
    verify_contracts,
)

runner = CliRunner()

needs_solc = pytest.mark.skipif(
    shutil.which("node") is None or not (NODE_MODULES / "solc").is_dir(),
    reason="needs node and the npm solc package (npm ci)",
)


# ---------------------------------------------------------------- pure


def test_cid_v0_of_the_empty_file_is_ipfs_s() -> None:
    assert cid_v0(b"") == "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH"


@pytest.mark.parametrize("name", DEPLOYED_CONTRACTS)
def test_cid_v0_of_every_source_is_the_url_solc_wrote(name: str) -> None:
    metadata = json.loads(load_artifact(name)["metadata"])
    contents = collect_sources()
    for unit, entry in metadata["sources"].items():
        assert f"dweb:/ipfs/{cid_v0(contents[unit].encode())}" in entry["urls"], unit


@pytest.mark.parametrize("name", DEPLOYED_CONTRACTS)
def test_every_artifact_tail_carries_its_metadata_hash_and_solc(name: str) -> None:
    artifact = load_artifact(name)
    tail = metadata_tail(bytes.fromhex(artifact["deployedBytecode"][2:]))
    assert tail is not None
    assert tail.ipfs == cid_v0(artifact["metadata"].encode())
    assert tail.solc == json.loads(artifact["metadata"])["compiler"]["version"].split("+")[0]
    assert set(tail.fields) == {"ipfs", "solc"}


def test_cbor_reader_and_tail_edges() -> None:
    # {"a": [1, -2, true, null], "b": h'00ff'} as CBOR
    item = bytes.fromhex("a26161840121f5f6616242" + "00ff")
    assert cbor_item(item) == ({"a": [1, -2, True, None], "b": b"\x00\xff"}, len(item))
    assert metadata_tail(b"\x60\x80" + item + len(item).to_bytes(2, "big")) is not None
    assert metadata_tail(b"\x60\x80\x60\x40") is None  # length word past the start
    assert metadata_tail(b"\x00" * 40 + b"\x00\x05") is None  # not a CBOR map
    with pytest.raises(ValueError, match="IPFS chunk"):
        cid_v0(b"x" * (IPFS_CHUNK_BYTES + 1))


def test_standard_input_refuses_sources_that_are_not_the_metadatas() -> None:
    metadata = json.loads(load_artifact("BadgeCollection")["metadata"])
    contents = collect_sources()
    contents["contracts/BadgeCollection.sol"] += " "
    with pytest.raises(VerificationFilesError, match=r"BadgeCollection\.sol is not the one"):
        standard_input_for(metadata, contents)
    del contents["contracts/BadgeCollection.sol"]
    with pytest.raises(VerificationFilesError, match="missing"):
        standard_input_for(metadata, contents)


# ---------------------------------------------------------------- a deployed network


@pytest.fixture(scope="module")
def network(anvil: AnvilNode, tmp_path_factory: pytest.TempPathFactory) -> Deployment:
    settings = devnet_settings(tmp_path_factory.mktemp("verification"), anvil.devnet)
    params = NetworkParams(token_name="Verified Points", token_symbol="VPT")
    return deploy(settings, params, force=True)


@pytest.fixture(scope="module")
def written(
    network: Deployment, anvil: AnvilNode, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, list[dict[str, Any]]]:
    out = tmp_path_factory.mktemp("files")
    result = runner.invoke(
        app,
        [
            "contracts",
            "verification-files",
            "--committed",
            "--json",
            "--rpc-url",
            anvil.url,
            "--hub",
            network.hub,
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    return out, json.loads(result.stdout)


def test_every_deployed_contract_is_an_exact_match(
    written: tuple[Path, list[dict[str, Any]]], network: Deployment
) -> None:
    _out, summary = written
    roles = {s["role"]: s for s in summary}
    assert sorted(roles) == ["badges", "hub", "timelock", "token"]
    for role, address in [
        ("hub", network.hub),
        ("token", network.token),
        ("badges", network.badges),
        ("timelock", network.timelock),
    ]:
        entry = roles[role]
        assert entry["address"] == Web3.to_checksum_address(address)
        assert entry["metadata"]["verdict"] == EXACT, entry
        assert entry["metadata"]["onchain_ipfs"] == entry["metadata"]["metadata_ipfs"]
        assert entry["compiler"].startswith("v0.8.30+commit.")
        assert entry["license"] == "MIT"


def test_files_hold_the_metadata_the_deployed_code_names(
    written: tuple[Path, list[dict[str, Any]]], anvil: AnvilNode
) -> None:
    out, summary = written
    rpc = Rpc(anvil.url)
    for entry in summary:
        folder = out / entry["directory"]
        metadata_bytes = (folder / "metadata.json").read_bytes()
        tail = metadata_tail(rpc.get_code(entry["address"]))
        assert tail is not None and tail.ipfs == cid_v0(metadata_bytes)
        metadata = json.loads(metadata_bytes)
        std = json.loads((folder / "standard-input.json").read_text())
        assert sorted(std["sources"]) == sorted(metadata["sources"])
        assert "compilationTarget" not in std["settings"]
        assert std["settings"]["viaIR"] is True and std["settings"]["evmVersion"] == "cancun"
        for unit, entry_meta in metadata["sources"].items():
            on_disk = (folder / "sources" / unit).read_bytes()
            assert "0x" + keccak(on_disk).hex() == entry_meta["keccak256"]
        request = json.loads((folder / "sourcify-request.json").read_text())
        assert request["contractIdentifier"] == entry["contract"]
        assert request["stdJsonInput"] == std
        readme = (folder / "README.md").read_text()
        assert entry["address"] in readme and entry["compiler"] in readme
    assert "exact match" in (out / "README.md").read_text()


def test_constructor_arguments(
    written: tuple[Path, list[dict[str, Any]]], network: Deployment, anvil: AnvilNode
) -> None:
    out, summary = written
    args = {
        s["role"]: bytes.fromhex((out / s["directory"] / "constructor-args.txt").read_text())
        for s in summary
    }
    delay, proposers, executors = abi_decode(
        ["uint256", "address[]", "address[]"], args["timelock"]
    )
    assert delay == network.timelock_delay
    assert [p.lower() for p in proposers] == [network.admin.lower()]
    assert [e.lower() for e in executors] == [network.admin.lower()]
    (config,) = abi_decode(constructor_types(load_artifact("LoyaltyNetwork")), args["hub"])
    assert config[0].lower() == network.timelock.lower()
    assert config[1].lower() == network.guardian.lower()
    assert config[-2:] == ("Verified Points", "VPT")
    w3 = Web3(Web3.HTTPProvider(anvil.url))
    token = Network.at(w3, network.hub, network.timelock).token
    on_chain = (token.functions.name().call(), token.functions.symbol().call())
    assert args["token"] == abi_encode(["string", "string"], list(on_chain))
    assert args["badges"] == b""
    by_role = {s["role"]: s for s in summary}
    assert by_role["hub"]["creation_tx"] == by_role["token"]["creation_tx"]
    assert by_role["hub"]["creation_tx"] != by_role["timelock"]["creation_tx"]


def test_changed_code_is_a_mismatch_and_a_changed_tail_partial(
    network: Deployment, anvil: AnvilNode
) -> None:
    artifact = load_artifact("LoyaltyNetwork")
    code = bytearray(Rpc(anvil.url).get_code(network.hub))
    covered = {i for s, n in immutable_ranges(artifact) for i in range(s, s + n)}
    offset = next(i for i in range(100, len(code)) if i not in covered)
    flipped = bytearray(code)
    flipped[offset] ^= 0xFF
    assert check_metadata(bytes(flipped), artifact).verdict == MISMATCH
    other_hash = bytearray(code)
    other_hash[-20] ^= 0x01  # inside the ipfs multihash of the tail
    check = check_metadata(bytes(other_hash), artifact)
    assert check.verdict == PARTIAL and check.bytecode_equal and not check.tail_equal
    assert check.onchain_ipfs != check.metadata_ipfs


@needs_solc
def test_recompiled_standard_input_is_exact_and_one_source_byte_makes_it_partial(
    written: tuple[Path, list[dict[str, Any]]], network: Deployment, anvil: AnvilNode
) -> None:
    """What Sourcify does: compile standard-input.json and compare with the chain."""
    out, summary = written
    (badges,) = [s for s in summary if s["role"] == "badges"]
    std = json.loads((out / badges["directory"] / "standard-input.json").read_text())
    onchain = Rpc(anvil.url).get_code(network.badges)
    reference = load_artifact("BadgeCollection")

    def compiled(std_input: dict[str, Any]) -> dict[str, Any]:
        output = run_compiler(std_input)["contracts"]["contracts/BadgeCollection.sol"]
        evm = output["BadgeCollection"]["evm"]
        return {
            "metadata": output["BadgeCollection"]["metadata"],
            "deployedBytecode": "0x" + evm["deployedBytecode"]["object"],
            "immutableReferences": reference["immutableReferences"],
        }

    assert check_metadata(onchain, compiled(std)).verdict == EXACT
    source = std["sources"]["contracts/BadgeCollection.sol"]["content"]
    std["sources"]["contracts/BadgeCollection.sol"]["content"] = source + "\n"
    check = check_metadata(onchain, compiled(std))
    assert check.verdict == PARTIAL, check
    assert check.bytecode_equal and check.onchain_ipfs != check.metadata_ipfs


def test_audit_verify_says_exact_only_when_the_metadata_hash_is_the_references(
    network: Deployment, anvil: AnvilNode
) -> None:
    rpc = Rpc(anvil.url)
    contracts = AuditLog(rpc, network.hub).discover(rpc.block_number())
    reference = reference_artifacts(recompile=False)
    result = verify_contracts(rpc, contracts, reference)
    assert result.ok and all(c.metadata_exact for c in result.comparisons)
    hub = next(c for c in result.comparisons if c.role == "hub")
    assert hub.metadata_hash == cid_v0(reference.artifacts["LoyaltyNetwork"]["metadata"].encode())
    assert "exact match: metadata hash" in hub.describe()[0]
    assert hub.to_dict()["metadata_exact"] is True
    # Same code and tail, but metadata that is not the one hashed into them: not exact.
    artifact = dict(reference.artifacts["LoyaltyNetwork"])
    artifact["metadata"] = artifact["metadata"].replace('"runs":200', '"runs": 200')
    assert artifact["metadata"] != reference.artifacts["LoyaltyNetwork"]["metadata"]
    compared = compare_code("hub", network.hub, rpc.get_code(network.hub), artifact)
    assert compared.ok and not compared.metadata_exact
    assert "metadata differs" in compared.describe()[0]


def test_creation_transaction_is_refused_when_not_the_constructors(
    network: Deployment, anvil: AnvilNode
) -> None:
    rpc = Rpc(anvil.url)
    head = rpc.block_number()
    tx = creation_transaction(rpc, network.hub, 0, head)
    assert bytes.fromhex(tx["input"][2:]).startswith(
        bytes.fromhex(load_artifact("LoyaltyNetwork")["bytecode"][2:])
    )
    with pytest.raises(VerificationFilesError, match="no creation transaction"):
        creation_transaction(rpc, network.hub, network.block + 1, head)


def test_cli_exits_1_when_a_contract_is_not_an_exact_match(
    network: Deployment, anvil: AnvilNode, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import chain.verify

    committed = reference_artifacts(recompile=False)
    artifacts = dict(committed.artifacts)
    badges = dict(artifacts["BadgeCollection"])
    badges["metadata"] = badges["metadata"].replace('"runs":200', '"runs": 200')
    assert badges["metadata"] != artifacts["BadgeCollection"]["metadata"]
    artifacts["BadgeCollection"] = badges
    changed = Reference(artifacts, "metadata edited", committed.compiler)
    monkeypatch.setattr(chain.verify, "reference_artifacts", lambda **_kw: changed)
    result = runner.invoke(
        app,
        [
            "contracts",
            "verification-files",
            "--rpc-url",
            anvil.url,
            "--hub",
            network.hub,
            "--out",
            str(tmp_path),
            "--json",
        ],
    )
    assert result.exit_code == 1, result.output
    verdicts = {s["role"]: s["metadata"]["verdict"] for s in json.loads(result.stdout)}
    assert verdicts == {"hub": EXACT, "token": EXACT, "badges": PARTIAL, "timelock": EXACT}
