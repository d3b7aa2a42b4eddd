"""The member wallet: sign-in, sessions, the member's view, and actions members sign.

Responsibilities:

- sign-in with EIP-4361 (SIWE): single-use nonces, and a strict check of the
  message (domain, chain id, times, nonce) and of the address that signed it;
- custodial sign-in through one-time login links a merchant asks for;
- sessions: random tokens stored as SHA-256 hashes, with an expiry;
- the member's view: balance and badges from the chain, tier progress, history
  of confirmed chain ops;
- gasless transfers and redemptions: checked here, queued as chain ops for the
  outbox worker; custodial members' actions are signed with their custodial key;
- account links (a merchant's one-time code signed by the member) and the claim
  of a custodial account by a new self-custody address.

Every secret (nonce, login token, link code, session token) is stored hashed,
used at most once where it is one-time, and only before it expires.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from eth_account import Account
from eth_account.messages import encode_defunct
from eth_utils import is_checksum_address, keccak, to_checksum_address
from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.orm import Session
from web3.exceptions import ContractLogicError

from chain import signing
from gateway.context import GatewayContext
from gateway.db import transaction
from gateway.errors import (
    Forbidden,
    GatewayError,
    InsufficientPoints,
    InvalidRequest,
    MemberFrozen,
    NetworkPaused,
    NotFound,
    SignatureRejected,
    Unauthorized,
)
from gateway.models import (
    ChainOp,
    ChainTx,
    CustomerLink,
    Event,
    Member,
    Merchant,
    Redemption,
    Reward,
    WalletChallenge,
    WalletSession,
)
from gateway.rules.badges import BADGES, BADGES_BY_ID
from gateway.rules.model import default_rule_set
from gateway.rules.tiers import TIER_NAMES, rfm
from gateway.schemas import (
    AccountLinkPublic,
    ClaimPublic,
    HistoryItemPublic,
    HistoryPublic,
    LinkedAccountPublic,
    RedemptionCreate,
    RedemptionPublic,
    TierProgressPublic,
    TransferCreate,
    TransferPublic,
    WalletBadgePublic,
    WalletConfigPublic,
    WalletMemberPublic,
    WalletRedemptionCreate,
)
from gateway.services import members as member_service
from gateway.services import rewards as reward_service

SESSION_TTL = timedelta(hours=12)
CUSTODIAL_SESSION_TTL = timedelta(hours=1)
SIWE_NONCE_TTL = timedelta(minutes=10)
LOGIN_LINK_TTL = timedelta(minutes=10)
LINK_CODE_TTL = timedelta(minutes=15)
#: Farthest deadline a member's signed action may carry.
MAX_DEADLINE = timedelta(days=1)
#: Deadline of the actions the gateway signs for custodial members.
CUSTODIAL_DEADLINE = timedelta(hours=1)
#: Deadline of the transfer that sweeps a claimed custodial account.
CLAIM_DEADLINE = timedelta(days=7)
#: Tolerated clock difference between the member's device and the gateway.
CLOCK_SKEW = timedelta(minutes=5)

SIWE_STATEMENT = "Sign in to the pointsnet wallet."
LINK_MESSAGE = "pointsnet: link this wallet to my account at a partner.\nCode: {code}"
CLAIM_MESSAGE = (
    "pointsnet: move my custodial points account {custodial} into my own wallet {address}."
)
SESSION_COOKIE = "pointsnet_wallet"
SESSION_PREFIX = "pnw_"
LOGIN_PREFIX = "pnl_"
#: Link codes: 8 characters without look-alikes (0/O, 1/I/L, U), shown as XXXX-XXXX.
LINK_ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"
HISTORY_KINDS = ("issue", "redeem", "transfer", "clawback", "badge")
_LIVE_EVENTS = ("accepted", "submitted", "confirmed")
_IN_FLIGHT = ("pending", "sent")


# ---------------------------------------------------------------------- errors


class SignInRejected(Unauthorized):
    """A SIWE message or login link that signs no one in; ``code`` says why."""

    def __init__(self, code: str, message: str, **details: Any) -> None:
        super().__init__(message, **details)
        self.code = code


class SessionRequired(Unauthorized):
    """No wallet session, or an expired or revoked one."""

    code = "session_required"


class WrongSessionKind(Forbidden):
    """The action needs the other kind of session (custodial or self-custody)."""

    def __init__(self, code: str, message: str, **details: Any) -> None:
        super().__init__(message, **details)
        self.code = code


class SignatureExpired(SignatureRejected):
    """The signed action's deadline has passed."""

    code = "signature_expired"


class WalletConflict(GatewayError):
    """The request clashes with the member's state (claimed, ops pending, self-custody)."""

    status = 409

    def __init__(self, code: str, message: str, **details: Any) -> None:
        super().__init__(message, **details)
        self.code = code


class LinkCodeInvalid(InvalidRequest):
    """The link code is unknown, already used or expired."""

    code = "link_code_invalid"


