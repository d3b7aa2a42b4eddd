"""Members: map a merchant's customer to a network member, custodial by default.

A first event for an unknown customer creates a custodial member whose key is
derived from the gateway's secret and that first (merchant, customer_id)
(:meth:`gateway.crypto.SecretBox.custodial_key`: nothing to store, the same
address after a restore); members created before keep their encrypted keys.
The mapping (merchant, customer_id) → member is private to that merchant:
lookups always go through the merchant's own id.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from coincurve import PublicKey
from eth_hash.auto import keccak
from eth_utils import to_checksum_address
from sqlalchemy import bindparam, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gateway.crypto import SecretBox
from gateway.errors import NotFound
from gateway.models import DERIVED_KEY, ChainOp, CustomerLink, Event, Member
from gateway.rules.badges import BADGES
from gateway.rules.engine import TIER_NAMES

if TYPE_CHECKING:  # member_state reads consent, which reads this module
    from gateway.services.member_state import MemberState

#: A merchant's customer (statements built once: building one per call costs more
#: than running it on the accept path).
_THE_CUSTOMER = (
    CustomerLink.merchant_id == bindparam("merchant_id"),
    CustomerLink.customer_id == bindparam("customer_id"),
)
_LINK = select(CustomerLink).where(*_THE_CUSTOMER)
#: The same customer with its member, in one read.
_LINK_AND_MEMBER = (
    select(CustomerLink, Member)
    .join(Member, Member.id == CustomerLink.member_id)
    .where(*_THE_CUSTOMER)
)


def find_link(session: Session, merchant_id: int, customer_id: str) -> CustomerLink | None:
    return session.scalars(_LINK, {"merchant_id": merchant_id, "customer_id": customer_id}).first()


def get_link(session: Session, merchant_id: int, customer_id: str) -> CustomerLink:
    """The merchant's own customer, or NotFound (also for another merchant's customers)."""
    link = find_link(session, merchant_id, customer_id)
    if link is None:
        raise NotFound(f"no customer {customer_id!r} at this merchant", customer_id=customer_id)
    return link


def resolve_customer(
    session: Session, box: SecretBox, merchant_id: int, customer_id: str
) -> tuple[CustomerLink, Member]:
    """The customer's link and member, creating a custodial member on first sight."""
    known = session.execute(
        _LINK_AND_MEMBER, {"merchant_id": merchant_id, "customer_id": customer_id}
    ).first()
    if known is not None:
        return known.CustomerLink, known.Member
    try:
        # A savepoint: when a concurrent request links the same customer first
        # (PostgreSQL lets both get this far), only this insert is undone.
        with session.begin_nested():
            address = derived_address(box, merchant_id, customer_id)
            member = member_by_address(session, address)  # this customer's, unlinked since
            if member is None:
                member = Member(
                    address=address, custodial=True, key_enc=DERIVED_KEY,
                    key_merchant_id=merchant_id, key_customer_id=customer_id,
                )  # fmt: skip
                session.add(member)
                session.flush()
            link = CustomerLink(
                merchant_id=merchant_id, customer_id=customer_id, member_id=member.id
            )
            session.add(link)
            session.flush()
    except IntegrityError:
        existing = find_link(session, merchant_id, customer_id)
        if existing is None:
            raise
        linked = session.get(Member, existing.member_id)
        assert linked is not None
        return existing, linked
    return link, member


def member_by_address(session: Session, address: str) -> Member | None:
    return session.scalars(select(Member).where(Member.address == address)).first()


def derived_address(box: SecretBox, merchant_id: int, customer_id: str) -> str:
    """The address of the custodial member first linked as (merchant, customer): the last
    20 bytes of the keccak of the uncompressed public key (straight through coincurve:
    eth_keys' objects cost ~3x as much, on every new member of a batch)."""
    public = PublicKey.from_secret(box.custodial_key(merchant_id, customer_id))
    return str(to_checksum_address(keccak(public.format(compressed=False)[1:])[-20:]))


def custodial_key(box: SecretBox, member: Member) -> str:
    """The custodial member's private key (hex), for signing on the member's behalf.

    Derived from the member's first link (``key_merchant_id``, ``key_customer_id``),
    or, for members created before keys were derived, decrypted from ``key_enc``.
    """
    if not member.custodial:
        raise NotFound("member is not custodial")
    if member.key_merchant_id is not None and member.key_customer_id is not None:
        return "0x" + box.custodial_key(member.key_merchant_id, member.key_customer_id).hex()
    if not member.key_enc:  # None, or DERIVED_KEY without its origin
        raise NotFound("member is not custodial")
    return "0x" + box.decrypt(member.key_enc).hex()


def member_view(
    session: Session, state: MemberState, pending: int, link: CustomerLink, member: Member
) -> dict[str, object]:
    """What a merchant may see of its customer: address, balance, spendable points, next
    nonce, tier, badges, pending. ``state`` and ``pending`` are one view of the chain
    and the queue (:mod:`gateway.services.member_state`)."""
    held = set(
        session.scalars(
            select(ChainOp.badge_id).where(
                ChainOp.member_address == member.address,
                ChainOp.kind == "badge",
                ChainOp.status == "confirmed",
            )
        ).all()
    )
    badges = [
        {"id": b.id, "key": b.key, "name": b.name, "image_url": f"/v1/badges/{b.id}.svg",
         "soulbound": b.soulbound}
        for b in BADGES
        if b.id in held
    ]  # fmt: skip
    return {
        "customer_id": link.customer_id,
        "address": member.address,
        "custodial": member.custodial,
        "balance": state.balance,
        "spendable": state.spendable,
        "next_nonce": state.next_nonce,
        "pending_points": pending,
        "owed_points": shortfall_owed(session, member.address),
        "tier": member.tier,
        "tier_name": TIER_NAMES[member.tier],
        "badges": badges,
        "frozen": member.frozen,
    }


def set_frozen(session: Session, merchant_id: int, customer_id: str, frozen: bool) -> Member:
    """Freeze (or unfreeze) the member behind a merchant's customer: its events are refused."""
    link = get_link(session, merchant_id, customer_id)
    member = session.get(Member, link.member_id)
    assert member is not None
    member.frozen = frozen
    return member


def shortfall_owed(session: Session, address: str) -> int:
    """Points refunds could not claw back (already spent), less what purchases since netted."""
    unburned = session.scalar(_UNBURNED, {"address": address})
    if not unburned:
        return 0  # the common case: every clawback burned in full
    netted = session.scalar(_NETTED, {"address": address})
    return max(0, int(unburned or 0) - int(netted or 0))


# Statements of the accept path, built once (building one per event costs more than
# running it).
_UNBURNED = select(func.coalesce(func.sum(ChainOp.amount - ChainOp.burned), 0)).where(
    ChainOp.member_address == bindparam("address"),
    ChainOp.kind == "clawback",
    ChainOp.status == "confirmed",
    ChainOp.burned.is_not(None),
)
_NETTED = (
    select(func.coalesce(func.sum(Event.clawback), 0))
    .join(Member, Member.id == Event.member_id)
    .where(Member.address == bindparam("address"), Event.type != "refund", Event.status != "failed")
)
