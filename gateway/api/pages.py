"""The static pages the gateway serves (the wallet, the audit page) and their headers."""

from __future__ import annotations

from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

#: The pages load only their own files: no CDN, no inline script, no framing.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
        "form-action 'self'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


class PageFiles(StaticFiles):
    """A page's folder as static files with the pages' security headers; never the
    Python files (nor ``hidden`` suffixes) that live beside it."""

    hidden: tuple[str, ...] = (".py", ".pyc")

    async def get_response(self, path: str, scope: Scope) -> Response:
        if path.endswith(self.hidden) or "__pycache__" in path:
            raise StarletteHTTPException(status_code=404)
        response = await super().get_response(path, scope)
        response.headers.update(PAGE_HEADERS)
        response.headers.setdefault("Cache-Control", "no-cache")
        return response
