"""The operator's signer pool: several issuer keys, one nonce lane each.

Where the keys come from, first match wins:

- ``POINTSNET_OPERATOR_KEYSTORES``: encrypted JSON keystores (eth-account's
  ``Account.encrypt`` format, the same as geth's and MetaMask's), unlocked
  with ``POINTSNET_KEYSTORE_PASSWORD`` or the first line of
  ``POINTSNET_KEYSTORE_PASSWORD_FILE``;
- ``POINTSNET_OPERATOR_KEYS``: comma-separated hex private keys;
- otherwise the single operator key (``POINTSNET_OPERATOR_KEY``, on the devnet
  anvil account 0) and, on the devnet only, ``POINTSNET_SIGNERS - 1`` more keys
  derived from anvil's public mnemonic (indexes ``DEVNET_SIGNER_BASE + i``).

Published development keys are refused off the devnet.  Addresses are known
without unlocking anything (a keystore names its address in clear), so the
API and health checks never need a key.
"""

from __future__ import annotations

import json
import os
import stat
from functools import lru_cache
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_utils import to_checksum_address
from pydantic import SecretStr

from chain.config import DEVNET_SIGNER_BASE, ChainSettings, anvil_dev_key, checked_key
from chain.errors import ConfigError

#: scrypt work factor of new keystores (geth's "standard" is 2**18; this is its "light"
#: setting times 16: a second or so to unlock, on purpose).
KEYSTORE_SCRYPT_N = 2**16


def keystore_paths(settings: ChainSettings) -> list[Path]:
    """The configured keystore files, in order."""
    if not settings.operator_keystores:
        return []
    paths = (p.strip() for p in settings.operator_keystores.split(","))
    return [Path(p).expanduser() for p in paths if p]


def keystore_password(settings: ChainSettings) -> str:
    """The keystores' password, from the environment or a password file."""
    if settings.keystore_password is not None:
        return settings.keystore_password.get_secret_value()
    if settings.keystore_password_file is not None:
        path = settings.keystore_password_file.expanduser()
        try:
            lines = path.read_text().splitlines()
        except OSError as exc:
            raise ConfigError(f"cannot read the keystore password file {path}: {exc}") from exc
        return lines[0] if lines else ""
    raise ConfigError(
        "operator keystores need POINTSNET_KEYSTORE_PASSWORD or POINTSNET_KEYSTORE_PASSWORD_FILE"
    )


def keystore_address(path: Path) -> str:
    """The checksummed address a keystore file declares (no password needed)."""
    document = _read_keystore(path)
    address = document.get("address")
    if not isinstance(address, str):
        raise ConfigError(f"keystore {path} does not name its address")
    return to_checksum_address("0x" + address.lower().removeprefix("0x"))


def signer_keys(settings: ChainSettings) -> list[str]:
    """Every signer key of the pool (hex), in order; signer 0 is also the deployer."""
    paths = keystore_paths(settings)
    if paths:
        password = keystore_password(settings)
        keys = [checked_key(settings, _unlock(path, password)) for path in paths]
    elif settings.operator_keys is not None:
        values = [v for v in settings.operator_keys.get_secret_value().split(",") if v.strip()]
        if not values:
            raise ConfigError("POINTSNET_OPERATOR_KEYS is set but lists no key")
        keys = [checked_key(settings, value) for value in values]
    else:
        keys = [resolve_key(settings, "operator")]
        if settings.signers > 1:
            if not settings.is_devnet:
                raise ConfigError(
                    "POINTSNET_SIGNERS derives keys on the devnet only; off the devnet list "
                    "the keys (POINTSNET_OPERATOR_KEYSTORES or POINTSNET_OPERATOR_KEYS)"
                )
            keys += [anvil_dev_key(DEVNET_SIGNER_BASE + i) for i in range(1, settings.signers)]
    addresses = [Account.from_key(key).address for key in keys]
    if len(set(addresses)) != len(addresses):
        raise ConfigError("the signer pool lists the same key twice")
    return keys


