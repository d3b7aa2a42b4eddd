"""``pointsnet merchant …`` and ``pointsnet member …``: operator actions on partners, members."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from chain.cli import app, console
from chain.errors import ChainError
from gateway.cli.common import fail, open_context
from gateway.errors import GatewayError

merchant_app = typer.Typer(help="Register and manage partner merchants.", no_args_is_help=True)
app.add_typer(merchant_app, name="merchant")
member_app = typer.Typer(help="Operator actions on members.", no_args_is_help=True)
app.add_typer(member_app, name="member")


# ---------------------------------------------------------------- merchants


@merchant_app.command("add")
def merchant_add(
    name: str,
    currency: Annotated[str, typer.Option(help="ISO-4217 home currency")] = "USD",
    cap: Annotated[int, typer.Option(help="points mintable per cap period")] = 10**12,
    json_out: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Schedule a merchant's admission through the timelock and print its API key once.

    Without a timelock delay the merchant is admitted at once; otherwise the admission
    is pending until `pointsnet merchant admit-ready` runs after the delay."""
    from gateway.services.merchants import admit_ready, schedule_admission

    context = open_context()
    try:
        pending = schedule_admission(context, name, currency, cap)
        admitted = admit_ready(context)
    except (ChainError, GatewayError) as exc:
        raise typer.Exit(fail(exc)) from exc
    merchant_id = next((m.id for m in admitted if m.signer_address == pending.signer), None)
    ready = datetime.fromtimestamp(pending.ready_at, UTC).isoformat()
    record = {"id": merchant_id, "name": pending.name, "currency": pending.currency,
              "api_key": pending.api_key, "signer": pending.signer,
              "status": "scheduled" if merchant_id is None else "admitted",
              "operation_id": pending.operation_id, "ready_at": ready}  # fmt: skip
    if json_out:
        sys.stdout.write(json.dumps(record) + "\n")
        return
    if merchant_id is None:
        console.print(
            f"merchant [bold]{pending.name}[/bold]: admission scheduled (timelock operation "
            f"{pending.operation_id}); it becomes executable at {ready}. Run "
            "`pointsnet merchant admit-ready` after that time to admit it."
        )
        console.print(f"API key (shown once, usable once admitted): [bold]{pending.api_key}[/bold]")
        return
    console.print(f"merchant [bold]{pending.name}[/bold] admitted with id {merchant_id}")
    console.print(f"API key (shown once): [bold]{pending.api_key}[/bold]")


@merchant_app.command("admit-ready")
def merchant_admit_ready(
    json_out: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Execute every scheduled admission whose timelock delay has passed and activate its
    merchant (safe to run again, e.g. from cron: nothing is executed twice)."""
    from gateway.services.merchants import admit_ready, pending_admissions

    context = open_context()
    try:
        admitted = admit_ready(context)
    except (ChainError, GatewayError) as exc:
        raise typer.Exit(fail(exc)) from exc
    waiting = pending_admissions(context)
    if json_out:
        record = {
            "admitted": [{"id": m.id, "name": m.name} for m in admitted],
            "waiting": [{"name": a.name, "operation_id": a.operation_id,
                         "ready_at": datetime.fromtimestamp(a.ready_at, UTC).isoformat()}
                        for a in waiting],
        }  # fmt: skip
        sys.stdout.write(json.dumps(record) + "\n")
        return
    for merchant in admitted:
        console.print(f"merchant [bold]{merchant.name}[/bold] admitted with id {merchant.id}")
    for admission in waiting:
        ready = datetime.fromtimestamp(admission.ready_at, UTC).isoformat()
        console.print(f"merchant {admission.name}: waiting for the timelock until {ready}")
    if not admitted and not waiting:
        console.print("no admission scheduled")


@merchant_app.command("list")
def merchant_list() -> None:
    """List merchants (API keys are never shown: only their prefix)."""
    from gateway.services.merchants import list_merchants

    table = Table(title="merchants")
    for column in ("id", "name", "currency", "status", "key prefix", "rule version", "next seq"):
        table.add_column(column)
    for m in list_merchants(open_context()):
        table.add_row(str(m.id), m.name, m.currency, m.status, m.api_key_prefix + "...",
                      str(m.rule_version), str(m.next_seq))  # fmt: skip
    console.print(table)


@merchant_app.command("rotate-key")
def merchant_rotate_key(merchant_id: int) -> None:
    """Issue a new API key; the old one stops working at once."""
    from gateway.services.merchants import rotate_key

    try:
        key = rotate_key(open_context(), merchant_id)
    except GatewayError as exc:
        raise typer.Exit(fail(exc)) from exc
    console.print(f"new API key (shown once): [bold]{key}[/bold]")


@merchant_app.command("suspend")
def merchant_suspend(merchant_id: int) -> None:
    """Suspend a merchant on chain (guardian) and in the gateway."""
    from gateway.services.merchants import suspend

    try:
        suspend(open_context(), merchant_id)
    except (ChainError, GatewayError) as exc:
        raise typer.Exit(fail(exc)) from exc
    console.print(f"merchant {merchant_id} suspended")


@merchant_app.command("export")
def merchant_export(
    merchant_id: Annotated[int | None, typer.Argument(help="the merchant's id")] = None,
    all_merchants: Annotated[bool, typer.Option("--all", help="every merchant's lines")] = False,
    out: Annotated[Path, typer.Option("--out", help="the ndjson file to write")] = Path(
        "disclosure.ndjson"
    ),
) -> None:
    """Write disclosure lines (format 1) of one merchant, or of all, to an ndjson file:
    every confirmed issuance and clawback with its input, the input's hash, its Merkle
    path and its batch's root, as `GET /v1/events/export` streams them and
    `pointsnet audit recompute --disclosure FILE` checks them."""
    from gateway.services import disclosures

    if (merchant_id is not None) == all_merchants:
        raise typer.BadParameter("give either a merchant id or --all")
    context = open_context()
    scope = disclosures.Scope(merchant_id=merchant_id)
    records = disclosures.lines(context.sessions, disclosures.Network.of(context), scope)
    count = 0
    with out.open("wb") as handle:
        for chunk in disclosures.ndjson(records):
            handle.write(chunk)
            count += 1
    console.print(f"{count} disclosure lines written to {out}")


# ---------------------------------------------------------------- members


def _set_frozen(merchant_id: int, customer_id: str, frozen: bool) -> None:
    from gateway.db import transaction
    from gateway.services.members import set_frozen

    context = open_context()
    try:
        with transaction(context.sessions) as session:
            member = set_frozen(session, merchant_id, customer_id, frozen)
            address = member.address
    except GatewayError as exc:
        raise typer.Exit(fail(exc)) from exc
    console.print(f"member {address} {'frozen' if frozen else 'unfrozen'}")


@member_app.command("freeze")
def member_freeze(merchant_id: int, customer_id: str) -> None:
    """Freeze the member behind a merchant's customer: its events are refused (member_frozen)."""
    _set_frozen(merchant_id, customer_id, True)


@member_app.command("unfreeze")
def member_unfreeze(merchant_id: int, customer_id: str) -> None:
    """Lift a freeze."""
    _set_frozen(merchant_id, customer_id, False)
