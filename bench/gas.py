"""``pointsnet bench gas``: gas per operation against a plain ERC-20 mint.

Runs on its own fresh anvil (automine) so figures do not depend on other state:
deploys the network, admits one merchant, then measures every operation from its
receipt.  The naive baseline is what a typical integration does: one
OpenZeppelin ERC-20 ``mint`` transaction per loyalty event, measured in the same
run.  Gas per event includes each transaction's 21,000 base and its calldata.
Issue and clawback batches carry a random input root, as the gateway's do (a root
of zeros would be cheaper calldata than any real one).
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_utils import keccak
from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from web3 import Web3

from chain import governance, merkle, signing
from chain.artifacts import load_artifact
from chain.config import ChainSettings, anvil_dev_key
from chain.contracts import Network
from chain.deploy import deploy, operator_sender
from chain.devnet import Devnet
from chain.merkle import find_issuance
from chain.sender import TransactionSender

BATCH_SIZES = (1, 10, 100, 500)
#: Refunds per ``clawbackBatch`` measured (items of the issue batch of 500).
CLAWBACK_BATCH_SIZES = (10, 50, 100)


@dataclass
class GasRow:
    """One measured operation."""

    operation: str
    events: int
    gas_total: int
    naive_per_event: int | None = None

    @property
    def per_event(self) -> int:
        return self.gas_total // self.events

    @property
    def ratio(self) -> float | None:
        """How many times cheaper than the naive mint per event."""
        return self.naive_per_event / self.per_event if self.naive_per_event else None


@contextmanager
def fresh_network(
    gas_limit: int = 300_000_000,
) -> Iterator[tuple[ChainSettings, Network, TransactionSender]]:
    """A throwaway anvil with the network deployed and one merchant (id 1) admitted."""
    from chain.devnet import free_port

    with tempfile.TemporaryDirectory(prefix="pointsnet-bench-") as tmp:
        port = free_port()
        node = Devnet(port=port, gas_limit=gas_limit, log_file=Path(tmp) / "anvil.log")
        with node:
            settings = ChainSettings(
                data_dir=Path(tmp),
                rpc_url=node.url,
                devnet_port=port,
                timelock_delay=0,
                rule_notice_seconds=0,
            )
            deployment = deploy(settings)
            w3 = Web3(Web3.HTTPProvider(node.url, request_kwargs={"timeout": 60}))
            network = Network.at(w3, deployment.hub, deployment.timelock)
            sender = operator_sender(settings, w3)
            governance.apply(
                network.timelock,
                operator_sender(settings, w3, "admin"),
                network.hub.functions.addMerchant("bench", sender.address, 2**63),
            )
            sender.transact(network.hub.publish_rule_set(1, _default_rules()))
            yield settings, network, sender


def _default_rules() -> str:
    """The canonical text of the default rule set (USD), as a merchant publishes it."""
    from gateway.rules.model import canonical_json, default_rule_set

    return canonical_json(default_rule_set("USD"))


def _gas(sender: TransactionSender, fn: object) -> int:
    receipt = sender.transact(fn)  # type: ignore[arg-type]
    return int(receipt["gasUsed"])


def run_gas_bench(progress: Console | None = None) -> list[GasRow]:
    """Measure every operation; returns rows in the order of the table."""
    rows: list[GasRow] = []
    with (
        fresh_network() as (settings, network, sender),
        Progress(
            console=progress or Console(file=open(os.devnull, "w")),
            transient=True,
        ) as bar,
    ):
        w3 = sender.w3
        task = bar.add_task(
            "measuring gas", total=len(BATCH_SIZES) * 3 + len(CLAWBACK_BATCH_SIZES) + 8
        )
        hub = network.hub
        seq = 0

        # Naive baseline: one plain OpenZeppelin ERC-20 mint per event.
        naive_artifact = load_artifact("NaiveERC20")
        factory = w3.eth.contract(abi=naive_artifact["abi"], bytecode=naive_artifact["bytecode"])
        created = sender.sign(None, bytes.fromhex(factory.constructor().data_in_transaction[2:]))
        sender.broadcast(created)
        naive = w3.eth.contract(
            address=sender.wait(created.hash)["contractAddress"], abi=naive_artifact["abi"]
        )
        fresh = Account.create().address
        naive_new = _gas(sender, naive.functions.mint(fresh, 100))
        naive_existing = _gas(sender, naive.functions.mint(fresh, 100))
        rows.append(GasRow("naive ERC-20 mint, new member", 1, naive_new))
        rows.append(GasRow("naive ERC-20 mint, existing member", 1, naive_existing))
        bar.advance(task, 2)

        batches: dict[int, tuple[int, list[str]]] = {}  # size -> existing-member batch
        for size in BATCH_SIZES:
            members = [Account.create().address for _ in range(size)]
            for label, naive_gas in (("new", naive_new), ("existing", naive_existing)):
                refs = [os.urandom(32) for _ in range(size)]
                call = hub.issue_batch(
                    1, 1, seq, refs, members, [100] * size, input_root=os.urandom(32)
                )
                gas = _gas(sender, call)
                batches[size] = (seq, members)
                seq += size
                rows.append(GasRow(f"issueBatch x{size}, {label} members", size, gas, naive_gas))
                bar.advance(task)
            bar.advance(task)

        # A member with a key, for the signed operations.
        member_key = anvil_dev_key(6)
        member = Account.from_key(member_key).address
        sender.transact(
            hub.issue_batch(
                1, 1, seq, [os.urandom(32)], [member], [1_000], input_root=os.urandom(32)
            )
        )
        issued_seq = seq
        seq += 1
        deadline = int(time.time()) + 3600
        chain_id = settings.chain_id

        def relayed(
            kind: str, message: dict[str, Any], label: str, call: Callable[[Any, bytes], Any]
        ) -> None:
            """The member signs ``message`` (EIP-712 ``kind``); the operator relays it."""
            signature = signing.sign(member_key, kind, chain_id, hub.address, message)
            rows.append(GasRow(label, 1, _gas(sender, call(message, signature))))
            bar.advance(task)

        redemption = {
            "member": member,
            "merchantId": 1,
            "amount": 10,
            "ref": os.urandom(32),
            "nonce": hub.nonce_of(member),
            "deadline": deadline,
        }
        relayed("Redemption", redemption, "redeem (member's EIP-712 consent, relayed)", hub.redeem)

        transfer = {
            "from": member,
            "to": Account.create().address,
            "amount": 10,
            "nonce": hub.nonce_of(member),
            "deadline": deadline,
        }
        relayed(
            "TransferRequest", transfer, "transfer (EIP-712, relayed), new recipient",
            hub.transfer_with_signature,
        )  # fmt: skip

        member_sender = TransactionSender(w3, member_key, chain_id)
        rows.append(
            GasRow(
                "transfer (member's own ERC-20 call)",
                1,
                _gas(member_sender, network.token.transfer(transfer["to"], 5)),
            )
        )

        # One refund per transaction, as before batching: the member's own issuance (a batch
        # of 1), then the middle item of the existing-member batch of 100 (a chunk of 8
        # items and a proof of 4 hashes).
        in_batch_of_100 = batches[100][0] + 57
        for original, size in ((issued_seq, 1), (in_batch_of_100, 100)):
            item = find_issuance(network, 1, original).clawback_item(
                seq, keccak(seq.to_bytes(8, "big")), 100
            )
            gas = _gas(sender, hub.clawback_batch(1, [item], input_root=os.urandom(32)))
            rows.append(GasRow(f"clawbackBatch x1, refund from an issue batch of {size}", 1, gas))
            seq += 1
        # Several refunds per transaction: items of the existing-member batch of 500, every
        # third one (a disjoint set per size), across its chunks.
        first, members = batches[500]
        for offset, size in enumerate(CLAWBACK_BATCH_SIZES):
            items = []
            for index in range(offset, offset + 3 * size, 3):
                proved = merkle.prove(first, members, [100] * len(members), first + index)
                items.append(proved.clawback_item(seq, keccak(seq.to_bytes(8, "big")), 100))
                seq += 1
            gas = _gas(sender, hub.clawback_batch(1, items, input_root=os.urandom(32)))
            rows.append(
                GasRow(f"clawbackBatch x{size}, full refunds from an issue batch of 500", size, gas)
            )
            bar.advance(task)
        # Partial refunds (50 of the 100 issued: an amount slot each), every other item of the
        # untouched end of the same batch.
        partial = []
        for index in range(300, 500, 2):
            proved = merkle.prove(first, members, [100] * len(members), first + index)
            partial.append(proved.clawback_item(seq, keccak(seq.to_bytes(8, "big")), 50))
            seq += 1
        rows.append(
            GasRow(
                f"clawbackBatch x{len(partial)}, partial refunds from an issue batch of 500",
                len(partial),
                _gas(sender, hub.clawback_batch(1, partial, input_root=os.urandom(32))),
            )
        )
        bar.advance(task)

        # Badges: a member's first badge takes a fresh bitmap word, a second one (type 2, the
        # same word) updates it.
        for badge_id in (1, 2):
            uri = f"https://example.invalid/{badge_id}"
            sender.transact(hub.define_badge(badge_id, f"Badge {badge_id}", uri, 10**9, True))
        rows.append(GasRow("badge award x1", 1, _gas(sender, hub.award_badges(1, [member], [1]))))
        holders = [Account.create().address for _ in range(100)]
        for badge_id, label in ((1, "first badge"), (2, "member already holds one")):
            gas = _gas(sender, hub.award_badges(1, holders, [badge_id] * 100))
            rows.append(GasRow(f"badge award x100, {label}", 100, gas))
        bar.advance(task)

        # A rule-set version: the default set's text in calldata and in the log (never on the
        # hot path; the first version of the bench merchant was published by fresh_network).
        text = _default_rules()
        rows.append(
            GasRow(
                f"publishRuleSet, default rule set ({len(text):,} B), a later version",
                1,
                _gas(sender, hub.publish_rule_set(1, text)),
            )
        )
        bar.advance(task)
    return rows


def render_table(rows: list[GasRow]) -> Table:
    """A readable table: gas per event and the ratio to the naive mint."""
    table = Table(title="Gas per operation (anvil, cancun; includes 21k base and calldata)")
    table.add_column("operation")
    table.add_column("events", justify="right")
    table.add_column("gas (tx)", justify="right")
    table.add_column("gas / event", justify="right")
    table.add_column("naive mint / event", justify="right")
    table.add_column("x cheaper", justify="right")
    for row in rows:
        table.add_row(
            row.operation,
            str(row.events),
            f"{row.gas_total:,}",
            f"{row.per_event:,}",
            f"{row.naive_per_event:,}" if row.naive_per_event else "",
            f"{row.ratio:.1f}" if row.ratio else "",
        )
    return table