# ---------------------------------------------------------------------- helpers


def _now() -> datetime:
    return datetime.now(UTC)


def aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _recover_personal(message: str, signature: str) -> str | None:
    """The address that personal_signed ``message`` (None when it cannot be recovered)."""
    try:
        return str(
            Account.recover_message(
                encode_defunct(text=message), signature=bytes.fromhex(signature[2:])
            )
        )
    except Exception:  # a malformed signature (bad v, s out of range...) recovers no one
        return None


def _recover_typed(kind: str, ctx: GatewayContext, message: dict[str, Any], sig: str) -> str | None:
    try:
        return signing.recover(
            bytes.fromhex(sig[2:]), kind, ctx.link.chain_id, ctx.link.network.hub.address, message
        )
    except Exception:
        return None


def config(ctx: GatewayContext) -> WalletConfigPublic:
    network = ctx.link.network
    return WalletConfigPublic(
        chain_id=ctx.link.chain_id,
        hub=network.hub.address,
        token=network.token.address,
        badges=network.badges.address,
        eip712_name=signing.DOMAIN_NAME,
        eip712_version=signing.DOMAIN_VERSION,
        siwe_statement=SIWE_STATEMENT,
        link_message=LINK_MESSAGE,
        claim_message=CLAIM_MESSAGE,
        network_unit=ctx.fx.unit,
        tier_names=list(TIER_NAMES),
        max_deadline_seconds=int(MAX_DEADLINE.total_seconds()),
    )


# ---------------------------------------------------------------------- one-time secrets


def _add_challenge(
    session: Session, purpose: str, secret: str, ttl: timedelta, **fields: Any
) -> datetime:
    expires_at = _now() + ttl
    session.add(
        WalletChallenge(
            purpose=purpose, secret_hash=_digest(secret), expires_at=expires_at, **fields
        )
    )
    return expires_at


def _consume_challenge(session: Session, purpose: str, secret: str) -> WalletChallenge | None:
    """Mark the challenge used, once, before it expires; None if it cannot be used."""
    now = _now()
    used = session.execute(
        update(WalletChallenge)
        .where(
            WalletChallenge.purpose == purpose,
            WalletChallenge.secret_hash == _digest(secret),
            WalletChallenge.used_at.is_(None),
            WalletChallenge.expires_at > now,
        )
        .values(used_at=now)
    )
    if getattr(used, "rowcount", 0) != 1:
        return None
    return session.scalars(
        select(WalletChallenge).where(WalletChallenge.secret_hash == _digest(secret))
    ).one()


def _purge_expired(session: Session) -> None:
    """Forget challenges and sessions that expired more than a day ago."""
    cutoff = _now() - timedelta(days=1)
    session.execute(delete(WalletChallenge).where(WalletChallenge.expires_at < cutoff))
    session.execute(delete(WalletSession).where(WalletSession.expires_at < cutoff))


# ---------------------------------------------------------------------- SIWE


@dataclass(frozen=True)
class SiweMessage:
    """The fields of an EIP-4361 message the gateway checks."""

    domain: str
    address: str
    statement: str | None
    uri: str
    version: str
    chain_id: int
    nonce: str
    issued_at: datetime
    expiration_time: datetime | None
    not_before: datetime | None


_SIWE_HEADER = re.compile(
    r"^(?:[a-zA-Z][a-zA-Z0-9+.-]*://)?(?P<domain>[^\s/?#]+) "
    r"wants you to sign in with your Ethereum account:$"
)
_SIWE_FIELDS = ("URI", "Version", "Chain ID", "Nonce", "Issued At")
_SIWE_OPTIONAL = ("Expiration Time", "Not Before", "Request ID")


def new_siwe_nonce(ctx: GatewayContext) -> tuple[str, datetime]:
    """A fresh single-use nonce for a SIWE message."""
    nonce = secrets.token_hex(16)
    with transaction(ctx.sessions) as session:
        _purge_expired(session)
        expires_at = _add_challenge(session, "siwe", nonce, SIWE_NONCE_TTL)
    return nonce, expires_at


