"""Secrets at rest and in transit: API keys, custodial keys, webhook signatures.

- Merchant API keys are random (256 bits), shown once, and stored only as a
  SHA-256 hash (a slow hash adds nothing for keys of that entropy).
- Webhook secrets, merchant signer keys and older custodial member keys are
  encrypted with Fernet (AES-128-CBC + HMAC-SHA256) under a key derived from
  the gateway's secret.
- Custodial member keys are *derived* (:meth:`SecretBox.custodial_key`): HMAC-SHA256
  under a second, domain-separated key of the same secret, over the
  (merchant id, customer id) of the member's first link.  Nothing is stored, a
  restore from any backup yields the same addresses, and no counter is involved.
  The consequence: the gateway's secret can no longer be rotated without
  migrating those members (moving their points to new keys), because the
  secret *is* their keys (docs/PRODUCTION.md, "Custodial keys").
- Webhooks carry ``Pointsnet-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "t.body">``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from typing import Final

from cryptography.fernet import Fernet, InvalidToken

API_KEY_PREFIX = "pn_live_"
#: secp256k1's group order: a private key is in [1, n).
_SECP256K1_N: Final = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
#: Domain of the custodial key derivation (versioned: a new scheme gets a new label).
CUSTODIAL_DOMAIN: Final = b"pointsnet custodial v1"


def new_api_key() -> str:
    """A fresh merchant API key (shown once, never stored in clear)."""
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def hash_api_key(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


def api_key_prefix(api_key: str) -> str:
    """The first characters of a key, safe to show in listings and logs."""
    return api_key[: len(API_KEY_PREFIX) + 4]


class SecretBox:
    """Encrypts and decrypts small secrets under the gateway's secret key."""

    def __init__(self, secret: bytes) -> None:
        derived = hashlib.sha256(b"pointsnet-secretbox-v1" + secret).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(derived))
        # A key of its own for custodial keys: neither key reveals the other.
        self._custodial = hmac.new(secret, b"pointsnet-custodial-master-v1", "sha256").digest()

    def custodial_key(self, merchant_id: int, customer_id: str) -> bytes:
        """The 32-byte secp256k1 private key of the member first linked as this customer.

        ``HMAC-SHA256(custodial master, "pointsnet custodial v1" | merchant id |
        customer id)`` (length-prefixed fields, so no two pairs share an input),
        re-hashed in the negligible case it is not a valid key.  Deterministic:
        the same secret gives the same key after any restore, and the key is
        never stored.  It depends on the secret, which therefore cannot be rotated
        without moving these members' points to new keys.
        """
        customer = customer_id.encode()
        message = b"|".join(
            (CUSTODIAL_DOMAIN, str(merchant_id).encode(), str(len(customer)).encode(), customer)
        )
        key = hmac.new(self._custodial, message, "sha256").digest()
        while not 0 < int.from_bytes(key, "big") < _SECP256K1_N:
            key = hmac.new(self._custodial, message + key, "sha256").digest()
        return key

    def encrypt(self, plaintext: bytes) -> bytes:
        return self._fernet.encrypt(plaintext)

    def decrypt(self, token: bytes) -> bytes:
        try:
            return self._fernet.decrypt(token)
        except InvalidToken as exc:
            raise ValueError("secret cannot be decrypted with this gateway's key") from exc

    def __repr__(self) -> str:
        return "SecretBox(<hidden>)"


def sign_webhook(secret: bytes, body: bytes, timestamp: int | None = None) -> str:
    """The ``Pointsnet-Signature`` header value for ``body``."""
    ts = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret, f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={ts},v1={mac}"


def verify_webhook(secret: bytes, body: bytes, header: str, tolerance: int = 300) -> bool:
    """Check a ``Pointsnet-Signature`` header (what a merchant's receiver does)."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        ts = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(time.time() - ts) > tolerance:
        return False
    expected = sign_webhook(secret, body, ts).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))
