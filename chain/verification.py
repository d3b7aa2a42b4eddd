"""What public verifiers (Sourcify, Blockscout, Etherscan) need for each deployed
contract, and whether the deployed code is an exact match of it.

For each contract ``pointsnet audit verify`` covers (hub, token, badges, every
timelock holding the hub's admin role) :func:`verification_packages` builds:

- the compiler's metadata JSON, exactly as solc wrote it (from a fresh compile of
  ``contracts/`` or the committed artifacts);
- the standard-JSON input an explorer recompiles: the metadata's sources with their
  content (each checked against the keccak-256 the metadata records) and its
  settings (optimizer, viaIR, evmVersion, remappings, metadata hash; the
  ``compilationTarget`` becomes the contract identifier ``path:Name``);
- the ABI-encoded constructor arguments, read from the creation transaction (the
  first log a constructor emits names it) for contracts deployed by a transaction,
  and recomputed from the hub's constructor arguments for the two the hub creates;
- the exact-match verdict (:class:`MetadataCheck`): the deployed runtime code's CBOR
  tail decoded, its IPFS hash compared with the CIDv0 of the metadata JSON and its
  solc version with the compiler's.

:func:`write_packages` lays them out as files, one directory per contract with a
README saying how to submit them (see docs/VERIFY.md).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_utils import keccak

from chain.abi import ROLE_ARTIFACTS, ROLE_GRANTED, type_string
from chain.audit.reader import Contracts
from chain.bytecode_metadata import cid_v0, metadata_tail
from chain.compile import collect_sources
from chain.config import PROJECT_ROOT
from chain.errors import ChainError
from chain.jsonrpc import Rpc
from chain.logs import LogPager
from chain.records import checksum
from chain.verify import Reference, compare_code

#: Outputs asked of an explorer's recompilation (they override it anyway).
OUTPUT_SELECTION = {
    "*": {"*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object", "metadata"]}
}

EXACT = "exact match (metadata hash equal)"
PARTIAL = "partial (bytecode equal, metadata differs)"
MISMATCH = "mismatch"


class VerificationFilesError(ChainError):
    """The verification files cannot be made (sources missing or not the metadata's)."""


def _keccak_hex(text: str) -> str:
    return "0x" + keccak(text.encode("utf-8")).hex()


def standard_input_for(metadata: dict[str, Any], contents: dict[str, str]) -> dict[str, Any]:
    """The standard-JSON input that reproduces the contract ``metadata`` describes.

    Sources are exactly the metadata's, with ``contents`` checked against the
    keccak-256 it records; settings are its settings without ``compilationTarget``.
    """
    sources: dict[str, dict[str, str]] = {}
    for name, entry in sorted(metadata["sources"].items()):
        if name not in contents:
            raise VerificationFilesError(f"source {name} named by the metadata is missing")
        if _keccak_hex(contents[name]) != entry["keccak256"]:
            raise VerificationFilesError(
                f"source {name} is not the one the metadata was compiled from "
                f"(keccak-256 {_keccak_hex(contents[name])}, metadata {entry['keccak256']})"
            )
        sources[name] = {"content": contents[name]}
    settings = {k: v for k, v in metadata["settings"].items() if k != "compilationTarget"}
    settings["outputSelection"] = OUTPUT_SELECTION
    return {
        "language": metadata.get("language", "Solidity"),
        "sources": sources,
        "settings": settings,
    }


@dataclass(frozen=True)
class MetadataCheck:
    """Whether the deployed runtime code is exactly the one the metadata describes."""

    verdict: str  # EXACT, PARTIAL or MISMATCH
    metadata_ipfs: str  # CIDv0 of the metadata JSON produced here
    compiler: str  # version the metadata names (0.8.30+commit...)
    onchain_ipfs: str | None
    onchain_solc: str | None
    bytecode_equal: bool  # immutables zeroed, CBOR tail left out
    tail_equal: bool  # the CBOR tails byte for byte
    note: str = ""

    @property
    def exact(self) -> bool:
        return self.verdict == EXACT

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "exact": self.exact,
            "metadata_ipfs": self.metadata_ipfs,
            "compiler": self.compiler,
            "onchain_ipfs": self.onchain_ipfs,
            "onchain_solc": self.onchain_solc,
            "bytecode_equal": self.bytecode_equal,
            "tail_equal": self.tail_equal,
            "note": self.note,
        }


