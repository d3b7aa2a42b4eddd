"""The ``pointsnet`` command line: devnet, deploy, keys, contracts, network (the root ``app``).

Every sub-command reads its settings from ``POINTSNET_*`` variables (see
``.env.example``); nothing here prints a private key.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from chain import artifacts
from chain.audit.cli import audit_app
from chain.config import PROJECT_ROOT, get_chain_settings
from chain.errors import ChainError

app = typer.Typer(help="pointsnet: an interoperable loyalty points network.", no_args_is_help=True)
devnet_app = typer.Typer(help="The embedded anvil devnet.", no_args_is_help=True)
contracts_app = typer.Typer(help="Compile and check the Solidity contracts.", no_args_is_help=True)
keys_app = typer.Typer(
    help="The operator's signer keys (encrypted keystores).", no_args_is_help=True
)
app.add_typer(devnet_app, name="devnet")
app.add_typer(contracts_app, name="contracts")
network_app = typer.Typer(
    help="The network's parameters (changed through the timelock).", no_args_is_help=True
)
app.add_typer(keys_app, name="keys")
app.add_typer(network_app, name="network")
app.add_typer(audit_app, name="audit")

console = Console()
err = Console(stderr=True)


def _fail(exc: Exception) -> typer.Exit:
    err.print(f"[red]error:[/red] {exc}")
    return typer.Exit(code=1)


# ---------------------------------------------------------------- devnet


@devnet_app.command("start")
def devnet_start(
    background: Annotated[bool, typer.Option(help="detach and return once it answers")] = False,
) -> None:
    """Start anvil with its state persisted under the data directory."""
    from chain import devnet  # httpx: not loaded by the gateway's server processes

    settings = get_chain_settings()
    try:
        if background:
            pid = devnet.start_background(settings)
            console.print(f"devnet running (pid {pid}) at {settings.rpc_url}")
            return
        node = devnet.Devnet(settings).start()
    except ChainError as exc:
        raise _fail(exc) from exc
    console.print(f"devnet running at {node.url}; Ctrl-C stops it (state is kept)")
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        while node.is_running():
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        node.stop()


@devnet_app.command("stop")
def devnet_stop() -> None:
    """Stop a background devnet (its state is written on the way out)."""
    from chain import devnet

    stopped = devnet.stop_background(get_chain_settings())
    console.print("devnet stopped" if stopped else "no devnet was running")


@devnet_app.command("status")
def devnet_status() -> None:
    """Show whether the devnet runs, and its chain id and block."""
    from chain import devnet

    console.print_json(json.dumps(devnet.status(get_chain_settings())))


# ---------------------------------------------------------------- deploy


@app.command("deploy")
def deploy_command(
    force: Annotated[bool, typer.Option(help="deploy anew even if a deployment exists")] = False,
) -> None:
    """Deploy the contracts (or reuse the recorded deployment) and print their addresses."""
    from chain.deploy import deploy

    try:
        deployment = deploy(get_chain_settings(), force=force, progress=lambda m: console.log(m))
    except ChainError as exc:
        raise _fail(exc) from exc
    table = Table(title=f"pointsnet on chain {deployment.chain_id}")
    table.add_column("contract")
    table.add_column("address")
    for name in ("hub", "token", "badges", "timelock"):
        table.add_row(name, getattr(deployment, name))
    console.print(table)


@app.command("up")
def up() -> None:
    """Start the devnet in the background if needed, deploy if needed, print addresses."""
    from chain import devnet

    settings = get_chain_settings()
    if settings.is_devnet and not devnet.status(settings)["running"]:
        try:
            devnet.start_background(settings)
        except ChainError as exc:
            raise _fail(exc) from exc
    deploy_command(force=False)


# ---------------------------------------------------------------- keys


@keys_app.command("new")
def keys_new(
    out: Annotated[Path, typer.Option(help="keystore file to write (never overwritten)")],
    password_file: Annotated[
        Path | None, typer.Option(help="read the password from this file (first line)")
    ] = None,
    import_key: Annotated[
        bool, typer.Option(help="encrypt an existing key, read from the terminal")
    ] = False,
) -> None:
    """Create a signer key as an encrypted JSON keystore; prints only its address.

    The password comes from --password-file, POINTSNET_KEYSTORE_PASSWORD, or a prompt.
    List the files in POINTSNET_OPERATOR_KEYSTORES to use them.
    """
    from chain.signers import new_keystore

    if password_file is not None:
        lines = password_file.read_text().splitlines()
        password = lines[0] if lines else ""
    elif os.environ.get("POINTSNET_KEYSTORE_PASSWORD"):
        password = os.environ["POINTSNET_KEYSTORE_PASSWORD"]
    else:
        password = typer.prompt("keystore password", hide_input=True, confirmation_prompt=True)
    key = typer.prompt("private key (hex)", hide_input=True) if import_key else None
    try:
        address = new_keystore(out, password, key)
    except (ChainError, ValueError) as exc:
        raise _fail(exc) from exc
    console.print(f"wrote {out} for [bold]{address}[/bold]: fund it, then run `pointsnet deploy`")


@keys_app.command("list")
def keys_list() -> None:
    """The signer pool: index, address, issuer role and balance (no key is unlocked)."""
    from web3 import Web3

    from chain.deployment import load_deployment
    from chain.signers import signer_addresses

    settings = get_chain_settings()
    try:
        addresses = signer_addresses(settings)
    except ChainError as exc:
        raise _fail(exc) from exc
    w3 = Web3(Web3.HTTPProvider(settings.rpc_url, request_kwargs={"timeout": 10}))
    hub = None
    try:
        from chain.contracts import LoyaltyNetworkClient

        hub = LoyaltyNetworkClient(w3, load_deployment(settings).hub)
    except ChainError:
        pass
    table = Table(title=f"signer pool on chain {settings.chain_id}")
    for column in ("index", "address", "issuer", "balance (ETH)"):
        table.add_column(column)
    for index, address in enumerate(addresses):
        checksum = Web3.to_checksum_address(address)
        try:
            balance = f"{w3.eth.get_balance(checksum) / 10**18:.4f}"
            issuer = (
                "yes"
                if hub is not None
                and hub.functions.hasRole(hub.role("ISSUER_ROLE"), checksum).call()
                else "no"
            )
        except Exception as exc:  # the RPC endpoint is down: still list the addresses
            balance, issuer = f"? ({type(exc).__name__})", "?"
        table.add_row(str(index), address, issuer, balance)
    console.print(table)


# ---------------------------------------------------------------- network


@network_app.command("rule-notice")
def network_rule_notice(
    seconds: Annotated[
        int | None,
        typer.Argument(help="the new notice in seconds (at most 365 days); none: show it"),
    ] = None,
) -> None:
    """Show the rule notice (how long a merchant's new rule-set version waits before it takes
    effect), or change it through the timelock: scheduled now, executed at once when the
    timelock's delay is at most 30 s, else by running the same command again once it is due."""
    from chain import governance
    from chain.config import MAX_RULE_NOTICE_SECONDS
    from chain.contracts import Network
    from chain.deploy import connect, operator_sender
    from chain.deployment import load_deployment

    settings = get_chain_settings()
    if seconds is not None and not 0 <= seconds <= MAX_RULE_NOTICE_SECONDS:
        raise _fail(ValueError(f"the notice is 0 to {MAX_RULE_NOTICE_SECONDS} seconds"))
    try:
        w3 = connect(settings)
        deployment = load_deployment(settings)
        network = Network.at(w3, deployment.hub, deployment.timelock)
        if seconds is not None:
            admin = operator_sender(settings, w3, "admin")
            change, done = governance.change_rule_notice(network, admin, seconds, deployment.block)
            if not done:
                console.print(
                    f"setRuleNotice({seconds}) scheduled; due at {change.ready_at} (unix time): "
                    "run this command again then"
                )
        current = network.hub.rule_notice_seconds()
        waiting = governance.pending_rule_notices(network, deployment.block)
    except ChainError as exc:
        raise _fail(exc) from exc
    console.print(f"rule notice: {current} s")
    for value, ready_at in waiting:
        console.print(f"scheduled: {value} s, due at {ready_at} (unix time)")


