"""Request body guards, applied before the application sees a body.

- Size: a body larger than its route allows is refused with ``413
  payload_too_large``, whether it announces its length or streams in chunks. An
  event is a few hundred bytes (an order of 500 long lines stays under 256 KiB);
  a batch carries up to 1,000 events.
- JSON: a body the application would parse as JSON (a JSON media type, or none)
  is first checked with pydantic-core's parser, which stops at a nesting depth of
  about 200: ``json.loads`` has no such limit of its own, and web3's ``py_ecc``
  raises the interpreter's recursion limit to 100,000 at import, so a 200 KB
  body of nested brackets would otherwise overflow the C stack and kill the
  process. Anything that parser refuses (also text that is not UTF-8) is a
  ``400 malformed_json``, as FastAPI answers for invalid JSON.
"""

from __future__ import annotations

import pydantic_core
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.api.errors import error_response

#: Largest body of any request but a batch.
MAX_BODY_BYTES = 256 * 1024
#: Largest body of ``POST /v1/events/batch`` (1,000 events of up to 4 KiB each).
MAX_BATCH_BODY_BYTES = 4 * 1024 * 1024
BATCH_PATH = "/v1/events/batch"


def body_limit(path: str) -> int:
    """The largest body, in bytes, a request to ``path`` may carry."""
    return MAX_BATCH_BODY_BYTES if path.rstrip("/") == BATCH_PATH else MAX_BODY_BYTES


def parsed_as_json(content_type: bytes | None) -> bool:
    """Whether FastAPI parses a body of this media type as JSON (as it does without one)."""
    if not content_type:
        return True
    media_type = content_type.split(b";", 1)[0].strip().lower()
    subtype = media_type.partition(b"/")[2]
    return subtype == b"json" or subtype.endswith(b"+json")


def _too_large(limit: int) -> ASGIApp:
    """The ``413 payload_too_large`` answer (built only when needed: most requests fit)."""
    return error_response(413, "payload_too_large", f"the request body exceeds {limit} bytes")


class BodyGuard:
    """ASGI middleware: reads the body (up to the route's limit), checks it, replays it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = body_limit(scope["path"])
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            await _too_large(limit)(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await _too_large(limit)(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if body and parsed_as_json(headers.get(b"content-type")):
            try:
                pydantic_core.from_json(body)
            except ValueError as exc:
                refused = error_response(
                    400, "malformed_json", f"the request body is not valid JSON: {exc}"
                )
                await refused(scope, receive, send)
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
