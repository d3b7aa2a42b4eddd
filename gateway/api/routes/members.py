"""``/v1/members``: a merchant looks up its own customers and asks for their wallet's
one-time login link or account link code."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from gateway.api.deps import ContextDep, CurrentMerchant, SessionDep
from gateway.api.errors import WALLET_ERRORS
from gateway.api.routes.events import ERRORS
from gateway.models import Member
from gateway.schemas import CUSTOMER_ID_PATTERN, LinkCodePublic, LoginLinkPublic, MemberPublic
from gateway.services import accounts, sessions
from gateway.services import members as member_service
from gateway.services.member_state import member_state, pending_issuance

router = APIRouter(prefix="/v1/members", tags=["members"])

CustomerId = Annotated[
    str, Path(pattern=CUSTOMER_ID_PATTERN, description="merchant-side customer id")
]


@router.get("/{customer_id}", response_model=MemberPublic, responses=ERRORS)
def get_member(
    customer_id: CustomerId, merchant: CurrentMerchant, session: SessionDep, context: ContextDep
) -> MemberPublic:
    """Address, on-chain balance, spendable points, next nonce, tier, badges and pending
    points of the merchant's customer (balance, spendable, nonce and pending from one
    view: the chain at one block and the queued ops it does not include)."""
    link = member_service.get_link(session, merchant.id, customer_id)
    member = session.get(Member, link.member_id)
    assert member is not None
    state = member_state(context, session, member.address)
    pending = pending_issuance(context, session, member.address, state.block)
    view = member_service.member_view(session, state, pending, link, member)
    return MemberPublic.model_validate(view)


@router.post(
    "/{customer_id}/login-link",
    response_model=LoginLinkPublic,
    status_code=201,
    responses=WALLET_ERRORS,
)
def create_login_link(
    customer_id: CustomerId, merchant: CurrentMerchant, context: ContextDep
) -> LoginLinkPublic:
    """A one-time wallet URL (10 minutes) for the merchant's signed-in customer, who then
    uses the wallet custodially (``member_self_custody`` if they have their own wallet)."""
    url, expires_at = sessions.create_login_link(context, merchant, customer_id)
    return LoginLinkPublic(url=url, expires_at=expires_at)


@router.post(
    "/{customer_id}/link-code",
    response_model=LinkCodePublic,
    status_code=201,
    responses=WALLET_ERRORS,
)
def create_link_code(
    customer_id: CustomerId, merchant: CurrentMerchant, context: ContextDep
) -> LinkCodePublic:
    """A one-time code (15 minutes) the customer enters in their own wallet to link this
    merchant's account to it (the customer need not be known yet)."""
    code, expires_at = accounts.create_link_code(context, merchant, customer_id)
    return LinkCodePublic(code=code, expires_at=expires_at)