@network_app.command("execute-ready")
def network_execute_ready() -> None:
    """Execute every timelock operation whose delay has passed (rebuilt from the timelock's
    logs: nothing is kept off chain), and list the ones still waiting."""
    from chain import governance
    from chain.abi import describe_call
    from chain.contracts import Network
    from chain.deploy import connect, operator_sender
    from chain.deployment import load_deployment

    settings = get_chain_settings()
    try:
        w3 = connect(settings)
        deployment = load_deployment(settings)
        network = Network.at(w3, deployment.hub, deployment.timelock)
        admin = operator_sender(settings, w3, "admin")
        tried = governance.execute_ready(network, admin, deployment.block)
        waiting = governance.pending_calls(network, deployment.block)
    except ChainError as exc:
        raise _fail(exc) from exc
    for call, outcome in tried:
        console.print(f"{describe_call(call.data)}: {outcome}", markup=False, highlight=False)
    for call in waiting:
        console.print(
            f"waiting: {describe_call(call.data)}, due at {call.ready_at} (unix time)",
            markup=False,
            highlight=False,
        )
    if not tried and not waiting:
        console.print("no timelock operation is waiting")
    if any(outcome != "executed" for _call, outcome in tried):
        raise typer.Exit(code=1)


# ---------------------------------------------------------------- contracts


