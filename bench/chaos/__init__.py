"""``pointsnet chaos``: the gateway under random SIGKILLs and node restarts, checked to the point.

A test harness, not a benchmark; every figure comes from the run that prints it.

1. A stack of its own in a data dir: anvil with its state persisted
   (``--state`` + ``--state-interval 1``, interval mining), the contracts
   deployed, three merchants admitted, and the gateway as three separate
   processes: ``pointsnet serve --role api``, ``--role worker`` and
   ``--role indexer``.
2. Client threads drive ``events`` merchant events through ``POST /v1/events``
   with an Idempotency-Key each, as real merchants do: on a connection error,
   a 5xx, a 409 (the key is still being processed) or a 429 they retry with
   the same key until they get an answer.
3. Meanwhile ``cycles`` kill cycles: each picks the API, the worker, the
   indexer or anvil (every target once per round of four, in a random order)
   at a random moment; a gateway process gets SIGKILL (a worker is sometimes
   restarted with a fault point, so that it also dies right after storing,
   after broadcasting or before recording a receipt), anvil gets SIGTERM (it
   writes its state; its mempool is lost). After a random pause the victim is
   started again. A supervisor restarts any role that died on its own.
4. When everything is sent and every cycle is survived, the outbox is drained
   and the chain is checked against the answers the clients were given:
   every accepted event's issuance is on chain exactly once (its ``eventRef``
   in ``PointsIssued`` logs) and confirmed in the gateway, every member's
   balance is exactly what the accepted answers promised, no merchant
   sequence number is used twice, and the operator's nonces have no drift:
   every mined transaction of the operator key after start-up is a
   transaction the outbox stored and marked confirmed at that nonce, no
   stored transaction is left unfinished, and the chain's nonce is the
   outbox's highest confirmed nonce plus one.

The modules: :mod:`~bench.chaos.config` (options, report, workload),
:mod:`~bench.chaos.stack` (the stack, on the one launcher :mod:`bench.stack`),
:mod:`~bench.chaos.run` (clients, kill cycles, drain) and
:mod:`~bench.chaos.verify` (the checks and the printed report).
"""

from bench.chaos.config import TARGETS, ChaosConfig
from bench.chaos.run import run_chaos
from bench.chaos.verify import print_report

__all__ = ["TARGETS", "ChaosConfig", "print_report", "run_chaos"]
