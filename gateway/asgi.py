"""ASGI entry for ``uvicorn --workers N`` (the API role in several processes)."""

from __future__ import annotations

from gateway.app import create_app
from gateway.context import GatewayContext
from gateway.settings import get_settings

app = create_app(GatewayContext.open(get_settings()))
