"""Stateful property test: random network activity against a Python model.

Each hypothesis example runs in its own ``evm_snapshot`` (taken in the machine's
``__init__``, reverted in ``teardown``) on top of the test's snapshot. After every
step the chain must agree with the model:

- ``totalSupply == sum(model balances) == sum(issued - redeemed - clawedBack)``
  over the hub's per-merchant accounting, and every balance matches;
- per merchant, issued / redeemed / clawedBack equal the model's;
- a reused sequence number never mints (the batch reverts naming the first reused one).

``POINTSNET_PROPERTY_STEPS`` / ``POINTSNET_PROPERTY_EXAMPLES`` lengthen the run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from contract_kit import (
    DAY,
    Member,
    admin,
    align_to_period_start,
    increase_time,
    latest_timestamp,
    member,
    member_sender,
    property_examples,
    property_steps,
    read_many,
    redemption,
    ref,
    reverts,
    rpc,
    transfer_request,
)
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from chain.merkle import IssuanceProof, IssuedChunk, find_issuance
from chain.sender import TransactionSender

MERCHANTS = (1, 2)
#: Merchant 1's cap is small enough for random batches to hit it; merchant 2's is not.
CAPS = {1: 1_500, 2: 10**9}
MAX_MEMBERS = 8

# A member is picked by index; an index past the known members creates a new one.
member_index = st.integers(0, MAX_MEMBERS - 1)
amount = st.integers(1, 400)
#: A percentage of the member's balance to move; above 100 asks for too much.
share = st.integers(1, 110)
Expected = tuple[str, dict[str, Any]] | None


class NetworkMachine(RuleBasedStateMachine):
    """Issue, redeem, transfer and claw back at random; the model predicts every outcome."""

    net: ClassVar[Any]  # the Deployed of tests/contracts/conftest.py, set by the test
    checks: ClassVar[int] = 0  # states checked against the model (one per step, one per start)

    def __init__(self) -> None:
        super().__init__()
        self.snapshot = rpc(self.net, "evm_snapshot")
        align_to_period_start(self.net)
        self.members: list[Member] = []
        self.balances: dict[str, int] = {}
        self.own_senders: dict[str, TransactionSender] = {}
        self.issued = dict.fromkeys(MERCHANTS, 0)
        self.redeemed = dict.fromkeys(MERCHANTS, 0)
        self.clawed_back = dict.fromkeys(MERCHANTS, 0)
        self.clawed_of: dict[tuple[int, int], int] = {}
        self.refund_seqs: set[int] = set()
        self.minted_in_period = dict.fromkeys(MERCHANTS, 0)
        self.used: dict[int, set[int]] = {m: set() for m in MERCHANTS}
        self.nonces: dict[str, int] = {}
        self.last_consent: tuple[str, dict[str, Any], bytes] | None = None

    def teardown(self) -> None:
        reverted = rpc(self.net, "evm_revert", [self.snapshot])
        assert reverted is True, "evm_revert failed: the next example would inherit this one"
        for sender in self.net.senders():
            sender.reconcile_nonce()

    # -------------------------------------------------------------- model helpers

    def pick(self, index: int) -> Member:
        """The member at ``index``, or a new one when ``index`` is past the known members."""
        if index < len(self.members):
            return self.members[index]
        who = member()
        self.members.append(who)
        self.balances[who.address] = 0
        self.nonces[who.address] = 0
        return who

    def next_free_seq(self, merchant_id: int, gap: int = 0) -> int:
        used = self.used[merchant_id]
        return (max(used) + 1 if used else 0) + gap

    def expect(self, expected: Expected, send: Callable[[], object]) -> bool:
        """Send; True if it succeeded as predicted, False if it reverted as predicted."""
        if expected is None:
            send()
            return True
        name, args = expected
        with reverts(name, **args):
            send()
        return False

    # -------------------------------------------------------------- rules

    @rule(
        merchant_id=st.sampled_from(MERCHANTS),
        items=st.lists(st.tuples(member_index, amount), min_size=1, max_size=6),
        placement=st.sampled_from(["fresh", "overlapping", "anywhere"]),
        seq=st.integers(0, 600),
    )
    def issue(
        self, merchant_id: int, items: list[tuple[int, int]], placement: str, seq: int
    ) -> None:
        """A batch at a fresh range (after a random gap), one overlapping used numbers, or any."""
        net = self.net
        used = sorted(self.used[merchant_id])
        if placement == "overlapping" and used:
            first = max(0, used[seq % len(used)] - seq % 4)
        elif placement == "anywhere":
            first = seq
        else:
            first = self.next_free_seq(merchant_id, gap=seq % 300)
        members = [self.pick(i) for i, _ in items]
        amounts = [a for _, a in items]
        seqs = set(range(first, first + len(items)))
        reused = seqs & self.used[merchant_id]
        period_total = self.minted_in_period[merchant_id] + sum(amounts)
        expected: Expected = None
        if reused:
            expected = (
                "LoyaltyNetworkSequenceUsed",
                {"merchantId": merchant_id, "seq": min(reused)},
            )
        elif period_total > CAPS[merchant_id]:
            expected = (
                "LoyaltyNetworkMintCapExceeded",
                {"merchantId": merchant_id, "cap": CAPS[merchant_id], "requested": period_total},
            )
        refs = [ref(s) for s in range(first, first + len(items))]
        fn = net.hub.issue_batch(merchant_id, 1, first, refs, [m.address for m in members], amounts)
        if self.expect(expected, lambda: net.operator.transact(fn)):
            for who, points in zip(members, amounts, strict=True):
                self.balances[who.address] += points
            self.issued[merchant_id] += sum(amounts)
            self.minted_in_period[merchant_id] = period_total
            self.used[merchant_id] |= seqs
        # Nothing minted on a revert (the invariants check balances); the bitmap agrees
        # with the model at both ends of the range either way.
        for end in (first, first + len(items) - 1):
            assert net.hub.is_sequence_used(merchant_id, end) is (end in self.used[merchant_id])

    def amount_of(self, who: Member, percent: int) -> int:
        """``percent`` of the member's modelled balance (at least 1; above 100: too much)."""
        return max(1, self.balances[who.address] * percent // 100)

    def insufficient(self, who: Member, points: int) -> Expected:
        balance = self.balances[who.address]
        if points <= balance:
            return None
        return (
            "ERC20InsufficientBalance",
            {"sender": who.address, "balance": balance, "needed": points},
        )

    @precondition(lambda self: self.members)
    @rule(
        index=member_index,
        merchant_id=st.sampled_from(MERCHANTS),
        percent=share,
        by_merchant_signer=st.booleans(),
    )
    def redeem(self, index: int, merchant_id: int, percent: int, by_merchant_signer: bool) -> None:
        """A signed redemption, submitted by the operator or the merchant's own signer."""
        net = self.net
        who = self.members[index % len(self.members)]
        points = self.amount_of(who, percent)
        message, signature = redemption(
            net, who, merchant_id, points, nonce=self.nonces[who.address]
        )
        sender = net.merchant_signers[merchant_id] if by_merchant_signer else net.operator
        fn = net.hub.redeem(message, signature)
        if self.expect(self.insufficient(who, points), lambda: sender.transact(fn)):
            self.balances[who.address] -= points
            self.redeemed[merchant_id] += points
            self.nonces[who.address] += 1
            self.last_consent = ("redeem", message, signature)

    @precondition(lambda self: self.members)
    @rule(index=member_index, to_index=member_index, percent=share)
    def transfer_signed(self, index: int, to_index: int, percent: int) -> None:
        """A gasless transfer the member signed, relayed by someone without any role."""
        net = self.net
        who = self.members[index % len(self.members)]
        to = self.pick(to_index)
        points = self.amount_of(who, percent)
        message, signature = transfer_request(
            net, who, to.address, points, nonce=self.nonces[who.address]
        )
        fn = net.hub.transfer_with_signature(message, signature)
        expected = self.insufficient(who, points)
        if self.expect(expected, lambda: net.outsider.transact(fn)):
            self.balances[who.address] -= points
            self.balances[to.address] += points
            self.nonces[who.address] += 1
            self.last_consent = ("transfer", message, signature)

    @precondition(lambda self: self.members)
    @rule(index=member_index, to_index=member_index, percent=share)
    def transfer_direct(self, index: int, to_index: int, percent: int) -> None:
        """A plain ERC-20 transfer the member sends (and pays gas for) itself."""
        net = self.net
        who = self.members[index % len(self.members)]
        to = self.pick(to_index)
        points = self.amount_of(who, percent)
        if who.address not in self.own_senders:
            self.own_senders[who.address] = member_sender(net, who)
        fn = net.token.transfer(to.address, points)
        send = self.own_senders[who.address]
        if self.expect(self.insufficient(who, points), lambda: send.transact(fn)):
            self.balances[who.address] -= points
            self.balances[to.address] += points

    @precondition(lambda self: self.members)
    @rule(
        merchant_id=st.sampled_from(MERCHANTS),
        index=member_index,
        percent=st.integers(1, 150),
        pick=st.integers(0, 10**6),
        original=st.sampled_from(["issued", "issued", "issued", "never issued"]),
        refund_seq=st.sampled_from(["fresh", "fresh", "fresh", "used"]),
    )
    def clawback(
        self,
        merchant_id: int,
        index: int,
        percent: int,
        pick: int,
        original: str,
        refund_seq: str,
    ) -> None:
        """A refund: burns up to the requested points (partial when the member spent them)."""
        net = self.net
        who = self.members[index % len(self.members)]
        points = self.amount_of(who, percent)
        used = sorted(self.used[merchant_id])
        original_seq = used[pick % len(used)] if original == "issued" and used else 100_000 + pick
        seq = (
            used[(pick // 7) % len(used)]
            if refund_seq == "used" and used
            else self.next_free_seq(merchant_id)
        )
        forged = not (
            original_seq in self.used[merchant_id] and original_seq not in self.refund_seqs
        )
        if forged:  # a claim on a number that issued nothing: a one-item chunk of its own
            chunk = IssuedChunk(original_seq, original_seq, (who.address,), (points,))
            proved = IssuanceProof(original_seq, chunk, [])
        else:
            proved = find_issuance(net.network, merchant_id, original_seq)
        already = self.clawed_of.get((merchant_id, proved.seq), 0)
        expected: Expected = None
        if forged:
            expected = (
                "LoyaltyNetworkUnknownIssuance",
                {"merchantId": merchant_id, "originalSeq": original_seq},
            )
        elif already + points > proved.amount:
            expected = (
                "LoyaltyNetworkClawbackExceedsIssued",
                {
                    "merchantId": merchant_id,
                    "originalSeq": proved.seq,
                    "issued": proved.amount,
                    "requested": already + points,
                },
            )
        elif seq in self.used[merchant_id]:
            expected = ("LoyaltyNetworkSequenceUsed", {"merchantId": merchant_id, "seq": seq})
        fn = net.hub.clawback(merchant_id, seq, *proved.clawback_args(), points)
        if self.expect(expected, lambda: net.operator.transact(fn)):
            burned = min(points, self.balances[proved.member])
            self.balances[proved.member] -= burned
            self.clawed_back[merchant_id] += burned
            self.clawed_of[(merchant_id, proved.seq)] = already + burned
            self.used[merchant_id].add(seq)
            self.refund_seqs.add(seq)

    def issued_seqs(self, merchant_id: int) -> set[int]:
        """Sequence numbers that issued points (not those used by refunds)."""
        return self.used[merchant_id] - self.refund_seqs

    @precondition(lambda self: self.last_consent is not None)
    @rule()
    def replay_last_signature(self) -> None:
        """A member's signature is good for one action only."""
        net = self.net
        assert self.last_consent is not None
        kind, message, signature = self.last_consent
        signer = message["member"] if kind == "redeem" else message["from"]
        fn = (
            net.hub.redeem(message, signature)
            if kind == "redeem"
            else net.hub.transfer_with_signature(message, signature)
        )
        if latest_timestamp(net.w3) > message["deadline"]:  # a cap period went by since
            expected: tuple[str, dict[str, Any]] = (
                "LoyaltyNetworkSignatureExpired",
                {"deadline": message["deadline"]},
            )
        else:
            expected = (
                "LoyaltyNetworkInvalidNonce",
                {"member": signer, "expected": self.nonces[signer], "actual": message["nonce"]},
            )
        self.expect(expected, lambda: net.operator.transact(fn))

    @precondition(lambda self: any(self.minted_in_period.values()))
    @rule()
    def start_next_cap_period(self) -> None:
        increase_time(self.net, DAY)
        self.minted_in_period = dict.fromkeys(MERCHANTS, 0)

    # -------------------------------------------------------------- invariants

    @invariant()
    def chain_agrees_with_the_model(self) -> None:
        type(self).checks += 1
        net = self.net
        addresses = list(self.balances)
        supply, *rest = read_many(
            net,
            [
                net.token.functions.totalSupply(),
                *(net.hub.functions.merchant(m) for m in MERCHANTS),
                *(net.token.functions.balanceOf(a) for a in addresses),
            ],
        )
        merchants = dict(zip(MERCHANTS, rest[: len(MERCHANTS)], strict=True))
        balances = dict(zip(addresses, rest[len(MERCHANTS) :], strict=True))

        assert supply == sum(self.balances.values())
        # Merchant struct: ..., issued, redeemed, clawedBack are the last three fields.
        accounting = {m: tuple(raw[-3:]) for m, raw in merchants.items()}
        assert supply == sum(
            issued - redeemed - clawed for issued, redeemed, clawed in (accounting.values())
        )
        for merchant_id in MERCHANTS:
            assert accounting[merchant_id] == (
                self.issued[merchant_id],
                self.redeemed[merchant_id],
                self.clawed_back[merchant_id],
            ), f"merchant {merchant_id} accounting"
        assert balances == self.balances


def test_network_accounting_matches_the_model_under_random_activity(net, record_property):
    for merchant_id, cap in CAPS.items():
        admin(net, net.hub.functions.setMerchantCap(merchant_id, cap))
    machine = type("Machine", (NetworkMachine,), {"net": net})
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=property_examples(),
            stateful_step_count=property_steps(),
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
    # How long the run really was (hypothesis may end an example before its last step).
    print(f"stateful run: {machine.checks} states checked against the model")
    record_property("states_checked", machine.checks)
