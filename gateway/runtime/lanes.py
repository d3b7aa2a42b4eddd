"""Nonce lanes: one outbox worker per signer key, and never two for the same key.

Responsibilities:

- build a :class:`TransactionSender` for each signer key a process runs
  (``pointsnet serve --role worker --signer-index N``; all keys by default);
- hold an exclusive lock on the key while its worker runs, so that two
  processes started with overlapping keys cannot both allocate its nonces:
  a PostgreSQL session advisory lock (released by the server when the
  process dies, even by SIGKILL) or, on SQLite, an ``flock`` on a file in
  the data directory (released by the kernel likewise);
- wait (and say so) while another process holds the key, then take over;
- let only signer 0's worker define the badge catalogue on chain.

Several lanes share the outbox: each worker claims pending ops (``FOR UPDATE
SKIP LOCKED`` on PostgreSQL), signs them with its own key and follows only its
own transactions; per-merchant sequence numbers are taken under a lock of the
merchant row, so they stay unique across lanes.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from typing import IO

from sqlalchemy import Connection, Engine, text
from sqlalchemy.orm import Session, sessionmaker

from chain.sender import GWEI, TransactionSender
from chain.signers import select, signer_keys
from gateway.chainlink import ChainLink
from gateway.outbox.worker import OutboxWorker

log = logging.getLogger("pointsnet.lanes")

#: First half of the PostgreSQL advisory lock key of a signer lane ("pnet").
ADVISORY_NAMESPACE = 0x706E6574


def lane_senders(
    link: ChainLink, indexes: list[int] | None = None
) -> list[tuple[int, TransactionSender]]:
    """``(signer index, sender)`` for each signer key this process runs."""
    settings = link.settings
    return [
        (
            index,
            TransactionSender(
                link.w3,
                key,
                settings.chain_id,
                max_fee_cap_wei=int(settings.max_fee_gwei * GWEI),
                priority_fee_wei=int(settings.priority_fee_gwei * GWEI),
            ),
        )
        for index, key in select(signer_keys(settings), indexes)
    ]


class SignerLane:
    """An outbox worker bound to one signer key, run under that key's exclusive lock."""

    def __init__(
        self,
        link: ChainLink,
        engine: Engine,
        sessions: sessionmaker[Session],
        sender: TransactionSender,
        index: int = 0,
    ) -> None:
        self.index = index
        self.address = sender.address
        self.engine = engine
        # Only lane 0 defines the badge catalogue: lanes racing to define it would
        # revert and waste gas; the others award badges once it is on chain.
        self.worker = OutboxWorker(link, sessions, sender=sender, defines_badges=index == 0)
        self._lock_dir = link.settings.data_path / "locks"
        self._connection: Connection | None = None
        self._file: IO[str] | None = None

    def __repr__(self) -> str:
        return f"SignerLane({self.index}, {self.address})"

    def run(self, stop: threading.Event, retry: float = 2.0) -> None:
        """Take the key's lock (waiting while another process holds it), then work."""
        warned = False
        while not stop.is_set():
            try:
                if self.acquire():
                    break
            except Exception:  # the database is down: try again
                log.exception(
                    "signer lane %d: cannot take the lock of %s", self.index, self.address
                )
            if not warned:
                log.warning(
                    "signer %d (%s) is held by another worker process; waiting for it",
                    self.index,
                    self.address,
                )
                warned = True
            stop.wait(retry)
        if stop.is_set():
            self.release()
            return
        log.info("signer lane %d (%s) running", self.index, self.address)
        try:
            self.worker.run(stop)
        finally:
            self.release()

    # ------------------------------------------------------------------ the lock

    def acquire(self) -> bool:
        """Take the key's exclusive lock; False when another holder has it."""
        if self.engine.dialect.name == "postgresql":
            return self._acquire_advisory()
        return self._acquire_file()

    def release(self) -> None:
        if self._connection is not None:
            try:
                self._connection.close()  # ends the session: the advisory lock goes with it
            except Exception:  # a dead connection holds no lock either
                log.debug("closing the lock connection failed", exc_info=True)
            self._connection = None
        if self._file is not None:
            self._file.close()  # closing the descriptor releases the flock
            self._file = None

    def _lock_key(self) -> int:
        return int(self.address[2:10], 16) & 0x7FFFFFFF

    def _acquire_advisory(self) -> bool:
        if self._connection is None:
            # A connection of its own, outside the pool, held for the lane's lifetime.
            self._connection = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            self._connection.detach()
        taken = self._connection.scalar(
            text("SELECT pg_try_advisory_lock(:namespace, :key)"),
            {"namespace": ADVISORY_NAMESPACE, "key": self._lock_key()},
        )
        return bool(taken)

    def _acquire_file(self) -> bool:
        self._lock_dir.mkdir(parents=True, exist_ok=True)
        if self._file is None:
            path = self._lock_dir / f"signer-{self.address.lower()}.lock"
            self._file = open(path, "a+")  # noqa: SIM115 - held for the lane's lifetime
        try:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        self._file.seek(0)
        self._file.truncate()
        self._file.write(f"{os.getpid()}\n")
        self._file.flush()
        return True
