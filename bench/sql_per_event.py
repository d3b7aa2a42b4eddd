"""The SQL one accepted event costs, statement by statement (evidence for the e2e bench).

Usage: ``.venv/bin/python -m bench.sql_per_event [--show]``

Starts a throwaway anvil and gateway in process (:mod:`bench.stack`, as the gateway tests do),
warms it up with a few events, then posts one event of each kind through
``POST /v1/events`` and prints, per kind, the statements executed on the
request's thread(s), grouped by the gateway function that issued them, with
the number of write transactions (``BEGIN IMMEDIATE``) and commits.  The
outbox worker is not running, so only the accept path is counted.
"""

from __future__ import annotations

import sys
import threading
import traceback
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from sqlalchemy import event

from bench.inprocess import InProcessGateway, purchase
from bench.stack import TEST_SETTINGS, Stack


def _caller() -> str:
    """The innermost gateway function on the stack (who issued the statement)."""
    for frame in reversed(traceback.extract_stack()[:-2]):
        if "/gateway/" in frame.filename:
            return f"{Path(frame.filename).stem}.{frame.name}"
    return "?"


def main(argv: list[str]) -> int:
    show = "--show" in argv
    out = sys.stdout
    with Stack(settings=TEST_SETTINGS) as stack:
        gw = InProcessGateway.open(stack)
        try:
            gw.settle()  # publish the first rule sets
            statements: list[tuple[str, str]] = []
            recording = threading.Event()

            @event.listens_for(gw.context.engine, "before_cursor_execute")
            def _record(_conn: Any, _cursor: Any, sql: str, *_rest: Any) -> None:
                if recording.is_set() and threading.current_thread().name != "outbox-worker":
                    statements.append((_caller(), sql.split("\n")[0][:90]))

            def post(body: dict[str, Any]) -> dict[str, Any]:
                response = gw.client.post("/v1/events", json=body, headers=gw.headers())
                assert response.status_code == 202, response.text
                return dict(response.json())

            # Warm up: a customer with an order, so "existing" paths are taken.
            post(purchase("warm", "W-1"))
            post(purchase("alice", "A-1"))
            gw.settle()
            kinds: dict[str, dict[str, Any]] = {
                "purchase (new member)": purchase(f"new-{uuid.uuid4().hex[:6]}", "N-1"),
                "purchase (existing member)": purchase("alice", "A-2"),
                "check-in (existing)": {"type": "check_in", "customer_id": "alice",
                                        "occurred_at": "2026-11-22T10:00:00Z"},
                "review (existing)": {"type": "review", "customer_id": "alice",
                                      "occurred_at": "2026-11-22T11:00:00Z"},
                "refund (existing)": {"type": "refund", "customer_id": "alice",
                                      "occurred_at": "2026-11-23T10:00:00Z",
                                      "refund": {"order_id": "A-1"}},
            }  # fmt: skip
            for label, body in kinds.items():
                statements.clear()
                recording.set()
                post(body)
                recording.clear()
                begins = sum(1 for _c, sql in statements if sql.startswith("BEGIN IMMEDIATE"))
                out.write(f"\n{label}: {len(statements)} statements, {begins} write transactions\n")
                by_caller = Counter(c for c, _s in statements)
                for caller, n in by_caller.most_common():
                    out.write(f"  {n:3d}  {caller}\n")
                if show:
                    for caller, sql in statements:
                        out.write(f"      {caller:40s} {sql}\n")
        finally:
            gw.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
