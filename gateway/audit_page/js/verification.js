// Verification: deployed runtime code against the committed artifacts, and on request
// against a fresh compile of contracts/ (run by the gateway in the background).

import { api } from "./api.js";
import { $, cell, el, fmt, mono, replaceRows, when } from "./dom.js";

const POLL_MS = 2000;

function rows(contracts) {
  return contracts.map((c) =>
    el(
      "tr",
      { class: c.ok ? "" : "bad-row" },
      cell(c.role),
      cell(c.contract),
      cell(mono(c.address, 8, 6)),
      cell(fmt(c.onchain_length), "num"),
      cell(
        el("span", { class: `pill ${c.ok ? "ok" : "bad"}`, title: c.note || "" }, c.ok ? "matches" : "MISMATCH"),
        c.ok ? "" : ` ${c.note}${c.first_difference !== null ? ` (first difference at byte ${fmt(c.first_difference)})` : ""}`,
      ),
    ),
  );
}

export class VerificationView {
  constructor() {
    this.timer = null;
    $("recompile").addEventListener("click", () => this.recompile());
  }

  async load() {
    const data = await api.verification();
    const committed = data.committed;
    $("verification-summary").textContent =
      `${committed.ok ? "All deployed contracts match" : "Deployed code DIFFERS from"} the ${committed.reference} ` +
      `(solc ${committed.compiler}), at block ${fmt(committed.block)}.` +
      (committed.notes.length ? ` ${committed.notes.join(" ")}` : "");
    $("verification-summary").className = `summary ${committed.ok ? "good" : "bad"}`;
    replaceRows($("verification-table").tBodies[0], rows(committed.contracts), "No contract found.", 5);
    this.showJob(data.recompile);
  }

  async recompile() {
    $("recompile").disabled = true;
    try {
      const data = await api.recompile();
      this.showJob(data.recompile);
    } catch (error) {
      $("recompile-status").textContent = `Could not start: ${error.message}`;
      $("recompile").disabled = false;
    }
  }

  showJob(job) {
    const status = $("recompile-status");
    const button = $("recompile");
    clearTimeout(this.timer);
    if (job.state === "running") {
      button.disabled = true;
      status.textContent = `Compiling contracts/ with the pinned solc since ${when(job.started_at)} UTC…`;
      this.timer = setTimeout(() => this.poll(), POLL_MS);
      return;
    }
    button.disabled = false;
    const table = $("recompile-table");
    if (job.state === "done" && job.result) {
      const result = job.result;
      status.textContent =
        `Fresh compile done in ${job.seconds}s (${result.reference}, solc ${result.compiler}): ` +
        (result.ok ? "every deployed contract is built from these sources." : "MISMATCH — see below.");
      status.className = `summary ${result.ok ? "good" : "bad"}`;
      table.hidden = false;
      replaceRows(table.tBodies[0], rows(result.contracts), "No contract found.", 5);
    } else if (job.state === "failed") {
      status.textContent = `Fresh compile failed: ${job.error}`;
      status.className = "summary bad";
    } else {
      status.textContent = "Checks against the committed artifacts above; a fresh compile takes about half a minute.";
      status.className = "summary";
    }
  }

  async poll() {
    try {
      const data = await api.verification();
      this.showJob(data.recompile);
    } catch {
      this.timer = setTimeout(() => this.poll(), POLL_MS * 2);
    }
  }
}
