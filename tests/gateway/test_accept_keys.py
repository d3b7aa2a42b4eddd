"""Derived custodial keys: the same address after a restore, never stored, older keys kept."""

from __future__ import annotations

import hashlib
import uuid

from eth_account import Account
from gateway_kit import Gateway, purchase
from sqlalchemy import select

from gateway.crypto import SecretBox
from gateway.models import DERIVED_KEY, Member
from gateway.services.members import custodial_key, derived_address, get_link


def test_the_key_depends_on_the_secret_the_merchant_and_the_customer_only() -> None:
    secret = hashlib.sha256(b"a gateway secret").digest()
    box, restored = SecretBox(secret), SecretBox(secret)
    key = box.custodial_key(1, "cust-1")
    assert restored.custodial_key(1, "cust-1") == key  # a restore derives the same key
    assert len(key) == 32
    others = {
        box.custodial_key(2, "cust-1"),
        box.custodial_key(1, "cust-2"),
        box.custodial_key(11, "-cust-1"),  # no ambiguity between the fields
        SecretBox(hashlib.sha256(b"another secret").digest()).custodial_key(1, "cust-1"),
    }
    assert key not in others and len(others) == 4
    assert Account.from_key(key).address == derived_address(box, 1, "cust-1")


def test_a_new_customer_gets_the_derived_address_and_no_stored_key(gateway: Gateway) -> None:
    customer = f"keys-{uuid.uuid4().hex[:8]}"
    merchant = gateway.merchants[0].id
    response = gateway.client.post(
        "/v1/events", json=purchase(customer, "K-1"), headers=gateway.headers()
    )
    assert response.status_code == 202, response.text
    answer = response.json()
    box = gateway.context.box
    assert answer["member_address"] == derived_address(box, merchant, customer)
    with gateway.context.sessions() as session:
        member = session.get(Member, get_link(session, merchant, customer).member_id)
        assert member is not None
        assert member.key_enc == DERIVED_KEY  # nothing stored: the key is derived
        assert (member.key_merchant_id, member.key_customer_id) == (merchant, customer)
        key = custodial_key(box, member)
        assert Account.from_key(key).address == member.address
    assert key[2:].lower() not in response.text.lower()  # the key never leaves the server


def test_members_with_stored_keys_keep_them(gateway: Gateway) -> None:
    box = gateway.context.box
    account = Account.create()
    with gateway.context.sessions() as session, session.begin():
        session.add(Member(address=account.address, custodial=True,
                           key_enc=box.encrypt(bytes(account.key))))  # fmt: skip
    with gateway.context.sessions() as session:
        member = session.scalars(select(Member).where(Member.address == account.address)).one()
        assert custodial_key(box, member) == "0x" + bytes(account.key).hex()
