"""``/v1/badges/{id}.json|.svg``: a badge type's ERC-1155 metadata and its image (public)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response

from gateway.api.deps import ContextDep
from gateway.api.errors import WALLET_ERRORS as ERRORS
from gateway.schemas import BadgeMetadataPublic
from gateway.services.badge_art import badge_svg
from gateway.services.badges import badge_metadata

router = APIRouter(prefix="/v1/badges", tags=["wallet"])

BadgeId = Annotated[int, Path(ge=0, le=2**64 - 1)]
#: The SVG may style itself and load nothing.
SVG_HEADERS = {"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'"}


@router.get("/{badge_id}.json", response_model=BadgeMetadataPublic, responses=ERRORS)
def get_badge_metadata(badge_id: BadgeId, context: ContextDep) -> BadgeMetadataPublic:
    """ERC-1155 metadata of a badge type (its on-chain ``uri``)."""
    return BadgeMetadataPublic.model_validate(badge_metadata(context, badge_id))


@router.get(
    "/{badge_id}.svg",
    response_class=Response,
    responses={200: {"content": {"image/svg+xml": {}}}, **ERRORS},
)
def get_badge_image(badge_id: BadgeId, context: ContextDep) -> Response:
    """The badge's image: the on-chain name over the catalogue's icon; soulbound is marked."""
    meta = badge_metadata(context, badge_id)
    svg = badge_svg(
        meta["name"],
        meta["properties"]["icon"],
        soulbound=meta["properties"]["soulbound"],
        description=meta["description"],
    )
    return Response(
        svg,
        media_type="image/svg+xml",
        headers={"Cache-Control": "public, max-age=300", **SVG_HEADERS},
    )
