// History: every decoded log, searchable by member address, tx hash, merchant or
// sequence number; paged; the same filters download as CSV.
//
// One row per value change. A change of points is stated by more than one log: an
// issuance by its mint and its PointsIssued batch, a relayed transfer by the token's
// Transfer and the hub's PointsTransferred, a redemption or clawback by the hub's event
// and the token's burn (and a clawback batch's input commitment, after its clawbacks).
// The record that stands for the change gets the row (and its
// amount, so that the Amount column adds up); the others are listed as its details,
// read from the whole transaction. The same rule marks the CSV's value_change column
// (chain/audit/report.py VALUE_CHANGE_KINDS / VALUE_CHANGE_PARTS).

import { api } from "./api.js";
import { $, cell, el, fmt, mono, replaceRows, when } from "./dom.js";

const PAGE = 25;
const KIND_LABELS = {
  issuance: "issuance",
  points_issued: "issuance batch",
  clawback_inputs: "clawback inputs",
  redemption: "redemption",
  clawback: "clawback",
  relayed_transfer: "relay",
  token_transfer: "transfer",
  token_burn: "burn",
  token_mint: "mint (unattributed)",
  badge_awarded: "badge award",
  badge_transfer: "badge movement",
  tier_changed: "tier change",
};

/** Kinds that are part of a value change, and the kinds of the record that stands for it. */
export const PART_OF = {
  points_issued: ["issuance"],
  relayed_transfer: ["token_transfer"],
  token_burn: ["redemption", "clawback"],
  clawback_inputs: ["clawback"],
};

/** Parts shared by every change they belong to (a batch's log). */
const SHARED = new Set(["points_issued", "clawback_inputs"]);

/** True for a record that is part of a value change stated by another record. */
export function isPart(r) {
  return Object.hasOwn(PART_OF, r.kind);
}

/** Is ``part`` (of a kind in PART_OF) a part of the value change ``change``? */
function belongsTo(part, change) {
  if (part.tx_hash !== change.tx_hash || !PART_OF[part.kind].includes(change.kind)) return false;
  if (part.kind === "points_issued") return part.log_index === change.batch_log_index;
  if (part.kind === "clawback_inputs") return part.merchant === change.merchant && part.log_index > change.log_index;
  if (part.kind === "relayed_transfer") {
    return part.sender === change.sender && part.recipient === change.recipient && part.amount === change.amount;
  }
  return part.sender === change.member && part.amount === change.amount; // the burn
}

/**
 * The parts of each value change among ``records`` (one or more whole transactions):
 * a Map from a change's "tx:log_index" to its parts. A batch belongs to each of its
 * issuances; a relay notice or a burn to the nearest matching change not yet served.
 */
export function partsByChange(records) {
  const parts = new Map();
  const served = new Set();
  const changes = records.filter((r) => Object.values(PART_OF).some((kinds) => kinds.includes(r.kind)));
  const key = (r) => `${r.tx_hash}:${r.log_index}`;
  for (const change of [...changes].sort((a, b) => a.log_index - b.log_index)) {
    const found = [];
    const candidates = records
      .filter((p) => isPart(p) && belongsTo(p, change))
      .filter((p) => SHARED.has(p.kind) || !served.has(key(p)))
      .sort((a, b) => Math.abs(a.log_index - change.log_index) - Math.abs(b.log_index - change.log_index));
    for (const part of candidates) {
      if (part.kind === "clawback_inputs") {
        // the batch's commitment: the first one after the clawback
        if (!found.some((f) => f.kind === part.kind)) found.push(part);
      } else if (part.kind === "points_issued") found.push(part);
      else if (!found.some((f) => f.kind === part.kind)) {
        found.push(part);
        served.add(key(part));
      }
    }
    parts.set(key(change), found.sort((a, b) => a.log_index - b.log_index));
  }
  return parts;
}

