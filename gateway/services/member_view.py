"""What the wallet shows: its configuration and the signed-in member's view.

- the configuration the wallet signs against (chain id, contracts, message
  templates, the farthest deadline);
- the member (``/v1/wallet/me``): balance and badges read from the chain,
  pending and spendable points and the next nonce (balance, pending, spendable and
  nonce from one view: :mod:`gateway.services.member_state`), tier progress by the
  network's seed thresholds, linked partners and the custodial accounts they claimed;
- the history of the member's confirmed chain ops.
"""

from __future__ import annotations

from decimal import Decimal

from eth_utils import to_checksum_address
from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from chain import signing
from gateway.context import GatewayContext
from gateway.models import (
    ChainOp,
    ChainTx,
    CustomerLink,
    Event,
    Member,
    Merchant,
    Redemption,
    Reward,
    WalletSession,
)
from gateway.rules.badges import BADGES, BADGES_BY_ID
from gateway.rules.model import default_rule_set
from gateway.rules.tiers import TIER_NAMES, rfm
from gateway.schemas import (
    HistoryItemPublic,
    HistoryPublic,
    LinkedAccountPublic,
    TierProgressPublic,
    WalletBadgePublic,
    WalletConfigPublic,
    WalletMemberPublic,
)
from gateway.services.accept.counters import read_buckets, tier_purchases
from gateway.services.accounts import CLAIM_MESSAGE, LINK_MESSAGE
from gateway.services.consent import MAX_DEADLINE
from gateway.services.member_state import member_state, pending_issuance
from gateway.services.sessions import SIWE_STATEMENT, session_member
from gateway.timeutil import aware, utc_now

HISTORY_KINDS = ("issue", "redeem", "transfer", "clawback", "badge")


def config(ctx: GatewayContext) -> WalletConfigPublic:
    """Chain id, contract addresses and the message templates the wallet signs."""
    network = ctx.link.network
    return WalletConfigPublic(
        chain_id=ctx.link.chain_id,
        hub=network.hub.address,
        token=network.token.address,
        badges=network.badges.address,
        eip712_name=signing.DOMAIN_NAME,
        eip712_version=signing.DOMAIN_VERSION,
        siwe_statement=SIWE_STATEMENT,
        link_message=LINK_MESSAGE,
        claim_message=CLAIM_MESSAGE,
        network_unit=ctx.fx.unit,
        tier_names=list(TIER_NAMES),
        max_deadline_seconds=int(MAX_DEADLINE.total_seconds()),
    )


def _claimed(session: Session, address: str) -> list[Member]:
    """Custodial members whose accounts ``address`` claimed."""
    return list(session.scalars(select(Member).where(Member.claimed_by == address)).all())


def member_view(ctx: GatewayContext, session: Session, ws: WalletSession) -> WalletMemberPublic:
    """The signed-in member as ``/v1/wallet/me`` shows them."""
    network = ctx.link.network
    member = session_member(session, ws)
    claimed = _claimed(session, member.address)
    addresses = [member.address, *(m.address for m in claimed)]
    # One view: the chain at one block, and only the queued ops that block does not include.
    state = member_state(ctx, session, member.address)
    pending = pending_issuance(ctx, session, member.address, state.block)
    chain_tier = max(network.hub.tier_of(a) for a in addresses)
    links = session.execute(
        select(Merchant.id, Merchant.name)
        .join(CustomerLink, CustomerLink.merchant_id == Merchant.id)
        .where(CustomerLink.member_id == member.id)
        .distinct()
        .order_by(Merchant.id)
    ).all()
    return WalletMemberPublic(
        address=member.address,
        custodial=ws.custodial,
        frozen=member.frozen,
        balance=state.balance,
        pending_points=pending,
        spendable=state.spendable,
        next_nonce=state.next_nonce,
        tier=tier_progress(session, [member.id, *(m.id for m in claimed)], chain_tier),
        badges=held_badges(ctx, addresses),
        linked_accounts=[LinkedAccountPublic(merchant_id=i, merchant_name=n) for i, n in links],
        claimed_addresses=[m.address for m in claimed],
    )


