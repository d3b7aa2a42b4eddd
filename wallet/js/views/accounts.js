// Accounts (link a partner account; claim a custodial account) and Settings (backup, sign out).

import { api } from "../api.js";
import { busy, clear, h } from "../dom.js";
import { t } from "../i18n.js";
import { LocalSigner, forgetWallet, keystoreDownload, saveWithPasskey, storedWallet, unlockWallet, unlockWithPasskey } from "../keys.js";
import { passkeysOffered } from "../passkeys.js";
import { refreshMe, signIn, state } from "../session.js";
import { alertBox, field, heading, keyProgress, notify, showError, short } from "../ui.js";
import { renderCreate, renderImport } from "./onboarding.js";

export function renderAccounts(main, app) {
  clear(main).append(heading(t("accounts.title")));
  if (state.custodial) {
    main.append(claimCard(main, app));
  } else {
    main.append(linkCard());
  }
  main.append(linkedCard());
  main.querySelector("h1").focus();
}

/** Normalise a link code as the gateway does: 8 characters, shown ABCD-EFGH. */
export function normalizeCode(code) {
  const compact = code.replace(/[\s-]/g, "").toUpperCase();
  return compact.length === 8 ? `${compact.slice(0, 4)}-${compact.slice(4)}` : compact;
}

function linkCard() {
  const box = alertBox();
  const code = field(t("link.code"), { type: "text", autocomplete: "off", spellcheck: "false", autocapitalize: "characters", placeholder: "ABCD-EFGH", required: true }, t("link.codeHint"));
  const submit = h("button", { type: "submit", class: "primary" }, t("link.submit"));
  const result = h("p", { class: "success", "aria-live": "polite" });
  const form = h("form", { class: "card", novalidate: true },
    h("h2", {}, t("link.title")),
    h("p", {}, t("link.text")),
    code.wrap,
    box,
    h("div", { class: "actions" }, submit),
    result,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    showError(box, null);
    result.textContent = "";
    const done = busy(submit, t("send.signing"));
    try {
      const normalized = normalizeCode(code.input.value);
      const message = state.config.link_message.replace("{code}", normalized);
      const signature = await state.signer.signMessage(message);
      const linked = await api("POST", "/v1/wallet/link", { code: normalized, signature });
      code.input.value = "";
      result.textContent = t("link.done", { merchant: linked.merchant_name });
      await refreshMe();
      const list = document.getElementById("linked-list");
      if (list) list.replaceWith(linkedList());
    } catch (e) {
      showError(box, e);
    } finally {
      done();
    }
  });
  return form;
}

function linkedList() {
  const accounts = (state.me && state.me.linked_accounts) || [];
  if (!accounts.length) return h("p", { id: "linked-list", class: "muted" }, t("accounts.none"));
  return h("ul", { id: "linked-list", class: "linked" }, accounts.map((a) => h("li", {}, a.merchant_name)));
}

function linkedCard() {
  return h("section", { class: "card" }, h("h2", {}, t("accounts.linked")), linkedList());
}

/** Custodial members: move everything to a wallet of their own (new or imported). */
function claimCard(main, app) {
  const box = alertBox();
  async function claimWith(wallet) {
    const custodial = state.me.address;
    const message = state.config.claim_message.replace("{custodial}", custodial).replace("{address}", wallet.address);
    const signature = await wallet.signMessage(message);
    const claimed = await api("POST", "/v1/wallet/claim", { address: wallet.address, signature });
    await signIn(new LocalSigner(wallet));
    history.replaceState(null, "", "#/home");
    app.enter(); // renders home at once: the hash already names it
    notify(t("claim.done", { points: claimed.amount, address: short(claimed.address) }));
  }
  const fresh = h("button", { type: "button", class: "primary" }, t("claim.create"));
  fresh.addEventListener("click", () => renderCreate(main, app, { onCreated: claimWith }));
  const existing = h("button", { type: "button", class: "secondary" }, t("claim.import"));
  existing.addEventListener("click", () => renderImport(main, app, { onImported: claimWith }));
  return h("section", { class: "card banner" },
    h("h2", {}, t("claim.title")),
    h("p", {}, t("claim.text")),
    box,
    h("div", { class: "actions" }, fresh, existing),
  );
}

// ---------------------------------------------------------------- settings

export function renderSettings(main, app) {
  clear(main).append(heading(t("settings.title")));
  const saved = storedWallet();
  if (saved && state.signer && state.signer.kind === "local") {
    main.append(exportCard(saved));
    if (saved.keystore) main.append(passkeySwitchCard(main, app));
  }
  if (state.signer && state.signer.kind === "injected") {
    main.append(h("section", { class: "card" }, h("h2", {}, t("settings.injected")), h("p", {}, t("settings.injectedText", { name: state.signer.info.name }))));
  }
  if (state.custodial) main.append(h("section", { class: "card" }, h("h2", {}, t("settings.custodial")), h("p", {}, t("settings.custodialText"))));
  main.append(sessionCard(app));
  if (saved) main.append(forgetCard(app));
  main.querySelector("h1").focus();
}

