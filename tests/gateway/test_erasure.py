"""An erasure (``DELETE /v1/wallet/data``) against the rest of the network: the erased
customer's id leaves the events of the members it invited (their amounts, inputs and
proofs stay), and an event of the customer accepted while the erasure runs is accepted
either before it (and blocks it) or after it (a returning customer), never half-way."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from gateway_kit import Gateway, purchase
from sqlalchemy import select
from test_disclosures import assert_proves, export
from test_member_data import wallet_of

from gateway.models import Base, ChainOp, CustomerLink, Erasure, Event, Member
from gateway.services import privacy
from gateway.services.accept import reads
from gateway.services.reconcile import reconcile
from gateway.timeutil import aware

CONFIRM = {"confirm": "erase"}
REFERRAL = {"type": "referral", "occurred_at": "2026-11-20T09:00:00Z"}


def post(gateway: Gateway, body: dict[str, Any], merchant: int = 0, key: str | None = None) -> Any:
    return gateway.client.post("/v1/events", json=body, headers=gateway.headers(merchant, key))


def accepted(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 202, response.text
    return dict(response.json())


def erase(gateway: Gateway, wallet: dict[str, str]) -> httpx.Response:
    return gateway.client.request("DELETE", "/v1/wallet/data", json=CONFIRM, headers=wallet)


def naming(ann: str, bob: str, order: str) -> dict[str, Any]:
    return {**purchase(bob, order, "80.00"), "referrer_customer_id": ann}


def refs_of(gateway: Gateway, event_ids: list[str]) -> set[str]:
    with gateway.context.sessions() as session:
        return set(session.scalars(select(ChainOp.ref).where(ChainOp.event_id.in_(event_ids))))


def test_the_events_of_those_it_invited_no_longer_name_the_erased_customer(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No margin: the locked re-scan finds the older rows only through the first scan.
    monkeypatch.setattr(privacy, "RESCAN_MARGIN", timedelta(0))
    run = uuid.uuid4().hex[:8]
    ann, bob, cid = f"ann-{run}", f"bob-{run}", f"cid-{run}"
    # Named before ann is a customer: a stored refusal naming her.
    early, early_body = uuid.uuid4().hex, naming(ann, cid, f"C0-{run}")
    refused = post(gateway, early_body, key=early)
    assert refused.status_code == 404 and ann in refused.text
    accepted(post(gateway, purchase(ann, f"A1-{run}")))
    referral = {**REFERRAL, "customer_id": cid, "referrer_customer_id": ann}
    invited = [
        accepted(post(gateway, naming(ann, bob, f"B1-{run}"))),
        accepted(post(gateway, referral)),
        accepted(post(gateway, purchase(cid, f"C1-{run}", "50.00"))),
    ]
    gateway.settle()
    ids = [e["id"] for e in invited]
    with gateway.context.sessions() as session:
        before = {
            e.id: (e.points, e.payload)
            for e in session.scalars(select(Event).where(Event.id.in_(ids)))
        }
    bonus = [line for line in export(gateway) if line["part"] == "referral"]
    assert bonus, "ann was paid a referral bonus"

    response = erase(gateway, wallet_of(gateway, ann))
    assert response.status_code == 200, response.text
    counts = response.json()["counts"]
    assert counts["referring_events"] == 2 and counts["referring_answers"] == 1

    with gateway.context.sessions() as session:
        after = {e.id: e for e in session.scalars(select(Event).where(Event.id.in_(ids)))}
        for table in Base.metadata.sorted_tables:
            text = json.dumps([list(r) for r in session.execute(table.select())], default=str)
            assert ann not in text, table.name
    for event_id, (points, payload) in before.items():
        event = after[event_id]
        assert event.points == points and event.customer_id == payload["customer_id"]
        if payload["referrer_customer_id"] == ann:
            assert event.payload == {**payload, "referrer_customer_id": privacy.ERASED}
        else:
            assert event.payload == payload
    # The invitees' lines keep their inputs and prove; the inviter's are withheld and prove.
    lines = {line["ref"]: line for line in export(gateway)}
    theirs = [lines[ref] for ref in refs_of(gateway, ids) if ref in lines]
    assert any(line["part"] == "points" for line in theirs)
    for line in theirs:
        if line["part"] == "points":
            assert line["input"] is not None and ann not in line["input"]
        assert_proves(gateway, line)
    for line in bonus:
        assert lines[line["ref"]]["input"] is None and lines[line["ref"]]["erased"] is True
        assert_proves(gateway, lines[line["ref"]])
    assert reconcile(gateway.context).ok
    # The stored refusal replays without her id.
    again = post(gateway, early_body, key=early)
    assert again.status_code == 404 and ann not in again.text
    assert again.json()["error"]["details"]["referrer_customer_id"] == privacy.ERASED


def test_a_namesake_at_another_merchant_keeps_its_referrals(gateway: Gateway) -> None:
    run = uuid.uuid4().hex[:8]
    ann, bob = f"ann-{run}", f"bob-{run}"
    accepted(post(gateway, purchase(ann, f"A1-{run}")))
    accepted(post(gateway, purchase(ann, f"A2-{run}"), merchant=1))
    theirs = accepted(post(gateway, naming(ann, bob, f"B1-{run}"), merchant=1))
    gateway.settle()
    response = erase(gateway, wallet_of(gateway, ann))
    assert response.status_code == 200, response.text
    assert response.json()["counts"]["referring_events"] == 0
    with gateway.context.sessions() as session:
        event = session.get(Event, theirs["id"])
        assert event is not None and event.payload["referrer_customer_id"] == ann


# ------------------------------------------------------------------ an erasure and an event


class Gate:
    """Holds a function's caller inside it until opened: ``inside`` is set on arrival."""

    def __init__(self) -> None:
        self.inside, self.opened = threading.Event(), threading.Event()

    def around(self, function: Callable[..., Any], *, after: bool) -> Callable[..., Any]:
        def held(*args: Any, **kwargs: Any) -> Any:
            result = function(*args, **kwargs) if after else None
            self.inside.set()
            assert self.opened.wait(30), "the gate was never opened"
            return result if after else function(*args, **kwargs)

        return held


