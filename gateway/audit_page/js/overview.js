// Overview: supply, members, merchants, the invariant's checks, points per day.

import { api } from "./api.js";
import { groupedBarChart, legend } from "./charts.js";
import { $, cell, el, fmt, mono, replaceRows, setText, when } from "./dom.js";

const SERIES = [
  { key: "issued", label: "issued", cls: "s-issued" },
  { key: "redeemed", label: "redeemed", cls: "s-redeemed" },
  { key: "clawed_back", label: "clawed back", cls: "s-clawed" },
];

export async function loadOverview(state) {
  const data = await api.overview();
  state.overview = data;
  state.merchantNames = new Map(data.merchants.map((m) => [m.id, m.name]));

  const net = data.network;
  $("net-hub").replaceChildren(mono(net.hub, 8, 6));
  setText("net-block", fmt(data.block));
  setText("net-time", when(data.time));
  const status = $("net-status");
  status.textContent = data.ok ? "consistent" : "attention";
  status.className = `pill ${data.ok ? "ok" : "bad"}`;

  setText("total-supply", fmt(data.total_supply));
  setText("members", fmt(data.members));
  setText("holders", `${fmt(data.holders)} holding points`);
  setText("merchant-count", fmt(data.merchant_count));
  setText("point-value", data.point_value.display);
  const supply = data.supply;
  const invariant = $("invariant");
  invariant.textContent = supply.ok ? "holds" : "BROKEN";
  invariant.className = `value ${supply.ok ? "good" : "bad"}`;
  setText(
    "invariant-detail",
    `issued ${fmt(supply.issued)} − redeemed ${fmt(supply.redeemed)} − clawed back ${fmt(supply.clawed_back)}`,
  );
  const anomalyCount = $("anomaly-count");
  anomalyCount.textContent = fmt(data.anomalies.length);
  anomalyCount.className = `value ${data.anomalies.length ? "bad" : "good"}`;

  drawDaily(data.daily);
  drawMerchants(data.merchants);
  drawChecks(supply, data.anomalies);
}

function drawDaily(daily) {
  const box = $("daily-chart");
  $("daily-legend").replaceChildren(legend(SERIES));
  if (!daily.length) {
    box.replaceChildren(el("p", { class: "summary" }, "No points issued or redeemed yet."));
    return;
  }
  const points = daily.map((d) => ({ label: d.date.slice(5), values: d }));
  box.replaceChildren(groupedBarChart(points, SERIES));
}

function drawMerchants(merchants) {
  const rows = merchants.map((m) =>
    el(
      "tr",
      {},
      cell(String(m.id), "num"),
      cell(m.name),
      cell(el("span", { class: `pill ${m.status === "active" ? "ok" : "bad"}` }, m.status || "?")),
      cell(fmt(m.issued ?? 0), "num"),
      cell(fmt(m.redeemed ?? 0), "num"),
      cell(fmt(m.clawed_back ?? 0), "num"),
      cell(m.rule_version ? `v${m.rule_version}` : "—", "num"),
    ),
  );
  replaceRows($("merchant-table").tBodies[0], rows, "No merchant admitted yet.", 7);
}

function drawChecks(supply, anomalies) {
  const list = $("supply-checks");
  list.replaceChildren(
    ...supply.checks.map((c) =>
      el(
        "li",
        { class: c.ok ? "ok" : "bad" },
        el("span", { class: "mark" }, c.ok ? "✓" : "✗"),
        ` ${c.name}: ${c.left_label} ${fmt(c.left)} ${c.ok ? "=" : "≠"} ${c.right_label} ${fmt(c.right)}`,
      ),
    ),
  );
  const box = $("anomalies");
  if (!anomalies.length) {
    box.replaceChildren(el("p", { class: "summary good" }, "No anomaly in the history."));
    return;
  }
  box.replaceChildren(
    el("h3", {}, `Anomalies (${anomalies.length})`),
    el("ul", { class: "checks" }, ...anomalies.map((a) =>
      el("li", { class: "bad" }, el("span", { class: "mark" }, "!"), ` [${a.kind}] ${a.message}`),
    )),
  );
}
