"""Check that the deployed contracts are built from the sources in ``contracts/``.

Responsibilities:

- the reference: a fresh compile of ``contracts/`` with the pinned compiler
  (:func:`chain.compile.compile_contracts`), or the committed artifacts when speed
  matters more than independence from them;
- the deployed runtime code (``eth_getCode``) of the hub, its token and badges, and of
  every account holding the hub's ``DEFAULT_ADMIN_ROLE`` (which must be the timelock);
- the metadata hash: the deployed code's CBOR tail decoded, its IPFS hash compared with
  the CIDv0 of the reference's metadata JSON (:mod:`chain.bytecode_metadata`): equal is
  an exact match, the code compiled from these very sources and settings;
- normalisation: the immutable ranges (``immutableReferences``: addresses, the EIP-712
  cache, ...) are zeroed on both sides; nothing else is ignored, except the CBOR
  metadata tail when the caller asks (it hashes the sources, comments included);
- a verdict per contract, with a readable diff: lengths, the first differing offset, the
  bytes around it on both sides, how many bytes differ.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chain.abi import ROLE_ARTIFACTS
from chain.artifacts import load_artifact
from chain.audit.reader import AuditLog, Contracts
from chain.bytecode_metadata import cid_v0, metadata_tail
from chain.compile import compile_contracts, compiler_version
from chain.config import PROJECT_ROOT
from chain.jsonrpc import Rpc
from chain.records import checksum

#: Bytes shown on each side of the first difference.
CONTEXT_BYTES = 16


@dataclass(frozen=True)
class Reference:
    """Artifacts to compare against, and where they came from."""

    artifacts: dict[str, dict[str, Any]]
    source: str  # "fresh compile of <root>/contracts" or "committed artifacts"
    compiler: str


def reference_artifacts(*, recompile: bool = True, root: Path = PROJECT_ROOT) -> Reference:
    """Compile ``root``'s contracts with the pinned compiler, or load the committed artifacts."""
    if recompile:
        compiled = compile_contracts(root)
        return Reference(compiled, f"fresh compile of {root / 'contracts'}", compiler_version())
    loaded = {name: load_artifact(name, root) for name in sorted(set(ROLE_ARTIFACTS.values()))}
    versions = {str(a.get("compiler", {}).get("version", "?")) for a in loaded.values()}
    return Reference(loaded, "committed artifacts", ", ".join(sorted(versions)))


def immutable_ranges(artifact: dict[str, Any]) -> list[tuple[int, int]]:
    """``(start, length)`` of every immutable reference in the runtime code, sorted."""
    ranges = [
        (int(ref["start"]), int(ref["length"]))
        for refs in artifact.get("immutableReferences", {}).values()
        for ref in refs
    ]
    return sorted(ranges)


def zero_ranges(code: bytes, ranges: list[tuple[int, int]]) -> bytes:
    """``code`` with each ``(start, length)`` range set to zero (ranges past the end clipped)."""
    out = bytearray(code)
    for start, length in ranges:
        end = min(start + length, len(out))
        if start < end:
            out[start:end] = bytes(end - start)
    return bytes(out)


def metadata_length(code: bytes) -> int:
    """Length of the CBOR metadata tail solc appends (its own 2-byte length included),
    or 0 when the code does not end with one."""
    if len(code) < 2:
        return 0
    length = int.from_bytes(code[-2:], "big") + 2
    # The CBOR map starts with 0xa1..0xa5 (a map of 1..5 entries) in every solc output.
    if length > len(code) or not 0xA1 <= code[-length] <= 0xA5:
        return 0
    return length


def normalize(code: bytes, artifact: dict[str, Any], *, ignore_metadata: bool) -> bytes:
    """Runtime code with immutables zeroed and, if asked, the metadata tail cut off."""
    code = zero_ranges(code, immutable_ranges(artifact))
    if ignore_metadata:
        tail = metadata_length(code)
        if tail:
            code = code[:-tail]
    return code


