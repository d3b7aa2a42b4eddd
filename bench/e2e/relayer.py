"""The pipelined relayer baseline: one ERC-20 ``mint`` per event, the way a competent
relayer sends them (thirdweb Engine, OpenZeppelin Defender and their kind).

The strongest honest per-event integration the bench can offer, on its own anvil
with the gateway's chain settings (block time, block gas limit, base fee 0):

- one token (the same OpenZeppelin ``NaiveERC20`` the naive column deploys), one
  minter key, deployed and warmed up (a first mint, so ``totalSupply`` is no longer
  zero) before the clock starts;
- the chain id, the fee fields and the transaction gas limit are read ONCE (the gas
  limit is one ``eth_estimateGas`` of a mint to a fresh address, the dearer case);
  nonces are consecutive from one ``eth_getTransactionCount``;
- each mint is signed locally: the EIP-1559 payload RLP-encoded and its hash signed
  with coincurve (eth-account's own backend), ~65 µs a mint here — the same bytes
  ``Account.sign_transaction`` gives (a test checks it), without its ~600 µs of
  per-call dict validation (``--relayer-sign dict`` uses ``sign_transaction``);
- raw JSON-RPC (:mod:`~bench.e2e.rawrpc`) over one keep-alive HTTP connection per thread (no
  web3): ``eth_sendRawTransaction`` in batches of 100, nothing waited for, signed in
  the sending thread (``--relayer-signers 1`` signs in a thread of its own, overlapping
  the sending: on this 2-core machine it confirmed no more, ±20% either way in paired
  runs, with a higher event→confirmed p50, so the simpler variant is the default);
- receipts collected in batches of ``eth_getTransactionReceipt`` as blocks come: the
  minter's transactions are mined in nonce order, so each look asks for the oldest
  outstanding ones and stops at the first without a receipt;
- at most three blocks' worth of gas in flight, and no more than two blocks of what the
  last blocks took (a relayer does not flood a node's pool with minutes of work), so
  event→confirmed measures the chain, not a queue.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import coincurve
import rlp
from eth_account import Account
from eth_hash.auto import keccak
from rlp.sedes import CountableList, List
from rlp.sedes import big_endian_int as INT
from rlp.sedes import binary as BYTES

from bench.e2e.config import E2EConfig, Progress
from bench.e2e.figures import PhaseFigures, best_window, per_second, quantiles_s
from bench.e2e.procstats import cpu_seconds
from bench.e2e.rawrpc import Connection
from bench.e2e.workload import Workload
from chain.config import anvil_dev_key

#: ``mint(address,uint256)``
MINT_SELECTOR = keccak(b"mint(address,uint256)")[:4]
#: eth_sendRawTransaction calls per JSON-RPC request.
SEND_BATCH = 100
#: eth_getTransactionReceipt calls per JSON-RPC request.
RECEIPT_BATCH = 500


def mint_calldata(to: bytes, amount: int) -> bytes:
    """ABI-encoded ``mint(to, amount)``."""
    if len(to) != 20:
        raise ValueError("an address is 20 bytes")
    return MINT_SELECTOR + bytes(12) + to + amount.to_bytes(32, "big")


def receipted_prefix(receipts: Sequence[dict[str, Any] | None]) -> list[dict[str, Any]]:
    """The receipts before the first missing one (one sender's txs are mined in nonce order)."""
    out: list[dict[str, Any]] = []
    for receipt in receipts:
        if receipt is None:
            break
        out.append(receipt)
    return out


#: EIP-1559 transaction fields, unsigned and signed (explicit sedes: no type inference).
_UNSIGNED = List([INT, INT, INT, INT, INT, BYTES, INT, BYTES, CountableList(BYTES)])
_SIGNED = List([INT, INT, INT, INT, INT, BYTES, INT, BYTES, CountableList(BYTES), INT, INT, INT])


@dataclass
class MintSigner:
    """Signs ``mint`` transactions with fields fixed once (EIP-1559, empty access list)."""

    key: str = field(repr=False)
    chain_id: int
    token: bytes
    gas: int
    max_fee: int
    max_priority_fee: int
    _secret: coincurve.PrivateKey = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._secret = coincurve.PrivateKey(bytes.fromhex(self.key.removeprefix("0x")))

    def fields(self, nonce: int, data: bytes) -> list[Any]:
        return [self.chain_id, nonce, self.max_priority_fee, self.max_fee, self.gas,
                self.token, 0, data, []]  # fmt: skip

    def sign(self, nonce: int, data: bytes) -> bytes:
        """The raw signed transaction: the RLP payload's hash signed with coincurve (the
        backend eth-account uses) — byte for byte what ``Account.sign_transaction`` gives."""
        fields = self.fields(nonce, data)
        digest = keccak(b"\x02" + rlp.encode(fields, _UNSIGNED))
        sig = self._secret.sign_recoverable(digest, hasher=None)  # r (32) s (32) y-parity (1)
        r, s = int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:64], "big")
        return b"\x02" + rlp.encode([*fields, sig[64], r, s], _SIGNED)

    def sign_dict(self, nonce: int, data: bytes) -> bytes:
        """The same bytes through ``Account.sign_transaction`` (per-call dict validation)."""
        tx = {"type": 2, "chainId": self.chain_id, "nonce": nonce, "to": self.token,
              "value": 0, "gas": self.gas, "maxFeePerGas": self.max_fee,
              "maxPriorityFeePerGas": self.max_priority_fee, "data": data}  # fmt: skip
        return bytes(Account.sign_transaction(tx, self.key).raw_transaction)


