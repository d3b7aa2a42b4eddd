"""Disclosure lines (format 1): what anyone needs to recompute one issuance or clawback.

One line per *confirmed* ``issue`` or ``clawback`` op, written as one JSON object per
line (``application/x-ndjson``, keys sorted, :func:`gateway.rules.canonical.plain_dumps`)::

    {"disclosure": 1, "op_id", "chain_id", "hub", "merchant_id", "event_id",
     "kind": "issue" | "clawback", "part", "ref", "seq", "tx_hash", "block", "amount",
     "input": "<canonical text>" | null, "input_hash", "proof": ["0x…", …], "root"}

``input`` is the op's kept input (:mod:`gateway.rules.disclosure`), ``input_hash`` its
keccak-256 (the op's), ``root`` the ``inputRoot`` its batch logged (``chain_txs.input_root``)
and ``proof`` the path of the leaf ``chain.merkle.input_leaf(ref, input_hash)`` to it.  The
tree is rebuilt from the batch's ops in sequence order, as the outbox built it
(:func:`gateway.outbox.packing.input_root`: ``(ref, input_hash or ZERO32)``).

A line without an input says why in ``reason``: the op was accepted before inputs were
kept (``input_hash`` null; its batch committed the zero hash, or nothing before
migration 0008: ``root`` null), or the member's data was erased (``erased: true``; the
salted hash stays on the op and on chain, revealing nothing).  ``op_id`` is the gateway's
id of the op (the wallet history entry's id; the export's cursor).  ``part`` is the input's
(``points``, ``referral``, ``clawback``, ``referral-clawback``), null without one.

The same generator (:func:`lines`) feeds ``GET /v1/events/export`` (one merchant's
lines), ``pointsnet merchant export`` and the wallet's ``GET /v1/wallet/disclosure``
(a member's own lines); it reads :data:`PAGE_SIZE` ops per query, each page in a session
of its own, so a long export holds no transaction open.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from chain import merkle
from chain.abi import ZERO32
from gateway.context import GatewayContext
from gateway.errors import NotFound
from gateway.models import ChainOp, ChainTx, Event, IssuanceInput, Member
from gateway.rules.canonical import plain_dumps
from gateway.rules.explain import explain_breakdown
from gateway.rules.model import RuleSet
from gateway.schemas import (
    ClausePublic,
    DisclosureLinePublic,
    EntryProofPublic,
    EntryRulesPublic,
)
from gateway.services import rulesets

log = logging.getLogger(__name__)

#: The line format's version (the ``disclosure`` field).
DISCLOSURE = 1
#: The media type of a stream of lines.
MEDIA_TYPE = "application/x-ndjson"
#: Ops read per query.
PAGE_SIZE = 500
#: The op kinds a line is written for: the ones whose batches commit to inputs.
KINDS = ("issue", "clawback")
#: ``reason`` of a line whose op was accepted before inputs were kept.
BEFORE_INPUTS = "before inputs were kept"
#: ``reason`` of a line whose input was erased at the member's request.
ERASED = "erased at the member's request"
#: Batch trees a :class:`Prover` keeps.
TREES_KEPT = 64


@dataclass(frozen=True)
class Network:
    """The chain and hub every line names."""

    chain_id: int
    hub: str

    @classmethod
    def of(cls, context: GatewayContext) -> Network:
        return cls(int(context.link.chain_id), str(context.link.network.hub.address))


@dataclass(frozen=True)
class Scope:
    """Which ops to disclose: one merchant's, or those paid to (or clawed back from) a
    member's addresses; ``since``/``until`` bound the event's acceptance (``[since,
    until)``), ``after`` is the cursor (an op id: lines come in op id order)."""

    merchant_id: int | None = None
    addresses: tuple[str, ...] | None = None
    since: datetime | None = None
    until: datetime | None = None
    after: int = 0


@dataclass(frozen=True)
class _Tree:
    """One batch's input tree: each op's leaf index and every level."""

    index: dict[int, int]
    levels: list[list[bytes]]


class Prover:
    """Proofs of ops' inputs against their batch's root; the trees of the last
    :data:`TREES_KEPT` batches are kept (a batch of 100 ops is built once, not 100 times).
    One per export: a batch's ops never change once it is confirmed, but a prover is not
    shared between databases."""

    def __init__(self) -> None:
        self._trees: OrderedDict[int, _Tree] = OrderedDict()

    def proof(self, session: Session, op_id: int, tx_id: int) -> list[str]:
        """The path of op ``op_id``'s leaf in the tree of transaction ``tx_id``'s ops."""
        tree = self._trees.get(tx_id)
        if tree is None:
            tree = self._trees[tx_id] = _tree(session, tx_id)
            if len(self._trees) > TREES_KEPT:
                self._trees.popitem(last=False)
        else:
            self._trees.move_to_end(tx_id)
        return ["0x" + node.hex() for node in merkle.path(tree.levels, tree.index[op_id])]


def _tree(session: Session, tx_id: int) -> _Tree:
    """The input tree of a batch: its ops in sequence order, as the outbox committed them."""
    rows = session.execute(
        select(ChainOp.id, ChainOp.ref, ChainOp.input_hash)
        .where(ChainOp.tx_id == tx_id, ChainOp.kind.in_(KINDS))
        .order_by(ChainOp.seq, ChainOp.id)
    ).all()
    pairs = [(row.ref, row.input_hash or ZERO32) for row in rows]
    return _Tree({int(row.id): i for i, row in enumerate(rows)}, merkle.input_levels(pairs))


def _page(session: Session, scope: Scope, after: int, limit: int) -> Sequence[Any]:
    query = (
        select(
            ChainOp,
            ChainTx.tx_hash,
            ChainTx.block_number.label("tx_block"),
            ChainTx.input_root,
            IssuanceInput.body,
            IssuanceInput.part,
        )
        .join(ChainTx, ChainTx.id == ChainOp.tx_id)
        .outerjoin(IssuanceInput, IssuanceInput.ref == ChainOp.ref)
        .where(ChainOp.status == "confirmed", ChainOp.kind.in_(KINDS), ChainOp.id > after)
        .order_by(ChainOp.id)
        .limit(limit)
    )
    if scope.merchant_id is not None:
        query = query.where(ChainOp.merchant_id == scope.merchant_id)
    if scope.addresses is not None:
        query = query.where(ChainOp.member_address.in_(scope.addresses))
    if scope.since is not None or scope.until is not None:
        query = query.join(Event, Event.id == ChainOp.event_id)
        if scope.since is not None:
            query = query.where(Event.created_at >= scope.since)
        if scope.until is not None:
            query = query.where(Event.created_at < scope.until)
    return session.execute(query).all()


def _line(network: Network, prover: Prover, session: Session, row: Any) -> dict[str, Any]:
    op: ChainOp = row.ChainOp
    assert op.tx_id is not None
    root = row.input_root
    line: dict[str, Any] = {
        "disclosure": DISCLOSURE,
        "op_id": int(op.id),
        "chain_id": network.chain_id,
        "hub": network.hub,
        "merchant_id": op.merchant_id,
        "event_id": op.event_id,
        "kind": op.kind,
        "part": row.part,
        "ref": op.ref,
        "seq": op.seq,
        "tx_hash": row.tx_hash,
        "block": op.block_number if op.block_number is not None else row.tx_block,
        "amount": int(op.amount),
        "input": row.body,
        "input_hash": op.input_hash,
        "proof": prover.proof(session, op.id, op.tx_id) if root is not None else [],
        "root": root,
    }
    if row.body is None:
        erased = op.input_hash is not None
        line["reason"] = ERASED if erased else BEFORE_INPUTS
        if erased:
            line["erased"] = True
    return line


def lines(
    sessions: sessionmaker[Session], network: Network, scope: Scope, *, page_size: int = PAGE_SIZE
) -> Iterator[dict[str, Any]]:
    """The disclosure lines of ``scope``, in op id order, read ``page_size`` ops a query."""
    prover, after = Prover(), scope.after
    while True:
        with sessions() as session:
            rows = _page(session, scope, after, page_size)
            page = [_line(network, prover, session, row) for row in rows]
        yield from page
        if len(rows) < page_size:
            return
        after = int(rows[-1].ChainOp.id)


def ndjson(records: Iterator[dict[str, Any]]) -> Iterator[bytes]:
    """``records`` as ndjson: one canonical JSON object and a newline each."""
    for record in records:
        yield (plain_dumps(record) + "\n").encode()


def line_of(session: Session, network: Network, op_id: int) -> dict[str, Any] | None:
    """The line of one op, or None unless it is a confirmed issue or clawback."""
    rows = _page(session, Scope(), op_id - 1, 1)
    if not rows or int(rows[0].ChainOp.id) != op_id:
        return None
    return _line(network, Prover(), session, rows[0])


def member_addresses(session: Session, member: Member) -> tuple[str, ...]:
    """A member's address and those of the custodial accounts it claimed."""
    claimed = session.scalars(select(Member.address).where(Member.claimed_by == member.address))
    return (member.address, *claimed)


