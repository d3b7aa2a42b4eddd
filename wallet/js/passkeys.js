// Passkeys that protect the in-browser key instead of a password (WebAuthn PRF).
//
// The passkey never signs anything for the gateway: it only yields, after the member's
// fingerprint, face or screen lock, a 32-byte secret of its PRF extension for a salt this
// page chose. HKDF-SHA-256 turns that secret into an AES-256-GCM key that encrypts the
// wallet's key (its recovery phrase, or its private key) in localStorage. Without the
// passkey the stored record is useless; the recovery phrase restores the wallet anywhere.
// Browsers or authenticators without PRF fall back to the password (ethers' keystore).

import { ethers } from "/wallet/vendor/ethers.js";

const HKDF_INFO = "pointsnet wallet key v1";
const TIMEOUT_MS = 120000;

export class PasskeyError extends Error {
  constructor(code) {
    super(code);
    this.code = code;
  }
}

const random = (length) => crypto.getRandomValues(new Uint8Array(length));
const utf8 = (text) => new TextEncoder().encode(text);

/** WebAuthn needs a domain as relying party: a page reached by an IP address cannot. */
function rpId() {
  const host = location.hostname;
  return /^[\d.]+$/.test(host) || host.includes(":") ? null : host;
}

/**
 * Whether to offer a passkey: WebAuthn in a secure context on a domain, the PRF
 * extension, and an authenticator to use (this device's, or a phone's). The
 * authenticator's own PRF support is only known once a passkey is made.
 */
export async function passkeysOffered() {
  if (!window.isSecureContext || !window.PublicKeyCredential || !navigator.credentials || !rpId()) return false;
  try {
    if (typeof PublicKeyCredential.getClientCapabilities === "function") {
      const caps = await PublicKeyCredential.getClientCapabilities();
      return caps["extension:prf"] === true && Boolean(caps.passkeyPlatformAuthenticator || caps.userVerifyingPlatformAuthenticator || caps.hybridTransport);
    }
    return await PublicKeyCredential.isUserVerifyingPlatformAuthenticatorAvailable();
  } catch {
    return false;
  }
}

function passkeyError(error) {
  if (error instanceof PasskeyError) return error;
  if (error && error.name === "NotAllowedError") return new PasskeyError("passkey_cancelled");
  return new PasskeyError("passkey_failed");
}

/** The PRF output of passkey `credentialId` for `salt` (the member confirms). */
async function prfSecret(credentialId, salt) {
  let assertion;
  try {
    assertion = await navigator.credentials.get({
      publicKey: {
        challenge: random(32), // nothing is verified by a server: the secret is the point
        rpId: rpId(),
        allowCredentials: [{ type: "public-key", id: credentialId }],
        userVerification: "required",
        timeout: TIMEOUT_MS,
        extensions: { prf: { eval: { first: salt } } },
      },
    });
  } catch (error) {
    throw passkeyError(error);
  }
  const prf = assertion.getClientExtensionResults().prf;
  if (!prf || !prf.results || !prf.results.first) throw new PasskeyError("passkey_no_prf");
  return new Uint8Array(prf.results.first);
}

/** A new passkey for `address` and its PRF secret; passkey_no_prf when it has none. */
async function newPasskey(address, salt) {
  let credential;
  try {
    credential = await navigator.credentials.create({
      publicKey: {
        rp: { name: "pointsnet wallet", id: rpId() },
        user: { id: random(16), name: `pointsnet ${address}`, displayName: `pointsnet ${address.slice(0, 6)}…${address.slice(-4)}` },
        challenge: random(32),
        pubKeyCredParams: [
          { type: "public-key", alg: -7 }, // ES256
          { type: "public-key", alg: -257 }, // RS256
        ],
        authenticatorSelection: { residentKey: "preferred", userVerification: "required" },
        timeout: TIMEOUT_MS,
        extensions: { prf: { eval: { first: salt } } },
      },
    });
  } catch (error) {
    throw passkeyError(error);
  }
  const credentialId = new Uint8Array(credential.rawId);
  const prf = credential.getClientExtensionResults().prf;
  if (!prf || !prf.enabled) {
    forgetPasskey(credentialId);
    throw new PasskeyError("passkey_no_prf");
  }
  // Some authenticators only answer PRF in an assertion: ask once more.
  const secret = prf.results && prf.results.first ? new Uint8Array(prf.results.first) : await prfSecret(credentialId, salt);
  return { credentialId, secret };
}

