"""``/v1/rules``: the merchant's versioned rule set, published on chain before it applies.

GET answers the version in effect at the chain head and the next one, if any
(queued, or published and in its notice period); PUT queues a new version and
answers when it is expected to take effect (the hub fixes the time at
publication: the head's time plus its notice).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body

from gateway.api.deps import ContextDep, CurrentMerchant, SessionDep
from gateway.api.routes.events import ERRORS
from gateway.db import transaction
from gateway.errors import InvalidRequest
from gateway.schemas import RuleSetPublic, check_text
from gateway.services import rulesets
from gateway.services.rulesets import VersionView

router = APIRouter(prefix="/v1/rules", tags=["rules"])


def _public(view: VersionView, upcoming: VersionView | None = None) -> RuleSetPublic:
    return RuleSetPublic(
        version=view.version,
        hash=view.hash,
        published=view.effective_at is not None,
        tx_hash=view.tx_hash,
        rules=view.content,
        status=view.status,
        effective_at=view.effective_at,
        published_block=view.published_block,
        upcoming=_public(upcoming) if upcoming is not None else None,
    )


@router.get("", response_model=RuleSetPublic, responses=ERRORS)
def get_rules(merchant: CurrentMerchant, session: SessionDep, context: ContextDep) -> RuleSetPublic:
    """The version in effect at the chain head (its status, when it took effect) and the
    next version, if one is queued or waiting for its effective time."""
    head = context.clock.chain_head()
    views = rulesets.describe(session, merchant.id, head.timestamp)
    current = rulesets.current_view(views)
    upcoming = next((view for view in views if view.version > current.version), None)
    return _public(current, upcoming)


@router.put("", response_model=RuleSetPublic, status_code=202, responses=ERRORS)
def put_rules(
    merchant: CurrentMerchant, context: ContextDep, rules: dict[str, Any] = Body(...)
) -> RuleSetPublic:
    """Validate and queue a new version: 202 with its estimated ``effective_at``;
    409 ``rule_change_pending`` while an earlier version waits for its effective time,
    422 ``rule_set_too_large`` above the hub's size limit."""
    try:
        check_text(rules)
    except ValueError as exc:
        raise InvalidRequest(str(exc)) from exc
    head = context.clock.chain_head()
    notice = rulesets.notice_seconds(context)
    with transaction(context.sessions) as session:
        result = rulesets.put_rule_set(
            session, merchant, rules, context.fx, head=head, notice=notice
        )
        row = result.row
        return RuleSetPublic(
            version=row.version, hash=row.hash, published=False, tx_hash=None,
            rules=row.content, status="queued", effective_at=result.effective_at,
            effective_at_estimated=True, published_block=None, upcoming=None,
        )  # fmt: skip
