"""``/wallet/``: the member wallet's static page (``wallet/``), with ethers served from
the pinned npm package, never from a CDN."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from fastapi import APIRouter
from fastapi.responses import FileResponse, RedirectResponse
from starlette.responses import Response
from starlette.types import Scope

from gateway.api.pages import PAGE_HEADERS, PageFiles
from gateway.errors import NotFound

PROJECT_ROOT = Path(__file__).resolve().parents[3]
WALLET_DIR = PROJECT_ROOT / "wallet"
ETHERS_BUNDLE = PROJECT_ROOT / "node_modules" / "ethers" / "dist" / "ethers.min.js"

router = APIRouter(include_in_schema=False)


class WalletFiles(PageFiles):
    """``wallet/`` as static files with the page's security headers; no Python files."""

    hidden = (".py", ".pyc", ".typed")

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        app = scope.get("app")
        context = getattr(getattr(app, "state", None), "context", None)
        if context is not None:
            origin = rpc_origin(context.settings.effective_public_rpc_url)
            if origin:  # the page verifies entries against the public RPC itself
                policy = response.headers["Content-Security-Policy"]
                response.headers["Content-Security-Policy"] = policy.replace(
                    "connect-src 'self'", f"connect-src 'self' {origin}"
                )
        return response


def rpc_origin(url: str | None) -> str | None:
    """The origin (scheme://host[:port]) of an http(s) RPC URL, for the page's
    ``connect-src``; None for no URL or one that is not plain http(s)."""
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or "@" in parts.netloc:
        return None
    if any(c in parts.netloc for c in " ;,'\"\\"):
        return None
    return f"{parts.scheme}://{parts.netloc}"


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
