"""``/v1/wallet``: the member wallet's API.

Sign-in (SIWE, login links) and sign-out, the member's view and history,
gasless transfers and redemptions, account links and claims; authenticated by a
wallet session sent as ``Authorization: Bearer`` or the HttpOnly cookie.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi import Path as PathParam
from fastapi.responses import StreamingResponse
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer

from gateway.api.deps import ContextDep, SessionDep
from gateway.api.errors import WALLET_ERRORS as ERRORS
from gateway.errors import RateLimited
from gateway.models import WalletSession
from gateway.schemas import (
    RESOURCE_ID_PATTERN,
    AccountLinkCreate,
    AccountLinkPublic,
    ClaimCreate,
    ClaimPublic,
    EntryProofPublic,
    ErasureCreate,
    ErasurePublic,
    HistoryKind,
    HistoryPublic,
    LoginLinkExchangeCreate,
    MemberDataPublic,
    RedemptionPublic,
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
from gateway.services import (
    accounts,
    disclosures,
    member_view,
    privacy,
    rewards,
    sessions,
    transfers,
)
from gateway.timeutil import aware

router = APIRouter(prefix="/v1/wallet", tags=["wallet"])

_bearer = HTTPBearer(auto_error=False, description="wallet session token")
_cookie = APIKeyCookie(name=sessions.SESSION_COOKIE, auto_error=False)


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
    return sessions.authenticate(session, token)


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
EntryId = Annotated[int, PathParam(ge=1, le=2**31 - 1, description="a history entry's id")]


def _session_answer(
    request: Request, response: Response, token: str, row: WalletSession
) -> WalletSessionPublic:
    """Set the HttpOnly session cookie and return the session."""
    expires_at = aware(row.expires_at)
    max_age = max(0, int((expires_at - datetime.now(UTC)).total_seconds()))
    response.set_cookie(
        sessions.SESSION_COOKIE,
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
    """Chain id, contract addresses, message templates the wallet signs against and the
    public RPC URL it verifies entries against."""
    public_rpc_url = context.settings.effective_public_rpc_url
    return member_view.config(context).model_copy(update={"public_rpc_url": public_rpc_url})


@router.post(
    "/siwe/nonce",
    response_model=SiweNoncePublic,
    status_code=201,
    responses=ERRORS,
    dependencies=[RateLimit],
)
def create_siwe_nonce(context: ContextDep, response: Response) -> SiweNoncePublic:
    """A single-use nonce (10 minutes) for an EIP-4361 sign-in message."""
    nonce, expires_at = sessions.new_siwe_nonce(context)
    response.headers["Cache-Control"] = "no-store"
    return SiweNoncePublic(nonce=nonce, expires_at=expires_at, statement=sessions.SIWE_STATEMENT)


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
    token, row = sessions.sign_in_with_ethereum(
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
    (``login_link_used`` when already traded, ``login_link_invalid`` when unknown or
    expired)."""
    token, row = sessions.exchange_login_link(context, body.token)
    return _session_answer(request, response, token, row)


@router.post("/logout", status_code=204, responses=ERRORS)
def logout(context: ContextDep, token: SessionToken) -> Response:
    """End the session (idempotent) and clear the cookie."""
    if token:
        sessions.sign_out(context, token)
    response = Response(status_code=204)
    response.delete_cookie(sessions.SESSION_COOKIE, path="/v1/wallet")
    return response


# ---------------------------------------------------------------------- the member


@router.get("/me", response_model=WalletMemberPublic, responses=ERRORS)
def get_me(
    ws: CurrentWalletSession, session: SessionDep, context: ContextDep
) -> WalletMemberPublic:
    """Balance (from the chain), pending points, tier progress, badges and linked partners."""
    return member_view.member_view(context, session, ws)


@router.get("/history", response_model=HistoryPublic, responses=ERRORS)
def get_history(
    ws: CurrentWalletSession,
    session: SessionDep,
    kind: Annotated[HistoryKind | None, Query(description="only this kind")] = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    per_page: Annotated[int, Query(ge=1, le=100)] = 20,
) -> HistoryPublic:
    """Confirmed issuances, redemptions, transfers, clawbacks and badges, newest first."""
    return member_view.history(session, ws, kind, page, per_page)


@router.get("/entries/{op_id}/proof", response_model=EntryProofPublic, responses=ERRORS)
def get_entry_proof(
    op_id: EntryId, ws: CurrentWalletSession, session: SessionDep, context: ContextDep
) -> EntryProofPublic:
    """A history entry (an issuance or clawback) as a disclosure line: its input, the
    input's hash, the Merkle path to the root its batch logged on chain, and the rule
    version it was computed under with that version's effective window."""
    member = sessions.session_member(session, ws)
    return disclosures.entry_proof(context, session, member, op_id)


