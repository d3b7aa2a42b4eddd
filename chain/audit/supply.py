"""The supply invariant: the logs against the contracts' own views at one block.

:func:`chain_state_at` reads what the contracts say at a block (``totalSupply``,
every merchant's counters, the hub's settings) in two JSON-RPC batches;
:func:`supply_report` checks ``totalSupply == Σ balances == Σissued - Σredeemed -
Σclawed back == Σ counters``, and each merchant's counters against its events.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from eth_abi import decode as abi_decode

from chain.abi import MERCHANT_STATUS, ZERO_ADDRESS, selector
from chain.audit.reader import Contracts
from chain.jsonrpc import Rpc
from chain.records import (
    Address,
    Clawback,
    Issuance,
    IssuanceBatch,
    Record,
    Redemption,
    TokenMovement,
    checksum,
)


@dataclass(frozen=True)
class MerchantCounters:
    """The hub's ``merchant(id)`` view at a block."""

    merchant: int
    signer: Address
    status: str
    cap_per_period: int
    rule_version: int
    issued: int
    redeemed: int
    clawed_back: int


@dataclass(frozen=True)
class ChainState:
    """What the contracts themselves say at ``block`` (eth_call), to check the logs against."""

    block: int
    total_supply: int
    merchants: dict[int, MerchantCounters]
    paused: bool
    point_value_micros: int
    currency: str


def chain_state_at(rpc: Rpc, contracts: Contracts, block: int) -> ChainState:
    """Read total supply, every merchant's counters and the hub's settings at ``block``."""
    tag = hex(block)

    def call(to: str, data: bytes) -> tuple[str, list[Any]]:
        return "eth_call", [{"to": to, "data": "0x" + data.hex()}, tag]

    head = rpc.batch(
        [
            call(contracts.token, selector("totalSupply()")),
            call(contracts.hub, selector("merchantCount()")),
            call(contracts.hub, selector("paused()")),
            call(contracts.hub, selector("pointValueMicros()")),
            call(contracts.hub, selector("valueCurrency()")),
        ]
    )
    raw = [bytes.fromhex(str(h)[2:]) for h in head]
    total_supply, count, paused, value = (int.from_bytes(r[:32], "big") for r in raw[:4])
    (currency,) = abi_decode(["string"], raw[4])
    answers = rpc.batch(
        [
            call(contracts.hub, selector("merchant(uint32)") + m.to_bytes(32, "big"))
            for m in range(1, count + 1)
        ]
    )
    merchants: dict[int, MerchantCounters] = {}
    for merchant_id, answer in enumerate(answers, start=1):
        words = bytes.fromhex(str(answer)[2:])
        signer, status, cap, _period, _minted, version, _effective, _hash, *counters = abi_decode(
            ["address", "uint8", "uint64", "uint64", "uint64", "uint64", "uint64", "bytes32"]
            + ["uint128"] * 3,
            words,
        )
        issued, redeemed, clawed = counters
        merchants[merchant_id] = MerchantCounters(
            merchant_id,
            str(signer).lower(),
            MERCHANT_STATUS[status] if status < len(MERCHANT_STATUS) else str(status),
            cap,
            version,
            issued,
            redeemed,
            clawed,
        )
    return ChainState(block, total_supply, merchants, bool(paused), value, str(currency))


@dataclass(frozen=True)
class Check:
    """One equality the audit expects; ``ok`` when both sides agree."""

    name: str
    left_label: str
    left: int
    right_label: str
    right: int

    @property
    def ok(self) -> bool:
        return self.left == self.right

    def describe(self) -> str:
        sign = "==" if self.ok else "!="
        return (
            f"{self.name}: {self.left_label} {self.left:,} {sign} {self.right_label} {self.right:,}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "ok": self.ok,
            "left_label": self.left_label,
            "left": self.left,
            "right_label": self.right_label,
            "right": self.right,
        }


@dataclass(frozen=True)
class SupplyReport:
    """The supply invariant at ``block``, from four independent sources."""

    block: int
    total_supply: int  # token.totalSupply() at the block
    replayed_supply: int  # Σ balances replayed from Transfer logs
    issued: int  # Σ PointsIssued.total
    redeemed: int  # Σ PointsRedeemed.amount
    clawed_back: int  # Σ PointsClawedBack.burned
    counters_net: int  # Σ over merchants of the hub's issued - redeemed - clawedBack
    holders: int  # members with a positive replayed balance
    negative_balances: dict[Address, int]
    checks: list[Check]

    @property
    def hub_net(self) -> int:
        return self.issued - self.redeemed - self.clawed_back

    @property
    def ok(self) -> bool:
        return not self.negative_balances and all(c.ok for c in self.checks)

    def mismatches(self) -> list[str]:
        found = [c.describe() for c in self.checks if not c.ok]
        found += [
            f"replayed balance of {checksum(a)} is negative ({v:,}): logs are missing"
            for a, v in sorted(self.negative_balances.items())
        ]
        return found

    def to_dict(self) -> dict[str, Any]:
        return {
            "block": self.block,
            "ok": self.ok,
            "total_supply": self.total_supply,
            "replayed_supply": self.replayed_supply,
            "issued": self.issued,
            "redeemed": self.redeemed,
            "clawed_back": self.clawed_back,
            "hub_net": self.hub_net,
            "counters_net": self.counters_net,
            "holders": self.holders,
            "negative_balances": {checksum(a): v for a, v in self.negative_balances.items()},
            "checks": [c.to_dict() for c in self.checks],
            "mismatches": self.mismatches(),
        }


