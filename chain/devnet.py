"""The embedded anvil devnet.

:class:`Devnet` runs one anvil process.  With :class:`~chain.config.ChainSettings` it
keeps its chain in ``<data_dir>/devnet/state.json`` (``--state`` loads the file
on start and dumps it on SIGTERM/SIGINT; ``--state-interval 1`` also dumps it
every second so a SIGKILL loses at most a second), logs to
``<data_dir>/devnet/anvil.log`` and writes ``<data_dir>/devnet/anvil.pid`` so
that another process can find and stop it (:func:`stop_background`,
:func:`status`).  :class:`StartStop` is the ``with`` protocol it shares with the
harnesses' fault proxy (``bench.faultproxy``).

Mining is automatic (one block per transaction) unless ``block_time`` is set:
interval mining avoids anvil stalling on bursts of thousands of transactions
(foundry issue 10122).

The binary is found by :func:`chain.toolchain.anvil_binary` (``POINTSNET_ANVIL_BIN``,
else the native binary of this platform's ``@foundry-rs/anvil-<platform>`` npm
package, never its launcher, else an ``anvil`` on ``PATH``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import tempfile
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any, NoReturn, Self

import httpx

from chain.config import DEVNET_CHAIN_ID, ChainSettings
from chain.errors import DevnetError
from chain.toolchain import anvil_binary


def rpc_call(url: str, method: str, params: Sequence[Any] = (), timeout: float = 10.0) -> Any:
    """One JSON-RPC call; returns ``result`` or raises :class:`DevnetError`."""
    payload = {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}
    try:
        response = httpx.post(url, json=payload, timeout=timeout, trust_env=False)
        response.raise_for_status()
        body = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise DevnetError(f"{method} on {url} failed: {exc}") from exc
    if not isinstance(body, dict):
        raise DevnetError(f"{method} on {url}: unexpected answer {body!r}")
    if "error" in body:
        raise DevnetError(f"{method} on {url}: {body['error']}")
    return body.get("result")


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (bind to port 0, then release it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _chain_id_at(url: str, timeout: float = 1.0) -> int | None:
    """The chain id served at ``url``, or None if nothing answers JSON-RPC there."""
    try:
        return int(rpc_call(url, "eth_chainId", timeout=timeout), 16)
    except (DevnetError, TypeError, ValueError):
        return None


def _port_is_free(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # ignore TIME_WAIT
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _tail(output: IO[bytes], size: int = 2000) -> str:
    """The last ``size`` bytes of anvil's output, for error messages."""
    try:
        output.seek(max(0, output.seek(0, os.SEEK_END) - size))
        return output.read().decode(errors="replace").strip()
    except OSError:
        return ""


