"""Pydantic schemas of the HTTP API (kept apart from the database models).

Families follow ``XCreate`` (request), ``XPublic`` (one), ``XsPublic`` (a page:
``{"data": [...], "count": n}``).  Every request model forbids unknown fields
and text a database cannot store (NUL characters); amounts are decimal strings,
never floats; every number and date is bounded so that nothing downstream
overflows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    InstanceOf,
    ValidationError,
    WrapValidator,
    field_validator,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema

from gateway.webhooks.destinations import check_postable

EventType = Literal["purchase", "refund", "signup", "review", "share", "referral", "check_in"]
EventStatus = Literal["accepted", "submitted", "confirmed", "held", "failed", "rejected"]

#: Largest order amount accepted (in the order's currency).
MAX_AMOUNT = Decimal("1000000000")
#: Events must have happened in this range (dates beyond it would overflow the
#: rules' windows, and no partner has business events outside it).
EARLIEST_EVENT = datetime(2000, 1, 1, tzinfo=UTC)
LATEST_EVENT = datetime(2100, 1, 1, tzinfo=UTC)
#: Largest member nonce accepted (stored in a signed 64-bit column).
MAX_INT64 = 2**63 - 1
_ID = r"^[A-Za-z0-9][A-Za-z0-9._:@\-]{0,127}$"
_ADDRESS = r"^0x[0-9a-fA-F]{40}$"

Identifier = Annotated[str, Field(pattern=_ID, description="merchant-side identifier")]
Address = Annotated[
    str, Field(pattern=_ADDRESS, examples=["0x70997970C51812dc3A010C7d01b50e0d17dc79C8"])
]


def parse_amount(value: Any, *, allow_zero: bool = False) -> Decimal:
    """A positive decimal amount from a string (floats are refused: they lose cents)."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError('amount must be a decimal string such as "12.50"')
    text = str(value).strip()
    if not re.fullmatch(r"\d{1,12}(\.\d{1,6})?", text):
        raise ValueError("amount must be a non-negative decimal string with at most 6 decimals")
    try:
        amount = Decimal(text)
    except InvalidOperation as exc:  # pragma: no cover - the regex rules this out
        raise ValueError("amount is not a number") from exc
    if amount > MAX_AMOUNT:
        raise ValueError(f"amount must not exceed {MAX_AMOUNT}")
    if amount == 0 and not allow_zero:
        raise ValueError("amount must be greater than zero")
    return amount


def check_text(value: Any) -> None:
    """Refuse NUL characters, which PostgreSQL cannot store in text or JSON, in a
    string or in the strings and keys of nested lists and dicts (models check
    their own). Lone UTF-16 surrogates never get this far: JSON parsing refuses them."""
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("text must not contain NUL (\\u0000) characters")
    elif isinstance(value, dict):
        for key, item in value.items():
            check_text(key)
            check_text(item)
    elif isinstance(value, list | tuple):
        for item in value:
            check_text(item)


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*", mode="after")
    @classmethod
    def _storable_text(cls, value: Any) -> Any:
        check_text(value)
        return value


# ------------------------------------------------------------------ events


class ItemIn(StrictModel):
    sku: Identifier
    category: Annotated[str, Field(min_length=1, max_length=64)] = "general"
    amount: Decimal = Field(description="line amount, decimal string", examples=["59.90"])
    eco: bool = False

    @field_validator("amount", mode="before")
    @classmethod
    def _amount(cls, value: Any) -> Decimal:
        return parse_amount(value, allow_zero=True)


class OrderIn(StrictModel):
    id: Identifier
    amount: Decimal = Field(description="order total, decimal string", examples=["129.90"])
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$", examples=["EUR"])]
    items: list[ItemIn] = Field(default_factory=list, max_length=500)

    @field_validator("amount", mode="before")
    @classmethod
    def _amount(cls, value: Any) -> Decimal:
        return parse_amount(value)


