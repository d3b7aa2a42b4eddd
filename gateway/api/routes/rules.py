"""``/v1/rules``: the merchant's versioned rule set, published on chain before it applies."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body

from gateway.api.deps import ContextDep, CurrentMerchant, SessionDep
from gateway.api.routes.events import ERRORS
from gateway.db import transaction
from gateway.errors import InvalidRequest
from gateway.models import Merchant, RuleSetVersion
from gateway.schemas import RuleSetPublic, check_text
from gateway.services import merchants as merchant_service

router = APIRouter(prefix="/v1/rules", tags=["rules"])


def _public(row: RuleSetVersion, published_version: int) -> RuleSetPublic:
    return RuleSetPublic(
        version=row.version,
        hash=row.hash,
        published=row.version <= published_version,
        tx_hash=row.tx_hash,
        rules=row.content,
    )


@router.get("", response_model=RuleSetPublic, responses=ERRORS)
def get_rules(merchant: CurrentMerchant, session: SessionDep) -> RuleSetPublic:
    """The latest rule set and whether its hash is on chain yet."""
    row = merchant_service.latest_rule_set(session, merchant.id)
    current = session.get(Merchant, merchant.id)
    assert current is not None
    return _public(row, current.rule_version)


@router.put("", response_model=RuleSetPublic, status_code=202, responses=ERRORS)
def put_rules(
    merchant: CurrentMerchant, context: ContextDep, rules: dict[str, Any] = Body(...)
) -> RuleSetPublic:
    """Validate and store a new version; it applies once its hash is published on chain."""
    try:
        check_text(rules)
    except ValueError as exc:
        raise InvalidRequest(str(exc)) from exc
    with transaction(context.sessions) as session:
        row = merchant_service.put_rule_set(session, merchant, rules, context.fx)
        return _public(row, merchant.rule_version)
