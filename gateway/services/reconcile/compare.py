"""Reconcile the gateway's database with the chain at one block: read both, run every check."""

from __future__ import annotations

from chain.audit import (
    AuditLog,
    Rpc,
    chain_state_at,
)
from gateway.context import GatewayContext
from gateway.services.reconcile.merchants import MerchantChecks
from gateway.services.reconcile.ops import OpChecks
from gateway.services.reconcile.report import ReconcileReport
from gateway.services.reconcile.settlement import SettlementChecks
from gateway.services.reconcile.snapshot import read_database


def reconcile(
    context: GatewayContext, *, rpc_url: str | None = None, to_block: int | None = None
) -> ReconcileReport:
    """Compare the gateway's database with the chain at ``to_block`` (default: latest).

    ``rpc_url`` reads the chain from another endpoint than the gateway's own.
    """
    rpc = Rpc(rpc_url or context.settings.rpc_url)
    hub = context.link.deployment.hub
    block = rpc.block_number() if to_block is None else to_block
    database = read_database(context.sessions)
    history = AuditLog(rpc, hub).read(block)
    state = chain_state_at(rpc, history.contracts, block)
    senders = {tx.sender for tx in database.txs.values()}
    senders.add(context.link.sender.address.lower())
    report = ReconcileReport(
        block=block,
        hub=hub,
        database=context.engine.url.render_as_string(hide_password=True),
    )
    Reconciler(report, database, history, state, rpc, frozenset(senders)).run()
    return report


class Reconciler(OpChecks, SettlementChecks, MerchantChecks):
    """The comparison itself (see :mod:`gateway.services.reconcile`); fills ``report``."""

    # ---------------------------------------------------------------- run

    def run(self) -> None:
        """Every check, in order; then the counts of what was compared."""
        self.compare_ops()
        self.compare_records()
        self.compare_transactions()
        self.compare_events()
        self.compare_redemptions()
        self.compare_merchants()
        self.report.checked = dict(sorted(self.checked.items()))
