"""``/v1/members``: a merchant looks up its own customers."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from gateway.api.deps import ContextDep, CurrentMerchant, SessionDep
from gateway.api.routes.events import ERRORS
from gateway.models import Member
from gateway.schemas import CUSTOMER_ID_PATTERN, MemberPublic
from gateway.services import members as member_service

router = APIRouter(prefix="/v1/members", tags=["members"])

CustomerId = Annotated[
    str, Path(pattern=CUSTOMER_ID_PATTERN, description="merchant-side customer id")
]


@router.get("/{customer_id}", response_model=MemberPublic, responses=ERRORS)
def get_member(
    customer_id: CustomerId, merchant: CurrentMerchant, session: SessionDep, context: ContextDep
) -> MemberPublic:
    """Address, on-chain balance, tier, badges and pending points of the merchant's customer."""
    link = member_service.get_link(session, merchant.id, customer_id)
    member = session.get(Member, link.member_id)
    assert member is not None
    balance = context.link.network.token.balance_of(member.address)
    return MemberPublic.model_validate(member_service.member_view(session, balance, link, member))
