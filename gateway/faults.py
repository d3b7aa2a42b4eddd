"""Named fault points for crash and chaos tests.

``POINTSNET_FAULT=<point>`` makes the process SIGKILL itself the first time it
reaches ``<point>`` (a real, unclean death: no cleanup, no flush).  Unset, a
fault point costs one dictionary lookup.  Points in the outbox worker:

- ``after_store``: a signed transaction is committed to the database, not yet broadcast;
- ``after_broadcast``: the node has the transaction, the database still says "signed";
- ``before_receipt``: the transaction is mined, the database does not know yet.
"""

from __future__ import annotations

import os
import signal

POINTS = ("after_store", "after_broadcast", "before_receipt")


def fault_point(name: str) -> None:
    """Die here (SIGKILL) if ``POINTSNET_FAULT`` names this point."""
    if os.environ.get("POINTSNET_FAULT") == name:
        os.kill(os.getpid(), signal.SIGKILL)
