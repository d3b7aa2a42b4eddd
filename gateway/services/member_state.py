"""A member's points and next nonce, read from one consistent view.

The chain is read at one block ``B`` (read once per view), and the gateway's queue
adds only what ``B`` does not include yet. An op that is already mined but not yet
final (the worker waits ``confirmations`` blocks before it marks an op confirmed) is
in ``B``'s balance and nonce and is therefore not counted again as queued; an op
confirmed in a block after ``B`` is still queued as ``B`` sees it.

Whether ``B`` includes an op is read from the chain at ``B``, not from the op's
status (which lags by the confirmation depth):

- a member's signed action (a transfer or a redemption) carries the member's hub
  nonce, which the hub consumes in order, so it is included exactly when the hub's
  ``nonces(member)`` at ``B`` is above it;
- an issuance carries its merchant's sequence number, included exactly when the
  hub's sequence bitmap (``sequenceWord``) at ``B`` has its bit set.

Every place that shows or checks a member's spendable balance or next nonce (the
wallet's ``/me``, the merchant API, the transfer and redemption checks, the
signatures the gateway makes for custodial members) reads :func:`member_state`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from eth_utils import to_checksum_address
from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from gateway.context import GatewayContext
from gateway.models import ChainOp
from gateway.services.consent import IN_FLIGHT

#: The member's signed actions: they consume the member's hub nonce and spend points.
ACTION_KINDS = ("redeem", "transfer")


@dataclass(frozen=True)
class MemberState:
    """A member as the chain at ``block`` shows them, plus their actions ``block`` does
    not include yet."""

    address: str
    #: The block the chain was read at.
    block: int
    #: Points held at ``block``.
    balance: int
    #: The hub's nonce for the member at ``block``.
    chain_nonce: int
    #: Signed actions queued (or sent) that ``block`` does not include.
    queued_actions: int
    #: The points those actions spend.
    queued_points: int

    @property
    def spendable(self) -> int:
        """Points the member can still spend: the balance less the queued actions."""
        return max(0, self.balance - self.queued_points)

    @property
    def next_nonce(self) -> int:
        """The nonce the member's next signed action must carry."""
        return self.chain_nonce + self.queued_actions


def head_block(ctx: GatewayContext) -> int:
    """The latest block number the node knows: the ``B`` of a new view."""
    return int(ctx.link.w3.eth.block_number)


def member_state(
    ctx: GatewayContext, session: Session, address: str, block: int | None = None
) -> MemberState:
    """``address``'s balance, nonce and queued actions as of ``block`` (the head when
    None): the chain read at that block, the queue less what the block includes."""
    b = head_block(ctx) if block is None else block
    network = ctx.link.network
    owner = to_checksum_address(address)
    balance = int(network.token.balance_of(owner, b))
    chain_nonce = int(network.hub.functions.nonces(owner).call(block_identifier=b))
    count = points = 0
    for amount, payload, kind in session.execute(
        select(ChainOp.amount, ChainOp.payload, ChainOp.kind).where(
            ChainOp.member_address == address,
            ChainOp.kind.in_(ACTION_KINDS),
            _not_final_at(b),
        )
    ):
        if action_nonce(kind, payload) >= chain_nonce:  # not consumed at b: not included
            count += 1
            points += int(amount or 0)
    return MemberState(address, b, balance, chain_nonce, count, points)


def pending_issuance(ctx: GatewayContext, session: Session, address: str, block: int) -> int:
    """Points issued to ``address`` that ``block`` does not include yet: queued, sent
    and not mined by ``block``, or confirmed in a later block."""
    rows = session.execute(
        select(ChainOp.amount, ChainOp.status, ChainOp.merchant_id, ChainOp.seq).where(
            ChainOp.member_address == address, ChainOp.kind == "issue", _not_final_at(block)
        )
    ).all()
    used = _used_sequences(
        ctx,
        block,
        (
            (int(merchant), int(seq))
            for _, status, merchant, seq in rows
            if status != "pending" and merchant is not None and seq is not None
        ),
    )
    return sum(
        int(amount or 0)
        for amount, status, merchant, seq in rows
        if status == "pending" or (merchant, seq) not in used
    )


def action_nonce(kind: str, payload: dict[str, Any]) -> int:
    """The member's hub nonce a transfer or redemption op was signed with."""
    message = payload["request"] if kind == "transfer" else payload["redemption"]
    return int(message["nonce"])


def _not_final_at(block: int) -> Any:
    """Ops that may not be included by ``block``: unfinished, or confirmed after it."""
    return or_(
        ChainOp.status.in_(IN_FLIGHT),
        and_(ChainOp.status == "confirmed", ChainOp.block_number > block),
    )


def _used_sequences(
    ctx: GatewayContext, block: int, seqs: Iterable[tuple[int, int]]
) -> set[tuple[int, int]]:
    """Which (merchant, sequence number) pairs the hub marks used at ``block``: one
    ``sequenceWord`` call per merchant and 256 numbers."""
    wanted = set(seqs)
    hub = ctx.link.network.hub
    words = {
        key: int(hub.functions.sequenceWord(*key).call(block_identifier=block))
        for key in sorted({(merchant, seq >> 8) for merchant, seq in wanted})
    }
    return {(m, s) for m, s in wanted if words[(m, s >> 8)] >> (s & 0xFF) & 1}
