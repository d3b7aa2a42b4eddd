// Send points (gasless EIP-712 TransferRequest) and redeem rewards (EIP-712 Redemption).

import { api, poll } from "../api.js";
import { busy, clear, h } from "../dom.js";
import { t } from "../i18n.js";
import { REDEMPTION_TYPES, TRANSFER_TYPES, checksum, domainOf, isAddress, rewardRef } from "../keys.js";
import { refreshMe, state } from "../session.js";
import { alertBox, field, heading, notify, showError, statusPill, txLink } from "../ui.js";
import { receiveCard } from "./home.js";

/** Seconds a member's signature stays valid: long enough to relay, short enough to be safe. */
const SIGNATURE_LIFETIME = 10 * 60;

class InputError extends Error {
  constructor(code, details = {}) {
    super(code);
    this.code = code;
    this.details = details;
  }
}

function deadline() {
  return Math.floor(Date.now() / 1000) + SIGNATURE_LIFETIME;
}

// ---------------------------------------------------------------- send

export function renderSend(main, app) {
  const box = alertBox();
  const to = field(t("send.to"), { type: "text", autocomplete: "off", spellcheck: "false", placeholder: "0x…", required: true }, t("send.toHint"));
  const amount = field(t("send.amount"), { type: "number", min: "1", step: "1", inputmode: "numeric", required: true });
  const available = h("p", { class: "muted", "data-testid": "spendable" });
  const submit = h("button", { type: "submit", class: "primary" }, t("send.submit"));
  const result = h("div", { class: "result", "aria-live": "polite" });
  const form = h("form", { class: "card", novalidate: true }, to.wrap, amount.wrap, available, box, h("div", { class: "actions" }, submit), result);

  function showAvailable(me) {
    available.textContent = t("send.available", { points: me.spendable });
  }
  if (state.me) showAvailable(state.me);
  refreshMe().then(showAvailable).catch((e) => showError(box, e));

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    showError(box, null);
    clear(result);
    const done = busy(submit, state.custodial ? t("send.sending") : t("send.signing"));
    try {
      const me = await refreshMe();
      const recipient = to.input.value.trim();
      const points = Number(amount.input.value);
      if (!isAddress(recipient)) throw new InputError("invalid_address");
      if (checksum(recipient) === me.address) throw new InputError("self_transfer");
      if (!Number.isInteger(points) || points <= 0) throw new InputError("invalid_amount");
      if (points > me.spendable) throw new InputError("insufficient_points", { balance: me.spendable, needed: points });
      const body = { to: checksum(recipient), amount: points };
      if (!state.custodial) {
        const request = { from: me.address, to: body.to, amount: points, nonce: me.next_nonce, deadline: deadline() };
        body.signature = await state.signer.signTypedData(domainOf(state.config), TRANSFER_TYPES, request);
        Object.assign(body, { nonce: request.nonce, deadline: request.deadline });
      }
      submit.textContent = t("send.sending");
      const transfer = await api("POST", "/v1/wallet/transfers", body);
      form.reset();
      track(result, transfer);
    } catch (e) {
      showError(box, e);
    } finally {
      done();
      refreshMe().then(showAvailable).catch(() => {});
    }
  });

  clear(main).append(heading(t("send.title")), h("p", { class: "lead" }, t(state.custodial ? "send.leadCustodial" : "send.lead")), form, receiveCard(state.me ? state.me.address : ""));
  main.querySelector("h1").focus();
}

/** Show a transfer's status and follow it until the chain confirms (or refuses) it. */
async function track(container, transfer) {
  const line = h("p", { class: "transfer-status", "data-testid": "transfer-status" });
  const show = (current) => {
    clear(line).append(
      statusPill(current.status),
      " ",
      t(`send.status.${current.status}`, { points: current.amount }),
      current.tx_hash ? h("span", {}, " ", txLink(current.tx_hash)) : null,
    );
    if (current.status === "failed" && current.error) line.append(h("span", { class: "error-detail" }, ` ${current.error}`));
  };
  show(transfer);
  container.append(line);
  const final = await poll(
    () => api("GET", `/v1/wallet/transfers/${transfer.id}`),
    (current) => {
      show(current);
      return current.status !== "submitted";
    },
  ).catch((e) => {
    line.append(h("span", { class: "error" }, ` ${e.message}`));
    return null;
  });
  if (final && final.status === "confirmed") notify(t("send.status.confirmed", { points: final.amount }));
}

// ---------------------------------------------------------------- rewards

