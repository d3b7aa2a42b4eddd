"""SQLAlchemy models of the gateway (kept apart from the API schemas).

The flow a merchant event takes through these tables:

``Event`` (accepted, with the rules engine's decision) → ``ChainOp`` rows, one
per on-chain effect (issue points, claw back, award a badge, set a tier) →
the outbox worker packs pending ops into a ``ChainTx`` (signed and stored
before it is broadcast) → the receipt marks tx, ops and event confirmed.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any, ClassVar, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    Numeric,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def table_of(model: type[Base]) -> Table:
    """A model's table, typed as one (for Core statements on the hot path)."""
    return cast(Table, model.__table__)


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return uuid.uuid4().hex


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, list[Any]: JSON}


class Merchant(Base):
    """A partner merchant; ``id`` is its id in the hub's registry."""

    __tablename__ = "merchants"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(200))
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(16), default="active")
    api_key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    api_key_prefix: Mapped[str] = mapped_column(String(16))
    cap_per_period: Mapped[int] = mapped_column(BigInteger)
    next_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    rule_version: Mapped[int] = mapped_column(Integer, default=0)  # latest published on chain
    signer_address: Mapped[str] = mapped_column(String(42))
    signer_key_enc: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    webhook_url: Mapped[str | None] = mapped_column(String(500), default=None)
    webhook_secret_enc: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class MerchantAdmission(Base):
    """A merchant admission scheduled through the timelock, activated once executed.

    It holds what the merchant row will get (the API key only hashed); the key
    authenticates nothing until ``status`` is ``admitted`` and the merchant row exists.
    """

    __tablename__ = "merchant_admissions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    currency: Mapped[str] = mapped_column(String(3))
    cap_per_period: Mapped[int] = mapped_column(BigInteger)
    signer_address: Mapped[str] = mapped_column(String(42))
    signer_key_enc: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    api_key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    api_key_prefix: Mapped[str] = mapped_column(String(16))
    operation_id: Mapped[str] = mapped_column(String(66), unique=True)  # 0x-hex
    target: Mapped[str] = mapped_column(String(42))
    call_data: Mapped[bytes] = mapped_column(LargeBinary)
    salt: Mapped[bytes] = mapped_column(LargeBinary)
    ready_at: Mapped[int] = mapped_column(BigInteger)  # unix time (chain clock)
    scheduled_block: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16), default="scheduled")  # admitted, failed
    merchant_id: Mapped[int | None] = mapped_column(Integer, default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


#: ``Member.key_enc`` of a member whose custodial key is derived (nothing stored).
DERIVED_KEY = b""


class Member(Base):
    """A network member: an address, custodial (key kept encrypted) or self-custody."""

    __tablename__ = "members"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    address: Mapped[str] = mapped_column(String(42), unique=True)
    custodial: Mapped[bool] = mapped_column(Boolean, default=True)
    #: The custodial key, encrypted; ``DERIVED_KEY`` (empty) when it is derived rather
    #: than stored.  Not None exactly when the gateway holds the member's key.
    key_enc: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    #: A derived custodial key's origin: the (merchant, customer) of the member's first
    #: link (see ``SecretBox.custodial_key``); None for stored (``key_enc``) keys.
    key_merchant_id: Mapped[int | None] = mapped_column(Integer, default=None)
    key_customer_id: Mapped[str | None] = mapped_column(String(200), default=None)
    claimed_by: Mapped[str | None] = mapped_column(String(42), default=None)
    birth_month: Mapped[int | None] = mapped_column(Integer, default=None)
    frozen: Mapped[bool] = mapped_column(Boolean, default=False)
    tier: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class CustomerLink(Base):
    """(merchant, customer_id) → member. Never shown to another merchant."""

    __tablename__ = "customer_links"
    __table_args__ = (UniqueConstraint("merchant_id", "customer_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"))
    customer_id: Mapped[str] = mapped_column(String(200))
    member_id: Mapped[str] = mapped_column(ForeignKey("members.id"), index=True)
    referred_by: Mapped[str | None] = mapped_column(String(32), default=None)
    referral_rewarded: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class IdempotencyRecord(Base):
    """A merchant's Idempotency-Key: the request's hash and the stored answer."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("merchant_id", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"))
    key: Mapped[str] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))
    # Written once, with the answer, in the transaction that accepts (or refuses)
    # the request, so always "done" (migration 0004 removed older "processing" rows).
    state: Mapped[str] = mapped_column(String(16), default="done")
    status_code: Mapped[int | None] = mapped_column(Integer, default=None)
    response: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Event(Base):
    """A merchant event and the rules engine's decision about it."""

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_status_created", "status", "created_at"),
        Index("ix_events_member_time", "member_id", "occurred_at"),
        Index("ix_events_merchant_order", "merchant_id", "order_id"),
        Index("ix_events_merchant_created", "merchant_id", "created_at"),
        Index("ix_events_member_created", "member_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"))
    idempotency_key: Mapped[str] = mapped_column(String(255))
    type: Mapped[str] = mapped_column(String(16))
    customer_id: Mapped[str] = mapped_column(String(200))
    member_id: Mapped[str] = mapped_column(ForeignKey("members.id"))
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    order_id: Mapped[str | None] = mapped_column(String(200), default=None)
    network_amount: Mapped[Any] = mapped_column(Numeric(38, 6), default=0)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(
        String(16)
    )  # accepted submitted confirmed held failed rejected
    reason: Mapped[str | None] = mapped_column(String(200), default=None)
    points: Mapped[int] = mapped_column(BigInteger, default=0)
    clawback: Mapped[int] = mapped_column(BigInteger, default=0)
    breakdown: Mapped[list[Any]] = mapped_column(JSON, default=list)
    badges: Mapped[list[Any]] = mapped_column(JSON, default=list)
    rule_version: Mapped[int] = mapped_column(Integer)
    tx_hash: Mapped[str | None] = mapped_column(String(66), default=None)
    block_number: Mapped[int | None] = mapped_column(BigInteger, default=None)
    device_id: Mapped[str | None] = mapped_column(String(200), default=None, index=True)
    ip: Mapped[str | None] = mapped_column(String(64), default=None, index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )

    ops: Mapped[list[ChainOp]] = relationship(back_populates="event", lazy="selectin")


