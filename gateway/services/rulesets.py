"""Rule-set versions: queued, published on chain, in effect from a block timestamp.

A merchant's rule set is versioned.  A new version is stored and queued (a
``rule`` chain op), the outbox publishes its canonical text, and the hub makes it
take effect ``ruleNoticeSeconds`` after its publication (the first version at
once); the receipt fills ``effective_at`` and ``published_block``.  The accept
path decides each chunk under :func:`rule_set_in_effect` at the chain head's
timestamp: version 1 from admission on (its issuances still wait for its
publication), a later version from its ``effective_at``.  Since every block after
the head has a later timestamp, no issuance names a version not yet in effect.

Like the hub, a merchant has at most one pending version: a new one is refused
(409 ``rule_change_pending``) while a version after the first is queued, or
published and not yet in effect.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from typing import Any, Final, Literal

from sqlalchemy import bindparam, func, or_, select
from sqlalchemy.orm import Session

from chain.contracts import MAX_RULE_SET_BYTES
from gateway.clock import ChainTime
from gateway.context import GatewayContext
from gateway.errors import InvalidRequest, NotFound, RuleChangePending, RuleSetTooLarge
from gateway.models import ChainOp, Merchant, RuleSetVersion, table_of
from gateway.rules.errors import InvalidRuleSet, RuleError
from gateway.rules.fx import FxTable
from gateway.rules.model import RuleSet, canonical_json, parse_rule_set, rule_set_hash

RuleStatus = Literal["queued", "published", "in_effect", "superseded"]

#: Seconds the hub's notice is kept before it is read again (it only changes through
#: the timelock, and a longer notice on chain only makes an estimate early).
NOTICE_CACHE_SECONDS: Final = 60.0

_R = table_of(RuleSetVersion)
_IN_EFFECT = (
    select(_R.c.version, _R.c.hash)
    .where(
        _R.c.merchant_id == bindparam("merchant_id"),
        or_(_R.c.version == 1, _R.c.effective_at <= bindparam("ts")),
    )
    .order_by(_R.c.version.desc())
    .limit(1)
)


@dataclass(frozen=True)
class VersionView:
    """One stored version as the chain sees it at a head timestamp.

    ``superseded_at``: the next version's ``effective_at`` once that one is in effect.
    """

    version: int
    hash: str
    canonical: str
    content: dict[str, Any]
    tx_hash: str | None
    published_block: int | None
    effective_at: int | None
    superseded_at: int | None
    status: RuleStatus


@dataclass(frozen=True)
class PutResult:
    """A queued version and when it is expected to take effect (an estimate: the chain
    fixes it at publication, never earlier than this)."""

    row: RuleSetVersion
    effective_at: int


# ------------------------------------------------------------------ reading


def in_effect(session: Session, merchant_id: int, timestamp: int) -> tuple[int, str] | None:
    """(version, hash) of the version in effect at ``timestamp``: one indexed query."""
    found = (
        session.connection()
        .execute(_IN_EFFECT, {"merchant_id": merchant_id, "ts": timestamp})
        .first()
    )
    return (int(found.version), str(found.hash)) if found is not None else None


def rule_set_in_effect(session: Session, merchant_id: int, timestamp: int) -> RuleSetVersion:
    """The version in effect at chain time ``timestamp`` (version 1 from admission on)."""
    row = session.scalars(
        select(RuleSetVersion)
        .where(
            RuleSetVersion.merchant_id == merchant_id,
            or_(RuleSetVersion.version == 1, RuleSetVersion.effective_at <= timestamp),
        )
        .order_by(RuleSetVersion.version.desc())
        .limit(1)
    ).first()
    if row is None:
        raise NotFound("merchant has no rule set")
    return row


def version_row(session: Session, merchant_id: int, version: int) -> RuleSetVersion | None:
    """A stored version by number."""
    return session.scalars(
        select(RuleSetVersion).where(
            RuleSetVersion.merchant_id == merchant_id, RuleSetVersion.version == version
        )
    ).first()


def describe(session: Session, merchant_id: int, head_timestamp: int) -> list[VersionView]:
    """Every stored version of the merchant, oldest first, with its status at the head."""
    rows = list(
        session.scalars(
            select(RuleSetVersion)
            .where(RuleSetVersion.merchant_id == merchant_id)
            .order_by(RuleSetVersion.version)
        )
    )
    current = _current_version(rows, head_timestamp)
    views = []
    for index, row in enumerate(rows):
        following = rows[index + 1] if index + 1 < len(rows) else None
        superseded_at = None
        if following is not None and following.version <= current:
            superseded_at = following.effective_at
        views.append(
            VersionView(
                version=row.version, hash=row.hash, canonical=row.canonical,
                content=row.content, tx_hash=row.tx_hash, published_block=row.published_block,
                effective_at=row.effective_at, superseded_at=superseded_at,
                status=status_of(row, current),
            )
        )  # fmt: skip
    return views


def current_view(views: list[VersionView]) -> VersionView:
    """The version the accept path uses now, of :func:`describe`'s list (v1 even queued)."""
    for view in reversed(views):
        if view.version == 1 or view.status in ("in_effect", "superseded"):
            return view
    raise NotFound("merchant has no rule set")


