// Settlement: per merchant issued / redeemed / clawed back and the net position for a
// block range or a date range, valued at the point value in force at each event.

import { api } from "./api.js";
import { $, cell, el, fmt, money, replaceRows, when } from "./dom.js";

export class SettlementView {
  constructor() {
    const form = $("settlement-form");
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      this.load();
    });
    for (const radio of form.querySelectorAll("input[name=mode]")) {
      radio.addEventListener("change", () => this.showMode());
    }
  }

  mode() {
    return $("settlement-form").querySelector("input[name=mode]:checked").value;
  }

  showMode() {
    const byDates = this.mode() === "dates";
    for (const node of document.querySelectorAll(".by-blocks")) node.hidden = byDates;
    for (const node of document.querySelectorAll(".by-dates")) node.hidden = !byDates;
  }

  params() {
    if (this.mode() === "dates") {
      return { since: $("settle-since").value, until: $("settle-until").value };
    }
    return { from_block: $("settle-from").value, to_block: $("settle-to").value };
  }

  async load() {
    const summary = $("settlement-summary");
    let data;
    try {
      data = await api.settlement(this.params());
    } catch (error) {
      summary.textContent = `Cannot compute this range: ${error.message}`;
      summary.className = "summary bad";
      replaceRows($("settlement-table").tBodies[0], [], "—", 8);
      return;
    }
    if (!$("settle-from").value) $("settle-from").placeholder = String(data.from_block);
    if (!$("settle-to").value) $("settle-to").placeholder = String(data.to_block);
    const currency = data.currency || "";
    const span = data.from_time ? ` (${when(data.from_time)} – ${when(data.to_time)} UTC)` : "";
    summary.className = "summary";
    summary.textContent =
      `Blocks ${fmt(data.from_block)} – ${fmt(data.to_block)}${span}; point value now ` +
      `${money(data.point_value_micros, currency)}; points outstanding from the range: ${fmt(data.outstanding)}`;
    const rows = data.merchants.map((m) =>
      el(
        "tr",
        { "data-merchant": m.merchant },
        cell(String(m.merchant), "num"),
        cell(m.name),
        cell(fmt(m.issued), "num"),
        cell(fmt(m.redeemed), "num"),
        cell(fmt(m.clawed_back), "num"),
        cell(fmt(m.net), "num"),
        cell(money(m.net_value_micros, currency), "num"),
        cell(el("span", { class: `position ${m.net_value_micros > 0 ? "owes" : m.net_value_micros < 0 ? "owed" : ""}` },
          m.net_value_micros ? `${m.position} ${m.amount}` : m.position)),
      ),
    );
    replaceRows($("settlement-table").tBodies[0], rows, "No merchant in this range.", 8);
  }
}
