// Rule-change timeline with the time each change takes effect.

import { api } from "./api.js";
import { $, cell, el, fmt, mono, replaceRows, when } from "./dom.js";

export async function loadTimeline() {
  const data = await api.timeline();
  const rows = data.data
    .slice()
    .reverse()
    .map((entry) => {
      const pending = entry.effect.startsWith("pending") || entry.effect.startsWith("ready");
      let effect = "never";
      if (entry.takes_effect) effect = `${pending ? "not before " : ""}${when(entry.takes_effect)}`;
      return el(
        "tr",
        { class: pending ? "upcoming" : entry.takes_effect ? "" : "muted", "data-kind": entry.kind },
        cell(when(entry.time), "nowrap"),
        cell(fmt(entry.block), "num"),
        cell(entry.subject.startsWith("0x") ? mono(entry.subject) : entry.subject),
        cell(entry.description, "wrap"),
        cell(effect, "nowrap"),
        cell(entry.status || entry.effect),
      );
    });
  replaceRows($("timeline-table").tBodies[0], rows, "No rule change yet.", 6);
}
