"""A member's signed consent to move points: the checks transfers and redemptions share.

The hub verifies every member action the same way (``_verifyConsent``: the
deadline, then the member's next nonce, then the EIP-712 signature), so the
gateway checks them the same way before it queues one:

- :func:`check_deadline` -- expired exactly when the hub would say so
  (``block.timestamp > deadline``: ``LoyaltyNetworkSignatureExpired``), and, for
  what a wallet session sends, not further ahead than :data:`MAX_DEADLINE`;
- the member's next nonce and spendable balance are not here: they come from one
  view of the chain and the queue, :func:`gateway.services.member_state.member_state`;
- :func:`check_can_move` -- neither the member frozen nor the network paused;
- :func:`signed_fields` / :func:`sign_as_custodian` -- a self-custody member
  signs; for a custodial member the gateway signs with the member's key.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from chain import signing
from gateway.context import GatewayContext
from gateway.errors import InvalidRequest, MemberFrozen, NetworkPaused, SignatureExpired
from gateway.models import Member, WalletSession
from gateway.schemas import TransferCreate, WalletRedemptionCreate
from gateway.services import members as member_service

#: Farthest deadline a member's signed action may carry.
MAX_DEADLINE = timedelta(days=1)
#: Deadline of the actions the gateway signs for custodial members.
CUSTODIAL_DEADLINE = timedelta(hours=1)
#: Tolerated clock difference between the member's device and the gateway.
CLOCK_SKEW = timedelta(minutes=5)
#: Statuses of a chain op that is queued or sent, not yet final (a sent one may be mined
#: already, waiting for its confirmation depth).
IN_FLIGHT = ("pending", "sent")


def check_deadline(deadline: int, max_ahead: timedelta | None = None) -> None:
    """SignatureExpired once ``deadline`` has passed, as the hub judges it (``now >
    deadline``); with ``max_ahead``, InvalidRequest for a deadline further ahead."""
    now = time.time()
    if deadline < now:
        raise SignatureExpired("the signature's deadline has passed; sign again", deadline=deadline)
    if max_ahead is not None and deadline > now + (max_ahead + CLOCK_SKEW).total_seconds():
        raise InvalidRequest(
            "the deadline is too far away", deadline=deadline,
            max_seconds=int(max_ahead.total_seconds()),
        )  # fmt: skip


def signed_fields(
    ws: WalletSession, body: TransferCreate | WalletRedemptionCreate
) -> tuple[int, int, str] | None:
    """(nonce, deadline, signature) of a self-custody request; None for a custodial one."""
    given = [body.nonce is not None, body.deadline is not None, body.signature is not None]
    if ws.custodial:
        if any(given):
            raise InvalidRequest(
                "custodial members do not sign: omit nonce, deadline and signature"
            )
        return None
    if not all(given):
        raise InvalidRequest("nonce, deadline and signature are required")
    assert body.nonce is not None and body.deadline is not None and body.signature is not None
    check_deadline(body.deadline, MAX_DEADLINE)
    return body.nonce, body.deadline, body.signature


def custodial_deadline() -> int:
    """The deadline of an action the gateway signs for a custodial member now."""
    return int(time.time() + CUSTODIAL_DEADLINE.total_seconds())


def sign_as_custodian(
    ctx: GatewayContext, member: Member, kind: str, message: dict[str, Any]
) -> str:
    """The custodial member's EIP-712 signature of ``message`` (``0x`` hex)."""
    key = member_service.custodial_key(ctx.box, member)
    hub = ctx.link.network.hub.address
    return "0x" + signing.sign(key, kind, ctx.link.chain_id, hub, message).hex()


def recover_typed(kind: str, ctx: GatewayContext, message: dict[str, Any], sig: str) -> str | None:
    """The address that signed the EIP-712 ``message`` (None when none can be recovered)."""
    try:
        return signing.recover(
            bytes.fromhex(sig[2:]), kind, ctx.link.chain_id, ctx.link.network.hub.address, message
        )
    except Exception:
        return None


def check_can_move(ctx: GatewayContext, member: Member) -> None:
    """MemberFrozen or NetworkPaused when the member's points cannot move now."""
    if member.frozen:
        raise MemberFrozen("this member is frozen; points cannot move", member=member.address)
    if ctx.link.network.hub.paused():
        raise NetworkPaused("the network is paused by its guardian; try again later")
