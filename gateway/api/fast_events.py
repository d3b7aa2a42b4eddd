"""The fast path of ``POST /v1/events``: a request in order is answered below FastAPI.

Measured on the single-event load, FastAPI's routing, dependency solving (with
the API-key lookup hopping into the threadpool and opening a session per
request) and its middleware cost about as much CPU per request as accepting the
event in a group.  This ASGI middleware answers the common case itself:

- the headers say ``Authorization: Bearer <key>``, an ``Idempotency-Key`` of 1 to
  255 characters and a JSON body (or no media type);
- the body parses (``json.loads``, as FastAPI does) and validates as
  :class:`gateway.schemas.EventCreate` (python mode, as FastAPI does);
- the group committer authenticates the key for its whole group
  (:meth:`GroupCommitter.submit_with_api_key`) and accepts the event.

The answer is then sent as the route would send it (status, the stored answer as
JSON, the same headers).  Anything else -- a missing or malformed header, a body
that does not validate, a key refused, an error no answer was stored for -- is
handed to the FastAPI route unchanged, body replayed, which answers it exactly as
before (401, 403, 422 with FastAPI's field errors, 429 with ``Retry-After``...).
The route runs the request again from the start: that is safe, as nothing was
accepted (a refused key) or the Idempotency-Key makes the second submission a
replay of the first.

It sits inside :class:`gateway.api.limits.BodyGuard`, so size and JSON-depth
checks come first.
"""

from __future__ import annotations

import json
from typing import Any

import pydantic_core
from pydantic import ValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.api.group_commit import GroupCommitter
from gateway.api.limits import parsed_as_json
from gateway.schemas import EventCreate

EVENTS_PATH = "/v1/events"
BEARER = "Bearer "


class SingleEventFastPath:
    """ASGI middleware answering well-formed ``POST /v1/events`` through the committer."""

    def __init__(self, app: ASGIApp, committer: GroupCommitter) -> None:
        self.app = app
        self.committer = committer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != EVENTS_PATH:
            await self.app(scope, receive, send)
            return
        body = b""
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        answer = await self._answer(scope, body)
        if answer is None:
            await self.app(scope, _replay(body, receive), send)
            return
        status, content = answer
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-length", str(len(content)).encode()),
                    (b"content-type", b"application/json"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": content})

    async def _answer(self, scope: Scope, body: bytes) -> tuple[int, bytes] | None:
        """(status, JSON body) when the fast path can answer, else None (the route will)."""
        headers = _first_headers(scope)
        authorization = headers.get(b"authorization", b"").decode("latin-1")
        key = headers.get(b"idempotency-key", b"").decode("latin-1")
        if (
            not authorization.startswith(BEARER)
            or not 1 <= len(key) <= 255
            or not parsed_as_json(headers.get(b"content-type"))
        ):
            return None
        try:
            event = EventCreate.model_validate(json.loads(body))
        except (ValueError, ValidationError):  # JSONDecodeError is a ValueError
            return None
        api_key = authorization.removeprefix(BEARER).strip()
        try:
            status, answer = await self.committer.submit_with_api_key(api_key, key, event)
        except Exception:
            return None  # refused key, or no answer stored: the route answers
        return status, pydantic_core.to_json(answer, inf_nan_mode="null")


def _first_headers(scope: Scope) -> dict[bytes, bytes]:
    """The request's headers by lower-case name, the first of each (as Starlette reads them)."""
    headers: dict[bytes, bytes] = {}
    for name, value in scope["headers"]:
        headers.setdefault(name.lower(), value)
    return headers


def _replay(body: bytes, receive: Receive) -> Receive:
    """``receive`` giving ``body`` first, then whatever the client sends next."""
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            message: dict[str, Any] = {"type": "http.request", "body": body, "more_body": False}
            return message
        return await receive()

    return replay
