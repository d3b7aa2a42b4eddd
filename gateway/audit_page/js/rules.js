// Rule sets: each merchant's published versions (GET /v1/audit/rules, read from the
// hub's RuleSetPublished logs), when each takes effect, the diff between consecutive
// versions, and the published text with its hash recomputed in this browser.

import { api } from "./api.js";
import { $, cell, el, fmt, mono, replaceRows, when } from "./dom.js";

const STATUS_LABEL = { in_effect: "in effect", pending: "pending", superseded: "superseded" };
const OP_CLASS = { "+": "added", "-": "removed", "~": "changed" };

let keccakText = null;

/** keccak256 of a UTF-8 text as 0x-hex, with the wallet's pinned ethers (null if absent). */
async function keccak(text) {
  if (keccakText === null) {
    try {
      const { ethers } = await import("/wallet/vendor/ethers.js");
      keccakText = (value) => ethers.keccak256(ethers.toUtf8Bytes(value));
    } catch {
      keccakText = () => null;
    }
  }
  return keccakText(text);
}

export class RulesView {
  constructor() {
    this.data = null;
    $("rules-merchant").addEventListener("change", () => this.render());
  }

  async load() {
    this.data = await api.rules();
    const select = $("rules-merchant");
    const chosen = select.value;
    select.replaceChildren(
      ...this.data.merchants.map((m) =>
        el("option", { value: String(m.merchant) }, `${m.merchant} ${m.name}`),
      ),
    );
    if (chosen && this.data.merchants.some((m) => String(m.merchant) === chosen)) select.value = chosen;
    const notice = this.data.notice_seconds;
    const problems = this.data.problems.length;
    const summary = $("rules-summary");
    summary.textContent =
      `Rule-change notice: ${notice === null ? "not published" : `${fmt(notice)} s`}. ` +
      (problems
        ? `${problems} published text(s) fail their checks.`
        : "Every published text hashes to its published hash and is canonical JSON.");
    summary.className = `summary ${problems ? "bad" : "good"}`;
    this.render();
  }

  merchant() {
    const id = $("rules-merchant").value;
    return this.data.merchants.find((m) => String(m.merchant) === id) || null;
  }

  render() {
    const merchant = this.data && this.merchant();
    const versions = merchant ? merchant.versions : [];
    const rows = versions
      .slice()
      .reverse()
      .map((v) =>
        el(
          "tr",
          {
            class: v.problems.length ? "bad-row" : v.status === "pending" ? "upcoming" : v.status === "superseded" ? "muted" : "",
            "data-version": v.version,
          },
          cell(`v${v.version}`, "num"),
          cell(when(v.time), "nowrap"),
          cell(fmt(v.block), "num"),
          cell(when(v.effective_at), "nowrap"),
          cell(v.superseded_at ? when(v.superseded_at) : "", "nowrap"),
          cell(STATUS_LABEL[v.status] || v.status),
          cell(`${fmt(v.issued.points)} in ${fmt(v.issued.events)}`, "num"),
          cell(mono(v.hash, 10, 8)),
          cell(checks(v)),
        ),
      );
    replaceRows($("rules-table").tBodies[0], rows, "No rule set published yet.", 9);
    const steps = $("rules-diffs");
    steps.replaceChildren(...versions.slice().reverse().map((v) => step(v)));
  }
}

function checks(v) {
  if (!v.problems.length) return el("span", { class: "pill ok" }, "hash ok, canonical");
  return el("span", { class: "pill bad", title: v.problems.map((p) => p.message).join("; ") },
    v.problems.map((p) => p.code).join(", "));
}

function step(v) {
  const title = v.version === 1 ? "v1: first version" : `v${v.version - 1} → v${v.version}`;
  let body;
  if (v.diff === null && v.version > 1) body = el("p", { class: "muted" }, "No diff: a text on either side is not readable JSON.");
  else if (v.diff === null) body = el("p", { class: "muted" }, `In effect from ${when(v.effective_at)}.`);
  else if (!v.diff.length) body = el("p", { class: "muted" }, "No change in the rules' content.");
  else body = el("ul", { class: "diff" }, v.diff.map((line) => el("li", { class: OP_CLASS[line.op] || "" }, line.text)));
  return el("div", { class: "rule-step", "data-version": v.version },
    el("h3", {}, title, " ", el("small", {}, `takes effect ${when(v.effective_at)}`)),
    body,
    textViewer(v),
  );
}

function textViewer(v) {
  const pre = el("pre", { class: "rule-text", hidden: true });
  const verdict = el("p", { class: "summary", "aria-live": "polite" });
  const button = el("button", { type: "button", class: "secondary" }, "View JSON");
  button.addEventListener("click", async () => {
    if (pre.hidden && !pre.textContent) {
      let shown = v.text;
      try {
        shown = JSON.stringify(JSON.parse(v.text), null, 2);
      } catch {
        // not JSON: shown as published
      }
      pre.textContent = shown;
      const computed = await keccak(v.text);
      if (computed === null) {
        verdict.textContent = `keccak256 on the server: ${v.computed_hash}; published: ${v.hash}.`;
      } else if (computed === v.hash) {
        verdict.textContent = `keccak256 computed in this browser: ${computed} = the published hash.`;
        verdict.className = "summary good hash-check";
      } else {
        verdict.textContent = `keccak256 computed in this browser: ${computed} ≠ the published hash ${v.hash}.`;
        verdict.className = "summary bad hash-check";
      }
    }
    pre.hidden = !pre.hidden;
    button.textContent = pre.hidden ? "View JSON" : "Hide JSON";
  });
  return el("div", { class: "rule-json" }, button, verdict, pre);
}
