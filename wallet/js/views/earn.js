// "How you earn": per linked partner, its published rules in plain words (the
// `explained` clauses of GET /v1/public/merchants/{id}/rules rendered with the
// language's templates), the tier ladder, upcoming changes with the date they take
// effect, earlier versions folded, and a check of the text against the hash on chain.
// Also the home page's banner while any partner has an upcoming change.

import { api } from "../api.js";
import { clear, h } from "../dom.js";
import { formatDate, formatNumber, t } from "../i18n.js";
import { state } from "../session.js";
import { alertBox, heading, showError } from "../ui.js";

const ISO_INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}/;
// The home page polls every few seconds; the list of announced changes is asked again
// when the page is opened and at most twice a minute while it stays open (a change is
// announced a whole notice period before it applies).
const UPCOMING_TTL_MS = 30_000;

/** An instant in the member's language ("–" where the gateway has none). */
function when(iso) {
  return iso ? formatDate(iso) : "–";
}

/** A clause {key, params} as a sentence; instants in the member's language. */
export function clauseText(clause) {
  const params = {};
  for (const [name, value] of Object.entries(clause.params || {})) {
    if (value === null || value === undefined) params[name] = "";
    else if (typeof value === "string" && ISO_INSTANT.test(value)) params[name] = formatDate(value);
    else params[name] = value;
  }
  return t(clause.key, params);
}

function clauseList(clauses, testid) {
  return h("ul", { class: "clauses", "data-testid": testid },
    clauses.map((clause) => h("li", { "data-clause": clause.key }, clauseText(clause))));
}

function linkedPartners() {
  return (state.me && state.me.linked_accounts) || [];
}

export function renderEarn(main, app) {
  const box = alertBox();
  const body = h("div", { class: "earn", "aria-busy": "true" });
  clear(main).append(heading(t("howearn.title")), h("p", { class: "muted" }, t("howearn.intro")), box, body);
  main.querySelector("h1").focus();
  const partners = linkedPartners();
  if (!partners.length) {
    body.append(h("p", { class: "muted", "data-testid": "earn-none" }, t("howearn.none")));
    body.setAttribute("aria-busy", "false");
    return;
  }
  let alive = true;
  app.onLeave(() => {
    alive = false;
  });
  Promise.all(
    partners.map((partner) =>
      api("GET", `/v1/public/merchants/${encodeURIComponent(partner.merchant_id)}/rules`).then(
        (rules) => ({ partner, rules }),
        (error) => ({ partner, error }),
      ),
    ),
  ).then((results) => {
    if (!alive) return;
    for (const { partner, rules, error } of results) {
      if (error) {
        showError(box, error);
        continue;
      }
      body.append(partnerCard(partner, rules));
    }
    body.setAttribute("aria-busy", "false");
  });
}

function partnerCard(partner, data) {
  const parts = [h("h2", {}, data.merchant ? data.merchant.name : partner.merchant_name)];
  for (const version of data.upcoming || []) parts.push(upcomingBlock(version));
  const current = data.current;
  if (!current) {
    parts.push(h("p", { class: "muted" }, t("howearn.noRules")));
  } else {
    parts.push(
      h("h3", {}, t("howearn.current", { date: when(current.effective_at), version: current.version })),
      clauseList(current.explained.filter((c) => !c.key.startsWith("earn.tier")), "earn-rules"),
      tierLadder(current),
      checkBlock(current),
    );
  }
  const past = data.past || [];
  if (past.length) parts.push(pastBlock(past));
  return h("section", { class: "card earn-partner", "data-merchant": partner.merchant_id }, ...parts);
}

function upcomingBlock(version) {
  return h("div", { class: "banner upcoming", "data-testid": "earn-upcoming", "data-version": version.version },
    h("h3", {}, t("howearn.upcoming", { date: when(version.effective_at), version: version.version })),
    version.changes && version.changes.length
      ? clauseList(version.changes, "earn-changes")
      : h("p", { class: "muted" }, t("howearn.noChanges")),
  );
}

