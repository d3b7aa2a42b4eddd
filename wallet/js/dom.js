// Tiny DOM helpers: build elements without innerHTML (the page's CSP forbids inline code).

/**
 * h("button", {class: "primary", onclick: fn, "aria-busy": "true"}, "Save")
 * Attributes starting with "on" become listeners; `null`/`false` attributes are skipped.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      el.addEventListener(name.slice(2), value);
    } else if (name === "class") {
      el.className = value;
    } else if (name === "text") {
      el.textContent = value;
    } else if (name in el && typeof value !== "string") {
      el[name] = value;
    } else {
      el.setAttribute(name, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

/** Parse a trusted SVG string (made by our own code) into an element. */
export function svgElement(markup) {
  const doc = new DOMParser().parseFromString(markup, "image/svg+xml");
  return document.importNode(doc.documentElement, true);
}

/** Mark a button busy (disabled, aria-busy, temporary label) until `done()` is called. */
export function busy(button, label) {
  const previous = button.textContent;
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  if (label) button.textContent = label;
  return () => {
    button.disabled = false;
    button.removeAttribute("aria-busy");
    button.textContent = previous;
  };
}

let uid = 0;
/** A unique element id (for label/for and aria-describedby pairs). */
export function newId(prefix = "f") {
  uid += 1;
  return `${prefix}-${uid}`;
}
