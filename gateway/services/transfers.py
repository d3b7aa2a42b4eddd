"""Gasless member-to-member transfers: checked here, queued for the outbox worker.

A self-custody member signs an EIP-712 ``TransferRequest``; for a custodial
member the gateway signs it with the member's key. Either way the transfer is
checked as the hub would check it (deadline, next nonce, signature, frozen
member, paused network, transfers allowed, spendable balance) and queued as a
chain op that the worker relays, paying the gas.
"""

from __future__ import annotations

from typing import Any

from eth_utils import keccak, to_checksum_address
from sqlalchemy.orm import Session

from gateway.context import GatewayContext
from gateway.db import transaction
from gateway.errors import (
    InsufficientPoints,
    InvalidRequest,
    NotFound,
    SignatureRejected,
    WalletConflict,
)
from gateway.models import ChainOp, ChainTx, WalletSession
from gateway.schemas import TransferCreate, TransferPublic
from gateway.services.consent import (
    check_can_move,
    custodial_deadline,
    recover_typed,
    sign_as_custodian,
    signed_fields,
)
from gateway.services.member_state import member_state
from gateway.services.sessions import session_member


def transfers_allowed(ctx: GatewayContext) -> None:
    """WalletConflict ``transfers_disabled`` unless the hub allows member transfers."""
    if not ctx.link.network.hub.functions.transfersAllowed().call():
        raise WalletConflict(
            "transfers_disabled", "member-to-member transfers are disabled on chain"
        )


def transfer_ref(sender: str, nonce: int) -> str:
    """The bytes32 reference of a member's signed transfer."""
    return "0x" + keccak(f"transfer:{sender}:{nonce}".encode()).hex()


def transfer(ctx: GatewayContext, ws: WalletSession, body: TransferCreate) -> TransferPublic:
    """Check a transfer and queue it for the worker (which relays it and pays the gas)."""
    sender = ws.address
    to = to_checksum_address(body.to)
    if to == sender:
        raise InvalidRequest("you cannot transfer points to yourself", to=to)
    if int(to, 16) == 0:
        raise InvalidRequest("the zero address cannot receive points", to=to)
    signed = signed_fields(ws, body)
    with transaction(ctx.sessions) as session:
        member = session_member(session, ws, lock=True)
        check_can_move(ctx, member)
        transfers_allowed(ctx)
        state = member_state(ctx, session, sender)
        expected = state.next_nonce
        if signed is None:
            nonce, deadline = expected, custodial_deadline()
            request = transfer_request(sender, to, body.amount, nonce, deadline)
            signature = sign_as_custodian(ctx, member, "TransferRequest", request)
        else:
            nonce, deadline, signature = signed
            request = transfer_request(sender, to, body.amount, nonce, deadline)
            if recover_typed("TransferRequest", ctx, request, signature) != sender:
                raise SignatureRejected("the signature is not the member's", member=sender)
            if nonce != expected:
                raise SignatureRejected(
                    "the signature's nonce is not the member's next one",
                    expected=expected,
                    got=nonce,
                )
        if state.spendable < body.amount:
            raise InsufficientPoints(
                "not enough points", balance=state.spendable, needed=body.amount
            )
        op = ChainOp(
            kind="transfer",
            member_address=sender,
            amount=body.amount,
            ref=transfer_ref(sender, nonce),
            payload={"request": request, "signature": signature},
        )
        session.add(op)
        session.flush()
        return transfer_public(op, None)


def transfer_request(
    sender: str, to: str, amount: int, nonce: int, deadline: int
) -> dict[str, Any]:
    """The EIP-712 ``TransferRequest`` message."""
    return {"from": sender, "to": to, "amount": amount, "nonce": nonce, "deadline": deadline}


def transfer_public(op: ChainOp, tx: ChainTx | None) -> TransferPublic:
    """A queued transfer op as the API shows it."""
    request = op.payload["request"]
    status = {"confirmed": "confirmed", "failed": "failed"}.get(op.status, "submitted")
    return TransferPublic(
        id=op.id,
        from_address=request["from"],
        to=request["to"],
        amount=int(request["amount"]),
        nonce=int(request["nonce"]),
        status=status,  # type: ignore[arg-type]
        tx_hash=tx.tx_hash if tx is not None else None,
        error=op.error if op.status == "failed" else None,
    )


def get_transfer(session: Session, ws: WalletSession, transfer_id: int) -> TransferPublic:
    """A transfer the member sent or received (NotFound for anyone else's)."""
    op = session.get(ChainOp, transfer_id)
    parties = {ws.address}
    if op is not None and op.kind == "transfer":
        request = op.payload.get("request", {})
        if request.get("from") in parties or request.get("to") in parties:
            tx = session.get(ChainTx, op.tx_id) if op.tx_id else None
            return transfer_public(op, tx)
    raise NotFound(f"no transfer {transfer_id}", transfer_id=transfer_id)
