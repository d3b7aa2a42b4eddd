"""The outbox worker: pending chain ops become on-chain transactions, exactly once.

Modules, in the order one op meets them (each a layer of :class:`OutboxWorker` on the
one before it): :mod:`~gateway.outbox.base` (state and stored transactions),
:mod:`~gateway.outbox.status` (event statuses, webhooks), :mod:`~gateway.outbox.sending`
(broadcasts, nonces), :mod:`~gateway.outbox.receipts`, :mod:`~gateway.outbox.replacement`
(stuck transactions), :mod:`~gateway.outbox.packing` (claiming, issue batches),
:mod:`~gateway.outbox.clawbacks`, :mod:`~gateway.outbox.singles` (badges, tiers, one-op
transactions), :mod:`~gateway.outbox.worker` (the loop, recovery on start) and
:mod:`~gateway.outbox.recovery` (catching up with the chain after a database loss).
"""