class Call:
    """``function`` in a thread of its own; ``result`` once it returned."""

    def __init__(self, function: Callable[[], httpx.Response]) -> None:
        self.result: httpx.Response | None = None

        def run() -> None:
            self.result = function()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def join(self) -> httpx.Response:
        self.thread.join(60)
        assert self.result is not None, "the call never returned"
        return self.result


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> Iterator[Gate]:
    gate = Gate()
    yield gate
    gate.opened.set()  # never leave a thread waiting


def customer_with_wallet(gateway: Gateway) -> tuple[str, str, dict[str, str]]:
    """A settled customer: (customer id, address, wallet headers)."""
    customer = f"race-{uuid.uuid4().hex[:8]}"
    address = accepted(post(gateway, purchase(customer, f"o-{uuid.uuid4().hex[:8]}")))
    gateway.settle()
    return customer, address["member_address"], wallet_of(gateway, customer)


def test_an_event_naming_the_customer_between_the_scan_and_the_locks_is_scrubbed(
    gateway: Gateway, gate: Gate, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(privacy, "RESCAN_MARGIN", timedelta(0))
    customer, _address, wallet = customer_with_wallet(gateway)
    monkeypatch.setattr(privacy, "find_referrers", gate.around(privacy.find_referrers, after=True))
    erasure = Call(lambda: erase(gateway, wallet))
    assert gate.inside.wait(30)
    invitee = f"inv-{uuid.uuid4().hex[:8]}"
    # A referral event: it records the inviter, pays nothing yet (no op of the inviter's).
    named = accepted(
        post(gateway, {**REFERRAL, "customer_id": invitee, "referrer_customer_id": customer})
    )
    gate.opened.set()
    response = erasure.join()
    assert response.status_code == 200, response.text
    assert response.json()["counts"]["referring_events"] == 1
    with gateway.context.sessions() as session:
        event = session.get(Event, named["id"])
        assert event is not None and event.payload["referrer_customer_id"] == privacy.ERASED
    gateway.settle()


def test_an_event_posted_while_an_erasure_runs_waits_for_it(
    gateway: Gateway, gate: Gate, monkeypatch: pytest.MonkeyPatch
) -> None:
    customer, address, wallet = customer_with_wallet(gateway)
    # The erasure stops once it has read and scrubbed the customer's events.
    monkeypatch.setattr(
        privacy, "_scrub_referrers", gate.around(privacy._scrub_referrers, after=False)
    )
    erasure = Call(lambda: erase(gateway, wallet))
    assert gate.inside.wait(30)
    late = Call(lambda: post(gateway, purchase(customer, f"late-{uuid.uuid4().hex[:8]}")))
    time.sleep(1.0)
    assert late.thread.is_alive(), "an event was accepted in the middle of the erasure"
    gate.opened.set()
    assert erasure.join().status_code == 200, erasure.join().text
    event = accepted(late.join())
    # Accepted after the erasure: a returning customer, linked again to the same account.
    assert event["member_address"] == address
    with gateway.context.sessions() as session:
        member = session.scalars(select(Member).where(Member.address == address)).one()
        erased_at = session.scalars(
            select(Erasure.requested_at).where(Erasure.member_address == address)
        ).one()
        rows = list(session.scalars(select(Event).where(Event.member_id == member.id)))
        links = list(
            session.scalars(select(CustomerLink).where(CustomerLink.member_id == member.id))
        )
    [named] = [e for e in rows if e.customer_id == customer]
    assert named.id == event["id"] and aware(named.created_at) >= aware(erased_at)
    assert all(e.customer_id == privacy.ERASED for e in rows if e.id != event["id"])
    assert [link.customer_id for link in links] == [customer]
    gateway.settle()


def test_an_erasure_posted_while_an_event_is_accepted_waits_and_is_blocked_by_it(
    gateway: Gateway, gate: Gate, monkeypatch: pytest.MonkeyPatch
) -> None:
    customer, address, wallet = customer_with_wallet(gateway)
    # The accept path stops once it has read the customer's link, before it writes a row.
    monkeypatch.setattr(reads, "load", gate.around(reads.load, after=True))
    late = Call(lambda: post(gateway, purchase(customer, f"late-{uuid.uuid4().hex[:8]}")))
    assert gate.inside.wait(30)
    erasure = Call(lambda: erase(gateway, wallet))
    time.sleep(1.0)
    assert erasure.thread.is_alive(), "the erasure ran beside an event being accepted"
    gate.opened.set()
    accepted(late.join())
    blocked = erasure.join()
    assert blocked.status_code == 409, blocked.text
    assert blocked.json()["error"]["code"] == "erasure_blocked"
    monkeypatch.undo()
    gateway.settle()
    assert erase(gateway, wallet).status_code == 200
    with gateway.context.sessions() as session:
        member = session.scalars(select(Member).where(Member.address == address)).one()
        rows = list(session.scalars(select(Event.customer_id).where(Event.member_id == member.id)))
    assert len(rows) == 2 and set(rows) == {privacy.ERASED}
