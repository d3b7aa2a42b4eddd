"""The e2e bench's workload: a deterministic stream of mixed merchant events."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.e2e.config import MERCHANTS, MIX


@dataclass
class Planned:
    """One merchant event to send."""

    index: int
    merchant: int  # index into MERCHANTS
    kind: str  # a key of MIX
    customer: str
    key: str
    body: dict[str, Any]


class Workload:
    """A deterministic stream of mixed events over a growing customer base.

    A customer's successive events fall on successive days (in the past), so
    daily check-in and review caps do not zero them; each customer has its own
    device and one of a pool of home IPs (about three customers per IP).
    """

    def __init__(self, seed: int, tag: str, refund_lag: int) -> None:
        self.rng = random.Random(seed)
        self.tag = tag
        self.refund_lag = refund_lag
        self.count = 0
        self.customers: list[list[str]] = [[] for _ in MERCHANTS]
        self.open_orders: list[list[tuple[int, str, str, int]]] = [[] for _ in MERCHANTS]
        self.days: dict[str, int] = {}
        self.start = datetime.now(UTC).replace(hour=10, minute=0, second=0, microsecond=0)
        self.start -= timedelta(days=500)
        self.orders = 0

    def take(self, n: int, phase: str) -> list[Planned]:
        return [self.next(phase) for _ in range(n)]

    def forget(self, unsent: list[Planned]) -> None:
        """Events planned but never sent (a time box ran out): later events must not
        refund their orders or count their customers as existing."""
        indexes = {p.index for p in unsent}
        for orders in self.open_orders:
            orders[:] = [o for o in orders if o[0] not in indexes]
        gone = {p.customer for p in unsent if p.kind == "purchase_new"}
        for pool in self.customers:
            pool[:] = [c for c in pool if c not in gone]

    def _when(self, customer: str) -> str:
        day = self.days.get(customer, 0)
        self.days[customer] = day + 1
        minute = self.rng.randrange(0, 600)
        return (self.start + timedelta(days=day, minutes=minute)).strftime("%Y-%m-%dT%H:%M:%SZ")

    def _new_customer(self, merchant: int) -> str:
        customer = f"{self.tag}-c{merchant}-{len(self.customers[merchant])}"
        self.customers[merchant].append(customer)
        return customer

    def _existing(self, merchant: int) -> str | None:
        pool = self.customers[merchant]
        return self.rng.choice(pool) if pool else None

    def next(self, phase: str) -> Planned:
        index = self.count
        self.count += 1
        merchant = self.rng.randrange(len(MERCHANTS))
        roll, kind, acc = self.rng.random(), "purchase_new", 0.0
        for name, share in MIX.items():
            acc += share
            if roll < acc:
                kind = name
                break
        key = f"{phase}-{index}"
        if kind == "refund":
            eligible = [o for o in self.open_orders[merchant] if o[0] <= index - self.refund_lag]
            if eligible:
                order = self.rng.choice(eligible)
                self.open_orders[merchant].remove(order)
                _, customer, order_id, _amount = order
                body = {
                    "type": "refund",
                    "customer_id": customer,
                    "occurred_at": self._when(customer),
                    "refund": {"order_id": order_id},
                }
                return Planned(index, merchant, kind, customer, key, body)
            kind = "purchase_existing"
        customer_or_none = None if kind == "purchase_new" else self._existing(merchant)
        if customer_or_none is None:
            kind, customer = ("purchase_new", self._new_customer(merchant))
        else:
            customer = customer_or_none
        body = {"type": "check_in" if kind == "check_in" else kind.split("_")[0]}
        body.update(customer_id=customer, occurred_at=self._when(customer))
        body["device_id"] = f"dev-{customer}"
        body["ip"] = f"198.51.{hash(customer) % 200}.{hash(customer[::-1]) % 250 + 1}"
        if kind.startswith("purchase"):
            _name, currency, low, high = MERCHANTS[merchant]
            amount = self.rng.randint(low, high)
            self.orders += 1
            order_id = f"{self.tag}-o{self.orders}"
            category = self.rng.choice(("apparel", "home", "beauty", "food"))
            body["type"] = "purchase"
            body["order"] = {
                "id": order_id,
                "amount": f"{amount}.00",
                "currency": currency,
                "items": [
                    {"sku": f"sku-{self.rng.randrange(500)}", "category": category,
                     "amount": f"{amount}.00", "eco": self.rng.random() < 0.1}
                ],
            }  # fmt: skip
            self.open_orders[merchant].append((index, customer, order_id, amount))
        return Planned(index, merchant, kind, customer, key, body)
