// Before sign-in: welcome, create, import, back up the recovery phrase, unlock.

import { busy, clear, h } from "../dom.js";
import { t } from "../i18n.js";
import {
  LocalSigner,
  connectInjected,
  createPasskeyWallet,
  createWallet,
  discoverInjected,
  forgetWallet,
  importPasskeyWallet,
  importWallet,
  storedWallet,
  unlockWallet,
  unlockWithPasskey,
} from "../keys.js";
import { passkeysOffered } from "../passkeys.js";
import { signIn } from "../session.js";
import { alertBox, field, heading, keyProgress, short, showError } from "../ui.js";

/** Welcome: create, import, or use a browser wallet. `app.enter()` opens the wallet. */
export function renderWelcome(main, app, error = null) {
  const box = alertBox();
  const injectedList = h("ul", { class: "injected-list" });
  const injectedCard = h(
    "section",
    { class: "card", hidden: true, "aria-labelledby": "injected-title" },
    h("h2", { id: "injected-title" }, t("welcome.injectedTitle")),
    h("p", {}, t("welcome.injectedText")),
    injectedList,
  );
  discoverInjected((wallets) => {
    clear(injectedList);
    injectedCard.hidden = false;
    for (const announced of wallets) {
      const button = h("button", { type: "button", class: "secondary" });
      if (announced.info.icon && announced.info.icon.startsWith("data:image/")) {
        button.append(h("img", { src: announced.info.icon, alt: "", width: "20", height: "20" }));
      }
      button.append(t("welcome.useInjected", { name: announced.info.name }));
      button.addEventListener("click", async () => {
        const done = busy(button, t("welcome.connecting"));
        showError(box, null);
        try {
          const signer = await connectInjected(announced);
          await signIn(signer);
          app.enter();
        } catch (e) {
          showError(box, e);
        } finally {
          done();
        }
      });
      injectedList.append(h("li", {}, button));
    }
  });
  clear(main).append(
    heading(t("welcome.title")),
    h("p", { class: "lead" }, t("welcome.lead")),
    box,
    h(
      "div",
      { class: "choices" },
      h(
        "section",
        { class: "card" },
        h("h2", {}, t("welcome.createTitle")),
        h("p", {}, t("welcome.createText")),
        h("button", { type: "button", class: "primary", onclick: () => renderCreate(main, app) }, t("welcome.create")),
      ),
      h(
        "section",
        { class: "card" },
        h("h2", {}, t("welcome.importTitle")),
        h("p", {}, t("welcome.importText")),
        h("button", { type: "button", class: "secondary", onclick: () => renderImport(main, app) }, t("welcome.import")),
      ),
      injectedCard,
    ),
    h("p", { class: "muted" }, t("welcome.custodialNote")),
  );
  if (error) showError(box, error);
  main.querySelector("h1").focus();
}

/** Password + confirmation fields shared by create, import and claim. */
export function passwordFields() {
  const password = field(t("keys.password"), { type: "password", autocomplete: "new-password", required: true, minlength: "8" }, t("keys.passwordHint"));
  const confirm = field(t("keys.confirm"), { type: "password", autocomplete: "new-password", required: true });
  return { password, confirm };
}

/**
 * Where the browser offers passkeys with PRF: a choice to protect the key with one
 * (`protect()` makes the wallet and goes on), above the password fields that stay the
 * fallback. Hidden until the browser answers, and for good where it cannot.
 */
function passkeyChoice(protect, passwordInput) {
  const box = alertBox();
  const button = h("button", { type: "button", class: "primary" }, t("passkey.use"));
  const choice = h(
    "div",
    { class: "passkey-choice", hidden: true },
    h("h2", {}, t("passkey.title")),
    h("p", {}, t("passkey.text")),
    box,
    h("div", { class: "actions" }, button),
    h("h2", { class: "or" }, t("passkey.orPassword")),
  );
  button.addEventListener("click", async () => {
    showError(box, null);
    const done = busy(button, t("passkey.working"));
    try {
      await protect();
    } catch (e) {
      showError(box, e);
      done();
      if (e.code === "passkey_no_prf") passwordInput.focus();
    }
  });
  passkeysOffered().then((offered) => {
    choice.hidden = !offered;
    choice.dataset.passkeys = offered ? "offered" : "unavailable";
  });
  return choice;
}

export function renderCreate(main, app, { onCreated } = {}) {
  const box = alertBox();
  const { password, confirm } = passwordFields();
  const progress = keyProgress();
  const submit = h("button", { type: "submit", class: "primary" }, t("create.submit"));
  const backUp = (wallet) =>
    renderBackup(main, wallet, async () => {
      if (onCreated) return onCreated(wallet);
      await signIn(new LocalSigner(wallet));
      app.enter();
    });
  const form = h(
    "form",
    { class: "card", novalidate: true },
    passkeyChoice(async () => backUp(await createPasskeyWallet()), password.input),
    h("p", {}, t("create.text")),
    password.wrap,
    confirm.wrap,
    progress.wrap,
    box,
    h("div", { class: "actions" }, submit, h("button", { type: "button", class: "link-button", onclick: () => renderWelcome(main, app) }, t("common.back"))),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    showError(box, null);
    const done = busy(submit, t("create.working"));
    progress.start();
    try {
      backUp(await createWallet(password.input.value, confirm.input.value, progress.update));
    } catch (e) {
      showError(box, e);
      done();
    } finally {
      progress.stop();
    }
  });
  clear(main).append(heading(t("create.title")), form);
  main.querySelector("h1").focus();
}

