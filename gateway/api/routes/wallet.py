"""The member wallet's API (``/v1/wallet``), its public reads and its static page.

- ``/v1/wallet/...``: sign-in (SIWE, login links), the member's view, history,
  gasless transfers and redemptions, account links and claims; authenticated by
  a wallet session sent as ``Authorization: Bearer`` or the HttpOnly cookie;
- ``/v1/catalog`` and ``/v1/badges/{id}.svg|.json``: public reads;
- ``/v1/members/{customer_id}/login-link|link-code``: what a merchant asks for
  on behalf of its signed-in customer;
- ``/wallet/``: the static page (``wallet/``), with ethers served from the pinned
  npm package, never from a CDN.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, RedirectResponse
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from gateway.api.deps import ContextDep, CurrentMerchant, SessionDep
from gateway.badge_art import badge_svg
from gateway.errors import NotFound, RateLimited
from gateway.models import WalletSession
from gateway.schemas import (
    CUSTOMER_ID_PATTERN,
    RESOURCE_ID_PATTERN,
    AccountLinkCreate,
    AccountLinkPublic,
    BadgeMetadataPublic,
    ClaimCreate,
    ClaimPublic,
    ErrorResponse,
    HistoryKind,
    HistoryPublic,
    LinkCodePublic,
    LoginLinkExchangeCreate,
    LoginLinkPublic,
    RedemptionPublic,
    RewardsPublic,
    SiweNoncePublic,
    SiweVerifyCreate,
    TransferCreate,
    TransferPublic,
    WalletConfigPublic,
    WalletMemberPublic,
    WalletRedemptionCreate,
    WalletRedemptionsPublic,
    WalletSessionPublic,
)
from gateway.services import rewards as reward_service
from gateway.services import wallet as wallet_service

PROJECT_ROOT = Path(__file__).resolve().parents[3]
WALLET_DIR = PROJECT_ROOT / "wallet"
ETHERS_BUNDLE = PROJECT_ROOT / "node_modules" / "ethers" / "dist" / "ethers.min.js"

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse} for code in (400, 401, 403, 404, 409, 422, 429, 503)
}

router = APIRouter(prefix="/v1/wallet", tags=["wallet"])
public_router = APIRouter(tags=["wallet"])
merchant_router = APIRouter(prefix="/v1/members", tags=["members"])
page_router = APIRouter(include_in_schema=False)

_bearer = HTTPBearer(auto_error=False, description="wallet session token")
_cookie = APIKeyCookie(name=wallet_service.SESSION_COOKIE, auto_error=False)


# ---------------------------------------------------------------------- sessions


def session_token(
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    cookie: Annotated[str | None, Depends(_cookie)],
) -> str | None:
    """The wallet session token: ``Authorization: Bearer`` first, else the cookie."""
    if bearer is not None:
        return bearer.credentials
    return cookie


SessionToken = Annotated[str | None, Depends(session_token)]


def current_wallet_session(session: SessionDep, token: SessionToken) -> WalletSession:
    return wallet_service.authenticate(session, token)


CurrentWalletSession = Annotated[WalletSession, Depends(current_wallet_session)]


def _rate_limit(request: Request, context: ContextDep) -> None:
    """Public sign-in endpoints are limited per client address."""
    client = request.client.host if request.client else "unknown"
    if not context.limiter.allow(f"wallet:{client}"):
        raise RateLimited(
            "too many sign-in attempts from this address; wait a minute",
            limit_per_minute=int(context.limiter.capacity),
        )


RateLimit = Depends(_rate_limit)

#: Transfer ids are database integers (32-bit on PostgreSQL): larger ones cannot exist.
TransferId = Annotated[int, PathParam(ge=1, le=2**31 - 1)]
RedemptionId = Annotated[str, PathParam(pattern=RESOURCE_ID_PATTERN)]


def _session_answer(
    request: Request, response: Response, token: str, row: WalletSession
) -> WalletSessionPublic:
    """Set the HttpOnly session cookie and return the session."""
    expires_at = wallet_service.aware(row.expires_at)
    max_age = max(0, int((expires_at - datetime.now(UTC)).total_seconds()))
    response.set_cookie(
        wallet_service.SESSION_COOKIE,
        token,
        max_age=max_age,
        path="/v1/wallet",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    response.headers["Cache-Control"] = "no-store"
    return WalletSessionPublic(
        token=token,
        expires_at=expires_at,
        address=row.address,
        custodial=row.custodial,
    )


def _allowed_domains(request: Request, context: ContextDep) -> set[str]:
    """Domains a SIWE message may name: this request's host and the public URL's."""
    domains = {request.headers.get("host", "")}
    if context.settings.public_url:
        domains.add(urlsplit(context.settings.public_url).netloc)
    return {d for d in domains if d}


@router.get("/config", response_model=WalletConfigPublic, responses=ERRORS)
def get_config(context: ContextDep) -> WalletConfigPublic:
    """Chain id, contract addresses and message templates the wallet signs against."""
    return wallet_service.config(context)


@router.post(
    "/siwe/nonce",
    response_model=SiweNoncePublic,
    status_code=201,
    responses=ERRORS,
    dependencies=[RateLimit],
)
def create_siwe_nonce(context: ContextDep, response: Response) -> SiweNoncePublic:
    """A single-use nonce (10 minutes) for an EIP-4361 sign-in message."""
    nonce, expires_at = wallet_service.new_siwe_nonce(context)
    response.headers["Cache-Control"] = "no-store"
    return SiweNoncePublic(
        nonce=nonce, expires_at=expires_at, statement=wallet_service.SIWE_STATEMENT
    )


@router.post(
    "/siwe/verify", response_model=WalletSessionPublic, responses=ERRORS, dependencies=[RateLimit]
)
def verify_siwe(
    body: SiweVerifyCreate, request: Request, response: Response, context: ContextDep
) -> WalletSessionPublic:
    """Sign in with Ethereum: the message's domain, chain id, times and single-use nonce
    are checked and the signer must be its address. Errors: ``siwe_malformed``,
    ``siwe_domain_mismatch``, ``siwe_chain_mismatch``, ``siwe_expired``,
    ``siwe_not_yet_valid``, ``siwe_nonce_invalid``, ``siwe_signature_mismatch``."""
    token, row = wallet_service.sign_in_with_ethereum(
        context, body.message, body.signature, _allowed_domains(request, context)
    )
    return _session_answer(request, response, token, row)


@router.post(
    "/login-link",
    response_model=WalletSessionPublic,
    responses=ERRORS,
    dependencies=[RateLimit],
)
def exchange_login_link(
    body: LoginLinkExchangeCreate, request: Request, response: Response, context: ContextDep
) -> WalletSessionPublic:
    """Trade a merchant's one-time login link token for a custodial session
    (``login_link_invalid`` when unknown, used or expired)."""
    token, row = wallet_service.exchange_login_link(context, body.token)
    return _session_answer(request, response, token, row)


@router.post("/logout", status_code=204, responses=ERRORS)
def logout(context: ContextDep, token: SessionToken) -> Response:
    """End the session (idempotent) and clear the cookie."""
    if token:
        wallet_service.sign_out(context, token)
    response = Response(status_code=204)
    response.delete_cookie(wallet_service.SESSION_COOKIE, path="/v1/wallet")
    return response


# ---------------------------------------------------------------------- the member


@router.get("/me", response_model=WalletMemberPublic, responses=ERRORS)
def get_me(
    ws: CurrentWalletSession, session: SessionDep, context: ContextDep
) -> WalletMemberPublic:
    """Balance (from the chain), pending points, tier progress, badges and linked partners."""
    return wallet_service.member_view(context, session, ws)


@router.get("/history", response_model=HistoryPublic, responses=ERRORS)
def get_history(
    ws: CurrentWalletSession,
    session: SessionDep,
    kind: Annotated[HistoryKind | None, Query(description="only this kind")] = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    per_page: Annotated[int, Query(ge=1, le=100)] = 20,
) -> HistoryPublic:
    """Confirmed issuances, redemptions, transfers, clawbacks and badges, newest first."""
    return wallet_service.history(session, ws, kind, page, per_page)


@router.post("/transfers", response_model=TransferPublic, status_code=202, responses=ERRORS)
def create_transfer(
    body: TransferCreate, ws: CurrentWalletSession, context: ContextDep
) -> TransferPublic:
    """Send points to another address, gasless: the gateway relays the member's EIP-712
    ``TransferRequest``. Errors: ``insufficient_points``, ``signature_expired``,
    ``invalid_signature``, ``member_frozen``, ``transfers_disabled``, ``network_paused``."""
    return wallet_service.transfer(context, ws, body)


@router.get("/transfers/{transfer_id}", response_model=TransferPublic, responses=ERRORS)
def get_transfer(
    transfer_id: TransferId, ws: CurrentWalletSession, session: SessionDep
) -> TransferPublic:
    """A transfer the member sent or received: ``submitted`` → ``confirmed`` | ``failed``."""
    return wallet_service.get_transfer(session, ws, transfer_id)


@router.post("/redemptions", response_model=RedemptionPublic, status_code=202, responses=ERRORS)
def create_redemption(
    body: WalletRedemptionCreate, ws: CurrentWalletSession, context: ContextDep
) -> RedemptionPublic:
    """Redeem a reward of any partner with the member's EIP-712 ``Redemption`` consent.
    Errors: ``insufficient_points``, ``signature_expired``, ``invalid_signature``,
    ``not_found``, ``member_frozen``, ``network_paused``."""
    return wallet_service.redeem(context, ws, body)


@router.get("/redemptions", response_model=WalletRedemptionsPublic, responses=ERRORS)
def list_redemptions(ws: CurrentWalletSession, session: SessionDep) -> WalletRedemptionsPublic:
    """The member's latest 50 redemptions, with voucher codes once confirmed."""
    data = wallet_service.list_redemptions(session, ws)
    return WalletRedemptionsPublic(data=data, count=len(data))


