// Shared pieces of the screens: headings, fields, errors, progress, links.

import { h } from "./dom.js";
import { has, t } from "./i18n.js";

/** A localised, human sentence for any error (API, key handling or network). */
export function errorMessage(error) {
  const code = error && error.code;
  if (code && has(`errors.${code}`)) {
    return t(`errors.${code}`, { message: error.message, ...(error.details || {}) });
  }
  if (error && error.status >= 500) return t("errors.server_error");
  if (error && error.status === 0) return t("errors.network");
  return (error && error.message) || t("errors.unknown");
}

/** Show `error` in `box` (an element with role="alert"), or clear it with null. */
export function showError(box, error) {
  box.textContent = error ? errorMessage(error) : "";
  box.hidden = !error;
}

export function alertBox() {
  return h("p", { class: "error", role: "alert", hidden: true });
}

let statusTimer = null;
/** A polite announcement in the status bar (screen readers read it too), for 6 s
 * or until the member opens another view. */
export function notify(text) {
  const region = document.getElementById("status");
  region.textContent = text;
  region.classList.add("visible");
  clearTimeout(statusTimer);
  statusTimer = setTimeout(dismissStatus, 6000);
}

/** Take the status bar's announcement away (it belongs to the view being left). */
export function dismissStatus() {
  clearTimeout(statusTimer);
  document.getElementById("status").classList.remove("visible");
}

/** A page heading that receives focus when the screen changes. */
export function heading(text) {
  return h("h1", { tabindex: "-1", class: "page-title" }, text);
}

let fieldCount = 0;
/** A labelled input; returns {wrap, input}. `hint` becomes its aria-describedby. */
export function field(labelText, attrs = {}, hint = null) {
  fieldCount += 1;
  const id = `field-${fieldCount}`;
  const hintId = hint ? `${id}-hint` : null;
  const tag = attrs.tag || "input";
  const { tag: _tag, ...rest } = attrs;
  const input = h(tag, { id, name: id, "aria-describedby": hintId, ...rest });
  const wrap = h(
    "div",
    { class: "field" },
    h("label", { for: id }, labelText),
    input,
    hint ? h("small", { id: hintId, class: "hint" }, hint) : null,
  );
  return { wrap, input };
}

/** A progress bar for slow key encryption (0..1 updates). */
export function keyProgress() {
  const bar = h("progress", { max: "100", value: "0", "aria-label": t("keys.encrypting") });
  const wrap = h("div", { class: "key-progress", hidden: true }, h("span", {}, t("keys.encrypting")), bar);
  return {
    wrap,
    start() {
      wrap.hidden = false;
    },
    update(fraction) {
      bar.value = Math.round(fraction * 100);
    },
    stop() {
      wrap.hidden = true;
    },
  };
}

export function short(address) {
  return address ? `${address.slice(0, 6)}…${address.slice(-4)}` : "";
}

/** A link to the audit page for a transaction. */
export function txLink(hash) {
  return h(
    "a",
    { href: `/audit?tx=${encodeURIComponent(hash)}`, class: "tx", title: hash, "aria-label": t("tx.view", { hash: short(hash) }) },
    short(hash),
  );
}

export function badgeImage(badge) {
  return h("img", {
    src: badge.image_url,
    alt: "",
    width: "96",
    height: "96",
    loading: "lazy",
  });
}

/** Status pill: submitted / confirmed / failed. */
export function statusPill(status) {
  return h("span", { class: `pill pill-${status}` }, t(`status.${status}`));
}
