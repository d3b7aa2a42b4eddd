"""Anomalies: what the history shows that the contracts' rules do not allow.

One pure check per concern, each over the records in chain order: issuance over a
cap, acts of unknown or inactive merchants, sequence gaps and reuse, clawbacks that
do not match their issuance, value moved while paused, mints or burns the hub's
events do not account for, and rule issuance under a rule-set version not in effect
or of an unknown mint kind. :func:`find_anomalies` runs them all.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from chain.abi import MINT_KIND_NAMES
from chain.decode import chain_order
from chain.records import (
    BadgeAward,
    Clawback,
    Issuance,
    IssuanceBatch,
    MerchantChange,
    ParameterChange,
    Record,
    Redemption,
    RuleSetPublication,
    TokenMovement,
    checksum,
    iso_time,
)


@dataclass(frozen=True)
class Anomaly:
    """Something the history shows that the rules do not allow (or that needs explaining)."""

    kind: str
    message: str
    block: int | None = None
    tx_hash: str | None = None
    log_index: int | None = None
    merchant: int | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "message": self.message,
            "block": self.block,
            "tx_hash": self.tx_hash,
            "log_index": self.log_index,
            "merchant": self.merchant,
            "details": self.details,
        }


def _at(r: Record, kind: str, message: str, merchant: int | None, **details: Any) -> Anomaly:
    return Anomaly(kind, message, r.block, r.tx_hash, r.log_index, merchant, details)


def cap_anomalies(records: Iterable[Record]) -> list[Anomaly]:
    """Issuance over a merchant's cap within a cap period, recomputed as the hub does
    (period index ``time // capPeriodSeconds`` with the cap and period then in force)."""
    found: list[Anomaly] = []
    period_seconds = 0
    caps: dict[int, int] = {}
    windows: dict[int, tuple[int, int]] = {}  # merchant -> (period index, minted)
    for r in records:
        if isinstance(r, IssuanceBatch):
            cap = caps.get(r.merchant)
            if cap is None or period_seconds == 0:
                continue  # unknown merchant: reported by status_anomalies
            period = r.time // period_seconds
            current, minted = windows.get(r.merchant, (-1, 0))
            minted = (minted if current == period else 0) + r.amount
            windows[r.merchant] = (period, minted)
            if minted > cap:
                found.append(
                    _at(
                        r,
                        "cap_exceeded",
                        f"merchant {r.merchant} minted {minted:,} in cap period {period} "
                        f"({period_seconds}s), cap {cap:,}",
                        r.merchant,
                        period=period,
                        minted=minted,
                        cap=cap,
                    )
                )
        elif isinstance(r, MerchantChange) and r.cap is not None:
            caps[r.merchant] = r.cap
        elif isinstance(r, ParameterChange) and r.kind == "cap_period_changed":
            period_seconds = r.value or 0
    return found


_ACTS = {IssuanceBatch: "issuance", Redemption: "redemption", BadgeAward: "badge award"}


def status_anomalies(records: Iterable[Record]) -> list[Anomaly]:
    """Issuance, redemption and badge awards by unknown or non-active merchants, issuance
    citing a rule-set version not yet published, and minting after sunset."""
    found: list[Anomaly] = []
    status: dict[int, str] = {}
    versions: dict[int, int] = {}
    sunset = False
    for r in records:
        if isinstance(r, MerchantChange):
            if r.status is not None:
                status[r.merchant] = r.status
        elif isinstance(r, RuleSetPublication):
            versions[r.merchant] = max(versions.get(r.merchant, 0), r.rule_version)
        elif isinstance(r, ParameterChange) and r.kind == "sunset":
            sunset = True
        elif isinstance(r, IssuanceBatch | Redemption | BadgeAward):
            what = _ACTS[type(r)]
            state = status.get(r.merchant)
            if state is None:
                message = f"{what} by unknown merchant {r.merchant}"
                found.append(_at(r, "unknown_merchant", message, r.merchant))
            elif state != "active":
                message = f"{what} by merchant {r.merchant} while {state}"
                found.append(_at(r, "merchant_not_active", message, r.merchant, status=state))
            if isinstance(r, IssuanceBatch) and r.mint_kind == RULE_KIND:
                published = versions.get(r.merchant, 0)
                if r.rule_version == 0 or r.rule_version > published:
                    message = (
                        f"merchant {r.merchant} issued under rule set v{r.rule_version} "
                        f"(latest published: v{published})"
                    )
                    found.append(_at(r, "unknown_rule_version", message, r.merchant))
            if sunset and not isinstance(r, Redemption):
                found.append(_at(r, "minted_after_sunset", f"{what} after sunset", r.merchant))
    return found


def sequence_anomalies(records: Iterable[Record]) -> list[Anomaly]:
    """Per merchant, issuances and clawbacks share one sequence space from 0: report
    missing ranges (gaps below the highest number used) and numbers used twice."""
    used: defaultdict[int, list[tuple[int, int, Record]]] = defaultdict(list)
    for r in records:
        if isinstance(r, IssuanceBatch) and r.count > 0:
            used[r.merchant].append((r.seq, r.seq + r.count - 1, r))
        elif isinstance(r, Clawback):
            used[r.merchant].append((r.seq, r.seq, r))
    found: list[Anomaly] = []
    for merchant in sorted(used):
        spans = sorted(used[merchant], key=lambda s: (s[0], s[1]))
        expected = 0
        for first, last, r in spans:
            if first > expected:
                found.append(
                    Anomaly(
                        "sequence_gap",
                        f"merchant {merchant} never used sequence numbers "
                        + (f"{expected}..{first - 1}" if first - 1 > expected else f"{expected}"),
                        merchant=merchant,
                        details={"first_missing": expected, "last_missing": first - 1},
                    )
                )
            elif first < expected:
                found.append(
                    _at(
                        r,
                        "sequence_reused",
                        f"merchant {merchant} used sequence numbers "
                        f"{first}..{min(last, expected - 1)} again",
                        merchant,
                        first=first,
                        last=min(last, expected - 1),
                    )
                )
            expected = max(expected, last + 1)
    return found


def clawback_anomalies(records: Iterable[Record]) -> list[Anomaly]:
    """Clawbacks whose original sequence number was never issued (before them), that burn
    from another member than the one the original event credited, or that burn, in all,
    more than the original event issued."""
    records = list(records)
    issued: defaultdict[int, list[tuple[int, int]]] = defaultdict(list)  # merchant -> ranges
    clawbacks: list[Clawback] = []
    for r in records:
        if isinstance(r, IssuanceBatch) and r.count > 0:
            issued[r.merchant].append((r.seq, r.seq + r.count - 1))
        elif isinstance(r, Clawback):
            ranges = issued.get(r.merchant, [])
            if not any(a <= r.original_seq <= b for a, b in ranges):
                clawbacks.append(r)
    found = [
        _at(
            r,
            "clawback_unknown_seq",
            f"merchant {r.merchant} clawed back {r.amount:,} from {checksum(r.member)} for event "
            f"{r.original_seq}, which it never issued",
            r.merchant,
            original_seq=r.original_seq,
        )
        for r in clawbacks
    ]
    wanted: defaultdict[tuple[int, int], list[Clawback]] = defaultdict(list)
    for r in records:
        if isinstance(r, Clawback):
            wanted[(r.merchant, r.original_seq)].append(r)
    originals = {
        (r.merchant, r.seq): r
        for r in (records if wanted else ())
        if isinstance(r, Issuance) and (r.merchant, r.seq) in wanted
    }
    for key, claws in wanted.items():
        original = originals.get(key)
        if original is None:
            continue
        burned = 0
        for claw in claws:
            if claw.member != original.member:
                found.append(
                    _at(
                        claw,
                        "clawback_wrong_member",
                        f"merchant {key[0]} clawed back {claw.amount:,} from "
                        f"{checksum(claw.member)} for event {key[1]}, which credited "
                        f"{checksum(original.member)}",
                        key[0],
                        original_seq=key[1],
                        credited=checksum(original.member),
                    )
                )
            before, burned = burned, burned + claw.amount
            if burned > original.amount >= before:
                found.append(
                    _at(
                        claw,
                        "clawback_exceeds_issuance",
                        f"merchant {key[0]} clawed back {burned:,} in all for event {key[1]}, "
                        f"which issued {original.amount:,}",
                        key[0],
                        original_seq=key[1],
                        issued=original.amount,
                        clawed_back=burned,
                    )
                )
    return sorted(found, key=lambda a: (a.block or 0, a.log_index or 0))


def pause_anomalies(records: Iterable[Record]) -> list[Anomaly]:
    """Value that moved while the hub was paused: member transfers, issuance, redemption,
    clawback (the contracts forbid all of them)."""
    found: list[Anomaly] = []
    paused = False
    for r in records:
        if isinstance(r, ParameterChange) and r.kind in ("paused", "unpaused"):
            paused = r.kind == "paused"
        elif not paused:
            continue
        elif isinstance(r, TokenMovement) and r.kind == "token_transfer":
            message = (
                f"{r.amount:,} points moved from {checksum(r.sender)} to "
                f"{checksum(r.recipient)} while paused"
            )
            found.append(_at(r, "transfer_while_paused", message, None, amount=r.amount))
        elif isinstance(r, IssuanceBatch | Redemption | Clawback):
            message = f"{r.kind} while paused"
            found.append(_at(r, f"{r.kind}_while_paused", message, r.merchant, amount=r.amount))
    return found


def attribution_anomalies(records: Iterable[Record]) -> list[Anomaly]:
    """Token mints and burns the hub's events do not account for: mints outside any
    ``PointsIssued``, batches whose mints do not match their count or total, and
    transactions whose burns differ from their redemptions plus clawbacks."""
    found: list[Anomaly] = []
    burns: defaultdict[str, int] = defaultdict(int)
    accounted: defaultdict[str, int] = defaultdict(int)
    where: dict[str, Record] = {}
    for r in records:
        if isinstance(r, TokenMovement):
            if r.kind == "token_mint":
                message = (
                    f"{r.amount:,} points minted to {checksum(r.recipient)} without a PointsIssued"
                )
                found.append(_at(r, "unattributed_mint", message, None, amount=r.amount))
            elif r.kind == "token_burn":
                burns[r.tx_hash] += r.amount
                where.setdefault(r.tx_hash, r)
        elif isinstance(r, IssuanceBatch) and (r.minted != r.count or r.minted_total != r.amount):
            message = (
                f"PointsIssued of merchant {r.merchant} says {r.count} events / "
                f"{r.amount:,} points; the token minted {r.minted} / {r.minted_total:,}"
            )
            found.append(
                _at(
                    r,
                    "batch_mismatch",
                    message,
                    r.merchant,
                    count=r.count,
                    total=r.amount,
                    minted=r.minted,
                    minted_total=r.minted_total,
                )
            )
        elif isinstance(r, Redemption | Clawback):
            accounted[r.tx_hash] += r.amount
            where.setdefault(r.tx_hash, r)
    for tx_hash in sorted(set(burns) | set(accounted), key=lambda h: chain_order(where[h])):
        burned, explained = burns.get(tx_hash, 0), accounted.get(tx_hash, 0)
        if burned != explained:
            message = (
                f"tx burned {burned:,} points; its redemptions and clawbacks account for "
                f"{explained:,}"
            )
            found.append(
                _at(
                    where[tx_hash],
                    "unattributed_burn",
                    message,
                    None,
                    burned=burned,
                    accounted=explained,
                )
            )
    return found


#: The mint kind of rule issuance (``MintKind.Rule``); other kinds name no rule version.
RULE_KIND = 0


def mint_kind_name(kind: int) -> str:
    """``rule`` / ``adjustment`` / ``payout`` / ``prize``, or ``kind 7`` for an unknown one."""
    return MINT_KIND_NAMES[kind] if 0 <= kind < len(MINT_KIND_NAMES) else f"kind {kind}"


def rule_anomalies(records: Iterable[Record]) -> list[Anomaly]:
    """Rule issuance under a rule-set version that was not in effect at the batch's block
    time (the hub refuses the latest version before its ``effective_at``; earlier versions
    are in effect by construction), mints of a kind the hub does not know, and other
    kinds naming a rule version (the hub refuses both)."""
    found: list[Anomaly] = []
    effective: dict[tuple[int, int], int] = {}
    for r in records:
        if isinstance(r, RuleSetPublication):
            effective[(r.merchant, r.rule_version)] = r.effective_at
        elif not isinstance(r, IssuanceBatch):
            continue
        elif r.mint_kind >= len(MINT_KIND_NAMES):
            message = (
                f"merchant {r.merchant} minted {r.amount:,} points of unknown kind {r.mint_kind}"
            )
            found.append(_at(r, "unknown_mint_kind", message, r.merchant, mint_kind=r.mint_kind))
        elif r.mint_kind != RULE_KIND:
            if r.rule_version != 0:
                message = (
                    f"merchant {r.merchant} minted {mint_kind_name(r.mint_kind)} points "
                    f"naming rule set v{r.rule_version}"
                )
                found.append(
                    _at(r, "rule_version_not_expected", message, r.merchant, mint_kind=r.mint_kind)
                )
        else:
            at = effective.get((r.merchant, r.rule_version))
            if at is not None and r.time < at:
                message = (
                    f"merchant {r.merchant} issued under rule set v{r.rule_version} at "
                    f"{iso_time(r.time)}, before it took effect at {iso_time(at)}"
                )
                found.append(
                    _at(
                        r,
                        "rule_version_not_in_effect",
                        message,
                        r.merchant,
                        rule_version=r.rule_version,
                        effective_at=at,
                    )
                )
    return found


ANOMALY_CHECKS: tuple[Callable[[Sequence[Record]], list[Anomaly]], ...] = (
    cap_anomalies,
    status_anomalies,
    sequence_anomalies,
    clawback_anomalies,
    pause_anomalies,
    attribution_anomalies,
    rule_anomalies,
)


def find_anomalies(records: Sequence[Record]) -> list[Anomaly]:
    """Every anomaly of the history (records in chain order), in chain order."""
    found = [a for check in ANOMALY_CHECKS for a in check(records)]
    return sorted(found, key=lambda a: (a.block if a.block is not None else -1, a.log_index or 0))
