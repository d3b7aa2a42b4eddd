"""Reconcile the gateway's database with the chain, entry by entry.

Responsibilities:

- fix the block to compare at first, then read the database (one read transaction),
  then the chain's history up to that block (:class:`chain.audit.AuditLog`) and the
  hub's counters at it, so that nothing the gateway sends meanwhile shows up as a
  difference;
- every confirmed chain op against its on-chain effect, by key: issuance
  (merchant, seq) with member, amount, ref and rule version; clawback (merchant, seq)
  with member, original seq, requested and burned; redemption (member, nonce) with
  merchant, amount and ref; transfer (sender, nonce) with recipient and amount; badge
  award, tier change, rule-set publication; each with its transaction hash and block;
- every on-chain issuance, clawback, redemption, transfer, badge award, tier change and
  rule-set publication against the database: one in a transaction the gateway stored,
  or sent from one of its keys, must have its op (others are listed as foreign);
- confirmed transactions are on chain in the block recorded; confirmed events and
  redemptions have their on-chain effect, tx hash and block; per merchant, the
  database's totals (plus what was relayed by others) equal the hub's counters, and the
  merchant's signer, status, cap, rule version and sequence counter agree.

Ops sent but not yet confirmed by the worker are listed as in flight, not as
differences. ``pointsnet audit reconcile`` prints the report and exits 1 on any
difference.

Modules, in the order a reconciliation runs: :mod:`.snapshot` (the database,
read in one transaction), :mod:`.matching` (op and record keys),
:mod:`.ops` (ops <-> chain records), :mod:`.settlement` (transactions, events,
redemptions), :mod:`.merchants` (totals and settings), :mod:`.compare`
(:func:`reconcile`, which runs them), :mod:`.report` and :mod:`.render`.
"""

from gateway.services.reconcile.compare import Reconciler, reconcile
from gateway.services.reconcile.render import render
from gateway.services.reconcile.report import Difference, MerchantTotals, ReconcileReport

__all__ = ["Difference", "MerchantTotals", "ReconcileReport", "Reconciler", "reconcile", "render"]