def signer_addresses(settings: ChainSettings) -> list[str]:
    """The pool's addresses, in order, without unlocking any keystore."""
    paths = keystore_paths(settings)
    if paths:
        return [keystore_address(path) for path in paths]
    if settings.operator_keys is not None or settings.signers > 1:
        return [Account.from_key(key).address for key in signer_keys(settings)]
    return [Account.from_key(resolve_key(settings, "operator")).address]


def select(keys: list[str], indexes: list[int] | None) -> list[tuple[int, str]]:
    """``(index, key)`` of the signers a process runs (all of them when ``indexes`` is None)."""
    if not indexes:
        return list(enumerate(keys))
    bad = [i for i in indexes if not 0 <= i < len(keys)]
    if bad:
        raise ConfigError(f"signer index {bad[0]} is outside the pool of {len(keys)} key(s)")
    return [(i, keys[i]) for i in dict.fromkeys(indexes)]


def new_keystore(out: Path, password: str, private_key: str | None = None) -> str:
    """Write a new (or the given) key as an encrypted JSON keystore at ``out`` (mode 0600).

    Returns the address.  Refuses to overwrite an existing file.
    """
    if not password:
        raise ConfigError("a keystore needs a non-empty password")
    account = Account.from_key(private_key) if private_key else Account.create()
    document = Account.encrypt(account.key, password, kdf="scrypt", iterations=KEYSTORE_SCRYPT_N)
    out = out.expanduser()
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, stat.S_IRUSR | stat.S_IWUSR)
    except FileExistsError as exc:
        raise ConfigError(f"{out} exists; refusing to overwrite a keystore") from exc
    with os.fdopen(fd, "w") as handle:
        json.dump(document, handle)
        handle.write("\n")
    return str(account.address)


def _read_keystore(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read keystore {path}: {exc}") from exc
    if not isinstance(document, dict):
        raise ConfigError(f"keystore {path} is not a JSON object")
    return document


@lru_cache(maxsize=64)
def _unlock_cached(path: str, mtime_ns: int, password: str) -> str:
    del mtime_ns  # part of the cache key only: an edited file is read again
    document = _read_keystore(Path(path))
    try:
        key = Account.decrypt(document, password)
    except ValueError as exc:
        raise ConfigError(f"cannot unlock keystore {path}: wrong password?") from exc
    return "0x" + bytes(key).hex()


def _unlock(path: Path, password: str) -> str:
    """The private key inside ``path`` (scrypt is slow: each file is unlocked once per process)."""
    try:
        mtime = path.stat().st_mtime_ns
    except OSError as exc:
        raise ConfigError(f"cannot read keystore {path}: {exc}") from exc
    return _unlock_cached(str(path.resolve()), mtime, password)


_DEV_KEY_INDEX = {"operator": 0, "guardian": 1, "admin": 2}


def resolve_key(settings: ChainSettings, which: str) -> str:
    """The hex private key for role ``which``: "operator" (the gateway's issuer key),
    "guardian" (pause, suspend) or "admin" (timelock proposals, operator CLI).

    On the devnet a missing key falls back to anvil's published development
    keys; anywhere else a key must be configured, and a published development
    key is refused.
    """
    configured: SecretStr | None = getattr(settings, f"{which}_key")
    if (
        configured is None
        and which == "operator"
        and (settings.operator_keys is not None or settings.operator_keystores is not None)
    ):
        return signer_keys(settings)[0]  # the first key of the signer pool
    if configured is None:
        if not settings.is_devnet:
            raise ConfigError(
                f"POINTSNET_{which.upper()}_KEY must be set on chain {settings.chain_id}"
            )
        return anvil_dev_key(_DEV_KEY_INDEX[which])
    return checked_key(settings, configured.get_secret_value())
