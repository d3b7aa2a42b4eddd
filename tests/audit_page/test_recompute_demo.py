"""Issue 15's done-when: ``pointsnet audit recompute`` confirms every issuance of the demo
network from a disclosure file.

The network is built as ``pointsnet demo`` (``make run``) builds it: its three partners
(:func:`gateway.cli.demo.ensure_demo`) and its traffic
(:func:`gateway.cli.demo_traffic.run_demo_traffic`: purchases in three home currencies and
in USD and GBP, a tier reached, activities, a check-in streak, a referral with the
inviter's bonus, a held event released, points spent at another partner, full and partial
refunds, a shortfall netted), on a devnet of its own with the devnet's rule notice, on
SQLite and PostgreSQL.  Each partner exports its lines with ``GET /v1/events/export``;
``audit recompute --require-all`` on all of them exits 0 with every rule issuance and
clawback on chain confirmed, and one changed input is named; ``--fx-table`` names the
inputs converted at another rate than the auditor's.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from eth_utils import keccak
from factories import database_for
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from bench.stack import Stack
from chain.audit import AuditLog, Clawback, Issuance, Rpc
from gateway.app import create_app
from gateway.cli import app
from gateway.cli.demo import ensure_demo
from gateway.cli.demo_traffic import DEMO_START, TrafficResult, run_demo_traffic
from gateway.models import Event
from gateway.rules.fx import default_fx_table
from gateway.schemas import EventType

runner = CliRunner()


@dataclass
class Demo:
    stack: Stack
    partners: list[dict[str, Any]]
    traffic: TrafficResult
    lines: list[dict[str, Any]]  # every partner's export, in partner order

    @property
    def target(self) -> list[str]:
        context = self.stack.context
        assert context is not None
        return ["--rpc-url", context.settings.rpc_url, "--hub", context.link.network.hub.address]


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def demo(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Demo]:
    # The devnet profile's one-minute rule notice, as `make run` deploys with.
    with (
        database_for(request.param) as url,
        Stack(
            tmp_path_factory.mktemp("demo"),
            merchants=(),
            settings={"rule_notice_seconds": 60, "database_url": url},
        ) as stack,
    ):
        context = stack.context
        assert context is not None
        partners = ensure_demo(context)
        traffic = run_demo_traffic(context, partners)
        lines: list[dict[str, Any]] = []
        with TestClient(create_app(context)) as client:
            for partner in partners:
                response = client.get(
                    "/v1/events/export", headers={"Authorization": f"Bearer {partner['api_key']}"}
                )
                assert response.status_code == 200, response.text
                lines += [json.loads(x) for x in response.text.splitlines() if x.strip()]
        yield Demo(stack, partners, traffic, lines)


def recompute(
    demo: Demo, lines: list[dict[str, Any]], path: Path, *args: str
) -> tuple[int, dict[str, Any]]:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    result = runner.invoke(
        app,
        ["audit", "recompute", *demo.target, "--disclosure", str(path), "--require-all",
         "--json", *args],
    )  # fmt: skip
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, json.loads(result.stdout)


def test_the_demo_traffic_has_every_kind_of_event(demo: Demo) -> None:
    assert demo.traffic.refused == []
    assert demo.traffic.released == len(demo.partners)  # one held event at each
    assert demo.traffic.redeemed == len(demo.partners)  # one customer of each spends elsewhere
    context = demo.stack.context
    assert context is not None
    with context.sessions() as session:
        rows = session.execute(select(Event.merchant_id, Event.type, Event.status)).all()
    assert {status for _m, _t, status in rows} == {"confirmed"}
    for partner in demo.partners:
        kinds = {kind for merchant, kind, _s in rows if merchant == partner["id"]}
        assert kinds == set(EventType.__args__), partner  # type: ignore[attr-defined]
    parts = Counter((line["kind"], line["part"]) for line in demo.lines)
    assert set(parts) == {
        ("issue", "points"), ("issue", "referral"), ("clawback", "clawback"),
        ("clawback", "referral-clawback"),
    }  # fmt: skip
    inputs = [json.loads(line["input"]) for line in demo.lines]
    rates = {i["fx"]["currency"] for i in inputs if i.get("fx") is not None}
    assert rates == {"EUR", "JPY", "HKD", "GBP"}
    assert any(i["member"]["current_tier"] >= 1 for i in inputs if "member" in i)
    # Points spent, then refunded: the shortfall is netted from a later issuance.
    assert any(i.get("netted", 0) > 0 for i in inputs)


def test_recompute_confirms_every_issuance_of_the_demo(demo: Demo, tmp_path: Path) -> None:
    code, report = recompute(demo, demo.lines, tmp_path / "demo.ndjson")
    assert (code, report["ok"], report["findings"]) == (0, True, []), report
    # Every rule issuance and clawback the chain holds is a line that passed.
    context = demo.stack.context
    assert context is not None
    history = AuditLog(Rpc(context.settings.rpc_url), context.link.network.hub.address).read()
    on_chain = Counter(
        r.merchant
        for r in history.records
        if (isinstance(r, Issuance) and r.mint_kind == 0) or isinstance(r, Clawback)
    )
    assert len(demo.lines) == sum(on_chain.values()) == 80  # README.md quotes the 80
    assert report["merchants"] == [
        {"merchant": m, "checked": n, "passed": n} for m, n in sorted(on_chain.items())
    ]
    assert {p["id"] for p in demo.partners} == set(on_chain)


def test_a_tampered_line_fails_recompute_and_is_named(demo: Demo, tmp_path: Path) -> None:
    lines = [dict(line) for line in demo.lines]
    target = next(x for x in lines if x["kind"] == "clawback" and x["part"] == "clawback")
    text = target["input"]
    tampered = text.replace('"already_clawed_back":0', '"already_clawed_back":1', 1)
    assert tampered != text
    target["input"] = tampered
    target["input_hash"] = "0x" + keccak(text=tampered).hex()
    code, report = recompute(demo, lines, tmp_path / "tampered.ndjson")
    assert code == 1
    assert [(f["code"], f["ref"]) for f in report["findings"] if f["error"]] == [
        ("not_committed", target["ref"])
    ]
    assert report["errors"] == {"not_committed": 1}


def _fx_table(path: Path, unit: str = "USD", **rates: str) -> Path:
    """The seed rates (under an auditor's own source) with ``rates`` changed from the
    demo's first day; a rate given as "" is left out."""
    table = default_fx_table()
    entries = [
        {"currency": r.currency, "rate": str(r.rate), "source": "auditor", "as_of": str(r.as_of)}
        for r in table.rates
        if rates.get(r.currency) != ""
    ]
    entries += [
        {"currency": c, "rate": v, "source": "auditor", "as_of": DEMO_START.date().isoformat()}
        for c, v in rates.items()
        if v
    ]
    path.write_text(json.dumps({"unit": unit, "rates": entries}))
    return path


def _converted(demo: Demo, currency: str | None = None) -> set[str]:
    """Refs of the lines whose input carries a rate (of ``currency``)."""
    refs = set()
    for line in demo.lines:
        fx = json.loads(line["input"]).get("fx")
        if fx is not None and currency in (None, fx["currency"]):
            refs.add(line["ref"])
    return refs


def _fx_findings(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["ref"]: f for f in report["findings"] if f["code"] == "fx_rate_differs"}


def test_the_auditors_fx_table_names_every_other_rate(demo: Demo, tmp_path: Path) -> None:
    disclosure = tmp_path / "demo.ndjson"
    same = _fx_table(tmp_path / "same.json")  # the same figures under another source
    code, report = recompute(demo, demo.lines, disclosure, "--fx-table", str(same))
    assert (code, report["findings"]) == (0, []), report

    eur = _fx_table(tmp_path / "eur.json", EUR="1.10")
    code, report = recompute(demo, demo.lines, disclosure, "--fx-table", str(eur))
    assert (code, report["ok"]) == (0, True)  # a notice: the lines still check out
    found = _fx_findings(report)
    assert set(found) == _converted(demo, "EUR") != set()
    assert all(not f["error"] and "1.0350" in f["message"] for f in found.values())
    # ava's first order at Lumière: 120.00 EUR at 1.10 is 132 points, +100 first order.
    first = next(x for x in demo.lines if '"id":"ava-1"' in x["input"] and x["kind"] == "issue")
    assert found[first["ref"]]["message"].endswith("the engine gives 232 points")
    assert found[first["ref"]]["merchant"] == demo.partners[0]["id"]

    code, report = recompute(demo, demo.lines, disclosure, "--fx-table", str(eur), "--strict-fx")
    assert code == 1
    assert report["errors"] == {"fx_rate_differs": len(_converted(demo, "EUR"))}

    no_jpy = _fx_table(tmp_path / "no-jpy.json", JPY="")
    code, report = recompute(demo, demo.lines, disclosure, "--fx-table", str(no_jpy))
    found = _fx_findings(report)
    assert (code, set(found)) == (0, _converted(demo, "JPY"))
    assert all("no JPY rate" in f["message"] for f in found.values())

    in_eur = _fx_table(tmp_path / "in-eur.json", unit="EUR", EUR="")
    code, report = recompute(demo, demo.lines, disclosure, "--fx-table", str(in_eur))
    assert (code, set(_fx_findings(report))) == (0, _converted(demo))


def test_an_unreadable_fx_table_stops_recompute(demo: Demo, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"unit": "USD", "rates": [{"currency": "EUR", "rate": "-1"}]}))
    disclosure = tmp_path / "demo.ndjson"
    disclosure.write_text("".join(json.dumps(line) + "\n" for line in demo.lines))
    result = runner.invoke(
        app,
        ["audit", "recompute", *demo.target, "--disclosure", str(disclosure), "--fx-table",
         str(bad)],
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "is not an FX table: rates.0.rate" in " ".join(result.output.split())
    result = runner.invoke(
        app, ["audit", "recompute", *demo.target, "--disclosure", str(disclosure), "--strict-fx"]
    )
    assert result.exit_code == 2 and "--strict-fx needs --fx-table" in result.output


def test_a_restart_of_the_demo_adds_nothing(demo: Demo) -> None:
    """``pointsnet demo`` runs its traffic at every start: fixed keys and bodies replay."""
    context = demo.stack.context
    assert context is not None
    with context.sessions() as session:
        before = session.execute(select(Event.id, Event.status)).all()
    again = run_demo_traffic(context, demo.partners)
    assert (again.refused, again.released, again.redeemed) == ([], 0, 0)
    assert sum(again.statuses.values()) == sum(demo.traffic.statuses.values())
    with context.sessions() as session:
        assert session.execute(select(Event.id, Event.status)).all() == before
