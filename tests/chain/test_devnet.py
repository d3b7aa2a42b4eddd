"""The embedded anvil devnet: start/stop, persisted state, interval mining, pid file."""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path

import pytest
from factories import AnvilNode

from chain.devnet import Devnet, free_port, rpc_call, start_background, status, stop_background
from chain.errors import DevnetError
from gateway.settings import Settings

ALICE = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"  # anvil dev account 0 (unlocked)
BOB = "0x000000000000000000000000000000000000b0b0"
CAROL = "0x000000000000000000000000000000000000ca01"


def _settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, devnet_port=free_port())


def _int(url: str, method: str, *params: object) -> int:
    return int(rpc_call(url, method, params), 16)


def test_state_survives_sigterm_restart(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    devnet = Devnet(settings)
    with devnet:
        assert _int(devnet.url, "eth_chainId") == 31337
        assert devnet.pid_file is not None
        assert devnet.pid_file.read_text().strip() == str(devnet.pid)
        rpc_call(devnet.url, "eth_sendTransaction", [{"from": ALICE, "to": BOB, "value": "0x1234"}])
        rpc_call(devnet.url, "anvil_setBalance", [CAROL, hex(10**18)])
        rpc_call(devnet.url, "anvil_mine", ["0x3"])
        block = _int(devnet.url, "eth_blockNumber")
        assert block == 4
    assert not devnet.is_running()
    assert not devnet.pid_file.exists()
    assert settings.devnet_state_file.stat().st_size > 0
    assert (tmp_path / "devnet" / "anvil.log").stat().st_size > 0

    with Devnet(settings) as again:
        assert _int(again.url, "eth_blockNumber") == block
        assert _int(again.url, "eth_getBalance", BOB, "latest") == 0x1234
        assert _int(again.url, "eth_getBalance", CAROL, "latest") == 10**18
        assert _int(again.url, "eth_getTransactionCount", ALICE, "latest") == 1
        # and the chain goes on from there
        rpc_call(again.url, "eth_sendTransaction", [{"from": ALICE, "to": BOB, "value": "0x1"}])
        assert _int(again.url, "eth_blockNumber") == block + 1


def test_state_interval_survives_sigkill(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    devnet = Devnet(settings).start()
    rpc_call(devnet.url, "anvil_setBalance", [CAROL, "0x77"])
    time.sleep(2.2)  # --state-interval 1
    assert devnet.pid is not None
    os.kill(devnet.pid, signal.SIGKILL)
    devnet.stop()
    with Devnet(settings) as again:
        assert _int(again.url, "eth_getBalance", CAROL, "latest") == 0x77


def test_port_in_use_by_another_devnet(anvil: AnvilNode) -> None:
    with pytest.raises(DevnetError, match="already in use by a node with chain id 31337"):
        Devnet(port=anvil.port).start()
    assert _int(anvil.url, "eth_chainId") == 31337  # the first one is unharmed


def test_port_in_use_by_something_else() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(DevnetError, match="already in use by something else"):
            Devnet(port=port).start(timeout=5)


def test_early_exit_reports_anvil_output(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    state.write_text("{")  # e.g. a dump cut short
    devnet = Devnet(port=free_port(), state_file=state)
    with pytest.raises(DevnetError, match=r"(?s)exited with code.*failed to parse json"):
        devnet.start()
    assert not devnet.is_running()


def test_interval_mining_makes_empty_blocks() -> None:
    with Devnet(port=free_port(), block_time=1) as devnet:
        deadline = time.monotonic() + 10
        while _int(devnet.url, "eth_blockNumber") < 2:
            assert time.monotonic() < deadline, "no blocks mined on the interval"
            time.sleep(0.2)
        latest = rpc_call(devnet.url, "eth_getBlockByNumber", ["latest", False])
        assert latest["transactions"] == []
        assert "--block-time" in devnet.command()


def test_background_start_status_stop(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    assert status(settings)["running"] is False
    pid = start_background(settings)
    try:
        assert (tmp_path / "devnet" / "anvil.pid").read_text().strip() == str(pid)
        assert start_background(settings) == pid  # already running: same one
        info = status(settings)
        assert info == {
            "running": True,
            "pid": pid,
            "rpc_url": f"http://127.0.0.1:{settings.devnet_port}",
            "chain_id": 31337,
            "block_number": 0,
        }
        assert os.getsid(pid) == pid  # own session: survives this process
    finally:
        assert stop_background(settings) is True
    assert status(settings)["running"] is False
    assert status(settings)["pid"] is None
    assert not (tmp_path / "devnet" / "anvil.pid").exists()
    assert settings.devnet_state_file.exists()  # SIGTERM dumped the state
    assert stop_background(settings) is False


def test_rpc_call_errors_raise(anvil: AnvilNode) -> None:
    with pytest.raises(DevnetError, match="no_such_method"):
        rpc_call(anvil.url, "no_such_method")


@pytest.mark.parametrize("run", [1, 2])
def test_chain_snapshot_isolates_tests(anvil: AnvilNode, chain_snapshot: str, run: int) -> None:
    assert _int(anvil.url, "eth_getBalance", CAROL, "latest") == 0, f"run {run} saw a leak"
    rpc_call(anvil.url, "anvil_setBalance", [CAROL, "0x5"])
    rpc_call(anvil.url, "eth_sendTransaction", [{"from": ALICE, "to": CAROL, "value": "0x1"}])
    assert _int(anvil.url, "eth_getBalance", CAROL, "latest") == 6
