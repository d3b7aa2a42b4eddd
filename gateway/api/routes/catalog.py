"""``/v1/catalog``: every active reward of the network, a public read for the wallet."""

from __future__ import annotations

from fastapi import APIRouter

from gateway.api.deps import SessionDep
from gateway.api.errors import WALLET_ERRORS as ERRORS
from gateway.schemas import RewardsPublic
from gateway.services import rewards as reward_service

router = APIRouter(tags=["wallet"])


@router.get("/v1/catalog", response_model=RewardsPublic, responses=ERRORS)
def get_catalog(session: SessionDep) -> RewardsPublic:
    """Every active reward of every active partner: points earned anywhere spend here."""
    data = reward_service.list_rewards(session)
    return RewardsPublic(data=data, count=len(data))