function exportCard(saved) {
  const box = alertBox();
  const download = keystoreDownload();
  const secrets = h("div", { class: "secrets", hidden: true });
  // A passkey wallet is opened with its passkey; a password wallet with its password.
  const password = saved.keystore ? field(t("keys.password"), { type: "password", autocomplete: "current-password", required: true }) : null;
  const progress = keyProgress();
  const reveal = h("button", { type: "submit", class: "danger" }, t("export.reveal"));
  const form = h("form", { novalidate: true }, password ? password.wrap : null, progress.wrap, box, h("div", { class: "actions" }, reveal));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    showError(box, null);
    const done = busy(reveal, password ? t("unlock.working") : t("passkey.working"));
    progress.start();
    try {
      const wallet = password ? await unlockWallet(password.input.value, progress.update) : await unlockWithPasskey();
      if (password) password.input.value = "";
      clear(secrets).append(
        h("p", { class: "warning", role: "alert" }, t("export.shown")),
        h("h3", {}, t("export.privateKey")),
        h("code", { class: "secret" }, wallet.privateKey),
        wallet.mnemonic ? h("h3", {}, t("export.phrase")) : null,
        wallet.mnemonic ? h("code", { class: "secret" }, wallet.mnemonic.phrase) : null,
        h("button", { type: "button", class: "secondary", onclick: () => { clear(secrets); secrets.hidden = true; } }, t("export.hide")),
      );
      secrets.hidden = false;
    } catch (e) {
      showError(box, e);
    } finally {
      progress.stop();
      done();
    }
  });
  return h("section", { class: "card" },
    h("h2", {}, t("export.title")),
    h("p", { class: "warning", role: "note" }, t("export.warning")),
    h("p", { class: "address-label" }, t("export.address")),
    h("code", { class: "address" }, saved.address),
    download ? h("a", { class: "button secondary", href: download.url, download: download.filename }, t("export.download")) : null,
    h("p", { class: "muted" }, download ? t("export.downloadHint") : t("export.passkeyHint")),
    form,
    secrets,
  );
}

/** What signing out leaves behind, true of this member's kind of key. */
function sessionText() {
  if (state.custodial) return t("settings.sessionTextCustodial");
  if (state.signer && state.signer.kind === "injected") return t("settings.sessionTextInjected", { name: state.signer.info.name });
  return t("settings.sessionText");
}

/** A password wallet, where passkeys are offered: protect the key with a passkey instead. */
function passkeySwitchCard(main, app) {
  const box = alertBox();
  const password = field(t("passkey.password"), { type: "password", autocomplete: "current-password", required: true });
  const progress = keyProgress();
  const submit = h("button", { type: "submit", class: "secondary" }, t("passkey.switch"));
  const form = h("form", { class: "card passkey-switch", novalidate: true, hidden: true },
    h("h2", {}, t("passkey.switchTitle")),
    h("p", {}, t("passkey.switchText")),
    password.wrap,
    progress.wrap,
    box,
    h("div", { class: "actions" }, submit),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    showError(box, null);
    const done = busy(submit, t("passkey.working"));
    progress.start();
    try {
      const wallet = await unlockWallet(password.input.value, progress.update);
      password.input.value = "";
      progress.stop();
      await saveWithPasskey(wallet);
      renderSettings(main, app);
      notify(t("passkey.switched"));
    } catch (e) {
      showError(box, e);
      done();
    } finally {
      progress.stop();
    }
  });
  passkeysOffered().then((offered) => {
    form.hidden = !offered;
    form.dataset.passkeys = offered ? "offered" : "unavailable";
  });
  return form;
}

function sessionCard(app) {
  const out = h("button", { type: "button", class: "secondary" }, t("app.signOut"));
  out.addEventListener("click", () => app.signOut());
  return h("section", { class: "card" }, h("h2", {}, t("settings.session")), h("p", { "data-testid": "session-text" }, sessionText()), out);
}

function forgetCard(app) {
  const check = h("input", { type: "checkbox", id: "forget-confirm" });
  const forget = h("button", { type: "button", class: "danger", disabled: true }, t("unlock.forget"));
  check.addEventListener("change", () => {
    forget.disabled = !check.checked;
  });
  forget.addEventListener("click", async () => {
    forgetWallet();
    await app.signOut();
  });
  return h("section", { class: "card" },
    h("h2", {}, t("settings.forget")),
    h("p", { class: "warning" }, t("unlock.forgetWarning")),
    h("div", { class: "check" }, check, h("label", { for: "forget-confirm" }, t("settings.forgetConfirm"))),
    h("div", { class: "actions" }, forget),
  );
}

