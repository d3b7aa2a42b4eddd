// Messages come from /wallet/i18n/<lang>.json; numbers and dates are localised with Intl.

export const LANGUAGES = ["en", "zh-CN"];
const STORAGE_KEY = "pointsnet.lang";

let current = "en";
let messages = {};
let fallback = {};

async function fetchMessages(lang) {
  const response = await fetch(`/wallet/i18n/${lang}.json`, { credentials: "same-origin" });
  if (!response.ok) throw new Error(`messages for ${lang} are missing`);
  return response.json();
}

export function preferredLanguage() {
  const saved = localStorage.getItem(STORAGE_KEY);
  if (LANGUAGES.includes(saved)) return saved;
  const browser = (navigator.languages || [navigator.language || "en"]).find(Boolean) || "en";
  return browser.toLowerCase().startsWith("zh") ? "zh-CN" : "en";
}

export async function setLanguage(lang) {
  if (!LANGUAGES.includes(lang)) lang = "en";
  if (!Object.keys(fallback).length) fallback = await fetchMessages("en");
  messages = lang === "en" ? fallback : await fetchMessages(lang);
  current = lang;
  localStorage.setItem(STORAGE_KEY, lang);
  document.documentElement.lang = lang;
  document.title = t("app.title");
  applyI18n(document);
}

export function language() {
  return current;
}

/** The message `key` with {placeholders} filled from `params` (numbers localised). */
export function t(key, params = {}) {
  const template = messages[key] ?? fallback[key] ?? key;
  return template.replace(/\{(\w+)\}/g, (whole, name) => {
    if (!(name in params)) return whole;
    const value = params[name];
    return typeof value === "number" ? formatNumber(value) : String(value);
  });
}

export function has(key) {
  return key in messages || key in fallback;
}

export function formatNumber(value) {
  return new Intl.NumberFormat(current).format(value);
}

export function formatMoney(amount, currency) {
  return new Intl.NumberFormat(current, { style: "currency", currency }).format(Number(amount));
}

export function formatDate(iso) {
  return new Intl.DateTimeFormat(current, { dateStyle: "medium", timeStyle: "short" }).format(
    new Date(iso),
  );
}

/** Fill every [data-i18n] element's text and [data-i18n-attr="attr:key;..."] attributes. */
export function applyI18n(root) {
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll("[data-i18n-attr]")) {
    for (const pair of el.dataset.i18nAttr.split(";")) {
      const [attr, key] = pair.split(":");
      el.setAttribute(attr, t(key));
    }
  }
}
