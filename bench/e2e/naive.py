"""The naive baseline: one ERC-20 ``mint`` per event with web3.py, on its own anvil."""

from __future__ import annotations

import math
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.e2e.config import ANVIL_ARGS, E2EConfig, Progress
from bench.e2e.figures import PhaseFigures, best_window, per_second, quantiles_s
from bench.e2e.procstats import cpu_seconds
from bench.e2e.workload import Workload
from chain.config import anvil_dev_key
from chain.devnet import Devnet, free_port, rpc_call


class NaiveIntegration:
    """What a typical integration does: web3.py, one ``mint`` per event, wait for each receipt.

    Each thread has its own key and its own NaiveERC20 (``mint`` is owner-only),
    deployed before the clock starts. ``build_transaction`` estimates gas and
    prices fees per transaction, as web3.py does by default.
    """

    def __init__(self, url: str, workload: Workload, budget: int, seconds: float) -> None:
        from chain.artifacts import load_artifact

        self.url = url
        self.workload = workload
        self.budget = budget
        self.seconds = seconds
        self.artifact = load_artifact("NaiveERC20")
        self.lock = threading.Lock()
        self.addresses: dict[str, str] = {}
        self.minted: set[tuple[str, str]] = set()
        #: (wall start, send latency, confirm latency, wall confirmed, gas, new member)
        self.records: list[tuple[float, float, float, float, int, bool]] = []
        self.stop_at = math.inf

    def _w3(self) -> Any:
        from web3 import Web3

        return Web3(Web3.HTTPProvider(self.url, request_kwargs={"timeout": 60}))

    def deploy_token(self, key: str) -> Any:
        address = deploy_token(self.url, key)
        return self._w3().eth.contract(address=address, abi=self.artifact["abi"])

    def _next_recipient(self, token: str) -> tuple[str, bool] | None:
        """The next event's member, and whether it is new to ``token``."""
        with self.lock:
            if self.budget <= 0 or time.time() >= self.stop_at:
                return None
            self.budget -= 1
            customer = self.workload.next("naive").customer
            if customer not in self.addresses:
                self.addresses[customer] = "0x" + os.urandom(20).hex()
            to = self.addresses[customer]
            new = (token, to) not in self.minted
            self.minted.add((token, to))
        from web3 import Web3

        return Web3.to_checksum_address(to), new

    def mint_loop(self, key: str, token: Any) -> None:
        from eth_account import Account

        w3 = token.w3
        account = Account.from_key(key)
        nonce = int(w3.eth.get_transaction_count(account.address))
        while (recipient := self._next_recipient(token.address)) is not None:
            to, new = recipient
            wall, start = time.time(), time.perf_counter()
            tx = token.functions.mint(to, 100).build_transaction(
                {"from": account.address, "nonce": nonce}
            )
            tx_hash = w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction)
            sent_at = time.perf_counter()
            receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=120)
            done = time.perf_counter()
            nonce += 1
            record = (
                wall,
                sent_at - start,
                done - start,
                time.time(),
                int(receipt["gasUsed"]),
                new,
            )
            with self.lock:
                self.records.append(record)

    def run(self, keys: list[str]) -> tuple[float, float]:
        """Mint until the budget or the time box runs out; returns (t0, t1) wall times."""
        tokens = [self.deploy_token(key) for key in keys]
        threads = [
            threading.Thread(target=self.mint_loop, args=(key, token), name=f"naive-{i}")
            for i, (key, token) in enumerate(zip(keys, tokens, strict=True))
        ]
        t0 = time.time()
        self.stop_at = t0 + self.seconds
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return t0, time.time()


def deploy_token(url: str, key: str) -> str:
    """Deploy a NaiveERC20 owned by ``key`` (its minter) with web3.py; returns its address."""
    from eth_account import Account
    from web3 import Web3

    from chain.artifacts import load_artifact

    artifact = load_artifact("NaiveERC20")
    w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": 60}))
    account = Account.from_key(key)
    factory = w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
    nonce = w3.eth.get_transaction_count(account.address)
    tx = factory.constructor().build_transaction({"from": account.address, "nonce": nonce})
    tx_hash = w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction)
    return str(w3.eth.wait_for_transaction_receipt(tx_hash)["contractAddress"])


