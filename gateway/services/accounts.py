"""Account links and claims: which partner accounts a wallet holds.

- a merchant asks for a short one-time link code for its customer; the member
  personal_signs it in their own wallet and the customer's account is attached
  to that wallet (a custodial account with nothing else linked comes along,
  points included);
- a custodial member claims their account for a new self-custody address that
  signed for it: the whole balance is swept there and every link follows.
"""

from __future__ import annotations

import re
import secrets
import time
from datetime import datetime, timedelta

from eth_utils import to_checksum_address
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from gateway.context import GatewayContext
from gateway.db import transaction
from gateway.errors import (
    InvalidRequest,
    LinkCodeInvalid,
    MemberFrozen,
    NetworkPaused,
    SignatureRejected,
    WalletConflict,
    WrongSessionKind,
)
from gateway.models import ChainOp, CustomerLink, Member, Merchant, WalletChallenge, WalletSession
from gateway.schemas import AccountLinkPublic, ClaimPublic
from gateway.services import members as member_service
from gateway.services.consent import IN_FLIGHT, sign_as_custodian
from gateway.services.member_state import member_state
from gateway.services.sessions import (
    add_challenge,
    consume_challenge,
    digest,
    recover_personal,
    session_member,
)
from gateway.services.transfers import (
    transfer_public,
    transfer_ref,
    transfer_request,
    transfers_allowed,
)
from gateway.timeutil import utc_now

LINK_CODE_TTL = timedelta(minutes=15)
#: Deadline of the transfer that sweeps a claimed custodial account.
CLAIM_DEADLINE = timedelta(days=7)
LINK_MESSAGE = "pointsnet: link this wallet to my account at a partner.\nCode: {code}"
CLAIM_MESSAGE = (
    "pointsnet: move my custodial points account {custodial} into my own wallet {address}."
)
#: Link codes: 8 characters without look-alikes (0/O, 1/I/L, U), shown as XXXX-XXXX.
LINK_ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"


def normalize_code(code: str) -> str:
    """``abcd efgh`` / ``ABCD-EFGH`` → ``ABCD-EFGH`` (InvalidRequest if it cannot be one)."""
    compact = re.sub(r"[\s-]", "", code).upper()
    if len(compact) != 8 or any(c not in LINK_ALPHABET for c in compact):
        raise LinkCodeInvalid("a link code has 8 letters and digits, like ABCD-EFGH")
    return f"{compact[:4]}-{compact[4:]}"


def create_link_code(
    ctx: GatewayContext, merchant: Merchant, customer_id: str
) -> tuple[str, datetime]:
    """A short one-time code that attaches the merchant's customer to the member who signs it."""
    with transaction(ctx.sessions) as session:
        while True:
            raw = "".join(secrets.choice(LINK_ALPHABET) for _ in range(8))
            code = f"{raw[:4]}-{raw[4:]}"
            taken = session.scalar(
                select(func.count(WalletChallenge.id)).where(
                    WalletChallenge.secret_hash == digest(code)
                )
            )
            if not taken:
                break
        expires_at = add_challenge(
            session, "link", code, LINK_CODE_TTL, merchant_id=merchant.id, customer_id=customer_id
        )
    return code, expires_at


