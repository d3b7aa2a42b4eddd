"""The demo network ``make run`` brings up: three partners in three currencies.

Only on the devnet.  Partners and their API keys are kept in
``<data_dir>/demo-merchants.json`` (mode 0600) so a restart reuses them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

from gateway.context import GatewayContext
from gateway.db import transaction
from gateway.errors import InvalidRequest
from gateway.models import Merchant, Reward
from gateway.services.merchants import register

PARTNERS = (
    ("Lumière Paris", "EUR", [("Silk scarf voucher", 800), ("Free express shipping", 150)]),
    ("Sakura Goods Tokyo", "JPY", [("Matcha tasting set", 500), ("¥1,000 coupon", 300)]),
    ("Harbour Tea Hong Kong", "HKD", [("Oolong gift tin", 400), ("Tea ceremony class", 1200)]),
)


def ensure_demo(
    context: GatewayContext, progress: Callable[[str], None] | None = None
) -> list[dict[str, Any]]:
    """Register the demo partners once; return them with their API keys."""
    say = progress or (lambda _m: None)
    if not context.settings.is_devnet:
        raise InvalidRequest("the demo network runs on the devnet only")
    path = context.settings.data_path / "demo-merchants.json"
    if path.exists():
        partners: list[dict[str, Any]] = json.loads(path.read_text())
        with context.sessions() as session:
            if all(session.get(Merchant, p["id"]) is not None for p in partners):
                say("reusing the demo partners")
                return partners
    partners = []
    for name, currency, rewards in PARTNERS:
        say(f"admitting {name} ({currency}) through the timelock")
        created = register(context, name, currency)
        with transaction(context.sessions) as session:
            for title, cost in rewards:
                session.add(Reward(merchant_id=created.id, name=title, cost_points=cost))
        partners.append(
            {"id": created.id, "name": name, "currency": currency, "api_key": created.api_key}
        )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(partners, handle, indent=2, ensure_ascii=False)
    return partners
