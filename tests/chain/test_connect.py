"""``chain.deploy.connect``: the chain id is checked once, not before every call."""

from __future__ import annotations

import pytest
from factories import AnvilNode

from chain.deploy import connect
from chain.errors import DeploymentError


def test_connect_refuses_a_node_on_another_chain(anvil: AnvilNode) -> None:
    settings = anvil.settings.model_copy(update={"chain_id": anvil.chain_id + 1})
    with pytest.raises(DeploymentError, match="settings say"):
        connect(settings)


def test_calls_after_connect_do_not_ask_for_the_chain_id_again(anvil: AnvilNode) -> None:
    w3 = connect(anvil.settings)
    methods: list[str] = []
    make_request = w3.provider.make_request

    def recording(method, params):  # type: ignore[no-untyped-def]
        methods.append(method)
        return make_request(method, params)

    w3.provider.make_request = recording  # type: ignore[method-assign]
    call = {"to": "0x" + "00" * 19 + "01", "data": "0x"}
    for _ in range(3):
        w3.eth.call(call)
        w3.eth.estimate_gas(call)
    assert methods == ["eth_call", "eth_estimateGas"] * 3
