// Small DOM and formatting helpers. Text from the chain (merchant names, rule
// descriptions) is attacker-controlled: it only ever goes in via textContent.

const numberFormat = new Intl.NumberFormat("en-US");

/** An element with attributes and children (strings become text nodes). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function $(id) {
  return document.getElementById(id);
}

export function setText(id, text) {
  $(id).textContent = text;
}

export function fmt(n) {
  if (n === null || n === undefined || n === "") return "";
  return numberFormat.format(n);
}

/** 0x1234…abcd, with the full value as a tooltip. */
export function short(hex, head = 6, tail = 4) {
  if (!hex) return "";
  return hex.length > head + tail + 1 ? `${hex.slice(0, head)}…${hex.slice(-tail)}` : hex;
}

export function mono(hex, head, tail) {
  return el("span", { class: "mono", title: hex }, short(hex, head, tail));
}

/** "2026-11-20T10:00:00Z" -> "2026-11-20 10:00:00". */
export function when(iso) {
  return iso ? iso.replace("T", " ").replace("Z", "") : "";
}

/** Micro-units of a currency -> "USD 1.67". */
export function money(micros, currency) {
  const sign = micros < 0 ? "-" : "";
  const abs = Math.abs(micros);
  const whole = Math.floor(abs / 1e6);
  let frac = String(abs % 1e6).padStart(6, "0").replace(/0+$/, "");
  if (frac.length < 2) frac = frac.padEnd(2, "0");
  return `${currency} ${sign}${numberFormat.format(whole)}.${frac}`;
}

export function replaceRows(tbody, rows, emptyText, columns) {
  tbody.replaceChildren();
  if (!rows.length) {
    tbody.append(el("tr", { class: "empty" }, el("td", { colspan: columns }, emptyText)));
    return;
  }
  tbody.append(...rows);
}

export function cell(content, cls) {
  return el("td", cls ? { class: cls } : {}, content);
}