def check_metadata(onchain: bytes, artifact: dict[str, Any], role: str = "") -> MetadataCheck:
    """Compare deployed runtime code with an artifact and its metadata JSON.

    Exact: the code is equal once immutables are zeroed and the CBOR tails are equal,
    the tail's IPFS hash is the CIDv0 of ``artifact["metadata"]`` and its solc version
    the compiler's.  Partial: the code is equal but the metadata is not the deployed
    one (another source text, comment or path).  Mismatch: the code itself differs.
    """
    metadata_text = str(artifact["metadata"])
    compiler = str(json.loads(metadata_text)["compiler"]["version"])
    ipfs = cid_v0(metadata_text.encode("utf-8"))
    code = compare_code(role, "0x" + "00" * 20, onchain, artifact, ignore_metadata=True)
    tail = metadata_tail(onchain)
    reference = metadata_tail(bytes.fromhex(str(artifact["deployedBytecode"]).removeprefix("0x")))
    tail_equal = tail is not None and reference is not None and tail.raw == reference.raw
    onchain_ipfs = tail.ipfs if tail else None
    onchain_solc = tail.solc if tail else None
    notes = []
    if not code.ok:
        notes.append(code.note or "the runtime code differs")
    if tail is None:
        notes.append("the deployed code has no CBOR metadata tail")
    elif onchain_ipfs != ipfs:
        notes.append(f"the deployed code's metadata is {onchain_ipfs}, this one {ipfs}")
    if onchain_solc is not None and onchain_solc != compiler.split("+", 1)[0]:
        notes.append(f"compiled by solc {onchain_solc}, the metadata names {compiler}")
    if tail is not None and onchain_ipfs == ipfs and not tail_equal:
        notes.append("the CBOR tail differs from the compiler's")
    if not code.ok:
        verdict = MISMATCH
    elif tail_equal and code.metadata_exact:
        verdict = EXACT
    else:
        verdict = PARTIAL
    return MetadataCheck(
        verdict, ipfs, compiler, onchain_ipfs, onchain_solc, code.ok, tail_equal, "; ".join(notes)
    )


@dataclass(frozen=True)
class Package:
    """Everything one verifier submission needs, for one deployed contract."""

    role: str  # hub / token / badges / timelock
    contract: str
    source_name: str  # contracts/LoyaltyNetwork.sol
    address: str
    chain_id: int
    compiler: str  # 0.8.30+commit.73712a01
    license: str  # SPDX identifier of the contract's source
    metadata_text: str
    standard_input: dict[str, Any]
    constructor_args: bytes | None  # None: could not be found
    constructor_args_from: str
    creation_tx: str | None
    check: MetadataCheck
    notes: list[str] = field(default_factory=list)

    @property
    def identifier(self) -> str:
        """The fully qualified name verifiers ask for: ``contracts/X.sol:X``."""
        return f"{self.source_name}:{self.contract}"

    @property
    def explorer_compiler(self) -> str:
        """The version as Etherscan and Blockscout list it: ``v0.8.30+commit.73712a01``."""
        return "v" + self.compiler

    def summary(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "contract": self.identifier,
            "address": checksum(self.address),
            "chain_id": self.chain_id,
            "compiler": self.explorer_compiler,
            "license": self.license,
            "constructor_args": None
            if self.constructor_args is None
            else self.constructor_args.hex(),
            "constructor_args_from": self.constructor_args_from,
            "creation_tx": self.creation_tx,
            "metadata": self.check.to_dict(),
            "notes": self.notes,
        }


# ---------------------------------------------------------------- constructor arguments


def creation_transaction(rpc: Rpc, address: str, from_block: int, to_block: int) -> dict[str, Any]:
    """The transaction that created ``address``, found from the first ``RoleGranted``
    its constructor logged (the hub and the timelock both grant roles there).

    Logs are read in pages (:class:`chain.logs.LogPager`), so endpoints that cap
    ``eth_getLogs`` ranges still answer; the search stops at the first log.
    """
    pager = LogPager(rpc)
    for _start, _end, logs in pager.pages(
        [checksum(address)], from_block, to_block, [ROLE_GRANTED]
    ):
        if not logs:
            continue
        tx_hash = logs[0]["transactionHash"]
        receipt = rpc.call("eth_getTransactionReceipt", [tx_hash]) or {}
        created = receipt.get("contractAddress")
        if created and str(created).lower() == address.lower():
            tx: dict[str, Any] = rpc.call("eth_getTransactionByHash", [tx_hash])
            return tx
        break  # its first log is not from its creation: created by another contract
    raise VerificationFilesError(
        f"no creation transaction found for {checksum(address)} in blocks {from_block}..{to_block}"
    )