class RefundIn(StrictModel):
    order_id: Identifier
    amount: Decimal | None = Field(default=None, description="refunded amount; omit for full")

    @field_validator("amount", mode="before")
    @classmethod
    def _amount(cls, value: Any) -> Decimal | None:
        return None if value is None else parse_amount(value)


class EventCreate(StrictModel):
    """A merchant's business event. Which fields are required depends on ``type``."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "type": "purchase",
                    "customer_id": "cust-1001",
                    "occurred_at": "2026-11-23T10:15:00Z",
                    "order": {
                        "id": "order-5001",
                        "amount": "129.90",
                        "currency": "EUR",
                        "items": [
                            {"sku": "tee-1", "category": "apparel", "amount": "129.90", "eco": True}
                        ],
                    },
                    "device_id": "dev-9f2",
                    "ip": "203.0.113.7",
                }
            ]
        },
    )

    type: EventType
    customer_id: Identifier
    occurred_at: datetime = Field(description="with a time zone; from 2000 to 2099")
    order: OrderIn | None = None
    refund: RefundIn | None = None
    referrer_customer_id: Identifier | None = None
    birth_month: Annotated[int, Field(ge=1, le=12)] | None = None
    device_id: Annotated[str, Field(max_length=128)] | None = None
    ip: Annotated[str, Field(max_length=64)] | None = None

    @field_validator("occurred_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("occurred_at needs a time zone (e.g. 2026-11-23T10:15:00Z)")
        if not EARLIEST_EVENT <= value < LATEST_EVENT:  # before astimezone: it may overflow
            raise ValueError("occurred_at must lie between 2000-01-01 and 2099-12-31")
        return value.astimezone(UTC)

    @model_validator(mode="after")
    def _fields_for_type(self) -> EventCreate:
        if self.type == "purchase" and self.order is None:
            raise ValueError("a purchase needs an order")
        if self.type == "refund" and self.refund is None:
            raise ValueError("a refund needs refund.order_id")
        if self.type != "purchase" and self.order is not None:
            raise ValueError(f"a {self.type} event takes no order")
        if self.type != "refund" and self.refund is not None:
            raise ValueError(f"a {self.type} event takes no refund")
        if self.type == "referral" and self.referrer_customer_id is None:
            raise ValueError("a referral needs referrer_customer_id")
        if self.referrer_customer_id is not None and self.referrer_customer_id == self.customer_id:
            raise ValueError("a customer cannot refer themselves")
        return self


class BreakdownLine(BaseModel):
    rule: str
    description: str
    points: int


class EventPublic(BaseModel):
    id: str
    idempotency_key: str
    type: EventType
    customer_id: str
    member_address: str
    status: EventStatus
    reason: str | None = None
    points: int
    clawback: int = 0
    breakdown: list[BreakdownLine] = Field(default_factory=list)
    badges: list[str] = Field(default_factory=list)
    rule_version: int
    tx_hash: str | None = None
    block_number: int | None = None
    occurred_at: datetime
    created_at: datetime


class BatchItemIn(StrictModel):
    idempotency_key: Annotated[str, Field(min_length=1, max_length=255)]
    event: EventCreate


@dataclass(frozen=True)
class InvalidBatchItem:
    """A batch item that failed :class:`BatchItemIn`: answered 422 on its own, nothing
    accepted or stored for it; the batch's other items go on."""

    #: The key as sent, when it is text (it may be the invalid part), else None.
    idempotency_key: str | None
    #: pydantic's errors (``loc``, ``msg``, ``type``), ``loc`` relative to the item.
    errors: list[dict[str, Any]]