def tier_progress(session: Session, member_ids: list[str], tier: int) -> TierProgressPublic:
    """The tier and what the next one needs, by the network's seed thresholds."""
    ladder = default_rule_set("USD").tiers
    now = utc_now()
    # The member's counter buckets, as the rules engine reads them (not the events).
    purchases = [
        purchase
        for buckets in read_buckets(session, set(member_ids)).values()
        for purchase in tier_purchases(buckets, now)
    ]
    measured = rfm(purchases, now, ladder.window_days)
    tier = max(0, min(tier, len(ladder.levels) - 1))
    nxt = tier + 1 if tier + 1 < len(ladder.levels) else None
    level = ladder.levels[nxt] if nxt is not None else None
    return TierProgressPublic(
        tier=tier,
        tier_name=ladder.levels[tier].name,
        next_tier=nxt,
        next_tier_name=level.name if level else None,
        window_days=ladder.window_days,
        orders=measured.frequency,
        orders_needed=level.min_orders if level else None,
        spend=str(measured.monetary.quantize(Decimal("0.01"))),
        spend_needed=str(level.min_spend) if level else None,
        days_since_last_order=measured.recency.days if measured.recency is not None else None,
        max_recency_days=level.max_recency_days if level else None,
    )


def held_badges(ctx: GatewayContext, addresses: list[str]) -> list[WalletBadgePublic]:
    """Catalogue badges any of ``addresses`` holds, read from the chain in one call each."""
    badges = ctx.link.network.badges
    ids = [b.id for b in BADGES]
    held: set[int] = set()
    for address in addresses:
        owner = to_checksum_address(address)
        balances = badges.functions.balanceOfBatch([owner] * len(ids), ids).call()
        held.update(i for i, n in zip(ids, balances, strict=True) if int(n) > 0)
    return [
        WalletBadgePublic(
            id=b.id, key=b.key, name=b.name, description=b.description,
            image_url=f"/v1/badges/{b.id}.svg", soulbound=b.soulbound,
        )
        for b in BADGES
        if b.id in held
    ]  # fmt: skip


def history(
    session: Session, ws: WalletSession, kind: str | None, page: int, per_page: int
) -> HistoryPublic:
    """The member's confirmed issuances, redemptions, transfers, clawbacks and badges."""
    member = session_member(session, ws)
    addresses = [member.address, *(m.address for m in _claimed(session, member.address))]
    recipient = ChainOp.payload["request"]["to"].as_string()
    mine = or_(
        ChainOp.member_address.in_(addresses),
        and_(ChainOp.kind == "transfer", recipient.in_(addresses)),
    )
    kinds = (kind,) if kind else HISTORY_KINDS
    where = (ChainOp.status == "confirmed", ChainOp.kind.in_(kinds), mine)
    total = int(session.scalar(select(func.count(ChainOp.id)).where(*where)) or 0)
    rows = session.execute(
        select(
            ChainOp, ChainTx.tx_hash, ChainTx.block_number, ChainTx.created_at,
            Event.rule_version, Event.occurred_at, Merchant.name, Reward.name,
        )
        .join(ChainTx, ChainTx.id == ChainOp.tx_id)
        .outerjoin(Event, Event.id == ChainOp.event_id)
        .outerjoin(Merchant, Merchant.id == ChainOp.merchant_id)
        .outerjoin(Redemption, Redemption.op_id == ChainOp.id)
        .outerjoin(Reward, Reward.id == Redemption.reward_id)
        .where(*where)
        .order_by(ChainOp.id.desc())
        .offset((page - 1) * per_page)
        .limit(per_page)
    ).all()  # fmt: skip
    items = []
    for op, tx_hash, block, signed_at, rule_version, occurred_at, merchant_name, reward in rows:
        direction, counterparty = "in", None
        if op.kind in ("redeem", "clawback"):
            direction = "out"
        if op.kind == "transfer":
            request = op.payload.get("request", {})
            outgoing = op.member_address in addresses and request.get("to") not in addresses
            direction = "out" if outgoing else "in"
            counterparty = request.get("to") if outgoing else op.member_address
        badge = BADGES_BY_ID.get(op.badge_id) if op.badge_id is not None else None
        amount = op.burned if op.kind == "clawback" and op.burned is not None else op.amount
        items.append(
            HistoryItemPublic(
                id=op.id, kind=op.kind, direction=direction, amount=int(amount or 0),  # type: ignore[arg-type]
                counterparty=counterparty, badge_id=op.badge_id,
                badge_key=badge.key if badge else None,
                badge_name=badge.name if badge else None, merchant_id=op.merchant_id,
                merchant_name=merchant_name, reward_name=reward,
                rule_version=rule_version if op.event_id else None,
                occurred_at=aware(occurred_at or signed_at), tx_hash=tx_hash, block_number=block,
            )
        )  # fmt: skip
    return HistoryPublic(data=items, count=total, page=page, per_page=per_page)