@router.get("/redemptions/{redemption_id}", response_model=RedemptionPublic, responses=ERRORS)
def get_redemption(
    redemption_id: RedemptionId, ws: CurrentWalletSession, session: SessionDep
) -> RedemptionPublic:
    """One of the member's redemptions: status and, once confirmed, the voucher code."""
    return wallet_service.get_redemption(session, ws, redemption_id)


@router.post("/link", response_model=AccountLinkPublic, responses=ERRORS)
def link_account(
    body: AccountLinkCreate, ws: CurrentWalletSession, context: ContextDep
) -> AccountLinkPublic:
    """Attach a partner account to this self-custody wallet with the partner's one-time code
    and a personal_sign of the link message. Errors: ``link_code_invalid``,
    ``invalid_signature``, ``self_custody_required``, ``operations_pending``."""
    return wallet_service.link_account(context, ws, body.code, body.signature)


@router.post("/claim", response_model=ClaimPublic, status_code=202, responses=ERRORS)
def claim(body: ClaimCreate, ws: CurrentWalletSession, context: ContextDep) -> ClaimPublic:
    """From a custodial session: move the whole custodial balance and every partner link to
    a new self-custody address that personal_signed the claim message. Errors:
    ``custodial_session_required``, ``invalid_signature``, ``already_claimed``,
    ``operations_pending``, ``address_custodial``, ``transfers_disabled``."""
    return wallet_service.claim(context, ws, body.address, body.signature)