def replay_balances(records: Iterable[Record]) -> dict[Address, int]:
    """Every holder's balance from the token's Transfer logs (issuances included)."""
    balances: defaultdict[Address, int] = defaultdict(int)
    for r in records:
        if isinstance(r, Issuance):
            balances[r.member] += r.amount
        elif isinstance(r, TokenMovement):
            if r.sender != ZERO_ADDRESS:
                balances[r.sender] -= r.amount
            if r.recipient != ZERO_ADDRESS:
                balances[r.recipient] += r.amount
    return dict(balances)


@dataclass
class _Totals:
    issued: int = 0
    redeemed: int = 0
    clawed_back: int = 0

    @property
    def net(self) -> int:
        return self.issued - self.redeemed - self.clawed_back


def _hub_totals(records: Iterable[Record]) -> dict[int, _Totals]:
    totals: defaultdict[int, _Totals] = defaultdict(_Totals)
    for r in records:
        if isinstance(r, IssuanceBatch):
            totals[r.merchant].issued += r.amount
        elif isinstance(r, Redemption):
            totals[r.merchant].redeemed += r.amount
        elif isinstance(r, Clawback):
            totals[r.merchant].clawed_back += r.amount
    return dict(totals)


def supply_report(records: Sequence[Record], state: ChainState) -> SupplyReport:
    """Check ``totalSupply == Σ balances == Σissued - Σredeemed - Σclawed back == Σ counters``
    (and each merchant's counters against its events) at ``state.block``."""
    records = [r for r in records if r.block <= state.block]
    balances = replay_balances(records)
    replayed = sum(balances.values())
    per_merchant = _hub_totals(records)
    issued = sum(t.issued for t in per_merchant.values())
    redeemed = sum(t.redeemed for t in per_merchant.values())
    clawed = sum(t.clawed_back for t in per_merchant.values())
    counters_net = sum(m.issued - m.redeemed - m.clawed_back for m in state.merchants.values())
    minted = burned = 0
    for r in records:
        if isinstance(r, Issuance) or (isinstance(r, TokenMovement) and r.kind == "token_mint"):
            minted += r.amount
        elif isinstance(r, TokenMovement) and r.kind == "token_burn":
            burned += r.amount
    checks = [
        Check("supply vs Transfer logs", "totalSupply", state.total_supply, "Σbalances", replayed),
        Check(
            "Transfer logs vs hub events",
            "Σbalances",
            replayed,
            "Σissued-Σredeemed-Σclawed",
            issued - redeemed - clawed,
        ),
        Check(
            "hub events vs hub counters",
            "Σissued-Σredeemed-Σclawed",
            issued - redeemed - clawed,
            "Σcounters",
            counters_net,
        ),
        Check("mints vs PointsIssued", "Σminted", minted, "ΣPointsIssued.total", issued),
        Check(
            "burns vs redemptions+clawbacks",
            "Σburned",
            burned,
            "Σredeemed+Σclawed",
            redeemed + clawed,
        ),
    ]
    for merchant_id in sorted(set(per_merchant) | set(state.merchants)):
        events = per_merchant.get(merchant_id, _Totals())
        counters = state.merchants.get(merchant_id)
        if counters is None:
            checks.append(Check(f"merchant {merchant_id} exists", "on chain", 0, "in events", 1))
            continue
        for label, logged, counted in (
            ("issued", events.issued, counters.issued),
            ("redeemed", events.redeemed, counters.redeemed),
            ("clawed back", events.clawed_back, counters.clawed_back),
        ):
            checks.append(
                Check(f"merchant {merchant_id} {label}", "events", logged, "counter", counted)
            )
    return SupplyReport(
        block=state.block,
        total_supply=state.total_supply,
        replayed_supply=replayed,
        issued=issued,
        redeemed=redeemed,
        clawed_back=clawed,
        counters_net=counters_net,
        holders=sum(1 for v in balances.values() if v > 0),
        negative_balances={a: v for a, v in balances.items() if v < 0},
        checks=checks,
    )