export function renderImport(main, app, { onImported } = {}) {
  const box = alertBox();
  const secret = field(t("import.secret"), { tag: "textarea", rows: "3", autocomplete: "off", spellcheck: "false", required: true }, t("import.secretHint"));
  const { password, confirm } = passwordFields();
  const progress = keyProgress();
  const submit = h("button", { type: "submit", class: "primary" }, t("import.submit"));
  async function imported(wallet) {
    secret.input.value = "";
    if (onImported) {
      await onImported(wallet);
    } else {
      await signIn(new LocalSigner(wallet));
      app.enter();
    }
  }
  const form = h(
    "form",
    { class: "card", novalidate: true },
    secret.wrap,
    passkeyChoice(async () => imported(await importPasskeyWallet(secret.input.value)), password.input),
    password.wrap,
    confirm.wrap,
    progress.wrap,
    box,
    h("div", { class: "actions" }, submit, h("button", { type: "button", class: "link-button", onclick: () => renderWelcome(main, app) }, t("common.back"))),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    showError(box, null);
    const done = busy(submit, t("import.working"));
    progress.start();
    try {
      await imported(await importWallet(secret.input.value, password.input.value, confirm.input.value, progress.update));
    } catch (e) {
      showError(box, e);
      done();
    } finally {
      progress.stop();
    }
  });
  clear(main).append(heading(t("import.title")), form);
  main.querySelector("h1").focus();
}

/** Show the new wallet's recovery phrase once, behind a warning and a confirmation. */
export function renderBackup(main, wallet, next) {
  const words = wallet.mnemonic ? wallet.mnemonic.phrase.split(" ") : [];
  const list = h("ol", { class: "phrase", role: "list", hidden: true, "aria-label": t("backup.phrase") }, words.map((w) => h("li", {}, w)));
  const reveal = h("button", { type: "button", class: "secondary" }, t("backup.reveal"));
  reveal.addEventListener("click", () => {
    list.hidden = !list.hidden;
    reveal.textContent = list.hidden ? t("backup.reveal") : t("backup.hide");
  });
  const check = h("input", { type: "checkbox", id: "backup-done" });
  const box = alertBox();
  const go = h("button", { type: "button", class: "primary", disabled: true }, t("backup.continue"));
  check.addEventListener("change", () => {
    go.disabled = !check.checked;
  });
  go.addEventListener("click", async () => {
    const done = busy(go, t("backup.signingIn"));
    try {
      await next();
    } catch (e) {
      showError(box, e);
      done();
    }
  });
  clear(main).append(
    heading(t("backup.title")),
    h(
      "section",
      { class: "card" },
      h("p", { class: "warning", role: "note" }, t("backup.warning")),
      h("p", { class: "address-label" }, t("backup.address")),
      h("code", { class: "address" }, wallet.address),
      reveal,
      list,
      h("div", { class: "check" }, check, h("label", { for: "backup-done" }, t("backup.confirm"))),
      box,
      h("div", { class: "actions" }, go),
    ),
  );
  main.querySelector("h1").focus();
}

/** Unlock the stored wallet with its passkey or password, then sign in (or reuse the session). */
export function renderUnlock(main, app) {
  const saved = storedWallet();
  const form = saved.passkey ? passkeyUnlock(saved, app) : passwordUnlock(saved, app);
  const forgetBox = h("details", { class: "card subtle" },
    h("summary", {}, t("unlock.other")),
    h("p", { class: "warning" }, t("unlock.forgetWarning")),
    h("button", { type: "button", class: "danger", onclick: () => { forgetWallet(); renderWelcome(main, app); } }, t("unlock.forget")),
  );
  clear(main).append(heading(t("unlock.title")), form, forgetBox);
  form.querySelector("input, button").focus();
}

function passkeyUnlock(saved, app) {
  const box = alertBox();
  const submit = h("button", { type: "button", class: "primary" }, t("unlock.passkey"));
  submit.addEventListener("click", async () => {
    showError(box, null);
    const done = busy(submit, t("passkey.working"));
    try {
      const wallet = await unlockWithPasskey();
      await signIn(new LocalSigner(wallet));
      app.enter();
    } catch (e) {
      showError(box, e);
      done();
    }
  });
  return h("section", { class: "card" },
    h("p", {}, t("unlock.passkeyText", { address: short(saved.address) })),
    box,
    h("div", { class: "actions" }, submit),
  );
}

function passwordUnlock(saved, app) {
  const box = alertBox();
  const password = field(t("keys.password"), { type: "password", autocomplete: "current-password", required: true });
  const progress = keyProgress();
  const submit = h("button", { type: "submit", class: "primary" }, t("unlock.submit"));
  const form = h(
    "form",
    { class: "card", novalidate: true },
    h("p", {}, t("unlock.text", { address: short(saved.address) })),
    password.wrap,
    progress.wrap,
    box,
    h("div", { class: "actions" }, submit),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    showError(box, null);
    const done = busy(submit, t("unlock.working"));
    progress.start();
    try {
      const wallet = await unlockWallet(password.input.value, progress.update);
      password.input.value = "";
      await signIn(new LocalSigner(wallet));
      app.enter();
    } catch (e) {
      showError(box, e);
      done();
    } finally {
      progress.stop();
    }
  });
  return form;
}