/** Tell the passkey manager a passkey is of no use here (best effort, where supported). */
function forgetPasskey(credentialId) {
  if (typeof PublicKeyCredential.signalUnknownCredential !== "function") return;
  const base64url = ethers.encodeBase64(credentialId).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  PublicKeyCredential.signalUnknownCredential({ rpId: rpId(), credentialId: base64url }).catch(() => {});
}

async function aesKey(secret, salt) {
  const material = await crypto.subtle.importKey("raw", secret, "HKDF", false, ["deriveKey"]);
  return crypto.subtle.deriveKey(
    { name: "HKDF", hash: "SHA-256", salt, info: utf8(HKDF_INFO) },
    material,
    { name: "AES-GCM", length: 256 },
    false,
    ["encrypt", "decrypt"],
  );
}

/** What restores the wallet: its recovery phrase (and path), or its private key. */
function walletSecret(wallet) {
  if (wallet.mnemonic) return { phrase: wallet.mnemonic.phrase, path: wallet.path };
  return { privateKey: wallet.privateKey };
}

function walletFrom(secret) {
  if (secret.phrase) return ethers.HDNodeWallet.fromPhrase(secret.phrase, undefined, secret.path || undefined);
  return new ethers.Wallet(secret.privateKey);
}

/**
 * Make a passkey for `wallet` and encrypt the wallet's key with it. Returns the record's
 * `passkey` part: {credentialId, prfSalt, hkdfSalt, iv, ciphertext} (base64), the
 * ciphertext bound to the address (AES-GCM additional data).
 */
export async function protectWithPasskey(wallet) {
  const prfSalt = random(32);
  const { credentialId, secret } = await newPasskey(wallet.address, prfSalt);
  const hkdfSalt = random(32);
  const iv = random(12);
  const key = await aesKey(secret, hkdfSalt);
  const plaintext = utf8(JSON.stringify(walletSecret(wallet)));
  const ciphertext = await crypto.subtle.encrypt({ name: "AES-GCM", iv, additionalData: utf8(wallet.address) }, key, plaintext);
  return {
    credentialId: ethers.encodeBase64(credentialId),
    prfSalt: ethers.encodeBase64(prfSalt),
    hkdfSalt: ethers.encodeBase64(hkdfSalt),
    iv: ethers.encodeBase64(iv),
    ciphertext: ethers.encodeBase64(new Uint8Array(ciphertext)),
  };
}

/** Decrypt the wallet of `record` ({address, passkey}) with its passkey. */
export async function openWithPasskey(record) {
  const sealed = record.passkey;
  const secret = await prfSecret(ethers.decodeBase64(sealed.credentialId), ethers.decodeBase64(sealed.prfSalt));
  const key = await aesKey(secret, ethers.decodeBase64(sealed.hkdfSalt));
  let plaintext;
  try {
    plaintext = await crypto.subtle.decrypt(
      { name: "AES-GCM", iv: ethers.decodeBase64(sealed.iv), additionalData: utf8(record.address) },
      key,
      ethers.decodeBase64(sealed.ciphertext),
    );
  } catch {
    throw new PasskeyError("passkey_wrong");
  }
  const wallet = walletFrom(JSON.parse(new TextDecoder().decode(plaintext)));
  if (wallet.address !== record.address) throw new PasskeyError("passkey_wrong");
  return wallet;
}