def entry_proof(
    context: GatewayContext, session: Session, member: Member, op_id: int
) -> EntryProofPublic:
    """One of ``member``'s history entries as a disclosure line, with the rule version it
    was computed under, that version's effective window and the amount in plain words
    (404 for an op that is not the member's, not confirmed, or not an issuance or clawback)."""
    line = line_of(session, Network.of(context), op_id)
    op = session.get(ChainOp, op_id)
    if line is None or op is None or op.member_address not in member_addresses(session, member):
        raise NotFound("no such entry", op_id=op_id)
    version = op.rule_version
    if not version and op.event_id is not None:
        version = session.scalar(select(Event.rule_version).where(Event.id == op.event_id)) or 0
    rules, explanation = None, []
    if version and op.merchant_id is not None:
        head = context.clock.chain_head().timestamp
        view = next(
            (v for v in rulesets.describe(session, op.merchant_id, head) if v.version == version),
            None,
        )
        if view is not None:
            rules = EntryRulesPublic(
                version=view.version,
                hash=view.hash,
                effective_at=_instant(view.effective_at),
                superseded_at=_instant(view.superseded_at),
            )
            explanation = _explain(session, op, RuleSet.model_validate(view.content))
    return EntryProofPublic(
        line=DisclosureLinePublic.model_validate(line), rules=rules, explanation=explanation
    )


def _explain(session: Session, op: ChainOp, rules: RuleSet) -> list[ClausePublic]:
    """The op's amount in plain words: its event's breakdown lines, or the inviter's bonus
    (whose clause names nothing of the invitee's order)."""
    if op.payload.get("referral"):
        clauses = explain_breakdown([{"rule": "referral_inviter", "points": op.amount}], rules)
    else:
        event = session.get(Event, op.event_id) if op.event_id is not None else None
        if event is None:
            return []
        order = event.payload.get("order")
        order = order if isinstance(order, dict) else {}
        amount = order.get("amount")
        clauses = explain_breakdown(
            event.breakdown,
            rules,
            network_amount=Decimal(str(event.network_amount)) if order else None,
            order_amount=Decimal(str(amount)) if amount is not None else None,
            currency=order.get("currency"),
        )
    return [ClausePublic(key=c.key, params=dict(c.params)) for c in clauses]


def _instant(unix: int | None) -> datetime | None:
    """A chain time as a datetime; None for none and for the migration's legacy 0."""
    return datetime.fromtimestamp(unix, UTC) if unix else None
