"""Dependencies shared by the routers, as ``Annotated`` aliases."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Header, Request
from sqlalchemy.orm import Session

from gateway.context import GatewayContext
from gateway.errors import Forbidden, RateLimited, Unauthorized
from gateway.models import Merchant
from gateway.services.merchants import authenticate


async def get_context(request: Request) -> GatewayContext:
    """The gateway's context (``async``: it does no I/O, so it need not hop to a
    worker thread as a plain ``def`` dependency would)."""
    context: GatewayContext = request.app.state.context
    return context


ContextDep = Annotated[GatewayContext, Depends(get_context)]


def get_session(context: ContextDep) -> Iterator[Session]:
    """A read session (writes go through services with their own transactions)."""
    with context.sessions() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


def current_merchant(
    context: ContextDep,
    authorization: Annotated[str | None, Header(description="Bearer <API key>")] = None,
) -> Merchant:
    """The merchant whose API key is in ``Authorization: Bearer ...``.

    Looked up in a session of its own that is closed at once: holding a
    connection for the whole request would let concurrent requests drain the pool.
    """
    if not authorization or not authorization.startswith("Bearer "):
        raise Unauthorized("send the merchant API key as 'Authorization: Bearer <key>'")
    with context.sessions() as session:
        merchant = authenticate(session, authorization.removeprefix("Bearer ").strip())
        session.expunge(merchant)
    if not context.limiter.allow(merchant.api_key_hash):
        raise RateLimited(
            "too many requests for this API key", limit_per_minute=int(context.limiter.capacity)
        )
    if merchant.status != "active":
        raise Forbidden("merchant is suspended", merchant_id=merchant.id)
    return merchant


CurrentMerchant = Annotated[Merchant, Depends(current_merchant)]