@dataclass
class Sent:
    """One mint: when its event was taken, its nonce and hash, and whether the member is new."""

    picked: float
    nonce: int
    tx_hash: str
    new: bool
    sent: float = 0.0


class PipelinedRelayer:
    """Mints ``budget`` events (or until ``seconds`` run out) and collects their receipts."""

    def __init__(self, url: str, signer: MintSigner, recipients: Iterator[tuple[bytes, bool]],
                 *, seconds: float, window: int, adaptive: bool = True, signers: int = 0,
                 sign: str = "rlp") -> None:  # fmt: skip
        self.url = url
        self.signer = signer
        self.recipients = recipients
        self.seconds = seconds
        self.window = window
        self.signers = signers
        self.sign: Callable[[int, bytes], bytes] = (
            signer.sign if sign == "rlp" else signer.sign_dict
        )
        self.outstanding: deque[Sent] = deque()
        #: (sent, receipt wall time, gas used)
        self.done: list[tuple[Sent, float, int]] = []
        self.first_send = math.nan
        self.sending_done = threading.Event()
        #: With interval mining: mints found mined at each of the last blocks looked at.
        self.adaptive = adaptive
        self.mined: deque[int] = deque(maxlen=5)
        #: What stopped the receipt collector, if it failed: the sending stops too.
        self.error: BaseException | None = None

    def _batches(self, nonce: int, stop_at: float) -> Iterator[list[tuple[Sent, bytes]]]:
        """Signed batches of :data:`SEND_BATCH` mints until the budget or time runs out;
        an event is taken (its clock starts) only when the in-flight window has room."""
        while time.time() < stop_at and self._room():
            batch: list[tuple[Sent, bytes]] = []
            for to, new in self.recipients:
                raw = self.sign(nonce, mint_calldata(to, 100))
                batch.append((Sent(time.time(), nonce, "0x" + keccak(raw).hex(), new), raw))
                nonce += 1
                if len(batch) == SEND_BATCH:
                    break
            if not batch:
                return
            yield batch

    def _sign_ahead(self, nonce: int, stop_at: float, out: queue.Queue[Any]) -> None:
        try:
            for batch in self._batches(nonce, stop_at):
                out.put(batch)
        except BaseException as exc:  # handed to the sending thread
            out.put(exc)
        out.put(None)

    def limit(self) -> int:
        """Mints allowed in flight: ``window`` (the chain's gas allows no more), and with
        interval mining at most two blocks of what the last blocks actually took, so that
        when the node rather than gas is the limit the pool holds seconds, not minutes."""
        if not self.adaptive or not self.mined:
            return self.window
        return max(2 * SEND_BATCH, min(self.window, 2 * max(self.mined)))

    def _room(self) -> bool:
        """Wait until the in-flight window has room; False if the collector failed."""
        while len(self.outstanding) > self.limit():
            if self.error is not None:
                return False
            time.sleep(0.005)
        return self.error is None

    def _send(self, nonce: int, stop_at: float) -> None:
        conn = Connection(self.url)
        signed: Iterator[Any]
        ahead: queue.Queue[Any] = queue.Queue(maxsize=1)  # signed at most 2 batches ahead
        if self.signers:
            threading.Thread(target=self._sign_ahead, args=(nonce, stop_at, ahead),
                             name="relayer-sign", daemon=True).start()  # fmt: skip
            signed = iter(ahead.get, None)
        else:
            signed = self._batches(nonce, stop_at)
        try:
            for batch in signed:
                if isinstance(batch, BaseException):
                    raise batch
                if not self._room():
                    break
                if math.isnan(self.first_send):
                    self.first_send = time.time()
                conn.batch("eth_sendRawTransaction", [["0x" + raw.hex()] for _s, raw in batch])
                now = time.time()
                for sent, _raw in batch:
                    sent.sent = now
                    self.outstanding.append(sent)
            else:
                return
            if self.signers:  # stopped early: let the signing thread see it and finish
                with contextlib.suppress(queue.Empty):
                    while ahead.get(timeout=5) is not None:
                        pass
        finally:
            conn.close()

    def _collect(self, deadline: float) -> None:
        conn = Connection(self.url)
        last_block = counting = -1
        count = 0
        try:
            while time.monotonic() < deadline:
                if not self.outstanding:
                    if self.sending_done.is_set():
                        return
                    time.sleep(0.01)
                    continue
                block = int(conn.call("eth_blockNumber"), 16)
                if block == last_block:
                    time.sleep(0.02)
                    continue
                if block != counting:
                    if counting >= 0:
                        self.mined.append(count)
                    counting, count = block, 0
                oldest = list(itertools.islice(self.outstanding, RECEIPT_BATCH))
                found = receipted_prefix(
                    conn.batch("eth_getTransactionReceipt", [[s.tx_hash] for s in oldest])
                )
                now = time.time()
                count += len(found)
                for sent, receipt in zip(oldest, found, strict=False):
                    if receipt["status"] != "0x1":
                        raise RuntimeError(f"mint {sent.tx_hash} reverted")
                    self.done.append((self.outstanding.popleft(), now, int(receipt["gasUsed"], 16)))
                if len(found) < len(oldest):
                    last_block = block  # the rest waits for the next block
            raise TimeoutError(f"{len(self.outstanding):,} mints without a receipt")
        finally:
            conn.close()

    def run(self, drain_timeout: float) -> None:
        """Send and collect; raises what either thread raised."""
        conn = Connection(self.url)
        nonce = int(conn.call("eth_getTransactionCount", [_hex_address(self.signer.key),
                                                          "pending"]), 16)  # fmt: skip
        conn.close()

        def collect() -> None:
            try:
                self._collect(time.monotonic() + self.seconds + drain_timeout)
            except BaseException as exc:  # re-raised below
                self.error = exc

        collector = threading.Thread(target=collect, name="relayer-receipts", daemon=True)
        collector.start()
        try:
            self._send(nonce, time.time() + self.seconds)
        finally:
            self.sending_done.set()
            collector.join()
        if self.error is not None:
            raise self.error