# ---------------------------------------------------------------------- public reads


@public_router.get("/v1/catalog", response_model=RewardsPublic, responses=ERRORS)
def get_catalog(session: SessionDep) -> RewardsPublic:
    """Every active reward of every active partner: points earned anywhere spend here."""
    data = reward_service.list_rewards(session)
    return RewardsPublic(data=data, count=len(data))


BadgeId = Annotated[int, PathParam(ge=0, le=2**64 - 1)]


@public_router.get(
    "/v1/badges/{badge_id}.json", response_model=BadgeMetadataPublic, responses=ERRORS
)
def get_badge_metadata(badge_id: BadgeId, context: ContextDep) -> BadgeMetadataPublic:
    """ERC-1155 metadata of a badge type (its on-chain ``uri``)."""
    return BadgeMetadataPublic.model_validate(wallet_service.badge_metadata(context, badge_id))


@public_router.get(
    "/v1/badges/{badge_id}.svg",
    response_class=Response,
    responses={200: {"content": {"image/svg+xml": {}}}, **ERRORS},
)
def get_badge_image(badge_id: BadgeId, context: ContextDep) -> Response:
    """The badge's image: the on-chain name over the catalogue's icon; soulbound is marked."""
    meta = wallet_service.badge_metadata(context, badge_id)
    svg = badge_svg(
        meta["name"],
        meta["properties"]["icon"],
        soulbound=meta["properties"]["soulbound"],
        description=meta["description"],
    )
    return Response(
        svg,
        media_type="image/svg+xml",
        headers={"Cache-Control": "public, max-age=300", **SVG_HEADERS},
    )