def constructor_arguments(tx: dict[str, Any], artifact: dict[str, Any]) -> tuple[bytes, bool]:
    """The ABI-encoded arguments after the creation code in ``tx``'s input, and whether
    the creation code before them is the artifact's byte for byte."""
    data = bytes.fromhex(str(tx["input"]).removeprefix("0x"))
    creation = bytes.fromhex(str(artifact["bytecode"]).removeprefix("0x"))
    return data[len(creation) :], data[: len(creation)] == creation


def constructor_types(artifact: dict[str, Any]) -> list[str]:
    """The constructor's ABI parameter types (none when it has no constructor)."""
    for item in artifact["abi"]:
        if item.get("type") == "constructor":
            return [type_string(p) for p in item["inputs"]]
    return []


def token_arguments(hub_args: bytes, hub_artifact: dict[str, Any]) -> bytes:
    """``PointsToken(name, symbol)``'s arguments: the hub passes its config's token name
    and symbol (the last two fields of ``LoyaltyNetwork.Config``)."""
    (config,) = abi_decode(constructor_types(hub_artifact), hub_args)
    return abi_encode(["string", "string"], [config[-2], config[-1]])


# ---------------------------------------------------------------- packages


def verification_packages(
    rpc: Rpc,
    contracts: Contracts,
    reference: Reference,
    *,
    root: Path = PROJECT_ROOT,
    block: int | None = None,
) -> list[Package]:
    """One :class:`Package` per deployed contract (hub, token, badges, timelocks)."""
    at = rpc.block_number() if block is None else block
    chain_id = int(rpc.call("eth_chainId"), 16)
    contents = collect_sources(root)
    targets = [("hub", contracts.hub), ("token", contracts.token), ("badges", contracts.badges)]
    targets += [("timelock", t) for t in contracts.admins]
    hub_args: bytes | None = None
    hub_tx: str | None = None
    packages: list[Package] = []
    for role, address in targets:
        artifact = reference.artifacts[ROLE_ARTIFACTS[role]]
        metadata = json.loads(artifact["metadata"])
        ((source_name, contract),) = metadata["settings"]["compilationTarget"].items()
        notes: list[str] = []
        args: bytes | None = None
        creation_tx: str | None = None
        if role in ("hub", "timelock"):
            try:
                tx = creation_transaction(rpc, address, contracts.start_block, at)
            except ChainError as exc:
                notes.append(str(exc))
                frm = "not found: read them from the creation transaction's input"
            else:
                creation_tx = str(tx["hash"])
                args, same_code = constructor_arguments(tx, artifact)
                frm = f"the creation transaction {creation_tx} (its input after the creation code)"
                if not same_code:
                    notes.append(
                        "the creation code sent is not the reference's: the "
                        "arguments after it may be misplaced"
                    )
                if role == "hub":
                    hub_args, hub_tx = args, creation_tx
        elif role == "token":
            creation_tx = hub_tx
            if hub_args is None:
                frm = "not found (the hub's creation transaction was not found)"
            else:
                args = token_arguments(hub_args, reference.artifacts["LoyaltyNetwork"])
                frm = "recomputed from the hub's constructor arguments (tokenName, tokenSymbol)"
        else:
            creation_tx = hub_tx
            args, frm = b"", "none: the constructor takes no arguments"
        packages.append(
            Package(
                role=role,
                contract=contract,
                source_name=source_name,
                address=checksum(address),
                chain_id=chain_id,
                compiler=str(metadata["compiler"]["version"]),
                license=str(metadata["sources"][source_name].get("license", "UNLICENSED")),
                metadata_text=str(artifact["metadata"]),
                standard_input=standard_input_for(metadata, contents),
                constructor_args=args,
                constructor_args_from=frm,
                creation_tx=creation_tx,
                check=check_metadata(rpc.get_code(address, at), artifact, role),
                notes=notes,
            )
        )
    return packages