def _siwe_time(value: str, field: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise InvalidRequest(f"SIWE {field} is not an RFC 3339 time", field=field) from exc
    if moment.tzinfo is None:
        raise InvalidRequest(f"SIWE {field} needs a time zone", field=field)
    return moment.astimezone(UTC)


def parse_siwe(text: str) -> SiweMessage:
    """Parse an EIP-4361 message strictly (InvalidRequest ``siwe_malformed`` otherwise)."""
    try:
        return _parse_siwe(text)
    except InvalidRequest as exc:
        exc.code = "siwe_malformed"
        raise


def _parse_siwe(text: str) -> SiweMessage:
    lines = text.split("\n")
    if len(lines) < 8:
        raise InvalidRequest("not an EIP-4361 message: too short")
    header = _SIWE_HEADER.match(lines[0])
    if header is None:
        raise InvalidRequest("not an EIP-4361 message: bad first line")
    address = lines[1]
    if not re.fullmatch(r"0x[0-9a-fA-F]{40}", address) or not is_checksum_address(address):
        raise InvalidRequest("the address must be an EIP-55 checksummed address")
    if lines[2] != "":
        raise InvalidRequest("an empty line must follow the address")
    statement = None
    rest = lines[3:]
    if rest and rest[0] != "":
        statement = rest[0]
        rest = rest[1:]
    if not rest or rest[0] != "":
        raise InvalidRequest("an empty line must follow the statement")
    fields: dict[str, str] = {}
    expected = [*_SIWE_FIELDS, *_SIWE_OPTIONAL]
    position = 0
    for line in rest[1:]:
        if line == "Resources:" or line.startswith("- "):
            continue  # resources are allowed and not used
        name, sep, value = line.partition(": ")
        if not sep or name not in expected[position:]:
            raise InvalidRequest(f"unexpected line in the message: {line[:40]!r}")
        position = expected.index(name) + 1
        fields[name] = value
    missing = [name for name in _SIWE_FIELDS if name not in fields]
    if missing:
        raise InvalidRequest(f"the message lacks {', '.join(missing)}", missing=missing)
    if not re.fullmatch(r"[A-Za-z0-9]{8,}", fields["Nonce"]):
        raise InvalidRequest("the nonce must be at least 8 letters or digits")
    if not fields["Chain ID"].isdigit():
        raise InvalidRequest("Chain ID must be a number")
    expiration = fields.get("Expiration Time")
    not_before = fields.get("Not Before")
    return SiweMessage(
        domain=header.group("domain"),
        address=address,
        statement=statement,
        uri=fields["URI"],
        version=fields["Version"],
        chain_id=int(fields["Chain ID"]),
        nonce=fields["Nonce"],
        issued_at=_siwe_time(fields["Issued At"], "Issued At"),
        expiration_time=_siwe_time(expiration, "Expiration Time") if expiration else None,
        not_before=_siwe_time(not_before, "Not Before") if not_before else None,
    )


def sign_in_with_ethereum(
    ctx: GatewayContext, text: str, signature: str, domains: set[str]
) -> tuple[str, WalletSession]:
    """Verify a signed SIWE message and open a self-custody session (token, row)."""
    message = parse_siwe(text)
    if message.domain.lower() not in {d.lower() for d in domains}:
        raise SignInRejected(
            "siwe_domain_mismatch", "the message is for another site", domain=message.domain
        )
    if message.version != "1":
        raise InvalidRequest("only SIWE version 1 is supported", version=message.version)
    if message.chain_id != ctx.link.chain_id:
        raise SignInRejected(
            "siwe_chain_mismatch", "the message is for another chain",
            expected=ctx.link.chain_id, got=message.chain_id,
        )  # fmt: skip
    now = _now()
    if message.expiration_time is not None and message.expiration_time <= now:
        raise SignInRejected("siwe_expired", "the sign-in message has expired; sign a new one")
    if message.issued_at > now + CLOCK_SKEW:
        raise SignInRejected("siwe_not_yet_valid", "the message is issued in the future")
    if message.not_before is not None and message.not_before > now + CLOCK_SKEW:
        raise SignInRejected("siwe_not_yet_valid", "the message is not valid yet")
    if _recover_personal(text, signature) != message.address:
        raise SignInRejected("siwe_signature_mismatch", "the signature is not the address's")
    with transaction(ctx.sessions) as session:
        if _consume_challenge(session, "siwe", message.nonce) is None:
            raise SignInRejected(
                "siwe_nonce_invalid", "the nonce is unknown, used or expired; request a new one"
            )
        member = member_service.member_by_address(session, message.address)
        if member is None:
            member = Member(address=message.address, custodial=False)
            session.add(member)
            session.flush()
        elif member.custodial and member.key_enc is not None:
            # The gateway holds this key: a self-custody sign-in with it is refused.
            raise SignInRejected("siwe_custodial_address", "this address is custodial")
        return _new_session(session, member, custodial=False)


# ---------------------------------------------------------------------- sessions


def _new_session(session: Session, member: Member, *, custodial: bool) -> tuple[str, WalletSession]:
    token = SESSION_PREFIX + secrets.token_urlsafe(32)
    row = WalletSession(
        token_hash=_digest(token),
        member_id=member.id,
        address=member.address,
        custodial=custodial,
        expires_at=_now() + (CUSTODIAL_SESSION_TTL if custodial else SESSION_TTL),
    )
    session.add(row)
    session.flush()
    session.expunge(row)
    return token, row


def authenticate(session: Session, token: str | None) -> WalletSession:
    """The open session of ``token`` (SessionRequired otherwise)."""
    if not token:
        raise SessionRequired("sign in to the wallet first")
    row = session.scalars(
        select(WalletSession).where(WalletSession.token_hash == _digest(token))
    ).first()
    if row is None or row.revoked_at is not None:
        raise SessionRequired("the session is unknown or signed out; sign in again")
    if aware(row.expires_at) <= _now():
        raise SessionRequired("the session has expired; sign in again")
    session.expunge(row)
    return row


def sign_out(ctx: GatewayContext, token: str) -> None:
    with transaction(ctx.sessions) as session:
        session.execute(
            update(WalletSession)
            .where(WalletSession.token_hash == _digest(token), WalletSession.revoked_at.is_(None))
            .values(revoked_at=_now())
        )


# ---------------------------------------------------------------------- custodial login links


def create_login_link(
    ctx: GatewayContext, merchant: Merchant, customer_id: str
) -> tuple[str, datetime]:
    """A one-time wallet URL for the merchant's customer (custodial members only)."""
    token = LOGIN_PREFIX + secrets.token_urlsafe(32)
    with transaction(ctx.sessions) as session:
        _link, member = member_service.resolve_customer(session, ctx.box, merchant.id, customer_id)
        if not member.custodial or member.claimed_by is not None:
            raise WalletConflict(
                "member_self_custody",
                "this customer has their own wallet and signs in with it",
                customer_id=customer_id,
            )
        expires_at = _add_challenge(
            session, "login", token, LOGIN_LINK_TTL, member_id=member.id, merchant_id=merchant.id
        )
    return f"{ctx.settings.base_url.rstrip('/')}/wallet#login={token}", expires_at


def exchange_login_link(ctx: GatewayContext, token: str) -> tuple[str, WalletSession]:
    """Trade a login link's token (once) for a custodial session."""
    with transaction(ctx.sessions) as session:
        challenge = _consume_challenge(session, "login", token)
        member = (
            session.get(Member, challenge.member_id) if challenge and challenge.member_id else None
        )
        if member is None or not member.custodial or member.claimed_by is not None:
            raise SignInRejected(
                "login_link_invalid",
                "this login link is unknown, used or expired; ask for a new one",
            )
        return _new_session(session, member, custodial=True)


# ---------------------------------------------------------------------- the member's view


def _member(session: Session, ws: WalletSession, *, lock: bool = False) -> Member:
    member = session.get(Member, ws.member_id, with_for_update=lock)
    if member is None:  # pragma: no cover - members are never deleted
        raise SessionRequired("the member of this session no longer exists")
    return member


def _claimed(session: Session, address: str) -> list[Member]:
    """Custodial members whose accounts ``address`` claimed."""
    return list(session.scalars(select(Member).where(Member.claimed_by == address)).all())


def queued(session: Session, address: str) -> tuple[int, int]:
    """(signed actions, points) of the address's transfers and redemptions not yet mined."""
    count, amount = session.execute(
        select(func.count(ChainOp.id), func.coalesce(func.sum(ChainOp.amount), 0)).where(
            ChainOp.member_address == address,
            ChainOp.kind.in_(("redeem", "transfer")),
            ChainOp.status.in_(_IN_FLIGHT),
        )
    ).one()
    return int(count or 0), int(amount or 0)


def member_view(ctx: GatewayContext, session: Session, ws: WalletSession) -> WalletMemberPublic:
    network = ctx.link.network
    member = _member(session, ws)
    claimed = _claimed(session, member.address)
    addresses = [member.address, *(m.address for m in claimed)]
    balance = network.token.balance_of(member.address)
    count, in_flight = queued(session, member.address)
    pending = session.scalar(
        select(func.coalesce(func.sum(ChainOp.amount), 0)).where(
            ChainOp.member_address == member.address,
            ChainOp.kind == "issue",
            ChainOp.status.in_(_IN_FLIGHT),
        )
    )
    chain_tier = max(network.hub.tier_of(a) for a in addresses)
    links = session.execute(
        select(Merchant.id, Merchant.name)
        .join(CustomerLink, CustomerLink.merchant_id == Merchant.id)
        .where(CustomerLink.member_id == member.id)
        .distinct()
        .order_by(Merchant.id)
    ).all()
    return WalletMemberPublic(
        address=member.address,
        custodial=ws.custodial,
        frozen=member.frozen,
        balance=balance,
        pending_points=int(pending or 0),
        spendable=max(0, balance - in_flight),
        next_nonce=network.hub.nonce_of(member.address) + count,
        tier=tier_progress(session, [member.id, *(m.id for m in claimed)], chain_tier),
        badges=held_badges(ctx, addresses),
        linked_accounts=[LinkedAccountPublic(merchant_id=i, merchant_name=n) for i, n in links],
        claimed_addresses=[m.address for m in claimed],
    )


def tier_progress(session: Session, member_ids: list[str], tier: int) -> TierProgressPublic:
    """The tier and what the next one needs, by the network's seed thresholds."""
    ladder = default_rule_set("USD").tiers
    now = _now()
    purchases = session.execute(
        select(Event.occurred_at, Event.network_amount).where(
            Event.member_id.in_(member_ids),
            Event.type == "purchase",
            Event.status.in_(_LIVE_EVENTS),
            Event.occurred_at > now - timedelta(days=ladder.window_days),
        )
    ).all()
    measured = rfm([(aware(t), Decimal(a)) for t, a in purchases], now, ladder.window_days)
    tier = max(0, min(tier, len(ladder.levels) - 1))
    nxt = tier + 1 if tier + 1 < len(ladder.levels) else None
    level = ladder.levels[nxt] if nxt is not None else None
    return TierProgressPublic(
        tier=tier,
        tier_name=ladder.levels[tier].name,
        next_tier=nxt,
        next_tier_name=level.name if level else None,
        window_days=ladder.window_days,
        orders=measured.frequency,
        orders_needed=level.min_orders if level else None,
        spend=str(measured.monetary.quantize(Decimal("0.01"))),
        spend_needed=str(level.min_spend) if level else None,
        days_since_last_order=measured.recency.days if measured.recency is not None else None,
        max_recency_days=level.max_recency_days if level else None,
    )


def held_badges(ctx: GatewayContext, addresses: list[str]) -> list[WalletBadgePublic]:
    """Catalogue badges any of ``addresses`` holds, read from the chain in one call each."""
    badges = ctx.link.network.badges
    ids = [b.id for b in BADGES]
    held: set[int] = set()
    for address in addresses:
        owner = to_checksum_address(address)
        balances = badges.functions.balanceOfBatch([owner] * len(ids), ids).call()
        held.update(i for i, n in zip(ids, balances, strict=True) if int(n) > 0)
    return [
        WalletBadgePublic(
            id=b.id, key=b.key, name=b.name, description=b.description,
            image_url=f"/v1/badges/{b.id}.svg", soulbound=b.soulbound,
        )
        for b in BADGES
        if b.id in held
    ]  # fmt: skip


def history(
    session: Session, ws: WalletSession, kind: str | None, page: int, per_page: int
) -> HistoryPublic:
    """The member's confirmed issuances, redemptions, transfers, clawbacks and badges."""
    member = _member(session, ws)
    addresses = [member.address, *(m.address for m in _claimed(session, member.address))]
    recipient = ChainOp.payload["request"]["to"].as_string()
    mine = or_(
        ChainOp.member_address.in_(addresses),
        and_(ChainOp.kind == "transfer", recipient.in_(addresses)),
    )
    kinds = (kind,) if kind else HISTORY_KINDS
    where = (ChainOp.status == "confirmed", ChainOp.kind.in_(kinds), mine)
    total = int(session.scalar(select(func.count(ChainOp.id)).where(*where)) or 0)
    rows = session.execute(
        select(
            ChainOp, ChainTx.tx_hash, ChainTx.block_number, ChainTx.created_at,
            Event.rule_version, Event.occurred_at, Merchant.name, Reward.name,
        )
        .join(ChainTx, ChainTx.id == ChainOp.tx_id)
        .outerjoin(Event, Event.id == ChainOp.event_id)
        .outerjoin(Merchant, Merchant.id == ChainOp.merchant_id)
        .outerjoin(Redemption, Redemption.op_id == ChainOp.id)
        .outerjoin(Reward, Reward.id == Redemption.reward_id)
        .where(*where)
        .order_by(ChainOp.id.desc())
        .offset((page - 1) * per_page)
        .limit(per_page)
    ).all()  # fmt: skip
    items = []
    for op, tx_hash, block, signed_at, rule_version, occurred_at, merchant_name, reward in rows:
        direction, counterparty = "in", None
        if op.kind in ("redeem", "clawback"):
            direction = "out"
        if op.kind == "transfer":
            request = op.payload.get("request", {})
            outgoing = op.member_address in addresses and request.get("to") not in addresses
            direction = "out" if outgoing else "in"
            counterparty = request.get("to") if outgoing else op.member_address
        badge = BADGES_BY_ID.get(op.badge_id) if op.badge_id is not None else None
        amount = op.burned if op.kind == "clawback" and op.burned is not None else op.amount
        items.append(
            HistoryItemPublic(
                id=op.id, kind=op.kind, direction=direction, amount=int(amount or 0),  # type: ignore[arg-type]
                counterparty=counterparty, badge_id=op.badge_id,
                badge_key=badge.key if badge else None,
                badge_name=badge.name if badge else None, merchant_id=op.merchant_id,
                merchant_name=merchant_name, reward_name=reward,
                rule_version=rule_version if op.event_id else None,
                occurred_at=aware(occurred_at or signed_at), tx_hash=tx_hash, block_number=block,
            )
        )  # fmt: skip
    return HistoryPublic(data=items, count=total, page=page, per_page=per_page)


# ---------------------------------------------------------------------- signed actions


def _check_can_move(ctx: GatewayContext, member: Member) -> None:
    if member.frozen:
        raise MemberFrozen("this member is frozen; points cannot move", member=member.address)
    if ctx.link.network.hub.paused():
        raise NetworkPaused("the network is paused by its guardian; try again later")


def _transfers_allowed(ctx: GatewayContext) -> None:
    if not ctx.link.network.hub.functions.transfersAllowed().call():
        raise WalletConflict(
            "transfers_disabled", "member-to-member transfers are disabled on chain"
        )


def _check_deadline(deadline: int) -> None:
    now = time.time()
    if deadline <= now:
        raise SignatureExpired("the signature's deadline has passed; sign again", deadline=deadline)
    if deadline > now + MAX_DEADLINE.total_seconds() + CLOCK_SKEW.total_seconds():
        raise InvalidRequest(
            "the deadline is too far away", deadline=deadline,
            max_seconds=int(MAX_DEADLINE.total_seconds()),
        )  # fmt: skip


def _signed_fields(
    ws: WalletSession, body: TransferCreate | WalletRedemptionCreate
) -> tuple[int, int, str] | None:
    """(nonce, deadline, signature) of a self-custody request; None for a custodial one."""
    given = [body.nonce is not None, body.deadline is not None, body.signature is not None]
    if ws.custodial:
        if any(given):
            raise InvalidRequest(
                "custodial members do not sign: omit nonce, deadline and signature"
            )
        return None
    if not all(given):
        raise InvalidRequest("nonce, deadline and signature are required")
    assert body.nonce is not None and body.deadline is not None and body.signature is not None
    _check_deadline(body.deadline)
    return body.nonce, body.deadline, body.signature


def transfer_ref(sender: str, nonce: int) -> str:
    """The bytes32 reference of a member's signed transfer."""
    return "0x" + keccak(f"transfer:{sender}:{nonce}".encode()).hex()


def transfer(ctx: GatewayContext, ws: WalletSession, body: TransferCreate) -> TransferPublic:
    """Check a transfer and queue it for the worker (which relays it and pays the gas)."""
    sender = ws.address
    to = to_checksum_address(body.to)
    if to == sender:
        raise InvalidRequest("you cannot transfer points to yourself", to=to)
    if int(to, 16) == 0:
        raise InvalidRequest("the zero address cannot receive points", to=to)
    signed = _signed_fields(ws, body)
    hub = ctx.link.network.hub
    with transaction(ctx.sessions) as session:
        member = _member(session, ws, lock=True)
        _check_can_move(ctx, member)
        _transfers_allowed(ctx)
        count, in_flight = queued(session, sender)
        expected = hub.nonce_of(sender) + count
        if signed is None:
            nonce, deadline = expected, int(time.time() + CUSTODIAL_DEADLINE.total_seconds())
            request = _transfer_request(sender, to, body.amount, nonce, deadline)
            key = member_service.custodial_key(ctx.box, member)
            signature = (
                "0x"
                + signing.sign(
                    key, "TransferRequest", ctx.link.chain_id, hub.address, request
                ).hex()
            )
        else:
            nonce, deadline, signature = signed
            request = _transfer_request(sender, to, body.amount, nonce, deadline)
            if _recover_typed("TransferRequest", ctx, request, signature) != sender:
                raise SignatureRejected("the signature is not the member's", member=sender)
            if nonce != expected:
                raise SignatureRejected(
                    "the signature's nonce is not the member's next one",
                    expected=expected,
                    got=nonce,
                )
        spendable = ctx.link.network.token.balance_of(sender) - in_flight
        if spendable < body.amount:
            raise InsufficientPoints(
                "not enough points", balance=max(spendable, 0), needed=body.amount
            )
        op = ChainOp(
            kind="transfer",
            member_address=sender,
            amount=body.amount,
            ref=transfer_ref(sender, nonce),
            payload={"request": request, "signature": signature},
        )
        session.add(op)
        session.flush()
        return transfer_public(op, None)


def _transfer_request(
    sender: str, to: str, amount: int, nonce: int, deadline: int
) -> dict[str, Any]:
    return {"from": sender, "to": to, "amount": amount, "nonce": nonce, "deadline": deadline}


def transfer_public(op: ChainOp, tx: ChainTx | None) -> TransferPublic:
    request = op.payload["request"]
    status = {"confirmed": "confirmed", "failed": "failed"}.get(op.status, "submitted")
    return TransferPublic(
        id=op.id,
        from_address=request["from"],
        to=request["to"],
        amount=int(request["amount"]),
        nonce=int(request["nonce"]),
        status=status,  # type: ignore[arg-type]
        tx_hash=tx.tx_hash if tx is not None else None,
        error=op.error if op.status == "failed" else None,
    )


def get_transfer(session: Session, ws: WalletSession, transfer_id: int) -> TransferPublic:
    """A transfer the member sent or received (NotFound for anyone else's)."""
    op = session.get(ChainOp, transfer_id)
    parties = {ws.address}
    if op is not None and op.kind == "transfer":
        request = op.payload.get("request", {})
        if request.get("from") in parties or request.get("to") in parties:
            tx = session.get(ChainTx, op.tx_id) if op.tx_id else None
            return transfer_public(op, tx)
    raise NotFound(f"no transfer {transfer_id}", transfer_id=transfer_id)


def redeem(
    ctx: GatewayContext, ws: WalletSession, body: WalletRedemptionCreate
) -> RedemptionPublic:
    """Redeem a reward of any partner with the member's consent (or custodial key)."""
    signed = _signed_fields(ws, body)
    with ctx.sessions() as session:
        reward = session.get(Reward, body.reward_id)
        merchant = session.get(Merchant, reward.merchant_id) if reward else None
        if reward is None or merchant is None or not reward.active or merchant.status != "active":
            raise NotFound(f"no active reward {body.reward_id}", reward_id=body.reward_id)
        member = _member(session, ws)
        _check_can_move(ctx, member)
        if signed is None:
            count, _ = queued(session, ws.address)
            hub = ctx.link.network.hub
            nonce = hub.nonce_of(ws.address) + count
            deadline = int(time.time() + CUSTODIAL_DEADLINE.total_seconds())
            message = reward_service.redemption_message(ctx, reward, ws.address, nonce, deadline)
            key = member_service.custodial_key(ctx.box, member)
            signature = (
                "0x"
                + signing.sign(key, "Redemption", ctx.link.chain_id, hub.address, message).hex()
            )
        else:
            nonce, deadline, signature = signed
        merchant_id = reward.merchant_id
    return reward_service.redeem(
        ctx,
        merchant_id,
        RedemptionCreate(
            reward_id=body.reward_id,
            member=ws.address,
            nonce=nonce,
            deadline=deadline,
            signature=signature,
        ),
    )


def get_redemption(session: Session, ws: WalletSession, redemption_id: str) -> RedemptionPublic:
    redemption = session.get(Redemption, redemption_id)
    if redemption is None or redemption.member_address != ws.address:
        raise NotFound(f"no redemption {redemption_id}", redemption_id=redemption_id)
    return reward_service.redemption_public(redemption)


def list_redemptions(
    session: Session, ws: WalletSession, limit: int = 50
) -> list[RedemptionPublic]:
    rows = session.scalars(
        select(Redemption)
        .where(Redemption.member_address == ws.address)
        .order_by(Redemption.created_at.desc())
        .limit(limit)
    ).all()
    return [reward_service.redemption_public(r) for r in rows]


# ---------------------------------------------------------------------- links and claims


def normalize_code(code: str) -> str:
    """``abcd efgh`` / ``ABCD-EFGH`` → ``ABCD-EFGH`` (InvalidRequest if it cannot be one)."""
    compact = re.sub(r"[\s-]", "", code).upper()
    if len(compact) != 8 or any(c not in LINK_ALPHABET for c in compact):
        raise LinkCodeInvalid("a link code has 8 letters and digits, like ABCD-EFGH")
    return f"{compact[:4]}-{compact[4:]}"


def create_link_code(
    ctx: GatewayContext, merchant: Merchant, customer_id: str
) -> tuple[str, datetime]:
    """A short one-time code that attaches the merchant's customer to the member who signs it."""
    with transaction(ctx.sessions) as session:
        while True:
            raw = "".join(secrets.choice(LINK_ALPHABET) for _ in range(8))
            code = f"{raw[:4]}-{raw[4:]}"
            taken = session.scalar(
                select(func.count(WalletChallenge.id)).where(
                    WalletChallenge.secret_hash == _digest(code)
                )
            )
            if not taken:
                break
        expires_at = _add_challenge(
            session, "link", code, LINK_CODE_TTL, merchant_id=merchant.id, customer_id=customer_id
        )
    return code, expires_at


def link_account(
    ctx: GatewayContext, ws: WalletSession, code: str, signature: str
) -> AccountLinkPublic:
    """Attach the code's (merchant, customer) to the signed-in self-custody member."""
    if ws.custodial:
        raise WrongSessionKind(
            "self_custody_required", "linking needs your own wallet: create or import one first"
        )
    code = normalize_code(code)
    if _recover_personal(LINK_MESSAGE.format(code=code), signature) != ws.address:
        raise SignatureRejected("the signature is not this wallet's", member=ws.address)
    with transaction(ctx.sessions) as session:
        challenge = _consume_challenge(session, "link", code)
        if challenge is None or challenge.merchant_id is None or challenge.customer_id is None:
            raise LinkCodeInvalid("this link code is unknown, used or expired; ask for a new one")
        merchant = session.get(Merchant, challenge.merchant_id)
        assert merchant is not None
        member = _member(session, ws, lock=True)
        link = member_service.find_link(session, merchant.id, challenge.customer_id)
        if link is None:
            session.add(
                CustomerLink(
                    merchant_id=merchant.id, customer_id=challenge.customer_id, member_id=member.id
                )
            )
        elif link.member_id != member.id:
            previous = session.get(Member, link.member_id, with_for_update=True)
            assert previous is not None
            others = session.scalar(
                select(func.count(CustomerLink.id)).where(
                    CustomerLink.member_id == previous.id, CustomerLink.id != link.id
                )
            )
            if previous.custodial and previous.claimed_by is None and not others:
                _sweep(ctx, session, previous, member)  # the customer's points come along
            link.member_id = member.id
        session.flush()
        return AccountLinkPublic(
            merchant_id=merchant.id, merchant_name=merchant.name, customer_id=challenge.customer_id
        )


def claim(ctx: GatewayContext, ws: WalletSession, address: str, signature: str) -> ClaimPublic:
    """Move a custodial account to a new self-custody address that signed for it."""
    if not ws.custodial:
        raise WrongSessionKind(
            "custodial_session_required", "open the wallet from your partner's login link to claim"
        )
    new = to_checksum_address(address)
    if new == ws.address:
        raise InvalidRequest("the new address must differ from the custodial one")
    message = CLAIM_MESSAGE.format(custodial=ws.address, address=new)
    if _recover_personal(message, signature) != new:
        raise SignatureRejected("the signature is not the new address's", address=new)
    with transaction(ctx.sessions) as session:
        old = _member(session, ws, lock=True)
        if old.claimed_by is not None:
            raise WalletConflict(
                "already_claimed", "this account was already claimed", by=old.claimed_by
            )
        if old.frozen:
            raise MemberFrozen("this member is frozen; points cannot move", member=old.address)
        target = member_service.member_by_address(session, new)
        if target is None:
            target = Member(address=new, custodial=False)
            session.add(target)
            session.flush()
        elif target.custodial:
            raise WalletConflict(
                "address_custodial", "the new address is a custodial account", address=new
            )
        op = _sweep(ctx, session, old, target)
        session.execute(
            update(CustomerLink).where(CustomerLink.member_id == old.id).values(member_id=target.id)
        )
        session.execute(
            update(WalletSession)
            .where(WalletSession.member_id == old.id, WalletSession.revoked_at.is_(None))
            .values(revoked_at=_now())
        )
        return ClaimPublic(
            address=new,
            amount=op.amount if op else 0,
            transfer=transfer_public(op, None) if op else None,
        )


def _sweep(ctx: GatewayContext, session: Session, old: Member, target: Member) -> ChainOp | None:
    """Mark ``old`` claimed by ``target`` and queue the transfer of its whole balance."""
    busy = session.scalar(
        select(func.count(ChainOp.id)).where(
            ChainOp.member_address == old.address, ChainOp.status.in_(_IN_FLIGHT)
        )
    )
    if busy:
        raise WalletConflict(
            "operations_pending",
            "points are still on their way to this account; try again in a minute",
            pending=int(busy),
        )
    network = ctx.link.network
    if network.hub.paused():
        raise NetworkPaused("the network is paused by its guardian; try again later")
    balance = network.token.balance_of(old.address)
    old.claimed_by = target.address
    if balance == 0:
        return None
    _transfers_allowed(ctx)
    nonce = network.hub.nonce_of(old.address)
    deadline = int(time.time() + CLAIM_DEADLINE.total_seconds())
    request = _transfer_request(old.address, target.address, balance, nonce, deadline)
    key = member_service.custodial_key(ctx.box, old)
    signature = signing.sign(
        key, "TransferRequest", ctx.link.chain_id, network.hub.address, request
    )
    op = ChainOp(
        kind="transfer",
        member_address=old.address,
        amount=balance,
        ref=transfer_ref(old.address, nonce),
        payload={"request": request, "signature": "0x" + signature.hex(), "claim": True},
    )
    session.add(op)
    session.flush()
    return op


# ---------------------------------------------------------------------- badges


def badge_metadata(ctx: GatewayContext, badge_id: int) -> dict[str, Any]:
    """ERC-1155 metadata of a badge type: the on-chain name, the catalogue's text."""
    if not 0 <= badge_id < 2**256:
        raise NotFound(f"no badge {badge_id}", badge_id=badge_id)
    try:
        onchain = ctx.link.network.badges.badge_type(badge_id)
    except ContractLogicError as exc:
        raise NotFound(f"no badge {badge_id} is defined on chain", badge_id=badge_id) from exc
    entry = BADGES_BY_ID.get(badge_id)
    return {
        "name": onchain.name,
        "description": entry.description if entry else "",
        "image": f"{ctx.settings.base_url.rstrip('/')}/v1/badges/{badge_id}.svg",
        "properties": {
            "key": entry.key if entry else None,
            "icon": entry.icon if entry else "star",
            "soulbound": onchain.soulbound,
            "max_supply": str(onchain.max_supply),
            "minted": str(onchain.minted),
        },
    }
