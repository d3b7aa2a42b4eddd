"""EIP-712 messages members sign: redemptions and transfers.

The domain binds the chain id and the hub's address, and every message carries
the member's nonce and a deadline, so a signature is good for one action on one
contract on one chain before one time.  The wallet page builds the same typed
data in the browser (see ``wallet/``); this module is the Python side, used for
custodial members, tests and benchmarks.
"""

from __future__ import annotations

from typing import Any

from eth_account import Account
from eth_account.messages import encode_typed_data

DOMAIN_NAME = "LoyaltyNetwork"
DOMAIN_VERSION = "1"

REDEMPTION_TYPES = {
    "Redemption": [
        {"name": "member", "type": "address"},
        {"name": "merchantId", "type": "uint32"},
        {"name": "amount", "type": "uint256"},
        {"name": "ref", "type": "bytes32"},
        {"name": "nonce", "type": "uint256"},
        {"name": "deadline", "type": "uint256"},
    ]
}

TRANSFER_TYPES = {
    "TransferRequest": [
        {"name": "from", "type": "address"},
        {"name": "to", "type": "address"},
        {"name": "amount", "type": "uint256"},
        {"name": "nonce", "type": "uint256"},
        {"name": "deadline", "type": "uint256"},
    ]
}


def domain(chain_id: int, hub_address: str) -> dict[str, Any]:
    """The hub's EIP-712 domain."""
    return {
        "name": DOMAIN_NAME,
        "version": DOMAIN_VERSION,
        "chainId": chain_id,
        "verifyingContract": hub_address,
    }


def typed_data(
    kind: str, chain_id: int, hub_address: str, message: dict[str, Any]
) -> dict[str, Any]:
    """Full EIP-712 typed data (``kind`` is "Redemption" or "TransferRequest")."""
    types = REDEMPTION_TYPES if kind == "Redemption" else TRANSFER_TYPES
    return {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            **types,
        },
        "primaryType": kind,
        "domain": domain(chain_id, hub_address),
        "message": message,
    }


def sign(
    private_key: str, kind: str, chain_id: int, hub_address: str, message: dict[str, Any]
) -> bytes:
    """Sign ``message`` of type ``kind`` for the hub at ``hub_address`` on ``chain_id``."""
    signable = encode_typed_data(full_message=typed_data(kind, chain_id, hub_address, message))
    return bytes(Account.sign_message(signable, private_key).signature)


def recover(
    signature: bytes, kind: str, chain_id: int, hub_address: str, message: dict[str, Any]
) -> str:
    """The address that signed ``message`` (to check a member's consent before relaying)."""
    signable = encode_typed_data(full_message=typed_data(kind, chain_id, hub_address, message))
    return str(Account.recover_message(signable, signature=signature))
