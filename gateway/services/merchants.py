"""Merchants: admission on chain (through the timelock), API keys, webhooks.

Admission and suspension are operator actions run from the CLI with the admin
(timelock) and guardian keys; they never touch the worker's operator key, so
they can run while the gateway serves. Admission takes two steps across the
timelock delay: :func:`schedule_admission` schedules it and records it pending
(its API key already issued, unusable), :func:`admit_ready` executes what is due
and activates the merchant.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from eth_account import Account
from hexbytes import HexBytes
from sqlalchemy import select
from sqlalchemy.orm import Session

from chain import governance
from chain.abi import CALL_EXECUTED
from chain.decode import decode_logs, receipt_logs
from chain.deploy import operator_sender
from chain.errors import ChainError, ContractRevert
from chain.logs import read_logs
from chain.records import MerchantChange
from gateway.context import GatewayContext
from gateway.crypto import api_key_prefix, hash_api_key, new_api_key
from gateway.db import transaction
from gateway.errors import AdmissionPending, InvalidRequest, NotFound, Unauthorized
from gateway.models import Merchant, MerchantAdmission
from gateway.rules.model import default_rule_set
from gateway.services.rulesets import queue_rule_set


@dataclass(frozen=True)
class NewMerchant:
    """A registered merchant and its API key (shown once)."""

    id: int
    name: str
    currency: str
    api_key: str
    signer: str


@dataclass(frozen=True)
class PendingMerchant:
    """An admission scheduled through the timelock; the API key (shown once) works once
    ``admit_ready`` has executed it, from unix time ``ready_at`` (chain clock) on."""

    admission_id: int
    name: str
    currency: str
    api_key: str
    signer: str
    operation_id: str
    ready_at: int


def register(
    ctx: GatewayContext, name: str, currency: str, cap: int = 10**12, signer: str | None = None
) -> NewMerchant:
    """Admit a merchant at once: only for a timelock without delay (devnets, tests)."""
    pending = schedule_admission(ctx, name, currency, cap, signer)
    admit_ready(ctx)
    with ctx.sessions() as session:
        admission = session.get(MerchantAdmission, pending.admission_id)
        merchant_id = admission.merchant_id if admission is not None else None
    if merchant_id is None:
        raise AdmissionPending(pending.operation_id, pending.ready_at)
    return NewMerchant(merchant_id, name, pending.currency, pending.api_key, pending.signer)


def schedule_admission(
    ctx: GatewayContext, name: str, currency: str, cap: int = 10**12, signer: str | None = None
) -> PendingMerchant:
    """Schedule the merchant's admission through the timelock and record it as pending.

    Nothing in the gateway knows the merchant until :func:`admit_ready` has executed the
    operation once the delay has passed.
    """
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
    admin = operator_sender(ctx.settings, ctx.link.w3, "admin")
    call = ctx.link.network.hub.functions.addMerchant(name, signer, cap)
    change = governance.schedule(ctx.link.network.timelock, admin, call)
    scheduled_block = int(
        admin.w3.eth.get_transaction_receipt(HexBytes(change.schedule_tx))["blockNumber"]
    )
    api_key = new_api_key()
    with transaction(ctx.sessions) as session:
        admission = MerchantAdmission(
            name=name,
            currency=currency,
            cap_per_period=cap,
            signer_address=signer,
            signer_key_enc=signer_key_enc,
            api_key_hash=hash_api_key(api_key),
            api_key_prefix=api_key_prefix(api_key),
            operation_id="0x" + change.operation_id.hex(),
            target=change.target,
            call_data=change.data,
            salt=change.salt,
            ready_at=change.ready_at,
            scheduled_block=scheduled_block,
        )
        session.add(admission)
        session.flush()
        admission_id = admission.id
    return PendingMerchant(
        admission_id, name, currency, api_key, signer, admission.operation_id, change.ready_at
    )


def admit_ready(ctx: GatewayContext) -> list[Merchant]:
    """Execute every pending admission whose delay has passed and activate its merchant.

    Idempotent and crash-safe: an operation already executed on chain (by an earlier
    run that crashed before recording it, or by anyone else) is not executed again;
    the merchant id is read from its execution. Returns the merchants activated now.
    """
    timelock = ctx.link.network.timelock
    now = int(ctx.link.w3.eth.get_block("latest")["timestamp"])
    with ctx.sessions() as session:
        due = list(
            session.scalars(
                select(MerchantAdmission)
                .where(MerchantAdmission.status == "scheduled", MerchantAdmission.ready_at <= now)
                .order_by(MerchantAdmission.id)
            )
        )
    admitted = []
    for admission in due:
        op_id = HexBytes(admission.operation_id)
        change = governance.ScheduledChange(
            bytes(op_id), admission.target, admission.call_data, admission.salt,
            admission.ready_at, "",
        )  # fmt: skip
        if not timelock.functions.isOperationDone(op_id).call():
            admin = operator_sender(ctx.settings, ctx.link.w3, "admin")
            try:
                governance.execute(timelock, admin, change)
            except ContractRevert as revert:
                if not timelock.functions.isOperationDone(op_id).call():
                    _admission_failed(ctx, admission.id, str(revert))
                    continue
                # executed meanwhile by another run: carry on as if by this one
        merchant_id = _merchant_id_of(ctx, admission)
        merchant = _activate(ctx, admission.id, merchant_id)
        if merchant is not None:
            admitted.append(merchant)
    return admitted


def pending_admissions(ctx: GatewayContext) -> list[MerchantAdmission]:
    """Admissions scheduled and not executed yet, oldest first."""
    with ctx.sessions() as session:
        return list(
            session.scalars(
                select(MerchantAdmission)
                .where(MerchantAdmission.status == "scheduled")
                .order_by(MerchantAdmission.id)
            )
        )


def _merchant_id_of(ctx: GatewayContext, admission: MerchantAdmission) -> int:
    """The hub's id of the merchant an executed admission added (from the execution's
    ``MerchantAdded`` log, found through the timelock's ``CallExecuted``)."""
    network = ctx.link.network
    operation = "0x" + bytes(HexBytes(admission.operation_id)).hex()
    executed = read_logs(
        ctx.link.w3,
        [network.timelock.address],
        admission.scheduled_block,
        topics=[CALL_EXECUTED, operation],
    )
    if not executed:
        raise ChainError(f"timelock operation {admission.operation_id} done but no execution log")
    receipt = ctx.link.w3.eth.get_transaction_receipt(executed[0]["transactionHash"])
    added = [
        r
        for r in decode_logs(network.emitters(), receipt_logs(receipt))
        if isinstance(r, MerchantChange) and r.kind == "merchant_added" and r.contract == "hub"
    ]
    return added[0].merchant


