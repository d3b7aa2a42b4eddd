// The audit page: wires the sections to the read-only /v1/audit API.

import { $ } from "./dom.js";
import { HistoryView } from "./history.js";
import { loadOverview } from "./overview.js";
import { RulesView } from "./rules.js";
import { SettlementView } from "./settlement.js";
import { loadTimeline } from "./timeline.js";
import { VerificationView } from "./verification.js";

const state = { overview: null, merchantNames: new Map() };

function report(error) {
  const box = $("error");
  box.hidden = false;
  box.textContent = `Could not load part of the audit: ${error.message}`;
}

async function start() {
  const history = new HistoryView(state);
  const settlement = new SettlementView();
  const verification = new VerificationView();
  const rules = new RulesView();
  const params = new URLSearchParams(window.location.search);
  const searched = history.fromUrl(params);

  // The overview first: it warms the server's history cache and names the merchants.
  await loadOverview(state).catch(report);
  await Promise.all([
    (searched ? history.search() : history.load()).catch(report),
    settlement.load().catch(report),
    loadTimeline().catch(report),
    rules.load().catch(report),
    verification.load().catch(report),
  ]);
  if (searched) $("history").scrollIntoView();
  document.body.dataset.ready = "true";
}

start();
