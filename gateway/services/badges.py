"""Badge metadata (ERC-1155 ``uri``): the on-chain badge type with the catalogue's text."""

from __future__ import annotations

from typing import Any

from web3.exceptions import ContractLogicError

from gateway.context import GatewayContext
from gateway.errors import NotFound
from gateway.rules.badges import BADGES_BY_ID


def badge_metadata(ctx: GatewayContext, badge_id: int) -> dict[str, Any]:
    """ERC-1155 metadata of a badge type: the on-chain name, the catalogue's text."""
    if not 0 <= badge_id < 2**256:
        raise NotFound(f"no badge {badge_id}", badge_id=badge_id)
    try:
        onchain = ctx.link.network.badges.badge_type(badge_id)
    except ContractLogicError as exc:
        raise NotFound(f"no badge {badge_id} is defined on chain", badge_id=badge_id) from exc
    entry = BADGES_BY_ID.get(badge_id)
    return {
        "name": onchain.name,
        "description": entry.description if entry else "",
        "image": f"{ctx.settings.base_url.rstrip('/')}/v1/badges/{badge_id}.svg",
        "properties": {
            "key": entry.key if entry else None,
            "icon": entry.icon if entry else "star",
            "soulbound": onchain.soulbound,
            "max_supply": str(onchain.max_supply),
            "minted": str(onchain.minted),
        },
    }
