"""Where the outbox worker used to live: :mod:`gateway.outbox` holds it now (this name stays
for the runtime and the bench)."""

from gateway.outbox.worker import OutboxWorker

__all__ = ["OutboxWorker"]
