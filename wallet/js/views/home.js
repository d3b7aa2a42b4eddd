// Home (balance, tier progress, badges, receive, upcoming rule changes) and History
// (an issuance's or clawback's proof folds open under it: views/proof.js).

import { api } from "../api.js";
import { clear, h, newId, svgElement } from "../dom.js";
import { formatDate, formatMoney, formatNumber, t } from "../i18n.js";
import { qrSvg } from "../qr.js";
import { refreshMe, state } from "../session.js";
import { alertBox, badgeImage, heading, notify, short, showError, txLink } from "../ui.js";
import { upcomingBanner, upcomingChanges } from "./earn.js";
import { PROVABLE, proofBlock } from "./proof.js";

const REFRESH_MS = 3000;
// Linked partners with a rule change published and not yet in effect (home banner).
let upcoming = [];

export function renderHome(main, app) {
  const box = alertBox();
  const body = h("div", { class: "home", "aria-busy": "true" }, h("p", { class: "loading" }, t("app.loading")));
  const refresh = h("button", { type: "button", class: "link-button", onclick: () => load() }, t("home.refresh"));
  clear(main).append(h("div", { class: "title-row" }, heading(t("home.title")), refresh), box, body);
  main.querySelector("h1").focus();

  let timer = null;
  let alive = true;
  let opened = true;
  async function load() {
    try {
      const me = await refreshMe();
      upcoming = await upcomingChanges({ fresh: opened }).catch(() => upcoming);
      opened = false;
      showError(box, null);
      if (!alive) return;
      clear(body).append(...homeCards(me, app));
      body.setAttribute("aria-busy", "false");
    } catch (e) {
      showError(box, e);
    }
    clearTimeout(timer);
    if (alive) timer = setTimeout(load, REFRESH_MS);
  }
  app.onLeave(() => {
    alive = false;
    clearTimeout(timer);
  });
  if (state.me) clear(body).append(...homeCards(state.me, app));
  load();
}

function homeCards(me, app) {
  const cards = [];
  if (me.custodial) {
    cards.push(
      h("section", { class: "card banner" },
        h("h2", {}, t("home.custodialTitle")),
        h("p", {}, t("home.custodialText")),
        h("a", { href: "#/accounts", class: "button primary" }, t("home.claim")),
      ),
    );
  }
  if (me.frozen) cards.push(h("p", { class: "warning", role: "alert" }, t("home.frozen")));
  const banner = upcomingBanner(upcoming);
  if (banner) cards.push(banner);
  cards.push(
    h("section", { class: "card balance", "aria-labelledby": "balance-label" },
      h("h2", { id: "balance-label" }, t("home.balance")),
      h("p", { class: "big", "data-testid": "balance" }, formatNumber(me.balance), h("span", { class: "unit" }, t("common.points"))),
      me.pending_points > 0
        ? h("p", { class: "pending", "data-testid": "pending" }, t("home.pending", { points: me.pending_points }))
        : null,
      me.spendable !== me.balance ? h("p", { class: "muted" }, t("home.spendable", { points: me.spendable })) : null,
    ),
    tierCard(me.tier),
    badgesCard(me.badges),
    receiveCard(me.address),
  );
  return cards;
}

function tierCard(tier) {
  const unit = state.config.network_unit;
  const name = t(`tier.${tier.tier}`);
  const parts = [
    h("h2", {}, t("home.tier")),
    h("p", { class: `tier tier-${tier.tier}`, "data-testid": "tier" }, name),
  ];
  if (tier.next_tier === null) {
    parts.push(h("p", {}, t("home.topTier")));
  } else {
    const next = t(`tier.${tier.next_tier}`);
    parts.push(h("p", {}, t("home.nextTier", { tier: next, days: tier.window_days })));
    parts.push(meter(t("home.orders"), tier.orders, tier.orders_needed, formatNumber(tier.orders), formatNumber(tier.orders_needed)));
    parts.push(
      meter(
        t("home.spend"),
        Number(tier.spend),
        Number(tier.spend_needed),
        formatMoney(tier.spend, unit),
        formatMoney(tier.spend_needed, unit),
      ),
    );
    if (tier.max_recency_days !== null) {
      parts.push(h("p", { class: "muted" }, t("home.recency", { days: tier.max_recency_days })));
    }
  }
  return h("section", { class: "card" }, ...parts);
}

function meter(label, value, max, valueText, maxText) {
  const id = newId("meter");
  return h("div", { class: "meter" },
    h("label", { for: id }, label, " ", h("span", { class: "muted" }, `${valueText} / ${maxText}`)),
    h("progress", { id, max: String(max || 1), value: String(Math.min(value, max || 1)) }),
  );
}

