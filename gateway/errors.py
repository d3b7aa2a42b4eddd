"""Errors of the gateway's domain, each with a stable machine-readable code.

``api/`` turns every :class:`GatewayError` into the one error body
``{"error": {"code", "message", "details"}}`` with the error's HTTP status.
"""

from __future__ import annotations

import math
from typing import Any


class GatewayError(Exception):
    """Root of every error raised by ``gateway``."""

    code = "gateway_error"
    status = 400

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class Unauthorized(GatewayError):
    """Missing, unknown or revoked API key or session."""

    code = "unauthorized"
    status = 401


class Forbidden(GatewayError):
    """Authenticated, but not allowed (suspended merchant, another merchant's data)."""

    code = "forbidden"
    status = 403


class NotFound(GatewayError, LookupError):
    """The resource does not exist (or belongs to another merchant)."""

    code = "not_found"
    status = 404


class InvalidRequest(GatewayError, ValueError):
    """The request is well-formed JSON but not acceptable."""

    code = "invalid_request"
    status = 422


class RuleSetTooLarge(InvalidRequest):
    """The rule set's canonical text exceeds what the hub takes in one publication."""

    code = "rule_set_too_large"

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(
            f"the rule set's canonical text is {size} bytes; the hub takes at most {limit}",
            size=size,
            limit=limit,
        )


class WebhookUrlNotAllowed(InvalidRequest):
    """The webhook URL leads to a private, loopback or other non-public address."""

    code = "webhook_url_not_allowed"


class IdempotencyConflict(GatewayError):
    """The same Idempotency-Key is being processed right now."""

    code = "idempotency_in_flight"
    status = 409


class IdempotencyKeyReused(GatewayError):
    """The Idempotency-Key was used before with a different request body."""

    code = "idempotency_key_reused"
    status = 422


class RuleRejected(GatewayError):
    """The rules engine rejected the event (frozen member, limits, unknown order...)."""

    code = "event_rejected"
    status = 422


class RuleChangePending(GatewayError):
    """A new rule-set version while the last one published is still in its notice period:
    the hub takes one pending version at a time."""

    code = "rule_change_pending"
    status = 409

    def __init__(self, merchant_id: int, version: int, effective_at: int) -> None:
        super().__init__(
            f"rule set version {version} takes effect at unix time {effective_at}; "
            "a new version can be published from then on",
            merchant_id=merchant_id,
            version=version,
            effective_at=effective_at,
        )


class ErasureBlocked(GatewayError):
    """A member's data cannot be erased while some of their operations are still on their
    way to the chain or an event of theirs is held for review: their inputs are needed
    until then."""

    code = "erasure_blocked"
    status = 409

    def __init__(self, ops_in_flight: int, events_held: int) -> None:
        super().__init__(
            "operations of this member are still on their way to the chain or held for "
            "review; try again once they are settled",
            ops_in_flight=ops_in_flight,
            events_held=events_held,
        )


class OutOfStock(GatewayError):
    """The reward has no stock left."""

    code = "out_of_stock"
    status = 409


class InsufficientPoints(GatewayError):
    """The member's balance does not cover the redemption or transfer."""

    code = "insufficient_points"
    status = 422


class SignatureRejected(GatewayError):
    """A member's signature is invalid, expired, or for another chain/contract/nonce."""

    code = "invalid_signature"
    status = 422


class MemberFrozen(Forbidden):
    """The member is frozen by the network: nothing may move."""

    code = "member_frozen"


class RateLimited(GatewayError):
    """Too many requests for this API key (or, for sign-in, this client address).

    ``retry_after`` (seconds, also sent as the ``Retry-After`` header) defaults to
    the refill time of one request at ``limit_per_minute``.
    """

    code = "rate_limited"
    status = 429

    def __init__(self, message: str, *, retry_after: int | None = None, **details: Any) -> None:
        if retry_after is None:
            per_minute = details.get("limit_per_minute")
            retry_after = math.ceil(60 / per_minute) if per_minute else 60
        self.retry_after = max(1, int(retry_after))
        super().__init__(message, retry_after=self.retry_after, **details)


class AdmissionPending(GatewayError):
    """A merchant admission is scheduled but the timelock delay has not passed yet."""

    code = "admission_pending"

    def __init__(self, operation_id: str, ready_at: int) -> None:
        super().__init__(
            f"admission scheduled (timelock operation {operation_id}); it can execute "
            f"from unix time {ready_at}",
            operation_id=operation_id,
            ready_at=ready_at,
        )
        self.operation_id = operation_id
        self.ready_at = ready_at


class NetworkPaused(GatewayError):
    """The hub is paused by the guardian: nothing can move until it resumes."""

    code = "network_paused"
    status = 503


# ---------------------------------------------------------------------- the member wallet


class SignInRejected(Unauthorized):
    """A SIWE message or login link that signs no one in; ``code`` says why."""

    def __init__(self, code: str, message: str, **details: Any) -> None:
        super().__init__(message, **details)
        self.code = code


class SessionRequired(Unauthorized):
    """No wallet session, or an expired or revoked one."""

    code = "session_required"


class WrongSessionKind(Forbidden):
    """The action needs the other kind of session (custodial or self-custody): ``code``."""

    def __init__(self, code: str, message: str, **details: Any) -> None:
        super().__init__(message, **details)
        self.code = code


class SignatureExpired(SignatureRejected):
    """The signed action's ``deadline`` has passed (the hub: ``SignatureExpired(deadline)``)."""

    code = "signature_expired"


class WalletConflict(GatewayError):
    """The request clashes with the member's state (claimed, ops pending, self-custody)."""

    status = 409

    def __init__(self, code: str, message: str, **details: Any) -> None:
        super().__init__(message, **details)
        self.code = code


class LinkCodeInvalid(InvalidRequest):
    """The link code is unknown, already used or expired."""

    code = "link_code_invalid"


# ---------------------------------------------------------------------- webhooks


class DestinationRefused(GatewayError):
    """The gateway will not connect to a webhook ``host``; ``final``: nor will it later."""

    code = "destination_refused"

    def __init__(self, reason: str, *, final: bool, host: str) -> None:
        super().__init__(reason, final=final, host=host)
        self.final = final
        self.host = host
