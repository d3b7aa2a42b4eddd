"""``pointsnet audit recompute``: each disclosed issuance checked against the chain.

A disclosure file (:mod:`gateway.services.disclosures`: the merchant's export or a
member's own lines) gives, per issue or clawback op, the exact input the engine saw,
its hash and the Merkle path to the root its batch logged. With nothing but an RPC
endpoint and the hub address, :mod:`.chain` reads what the chain says (the batches'
roots and mints, the published rule texts and when each took effect, block times),
:mod:`.checks` names every difference (the input is in the committed root, the rule
version was in effect when the event was accepted, the engine run on the input under
the published rules yields exactly what was minted or clawed back) and :mod:`.report`
sums them up per merchant. No gateway settings or database are needed.
"""

from gateway.services.recompute.checks import Finding, check_lines
from gateway.services.recompute.disclosure import DisclosureLine, parse_disclosures
from gateway.services.recompute.report import RecomputeReport, build_report

__all__ = [
    "DisclosureLine",
    "Finding",
    "RecomputeReport",
    "build_report",
    "check_lines",
    "parse_disclosures",
]
