"""Merchants: admission on chain (through the timelock), API keys, rule sets, webhooks.

Admission and suspension are operator actions run from the CLI with the admin
(timelock) and guardian keys; they never touch the worker's operator key, so
they can run while the gateway serves.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from eth_account import Account
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from web3.logs import DISCARD

from chain import governance
from chain.deploy import operator_sender
from chain.errors import ChainError
from gateway.context import GatewayContext
from gateway.crypto import api_key_prefix, hash_api_key, new_api_key
from gateway.db import transaction
from gateway.errors import InvalidRequest, NotFound, Unauthorized
from gateway.models import ChainOp, Merchant, RuleSetVersion
from gateway.rules.errors import InvalidRuleSet, RuleError
from gateway.rules.fx import FxTable
from gateway.rules.model import (
    RuleSet,
    canonical_json,
    default_rule_set,
    parse_rule_set,
    rule_set_hash,
)


@dataclass(frozen=True)
class NewMerchant:
    """A registered merchant and its API key (shown once)."""

    id: int
    name: str
    currency: str
    api_key: str
    signer: str


def register(
    ctx: GatewayContext, name: str, currency: str, cap: int = 10**12, signer: str | None = None
) -> NewMerchant:
    """Admit a merchant on chain and create its account, API key and first rule set."""
    currency = currency.upper()
    if currency not in ctx.fx.currencies():
        raise InvalidRequest(f"unknown currency {currency}", currency=currency)
    if not 0 < cap < 2**64:
        raise InvalidRequest("cap must be between 1 and 2^64-1", cap=cap)
    signer_key_enc = None
    if signer is None:
        account = Account.create()
        signer = account.address
        signer_key_enc = ctx.box.encrypt(bytes(account.key))
    hub = ctx.link.network.hub
    admin = operator_sender(ctx.settings, ctx.link.w3, "admin")
    result = governance.apply(
        ctx.link.network.timelock, admin, hub.functions.addMerchant(name, signer, cap)
    )
    if isinstance(result, governance.ScheduledChange):
        raise ChainError(
            f"admission scheduled; it can execute at unix time {result.ready_at} "
            f"(timelock operation 0x{result.operation_id.hex()})"
        )
    added = hub.contract.events.MerchantAdded().process_receipt(result, errors=DISCARD)
    merchant_id = int(added[0]["args"]["merchantId"])
    api_key = new_api_key()
    rules = default_rule_set(currency)
    with transaction(ctx.sessions) as session:
        session.add(
            Merchant(
                id=merchant_id,
                name=name,
                currency=currency,
                api_key_hash=hash_api_key(api_key),
                api_key_prefix=api_key_prefix(api_key),
                cap_per_period=cap,
                signer_address=signer,
                signer_key_enc=signer_key_enc,
            )
        )
        session.flush()
        _queue_rule_set(session, merchant_id, rules)
    return NewMerchant(merchant_id, name, currency, api_key, signer)


def authenticate(session: Session, api_key: str) -> Merchant:
    """The merchant owning ``api_key``; Unauthorized for unknown or revoked keys."""
    merchant = session.scalars(
        select(Merchant).where(Merchant.api_key_hash == hash_api_key(api_key))
    ).first()
    if merchant is None:
        raise Unauthorized("unknown or revoked API key")
    return merchant


def rotate_key(ctx: GatewayContext, merchant_id: int) -> str:
    """Replace the merchant's API key; the old one stops working at once."""
    api_key = new_api_key()
    with transaction(ctx.sessions) as session:
        merchant = _get(session, merchant_id)
        merchant.api_key_hash = hash_api_key(api_key)
        merchant.api_key_prefix = api_key_prefix(api_key)
    return api_key


def suspend(ctx: GatewayContext, merchant_id: int) -> None:
    """Suspend on chain (guardian, immediate) and in the gateway."""
    guardian = operator_sender(ctx.settings, ctx.link.w3, "guardian")
    guardian.transact(ctx.link.network.hub.functions.suspendMerchant(merchant_id))
    with transaction(ctx.sessions) as session:
        _get(session, merchant_id).status = "suspended"


def list_merchants(ctx: GatewayContext) -> list[Merchant]:
    with ctx.sessions() as session:
        return list(session.scalars(select(Merchant).order_by(Merchant.id)))


def _get(session: Session, merchant_id: int) -> Merchant:
    merchant = session.get(Merchant, merchant_id)
    if merchant is None:
        raise NotFound(f"no merchant {merchant_id}")
    return merchant


# ------------------------------------------------------------------ rule sets


def latest_rule_set(session: Session, merchant_id: int) -> RuleSetVersion:
    version = session.scalars(
        select(RuleSetVersion)
        .where(RuleSetVersion.merchant_id == merchant_id)
        .order_by(RuleSetVersion.version.desc())
        .limit(1)
    ).first()
    if version is None:
        raise NotFound("merchant has no rule set")
    return version


def put_rule_set(
    session: Session, merchant: Merchant, content: dict[str, Any], fx: FxTable
) -> RuleSetVersion:
    """Validate and store a new rule-set version; its hash is published on chain next."""
    try:
        rules = parse_rule_set(content)
    except InvalidRuleSet as exc:
        raise InvalidRequest("invalid rule set", errors=exc.errors) from exc
    except RuleError as exc:
        raise InvalidRequest(str(exc), rule_error=exc.code) from exc
    if rules.currency != merchant.currency:
        raise InvalidRequest(
            f"rule set currency {rules.currency} differs from the merchant's {merchant.currency}"
        )
    return _queue_rule_set(session, merchant.id, rules)


def _queue_rule_set(session: Session, merchant_id: int, rules: RuleSet) -> RuleSetVersion:
    latest = session.scalar(
        select(func.max(RuleSetVersion.version)).where(RuleSetVersion.merchant_id == merchant_id)
    )
    version = int(latest or 0) + 1
    digest = "0x" + rule_set_hash(rules).hex()
    row = RuleSetVersion(
        merchant_id=merchant_id,
        version=version,
        content=_json_content(rules),
        hash=digest,
    )
    session.add(row)
    session.add(
        ChainOp(
            merchant_id=merchant_id,
            kind="rule",
            member_address="0x" + "0" * 40,
            ref=digest,
            payload={"hash": digest, "version": version},
        )
    )
    session.flush()
    return row


def _json_content(rules: RuleSet) -> dict[str, Any]:
    import json

    content: dict[str, Any] = json.loads(canonical_json(rules))
    return content


def load_rules(row: RuleSetVersion) -> RuleSet:
    return RuleSet.model_validate(row.content)


def new_webhook_secret() -> bytes:
    return secrets.token_bytes(32)
