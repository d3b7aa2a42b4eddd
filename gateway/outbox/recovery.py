"""Recover the outbox's state from the chain after a database loss (a restored backup).

Responsibilities:

- tell whether the database is behind the chain: a merchant's next sequence
  number is already used on chain (``behind``);
- then read every ``PointsIssued`` log (and the mint ``Transfer`` logs of the same
  transactions) and every ``PointsClawedBack`` log and, by ``eventRef``: confirm
  the issuance and clawback ops the database still has as pending, sent or
  failed (with the on-chain sequence number, transaction and, for a clawback,
  what it burned), and *adopt* those it does not know at all as confirmed ops
  without an event, so that a merchant retrying such an event later gets its
  ops confirmed by ``claim`` instead of a second mint or burn;
- move each merchant's sequence counter past every number used on chain;
- ``claim``: before issuing or clawing back, take the ops whose reference an
  adopted op already carries (the retried event becomes its owner).

The hub refuses a reused sequence number, but a resynced counter hands out fresh
ones: without this module a restored database would mint again every event
issued after the backup, and burn again every partial refund clawed back after
it (the hub only stops a clawback past what the issuance gave).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from hexbytes import HexBytes
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from chain.contracts import Network
from chain.records import checksum
from gateway.db import NO_KEY_UPDATE, transaction
from gateway.models import ChainOp, ChainTx, Merchant

log = logging.getLogger("pointsnet.recovery")

UNFINISHED = ("pending", "sent", "failed")
#: The op kinds recovered from the chain by their eventRef.
RECOVERED_KINDS = ("issue", "clawback")


@dataclass(frozen=True)
class OnChainIssuance:
    merchant: int
    seq: int
    ref: str
    member: str
    amount: int
    rule_version: int
    tx_hash: str
    block: int
    input_root: str | None = None  # the batch's, as its PointsIssued logs it


@dataclass(frozen=True)
class OnChainClawback:
    merchant: int
    seq: int
    original_seq: int
    ref: str
    member: str
    requested: int
    burned: int
    tx_hash: str
    block: int


@dataclass
class RecoveryReport:
    confirmed: int = 0
    adopted: int = 0
    seq_moved: dict[int, int] = field(default_factory=dict)


class ChainRecovery:
    """Brings the outbox's issuance state in line with the chain."""

    def __init__(
        self,
        network: Network,
        sessions: sessionmaker[Session],
        update_events: Callable[[Session, list[ChainOp]], None],
    ) -> None:
        self.network = network
        self.sessions = sessions
        self.update_events = update_events
        #: ref -> adopted op id, loaded lazily; empty means claim() costs nothing.
        self.adopted: dict[str, int] = {}

    # ------------------------------------------------------------ detection

    def behind(self) -> list[int]:
        """Merchants whose next sequence number the chain has already used."""
        with self.sessions() as session:
            counters = session.execute(select(Merchant.id, Merchant.next_seq)).all()
        hub = self.network.hub
        return [int(m) for m, seq in counters if hub.is_sequence_used(int(m), int(seq))]

    def load_adopted(self) -> None:
        with self.sessions() as session:
            rows = session.execute(
                select(ChainOp.ref, ChainOp.id).where(
                    ChainOp.event_id.is_(None), ChainOp.kind.in_(RECOVERED_KINDS)
                )
            ).all()
        self.adopted = {str(ref).lower(): int(op_id) for ref, op_id in rows}

    # ------------------------------------------------------------ the sweep

    def recover_if_behind(self) -> RecoveryReport | None:
        merchants = self.behind()
        if not merchants:
            self.load_adopted()
            return None
        log.warning("database behind the chain for merchant(s) %s: recovering", merchants)
        report = self.sweep()
        self.load_adopted()
        log.warning(
            "recovered from chain: %d op(s) confirmed, %d adopted, counters %s",
            report.confirmed, report.adopted, report.seq_moved,
        )  # fmt: skip
        return report

    def issuances(self) -> list[OnChainIssuance]:
        return [
            OnChainIssuance(
                r.merchant, r.seq, r.ref, checksum(r.member), r.amount, r.rule_version,
                r.tx_hash, r.block, r.input_root,
            )
            for r in self.network.issuances()
        ]  # fmt: skip

    def clawbacks(self) -> list[OnChainClawback]:
        return [
            OnChainClawback(
                r.merchant, r.seq, r.original_seq, r.ref, checksum(r.member), r.requested,
                r.amount, r.tx_hash, r.block,
            )
            for r in self.network.clawbacks()
        ]  # fmt: skip

    def sweep(self) -> RecoveryReport:
        report = RecoveryReport()
        issued, clawed = self.issuances(), self.clawbacks()
        used: dict[int, int] = {}
        with transaction(self.sessions) as session:
            known: dict[tuple[str, str], list[ChainOp]] = {}
            for op in session.scalars(select(ChainOp).where(ChainOp.kind.in_(RECOVERED_KINDS))):
                known.setdefault((op.kind, op.ref.lower()), []).append(op)
            touched: list[ChainOp] = []
            txs: dict[str, ChainTx] = {}

            def settle(kind: str, item: OnChainIssuance | OnChainClawback) -> ChainOp | None:
                """The database's op for ``item``, confirmed now (None: none was waiting)."""
                used[item.merchant] = max(used.get(item.merchant, -1), item.seq)
                ops = known.get((kind, item.ref.lower()), [])
                if any(op.status == "confirmed" and op.seq == item.seq for op in ops):
                    return None
                tx = txs.get(item.tx_hash) or self._tx(session, kind, item)
                txs[item.tx_hash] = tx
                waiting = [op for op in ops if op.status in UNFINISHED]
                if waiting:
                    op = waiting[0]
                    op.status, op.seq, op.tx_id, op.error = "confirmed", item.seq, tx.id, None
                    touched.append(op)
                    report.confirmed += 1
                elif not ops:
                    op = ChainOp(
                        event_id=None, merchant_id=item.merchant, kind=kind,
                        member_address=item.member, ref=item.ref, seq=item.seq,
                        status="confirmed", tx_id=tx.id, payload={"adopted": True},
                    )  # fmt: skip
                    session.add(op)
                    report.adopted += 1
                else:
                    return None
                return op

            for issuance in issued:
                mint = settle("issue", issuance)
                if mint is not None and mint.event_id is None:
                    mint.amount, mint.rule_version = issuance.amount, issuance.rule_version
            for clawback in clawed:
                burn = settle("clawback", clawback)
                if burn is not None:
                    burn.original_seq, burn.burned = clawback.original_seq, clawback.burned
                    if burn.event_id is None:
                        burn.amount = clawback.requested
            for merchant_id, highest in used.items():
                merchant = session.get(Merchant, merchant_id, with_for_update=NO_KEY_UPDATE)
                if merchant is not None and merchant.next_seq <= highest:
                    merchant.next_seq = highest + 1
                    report.seq_moved[merchant_id] = highest + 1
            session.flush()
            self.update_events(session, touched)
        return report

    def _tx(self, session: Session, kind: str, item: OnChainIssuance | OnChainClawback) -> ChainTx:
        """The stored transaction with this hash, or one recorded from the chain."""
        tx = session.scalars(select(ChainTx).where(ChainTx.tx_hash == item.tx_hash)).first()
        if tx is None:
            onchain: Any = self.network.hub.w3.eth.get_transaction(HexBytes(item.tx_hash))
            tx = ChainTx(
                kind=kind, merchant_id=item.merchant, sender=onchain["from"],
                nonce=int(onchain["nonce"]), tx_hash=item.tx_hash, raw=b"",
                max_fee_per_gas=int(onchain.get("maxFeePerGas", 0) or 0),
                max_priority_fee_per_gas=int(onchain.get("maxPriorityFeePerGas", 0) or 0),
                gas=int(onchain["gas"]), status="confirmed", block_number=item.block,
                error="recorded from the chain after a database loss",
                input_root=item.input_root if isinstance(item, OnChainIssuance) else None,
            )  # fmt: skip
            session.add(tx)
            session.flush()
        elif tx.status != "confirmed":
            tx.status, tx.block_number = "confirmed", item.block
        return tx

    # ------------------------------------------------------------ late retries

    def claim(self, session: Session, ops: Iterable[ChainOp]) -> int:
        """Confirm the ops an adopted op already carries (a merchant retried an event issued
        or clawed back before the database was lost); returns how many. Costs nothing
        normally."""
        if not self.adopted:
            return 0
        taken = []
        for op in ops:
            adopted_id = self.adopted.get(op.ref.lower())
            adopted = session.get(ChainOp, adopted_id) if adopted_id is not None else None
            if adopted is None or op.kind != adopted.kind:
                continue
            if op.amount != adopted.amount:  # the retry is not the request that was sent
                log.warning(
                    "retried %s op %s asks %s, the chain carried %s under its reference",
                    op.kind, op.ref, op.amount, adopted.amount,
                )  # fmt: skip
            op.status, op.seq, op.tx_id, op.error = "confirmed", adopted.seq, adopted.tx_id, None
            if op.kind == "clawback":
                op.original_seq, op.burned = adopted.original_seq, adopted.burned
            session.delete(adopted)  # the event's own op now stands for it
            self.adopted.pop(op.ref.lower(), None)
            taken.append(op)
        if taken:
            session.flush()
            self.update_events(session, taken)
            log.info("%d retried op(s) matched issuances recovered from the chain", len(taken))
        return len(taken)
