"""``/v1/public``: every merchant's rules as published on chain, for anyone to read.

No key: a member, an auditor or a would-be customer reads what a programme pays
before and after a change, in the wallet's words (:mod:`gateway.rules.explain`)
and as the exact text whose keccak-256 the hub holds.  Only versions published
on chain are listed (a queued one is not announced yet: its notice runs from its
publication); each is ``published`` (in its notice period), ``in_effect`` or
``superseded`` at the chain's latest block
(:func:`gateway.services.rulesets.describe`).  Requests are limited per client
address, as the wallet's public sign-in endpoints are.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from functools import lru_cache
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request, Response
from fastapi import Path as PathParam
from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.api.deps import ContextDep, SessionDep
from gateway.api.errors import WALLET_ERRORS as ERRORS
from gateway.errors import NotFound, RateLimited
from gateway.models import Merchant
from gateway.rules.explain import Clause, explain_changes, explain_rule_set
from gateway.rules.model import RuleSet, parse_rule_set
from gateway.schemas import (
    ClausePublic,
    PublicMerchant,
    PublicMerchantsPublic,
    PublicMerchantSummary,
    PublicRulesPublic,
    RuleVersionPublic,
    UpcomingVersionPublic,
)
from gateway.services import rulesets

router = APIRouter(prefix="/v1/public", tags=["public"])

#: Merchant ids: the hub's are uint32, the gateway's a signed 32-bit database integer,
#: which bounds them (a larger id would fail in PostgreSQL's query, not as a 4xx).
MerchantId = Annotated[int, PathParam(ge=0, le=2**31 - 1)]


def _rate_limit(request: Request, context: ContextDep) -> None:
    client = request.client.host if request.client else "unknown"
    if not context.limiter.allow(f"public:{client}"):
        raise RateLimited(
            "too many requests from this address; wait a minute",
            limit_per_minute=int(context.limiter.capacity),
        )


RateLimit = Depends(_rate_limit)


@router.get(
    "/merchants", response_model=PublicMerchantsPublic, responses=ERRORS, dependencies=[RateLimit]
)
def list_merchants(context: ContextDep, session: SessionDep) -> PublicMerchantsPublic:
    """Every merchant, its version in effect and the one announced to follow, if any."""
    head = context.clock.chain_head().timestamp
    merchants = []
    for merchant in session.scalars(select(Merchant).order_by(Merchant.id)):
        views = _on_chain(session, merchant.id, head)
        current = next((v.version for v in views if v.status == "in_effect"), None)
        announced = next((v for v in views if v.status == "published"), None)
        upcoming = None
        if announced is not None:
            upcoming = UpcomingVersionPublic(
                version=announced.version, effective_at=_time(announced.effective_at)
            )
        merchants.append(
            PublicMerchantSummary(
                **_merchant(merchant).model_dump(), current_version=current, upcoming=upcoming
            )
        )
    return PublicMerchantsPublic(
        chain_id=context.link.chain_id,
        hub=context.link.network.hub.address,
        notice_seconds=rulesets.notice_seconds(context),
        merchants=merchants,
    )


@router.get(
    "/merchants/{merchant_id}/rules",
    response_model=PublicRulesPublic,
    responses={**ERRORS, 304: {"description": "unchanged since the ETag sent"}},
    dependencies=[RateLimit],
)
def merchant_rules(
    merchant_id: MerchantId,
    context: ContextDep,
    session: SessionDep,
    response: Response,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Any:
    """The merchant's rules: the version in effect, those announced, those replaced
    (newest first), each with its published text, hash, times and plain words."""
    merchant = session.get(Merchant, merchant_id)
    if merchant is None:
        raise NotFound(f"no merchant {merchant_id}", merchant_id=merchant_id)
    views = _on_chain(session, merchant_id, context.clock.chain_head().timestamp)
    notice = rulesets.notice_seconds(context)
    tag = _etag(merchant, notice, views)
    if if_none_match == tag:
        return Response(status_code=304, headers={"ETag": tag})
    response.headers["ETag"] = tag
    unit = context.fx.unit
    versions = [_version(views, index, unit) for index in range(len(views))]
    current = [v for v in versions if v.status == "in_effect"]
    return PublicRulesPublic(
        merchant=_merchant(merchant),
        notice_seconds=notice,
        current=current[0] if current else None,
        upcoming=[v for v in versions if v.status == "published"],
        past=[v for v in reversed(versions) if v.status == "superseded"],
    )


def _on_chain(session: Session, merchant_id: int, head: int) -> list[rulesets.VersionView]:
    """The merchant's versions published on chain, oldest first, as at chain time ``head``."""
    return [v for v in rulesets.describe(session, merchant_id, head) if v.status != "queued"]


def _version(views: list[rulesets.VersionView], index: int, unit: str) -> RuleVersionPublic:
    view = views[index]
    rules, explained = _parsed(view.canonical, unit)
    changes: list[Clause] = []
    if index > 0:
        changes = explain_changes(_parsed(views[index - 1].canonical, unit)[0], rules, unit)
    assert view.status != "queued"
    return RuleVersionPublic(
        version=view.version,
        hash=view.hash,
        canonical=view.canonical,
        rules=json.loads(view.canonical),
        status=view.status,
        published_tx=view.tx_hash,
        published_block=view.published_block,
        effective_at=_time(view.effective_at),
        superseded_at=_time(view.superseded_at),
        explained=[_clause(c) for c in explained],
        changes=[_clause(c) for c in changes],
    )


@lru_cache(maxsize=256)
def _parsed(canonical: str, unit: str) -> tuple[RuleSet, tuple[Clause, ...]]:
    """A published text parsed and explained (versions never change: cached by text)."""
    rules = parse_rule_set(canonical)
    return rules, tuple(explain_rule_set(rules, unit))


def _clause(clause: Clause) -> ClausePublic:
    return ClausePublic(key=clause.key, params=dict(clause.params))


def _merchant(merchant: Merchant) -> PublicMerchant:
    return PublicMerchant(
        id=merchant.id, name=merchant.name, currency=merchant.currency, status=merchant.status
    )


def _time(unix: int | None) -> datetime | None:
    """A chain time as a datetime; None for 0 (applied before effective times were kept)."""
    return datetime.fromtimestamp(unix, UTC) if unix else None


def _etag(merchant: Merchant, notice: int, views: list[rulesets.VersionView]) -> str:
    """Changes with a new version, a version switching status, the notice, or the
    merchant's name or status."""
    parts = [merchant.name, merchant.status, str(notice)]
    parts += [f"{view.version}:{view.hash}:{view.status}" for view in views]
    return '"' + hashlib.sha256("\n".join(parts).encode()).hexdigest()[:32] + '"'