def status_of(row: RuleSetVersion, current: int) -> RuleStatus:
    """``row``'s status when version ``current`` is the one in effect."""
    if row.effective_at is None:
        return "queued"
    if row.version == current:
        return "in_effect"
    return "superseded" if row.version < current else "published"


def upcoming(session: Session, merchant_id: int, current: int) -> RuleSetVersion | None:
    """The version after ``current`` (queued, or published in its notice), if any."""
    return session.scalars(
        select(RuleSetVersion)
        .where(RuleSetVersion.merchant_id == merchant_id, RuleSetVersion.version > current)
        .order_by(RuleSetVersion.version)
        .limit(1)
    ).first()


def next_effective_at(session: Session, after: int) -> int | None:
    """The earliest published ``effective_at`` later than ``after`` (any merchant).

    On the devnet nothing mines a block without traffic: once this time has passed by
    the wall clock while the head is older, the worker mines one, so the version
    takes effect at the head."""
    found = session.scalar(
        select(func.min(RuleSetVersion.effective_at)).where(RuleSetVersion.effective_at > after)
    )
    return int(found) if found is not None else None


def load_rules(row: RuleSetVersion) -> RuleSet:
    return RuleSet.model_validate(row.content)


def _current_version(rows: list[RuleSetVersion], timestamp: int) -> int:
    in_force = [
        r.version
        for r in rows
        if r.version == 1 or (r.effective_at is not None and r.effective_at <= timestamp)
    ]
    return max(in_force, default=0)


# ------------------------------------------------------------------ the hub's notice

_notice_lock = threading.Lock()
#: Per chain link (one network): hubs deployed by the same key at the same nonce share
#: an address on every devnet, so the address alone could mix two networks' notices.
_notice_cache: dict[tuple[int, str, str], tuple[float, int]] = {}


def notice_seconds(ctx: GatewayContext) -> int:
    """The hub's ``ruleNoticeSeconds``, read at most once a minute per process and network."""
    hub = ctx.link.network.hub
    key = (id(ctx.link), str(ctx.settings.rpc_url), str(hub.address))
    with _notice_lock:
        cached = _notice_cache.get(key)
        if cached is not None and time.monotonic() - cached[0] < NOTICE_CACHE_SECONDS:
            return cached[1]
    value = int(hub.rule_notice_seconds())
    with _notice_lock:
        _notice_cache[key] = (time.monotonic(), value)
    return value


# ------------------------------------------------------------------ writing


def put_rule_set(
    session: Session, merchant: Merchant, content: dict[str, Any], fx: FxTable,
    *, head: ChainTime, notice: int,
) -> PutResult:  # fmt: skip
    """Validate and queue a new version; refused while another one is pending.

    ``effective_at`` is estimated as ``head.timestamp + notice`` (the first version:
    the head's time): the chain starts the notice at publication, later than now.
    """
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
    text = canonical_json(rules)
    if len(text) > MAX_RULE_SET_BYTES:  # ASCII: characters are bytes
        raise RuleSetTooLarge(len(text), MAX_RULE_SET_BYTES)
    pending = session.scalars(
        select(RuleSetVersion)
        .where(
            RuleSetVersion.merchant_id == merchant.id,
            RuleSetVersion.version > 1,
            or_(
                RuleSetVersion.effective_at.is_(None),
                RuleSetVersion.effective_at > head.timestamp,
            ),
        )
        .order_by(RuleSetVersion.version.desc())
        .limit(1)
    ).first()
    if pending is not None:
        expected = pending.effective_at
        if expected is None:  # queued: the notice starts at its publication, after now
            expected = head.timestamp + notice
        raise RuleChangePending(merchant.id, pending.version, expected)
    row = queue_rule_set(session, merchant.id, rules)
    return PutResult(row, head.timestamp + (notice if row.version > 1 else 0))


def queue_rule_set(session: Session, merchant_id: int, rules: RuleSet) -> RuleSetVersion:
    """Store ``rules`` as the merchant's next version and queue its publication."""
    latest = session.scalar(
        select(func.max(RuleSetVersion.version)).where(RuleSetVersion.merchant_id == merchant_id)
    )
    version = int(latest or 0) + 1
    text = canonical_json(rules)
    digest = "0x" + rule_set_hash(rules).hex()
    row = RuleSetVersion(
        merchant_id=merchant_id, version=version, content=json.loads(text),
        canonical=text, hash=digest,
    )  # fmt: skip
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
