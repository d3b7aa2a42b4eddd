"""ASGI entry for ``uvicorn --workers N`` (the API role in several processes)."""

from __future__ import annotations

from chain.config import get_settings
from gateway.app import create_app
from gateway.context import GatewayContext

app = create_app(GatewayContext.open(get_settings()))
