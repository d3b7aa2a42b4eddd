"""Errors raised by the chain package.

Every error derives from :class:`ChainError`.  Transaction errors say whether
they are *transient* (worth retrying: timeouts, nonce races, "already known",
underpriced replacements) or *permanent* (a revert with a custom error, bad
input), so workers can pick a retry budget without parsing messages.
"""

from __future__ import annotations

from typing import Any


class ChainError(Exception):
    """Root of every error raised by ``chain``."""

    transient: bool = False


class ConfigError(ChainError, ValueError):
    """A setting is missing or not acceptable for this chain."""


class DevKeyRefused(ConfigError):
    """A published anvil development key was configured on a non-devnet chain."""

    def __init__(self, chain_id: int, address: str) -> None:
        super().__init__(
            f"{address} is a published anvil development key; refused on chain id {chain_id}"
        )
        self.chain_id = chain_id
        self.address = address


class CompileError(ChainError):
    """The Solidity compiler reported errors."""


class DevnetError(ChainError):
    """The embedded anvil devnet could not be started or stopped."""


class DeploymentError(ChainError):
    """Deployment failed or the deployment file does not match the chain."""


class TransactionError(ChainError):
    """Sending or confirming a transaction failed."""


class TransientTransactionError(TransactionError):
    """A failure worth retrying (timeout, nonce race, already known, underpriced)."""

    transient = True


class NonceConsumed(TransientTransactionError):
    """The transaction's nonce was used by another mined transaction: it can never be mined.

    Raised only once the chain confirms it (its count of mined transactions is past
    ``nonce`` and the transaction has no receipt), never on a node's word alone.
    """

    def __init__(self, nonce: int, mined: int, tx_hash: str, message: str = "") -> None:
        super().__init__(
            f"nonce too low: nonce {nonce} of {tx_hash} was used by another transaction "
            f"({mined} mined)" + (f"; node said: {message}" if message else "")
        )
        self.nonce = nonce
        self.mined = mined
        self.tx_hash = tx_hash


class ReplacementOverCap(TransactionError):
    """A stuck transaction cannot be replaced: the fee bump nodes require exceeds the cap.

    The transaction is left as it is (a replacement paying less would be refused);
    it is mined once the market comes down to its fees, or the cap is raised.
    """

    def __init__(self, tx_hash: str, required_wei: int, cap_wei: int) -> None:
        super().__init__(
            f"replacing {tx_hash} needs maxFeePerGas {required_wei} wei, above the cap "
            f"of {cap_wei} wei: left as it is"
        )
        self.tx_hash = tx_hash
        self.required_wei = required_wei
        self.cap_wei = cap_wei


class ContractRevert(TransactionError):
    """A call or transaction reverted; ``name``/``args`` decode the custom error."""

    def __init__(
        self, name: str, args: dict[str, Any] | None = None, data: str = "", tx_hash: str = ""
    ) -> None:
        rendered = ", ".join(f"{k}={v!r}" for k, v in (args or {}).items())
        super().__init__(f"{name}({rendered})" + (f" in tx {tx_hash}" if tx_hash else ""))
        self.name = name
        self.args_by_name: dict[str, Any] = dict(args or {})
        self.data = data
        self.tx_hash = tx_hash


class AuditError(ChainError):
    """The audit could not be carried out (unreachable node, bad answer, no network)."""


class RpcError(ChainError):
    """A JSON-RPC call answered with an error object (``code``, ``rpc_message``, ``data``)."""

    def __init__(self, method: str, code: int | None, message: str, data: Any = None) -> None:
        super().__init__(f"{method}: {message} (code {code})")
        self.method = method
        self.code = code
        self.rpc_message = message
        self.data = data


class RpcTransportError(ChainError):
    """A JSON-RPC call failed in transport (connection, timeout, HTTP status) after retries."""

    transient = True


class AuditUsageError(ChainError, ValueError):
    """The audit's arguments are inconsistent."""
