"""Rewards catalog and redemptions with the member's signed consent.

One redemption path for the merchant API (``POST /v1/redemptions``) and the
wallet (``POST /v1/wallet/redemptions``, which signs for custodial members
first): :func:`redeem` checks it here (reward, stock, deadline, signature,
frozen member, paused network, nonce, balance) as the hub's ``redeem`` would,
so that a bad one is refused with a clear error instead of a reverted
transaction -- an expired deadline is ``signature_expired`` on both paths, as
the hub's ``LoyaltyNetworkSignatureExpired`` (``block.timestamp > deadline``);
the outbox worker then relays it and pays the gas.
"""

from __future__ import annotations

from typing import Any

from eth_utils import keccak, to_checksum_address
from sqlalchemy import select
from sqlalchemy.orm import Session

from chain import signing
from gateway.context import GatewayContext
from gateway.db import transaction
from gateway.errors import (
    InsufficientPoints,
    MemberFrozen,
    NetworkPaused,
    NotFound,
    OutOfStock,
    SignatureRejected,
)
from gateway.models import ChainOp, Member, Merchant, Redemption, Reward, WalletSession
from gateway.schemas import (
    RedemptionCreate,
    RedemptionPublic,
    RewardCreate,
    RewardPublic,
    WalletRedemptionCreate,
)
from gateway.services.consent import (
    check_can_move,
    check_deadline,
    custodial_deadline,
    sign_as_custodian,
    signed_fields,
)
from gateway.services.member_state import member_state
from gateway.services.sessions import session_member


def create_reward(ctx: GatewayContext, merchant: Merchant, body: RewardCreate) -> RewardPublic:
    with transaction(ctx.sessions) as session:
        reward = Reward(merchant_id=merchant.id, **body.model_dump())
        session.add(reward)
        session.flush()
        return reward_public(reward, merchant.name)


def list_rewards(session: Session, merchant_id: int | None = None) -> list[RewardPublic]:
    """One merchant's rewards, or every active reward of the network (the wallet's catalog)."""
    query = select(Reward, Merchant.name).join(Merchant, Merchant.id == Reward.merchant_id)
    if merchant_id is not None:
        query = query.where(Reward.merchant_id == merchant_id)
    else:
        query = query.where(Reward.active.is_(True), Merchant.status == "active")
    rows = session.execute(query.order_by(Reward.merchant_id, Reward.cost_points)).all()
    return [reward_public(reward, name) for reward, name in rows]


def reward_public(reward: Reward, merchant_name: str) -> RewardPublic:
    return RewardPublic(
        id=reward.id,
        merchant_id=reward.merchant_id,
        merchant_name=merchant_name,
        name=reward.name,
        description=reward.description,
        cost_points=reward.cost_points,
        stock=reward.stock,
        active=reward.active,
    )


def redemption_ref(reward_id: str) -> str:
    """The bytes32 ``ref`` a member signs for a reward."""
    return "0x" + keccak(f"reward:{reward_id}".encode()).hex()


def redemption_message(
    ctx: GatewayContext, reward: Reward, member: str, nonce: int, deadline: int
) -> dict[str, Any]:
    """The EIP-712 ``Redemption`` message for this reward (what the wallet signs)."""
    return {
        "member": to_checksum_address(member),
        "merchantId": reward.merchant_id,
        "amount": reward.cost_points,
        "ref": redemption_ref(reward.id),
        "nonce": nonce,
        "deadline": deadline,
    }


