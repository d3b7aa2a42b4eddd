// The signed-in member: configuration, session (HttpOnly cookie) and signer.

import { ApiError, api } from "./api.js";
import { siweMessage } from "./siwe.js";

export const state = {
  config: null, // GET /v1/wallet/config
  me: null, // GET /v1/wallet/me
  signer: null, // LocalSigner | InjectedSigner | null (custodial: the gateway signs)
  custodial: false,
  signedIn: false,
};

const SIGN_IN_VALIDITY_MS = 10 * 60 * 1000;

export async function loadConfig() {
  state.config = await api("GET", "/v1/wallet/config");
  return state.config;
}

export async function refreshMe() {
  state.me = await api("GET", "/v1/wallet/me");
  return state.me;
}

/** Sign in with `signer` (SIWE), or reuse an open session of the same address. */
export async function signIn(signer) {
  try {
    const me = await refreshMe();
    if (!me.custodial && me.address === signer.address) {
      Object.assign(state, { signer, custodial: false, signedIn: true });
      return me;
    }
  } catch (error) {
    if (error.status !== 401) throw error;
  }
  const { nonce, statement } = await api("POST", "/v1/wallet/siwe/nonce");
  const now = new Date();
  const message = siweMessage({
    domain: location.host,
    address: signer.address,
    statement,
    uri: `${location.origin}/wallet/`,
    chainId: state.config.chain_id,
    nonce,
    issuedAt: now.toISOString(),
    expirationTime: new Date(now.getTime() + SIGN_IN_VALIDITY_MS).toISOString(),
  });
  const signature = await signer.signMessage(message);
  await api("POST", "/v1/wallet/siwe/verify", { message, signature });
  Object.assign(state, { signer, custodial: false, signedIn: true });
  return refreshMe();
}

/** Trade a merchant's one-time login link for a custodial session. */
export async function useLoginLink(token) {
  await api("POST", "/v1/wallet/login-link", { token });
  await rememberUsedLink(token);
  Object.assign(state, { signer: null, custodial: true, signedIn: true });
  return refreshMe();
}

// Digests of the login links this browser traded (the last few): a link opened again
// is then known to be used, whatever the gateway's answer says.
const USED_LINKS_KEY = "pointsnet.usedLoginLinks";
const USED_LINKS_KEPT = 8;

async function linkDigest(token) {
  if (!crypto.subtle) return null; // not a secure context: nothing is remembered
  const hash = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(token));
  return Array.from(new Uint8Array(hash), (b) => b.toString(16).padStart(2, "0")).join("");
}

function usedLinks() {
  try {
    const list = JSON.parse(localStorage.getItem(USED_LINKS_KEY) || "[]");
    return Array.isArray(list) ? list : [];
  } catch {
    return [];
  }
}

async function rememberUsedLink(token) {
  const digest = await linkDigest(token);
  if (!digest) return;
  const kept = [digest, ...usedLinks().filter((d) => d !== digest)].slice(0, USED_LINKS_KEPT);
  localStorage.setItem(USED_LINKS_KEY, JSON.stringify(kept));
}

/**
 * A login link the gateway refused while this browser still has a custodial session
 * (the member opened the link again): resume that session and return the key of the
 * message that says why the link did nothing; null when there is no session to keep.
 * `login_link_used` is the gateway's answer for a link already traded; the older
 * `login_link_invalid` (used, unknown or expired) counts as used when this browser
 * traded the link itself.
 */
export async function resumeAfterRefusedLink(token, error) {
  if (!(error instanceof ApiError) || !["login_link_used", "login_link_invalid"].includes(error.code)) return null;
  let me = null;
  try {
    me = await resumeCustodial();
  } catch {
    return null;
  }
  if (!me) return null;
  const digest = await linkDigest(token);
  const used = error.code === "login_link_used" || (digest !== null && usedLinks().includes(digest));
  return used ? "login.alreadyUsed" : "login.invalidSignedIn";
}

/** Resume a custodial session kept in the cookie (after a reload). */
export async function resumeCustodial() {
  const me = await refreshMe();
  if (!me.custodial) return null;
  Object.assign(state, { signer: null, custodial: true, signedIn: true });
  return me;
}

export async function signOut() {
  try {
    await api("POST", "/v1/wallet/logout");
  } finally {
    Object.assign(state, { signer: null, me: null, custodial: false, signedIn: false });
  }
}
