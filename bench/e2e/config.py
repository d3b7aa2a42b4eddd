"""``pointsnet bench e2e``'s options, event mix, merchants and targets."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bench.stack import Progress as Progress  # the harnesses' progress callback
from chain.config import DEVNET_MAX_SIGNERS

#: The event mix (fractions of all events). Refunds are full refunds of an
#: earlier purchase of the same customer; check-ins and reviews earn fixed bonuses.
MIX: dict[str, float] = {
    "purchase_new": 0.28,
    "purchase_existing": 0.42,
    "refund": 0.10,
    "check_in": 0.10,
    "review": 0.10,
}

#: (name, currency, smallest order, largest order) of the bench merchants.
MERCHANTS: tuple[tuple[str, str, int, int], ...] = (
    ("Lumière Paris", "EUR", 20, 300),
    ("Sakura Goods", "JPY", 2_000, 40_000),
    ("Maple & Co", "USD", 15, 250),
    ("Thames Outfitters", "GBP", 15, 250),
)

#: Targets the run is compared against (reported, never adjusted; issue 14).
TARGETS = {
    "batch_confirmed_per_s": 1_500.0,
    "single_confirmed_per_s": 500.0,
    "ratio_to_naive": 15.0,
    "ratio_to_relayer_100m": 1.5,  # batch confirmed/s ÷ relayer, 100M gas per block
    "ratio_to_relayer_30m": 1.6,  # batch confirmed/s ÷ relayer, 30M gas per block
    "share_of_ceiling_30m": 0.9,  # batch confirmed/s ÷ (block gas ÷ our gas/event ÷ block time)
    "accept_p99_ms_at_500": 25.0,
    "confirm_p50_s_1s_blocks": 1.5,
    "cpu_ms_per_event_batch": 0.6,
    "peak_rss_mib": 300.0,
}

#: Every devnet of the bench (gateway, naive, relayer) starts at base fee 0, so EIP-1559
#: fee growth under full blocks (12.5% a block) does not decide the comparison.
ANVIL_ARGS = ("--block-base-fee-per-gas", "0")

FINAL = ("confirmed", "failed", "rejected", "held")
IN_FLIGHT = ("accepted", "submitted")


@dataclass(frozen=True)
class E2EConfig:
    """What to run; the CLI's options."""

    events: int = 20_000
    clients: int = 8
    rate: float = 500.0
    block_time: float | None = None
    database_url: str | None = None
    mode: str = "both"  # single | batch | both | none (the baselines only)
    batch_size: int = 100
    rate_share: float = 0.4  # fraction of each mode's events sent in the rate phase
    naive_threads: int = 4
    naive_seconds: float = 20.0  # time box of each naive variant (0: no naive column)
    relayer_seconds: float = 30.0  # time box of the pipelined relayer's sending (0: none)
    relayer_signers: int = 0  # signing threads beside the sending one (0: sign inline)
    relayer_sign: str = "rlp"  # rlp (payload hash signed) | dict (Account.sign_transaction)
    rate_seconds: float = 60.0  # time box of the rate phase (sending)
    saturation_seconds: float = 120.0  # time box of the saturation phase (sending)
    gas_limit: int = 30_000_000  # block gas limit of every devnet (anvil's default)
    drain_timeout: float = 240.0
    poll_samples: int = 200  # events polled through GET /v1/events/{id} per phase
    profile: bool = False  # py-spy record the server during each saturation phase
    in_process: bool = False  # serve --in-process: API, worker and indexer in one process
    api_processes: int = 1  # uvicorn worker processes of the API (serve --workers)
    lanes: int = 1  # signer lanes of the outbox worker (POINTSNET_SIGNERS on the devnet)
    keep: bool = False  # keep each stack's data dir (server logs, database)
    instrument: bool = False  # serve through bench/instrumented_serve.py (SQL, lock times)
    out_dir: Path | None = None  # raw JSON, chart and profiles
    seed: int = 7

    @property
    def tag(self) -> str:
        """Names the output files: ``automine`` or ``block1s``."""
        return "automine" if self.block_time is None else f"block{self.block_time:g}s"

    @property
    def layout(self) -> str:
        """The gateway's processes and lanes, as the report's header says them."""
        api = "1 API process" if self.api_processes == 1 else f"{self.api_processes} API processes"
        lanes = "1 signer lane" if self.lanes == 1 else f"{self.lanes} signer lanes"
        database = (
            "SQLite" if not self.database_url or "sqlite" in self.database_url else ("PostgreSQL")
        )
        return f"{api}, {lanes}, {database}" + (", in process" if self.in_process else "")

    def check(self) -> None:
        """Raise ValueError on options that cannot run together."""
        self.modes  # noqa: B018  (validates the mode)
        if self.api_processes < 1:
            raise ValueError("--api-processes must be at least 1")
        if not 1 <= self.lanes <= DEVNET_MAX_SIGNERS:
            raise ValueError(f"--lanes must be between 1 and {DEVNET_MAX_SIGNERS}")
        if self.instrument and self.api_processes > 1:
            raise ValueError(
                "--instrument cannot follow uvicorn's spawned API processes: "
                "use --api-processes 1 with it"
            )

    @property
    def modes(self) -> tuple[str, ...]:
        if self.mode == "both":
            return ("single", "batch")
        if self.mode in ("single", "batch"):
            return (self.mode,)
        if self.mode == "none":
            return ()
        raise ValueError(f"mode must be single, batch, both or none, not {self.mode!r}")