def _hex_address(key: str) -> str:
    return str(Account.from_key(key).address)


def prepare(url: str, key: str, progress: Progress) -> MintSigner:
    """Deploy the token, mint once (warm-up), then read chain id, fees and a mint's gas once."""
    from bench.e2e.naive import deploy_token

    token = deploy_token(url, key)
    conn = Connection(url)
    sender = _hex_address(key)
    chain_id = int(conn.call("eth_chainId"), 16)
    latest = conn.call("eth_getBlockByNumber", ["latest", False])
    base_fee = int(latest.get("baseFeePerGas") or "0x0", 16)
    priority = int(conn.call("eth_maxPriorityFeePerGas"), 16)

    def estimate() -> int:
        """A mint's gas to a new member whose address has no zero byte (calldata's dearest)."""
        data = "0x" + mint_calldata(b"\xff" * 20, 100).hex()
        return int(conn.call("eth_estimateGas", [{"from": sender, "to": token, "data": data}]), 16)

    def signer(gas: int) -> MintSigner:
        return MintSigner(key, chain_id, bytes.fromhex(token[2:]), gas, 2 * base_fee + priority,
                          priority)  # fmt: skip

    nonce = int(conn.call("eth_getTransactionCount", [sender, "pending"]), 16)
    warm = signer(estimate()).sign(nonce, mint_calldata(b"\xfe" * 20, 100))
    tx_hash = conn.call("eth_sendRawTransaction", ["0x" + warm.hex()])
    deadline = time.monotonic() + 60
    while conn.call("eth_getTransactionReceipt", [tx_hash]) is None:
        if time.monotonic() > deadline:
            raise TimeoutError("the warm-up mint was not mined")
        time.sleep(0.05)
    gas = estimate()  # totalSupply is no longer zero: a fresh member's mint from now on
    conn.close()
    progress(f"pipelined relayer: token {token}, {gas:,} gas per mint (estimated once)")
    return signer(gas)


