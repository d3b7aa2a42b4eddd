"""``/wallet/``: the member wallet's static page (``wallet/``), with ethers served from
the pinned npm package, never from a CDN."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Response
from fastapi.responses import FileResponse, RedirectResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from gateway.errors import NotFound

PROJECT_ROOT = Path(__file__).resolve().parents[3]
WALLET_DIR = PROJECT_ROOT / "wallet"
ETHERS_BUNDLE = PROJECT_ROOT / "node_modules" / "ethers" / "dist" / "ethers.min.js"

router = APIRouter(include_in_schema=False)


#: The page loads only its own files: no CDN, no inline script, no framing.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
        "form-action 'self'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}


class WalletFiles(StaticFiles):
    """``wallet/`` as static files with the page's security headers; no Python files."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        if path.endswith((".py", ".pyc", ".typed")) or "__pycache__" in path:
            raise StarletteHTTPException(status_code=404)
        response = await super().get_response(path, scope)
        response.headers.update(PAGE_HEADERS)
        return response


def static_files() -> WalletFiles:
    """The wallet page, to mount at ``/wallet``."""
    return WalletFiles(directory=WALLET_DIR, html=True)


@router.get("/wallet")
def wallet_page() -> RedirectResponse:
    return RedirectResponse("/wallet/", status_code=308)


@router.get("/wallet/vendor/ethers.js")
def ethers_bundle() -> FileResponse:
    """ethers v6 from the pinned npm package (``npm ci`` installs it)."""
    if not ETHERS_BUNDLE.is_file():
        raise NotFound("ethers is not installed: run npm ci (make setup)")
    return FileResponse(
        ETHERS_BUNDLE,
        media_type="text/javascript",
        headers={**PAGE_HEADERS, "Cache-Control": "public, max-age=86400"},
    )
