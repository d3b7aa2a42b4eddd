"""The deployed contracts keep clear of the EVM's code size limits (committed artifacts).

EIP-170 caps a contract's runtime code at 24,576 bytes and EIP-3860 a creation's
initcode at 49,152; a deployment that crosses either simply fails. These tests fail
well before that (2 KiB and 4 KiB short), while there is still room to split the hub
as docs/ARCHITECTURE.md plans ("When the hub outgrows EIP-170").
"""

from __future__ import annotations

import pytest

from chain.artifacts import (
    DEPLOYED_CONTRACTS,
    MAX_INITCODE_BYTES,
    MAX_RUNTIME_BYTES,
    code_sizes,
)

#: Fail this close to EIP-170's runtime limit.
RUNTIME_MARGIN = 2 * 1024
#: Fail this close to EIP-3860's initcode limit.
INITCODE_MARGIN = 4 * 1024
SPLIT_PLAN = (
    "split the hub before it reaches the limit: docs/ARCHITECTURE.md, "
    '"When the hub outgrows EIP-170" (cold paths to modules, the hot path stays)'
)

SIZES = {size.name: size for size in code_sizes()}


def test_every_deployed_contract_is_measured():
    assert set(SIZES) == set(DEPLOYED_CONTRACTS)
    assert all(size.runtime > 0 and size.initcode > size.runtime for size in SIZES.values())


@pytest.mark.parametrize("name", DEPLOYED_CONTRACTS)
def test_runtime_code_stays_2_kib_under_eip_170(name):
    size = SIZES[name]

    assert size.runtime <= MAX_RUNTIME_BYTES - RUNTIME_MARGIN, (
        f"{name}'s runtime code is {size.runtime:,} B ({size.runtime_share:.0%} of EIP-170's "
        f"{MAX_RUNTIME_BYTES:,}): {SPLIT_PLAN}"
    )


@pytest.mark.parametrize("name", DEPLOYED_CONTRACTS)
def test_initcode_stays_4_kib_under_eip_3860(name):
    size = SIZES[name]

    assert size.initcode <= MAX_INITCODE_BYTES - INITCODE_MARGIN, (
        f"{name}'s initcode is {size.initcode:,} B ({size.initcode_share:.0%} of EIP-3860's "
        f"{MAX_INITCODE_BYTES:,}; the hub's embeds the token's and the badges'): {SPLIT_PLAN}"
    )


def test_the_hub_creates_the_token_and_the_badges_from_its_own_initcode():
    hub = SIZES["LoyaltyNetwork"]

    embedded = SIZES["PointsToken"].initcode + SIZES["BadgeCollection"].initcode
    assert hub.initcode > hub.runtime + embedded