def link_account(
    ctx: GatewayContext, ws: WalletSession, code: str, signature: str
) -> AccountLinkPublic:
    """Attach the code's (merchant, customer) to the signed-in self-custody member."""
    if ws.custodial:
        raise WrongSessionKind(
            "self_custody_required", "linking needs your own wallet: create or import one first"
        )
    code = normalize_code(code)
    if recover_personal(LINK_MESSAGE.format(code=code), signature) != ws.address:
        raise SignatureRejected("the signature is not this wallet's", member=ws.address)
    with transaction(ctx.sessions) as session:
        challenge = consume_challenge(session, "link", code)
        if challenge is None or challenge.merchant_id is None or challenge.customer_id is None:
            raise LinkCodeInvalid("this link code is unknown, used or expired; ask for a new one")
        merchant = session.get(Merchant, challenge.merchant_id)
        assert merchant is not None
        member = session_member(session, ws, lock=True)
        link = member_service.find_link(session, merchant.id, challenge.customer_id)
        if link is None:
            session.add(
                CustomerLink(
                    merchant_id=merchant.id, customer_id=challenge.customer_id, member_id=member.id
                )
            )
        elif link.member_id != member.id:
            previous = session.get(Member, link.member_id, with_for_update=True)
            assert previous is not None
            others = session.scalar(
                select(func.count(CustomerLink.id)).where(
                    CustomerLink.member_id == previous.id, CustomerLink.id != link.id
                )
            )
            if previous.custodial and previous.claimed_by is None and not others:
                _sweep(ctx, session, previous, member)  # the customer's points come along
            link.member_id = member.id
        session.flush()
        return AccountLinkPublic(
            merchant_id=merchant.id, merchant_name=merchant.name, customer_id=challenge.customer_id
        )


def claim(ctx: GatewayContext, ws: WalletSession, address: str, signature: str) -> ClaimPublic:
    """Move a custodial account to a new self-custody address that signed for it."""
    if not ws.custodial:
        raise WrongSessionKind(
            "custodial_session_required", "open the wallet from your partner's login link to claim"
        )
    new = to_checksum_address(address)
    if new == ws.address:
        raise InvalidRequest("the new address must differ from the custodial one")
    message = CLAIM_MESSAGE.format(custodial=ws.address, address=new)
    if recover_personal(message, signature) != new:
        raise SignatureRejected("the signature is not the new address's", address=new)
    with transaction(ctx.sessions) as session:
        old = session_member(session, ws, lock=True)
        if old.claimed_by is not None:
            raise WalletConflict(
                "already_claimed", "this account was already claimed", by=old.claimed_by
            )
        if old.frozen:
            raise MemberFrozen("this member is frozen; points cannot move", member=old.address)
        target = member_service.member_by_address(session, new)
        if target is None:
            target = Member(address=new, custodial=False)
            session.add(target)
            session.flush()
        elif target.custodial:
            raise WalletConflict(
                "address_custodial", "the new address is a custodial account", address=new
            )
        op = _sweep(ctx, session, old, target)
        session.execute(
            update(CustomerLink).where(CustomerLink.member_id == old.id).values(member_id=target.id)
        )
        session.execute(
            update(WalletSession)
            .where(WalletSession.member_id == old.id, WalletSession.revoked_at.is_(None))
            .values(revoked_at=utc_now())
        )
        return ClaimPublic(
            address=new,
            amount=op.amount if op else 0,
            transfer=transfer_public(op, None) if op else None,
        )


def _sweep(ctx: GatewayContext, session: Session, old: Member, target: Member) -> ChainOp | None:
    """Mark ``old`` claimed by ``target`` and queue the transfer of its whole balance."""
    busy = session.scalar(
        select(func.count(ChainOp.id)).where(
            ChainOp.member_address == old.address, ChainOp.status.in_(IN_FLIGHT)
        )
    )
    if busy:
        raise WalletConflict(
            "operations_pending",
            "points are still on their way to this account; try again in a minute",
            pending=int(busy),
        )
    network = ctx.link.network
    if network.hub.paused():
        raise NetworkPaused("the network is paused by its guardian; try again later")
    state = member_state(ctx, session, old.address)  # points and nonce from one view
    balance = state.spendable
    old.claimed_by = target.address
    if balance == 0:
        return None
    transfers_allowed(ctx)
    nonce = state.next_nonce
    deadline = int(time.time() + CLAIM_DEADLINE.total_seconds())
    request = transfer_request(old.address, target.address, balance, nonce, deadline)
    signature = sign_as_custodian(ctx, old, "TransferRequest", request)
    op = ChainOp(
        kind="transfer",
        member_address=old.address,
        amount=balance,
        ref=transfer_ref(old.address, nonce),
        payload={"request": request, "signature": signature, "claim": True},
    )
    session.add(op)
    session.flush()
    return op
