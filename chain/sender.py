"""Transaction sender: local signing, EIP-1559 fees, nonces, receipts.

Responsibilities:

- sign transactions locally with eth-account (keys never leave the process);
- own the sender's nonce, reconciled with the chain's pending count on start
  and after nonce errors;
- price transactions with EIP-1559 fees under a configured cap, and build
  replacements (same nonce) with fees bumped by at least 10%;
- broadcast through raw JSON-RPC (:mod:`chain.jsonrpc`, no web3 middleware),
  treating "already known" as success, and classify every failure as transient
  (retry) or permanent (give up) by its type and the node's error code, by its
  message only where nodes give no code; decode contract custom errors to their
  Solidity names;
- the hot path's reads as raw JSON-RPC too: the latest block (base fee, gas limit),
  receipts in one batch, a simulation (``eth_call``) at a given gas limit;
- wait for receipts and turn a reverted receipt into a :class:`ContractRevert`.

Signing is split from broadcasting so a worker can store the signed raw
transaction before it leaves the process (see the gateway's outbox).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import requests
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_typing import ChecksumAddress
from hexbytes import HexBytes
from web3 import Web3
from web3.contract.contract import ContractFunction
from web3.exceptions import ContractLogicError, TimeExhausted, TransactionNotFound, Web3RPCError
from web3.types import TxReceipt

from chain.contracts import decode_revert
from chain.errors import (
    ContractRevert,
    NonceConsumed,
    ReplacementOverCap,
    RpcError,
    RpcTransportError,
    TransactionError,
    TransientTransactionError,
)
from chain.jsonrpc import ALREADY_KNOWN, Head, Receipt, Rpc, classify

GWEI = 10**9

#: Replacement transactions must pay at least this much more (nodes want >= 10%).
REPLACEMENT_BUMP = 1.125
#: How long a receipt may lag behind the nonce count that says its transaction was mined.
RECEIPT_GRACE = 1.0


@dataclass(frozen=True)
class SignedTx:
    """A signed transaction ready to broadcast, with what is needed to replace it."""

    raw: bytes
    hash: str
    sender: ChecksumAddress
    nonce: int
    to: ChecksumAddress | None  # None: contract creation
    data: bytes
    gas: int
    max_fee_per_gas: int
    max_priority_fee_per_gas: int
    value: int = 0


class TransactionSender:
    """Signs and sends transactions for one key; thread-safe nonce allocation."""

    def __init__(
        self,
        w3: Web3,
        private_key: str,
        chain_id: int,
        *,
        max_fee_cap_wei: int = 200 * GWEI,
        priority_fee_wei: int = 1 * GWEI,
    ) -> None:
        self.w3 = w3
        self._account: LocalAccount = Account.from_key(private_key)
        self.address: ChecksumAddress = self._account.address
        self.chain_id = chain_id
        self.max_fee_cap_wei = max_fee_cap_wei
        self.priority_fee_wei = priority_fee_wei
        self._lock = threading.Lock()
        self._next_nonce: int | None = None
        self._rpc: Rpc | None = None

    @property
    def rpc(self) -> Rpc:
        """Raw JSON-RPC to the same node as ``w3`` (one keep-alive session, no middleware):
        what the outbox's hot path (broadcasts, receipts, the head) goes through."""
        if self._rpc is None:
            endpoint = getattr(self.w3.provider, "endpoint_uri", None)
            if endpoint is None:
                raise TransactionError(
                    f"{self.w3.provider!r} has no HTTP endpoint for raw JSON-RPC"
                )
            self._rpc = Rpc(str(endpoint), timeout=30.0, retries=1)
        return self._rpc

    def __repr__(self) -> str:  # never show the key
        return f"TransactionSender({self.address}, chain_id={self.chain_id})"

    # ------------------------------------------------------------ nonces

    def reconcile_nonce(self) -> int:
        """Set the next nonce to the chain's pending transaction count; return it."""
        with self._lock:
            self._next_nonce = self.w3.eth.get_transaction_count(self.address, "pending")
            return self._next_nonce

    def allocate_nonce(self) -> int:
        """Reserve the next nonce (reconciling with the chain the first time)."""
        with self._lock:
            if self._next_nonce is None:
                self._next_nonce = self.w3.eth.get_transaction_count(self.address, "pending")
            nonce = self._next_nonce
            self._next_nonce += 1
            return nonce

    def release_nonce(self, nonce: int) -> None:
        """Give back ``nonce`` if it was the last one allocated (nothing was broadcast)."""
        with self._lock:
            if self._next_nonce == nonce + 1:
                self._next_nonce = nonce

    def set_next_nonce(self, nonce: int) -> None:
        """Continue from ``nonce`` (a worker resuming from its stored transactions)."""
        with self._lock:
            self._next_nonce = nonce

    # ------------------------------------------------------------ fees

    def current_fees(self) -> tuple[int, int]:
        """(maxFeePerGas, maxPriorityFeePerGas): twice the base fee plus the tip, capped."""
        base_fee = int(self.w3.eth.get_block("latest").get("baseFeePerGas", 0) or 0)
        return self.fees_for(base_fee)

    def fees_for(self, base_fee: int) -> tuple[int, int]:
        """The fees of :meth:`current_fees` for a known base fee (one read per block)."""
        priority = min(self.priority_fee_wei, self.max_fee_cap_wei)
        max_fee = min(2 * base_fee + priority, self.max_fee_cap_wei)
        return max_fee, priority

    def head(self) -> Head:
        """The latest block (one raw call): its number, base fee, gas limit and time."""
        block = self.rpc.call("eth_getBlockByNumber", ["latest", False])
        return Head(
            number=int(block["number"], 16),
            base_fee=int(block.get("baseFeePerGas") or "0x0", 16),
            gas_limit=int(block["gasLimit"], 16),
            timestamp=int(block["timestamp"], 16),
        )

    # ------------------------------------------------------------ signing

    def sign(
        self,
        to: str | None,
        data: bytes,
        *,
        gas: int | None = None,
        value: int = 0,
        nonce: int | None = None,
        fees: tuple[int, int] | None = None,
    ) -> SignedTx:
        """Sign a call to ``to`` (None: deploy ``data``); estimates gas when ``gas`` is None."""
        to_address = Web3.to_checksum_address(to) if to is not None else None
        if gas is None:
            gas = self.estimate_gas(to_address, data, value)
        max_fee, priority = fees or self.current_fees()
        own_nonce = nonce is None
        if nonce is None:
            nonce = self.allocate_nonce()
        try:
            return self._sign(to_address, data, gas, value, nonce, max_fee, priority)
        except Exception:
            if own_nonce:
                self.release_nonce(nonce)
            raise

    def sign_call(
        self, fn: ContractFunction, *, gas: int | None = None, value: int = 0
    ) -> SignedTx:
        """Sign a contract function call built by a typed client."""
        return self.sign(fn.address, HexBytes(fn._encode_transaction_data()), gas=gas, value=value)

    def replacement(self, tx: SignedTx, bump: float = REPLACEMENT_BUMP) -> SignedTx:
        """The same transaction (same nonce) re-signed with fees raised by ``bump``.

        Raises :class:`ReplacementOverCap` when the raised ``maxFeePerGas`` would exceed
        ``max_fee_cap_wei``: a replacement kept under the cap would pay less than the
        10% more nodes require and be refused, so the transaction is left as it is.
        """
        if bump < 1.1:
            raise ValueError("replacements must pay at least 10% more")
        market_fee, market_tip = self.current_fees()
        max_fee = max(int(tx.max_fee_per_gas * bump) + 1, market_fee)
        if max_fee > self.max_fee_cap_wei:
            raise ReplacementOverCap(tx.hash, max_fee, self.max_fee_cap_wei)
        priority = max(int(tx.max_priority_fee_per_gas * bump) + 1, market_tip)
        return self._sign(
            tx.to, tx.data, tx.gas, tx.value, tx.nonce, max_fee, min(priority, max_fee)
        )

    def _sign(
        self,
        to: ChecksumAddress | None,
        data: bytes,
        gas: int,
        value: int,
        nonce: int,
        max_fee: int,
        priority: int,
    ) -> SignedTx:
        tx: dict[str, Any] = {
            "type": 2,
            "chainId": self.chain_id,
            "nonce": nonce,
            "data": data,
            "value": value,
            "gas": gas,
            "maxFeePerGas": max_fee,
            "maxPriorityFeePerGas": priority,
        }
        if to is not None:
            tx["to"] = to
        signed = self._account.sign_transaction(tx)
        return SignedTx(
            raw=bytes(signed.raw_transaction),
            hash="0x" + bytes(signed.hash).hex(),
            sender=self.address,
            nonce=nonce,
            to=to,
            data=bytes(data),
            gas=gas,
            max_fee_per_gas=max_fee,
            max_priority_fee_per_gas=priority,
            value=value,
        )

    def simulate(self, to: str, data: bytes, gas: int) -> None:
        """Run the call at the latest block as this sender with ``gas`` (one raw
        ``eth_call``): a revert raises the decoded :class:`ContractRevert`, running out of
        ``gas`` a ContractRevert named ``OutOfGas``."""
        call = {"from": self.address, "to": to, "data": "0x" + bytes(data).hex(), "gas": hex(gas)}
        try:
            self.rpc.call("eth_call", [call, "latest"])
        except RpcTransportError as exc:
            raise TransientTransactionError(str(exc)) from exc
        except RpcError as exc:
            if isinstance(exc.data, str) and len(exc.data) >= 10:  # 0x + a 4-byte selector
                raise decode_revert(exc.data) from exc
            # Nodes give running out of gas no code of its own (geth -32000, anvil -32003
            # or 3): only the message says so.
            if "out of gas" in exc.rpc_message.lower():
                raise ContractRevert("OutOfGas", {"gas": gas}, "", "") from exc
            if exc.code == 3 or "revert" in exc.rpc_message.lower():
                raise decode_revert(exc.data if isinstance(exc.data, str) else None) from exc
            raise classify(exc) from exc

    def estimate_gas(self, to: str | None, data: bytes, value: int = 0) -> int:
        """Gas estimate with 20% headroom; a revert raises the decoded ContractRevert."""
        params: dict[str, Any] = {"from": self.address, "data": HexBytes(data), "value": value}
        if to is not None:
            params["to"] = Web3.to_checksum_address(to)
        try:
            estimate = self.w3.eth.estimate_gas(params)  # type: ignore[arg-type]
        except ContractLogicError as exc:
            raise decode_revert(exc.data if isinstance(exc.data, str | bytes) else None) from exc
        except (Web3RPCError, requests.RequestException, OSError) as exc:
            raise classify(exc) from exc
        return int(estimate * 1.2) + 10_000

    # ------------------------------------------------------------ sending

    def broadcast(self, tx: SignedTx) -> str:
        """Send ``tx`` (raw JSON-RPC); a node that already has it counts as success.
        Returns the hash; a failure raises a transient or permanent TransactionError."""
        try:
            self.rpc.call("eth_sendRawTransaction", ["0x" + tx.raw.hex()])
        except RpcTransportError as exc:
            raise TransientTransactionError(str(exc)) from exc
        except RpcError as exc:
            # Nodes give "already known" and "nonce too low" no code of their own (geth
            # answers -32000, anvil -32003, for these and for most other refusals), so
            # only their message tells them apart.
            message = exc.rpc_message.lower()
            if any(known in message for known in ALREADY_KNOWN):
                return tx.hash
            if "nonce too low" in message:
                return self._nonce_too_low(tx, exc)
            raise classify(exc) from exc
        return tx.hash

    def _nonce_too_low(self, tx: SignedTx, exc: BaseException) -> str:
        """Check a node's "nonce too low" against the chain: ``tx`` mined (success), its nonce
        taken by another transaction (:class:`NonceConsumed`), or the node's word is not borne
        out (a lagging or confused node: transient, send again later)."""
        try:
            mined = self.w3.eth.get_transaction_count(self.address, "latest")  # count first,
            receipt = self.receipt(tx.hash)  # then the receipt
            if receipt is None and mined > tx.nonce:
                # A node may count a block's nonces before its receipts can be read: look
                # again before concluding that another transaction took the nonce.
                receipt = self._receipt_within(tx.hash, RECEIPT_GRACE)
        except (Web3RPCError, ValueError, requests.RequestException, OSError) as check:
            raise TransientTransactionError(
                f"node said {exc}; checking the chain failed: {check}"
            ) from exc
        if receipt is not None:
            return tx.hash  # it was mined already
        if mined > tx.nonce:
            raise NonceConsumed(tx.nonce, mined, tx.hash, str(exc)) from exc
        raise TransientTransactionError(
            f"node refused nonce {tx.nonce} as used, but the chain has mined only {mined} "
            f"transactions of {self.address}: will send again"
        ) from exc

    def _receipt_within(self, tx_hash: str, seconds: float) -> TxReceipt | None:
        deadline = time.monotonic() + seconds
        while True:
            receipt = self.receipt(tx_hash)
            if receipt is not None or time.monotonic() >= deadline:
                return receipt
            time.sleep(0.1)

    def receipt(self, tx_hash: str) -> TxReceipt | None:
        """The receipt of ``tx_hash``, or None while it is not mined."""
        try:
            return self.w3.eth.get_transaction_receipt(HexBytes(tx_hash))
        except TransactionNotFound:
            return None

    def receipts(self, tx_hashes: list[str]) -> list[Receipt | None]:
        """The receipts of ``tx_hashes`` (None while not mined), in one JSON-RPC batch."""
        found = self.rpc.batch([("eth_getTransactionReceipt", [h]) for h in tx_hashes])
        return [Receipt.from_json(raw) if raw else None for raw in found]

    def wait(self, tx_hash: str, timeout: float = 120.0, poll: float = 0.05) -> TxReceipt:
        """Wait for the receipt; a reverted transaction raises its decoded custom error."""
        try:
            receipt = self.w3.eth.wait_for_transaction_receipt(
                HexBytes(tx_hash), timeout=timeout, poll_latency=poll
            )
        except TimeExhausted as exc:
            raise TransientTransactionError(f"no receipt for {tx_hash} after {timeout}s") from exc
        if receipt["status"] != 1:
            raise self.revert_reason(tx_hash, int(receipt["blockNumber"]))
        return receipt

    def transact(
        self,
        fn: ContractFunction,
        *,
        gas: int | None = None,
        value: int = 0,
        timeout: float = 120.0,
    ) -> TxReceipt:
        """Sign, broadcast and wait for one contract call (operator tooling, tests)."""
        tx = self.sign_call(fn, gas=gas, value=value)
        self.broadcast(tx)
        return self.wait(tx.hash, timeout=timeout)

    def revert_reason(self, tx_hash: str, block: int) -> ContractRevert:
        """Replay a transaction reverted in ``block`` at the block before to recover the
        custom error."""
        tx = self.w3.eth.get_transaction(HexBytes(tx_hash))
        call = {
            "from": tx["from"],
            "to": tx["to"],
            "data": tx["input"],
            "value": tx["value"],
            "gas": tx["gas"],
        }
        try:
            self.w3.eth.call(call, block_identifier=block - 1)  # type: ignore[arg-type]
        except ContractLogicError as exc:
            reverted = decode_revert(
                exc.data if isinstance(exc.data, str | bytes) else None, tx_hash
            )
            return reverted
        except Exception as exc:  # the replay itself failed; report what we know
            return ContractRevert("UnknownRevert", {"replay_error": str(exc)}, "", tx_hash)
        return ContractRevert("OutOfGasOrStateChanged", {"gas": tx["gas"]}, "", tx_hash)
