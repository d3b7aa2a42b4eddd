"""Where chain recovery used to live: :mod:`gateway.outbox.recovery` holds it now."""

from gateway.outbox.recovery import ChainRecovery

__all__ = ["ChainRecovery"]