def recipients(workload: Workload, budget: int) -> Iterator[tuple[bytes, bool]]:
    """(address, new member) for ``budget`` events: one address per customer."""
    addresses: dict[str, bytes] = {}
    for _ in range(budget):
        customer = workload.next("relayer").customer
        new = customer not in addresses
        if new:
            addresses[customer] = os.urandom(20)
        yield addresses[customer], new


def in_flight_window(gas_limit: int, gas_per_mint: int, block_time: float | None) -> int:
    """Mints allowed in flight: three blocks' worth of gas (at least one send batch)."""
    if block_time is None:  # automine: every send is mined at once
        return 10 * SEND_BATCH
    return max(SEND_BATCH, 3 * gas_limit // gas_per_mint)


def run_relayer(config: E2EConfig, progress: Progress) -> PhaseFigures:
    """The pipelined relayer column on its own anvil (the bench's chain settings)."""
    import tempfile

    from bench.e2e.naive import devnet_for, last_base_fee

    with (
        tempfile.TemporaryDirectory(prefix="pointsnet-e2e-relayer-") as tmp,
        devnet_for(config, Path(tmp)) as node,
    ):
        key = anvil_dev_key(9)
        signer = prepare(node.url, key, progress)
        window = in_flight_window(config.gas_limit, signer.gas, config.block_time)
        progress(
            f"pipelined relayer: mints in batches of {SEND_BATCH}, at most {window:,} in "
            f"flight, time box {config.relayer_seconds:.0f} s"
        )
        relayer = PipelinedRelayer(
            node.url, signer, recipients(Workload(config.seed, "relayer", 1_000), config.events),
            seconds=config.relayer_seconds, window=window,
            adaptive=config.block_time is not None, signers=config.relayer_signers,
            sign=config.relayer_sign,
        )  # fmt: skip
        cpu0, anvil0 = time.process_time(), cpu_seconds(node.pid or 0)
        relayer.run(config.drain_timeout)
        figures = relayer_figures(relayer, config.events)
        figures.client_cpu_s = time.process_time() - cpu0
        figures.anvil_cpu_s = cpu_seconds(node.pid or 0) - anvil0
        figures.last_base_fee_wei = last_base_fee(node.url)
    return figures


def relayer_figures(relayer: PipelinedRelayer, wanted: int) -> PhaseFigures:
    """The column: confirmed/s from the first send to the last receipt, gas from receipts."""
    done = relayer.done
    figures = PhaseFigures("pipelined relayer", len(done), None)
    figures.extrapolated = len(done) < wanted
    figures.accepted = figures.confirmed = figures.on_chain = len(done)
    if not done:
        return figures
    t0, t1 = relayer.first_send, max(seen for _s, seen, _g in done)
    figures.send_seconds = max(s.sent for s, _seen, _g in done) - t0
    figures.confirm_seconds = t1 - t0
    figures.accepted_per_s = len(done) / max(1e-9, figures.send_seconds)
    figures.confirmed_per_s = len(done) / max(1e-9, figures.confirm_seconds)
    figures.accept_ms = figures.ms([s.sent - s.picked for s, _seen, _g in done])
    figures.confirm_s = quantiles_s([seen - s.picked for s, seen, _g in done])
    figures.timeline = per_second(t0, [seen for _s, seen, _g in done])
    figures.steady_confirmed_per_s = best_window(figures.timeline)
    new = [g for s, _seen, g in done if s.new]
    old = [g for s, _seen, g in done if not s.new]
    figures.gas = {
        "all_in_per_event": sum(g for _s, _seen, g in done) / len(done),
        "new_member": sum(new) / len(new) if new else math.nan,
        "existing_member": sum(old) / len(old) if old else math.nan,
    }
    figures.txs = {"mint": len(done)}
    if figures.extrapolated:
        figures.note = (
            f"time-boxed: {len(done):,} events sent in {relayer.seconds:.0f} s, all confirmed "
            f"{figures.confirm_seconds:.1f} s after the first send"
        )
    return figures
