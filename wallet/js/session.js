// The signed-in member: configuration, session (HttpOnly cookie) and signer.

import { api } from "./api.js";
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
  Object.assign(state, { signer: null, custodial: true, signedIn: true });
  return refreshMe();
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