export function renderRewards(main, app) {
  const box = alertBox();
  const catalog = h("div", { class: "catalog", "aria-busy": "true" }, h("p", { class: "loading" }, t("app.loading")));
  const vouchers = h("section", { class: "card" }, h("h2", {}, t("rewards.vouchers")));
  clear(main).append(heading(t("rewards.title")), h("p", { class: "lead" }, t("rewards.lead")), box, catalog, vouchers);
  main.querySelector("h1").focus();

  async function load() {
    try {
      const [rewards, me] = await Promise.all([api("GET", "/v1/catalog"), refreshMe()]);
      clear(catalog);
      if (!rewards.data.length) catalog.append(h("p", { class: "muted" }, t("rewards.empty")));
      const byMerchant = new Map();
      for (const reward of rewards.data) {
        if (!byMerchant.has(reward.merchant_name)) byMerchant.set(reward.merchant_name, []);
        byMerchant.get(reward.merchant_name).push(reward);
      }
      for (const [merchant, list] of byMerchant) {
        catalog.append(
          h("section", { class: "card" },
            h("h2", {}, merchant),
            h("ul", { class: "rewards" }, list.map((reward) => rewardItem(reward, me, loadVouchers))),
          ),
        );
      }
      catalog.setAttribute("aria-busy", "false");
    } catch (e) {
      showError(box, e);
    }
    loadVouchers();
  }

  async function loadVouchers() {
    try {
      const mine = await api("GET", "/v1/wallet/redemptions");
      clear(vouchers).append(h("h2", {}, t("rewards.vouchers")));
      if (!mine.data.length) vouchers.append(h("p", { class: "muted" }, t("rewards.noVouchers")));
      else vouchers.append(h("ul", { class: "vouchers" }, mine.data.map(voucherItem)));
    } catch (e) {
      showError(box, e);
    }
  }
  load();
}

function voucherItem(redemption) {
  return h("li", {},
    statusPill(redemption.status),
    " ",
    t("rewards.voucherFor", { points: redemption.amount }),
    redemption.voucher_code ? h("code", { class: "voucher" }, redemption.voucher_code) : null,
  );
}

function rewardItem(reward, me, onDone) {
  const box = alertBox();
  const result = h("div", { class: "result", "aria-live": "polite" });
  const redeem = h("button", { type: "button", class: "primary" }, t("rewards.redeem"));
  const affordable = me.spendable >= reward.cost_points;
  if (!affordable) redeem.disabled = true;
  const confirmRow = h("div", { class: "confirm", hidden: true },
    h("p", {}, t("rewards.confirm", { points: reward.cost_points, reward: reward.name })),
  );
  const yes = h("button", { type: "button", class: "primary" }, t("rewards.confirmYes"));
  const no = h("button", { type: "button", class: "link-button" }, t("common.cancel"));
  confirmRow.append(h("div", { class: "actions" }, yes, no));
  redeem.addEventListener("click", () => {
    confirmRow.hidden = false;
    redeem.hidden = true;
    yes.focus();
  });
  no.addEventListener("click", () => {
    confirmRow.hidden = true;
    redeem.hidden = false;
  });
  yes.addEventListener("click", async () => {
    showError(box, null);
    const done = busy(yes, state.custodial ? t("rewards.working") : t("send.signing"));
    try {
      const current = await refreshMe();
      if (current.spendable < reward.cost_points) {
        throw new InputError("insufficient_points", { balance: current.spendable, needed: reward.cost_points });
      }
      const body = { reward_id: reward.id };
      if (!state.custodial) {
        const message = {
          member: current.address,
          merchantId: reward.merchant_id,
          amount: reward.cost_points,
          ref: rewardRef(reward.id),
          nonce: current.next_nonce,
          deadline: deadline(),
        };
        body.signature = await state.signer.signTypedData(domainOf(state.config), REDEMPTION_TYPES, message);
        Object.assign(body, { nonce: message.nonce, deadline: message.deadline });
      }
      yes.textContent = t("rewards.working");
      const redemption = await api("POST", "/v1/wallet/redemptions", body);
      confirmRow.hidden = true;
      await followRedemption(result, redemption);
      onDone();
    } catch (e) {
      showError(box, e);
    } finally {
      done();
    }
  });
  return h("li", { class: "reward", "data-reward": reward.id },
    h("div", { class: "reward-main" },
      h("h3", {}, reward.name),
      reward.description ? h("p", { class: "muted" }, reward.description) : null,
      h("p", { class: "cost" }, t("rewards.cost", { points: reward.cost_points })),
      reward.stock !== null ? h("p", { class: "muted" }, t("rewards.stock", { stock: reward.stock })) : null,
    ),
    h("div", { class: "reward-actions" }, redeem, affordable ? null : h("small", { class: "muted" }, t("rewards.notEnough"))),
    confirmRow,
    box,
    result,
  );
}

async function followRedemption(container, redemption) {
  const line = h("div", { class: "redemption-status", "data-testid": "redemption-status" });
  container.append(line);
  const show = (current) => {
    clear(line).append(statusPill(current.status), " ", t(`rewards.status.${current.status}`));
    if (current.voucher_code) {
      line.append(h("p", { class: "voucher-line" }, t("rewards.voucherCode"), " ", h("code", { class: "voucher", "data-testid": "voucher" }, current.voucher_code)));
    }
    if (current.tx_hash) line.append(" ", txLink(current.tx_hash));
    if (current.status === "failed" && current.error) line.append(h("p", { class: "error-detail" }, current.error));
  };
  show(redemption);
  const final = await poll(
    () => api("GET", `/v1/wallet/redemptions/${redemption.id}`),
    (current) => {
      show(current);
      return current.status !== "submitted";
    },
  );
  if (final.status === "confirmed") notify(t("rewards.status.confirmed"));
}

