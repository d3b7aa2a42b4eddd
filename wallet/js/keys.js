// Keys never leave the browser: a wallet is created or imported here, kept in
// localStorage only encrypted, and decrypted into memory when the member unlocks it:
// with a passkey where the browser offers WebAuthn PRF (passkeys.js), else with a
// password (ethers' scrypt + AES keystore JSON). Browser wallets announced through
// EIP-6963 are offered too.

import { ethers } from "/wallet/vendor/ethers.js";
import { openWithPasskey, protectWithPasskey } from "./passkeys.js";

const STORAGE_KEY = "pointsnet.keystore";
export const MIN_PASSWORD = 8;

export class KeyError extends Error {
  constructor(code) {
    super(code);
    this.code = code;
  }
}

/** The stored wallet ({address, keystore | passkey, createdAt}) or null. */
export function storedWallet() {
  try {
    const saved = JSON.parse(localStorage.getItem(STORAGE_KEY) || "null");
    return saved && saved.address && (saved.keystore || saved.passkey) ? saved : null;
  } catch {
    return null;
  }
}

export function forgetWallet() {
  localStorage.removeItem(STORAGE_KEY);
}

function checkPassword(password, confirmation) {
  if (password.length < MIN_PASSWORD) throw new KeyError("password_too_short");
  if (confirmation !== undefined && password !== confirmation) throw new KeyError("password_mismatch");
}

function store(record) {
  localStorage.setItem(STORAGE_KEY, JSON.stringify({ ...record, createdAt: new Date().toISOString() }));
}

async function save(wallet, password, onProgress) {
  const keystore = await wallet.encrypt(password, (p) => onProgress && onProgress(p));
  store({ address: wallet.address, keystore });
}

/** Keep `wallet` encrypted with a new passkey (instead of a password). */
export async function saveWithPasskey(wallet) {
  store({ address: wallet.address, passkey: await protectWithPasskey(wallet) });
}

/** A new random wallet with a 12-word recovery phrase, saved encrypted. */
export async function createWallet(password, confirmation, onProgress) {
  checkPassword(password, confirmation);
  const wallet = ethers.Wallet.createRandom();
  await save(wallet, password, onProgress);
  return wallet;
}

/** Import a private key (64 hex digits) or a BIP-39 recovery phrase, saved encrypted. */
export async function importWallet(secret, password, confirmation, onProgress) {
  checkPassword(password, confirmation);
  const wallet = walletFromSecret(secret);
  await save(wallet, password, onProgress);
  return wallet;
}

/** A new random wallet with a 12-word recovery phrase, kept with a new passkey. */
export async function createPasskeyWallet() {
  const wallet = ethers.Wallet.createRandom();
  await saveWithPasskey(wallet);
  return wallet;
}

/** Import a private key or recovery phrase, kept with a new passkey. */
export async function importPasskeyWallet(secret) {
  const wallet = walletFromSecret(secret);
  await saveWithPasskey(wallet);
  return wallet;
}

export function walletFromSecret(secret) {
  const text = secret.trim();
  if (/^(0x)?[0-9a-fA-F]{64}$/.test(text)) {
    try {
      return new ethers.Wallet(text.startsWith("0x") ? text : `0x${text}`);
    } catch {
      throw new KeyError("invalid_private_key");
    }
  }
  const phrase = text.toLowerCase().split(/\s+/).join(" ");
  if (!ethers.Mnemonic.isValidMnemonic(phrase)) throw new KeyError("invalid_secret");
  return ethers.Wallet.fromPhrase(phrase);
}

/** Decrypt the stored wallet with `password`. */
export async function unlockWallet(password, onProgress) {
  const saved = storedWallet();
  if (!saved || !saved.keystore) throw new KeyError("no_wallet");
  try {
    return await ethers.Wallet.fromEncryptedJson(saved.keystore, password, (p) => onProgress && onProgress(p));
  } catch {
    throw new KeyError("wrong_password");
  }
}

/** Decrypt the stored wallet with its passkey (the member confirms in the browser). */
export async function unlockWithPasskey() {
  const saved = storedWallet();
  if (!saved || !saved.passkey) throw new KeyError("no_wallet");
  return openWithPasskey(saved);
}

/** A download link for the encrypted keystore file (safe to keep as a backup). */
export function keystoreDownload() {
  const saved = storedWallet();
  if (!saved || !saved.keystore) return null;
  const blob = new Blob([saved.keystore], { type: "application/json" });
  return {
    url: URL.createObjectURL(blob),
    filename: `pointsnet-wallet-${saved.address.slice(2, 10).toLowerCase()}.json`,
  };
}

// ---------------------------------------------------------------- signers

/** Signs with a key held in this page. */
export class LocalSigner {
  constructor(wallet) {
    this.wallet = wallet;
    this.address = wallet.address;
    this.kind = "local";
  }

  signMessage(text) {
    return this.wallet.signMessage(text);
  }

  signTypedData(domain, types, value) {
    return this.wallet.signTypedData(domain, types, value);
  }
}

/** Signs through an injected EIP-1193 wallet (the user confirms in that wallet). */
export class InjectedSigner {
  constructor(info, provider, address) {
    this.info = info;
    this.provider = provider;
    this.address = ethers.getAddress(address);
    this.kind = "injected";
  }

  signMessage(text) {
    return this.provider.request({
      method: "personal_sign",
      params: [ethers.hexlify(ethers.toUtf8Bytes(text)), this.address],
    });
  }

  signTypedData(domain, types, value) {
    const payload = ethers.TypedDataEncoder.getPayload(domain, types, value);
    return this.provider.request({
      method: "eth_signTypedData_v4",
      params: [this.address, JSON.stringify(payload)],
    });
  }
}

/** Connect to an announced provider and return its signer. */
export async function connectInjected(announced) {
  const accounts = await announced.provider.request({ method: "eth_requestAccounts" });
  if (!accounts || !accounts.length) throw new KeyError("no_account");
  return new InjectedSigner(announced.info, announced.provider, accounts[0]);
}

/** EIP-6963: collect wallets that announce themselves; `onChange(list)` on each new one. */
export function discoverInjected(onChange) {
  const found = new Map();
  window.addEventListener("eip6963:announceProvider", (event) => {
    const { info, provider } = event.detail || {};
    if (!info || !info.uuid || !provider || found.has(info.uuid)) return;
    found.set(info.uuid, { info, provider });
    onChange([...found.values()]);
  });
  window.dispatchEvent(new Event("eip6963:requestProvider"));
  return () => [...found.values()];
}

// ---------------------------------------------------------------- typed data

export const TRANSFER_TYPES = {
  TransferRequest: [
    { name: "from", type: "address" },
    { name: "to", type: "address" },
    { name: "amount", type: "uint256" },
    { name: "nonce", type: "uint256" },
    { name: "deadline", type: "uint256" },
  ],
};

export const REDEMPTION_TYPES = {
  Redemption: [
    { name: "member", type: "address" },
    { name: "merchantId", type: "uint32" },
    { name: "amount", type: "uint256" },
    { name: "ref", type: "bytes32" },
    { name: "nonce", type: "uint256" },
    { name: "deadline", type: "uint256" },
  ],
};

export function domainOf(config) {
  return {
    name: config.eip712_name,
    version: config.eip712_version,
    chainId: config.chain_id,
    verifyingContract: config.hub,
  };
}

/** The bytes32 a member signs for reward `rewardId` (the gateway's redemption_ref). */
export function rewardRef(rewardId) {
  return ethers.id(`reward:${rewardId}`);
}

export const isAddress = (value) => ethers.isAddress(value);
export const checksum = (value) => ethers.getAddress(value);