@router.get(
    "/disclosure",
    response_class=StreamingResponse,
    responses={**ERRORS, 200: {"content": {disclosures.MEDIA_TYPE: {}}}},
)
def get_disclosure(
    ws: CurrentWalletSession, session: SessionDep, context: ContextDep
) -> StreamingResponse:
    """The member's own disclosure lines (ndjson, oldest first), for
    ``pointsnet audit recompute --disclosure FILE``."""
    member = sessions.session_member(session, ws)
    scope = disclosures.Scope(addresses=disclosures.member_addresses(session, member))
    records = disclosures.lines(context.sessions, disclosures.Network.of(context), scope)
    return StreamingResponse(disclosures.ndjson(records), media_type=disclosures.MEDIA_TYPE)


@router.get("/data", response_model=MemberDataPublic, responses=ERRORS)
def get_data(ws: CurrentWalletSession, session: SessionDep) -> MemberDataPublic:
    """Everything the gateway holds about the member and the custodial accounts they
    claimed: the member rows, partner links with their customer ids, events with their
    payloads, kept issuance inputs, activity counters, redemptions, sessions, erasures."""
    return privacy.member_data(session, ws)


@router.delete("/data", response_model=ErasurePublic, responses=ERRORS)
def delete_data(
    body: ErasureCreate, ws: CurrentWalletSession, context: ContextDep
) -> ErasurePublic:
    """Erase the member's personal data (``{"confirm": "erase"}``): inputs, partner links,
    counters, sign-in codes and sessions go; events keep their order id and amount only;
    balances, points and everything on chain stay.  ``409 erasure_blocked`` while an
    operation of the member is on its way to the chain or an event is held for review.
    The session is revoked: the member signs in again."""
    return privacy.erase(context, ws)


@router.post("/transfers", response_model=TransferPublic, status_code=202, responses=ERRORS)
def create_transfer(
    body: TransferCreate, ws: CurrentWalletSession, context: ContextDep
) -> TransferPublic:
    """Send points to another address, gasless: the gateway relays the member's EIP-712
    ``TransferRequest``. Errors: ``insufficient_points``, ``signature_expired``,
    ``invalid_signature``, ``member_frozen``, ``transfers_disabled``, ``network_paused``."""
    return transfers.transfer(context, ws, body)


@router.get("/transfers/{transfer_id}", response_model=TransferPublic, responses=ERRORS)
def get_transfer(
    transfer_id: TransferId, ws: CurrentWalletSession, session: SessionDep
) -> TransferPublic:
    """A transfer the member sent or received: ``submitted`` → ``confirmed`` | ``failed``."""
    return transfers.get_transfer(session, ws, transfer_id)


@router.post("/redemptions", response_model=RedemptionPublic, status_code=202, responses=ERRORS)
def create_redemption(
    body: WalletRedemptionCreate, ws: CurrentWalletSession, context: ContextDep
) -> RedemptionPublic:
    """Redeem a reward of any partner with the member's EIP-712 ``Redemption`` consent.
    Errors: ``insufficient_points``, ``signature_expired``, ``invalid_signature``,
    ``not_found``, ``member_frozen``, ``network_paused``."""
    return rewards.redeem_as_member(context, ws, body)


@router.get("/redemptions", response_model=WalletRedemptionsPublic, responses=ERRORS)
def list_redemptions(ws: CurrentWalletSession, session: SessionDep) -> WalletRedemptionsPublic:
    """The member's latest 50 redemptions, with voucher codes once confirmed."""
    data = rewards.list_member_redemptions(session, ws)
    return WalletRedemptionsPublic(data=data, count=len(data))


@router.get("/redemptions/{redemption_id}", response_model=RedemptionPublic, responses=ERRORS)
def get_redemption(
    redemption_id: RedemptionId, ws: CurrentWalletSession, session: SessionDep
) -> RedemptionPublic:
    """One of the member's redemptions: status and, once confirmed, the voucher code."""
    return rewards.get_member_redemption(session, ws, redemption_id)


@router.post("/link", response_model=AccountLinkPublic, responses=ERRORS)
def link_account(
    body: AccountLinkCreate, ws: CurrentWalletSession, context: ContextDep
) -> AccountLinkPublic:
    """Attach a partner account to this self-custody wallet with the partner's one-time code
    and a personal_sign of the link message. Errors: ``link_code_invalid``,
    ``invalid_signature``, ``self_custody_required``, ``operations_pending``."""
    return accounts.link_account(context, ws, body.code, body.signature)


@router.post("/claim", response_model=ClaimPublic, status_code=202, responses=ERRORS)
def claim(body: ClaimCreate, ws: CurrentWalletSession, context: ContextDep) -> ClaimPublic:
    """From a custodial session: move the whole custodial balance and every partner link to
    a new self-custody address that personal_signed the claim message. Errors:
    ``custodial_session_required``, ``invalid_signature``, ``already_claimed``,
    ``operations_pending``, ``address_custodial``, ``transfers_disabled``."""
    return accounts.claim(context, ws, body.address, body.signature)