def redeem(ctx: GatewayContext, merchant_id: int, body: RedemptionCreate) -> RedemptionPublic:
    """Check the member's consent and queue the redemption for the worker."""
    hub = ctx.link.network.hub
    with transaction(ctx.sessions) as session:
        reward = session.get(Reward, body.reward_id, with_for_update=True)
        if reward is None or reward.merchant_id != merchant_id or not reward.active:
            raise NotFound(f"no active reward {body.reward_id}", reward_id=body.reward_id)
        if reward.stock is not None and reward.stock <= 0:
            raise OutOfStock("reward is out of stock", reward_id=reward.id)
        member = to_checksum_address(body.member)
        check_deadline(body.deadline)
        message = redemption_message(ctx, reward, member, body.nonce, body.deadline)
        signature = bytes.fromhex(body.signature[2:])
        try:
            signer = signing.recover(
                signature, "Redemption", ctx.link.chain_id, hub.address, message
            )
        except Exception as exc:
            raise SignatureRejected("the signature cannot be decoded") from exc
        if signer != member:
            raise SignatureRejected("the signature is not the member's", member=member)
        known = session.scalars(select(Member).where(Member.address == member)).first()
        if known is not None and known.frozen:
            raise MemberFrozen("this member is frozen; points cannot move", member=member)
        if hub.paused():
            raise NetworkPaused("the network is paused by its guardian; try again later")
        state = member_state(ctx, session, member)
        if body.nonce != state.next_nonce:
            raise SignatureRejected(
                "the signature's nonce is not the member's next one",
                expected=state.next_nonce, got=body.nonce,
            )  # fmt: skip
        if state.spendable < reward.cost_points:
            raise InsufficientPoints(
                "not enough points", balance=state.spendable, needed=reward.cost_points
            )
        if reward.stock is not None:
            reward.stock -= 1
        op = ChainOp(
            merchant_id=merchant_id,
            kind="redeem",
            member_address=member,
            amount=reward.cost_points,
            ref=message["ref"],
            payload={"redemption": message, "signature": body.signature},
        )
        session.add(op)
        session.flush()
        redemption = Redemption(
            merchant_id=merchant_id,
            reward_id=reward.id,
            member_address=member,
            amount=reward.cost_points,
            nonce=body.nonce,
            deadline=body.deadline,
            ref=message["ref"],
            signature=body.signature,
            op_id=op.id,
        )
        session.add(redemption)
        session.flush()
        return redemption_public(redemption)


def redeem_as_member(
    ctx: GatewayContext, ws: WalletSession, body: WalletRedemptionCreate
) -> RedemptionPublic:
    """Redeem a reward of any partner from the wallet: with the member's signature, or
    signed here with a custodial member's key; then checked and queued by :func:`redeem`."""
    signed = signed_fields(ws, body)
    with ctx.sessions() as session:
        reward = session.get(Reward, body.reward_id)
        merchant = session.get(Merchant, reward.merchant_id) if reward else None
        if reward is None or merchant is None or not reward.active or merchant.status != "active":
            raise NotFound(f"no active reward {body.reward_id}", reward_id=body.reward_id)
        member = session_member(session, ws)
        check_can_move(ctx, member)
        if signed is None:
            nonce = member_state(ctx, session, ws.address).next_nonce
            deadline = custodial_deadline()
            message = redemption_message(ctx, reward, ws.address, nonce, deadline)
            signature = sign_as_custodian(ctx, member, "Redemption", message)
        else:
            nonce, deadline, signature = signed
        merchant_id = reward.merchant_id
    return redeem(
        ctx,
        merchant_id,
        RedemptionCreate(
            reward_id=body.reward_id,
            member=ws.address,
            nonce=nonce,
            deadline=deadline,
            signature=signature,
        ),
    )


def get_redemption(
    session: Session, merchant_id: int | None, redemption_id: str
) -> RedemptionPublic:
    """A redemption of the merchant (of any merchant with ``None``), or NotFound."""
    redemption = session.get(Redemption, redemption_id)
    if redemption is None or (merchant_id is not None and redemption.merchant_id != merchant_id):
        raise NotFound(f"no redemption {redemption_id}")
    return redemption_public(redemption)


def get_member_redemption(
    session: Session, ws: WalletSession, redemption_id: str
) -> RedemptionPublic:
    """One of the signed-in member's redemptions (NotFound for anyone else's)."""
    redemption = session.get(Redemption, redemption_id)
    if redemption is None or redemption.member_address != ws.address:
        raise NotFound(f"no redemption {redemption_id}", redemption_id=redemption_id)
    return redemption_public(redemption)


def list_member_redemptions(
    session: Session, ws: WalletSession, limit: int = 50
) -> list[RedemptionPublic]:
    """The signed-in member's latest redemptions, newest first."""
    rows = session.scalars(
        select(Redemption)
        .where(Redemption.member_address == ws.address)
        .order_by(Redemption.created_at.desc())
        .limit(limit)
    ).all()
    return [redemption_public(r) for r in rows]


def redemption_public(r: Redemption) -> RedemptionPublic:
    return RedemptionPublic(
        id=r.id,
        merchant_id=r.merchant_id,
        reward_id=r.reward_id,
        member=r.member_address,
        amount=r.amount,
        status=r.status,  # type: ignore[arg-type]
        voucher_code=r.voucher_code,
        tx_hash=r.tx_hash,
        error=r.error,
    )
