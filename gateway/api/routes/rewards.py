"""``/v1/rewards`` (a merchant's catalog) and ``/v1/redemptions`` (spending points)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from gateway.api.deps import ContextDep, CurrentMerchant, SessionDep
from gateway.api.routes.events import ERRORS
from gateway.schemas import (
    RESOURCE_ID_PATTERN,
    RedemptionCreate,
    RedemptionPublic,
    RewardCreate,
    RewardPublic,
    RewardsPublic,
)
from gateway.services import rewards as reward_service

router = APIRouter(tags=["rewards"])

RedemptionId = Annotated[str, Path(pattern=RESOURCE_ID_PATTERN, description="the redemption's id")]


@router.post("/v1/rewards", response_model=RewardPublic, status_code=201, responses=ERRORS)
def create_reward(
    body: RewardCreate, merchant: CurrentMerchant, context: ContextDep
) -> RewardPublic:
    """Add a reward to the merchant's catalog."""
    return reward_service.create_reward(context, merchant, body)


@router.get("/v1/rewards", response_model=RewardsPublic, responses=ERRORS)
def list_rewards(merchant: CurrentMerchant, session: SessionDep) -> RewardsPublic:
    """The merchant's own rewards."""
    data = reward_service.list_rewards(session, merchant.id)
    return RewardsPublic(data=data, count=len(data))


@router.post("/v1/redemptions", response_model=RedemptionPublic, status_code=202, responses=ERRORS)
def create_redemption(
    body: RedemptionCreate, merchant: CurrentMerchant, context: ContextDep
) -> RedemptionPublic:
    """Redeem a reward with the member's EIP-712 consent; the gateway relays and pays gas."""
    return reward_service.redeem(context, merchant.id, body)


@router.get("/v1/redemptions/{redemption_id}", response_model=RedemptionPublic, responses=ERRORS)
def get_redemption(
    redemption_id: RedemptionId, merchant: CurrentMerchant, session: SessionDep
) -> RedemptionPublic:
    """A redemption's status and, once confirmed, its voucher code."""
    return reward_service.get_redemption(session, merchant.id, redemption_id)