class StartStop(ABC):
    """Something started and stopped: ``with`` starts it, and stops it on the way out."""

    @abstractmethod
    def start(self) -> Self: ...

    @abstractmethod
    def stop(self) -> None: ...

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class Devnet(StartStop):
    """One anvil process.

    With ``settings`` every option defaults to the ``devnet_*`` settings and the
    state, log and pid files live under ``<data_dir>/devnet/``; an explicit
    keyword argument overrides its setting.  Without settings there is no state
    file (the chain lives in memory), no log file (anvil runs ``--silent``) and
    no pid file unless given.  To force automine over a configured block time,
    pass ``settings.model_copy(update={"devnet_block_time": None})``.
    """

    def __init__(
        self,
        settings: ChainSettings | None = None,
        *,
        host: str | None = None,
        port: int | None = None,
        chain_id: int | None = None,
        state_file: Path | None = None,
        block_time: float | None = None,
        gas_limit: int | None = None,
        log_file: Path | None = None,
        pid_file: Path | None = None,
        code_size_limit: int | None = None,
        extra_args: Sequence[str] = (),
    ) -> None:
        devnet_dir = settings.data_path / "devnet" if settings else None
        self.host = host or (settings.devnet_host if settings else "127.0.0.1")
        self.port = port or (settings.devnet_port if settings else 8545)
        self.chain_id = chain_id or (settings.chain_id if settings else DEVNET_CHAIN_ID)
        self.state_file = state_file or (settings.devnet_state_file if settings else None)
        self.block_time = block_time or (settings.devnet_block_time if settings else None)
        self.gas_limit = gas_limit or (settings.devnet_gas_limit if settings else 300_000_000)
        self.log_file = log_file or (devnet_dir / "anvil.log" if devnet_dir else None)
        self.pid_file = pid_file or (_pid_file(settings) if settings else None)
        self.code_size_limit = code_size_limit
        self.extra_args = list(extra_args)
        self._proc: subprocess.Popen[bytes] | None = None
        self._output: IO[bytes] | None = None

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("", "0.0.0.0", "::") else self.host
        return f"http://[{host}]:{self.port}" if ":" in host else f"http://{host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def command(self) -> list[str]:
        """The anvil command line."""
        cmd = [
            str(anvil_binary()),
            "--host", self.host,
            "--port", str(self.port),
            "--chain-id", str(self.chain_id),
            "--gas-limit", str(self.gas_limit),
        ]  # fmt: skip
        if self.state_file:
            cmd += ["--state", str(self.state_file), "--state-interval", "1"]
        if self.block_time:
            cmd += ["--block-time", str(self.block_time)]
        if self.code_size_limit:
            cmd += ["--code-size-limit", str(self.code_size_limit)]
        if not self.log_file:
            cmd.append("--silent")
        return cmd + self.extra_args

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = 30.0, *, detach: bool = False) -> Self:
        """Launch anvil and wait until it answers ``eth_chainId``.

        ``detach`` puts anvil in its own session so it outlives this process.
        """
        if self.is_running():
            return self
        if not _port_is_free(self.host, self.port):
            found = _chain_id_at(self.url)
            what = f"a node with chain id {found}" if found is not None else "something else"
            raise DevnetError(f"port {self.port} on {self.host} is already in use by {what}")
        for path in (self.state_file, self.log_file, self.pid_file):
            if path:
                path.parent.mkdir(parents=True, exist_ok=True)
        if self.log_file:
            self._output = self.log_file.open("ab")
            stdout: IO[bytes] | int = self._output
        else:
            self._output = tempfile.TemporaryFile()  # noqa: SIM115  (anvil stderr)
            stdout = subprocess.DEVNULL
        self._proc = subprocess.Popen(
            self.command(),
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=self._output,
            start_new_session=detach,
        )
        deadline = time.monotonic() + timeout
        while True:
            if self._proc.poll() is not None:
                self._fail(f"anvil exited with code {self._proc.returncode}")
            found = _chain_id_at(self.url, timeout=0.5)
            if found is not None and self._proc.poll() is None:
                break
            if time.monotonic() > deadline:
                self._fail(f"anvil did not answer on {self.url} within {timeout:.0f}s")
            time.sleep(0.05)
        if found != self.chain_id:
            self._fail(f"anvil answers chain id {found}, expected {self.chain_id}")
        if self.pid_file:
            self.pid_file.write_text(f"{self._proc.pid}\n")
        return self

    def _fail(self, message: str) -> NoReturn:
        output, self._output = self._output, None  # stop() must not close it yet
        self.stop(timeout=5)
        assert output is not None
        with output:
            if self.log_file:
                with self.log_file.open("rb") as log:
                    tail = _tail(log)
            else:
                tail = _tail(output)  # anvil's stderr
        raise DevnetError(message + (f"\n--- anvil output ---\n{tail}" if tail else ""))

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM (anvil dumps its state), wait, SIGKILL as a last resort."""
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            if self.pid_file and _read_pid(self.pid_file) == proc.pid:
                self.pid_file.unlink(missing_ok=True)
        if self._output is not None:
            self._output.close()
            self._output = None


# -- background devnet, found through its pid file ----------------------------


def _read_pid(pid_file: Path) -> int | None:
    try:
        return int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None


#: Devnets this process started in the background, so it can reap them on stop.
_DETACHED: dict[int, subprocess.Popen[bytes]] = {}


def _anvil_alive(pid: int) -> bool:
    """True if ``pid`` is a live (not zombie) anvil process."""
    if pid in _DETACHED:
        return _DETACHED[pid].poll() is None
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # reap it if it is our own exited child
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False  # not ours: a recycled pid
    cmdline = Path(f"/proc/{pid}/cmdline")
    if cmdline.exists():  # Linux: make sure a recycled pid is not taken for anvil
        with contextlib.suppress(OSError):
            return b"anvil" in cmdline.read_bytes()
    return True


def _pid_file(settings: ChainSettings) -> Path:
    return settings.data_path / "devnet" / "anvil.pid"


def _live_pid(settings: ChainSettings) -> int | None:
    pid_file = _pid_file(settings)
    pid = _read_pid(pid_file)
    if pid is not None and _anvil_alive(pid):
        return pid
    pid_file.unlink(missing_ok=True)  # stale
    return None


def start_background(settings: ChainSettings, timeout: float = 30.0) -> int:
    """Start a detached devnet (or find the running one); returns its pid."""
    pid = _live_pid(settings)
    if pid is not None:
        return pid
    devnet = Devnet(settings).start(timeout, detach=True)
    proc, devnet._proc = devnet._proc, None  # let it go: stop() must not end it
    assert proc is not None
    devnet.stop()  # closes our copy of the log file
    _DETACHED[proc.pid] = proc
    return proc.pid


def stop_background(settings: ChainSettings, timeout: float = 15.0) -> bool:
    """Stop the devnet named by the pid file; False if none was running."""
    pid = _live_pid(settings)
    if pid is None:
        return False
    sig: signal.Signals | None = signal.SIGTERM  # anvil dumps its state on SIGTERM
    deadline = time.monotonic() + timeout
    while _anvil_alive(pid):
        if sig is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
            sig = None
        elif time.monotonic() > deadline:
            sig = signal.SIGKILL
        time.sleep(0.05)
    _DETACHED.pop(pid, None)
    _pid_file(settings).unlink(missing_ok=True)
    return True


def status(settings: ChainSettings) -> dict[str, Any]:
    """``running``, ``pid``, ``rpc_url``, ``chain_id`` and ``block_number``."""
    url = Devnet(settings).url
    chain_id = _chain_id_at(url)
    block_number: int | None = None
    if chain_id is not None:
        with contextlib.suppress(DevnetError, TypeError, ValueError):
            block_number = int(rpc_call(url, "eth_blockNumber", timeout=1.0), 16)
    return {
        "running": chain_id is not None,
        "pid": _live_pid(settings),
        "rpc_url": url,
        "chain_id": chain_id,
        "block_number": block_number,
    }
