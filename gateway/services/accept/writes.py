"""The rows a chunk stages, written with one multi-row statement per table.

:class:`Pending` collects new members and links, events, chain ops and their
issuance inputs, stored answers (Idempotency-Keys), counter deltas, and the member and link columns
the chunk changed; :meth:`Pending.flush` writes them in foreign-key order,
each table in one statement (SQLAlchemy Core executemany / multi-row VALUES),
never an ORM flush per event.  A chunk flushes once, at its end; a refund of
a purchase staged in the same chunk gets its issue op's id right after the
insert (one read, one executemany update).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.orm import Session

from gateway.models import (
    DERIVED_KEY,
    ChainOp,
    CustomerLink,
    Event,
    IdempotencyRecord,
    IssuanceInput,
    Member,
    table_of,
    utcnow,
)
from gateway.services.accept.counters import Bucket, write_deltas
from gateway.services.accept.ops import StagedOp
from gateway.services.accept.reads import LinkState, MemberState
from gateway.webhooks.dispatcher import queue_webhooks

_INSERT_MEMBERS = insert(table_of(Member))
_INSERT_LINKS = insert(table_of(CustomerLink))
_INSERT_EVENTS = insert(table_of(Event))
_INSERT_OPS = insert(table_of(ChainOp))
_INSERT_INPUTS = insert(table_of(IssuanceInput))
_INSERT_RECORDS = insert(table_of(IdempotencyRecord))
_M, _L = table_of(Member), table_of(CustomerLink)
_UPDATE_MEMBERS = (
    update(_M)
    .where(_M.c.id == bindparam("_id"))
    .values(birth_month=bindparam("_birth_month"), tier=bindparam("_tier"))
)
_UPDATE_LINKS = (
    update(_L)
    .where(_L.c.merchant_id == bindparam("_merchant"), _L.c.customer_id == bindparam("_customer"))
    .values(referred_by=bindparam("_referred_by"), referral_rewarded=bindparam("_rewarded"))
)


class Pending:
    """A chunk's rows not written yet.

    ``hooked``: the merchant had a webhook URL when its request was authenticated;
    without one, its tier changes queue no webhook (and cost no query).
    """

    def __init__(self, session: Session, merchant_id: int, hooked: bool) -> None:
        self.session, self.merchant_id, self.hooked = session, merchant_id, hooked
        self._clear()

    def _clear(self) -> None:
        self.new_members: list[MemberState] = []
        self.new_links: list[LinkState] = []
        self.events: list[dict[str, Any]] = []
        self.ops: list[StagedOp] = []
        self.inputs: list[dict[str, Any]] = []  # issuance_inputs rows
        self.records: list[dict[str, Any]] = []
        self.tier_changes: list[dict[str, Any]] = []
        self.deltas: dict[tuple[str, int, date], Bucket] = defaultdict(Bucket)
        self.members: dict[str, MemberState] = {}  # existing members with changed columns
        self.links: dict[str, LinkState] = {}  # existing links with changed columns

    def add_delta(self, member_id: str, merchant_id: int, day: date, delta: Bucket) -> None:
        self.deltas[(member_id, merchant_id, day)].add(delta)

    def answer(self, key: str, digest: str, status: int, answer: dict[str, Any]) -> None:
        self.records.append({
            "merchant_id": self.merchant_id, "key": key, "request_hash": digest,
            "state": "done", "status_code": status, "response": answer, "created_at": utcnow(),
        })  # fmt: skip

    def changed(self, member: MemberState, link: LinkState) -> None:
        """Note the member and link columns an accepted event changed (written at the flush)."""
        if member.changed and not member.new:
            self.members[member.id] = member
        if link.changed and link.id is not None:
            self.links[link.customer_id] = link

    def flush(self) -> None:
        """Write everything staged: one statement per table."""
        session = self.session
        conn = session.connection()
        if self.new_members:
            conn.execute(_INSERT_MEMBERS, [_member_row(m) for m in self.new_members])
            for member in self.new_members:
                member.new = False
                member.changed.clear()
        if self.new_links:
            conn.execute(
                _INSERT_LINKS,
                [_link_row(self.merchant_id, link) for link in self.new_links],
            )
            for link in self.new_links:
                link.id = -1  # written: later changes are updates
                link.changed.clear()
        self._update_members()
        self._update_links()
        if self.events:
            conn.execute(_INSERT_EVENTS, self.events)
        if self.ops:
            conn.execute(_INSERT_OPS, [op.row for op in self.ops])
            self._link_clawbacks()
        if self.inputs:
            conn.execute(_INSERT_INPUTS, self.inputs)
        if self.records:
            conn.execute(_INSERT_RECORDS, self.records)
        write_deltas(session, self.deltas)
        if self.tier_changes and self.hooked:
            queue_webhooks(
                session, [(self.merchant_id, "tier.changed", c) for c in self.tier_changes]
            )
        self._clear()

    def _link_clawbacks(self) -> None:
        """Clawbacks of purchases written in this same flush name their issue op: two
        statements (read the new ops' ids, set the payloads), only when there are any."""
        waiting = [op for op in self.ops if op.origin is not None]
        if not waiting:
            return
        table = table_of(ChainOp)
        origins = {op.origin.ref: op.origin for op in waiting if op.origin is not None}
        rows = self.session.execute(
            select(table.c.id, table.c.ref).where(
                table.c.event_id.in_({o.event_id for o in origins.values()})
            )
        )
        for op_id, ref in rows:
            if ref in origins:
                origins[ref].id = op_id
        updates = []
        for op in waiting:
            assert op.origin is not None and op.origin.id is not None
            op.row["payload"] = {**op.row["payload"], "original_op_id": op.origin.id}
            op.ref.payload = op.row["payload"]
            updates.append(
                {"_event": op.row["event_id"], "_ref": op.row["ref"], "_payload": op.row["payload"]}
            )
        self.session.execute(
            update(table)
            .where(table.c.event_id == bindparam("_event"), table.c.ref == bindparam("_ref"))
            .values(payload=bindparam("_payload")),
            updates,
        )

    def _update_members(self) -> None:
        if not self.members:
            return
        self.session.connection().execute(
            _UPDATE_MEMBERS,
            [
                {"_id": m.id, "_birth_month": m.birth_month, "_tier": m.tier}
                for m in self.members.values()
            ],
        )
        for member in self.members.values():
            member.changed.clear()

    def _update_links(self) -> None:
        if not self.links:
            return
        self.session.connection().execute(
            _UPDATE_LINKS,
            [
                {
                    "_merchant": self.merchant_id,
                    "_customer": c,
                    "_referred_by": link.referred_by,
                    "_rewarded": link.referral_rewarded,
                }
                for c, link in self.links.items()
            ],
        )
        for link in self.links.values():
            link.changed.clear()


def _member_row(member: MemberState) -> dict[str, Any]:
    merchant_id, customer_id = member.key_origin or (None, None)
    return {
        "id": member.id, "address": member.address, "custodial": True, "key_enc": DERIVED_KEY,
        "key_merchant_id": merchant_id, "key_customer_id": customer_id, "claimed_by": None,
        "birth_month": member.birth_month, "frozen": False, "tier": member.tier,
        "created_at": utcnow(),
    }  # fmt: skip


def _link_row(merchant_id: int, link: LinkState) -> dict[str, Any]:
    return {
        "merchant_id": merchant_id, "customer_id": link.customer_id,
        "member_id": link.member_id, "referred_by": link.referred_by,
        "referral_rewarded": link.referral_rewarded, "created_at": utcnow(),
    }  # fmt: skip
