// A history entry's proof (issuances and clawbacks): GET /v1/wallet/entries/{id}/proof
// opened under the entry, its amount in plain words, the rule version it was computed
// under, and "Verify": the proof checked against the chain in the browser (verify.js)
// through the public RPC, the outcome in words.

import { api } from "../api.js";
import { busy, clear, h } from "../dom.js";
import { formatDate, t } from "../i18n.js";
import { refreshMe, state } from "../session.js";
import { errorMessage } from "../ui.js";
import { clauseText } from "./earn.js";

/** The kinds whose entries have a proof. */
export const PROVABLE = new Set(["issue", "clawback"]);

/** A folded "Proof" block under history entry `item`, loaded when first opened. */
export function proofBlock(item) {
  const body = h("div", { class: "proof-body", "aria-live": "polite" });
  const block = h("details", { class: "proof", "data-testid": "entry-proof", "data-entry": item.id },
    h("summary", {}, t("proof.open")),
    body,
  );
  let loaded = false;
  block.addEventListener("toggle", async () => {
    if (!block.open || loaded) return;
    loaded = true;
    body.setAttribute("aria-busy", "true");
    body.append(h("p", { class: "loading" }, t("app.loading")));
    try {
      const proof = await api("GET", `/v1/wallet/entries/${encodeURIComponent(item.id)}/proof`);
      clear(body).append(...proofParts(proof));
    } catch (error) {
      loaded = false;
      clear(body).append(h("p", { class: "error", role: "alert" }, errorMessage(error)));
    } finally {
      body.setAttribute("aria-busy", "false");
    }
  });
  return block;
}

function proofParts(proof) {
  const parts = [];
  if (proof.explanation && proof.explanation.length) {
    parts.push(h("ul", { class: "clauses", "data-testid": "proof-why" },
      proof.explanation.map((clause) => h("li", { "data-clause": clause.key }, clauseText(clause)))));
  }
  if (proof.rules) {
    parts.push(h("p", { class: "muted" }, proof.rules.effective_at
      ? t("proof.rules", { version: proof.rules.version, date: formatDate(proof.rules.effective_at) })
      : t("proof.rulesNoDate", { version: proof.rules.version })));
  }
  if (proof.line.input === null) {
    parts.push(h("p", { class: "muted" }, t(proof.line.erased ? "proof.erased" : "proof.noInput")));
  }
  parts.push(verifyBlock(proof));
  return parts;
}

function verifyBlock(proof) {
  const result = h("div", { class: "verify-result", "data-testid": "verify-result", "aria-live": "polite" });
  const rpc = state.config && state.config.public_rpc_url;
  const button = h("button", { type: "button", class: "secondary", disabled: !rpc, "data-testid": "verify" },
    rpc ? t("verify.button") : t("verify.needsRpc"));
  if (rpc) {
    button.addEventListener("click", async () => {
      const done = busy(button, t("verify.running"));
      clear(result);
      try {
        const me = state.me || (await refreshMe());
        const { verifyEntry } = await import("../verify.js");
        const outcome = await verifyEntry(proof, state.config, [me.address, ...(me.claimed_addresses || [])]);
        showOutcome(result, outcome);
      } catch (error) {
        result.dataset.ok = "false";
        result.append(h("p", { class: "error" }, t("verify.error", { message: errorMessage(error) })));
      } finally {
        done();
      }
    });
  }
  return h("div", { class: "verify" }, h("div", { class: "actions" }, button), result);
}

function checkName(check) {
  return t(`verify.check.${check.name}`);
}

const ISO_INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}/;

/** A failed or skipped check's reason in words: instants in the member's language, block
 * numbers and amounts as written (no digit grouping in a block number). */
function reasonText(check) {
  const params = {};
  for (const [name, value] of Object.entries(check.params || {})) {
    params[name] = typeof value === "string" && ISO_INSTANT.test(value) ? formatDate(value) : String(value);
  }
  return t(`verify.reason.${check.reason}`, params);
}

function showOutcome(result, outcome) {
  const failed = outcome.checks.find((check) => check.status === "failed");
  result.dataset.ok = String(outcome.ok);
  result.dataset.failed = failed ? failed.name : "";
  const headline = failed
    ? h("p", { class: "error", role: "alert" }, t("verify.failed", { check: checkName(failed), reason: reasonText(failed) }))
    : h("p", { class: "success" }, t("verify.ok", { block: String(outcome.block) }));
  const list = h("ul", { class: "verify-checks" }, outcome.checks.map((check) =>
    h("li", { "data-check": check.name, "data-status": check.status, "data-reason": check.reason || "" },
      h("span", { class: `check-mark ${check.status}`, "aria-hidden": "true" }, MARKS[check.status]),
      ` ${checkName(check)}: `,
      check.status === "ok" ? t("verify.status.ok") : reasonText(check),
    )));
  clear(result).append(headline, list);
}

const MARKS = { ok: "✓", failed: "✗", skipped: "–" };
