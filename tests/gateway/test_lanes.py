"""Signer lanes on a fresh chain: only signer 0's worker defines the badge catalogue."""

from __future__ import annotations

from pathlib import Path

from factories import devnet_settings, open_network
from sqlalchemy import func, select

from chain.devnet import Devnet, free_port
from gateway.context import GatewayContext
from gateway.models import ChainTx
from gateway.rules.badges import BADGES
from gateway.runtime.lanes import SignerLane, lane_senders


def outside_the_outbox(context: GatewayContext, lane: SignerLane) -> int:
    """Transactions ``lane``'s key sent that the outbox did not store (badge definitions)."""
    with context.sessions() as session:
        stored = session.scalar(
            select(func.count(ChainTx.id)).where(ChainTx.sender == lane.address)
        )
    return context.link.w3.eth.get_transaction_count(lane.address) - int(stored or 0)


def test_only_lane_zero_defines_the_badges_and_the_other_lanes_wait_for_them(
    tmp_path: Path,
) -> None:
    with Devnet(port=free_port(), log_file=tmp_path / "anvil.log") as node:
        context, _ = open_network(devnet_settings(tmp_path, node, signers=2))
        lanes = [
            SignerLane(context.link, context.engine, context.sessions, sender, index)
            for index, sender in lane_senders(context.link)
        ]
        assert [lane.index for lane in lanes] == [0, 1]
        first, second = lanes

        second.worker.run_once()  # recovers first: the catalogue is not on chain yet
        assert not second.worker.badges_defined()
        assert outside_the_outbox(context, second) == 0  # it defined nothing

        deploys = outside_the_outbox(context, first)  # signer 0 also deployed the contracts
        first.worker.run_once()
        badges = context.link.network.badges
        assert all(badges.badge_type(badge.id) for badge in BADGES)
        assert second.worker.badges_defined()
        second.worker.run_once()
        assert outside_the_outbox(context, second) == 0
        assert outside_the_outbox(context, first) == deploys + len(BADGES)
        context.engine.dispose()
