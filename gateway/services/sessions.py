"""Wallet sign-in and sessions: who is using the wallet.

Responsibilities:

- sign-in with EIP-4361 (SIWE): single-use nonces, and a strict check of the
  message (domain, chain id, times, nonce) and of the address that signed it;
- custodial sign-in through one-time login links a merchant asks for;
- sessions: random tokens stored as SHA-256 hashes, with an expiry;
- the one-time secrets (nonces, login tokens, link codes) behind them: stored
  hashed, used at most once, and only before they expire.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from eth_account import Account
from eth_account.messages import encode_defunct
from eth_utils import is_checksum_address
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from gateway.context import GatewayContext
from gateway.db import transaction
from gateway.errors import InvalidRequest, SessionRequired, SignInRejected, WalletConflict
from gateway.models import Member, Merchant, WalletChallenge, WalletSession
from gateway.services import members as member_service
from gateway.services.consent import CLOCK_SKEW
from gateway.timeutil import aware, utc_now

SESSION_TTL = timedelta(hours=12)
CUSTODIAL_SESSION_TTL = timedelta(hours=1)
SIWE_NONCE_TTL = timedelta(minutes=10)
LOGIN_LINK_TTL = timedelta(minutes=10)
SIWE_STATEMENT = "Sign in to the pointsnet wallet."
SESSION_COOKIE = "pointsnet_wallet"
SESSION_PREFIX = "pnw_"
LOGIN_PREFIX = "pnl_"


def digest(secret: str) -> str:
    """How a one-time secret or session token is stored: its SHA-256, in hex."""
    return hashlib.sha256(secret.encode()).hexdigest()


def recover_personal(message: str, signature: str) -> str | None:
    """The address that personal_signed ``message`` (None when it cannot be recovered)."""
    try:
        return str(
            Account.recover_message(
                encode_defunct(text=message), signature=bytes.fromhex(signature[2:])
            )
        )
    except Exception:  # a malformed signature (bad v, s out of range...) recovers no one
        return None


# ---------------------------------------------------------------------- one-time secrets


def add_challenge(
    session: Session, purpose: str, secret: str, ttl: timedelta, **fields: Any
) -> datetime:
    """Store a one-time ``secret`` for ``purpose``, usable for ``ttl``; its expiry."""
    expires_at = utc_now() + ttl
    session.add(
        WalletChallenge(
            purpose=purpose, secret_hash=digest(secret), expires_at=expires_at, **fields
        )
    )
    return expires_at


def consume_challenge(session: Session, purpose: str, secret: str) -> WalletChallenge | None:
    """Mark the challenge used, once, before it expires; None if it cannot be used."""
    now = utc_now()
    used = session.execute(
        update(WalletChallenge)
        .where(
            WalletChallenge.purpose == purpose,
            WalletChallenge.secret_hash == digest(secret),
            WalletChallenge.used_at.is_(None),
            WalletChallenge.expires_at > now,
        )
        .values(used_at=now)
    )
    if getattr(used, "rowcount", 0) != 1:
        return None
    return session.scalars(
        select(WalletChallenge).where(WalletChallenge.secret_hash == digest(secret))
    ).one()


def _already_used(session: Session, purpose: str, secret: str) -> bool:
    """Whether ``secret`` names a challenge that was used (not one unknown or expired)."""
    used_at = session.scalars(
        select(WalletChallenge.used_at).where(
            WalletChallenge.purpose == purpose, WalletChallenge.secret_hash == digest(secret)
        )
    ).one_or_none()
    return used_at is not None


def _purge_expired(session: Session) -> None:
    """Forget challenges and sessions that expired more than a day ago."""
    cutoff = utc_now() - timedelta(days=1)
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
        expires_at = add_challenge(session, "siwe", nonce, SIWE_NONCE_TTL)
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
    now = utc_now()
    if message.expiration_time is not None and message.expiration_time <= now:
        raise SignInRejected("siwe_expired", "the sign-in message has expired; sign a new one")
    if message.issued_at > now + CLOCK_SKEW:
        raise SignInRejected("siwe_not_yet_valid", "the message is issued in the future")
    if message.not_before is not None and message.not_before > now + CLOCK_SKEW:
        raise SignInRejected("siwe_not_yet_valid", "the message is not valid yet")
    if recover_personal(text, signature) != message.address:
        raise SignInRejected("siwe_signature_mismatch", "the signature is not the address's")
    with transaction(ctx.sessions) as session:
        if consume_challenge(session, "siwe", message.nonce) is None:
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
        token_hash=digest(token),
        member_id=member.id,
        address=member.address,
        custodial=custodial,
        expires_at=utc_now() + (CUSTODIAL_SESSION_TTL if custodial else SESSION_TTL),
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
        select(WalletSession).where(WalletSession.token_hash == digest(token))
    ).first()
    if row is None or row.revoked_at is not None:
        raise SessionRequired("the session is unknown or signed out; sign in again")
    if aware(row.expires_at) <= utc_now():
        raise SessionRequired("the session has expired; sign in again")
    session.expunge(row)
    return row


def sign_out(ctx: GatewayContext, token: str) -> None:
    """Revoke the session of ``token`` (nothing when it is unknown or already revoked)."""
    with transaction(ctx.sessions) as session:
        session.execute(
            update(WalletSession)
            .where(WalletSession.token_hash == digest(token), WalletSession.revoked_at.is_(None))
            .values(revoked_at=utc_now())
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
        expires_at = add_challenge(
            session, "login", token, LOGIN_LINK_TTL, member_id=member.id, merchant_id=merchant.id
        )
    return f"{ctx.settings.base_url.rstrip('/')}/wallet#login={token}", expires_at


def exchange_login_link(ctx: GatewayContext, token: str) -> tuple[str, WalletSession]:
    """Trade a login link's token (once) for a custodial session; ``login_link_used``
    for a link already traded (the member opened it again), ``login_link_invalid`` for
    one unknown or expired."""
    with transaction(ctx.sessions) as session:
        challenge = consume_challenge(session, "login", token)
        if challenge is None and _already_used(session, "login", token):
            raise SignInRejected(
                "login_link_used", "this login link was already used; ask for a new one"
            )
        member = (
            session.get(Member, challenge.member_id) if challenge and challenge.member_id else None
        )
        if member is None or not member.custodial or member.claimed_by is not None:
            raise SignInRejected(
                "login_link_invalid",
                "this login link is unknown, used or expired; ask for a new one",
            )
        return _new_session(session, member, custodial=True)


def session_member(session: Session, ws: WalletSession, *, lock: bool = False) -> Member:
    """The member signed in with ``ws`` (``lock``: FOR UPDATE)."""
    member = session.get(Member, ws.member_id, with_for_update=lock)
    if member is None:  # pragma: no cover - members are never deleted
        raise SessionRequired("the member of this session no longer exists")
    return member