def _item_or_errors(value: Any, _handler: Any) -> BatchItemIn | InvalidBatchItem:
    """Validate one batch item as :class:`BatchItemIn` (python mode, as FastAPI validates
    a body), keeping its errors instead of failing the whole batch."""
    try:
        return BatchItemIn.model_validate(value)
    except ValidationError as exc:
        key = value.get("idempotency_key") if isinstance(value, dict) else None
        errors = [
            {"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]}
            for e in exc.errors(include_url=False, include_context=False, include_input=False)
        ]
        return InvalidBatchItem(key if isinstance(key, str) else None, errors)


#: One item of a batch: valid, or its errors (documented as :class:`BatchItemIn`).
BatchEntry = Annotated[
    BatchItemIn | SkipJsonSchema[InstanceOf[InvalidBatchItem]], WrapValidator(_item_or_errors)
]


class EventBatchCreate(StrictModel):
    """Up to 1,000 events.  An item that fails the schema is answered 422 on its own
    (``invalid_request``, as a single event would be); a body that is not such an
    object, or holds no items or more than 1,000, is refused as a whole."""

    events: list[BatchEntry] = Field(min_length=1, max_length=1000)


class BatchItemResult(BaseModel):
    idempotency_key: str | None = Field(
        description="the item's key as sent (null when the item carried no key as text)"
    )
    status_code: int = Field(description="202 accepted (or replayed), else the error's status")
    event: EventPublic | None = None
    error: dict[str, Any] | None = Field(
        default=None, description="the error body's `error` object, as for a single event"
    )


class EventBatchPublic(BaseModel):
    data: list[BatchItemResult]
    count: int


# ------------------------------------------------------------------ members


class BadgePublic(BaseModel):
    id: int
    key: str
    name: str
    image_url: str
    soulbound: bool


class MemberPublic(BaseModel):
    customer_id: str
    address: str
    custodial: bool
    balance: int = Field(description="points on chain")
    spendable: int = Field(
        description="balance less the transfers and redemptions it does not include yet"
    )
    next_nonce: int = Field(description="the nonce the member's next signed action carries")
    pending_points: int = Field(
        description="accepted, not yet in the balance (not mined by the block it is read at)"
    )
    owed_points: int = Field(
        default=0, description="refunded points already spent, netted from future earnings"
    )
    tier: int
    tier_name: str
    badges: list[BadgePublic]
    frozen: bool


# ------------------------------------------------------------------ rewards & redemptions


class RewardCreate(StrictModel):
    name: Annotated[str, Field(min_length=1, max_length=200)]
    description: Annotated[str, Field(max_length=2000)] = ""
    cost_points: Annotated[int, Field(gt=0, le=10**12)]
    stock: Annotated[int, Field(ge=0, le=10**9)] | None = None


class RewardPublic(BaseModel):
    id: str
    merchant_id: int
    merchant_name: str
    name: str
    description: str
    cost_points: int
    stock: int | None
    active: bool


class RewardsPublic(BaseModel):
    data: list[RewardPublic]
    count: int


class RedemptionCreate(StrictModel):
    """A member's EIP-712 consent (signed in the wallet) to spend points on a reward."""

    reward_id: Annotated[str, Field(min_length=1, max_length=64)]
    member: Address
    nonce: Annotated[int, Field(ge=0, le=MAX_INT64)]
    deadline: Annotated[int, Field(gt=0, lt=2**63)]
    signature: Annotated[str, Field(pattern=r"^0x[0-9a-fA-F]{130}$")]


class RedemptionPublic(BaseModel):
    id: str
    merchant_id: int
    reward_id: str
    member: str
    amount: int
    status: Literal["submitted", "confirmed", "failed"]
    voucher_code: str | None
    tx_hash: str | None
    error: str | None = None


# ------------------------------------------------------------------ rules & webhooks


RuleSetStatus = Literal["queued", "published", "in_effect", "superseded"]


class RuleSetPublic(BaseModel):
    """A version of the merchant's rules and where it stands on chain."""

    version: int
    hash: str
    published: bool
    tx_hash: str | None
    rules: dict[str, Any]
    status: RuleSetStatus | None = Field(
        default=None,
        description="queued (not on chain yet), published (on chain, in its notice period), "
        "in_effect, superseded",
    )
    effective_at: int | None = Field(
        default=None, description="unix time (chain clock) it takes or took effect"
    )
    effective_at_estimated: bool = Field(
        default=False, description="effective_at is an estimate: the version is not published yet"
    )
    published_block: int | None = None
    upcoming: RuleSetPublic | None = Field(
        default=None, description="the version queued or published to follow this one"
    )


# ------------------------------------------------------------------ public rules


ClauseParam = str | int | None


class ClausePublic(BaseModel):
    """A sentence in no language: the wallet's message ``key`` and its ``{param}`` values
    (:mod:`gateway.rules.explain`)."""

    key: str = Field(examples=["earn.base"])
    params: dict[str, ClauseParam] = Field(examples=[{"rate": "1", "unit": "USD"}])


#: A version on chain: in its notice period (``published``), in effect, or replaced.
RuleVersionStatus = Literal["published", "in_effect", "superseded"]


class RuleVersionPublic(BaseModel):
    """One version of a merchant's rules as published on chain."""

    version: int
    hash: str = Field(description="keccak-256 of `canonical`, as published on chain")
    canonical: str = Field(description="the exact text published on chain")
    rules: dict[str, Any] = Field(description="`canonical` parsed")
    status: RuleVersionStatus = Field(description="at the chain's latest block")
    published_tx: str | None
    published_block: int | None
    effective_at: datetime | None = Field(
        description="when it takes (or took) effect, by the chain's clock; null for versions "
        "applied before effective times were recorded"
    )
    superseded_at: datetime | None = Field(description="when the next version takes effect")
    explained: list[ClausePublic] = Field(description="how it earns, in plain words")
    changes: list[ClausePublic] = Field(description="what it changes from the version before")


class PublicMerchant(BaseModel):
    id: int
    name: str
    currency: str
    status: str


class UpcomingVersionPublic(BaseModel):
    version: int
    effective_at: datetime | None


class PublicMerchantSummary(PublicMerchant):
    current_version: int | None = Field(description="the version in effect (null: none yet)")
    upcoming: UpcomingVersionPublic | None = Field(
        description="a published version not yet in effect"
    )


class PublicMerchantsPublic(BaseModel):
    """Every merchant of the network and where its rules stand."""

    chain_id: int
    hub: str
    notice_seconds: int = Field(description="how long a new rule version waits before it applies")
    merchants: list[PublicMerchantSummary]


class PublicRulesPublic(BaseModel):
    """A merchant's rules: the version in effect, those announced, those it replaced."""

    merchant: PublicMerchant
    notice_seconds: int
    current: RuleVersionPublic | None
    upcoming: list[RuleVersionPublic]
    past: list[RuleVersionPublic] = Field(description="newest first")


class WebhookConfigIn(StrictModel):
    url: Annotated[str, Field(pattern=r"^https?://", max_length=500)]

    @field_validator("url")
    @classmethod
    def _has_host(cls, value: str) -> str:
        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018 - raises ValueError for a port that is not a number
            check_postable(value)  # what the dispatcher will post to must parse there too
        except ValueError as exc:
            raise ValueError(f"not a URL: {exc}") from exc
        if not parts.hostname or any(c.isspace() for c in value):
            raise ValueError("the URL needs a host name and no spaces")
        return value


class WebhookConfigPublic(BaseModel):
    url: str
    secret: str | None = Field(default=None, description="shown once, when (re)configured")
    event_types: list[str]


class ErrorBody(BaseModel):
    code: str
    message: str
    details: dict[str, Any] = Field(default_factory=dict)


class ErrorResponse(BaseModel):
    error: ErrorBody


# ------------------------------------------------------------------ member wallet

CUSTOMER_ID_PATTERN = _ID
#: Ids the gateway hands out (events, redemptions, rewards): 32 hex digits today;
#: anything outside this pattern cannot name one and is refused before a lookup.
RESOURCE_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
_SIGNATURE = r"^0x[0-9a-fA-F]{130}$"
Signature = Annotated[str, Field(pattern=_SIGNATURE, description="65-byte signature, hex")]
HistoryKind = Literal["issue", "redeem", "transfer", "clawback", "badge"]


class WalletConfigPublic(BaseModel):
    """What the wallet page needs to build the messages members sign."""

    chain_id: int
    hub: str = Field(description="the hub contract: EIP-712 verifyingContract")
    token: str
    badges: str
    eip712_name: str
    eip712_version: str
    siwe_statement: str
    link_message: str = Field(description="personal_sign text with {code} to fill in")
    claim_message: str = Field(description="personal_sign text with {custodial} and {address}")
    network_unit: str = Field(description="currency of tier spend thresholds")
    tier_names: list[str]
    max_deadline_seconds: int = Field(description="farthest deadline a signed action may carry")
    public_rpc_url: str | None = Field(
        default=None,
        description="the chain's JSON-RPC endpoint the wallet verifies entries against in "
        "the browser, independently of the gateway; null: no verification offered",
    )


class SiweNoncePublic(BaseModel):
    nonce: str = Field(description="single use; put it in the EIP-4361 message")
    expires_at: datetime
    statement: str


class SiweVerifyCreate(StrictModel):
    """An EIP-4361 message and the member's personal_sign signature of it."""

    message: Annotated[str, Field(min_length=1, max_length=4000)]
    signature: Signature


class LoginLinkExchangeCreate(StrictModel):
    token: Annotated[str, Field(min_length=8, max_length=100)]


class WalletSessionPublic(BaseModel):
    token: str = Field(description="send as 'Authorization: Bearer <token>' (also set as cookie)")
    expires_at: datetime
    address: str
    custodial: bool


class TierProgressPublic(BaseModel):
    """The member's tier and what the next one needs (network-wide seed thresholds)."""

    tier: int
    tier_name: str
    next_tier: int | None
    next_tier_name: str | None
    window_days: int
    orders: int = Field(description="purchases in the window")
    orders_needed: int | None
    spend: str = Field(description="spend in the window, network units (decimal string)")
    spend_needed: str | None
    days_since_last_order: int | None
    max_recency_days: int | None


class WalletBadgePublic(BaseModel):
    id: int
    key: str
    name: str
    description: str
    image_url: str
    soulbound: bool


class LinkedAccountPublic(BaseModel):
    merchant_id: int
    merchant_name: str


class WalletMemberPublic(BaseModel):
    """The signed-in member: balance from the chain, tier progress, badges, links."""

    address: str
    custodial: bool
    frozen: bool
    balance: int = Field(description="points on chain")
    pending_points: int = Field(
        description="issued, not yet in the balance (not mined by the block it is read at)"
    )
    spendable: int = Field(
        description="balance less the transfers and redemptions it does not include yet"
    )
    next_nonce: int = Field(description="the nonce the member's next signed action carries")
    tier: TierProgressPublic
    badges: list[WalletBadgePublic]
    linked_accounts: list[LinkedAccountPublic]
    claimed_addresses: list[str] = Field(description="custodial accounts this member claimed")


class HistoryItemPublic(BaseModel):
    id: int
    kind: HistoryKind
    direction: Literal["in", "out"]
    amount: int
    counterparty: str | None = None
    badge_id: int | None = None
    badge_key: str | None = None
    badge_name: str | None = None
    merchant_id: int | None = None
    merchant_name: str | None = None
    reward_name: str | None = None
    rule_version: int | None = None
    occurred_at: datetime
    tx_hash: str
    block_number: int | None


class HistoryPublic(BaseModel):
    data: list[HistoryItemPublic]
    count: int
    page: int
    per_page: int


class TransferCreate(StrictModel):
    """A gasless transfer. Self-custody members send their EIP-712 ``TransferRequest``
    signature with its nonce and deadline; custodial members omit all three (the
    gateway signs with their custodial key)."""

    to: Address
    amount: Annotated[int, Field(gt=0, le=10**18)]
    nonce: Annotated[int, Field(ge=0, le=MAX_INT64)] | None = None
    deadline: Annotated[int, Field(gt=0, lt=2**63)] | None = None
    signature: Signature | None = None


class TransferPublic(BaseModel):
    id: int
    from_address: str
    to: str
    amount: int
    nonce: int
    status: Literal["submitted", "confirmed", "failed"]
    tx_hash: str | None
    error: str | None = None


class WalletRedemptionCreate(StrictModel):
    """Redeem a reward of any partner; signature fields as for transfers."""

    reward_id: Annotated[str, Field(min_length=1, max_length=64)]
    nonce: Annotated[int, Field(ge=0, le=MAX_INT64)] | None = None
    deadline: Annotated[int, Field(gt=0, lt=2**63)] | None = None
    signature: Signature | None = None


class WalletRedemptionsPublic(BaseModel):
    data: list[RedemptionPublic]
    count: int


class DisclosureLinePublic(BaseModel):
    """One disclosure line, format 1 (:mod:`gateway.services.disclosures`): a confirmed
    issuance or clawback with what it was computed from and the proof that its batch
    committed to it on chain."""

    disclosure: Literal[1]
    op_id: int = Field(description="the gateway's id of the op (the history entry's id)")
    chain_id: int
    hub: str
    merchant_id: int | None
    event_id: str | None
    kind: Literal["issue", "clawback"]
    part: str | None = Field(description="points, referral, clawback or referral-clawback")
    ref: str = Field(description="the event reference on chain")
    seq: int | None
    tx_hash: str
    block: int | None
    amount: int
    input: str | None = Field(description="the canonical input text; null: see `reason`")
    input_hash: str | None = Field(description="keccak-256 of `input`")
    proof: list[str] = Field(description="the leaf's Merkle path to `root`")
    root: str | None = Field(description="the input root the batch logged on chain")
    reason: str | None = Field(default=None, description="why `input` is null")
    erased: bool = False


class EntryRulesPublic(BaseModel):
    """The rule version an entry was computed under, and when it applied."""

    version: int
    hash: str
    effective_at: datetime | None
    superseded_at: datetime | None


class EntryProofPublic(BaseModel):
    """A history entry's disclosure line and the rules it was computed under."""

    line: DisclosureLinePublic
    rules: EntryRulesPublic | None = Field(description="null when the version is not known")
    explanation: list[ClausePublic] = Field(
        default_factory=list,
        description="why the amount is what it is, in plain words (the event's breakdown)",
    )


class MemberDataPublic(BaseModel):
    """Everything the gateway holds about the signed-in member (and the custodial
    accounts they claimed): rows as stored, secrets (keys, token hashes) left out."""

    member: dict[str, Any]
    claimed: list[dict[str, Any]]
    links: list[dict[str, Any]]
    events: list[dict[str, Any]]
    inputs: list[dict[str, Any]]
    counters: list[dict[str, Any]]
    redemptions: list[dict[str, Any]]
    sessions: list[dict[str, Any]]
    erasures: list[dict[str, Any]]


class ErasureCreate(StrictModel):
    """Erase my data: ``{"confirm": "erase"}``."""

    confirm: Literal["erase"]


class ErasurePublic(BaseModel):
    """What an erasure removed or scrubbed, per table; chain facts stay."""

    address: str
    requested_at: datetime
    counts: dict[str, int]


class LoginLinkPublic(BaseModel):
    url: str = Field(description="one-time wallet URL for the customer (short expiry)")
    expires_at: datetime


class LinkCodePublic(BaseModel):
    code: str = Field(description="one-time code the customer enters in the wallet")
    expires_at: datetime


class AccountLinkCreate(StrictModel):
    code: Annotated[str, Field(min_length=4, max_length=20)]
    signature: Signature


class AccountLinkPublic(BaseModel):
    merchant_id: int
    merchant_name: str
    customer_id: str


class ClaimCreate(StrictModel):
    """The new self-custody address and its personal_sign of the claim message."""

    address: Address
    signature: Signature


class ClaimPublic(BaseModel):
    address: str
    amount: int = Field(description="points moved from the custodial account")
    transfer: TransferPublic | None


class BadgeMetadataPublic(BaseModel):
    """ERC-1155 metadata JSON of a badge type."""

    name: str
    description: str
    image: str
    properties: dict[str, Any]