@dataclass(frozen=True)
class CodeComparison:
    """The verdict for one deployed contract."""

    role: str  # hub / token / badges / timelock
    contract: str  # artifact name
    address: str
    ok: bool
    onchain_length: int
    reference_length: int
    immutables_zeroed: int
    metadata_ignored: bool
    first_difference: int | None = None
    differing_bytes: int = 0
    onchain_context: str = ""
    reference_context: str = ""
    note: str = ""
    #: The IPFS hash in the deployed code's CBOR tail (None: no tail, or no ipfs entry).
    metadata_hash: str | None = None
    #: Whether it is the CIDv0 of the reference's metadata JSON, with the same solc.
    metadata_exact: bool = False

    def describe(self) -> list[str]:
        """Human-readable lines: the verdict, then the diff when there is one."""
        head = f"{self.role} {self.contract} at {checksum(self.address)}: "
        if self.ok:
            if self.metadata_exact:
                metadata = f"; exact match: metadata hash {self.metadata_hash} equal"
            else:
                metadata = f"; metadata differs: {self.metadata_hash or 'no hash'} (partial)"
            return [
                head + f"ok ({self.onchain_length:,} bytes, {self.immutables_zeroed} immutable "
                "range(s) zeroed"
                + (", metadata ignored" if self.metadata_ignored else "")
                + metadata
                + ")"
            ]
        lines = [head + "MISMATCH" + (f": {self.note}" if self.note else "")]
        lines.append(
            f"  lengths: on chain {self.onchain_length:,} bytes, "
            f"reference {self.reference_length:,} bytes"
        )
        if self.first_difference is not None:
            common = min(self.onchain_length, self.reference_length)
            lines.append(
                f"  first difference at byte {self.first_difference:,} "
                f"(0x{self.first_difference:x}); {self.differing_bytes:,} of the "
                f"{common:,} common bytes differ"
            )
            start = max(0, self.first_difference - CONTEXT_BYTES)
            lines.append(f"  on chain  @0x{start:x}: {self.onchain_context}")
            lines.append(f"  reference @0x{start:x}: {self.reference_context}")
        return lines

    def to_dict(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "contract": self.contract,
            "address": checksum(self.address),
            "ok": self.ok,
            "onchain_length": self.onchain_length,
            "reference_length": self.reference_length,
            "immutables_zeroed": self.immutables_zeroed,
            "metadata_ignored": self.metadata_ignored,
            "first_difference": self.first_difference,
            "differing_bytes": self.differing_bytes,
            "onchain_context": self.onchain_context,
            "reference_context": self.reference_context,
            "note": self.note,
            "metadata_hash": self.metadata_hash,
            "metadata_exact": self.metadata_exact,
        }


def metadata_match(onchain: bytes, artifact: dict[str, Any]) -> tuple[str | None, bool]:
    """The IPFS hash in ``onchain``'s CBOR tail, and whether it (and its solc version) is
    that of the artifact's metadata JSON: the deployed code was compiled from exactly the
    sources and settings the metadata records."""
    tail = metadata_tail(onchain)
    text = str(artifact.get("metadata") or "")
    if tail is None or tail.ipfs is None or not text:
        return (tail.ipfs if tail else None), False
    compiler = str(json.loads(text)["compiler"]["version"]).split("+", 1)[0]
    return tail.ipfs, tail.ipfs == cid_v0(text.encode("utf-8")) and tail.solc == compiler


def _context(code: bytes, at: int) -> str:
    """Hex around offset ``at``, the byte at ``at`` in brackets."""
    start = max(0, at - CONTEXT_BYTES)
    before = code[start:at].hex()
    here = code[at : at + 1].hex() or "--"
    after = code[at + 1 : at + 1 + CONTEXT_BYTES].hex()
    return f"{before}[{here}]{after}"