def _activate(ctx: GatewayContext, admission_id: int, merchant_id: int) -> Merchant | None:
    """Create the merchant row (API key, first rule set) of an executed admission, once."""
    with transaction(ctx.sessions) as session:
        admission = session.get(MerchantAdmission, admission_id, with_for_update=True)
        assert admission is not None
        if admission.status != "scheduled":
            return None  # activated by a concurrent run
        merchant = Merchant(
            id=merchant_id,
            name=admission.name,
            currency=admission.currency,
            api_key_hash=admission.api_key_hash,
            api_key_prefix=admission.api_key_prefix,
            cap_per_period=admission.cap_per_period,
            signer_address=admission.signer_address,
            signer_key_enc=admission.signer_key_enc,
        )
        session.add(merchant)
        session.flush()
        queue_rule_set(session, merchant_id, default_rule_set(admission.currency))
        admission.status, admission.merchant_id = "admitted", merchant_id
        session.expunge(merchant)
    return merchant


def _admission_failed(ctx: GatewayContext, admission_id: int, reason: str) -> None:
    with transaction(ctx.sessions) as session:
        admission = session.get(MerchantAdmission, admission_id, with_for_update=True)
        assert admission is not None
        admission.status, admission.error = "failed", reason[:500]


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


def new_webhook_secret() -> bytes:
    return secrets.token_bytes(32)