function badgesCard(badges) {
  const content = badges.length
    ? h("ul", { class: "badges" }, badges.map((badge) =>
        h("li", { class: "badge", "data-badge": badge.key },
          badgeImage(badge),
          h("span", { class: "badge-name" }, t(`badge.${badge.key}`)),
          badge.soulbound ? h("span", { class: "soulbound", title: t("home.soulboundHint") }, t("home.soulbound")) : null,
        ),
      ))
    : h("p", { class: "muted" }, t("home.noBadges"));
  return h("section", { class: "card" }, h("h2", {}, t("home.badges")), content);
}

export function receiveCard(address) {
  const qr = h("div", { class: "qr", hidden: true });
  const toggle = h("button", { type: "button", class: "secondary", "aria-expanded": "false" }, t("receive.showQr"));
  toggle.addEventListener("click", () => {
    if (!qr.firstChild) qr.append(svgElement(qrSvg(address, { label: t("receive.qrLabel") })));
    qr.hidden = !qr.hidden;
    toggle.setAttribute("aria-expanded", String(!qr.hidden));
    toggle.textContent = qr.hidden ? t("receive.showQr") : t("receive.hideQr");
  });
  const copy = h("button", { type: "button", class: "secondary" }, t("receive.copy"));
  copy.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(address);
      notify(t("receive.copied"));
    } catch {
      notify(t("receive.copyFailed"));
    }
  });
  return h("section", { class: "card" },
    h("h2", {}, t("receive.title")),
    h("p", {}, t("receive.text")),
    h("code", { class: "address", "data-testid": "address" }, address),
    h("div", { class: "actions" }, copy, toggle),
    qr,
  );
}

// ---------------------------------------------------------------- history

const KINDS = ["issue", "redeem", "transfer", "clawback", "badge"];
const PER_PAGE = 10;

export function renderHistory(main, app) {
  const box = alertBox();
  const select = h("select", { id: "history-kind" },
    h("option", { value: "" }, t("history.all")),
    KINDS.map((kind) => h("option", { value: kind }, t(`history.kind.${kind}`))),
  );
  const list = h("ol", { class: "history", "aria-live": "polite", "aria-busy": "true" });
  const pager = h("nav", { class: "pager", "aria-label": t("history.pages") });
  let page = 1;

  async function load() {
    list.setAttribute("aria-busy", "true");
    try {
      const query = new URLSearchParams({ page: String(page), per_page: String(PER_PAGE) });
      if (select.value) query.set("kind", select.value);
      const result = await api("GET", `/v1/wallet/history?${query}`);
      showError(box, null);
      clear(list);
      if (!result.data.length) list.append(h("li", { class: "muted empty" }, t("history.empty")));
      for (const item of result.data) list.append(historyItem(item));
      renderPager(result);
    } catch (e) {
      showError(box, e);
    } finally {
      list.setAttribute("aria-busy", "false");
    }
  }

  function renderPager(result) {
    const pages = Math.max(1, Math.ceil(result.count / result.per_page));
    clear(pager).append(
      h("button", { type: "button", class: "secondary", disabled: page <= 1, onclick: () => { page -= 1; load(); } }, t("history.previous")),
      h("span", {}, t("history.page", { page, pages })),
      h("button", { type: "button", class: "secondary", disabled: page >= pages, onclick: () => { page += 1; load(); } }, t("history.next")),
    );
  }

  select.addEventListener("change", () => {
    page = 1;
    load();
  });
  clear(main).append(
    heading(t("history.title")),
    h("div", { class: "field inline" }, h("label", { for: "history-kind" }, t("history.filter")), select),
    box,
    list,
    pager,
  );
  main.querySelector("h1").focus();
  load();
}

function historyItem(item) {
  const sign = item.direction === "in" ? "+" : "−";
  let title;
  if (item.kind === "badge") title = t("history.badge", { badge: item.badge_key ? t(`badge.${item.badge_key}`) : item.badge_name || "" });
  else if (item.kind === "transfer") title = item.direction === "in" ? t("history.transferIn", { from: short(item.counterparty) }) : t("history.transferOut", { to: short(item.counterparty) });
  else if (item.kind === "redeem") title = t("history.redeem", { reward: item.reward_name || "" });
  else title = t(`history.kind.${item.kind}`);
  const details = [];
  if (item.merchant_name) details.push(t("history.at", { merchant: item.merchant_name }));
  if (item.rule_version) details.push(t("history.ruleVersion", { version: item.rule_version }));
  return h("li", { class: `history-item kind-${item.kind}`, "data-kind": item.kind },
    h("div", { class: "history-main" },
      h("span", { class: "history-title" }, title),
      item.kind === "badge" ? null : h("span", { class: `amount ${item.direction}` }, `${sign}${formatNumber(item.amount)}`),
    ),
    h("div", { class: "history-meta" },
      h("time", { datetime: item.occurred_at }, formatDate(item.occurred_at)),
      details.length ? h("span", {}, details.join(" · ")) : null,
      txLink(item.tx_hash),
    ),
    PROVABLE.has(item.kind) ? proofBlock(item) : null,
  );
}