def devnet_for(config: E2EConfig, tmp: Path) -> Devnet:
    """A baseline's own anvil, on the gateway's chain settings (mining, gas limit, base fee)."""
    return Devnet(
        port=free_port(),
        block_time=config.block_time,
        gas_limit=config.gas_limit,
        log_file=tmp / "anvil.log",
        extra_args=ANVIL_ARGS,
    )


def last_base_fee(url: str) -> float:
    """The base fee of the chain's latest block, in wei (it should stay ~0: see ANVIL_ARGS)."""
    latest = rpc_call(url, "eth_getBlockByNumber", ["latest", False])
    return float(int(latest.get("baseFeePerGas") or "0x0", 16))


def run_naive(config: E2EConfig, progress: Progress) -> list[PhaseFigures]:
    """The naive baseline on its own anvil: sequential, then ``naive_threads`` threads
    (none with ``naive_seconds`` 0)."""
    results: list[PhaseFigures] = []
    if config.naive_seconds <= 0:
        return results
    variants = [("naive sequential", 1)]
    if config.naive_threads > 1:
        variants.append((f"naive {config.naive_threads} threads", config.naive_threads))
    with (
        tempfile.TemporaryDirectory(prefix="pointsnet-e2e-naive-") as tmp,
        devnet_for(config, Path(tmp)) as node,
    ):
        anvil_pid = node.pid or 0
        workload = Workload(config.seed, "naive", refund_lag=1_000)
        for name, threads in variants:
            progress(f"{name}: a mint transaction per event, time box {config.naive_seconds:.0f} s")
            naive = NaiveIntegration(node.url, workload, config.events, config.naive_seconds)
            keys = [anvil_dev_key(3 + i) for i in range(threads)]
            cpu0, anvil0 = time.process_time(), cpu_seconds(anvil_pid)
            t0, t1 = naive.run(keys)
            figures = _naive_figures(name, naive.records, t0, t1, config.events)
            figures.client_cpu_s = time.process_time() - cpu0
            figures.anvil_cpu_s = cpu_seconds(anvil_pid) - anvil0
            figures.last_base_fee_wei = last_base_fee(node.url)
            results.append(figures)
    return results


def _naive_figures(
    name: str, records: list[tuple[float, float, float, float, int, bool]],
    t0: float, t1: float, wanted: int,
) -> PhaseFigures:  # fmt: skip
    figures = PhaseFigures(name, len(records), None)
    figures.extrapolated = len(records) < wanted
    figures.accepted = figures.confirmed = figures.on_chain = len(records)
    figures.send_seconds = figures.confirm_seconds = t1 - t0
    figures.accepted_per_s = figures.confirmed_per_s = len(records) / (t1 - t0)
    figures.accept_ms = figures.ms([r[1] for r in records])
    figures.confirm_s = quantiles_s([r[2] for r in records])
    figures.timeline = per_second(t0, [r[3] for r in records])
    figures.steady_confirmed_per_s = best_window(figures.timeline)
    gas_new = [r[4] for r in records if r[5]]
    gas_old = [r[4] for r in records if not r[5]]
    figures.gas = {
        "all_in_per_event": sum(r[4] for r in records) / max(1, len(records)),
        "new_member": sum(gas_new) / len(gas_new) if gas_new else math.nan,
        "existing_member": sum(gas_old) / len(gas_old) if gas_old else math.nan,
    }
    figures.txs = {"mint": len(records)}
    if figures.extrapolated and records:
        full = wanted / figures.confirmed_per_s
        figures.note = (
            f"time-boxed: {len(records):,} events measured in {t1 - t0:.1f} s; "
            f"{wanted:,} events would take ~{full:,.0f} s ({full / 60:,.1f} min) at that rate"
        )
    return figures