# ---------------------------------------------------------------------- merchants


CustomerId = Annotated[
    str, PathParam(pattern=CUSTOMER_ID_PATTERN, description="merchant-side customer id")
]


@merchant_router.post(
    "/{customer_id}/login-link", response_model=LoginLinkPublic, status_code=201, responses=ERRORS
)
def create_login_link(
    customer_id: CustomerId, merchant: CurrentMerchant, context: ContextDep
) -> LoginLinkPublic:
    """A one-time wallet URL (10 minutes) for the merchant's signed-in customer, who then
    uses the wallet custodially (``member_self_custody`` if they have their own wallet)."""
    url, expires_at = wallet_service.create_login_link(context, merchant, customer_id)
    return LoginLinkPublic(url=url, expires_at=expires_at)


@merchant_router.post(
    "/{customer_id}/link-code", response_model=LinkCodePublic, status_code=201, responses=ERRORS
)
def create_link_code(
    customer_id: CustomerId, merchant: CurrentMerchant, context: ContextDep
) -> LinkCodePublic:
    """A one-time code (15 minutes) the customer enters in their own wallet to link this
    merchant's account to it (the customer need not be known yet)."""
    code, expires_at = wallet_service.create_link_code(context, merchant, customer_id)
    return LinkCodePublic(code=code, expires_at=expires_at)


# ---------------------------------------------------------------------- the page


#: The page loads only its own files: no CDN, no inline script, no framing.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
        "form-action 'self'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}
SVG_HEADERS = {"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'"}


class WalletFiles(StaticFiles):
    """``wallet/`` as static files with the page's security headers; no Python files."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        if path.endswith((".py", ".pyc", ".typed")) or "__pycache__" in path:
            raise StarletteHTTPException(status_code=404)
        response = await super().get_response(path, scope)
        response.headers.update(PAGE_HEADERS)
        return response


def static_files() -> WalletFiles:
    """The wallet page, to mount at ``/wallet``."""
    return WalletFiles(directory=WALLET_DIR, html=True)


@page_router.get("/wallet")
def wallet_page() -> RedirectResponse:
    return RedirectResponse("/wallet/", status_code=308)


@page_router.get("/wallet/vendor/ethers.js")
def ethers_bundle() -> FileResponse:
    """ethers v6 from the pinned npm package (``npm ci`` installs it)."""
    if not ETHERS_BUNDLE.is_file():
        raise NotFound("ethers is not installed: run npm ci (make setup)")
    return FileResponse(
        ETHERS_BUNDLE,
        media_type="text/javascript",
        headers={**PAGE_HEADERS, "Cache-Control": "public, max-age=86400"},
    )