function tierLadder(version) {
  const tiers = version.rules && version.rules.tiers;
  if (!tiers || !tiers.levels || !tiers.levels.length) return null;
  const window = version.explained.find((c) => c.key === "earn.tier_window");
  const unit = state.config.network_unit;
  const dash = "–";
  return h("div", { class: "tier-ladder" },
    h("h3", {}, t("howearn.tiers")),
    window ? h("p", { class: "muted" }, clauseText(window)) : null,
    h("table", { class: "ladder", "data-testid": "earn-tiers" },
      h("thead", {}, h("tr", {},
        h("th", { scope: "col" }, t("howearn.tierName")),
        h("th", { scope: "col" }, t("howearn.multiplier")),
        h("th", { scope: "col" }, t("howearn.orders")),
        h("th", { scope: "col" }, t("howearn.spend", { unit })),
        h("th", { scope: "col" }, t("howearn.recency")),
      )),
      h("tbody", {}, tiers.levels.map((level) =>
        h("tr", {},
          h("th", { scope: "row" }, level.name),
          h("td", {}, `×${level.multiplier}`),
          h("td", {}, formatNumber(level.min_orders)),
          h("td", {}, formatNumber(Number(level.min_spend))),
          h("td", {}, level.max_recency_days === null ? dash : t("howearn.days", { days: level.max_recency_days })),
        ),
      )),
    ),
  );
}

function pastBlock(past) {
  return h("details", { class: "past", "data-testid": "earn-past" },
    h("summary", {}, t("howearn.past", { count: past.length })),
    h("ol", {}, past.map((version) =>
      h("li", { "data-version": version.version },
        h("p", {}, t("howearn.pastItem", {
          version: version.version,
          from: when(version.effective_at),
          to: when(version.superseded_at),
        })),
        version.changes && version.changes.length ? clauseList(version.changes, "earn-past-changes") : null,
      ),
    )),
  );
}

function checkBlock(version) {
  const result = h("p", { class: "muted hash-check", "aria-live": "polite" });
  const button = h("button", { type: "button", class: "secondary" }, t("howearn.check"));
  button.addEventListener("click", async () => {
    const { ethers } = await import("/wallet/vendor/ethers.js");
    const computed = ethers.keccak256(ethers.toUtf8Bytes(version.canonical));
    const ok = computed === version.hash.toLowerCase();
    result.className = ok ? "success hash-check" : "error hash-check";
    result.dataset.ok = String(ok);
    result.textContent = t(ok ? "howearn.checkOk" : "howearn.checkBad", { hash: version.hash });
  });
  return h("div", { class: "actions" }, button, result);
}

// ---------------------------------------------------------------- home banner

let upcomingCache = { at: 0, merchants: null };

/** Linked partners with a version published and not yet in effect (`fresh`: not cached). */
export async function upcomingChanges({ fresh = false } = {}) {
  const linked = new Set(linkedPartners().map((p) => p.merchant_id));
  if (!linked.size) return [];
  if (fresh || !upcomingCache.merchants || Date.now() - upcomingCache.at > UPCOMING_TTL_MS) {
    const listing = await api("GET", "/v1/public/merchants");
    upcomingCache = { at: Date.now(), merchants: listing.merchants };
  }
  return upcomingCache.merchants.filter((m) => linked.has(m.id) && m.upcoming);
}

/** The home page's banner, or null while no linked partner has an upcoming change. */
export function upcomingBanner(merchants) {
  if (!merchants || !merchants.length) return null;
  return h("section", { class: "card banner", "data-testid": "rules-banner" },
    h("h2", {}, t("howearn.bannerTitle")),
    h("ul", {}, merchants.map((m) =>
      h("li", {}, t("howearn.banner", { merchant: m.name, date: when(m.upcoming.effective_at) })))),
    h("a", { href: "#/earn", class: "button secondary" }, t("howearn.bannerLink")),
  );
}