class MemberCounter(Base):
    """A member's activity at one merchant on one programme day, kept with each event.

    The accept path reads the rules' windows (RFM, daily caps, check-in streaks,
    first purchase here) as sums of these buckets instead of scanning events:
    a bucket is never a running total, so a window, a merchant's UTC offset or
    a rule version's RFM window may change and the sums stay right.  ``orders``
    and ``spend`` (network units) count live purchases; ``orders_held`` the
    purchases held for review (moved to ``orders`` when released).
    """

    __tablename__ = "member_counters"

    member_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    merchant_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    orders: Mapped[int] = mapped_column(Integer, default=0)
    orders_held: Mapped[int] = mapped_column(Integer, default=0)
    spend: Mapped[Any] = mapped_column(Numeric(38, 6), default=0)
    refunds: Mapped[int] = mapped_column(Integer, default=0)
    check_ins: Mapped[int] = mapped_column(Integer, default=0)
    shares: Mapped[int] = mapped_column(Integer, default=0)
    reviews: Mapped[int] = mapped_column(Integer, default=0)
    points: Mapped[int] = mapped_column(BigInteger, default=0)
    last_order_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)


class ChainOp(Base):
    """One on-chain effect an event needs: the outbox's unit of work."""

    __tablename__ = "chain_ops"
    __table_args__ = (
        Index("ix_chain_ops_pending", "status", "kind", "merchant_id", "id"),
        Index("ix_chain_ops_member_kind", "member_address", "kind"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[str | None] = mapped_column(ForeignKey("events.id"), index=True, default=None)
    merchant_id: Mapped[int | None] = mapped_column(ForeignKey("merchants.id"), default=None)
    # issue | clawback | badge | tier | rule | redeem | transfer
    kind: Mapped[str] = mapped_column(String(16))
    member_address: Mapped[str] = mapped_column(String(42))
    amount: Mapped[int] = mapped_column(BigInteger, default=0)
    badge_id: Mapped[int | None] = mapped_column(Integer, default=None)
    tier: Mapped[int | None] = mapped_column(Integer, default=None)
    rule_version: Mapped[int] = mapped_column(Integer, default=0)
    ref: Mapped[str] = mapped_column(String(66))  # bytes32 hex: the event reference on chain
    original_seq: Mapped[int | None] = mapped_column(BigInteger, default=None)
    seq: Mapped[int | None] = mapped_column(BigInteger, default=None)
    status: Mapped[str] = mapped_column(
        String(16), default="pending"
    )  # pending sent confirmed failed
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # signatures etc.
    burned: Mapped[int | None] = mapped_column(BigInteger, default=None)
    tx_id: Mapped[int | None] = mapped_column(ForeignKey("chain_txs.id"), default=None, index=True)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    #: The block that included the op's transaction (set when it is confirmed), so what
    #: was still queued at block B is the ops whose block_number is null or above B.
    block_number: Mapped[int | None] = mapped_column(BigInteger, default=None, index=True)
    #: keccak-256 of the op's canonical input (``issuance_inputs.body``), 0x-hex: the leaf
    #: its batch commits to on chain.  Set on issue and clawback ops accepted since
    #: migration 0008; None on other kinds and older ops.
    input_hash: Mapped[str | None] = mapped_column(String(66), default=None)

    event: Mapped[Event | None] = relationship(back_populates="ops")


class ChainTx(Base):
    """A signed transaction, stored before it is broadcast so a restart can resend it."""

    __tablename__ = "chain_txs"
    __table_args__ = (Index("ix_chain_txs_status", "status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    merchant_id: Mapped[int | None] = mapped_column(Integer, default=None)
    sender: Mapped[str] = mapped_column(String(42))
    nonce: Mapped[int] = mapped_column(BigInteger)
    tx_hash: Mapped[str] = mapped_column(String(66), unique=True)
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    max_fee_per_gas: Mapped[int] = mapped_column(Numeric(38, 0))
    max_priority_fee_per_gas: Mapped[int] = mapped_column(Numeric(38, 0))
    gas: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16), default="signed")
    # signed → sent → confirmed | failed | replaced
    replaces: Mapped[int | None] = mapped_column(Integer, default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    block_number: Mapped[int | None] = mapped_column(BigInteger, default=None)
    gas_used: Mapped[int | None] = mapped_column(BigInteger, default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    #: The root over the (ref, input_hash) pairs an issue or clawback batch commits to
    #: (``chain.merkle.input_root``), 0x-hex; None for other kinds.
    input_root: Mapped[str | None] = mapped_column(String(66), default=None)


class RuleSetVersion(Base):
    """A merchant's rule set, versioned; published on chain, in effect from ``effective_at``.

    ``canonical`` is the exact text published (``hash`` is its keccak-256).
    ``effective_at`` (unix time, chain clock) and ``published_block`` come from the
    publication's ``RuleSetPublished`` log; both are None while the version is queued.
    Version 1 is in effect from the merchant's admission whatever its ``effective_at``.
    """

    __tablename__ = "rule_sets"
    __table_args__ = (UniqueConstraint("merchant_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"))
    version: Mapped[int] = mapped_column(Integer)
    content: Mapped[dict[str, Any]] = mapped_column(JSON)
    canonical: Mapped[str] = mapped_column(Text)
    hash: Mapped[str] = mapped_column(String(66))
    tx_hash: Mapped[str | None] = mapped_column(String(66), default=None)
    effective_at: Mapped[int | None] = mapped_column(BigInteger, default=None)
    published_block: Mapped[int | None] = mapped_column(BigInteger, default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class IssuanceInput(Base):
    """The canonical input of one issue or clawback op (``gateway.rules.disclosure``).

    ``ref`` is the op's reference on chain, ``body`` the canonical text and
    ``input_hash`` its keccak-256 (also on the op, and committed on chain by its
    batch's input root).  ``member_id`` is the member whose data it holds (the
    inviter for a ``referral`` part): erasing a member deletes these rows while the
    salted hash stays on chain, revealing nothing.
    """

    __tablename__ = "issuance_inputs"

    ref: Mapped[str] = mapped_column(String(66), primary_key=True)
    event_id: Mapped[str] = mapped_column(ForeignKey("events.id"), index=True)
    member_id: Mapped[str] = mapped_column(String(32), index=True)
    merchant_id: Mapped[int] = mapped_column(Integer)
    part: Mapped[str] = mapped_column(String(24))  # points referral clawback referral-clawback
    format: Mapped[int] = mapped_column(Integer)
    body: Mapped[str] = mapped_column(Text)
    input_hash: Mapped[str] = mapped_column(String(66))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Erasure(Base):
    """A member's data erased at their request: when, and how many rows of each table."""

    __tablename__ = "erasures"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    member_address: Mapped[str] = mapped_column(String(42), index=True)
    requested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    counts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Reward(Base):
    """An item of a merchant's rewards catalog."""

    __tablename__ = "rewards"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    cost_points: Mapped[int] = mapped_column(BigInteger)
    stock: Mapped[int | None] = mapped_column(Integer, default=None)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Redemption(Base):
    """A member's signed consent to spend points on a reward, relayed by the gateway."""

    __tablename__ = "redemptions"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"), index=True)
    reward_id: Mapped[str] = mapped_column(ForeignKey("rewards.id"))
    member_address: Mapped[str] = mapped_column(String(42), index=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    nonce: Mapped[int] = mapped_column(BigInteger)
    deadline: Mapped[int] = mapped_column(BigInteger)
    ref: Mapped[str] = mapped_column(String(66))
    signature: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(
        String(16), default="submitted"
    )  # submitted confirmed failed
    voucher_code: Mapped[str | None] = mapped_column(String(64), default=None)
    op_id: Mapped[int | None] = mapped_column(ForeignKey("chain_ops.id"), default=None)
    tx_hash: Mapped[str | None] = mapped_column(String(66), default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class WebhookDelivery(Base):
    """One webhook message to a merchant, retried with backoff; every attempt logged."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhooks_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"))
    event_type: Mapped[str] = mapped_column(String(40))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending delivered failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_status_code: Mapped[int | None] = mapped_column(Integer, default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class IndexedBlock(Base):
    """A block the indexer has processed, with its hash to detect reorgs."""

    __tablename__ = "indexed_blocks"

    number: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[str] = mapped_column(String(66))
    timestamp: Mapped[int] = mapped_column(BigInteger)


class ChainRecord(Base):
    """One decoded log of the network's contracts (the history members and auditors see)."""

    __tablename__ = "chain_records"
    __table_args__ = (
        UniqueConstraint("tx_hash", "log_index", "item"),
        Index("ix_chain_records_member", "member", "block_number"),
        Index("ix_chain_records_counterparty", "counterparty", "block_number"),
        Index("ix_chain_records_merchant", "merchant_id", "block_number"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    block_number: Mapped[int] = mapped_column(BigInteger, index=True)
    block_time: Mapped[int] = mapped_column(BigInteger)
    tx_hash: Mapped[str] = mapped_column(String(66))
    log_index: Mapped[int] = mapped_column(Integer)
    item: Mapped[int] = mapped_column(Integer, default=0)  # position inside a batch log
    # issued | redeemed | clawed_back | transferred | badge | tier | rule | merchant | ...
    kind: Mapped[str] = mapped_column(String(24))
    merchant_id: Mapped[int | None] = mapped_column(Integer, default=None)
    member: Mapped[str | None] = mapped_column(String(42), default=None)
    counterparty: Mapped[str | None] = mapped_column(String(42), default=None)
    amount: Mapped[int] = mapped_column(Numeric(78, 0), default=0)
    seq: Mapped[int | None] = mapped_column(BigInteger, default=None)
    rule_version: Mapped[int | None] = mapped_column(Integer, default=None)
    ref: Mapped[str | None] = mapped_column(String(66), default=None)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class WalletChallenge(Base):
    """A one-time secret of the wallet, stored hashed: a SIWE nonce, a login link or a link code.

    ``purpose`` says which: ``siwe`` (a sign-in nonce), ``login`` (a custodial
    member's one-time login link, ``member_id`` set) or ``link`` (a code that
    attaches ``merchant_id``'s ``customer_id`` to the member who signs it).
    Each is used at most once (``used_at``) and only before ``expires_at``.
    """

    __tablename__ = "wallet_challenges"
    __table_args__ = (Index("ix_wallet_challenges_expiry", "expires_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    purpose: Mapped[str] = mapped_column(String(8))  # siwe | login | link
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    member_id: Mapped[str | None] = mapped_column(ForeignKey("members.id"), default=None)
    merchant_id: Mapped[int | None] = mapped_column(ForeignKey("merchants.id"), default=None)
    customer_id: Mapped[str | None] = mapped_column(String(200), default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)


class WalletSession(Base):
    """A member signed in to the wallet page; only the token's SHA-256 is stored."""

    __tablename__ = "wallet_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    member_id: Mapped[str] = mapped_column(ForeignKey("members.id"), index=True)
    address: Mapped[str] = mapped_column(String(42))
    custodial: Mapped[bool] = mapped_column(Boolean)  # the gateway signs for the member
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
