"""``/wallet/``: the member wallet's static page (``wallet/``), with ethers served from
the pinned npm package, never from a CDN."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, RedirectResponse

from gateway.api.pages import PAGE_HEADERS, PageFiles
from gateway.errors import NotFound

PROJECT_ROOT = Path(__file__).resolve().parents[3]
WALLET_DIR = PROJECT_ROOT / "wallet"
ETHERS_BUNDLE = PROJECT_ROOT / "node_modules" / "ethers" / "dist" / "ethers.min.js"

router = APIRouter(include_in_schema=False)


class WalletFiles(PageFiles):
    """``wallet/`` as static files with the page's security headers; no Python files."""

    hidden = (".py", ".pyc", ".typed")


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
