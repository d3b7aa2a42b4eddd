// The wallet page: boot, routes (#/home, #/history, #/send, #/rewards, #/earn,
// #/accounts, #/settings) and the language switch. Screens live in views/.

import { ApiError } from "./api.js";
import { clear, h } from "./dom.js";
import { applyI18n, preferredLanguage, setLanguage, t } from "./i18n.js";
import { storedWallet } from "./keys.js";
import { loadConfig, resumeAfterRefusedLink, resumeCustodial, signOut, state, useLoginLink } from "./session.js";
import { dismissStatus, errorMessage, notify } from "./ui.js";
import { renderAccounts, renderSettings } from "./views/accounts.js";
import { renderRewards, renderSend } from "./views/actions.js";
import { renderEarn } from "./views/earn.js";
import { renderHistory, renderHome } from "./views/home.js";
import { renderUnlock, renderWelcome } from "./views/onboarding.js";

const ROUTES = {
  home: renderHome,
  history: renderHistory,
  send: renderSend,
  rewards: renderRewards,
  earn: renderEarn,
  accounts: renderAccounts,
  settings: renderSettings,
};

const main = document.getElementById("main");
const nav = document.getElementById("nav");
const signOutButton = document.getElementById("signout");
let current = null;
let leaveHandlers = [];
// What is on screen before sign-in, to redraw it in another language.
let preSignIn = null;

const app = {
  /** Open the wallet after sign-in. */
  enter() {
    nav.hidden = false;
    signOutButton.hidden = false;
    preSignIn = null;
    const route = routeFromHash();
    if (location.hash !== `#/${route}`) location.hash = `#/${route}`;
    else render(route);
  },
  onLeave(handler) {
    leaveHandlers.push(handler);
  },
  async signOut() {
    await signOut().catch(() => {});
    nav.hidden = true;
    signOutButton.hidden = true;
    current = null;
    history.replaceState(null, "", location.pathname);
    showStart();
  },
};

function routeFromHash() {
  const name = location.hash.replace(/^#\/?/, "");
  return name in ROUTES ? name : "home";
}

function render(route) {
  for (const handler of leaveHandlers) handler();
  leaveHandlers = [];
  dismissStatus();
  current = route;
  for (const link of nav.querySelectorAll("a[data-route]")) {
    if (link.dataset.route === route) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  ROUTES[route](main, app);
}

function showStart(error = null) {
  if (storedWallet()) {
    preSignIn = () => renderUnlock(main, app);
  } else {
    preSignIn = () => renderWelcome(main, app, error);
  }
  preSignIn();
}

function showFatal(error) {
  clear(main).append(
    h("h1", { class: "page-title" }, t("errors.title")),
    h("p", { class: "error", role: "alert" }, errorMessage(error)),
    h("button", { type: "button", class: "primary", onclick: () => location.reload() }, t("common.retry")),
  );
}

async function boot() {
  const select = document.getElementById("lang");
  await setLanguage(preferredLanguage());
  select.value = document.documentElement.lang;
  select.addEventListener("change", async () => {
    await setLanguage(select.value);
    applyI18n(document);
    if (state.signedIn && current) render(current);
    else if (preSignIn) preSignIn();
  });
  signOutButton.addEventListener("click", () => app.signOut());
  window.addEventListener("hashchange", () => {
    if (state.signedIn) render(routeFromHash());
  });

  try {
    await loadConfig();
  } catch (error) {
    showFatal(error);
    return;
  }

  const params = new URLSearchParams(location.hash.replace(/^#/, ""));
  const loginToken = params.get("login");
  if (loginToken) {
    history.replaceState(null, "", `${location.pathname}#/home`); // the token is single-use: drop it
    try {
      await useLoginLink(loginToken);
      app.enter();
      return;
    } catch (error) {
      const why = await resumeAfterRefusedLink(loginToken, error);
      if (why) {
        app.enter();
        notify(t(why));
      } else {
        showStart(error);
      }
      return;
    }
  }
  if (!storedWallet()) {
    try {
      if (await resumeCustodial()) {
        app.enter();
        return;
      }
    } catch (error) {
      if (!(error instanceof ApiError) || error.status !== 401) {
        showStart(error);
        return;
      }
    }
  }
  showStart();
}

boot();