/** One line describing a part of a value change. */
function describePart(p) {
  const where = `${p.contract} log ${p.log_index}`;
  if (p.kind === "points_issued") {
    const seqs = p.count > 1 ? `${p.seq}–${p.seq + p.count - 1}` : String(p.seq);
    return `PointsIssued batch: ${fmt(p.count)} event${p.count === 1 ? "" : "s"} (seq ${seqs}), ` +
      `total ${fmt(p.amount)}, rules v${p.rule_version} · ${where}`;
  }
  if (p.kind === "clawback_inputs") {
    return `ClawbackInputsCommitted: ${fmt(p.count)} clawback${p.count === 1 ? "" : "s"}, input root ` +
      `${p.input_root.slice(0, 10)}… · ${where}`;
  }
  if (p.kind === "relayed_transfer") {
    return `PointsTransferred: signed by the sender (nonce ${p.nonce}), relayed · ${where}`;
  }
  return `Transfer to the zero address: ${fmt(p.amount)} burned · ${where}`;
}

/** Filters from a search text: an address, a tx hash, "#12" (seq) or a merchant id. */
export function parseSearch(text, field) {
  const q = text.trim();
  if (!q) return {};
  if (field === "address") return { address: q };
  if (field === "tx") return { tx: q };
  if (field === "merchant") return { merchant: q.replace(/^#/, "") };
  if (field === "seq") return { seq: q.replace(/^#/, "") };
  if (/^0x[0-9a-fA-F]{64}$/.test(q)) return { tx: q };
  if (/^0x[0-9a-fA-F]{40}$/.test(q)) return { address: q };
  if (/^#\d+$/.test(q)) return { seq: q.slice(1) };
  if (/^\d+$/.test(q)) return { merchant: q };
  return { address: q }; // let the API say what is wrong with it
}

export class HistoryView {
  constructor(state) {
    this.state = state;
    this.filters = {};
    this.offset = 0;
    this.count = 0;
    $("history-form").addEventListener("submit", (e) => {
      e.preventDefault();
      this.search();
    });
    $("history-kind").addEventListener("change", () => this.search());
    $("history-clear").addEventListener("click", () => {
      $("history-q").value = "";
      $("history-field").value = "auto";
      $("history-kind").value = "";
      this.search();
    });
    $("history-prev").addEventListener("click", () => this.page(-PAGE));
    $("history-next").addEventListener("click", () => this.page(PAGE));
  }

  /** Start from the page's URL (?tx=, ?address= / ?member=, ?merchant=, ?seq=). */
  fromUrl(params) {
    const given = ["tx", "address", "member", "merchant", "seq"].find((k) => params.get(k));
    if (given) {
      const field = given === "member" ? "address" : given;
      $("history-field").value = field;
      $("history-q").value = params.get(given);
    }
    return Boolean(given);
  }

  filtersFromForm() {
    const filters = parseSearch($("history-q").value, $("history-field").value);
    const kind = $("history-kind").value;
    if (kind) filters.kind = kind;
    return filters;
  }

  async search() {
    this.filters = this.filtersFromForm();
    this.offset = 0;
    const url = new URL(window.location.href);
    for (const key of ["tx", "address", "member", "merchant", "seq"]) url.searchParams.delete(key);
    for (const key of ["tx", "address", "merchant", "seq"]) {
      if (this.filters[key]) url.searchParams.set(key, this.filters[key]);
    }
    window.history.replaceState(null, "", url);
    await this.load();
  }

  async page(delta) {
    const next = this.offset + delta;
    if (next < 0 || next >= Math.max(this.count, 1)) return;
    this.offset = next;
    await this.load();
  }

  async load() {
    const summary = $("history-summary");
    $("history-csv").href = api.csvUrl(this.filters);
    let data;
    try {
      data = await api.history({ ...this.filters, limit: PAGE, offset: this.offset });
    } catch (error) {
      summary.textContent = `Search refused: ${error.message}`;
      summary.className = "summary bad";
      replaceRows($("history-table").tBodies[0], [], "—", 8);
      this.count = 0;
      return;
    }
    let whole = data.data;
    let partsNote = "one row per value change, its other logs under ▸";
    try {
      whole = await this.wholeTransactions(data.data);
    } catch (error) {
      partsNote = `other logs of these transactions could not be read (${error.message})`;
    }
    const parts = partsByChange(whole);
    this.count = data.count;
    const first = data.count ? data.offset + 1 : 0;
    const last = data.offset + data.data.length;
    const what = Object.entries(this.filters).map(([k, v]) => `${k} ${v}`).join(", ");
    summary.className = "summary";
    summary.textContent =
      `${fmt(data.count)} record${data.count === 1 ? "" : "s"}${what ? ` for ${what}` : ""}` +
      (data.count ? ` · records ${fmt(first)}–${fmt(last)}, newest first` : "") +
      ` · up to block ${fmt(data.block)} · ${partsNote}`;
    const rows = data.data.filter((r) => !isPart(r)).map((r) => this.row(r, parts));
    replaceRows($("history-table").tBodies[0], rows, "No record matches.", 8);
    $("history-prev").disabled = this.offset === 0;
    $("history-next").disabled = last >= data.count;
  }

  /**
   * The page's records plus every other log of the transactions whose value changes it
   * shows: a search narrows to some logs of a transaction and a page may end inside
   * one, so such transactions are read whole (?tx=, one indexed request each).
   */
  async wholeTransactions(records) {
    const filtered = Object.keys(this.filters).length > 0;
    const hashes = [...new Set(records.filter((r) => !isPart(r)).map((r) => r.tx_hash))];
    const edges = new Set([records[0]?.tx_hash, records[records.length - 1]?.tx_hash]);
    const partial = hashes.filter((h) => filtered || edges.has(h));
    const more = await Promise.all(
      partial.map((tx) => api.history({ tx, limit: 500 }).then((d) => d.data)),
    );
    const byKey = new Map(records.map((r) => [`${r.tx_hash}:${r.log_index}`, r]));
    for (const r of more.flat()) byKey.set(`${r.tx_hash}:${r.log_index}`, r);
    return [...byKey.values()];
  }

  row(r, partsOf) {
    const names = this.state.merchantNames || new Map();
    const merchant = r.merchant ?? "";
    const merchantText = merchant === "" ? "" : `${merchant}${names.get(merchant) ? ` · ${names.get(merchant)}` : ""}`;
    let seq = "";
    if (r.kind === "points_issued") seq = r.count > 1 ? `${r.seq}–${r.seq + r.count - 1}` : String(r.seq);
    else if (r.kind === "clawback") seq = `${r.seq} (for ${r.original_seq})`;
    else if (r.seq !== undefined && r.seq !== null) seq = String(r.seq);
    const parts = partsOf.get(`${r.tx_hash}:${r.log_index}`) || [];
    let label = KIND_LABELS[r.kind] || r.kind.replaceAll("_", " ");
    if (parts.some((p) => p.kind === "relayed_transfer")) label = "transfer (relayed)";
    const kind = el("span", { class: `kind k-${r.kind}` }, label);
    const details = parts.length
      ? el(
          "details",
          { class: "parts" },
          el("summary", {}, `${parts.length} more log${parts.length === 1 ? "" : "s"}`),
          el("ul", {}, parts.map((p) => el("li", { "data-kind": p.kind }, describePart(p)))),
        )
      : null;
    return el(
      "tr",
      { "data-kind": r.kind, "data-parts": parts.map((p) => p.kind).join(" ") },
      cell(fmt(r.block), "num"),
      cell(when(r.time), "nowrap"),
      cell([kind, details]),
      cell(merchantText),
      cell(this.parties(r)),
      cell(r.amount !== undefined && r.amount !== null ? fmt(r.amount) : "", "num"),
      cell(seq, "num"),
      cell(this.searchLink(r.tx_hash, "tx", 10, 6)),
    );
  }

  parties(r) {
    if (r.member) return this.searchLink(r.member, "address");
    if (r.sender && r.recipient) {
      return el("span", {}, this.searchLink(r.sender, "address"), " → ", this.searchLink(r.recipient, "address"));
    }
    if (r.account) return this.searchLink(r.account, "address");
    if (r.signer) return this.searchLink(r.signer, "address");
    return el("span", { class: "muted" }, r.contract);
  }

  searchLink(value, field, head = 8, tail = 6) {
    const link = el("a", { href: `?${field}=${encodeURIComponent(value)}`, class: "mono", title: value });
    link.append(mono(value, head, tail));
    link.addEventListener("click", (e) => {
      e.preventDefault();
      $("history-field").value = field;
      $("history-q").value = value;
      this.search();
    });
    return link;
  }
}