def compare_code(
    role: str,
    address: str,
    onchain: bytes,
    artifact: dict[str, Any],
    *,
    ignore_metadata: bool = False,
) -> CodeComparison:
    """Compare deployed runtime code with an artifact's ``deployedBytecode``."""
    name = str(artifact.get("contractName", ROLE_ARTIFACTS.get(role, role)))
    reference_raw = bytes.fromhex(str(artifact["deployedBytecode"]).removeprefix("0x"))
    ranges = immutable_ranges(artifact)
    if not onchain:
        return CodeComparison(
            role,
            name,
            address,
            False,
            0,
            len(reference_raw),
            0,
            ignore_metadata,
            note="no code at this address",
        )
    deployed = normalize(onchain, artifact, ignore_metadata=ignore_metadata)
    reference = normalize(reference_raw, artifact, ignore_metadata=ignore_metadata)
    metadata_hash, metadata_exact = metadata_match(onchain, artifact)
    if deployed == reference:
        return CodeComparison(
            role,
            name,
            address,
            True,
            len(deployed),
            len(reference),
            len(ranges),
            ignore_metadata,
            metadata_hash=metadata_hash,
            metadata_exact=metadata_exact,
        )
    common = min(len(deployed), len(reference))
    differing = [i for i in range(common) if deployed[i] != reference[i]]
    first = differing[0] if differing else common
    notes = []
    if len(deployed) != len(reference):
        notes.append(f"lengths differ by {len(deployed) - len(reference):+,} bytes")
    if differing:
        notes.append(f"{len(differing):,} byte(s) differ")
    return CodeComparison(
        role,
        name,
        address,
        False,
        len(deployed),
        len(reference),
        len(ranges),
        ignore_metadata,
        first_difference=first,
        differing_bytes=len(differing),
        onchain_context=_context(deployed, first),
        reference_context=_context(reference, first),
        note="; ".join(notes),
        metadata_hash=metadata_hash,
        metadata_exact=metadata_exact,
    )


@dataclass(frozen=True)
class Verification:
    """Every deployed contract's verdict against one reference."""

    reference: str
    compiler: str
    block: int
    comparisons: list[CodeComparison]
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.comparisons) and all(c.ok for c in self.comparisons)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "reference": self.reference,
            "compiler": self.compiler,
            "block": self.block,
            "contracts": [c.to_dict() for c in self.comparisons],
            "notes": self.notes,
        }


def verify_contracts(
    rpc: Rpc,
    contracts: Contracts,
    reference: Reference,
    *,
    ignore_metadata: bool = False,
    block: int | None = None,
) -> Verification:
    """Compare hub, token, badges and each current admin (the timelock) with ``reference``."""
    at = rpc.block_number() if block is None else block
    targets = [("hub", contracts.hub), ("token", contracts.token), ("badges", contracts.badges)]
    targets += [("timelock", admin) for admin in contracts.admins]
    notes: list[str] = []
    if not contracts.admins:
        notes.append("nobody holds the hub's DEFAULT_ADMIN_ROLE: its rules can no longer change")
    comparisons: list[CodeComparison] = []
    for role, address in targets:
        artifact = reference.artifacts.get(ROLE_ARTIFACTS[role])
        if artifact is None:
            raise KeyError(f"the reference has no {ROLE_ARTIFACTS[role]} artifact")
        code = rpc.get_code(address, at)
        comparison = compare_code(role, address, code, artifact, ignore_metadata=ignore_metadata)
        if role == "timelock" and not code:
            comparison = CodeComparison(
                role,
                comparison.contract,
                address,
                False,
                0,
                comparison.reference_length,
                0,
                ignore_metadata,
                note="the hub's admin is an account without code, not the timelock: "
                "rule changes bypass the published delay",
            )
        comparisons.append(comparison)
    return Verification(reference.source, reference.compiler, at, comparisons, notes)


def verify(
    rpc: Rpc | str,
    hub: str,
    *,
    recompile: bool = True,
    root: Path = PROJECT_ROOT,
    ignore_metadata: bool = False,
    start_block: int | None = None,
) -> Verification:
    """Discover the network from its hub and verify every contract of it."""
    client = Rpc(rpc) if isinstance(rpc, str) else rpc
    block = client.block_number()
    contracts = AuditLog(client, hub, start_block=start_block).discover(block)
    reference = reference_artifacts(recompile=recompile, root=root)
    return verify_contracts(
        client, contracts, reference, ignore_metadata=ignore_metadata, block=block
    )
