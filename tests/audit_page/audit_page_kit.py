"""Helpers for the audit page's tests: make history through the merchant API and book
what the API answered (the expectations the audit's figures are compared with).

Imported by this folder's ``conftest.py`` and tests; :func:`serve` and :func:`chromium`
are the browser tests' server and browser.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from eth_utils import keccak
from hexbytes import HexBytes

from chain import signing
from chain.devnet import free_port, rpc_call
from chain.sender import TransactionSender
from gateway.app import create_app
from gateway.db import transaction
from gateway.models import ChainOp, Member, Merchant
from gateway.services.members import custodial_key
from tests.gateway.gateway_kit import Gateway, purchase, redeem, signed_redemption

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@contextmanager
def serve(gateway: Gateway) -> Iterator[str]:
    """The gateway's app served by uvicorn on a free port, in a thread: its URL."""
    port = free_port()
    config = uvicorn.Config(
        create_app(gateway.context), host="127.0.0.1", port=port, log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn-audit", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@contextmanager
def chromium() -> Iterator[Any]:
    """Debian's Chromium through playwright (skips the test where it is not installed)."""
    if not CHROMIUM.exists():
        pytest.skip("/usr/bin/chromium is not installed (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@dataclass(frozen=True)
class BookedEvent:
    merchant_id: int
    id: str
    member: str  # lower-case
    points: int
    clawback: int
    status: str
    tx_hash: str | None
    block_number: int | None


@dataclass(frozen=True)
class BookedRedemption:
    merchant_id: int
    member: str  # lower-case
    amount: int
    status: str
    tx_hash: str | None
    relayed_by_gateway: bool = True


@dataclass
class Book:
    """What the merchant API answered for the history the tests made."""

    gateway: Gateway
    events: list[BookedEvent] = field(default_factory=list)
    redemptions: list[BookedRedemption] = field(default_factory=list)
    transfers: list[tuple[str, str, int]] = field(default_factory=list)  # (from, to, amount)

    def _confirmed(self) -> list[BookedEvent]:
        return [e for e in self.events if e.status == "confirmed"]

    def issued(self, merchant_id: int | None = None) -> int:
        return sum(e.points for e in self._confirmed() if merchant_id in (None, e.merchant_id))

    def clawed_back(self, merchant_id: int | None = None) -> int:
        return sum(e.clawback for e in self._confirmed() if merchant_id in (None, e.merchant_id))

    def redeemed(self, merchant_id: int | None = None) -> int:
        return sum(
            r.amount
            for r in self.redemptions
            if r.status == "confirmed" and merchant_id in (None, r.merchant_id)
        )

    @property
    def supply(self) -> int:
        return self.issued() - self.clawed_back() - self.redeemed()

    def balances(self) -> dict[str, int]:
        balances: defaultdict[str, int] = defaultdict(int)
        for e in self._confirmed():
            balances[e.member] += e.points - e.clawback
        for r in self.redemptions:
            if r.status == "confirmed":
                balances[r.member] -= r.amount
        for sender, to, amount in self.transfers:
            balances[sender] -= amount
            balances[to] += amount
        return dict(balances)

    @property
    def members(self) -> set[str]:
        """Addresses that were ever credited points."""
        credited = {e.member for e in self._confirmed() if e.points > 0}
        return credited | {to for _sender, to, _amount in self.transfers}

    @property
    def holders(self) -> int:
        return sum(1 for v in self.balances().values() if v > 0)

    def merchant_ids(self) -> list[int]:
        return [m.id for m in self.gateway.merchants]

    # ---------------------------------------------------------------- making history

    def post(self, merchant: int, body: dict[str, Any]) -> str:
        """Post an event at merchant index ``merchant``; returns its id (booked on settle)."""
        response = self.gateway.client.post(
            "/v1/events", json=body, headers=self.gateway.headers(merchant)
        )
        assert response.status_code == 202, response.text
        event_id = str(response.json()["id"])
        self._pending.append((merchant, event_id))
        return event_id

    def redeem(self, merchant: int, member: str, cost: int) -> str:
        """Redeem through the gateway (``POST /v1/redemptions``), which relays it."""
        redemption_id = str(redeem(self.gateway, merchant, member, cost).json()["id"])
        self._pending_redemptions.append((merchant, redemption_id))
        return redemption_id

    def redeem_elsewhere(self, merchant: int, member: str, cost: int) -> str:
        """Relay a member-signed redemption with the merchant's own signer key instead of
        through the gateway: the gateway's database never hears of it."""
        gw = self.gateway
        message, signature, _reward_id = signed_redemption(gw, merchant, member, cost)
        with gw.context.sessions() as session:
            row = session.get(Merchant, gw.merchants[merchant].id)
            assert row is not None and row.signer_key_enc is not None
            key = "0x" + gw.context.box.decrypt(row.signer_key_enc).hex()
        w3 = gw.context.link.w3
        relayer = TransactionSender(w3, key, gw.context.link.chain_id)
        rpc_call(gw.context.settings.rpc_url, "anvil_setBalance", [relayer.address, hex(10**18)])
        hub = gw.context.link.network.hub
        receipt = relayer.transact(
            hub.redeem({**message, "ref": HexBytes(message["ref"])}, signature)
        )
        tx_hash = "0x" + bytes(receipt["transactionHash"]).hex()
        self.redemptions.append(
            BookedRedemption(
                gw.merchants[merchant].id, member.lower(), cost, "confirmed", tx_hash, False
            )
        )
        return tx_hash

    def transfer(self, sender: str, to: str, amount: int) -> None:
        """Queue a member-to-member transfer signed with the sender's custodial key, as the
        wallet queues one (``gateway.services.transfers.transfer``): the worker relays it."""
        gw = self.gateway
        hub = gw.context.link.network.hub
        nonce = hub.nonce_of(sender)
        request = {
            "from": sender,
            "to": to,
            "amount": amount,
            "nonce": nonce,
            "deadline": int(time.time()) + 600,
        }
        with transaction(gw.context.sessions) as session:
            owner = session.query(Member).filter_by(address=sender).one()
            key = custodial_key(gw.context.box, owner)
            signature = signing.sign(
                key, "TransferRequest", gw.context.link.chain_id, hub.address, request
            )
            session.add(
                ChainOp(
                    kind="transfer",
                    member_address=sender,
                    amount=amount,
                    ref="0x" + keccak(f"transfer:{sender}:{nonce}".encode()).hex(),
                    payload={"request": request, "signature": "0x" + signature.hex()},
                )
            )
        self.transfers.append((sender.lower(), to.lower(), amount))

    def settle(self) -> None:
        """Let the worker finish, then book the final answers of what was posted."""
        gw = self.gateway
        gw.settle()
        for merchant, event_id in self._pending:
            e = gw.client.get(f"/v1/events/{event_id}", headers=gw.headers(merchant)).json()
            self.events.append(
                BookedEvent(
                    gw.merchants[merchant].id,
                    e["id"],
                    e["member_address"].lower(),
                    e["points"],
                    e["clawback"],
                    e["status"],
                    e["tx_hash"],
                    e["block_number"],
                )
            )
        for merchant, redemption_id in self._pending_redemptions:
            r = gw.client.get(
                f"/v1/redemptions/{redemption_id}", headers=gw.headers(merchant)
            ).json()
            self.redemptions.append(
                BookedRedemption(
                    r["merchant_id"], r["member"].lower(), r["amount"], r["status"], r["tx_hash"]
                )
            )
        self._pending.clear()
        self._pending_redemptions.clear()

    def __post_init__(self) -> None:
        self._pending: list[tuple[int, str]] = []
        self._pending_redemptions: list[tuple[int, str]] = []


def build_history(gateway: Gateway) -> Book:
    """Purchases at both merchants, a refund at the first, a redemption at the second of
    points earned at the first, and a member-to-member transfer."""
    book = Book(gateway)
    book.post(0, purchase("alice", "A-1", "300.00"))
    book.post(0, purchase("bob", "B-1", "50.00"))
    book.post(1, purchase("carol", "C-1", "12000", currency="JPY"))
    book.post(1, purchase("dave", "D-1", "8000", currency="JPY"))
    book.settle()
    refund = {
        "type": "refund",
        "customer_id": "bob",
        "occurred_at": "2026-11-21T10:00:00Z",
        "refund": {"order_id": "B-1"},
    }
    book.post(0, refund)
    alice, _bob, carol, _dave = book.events
    checksum = gateway.context.link.w3.to_checksum_address
    book.redeem(1, checksum(alice.member), 40)
    book.transfer(checksum(carol.member), checksum(alice.member), 25)
    book.settle()
    assert all(e.status == "confirmed" for e in book.events), book.events
    assert all(r.status == "confirmed" for r in book.redemptions), book.redemptions
    return book
