"""The reconciliation report: each difference, each merchant's totals, the whole."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from chain.audit import (
    checksum,
)


@dataclass(frozen=True)
class Difference:
    """One disagreement between the database and the chain (or an informational note).

    ``code`` is stable: ``missing_on_chain``, ``missing_in_db``, ``field_mismatch``,
    ``tx_hash_mismatch``, ``block_mismatch``, ``tx_not_on_chain``, ``tx_reverted``,
    ``status_mismatch``, ``event_mismatch``, ``redemption_mismatch``, ``total_mismatch``,
    ``merchant_mismatch``; notes use ``in_flight`` and ``foreign``.
    """

    code: str
    subject: str
    message: str
    merchant: int | None = None
    tx_hash: str | None = None
    block: int | None = None
    field: str | None = None
    database: Any = None
    chain: Any = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "subject": self.subject,
            "message": self.message,
            "merchant": self.merchant,
            "tx_hash": self.tx_hash,
            "block": self.block,
            "field": self.field,
            "database": self.database,
            "chain": self.chain,
        }


@dataclass(frozen=True)
class MerchantTotals:
    """A merchant's confirmed totals in the database against the hub's counters."""

    merchant: int
    name: str
    database: dict[str, int]  # issued / redeemed / clawed_back, confirmed ops
    in_flight: dict[str, int]  # on chain, op sent but not yet confirmed
    foreign: dict[str, int]  # on chain, not relayed by this gateway
    counters: dict[str, int]  # the hub's merchant(id) view

    @property
    def ok(self) -> bool:
        return all(self.expected(k) == self.counters.get(k, 0) for k in TOTAL_FIELDS)

    def expected(self, name: str) -> int:
        return self.database[name] + self.in_flight[name] + self.foreign[name]

    def to_dict(self) -> dict[str, Any]:
        return {
            "merchant": self.merchant,
            "name": self.name,
            "ok": self.ok,
            "database": self.database,
            "in_flight": self.in_flight,
            "foreign": self.foreign,
            "counters": self.counters,
        }


TOTAL_FIELDS = ("issued", "redeemed", "clawed_back")


@dataclass
class ReconcileReport:
    """Everything ``reconcile`` compared at ``block``."""

    block: int
    hub: str
    database: str
    checked: dict[str, int] = field(default_factory=dict)  # entries compared, by kind
    differences: list[Difference] = field(default_factory=list)
    in_flight: list[Difference] = field(default_factory=list)
    foreign: list[Difference] = field(default_factory=list)
    totals: list[MerchantTotals] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.differences

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "block": self.block,
            "hub": checksum(self.hub.lower()),
            "database": self.database,
            "checked": self.checked,
            "differences": [d.to_dict() for d in self.differences],
            "in_flight": [d.to_dict() for d in self.in_flight],
            "foreign": [d.to_dict() for d in self.foreign],
            "totals": [t.to_dict() for t in self.totals],
        }
