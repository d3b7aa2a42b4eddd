// History: every decoded log, searchable by member address, tx hash, merchant or
// sequence number; paged; the same filters download as CSV.

import { api } from "./api.js";
import { $, cell, el, fmt, mono, replaceRows, when } from "./dom.js";

const PAGE = 25;
const KIND_LABELS = {
  issuance: "issuance",
  points_issued: "issuance batch",
  redemption: "redemption",
  clawback: "clawback",
  relayed_transfer: "transfer (relayed)",
  token_transfer: "transfer",
  token_burn: "burn",
  token_mint: "mint (unattributed)",
  badge_awarded: "badge award",
  badge_transfer: "badge movement",
  tier_changed: "tier change",
};

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
    this.count = data.count;
    const first = data.count ? data.offset + 1 : 0;
    const last = data.offset + data.data.length;
    const what = Object.entries(this.filters).map(([k, v]) => `${k} ${v}`).join(", ");
    summary.className = "summary";
    summary.textContent =
      `${fmt(data.count)} record${data.count === 1 ? "" : "s"}${what ? ` for ${what}` : ""}` +
      (data.count ? ` · showing ${fmt(first)}–${fmt(last)}, newest first` : "") +
      ` · up to block ${fmt(data.block)}`;
    const rows = data.data.map((r) => this.row(r));
    replaceRows($("history-table").tBodies[0], rows, "No record matches.", 8);
    $("history-prev").disabled = this.offset === 0;
    $("history-next").disabled = last >= data.count;
  }

  row(r) {
    const names = this.state.merchantNames || new Map();
    const merchant = r.merchant ?? "";
    const merchantText = merchant === "" ? "" : `${merchant}${names.get(merchant) ? ` · ${names.get(merchant)}` : ""}`;
    let seq = "";
    if (r.kind === "points_issued") seq = r.count > 1 ? `${r.seq}–${r.seq + r.count - 1}` : String(r.seq);
    else if (r.kind === "clawback") seq = `${r.seq} (for ${r.original_seq})`;
    else if (r.seq !== undefined && r.seq !== null) seq = String(r.seq);
    return el(
      "tr",
      { "data-kind": r.kind },
      cell(fmt(r.block), "num"),
      cell(when(r.time), "nowrap"),
      cell(el("span", { class: `kind k-${r.kind}` }, KIND_LABELS[r.kind] || r.kind.replaceAll("_", " "))),
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
