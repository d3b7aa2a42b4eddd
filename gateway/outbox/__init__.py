"""The outbox worker: pending chain ops become on-chain transactions, exactly once.

:class:`~gateway.outbox.worker.OutboxWorker` is one class built in layers, each module a
layer on the one before it, bottom up: :mod:`~gateway.outbox.base` (state and stored
transactions), :mod:`~gateway.outbox.status` (event statuses, webhooks),
:mod:`~gateway.outbox.sending` (broadcasts, nonces), :mod:`~gateway.outbox.receipts`,
:mod:`~gateway.outbox.replacement` (stuck transactions), :mod:`~gateway.outbox.reverts`
(claiming a planned batch's ops, the reverts that hold or fail them),
:mod:`~gateway.outbox.packing` (storing, issue batches, their gas from
:mod:`~gateway.outbox.gas`),
:mod:`~gateway.outbox.clawbacks`, :mod:`~gateway.outbox.singles` (badges, tiers, one-op
transactions) and :mod:`~gateway.outbox.worker` (the loop, recovery on start);
:mod:`~gateway.outbox.recovery` catches up with the chain after a database loss.
"""