@contracts_app.command("build")
def contracts_build() -> None:
    """Compile contracts/ and write the committed artifacts."""
    try:
        written = artifacts.build()
    except ChainError as exc:
        raise _fail(exc) from exc
    for path in written:
        console.print(f"wrote {path}")


@contracts_app.command("check")
def contracts_check() -> None:
    """Rebuild in a temporary directory and fail on any difference with the committed artifacts."""
    try:
        differences = artifacts.check()
    except ChainError as exc:
        raise _fail(exc) from exc
    if differences:
        for diff in differences:
            err.print(diff, markup=False, highlight=False)
        err.print(
            f"[red]{len(differences)} artifact(s) differ[/red]: run `pointsnet contracts build`"
        )
        raise typer.Exit(code=1)
    console.print("artifacts match the sources")
    table = Table(title="code size of the deployed contracts")
    for column in ("contract", "runtime (B)", "of EIP-170", "initcode (B)", "of EIP-3860"):
        table.add_column(column, justify="left" if column == "contract" else "right")
    for size in artifacts.code_sizes():
        table.add_row(
            size.name,
            f"{size.runtime:,}",
            f"{size.runtime_share:.0%}",
            f"{size.initcode:,}",
            f"{size.initcode_share:.0%}",
        )
    console.print(table)


@contracts_app.command("verification-files")
def contracts_verification_files(
    out: Annotated[Path, typer.Option("--out", help="directory to write the files into")],
    rpc_url: Annotated[
        str | None,
        typer.Option("--rpc-url", help="JSON-RPC endpoint (default: POINTSNET_RPC_URL)"),
    ] = None,
    hub: Annotated[
        str | None,
        typer.Option("--hub", help="the hub's address (default: the recorded deployment)"),
    ] = None,
    committed: Annotated[
        bool,
        typer.Option("--committed", help="use the committed artifacts, not a fresh build"),
    ] = False,
    sources: Annotated[
        Path, typer.Option("--sources", help="project root whose contracts/ to compile")
    ] = PROJECT_ROOT,
    start_block: Annotated[
        int | None, typer.Option("--start-block", help="first block to scan for the network")
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="print the summary as JSON")] = False,
) -> None:
    """Write what Sourcify, Blockscout and Etherscan need for each deployed contract
    (standard-JSON input, metadata, sources, constructor arguments, a README each) and
    check that the deployed code carries the metadata's IPFS hash: exact match, partial
    (code equal, metadata differs) or mismatch. Exit 0 when every contract is exact."""
    from chain.audit.cli import resolve_target
    from chain.audit.reader import AuditLog
    from chain.verification import verification_packages
    from chain.verification_files import write_packages
    from chain.verify import reference_artifacts

    try:
        rpc, hub_address = resolve_target(rpc_url, hub)
        block = rpc.block_number()
        contracts = AuditLog(rpc, hub_address, start_block=start_block).discover(block)
        if not committed and not json_out:
            err.print(f"compiling {sources / 'contracts'} with the pinned solc ...")
        reference = reference_artifacts(recompile=not committed, root=sources)
        packages = verification_packages(rpc, contracts, reference, root=sources, block=block)
        folders = write_packages(packages, out)
    except (ChainError, OSError, KeyError, ValueError) as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(code=2) from exc
    if json_out:
        summary = [
            dict(p.summary(), directory=f.name) for p, f in zip(packages, folders, strict=True)
        ]
        console.print_json(json.dumps(summary))
    else:
        for package, folder in zip(packages, folders, strict=True):
            style = "green" if package.check.exact else "red"
            console.print(
                f"[{style}]{package.role} {package.contract} at {package.address}: "
                f"{package.check.verdict}[/{style}] -> {folder}",
                highlight=False,
            )
            if package.check.note:
                console.print(f"  {package.check.note}", highlight=False)
            for note in package.notes:
                console.print(f"  note: {note}", highlight=False)
        console.print(f"wrote {out / 'README.md'}; see docs/VERIFY.md to submit", highlight=False)
    if not all(p.check.exact for p in packages):
        raise typer.Exit(code=1)
