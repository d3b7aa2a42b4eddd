"""Stateful property test: random network activity against a Python model.

Each hypothesis example runs in its own ``evm_snapshot`` (taken in the machine's
``__init__``, reverted in ``teardown``) on top of the test's snapshot; ``__init__``
checks that it starts from a clean state (no sunset, the session's badge types
unawarded, none of the machine's own badge types defined). The rules issue,
redeem, transfer (signed and direct) and claw back points (1 to 3 refunds per
batch), define badge types (soulbound or transferable, small max supplies),
award badges through the hub, have members move their badges, and, at most once
per example and only after some steps, sunset the network through the timelock.
The model predicts every outcome, down to the custom error of each revert. After
every step the chain must agree with the model:

- ``totalSupply == sum(model balances) == sum(issued - redeemed - clawedBack)``
  over the hub's per-merchant accounting, and every balance matches;
- per merchant, issued / redeemed / clawedBack equal the model's; a batch beyond
  the merchant's cap for the period reverts and mints nothing;
- a reused sequence number never mints (the batch reverts naming the first reused one);
- badges: every member's balance of every type equals the model's (0 or 1, so
  nobody holds two of a type), each type's minted count equals the model's, is at
  most its max supply and equals the sum of the members' balances; ``locked`` and
  ``soulbound`` match the type; a soulbound badge never moves
  (``BadgeCollectionSoulbound``), a transferable one moves unless the receiver
  holds one; awarding a held badge is skipped, beyond max supply reverts;
- sunset: ``sunsetActive`` matches the model; after it issuance and badge awards
  revert with ``LoyaltyNetworkSunset`` and mint nothing, while redemptions,
  transfers, clawbacks and badge transfers go on.

``POINTSNET_PROPERTY_STEPS`` / ``POINTSNET_PROPERTY_EXAMPLES`` lengthen the run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from contract_kit import (
    DAY,
    ECO_GUARDIAN,
    FIRST_ORDER,
    Member,
    admin,
    align_to_period_start,
    assert_error,
    call_revert,
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
from eth_utils import to_checksum_address
from factories import refund_ref
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from chain.decode import decode_logs, receipt_logs
from chain.merkle import IssuanceProof, IssuedChunk, find_issuance
from chain.records import BadgeAward
from chain.sender import TransactionSender

MERCHANTS = (1, 2)
#: Merchant 1's cap is small enough for random batches to hit it; merchant 2's is not.
CAPS = {1: 1_500, 2: 10**9}
MAX_MEMBERS = 8
#: Badge types of the session deployment (conftest.py): id -> (max supply, soulbound).
SESSION_BADGES = {FIRST_ORDER: (1000, True), ECO_GUARDIAN: (2, False)}
#: The machine defines its own badge types from this id on, at most MAX_BADGE_TYPES in all.
FIRST_NEW_BADGE = 100
MAX_BADGE_TYPES = 6
#: An id no example ever defines.
UNKNOWN_BADGE = 99_999
#: Sunset comes at most once per example, and only in its last quarter of steps (so most
#: of an example runs before it, and some examples never get there).
SUNSET_AFTER = max(5, property_steps() * 3 // 4)

# A member is picked by index; an index past the known members creates a new one.
member_index = st.integers(0, MAX_MEMBERS - 1)
amount = st.integers(1, 400)
#: A percentage of the member's balance to move; above 100 asks for too much.
share = st.integers(1, 110)
Expected = tuple[str, dict[str, Any]] | None
#: One refund of a clawback batch: (member index, percent of the member's balance asked,
#: pick of the original and refund sequence numbers, original issued or not, refund
#: sequence number fresh or used).
refund = st.tuples(
    member_index,
    st.integers(1, 150),
    st.integers(0, 10**6),
    st.sampled_from(["issued", "issued", "issued", "never issued"]),
    st.sampled_from(["fresh", "fresh", "fresh", "used"]),
)


class NetworkMachine(RuleBasedStateMachine):
    """Points, badges and a sunset at random; the model predicts every outcome."""

    net: ClassVar[Any]  # the Deployed of tests/contracts/conftest.py, set by the test
    checks: ClassVar[int] = 0  # states checked against the model (one per step, one per start)
    sunsets: ClassVar[int] = 0  # examples that sunset the network
    badge_moves: ClassVar[int] = 0  # badge transfers that moved a badge
    soulbound_refusals: ClassVar[int] = 0  # soulbound badge transfers refused

    def __init__(self) -> None:
        super().__init__()
        net = self.net
        self.snapshot = rpc(net, "evm_snapshot")
        # Isolation: nothing of an earlier example survives its evm_revert.
        assert net.hub.functions.sunsetActive().call() is False, "example starts after sunset"
        for badge_id in SESSION_BADGES:
            assert net.badges.badge_type(badge_id).minted == 0, f"badge {badge_id} awarded"
        assert_error(
            call_revert(net.badges.functions.badgeType(FIRST_NEW_BADGE)),
            "BadgeCollectionUnknownBadge",
            id=FIRST_NEW_BADGE,
        )
        align_to_period_start(net)
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
        self.badge_types: dict[int, tuple[int, bool]] = dict(SESSION_BADGES)
        self.badge_minted = dict.fromkeys(SESSION_BADGES, 0)
        self.badges_held: dict[str, set[int]] = {}
        self.sunset = False
        self.states = 0  # states checked in this example

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
        self.badges_held[who.address] = set()
        return who

    def own_sender(self, who: Member) -> TransactionSender:
        """A funded sender for ``who``'s own transactions (created once per example)."""
        if who.address not in self.own_senders:
            self.own_senders[who.address] = member_sender(self.net, who)
        return self.own_senders[who.address]

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
        if self.sunset:
            expected = ("LoyaltyNetworkSunset", {})
        elif reused:
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
        fn = net.token.transfer(to.address, points)
        send = self.own_sender(who)
        if self.expect(self.insufficient(who, points), lambda: send.transact(fn)):
            self.balances[who.address] -= points
            self.balances[to.address] += points

    @precondition(lambda self: self.members)
    @rule(
        merchant_id=st.sampled_from(MERCHANTS),
        refunds=st.lists(refund, min_size=1, max_size=3),
    )
    def clawback(self, merchant_id: int, refunds: list[tuple[int, int, int, str, str]]) -> None:
        """Refunds in one ``clawbackBatch``, applied in order: each burns up to the requested
        points (partial when the member spent them); the first bad one reverts the batch."""
        net = self.net
        used = sorted(self.used[merchant_id])
        balances = dict(self.balances)
        clawed_of = dict(self.clawed_of)
        next_fresh = self.next_free_seq(merchant_id)
        items = []
        applied: list[tuple[str, int, int, int]] = []  # (member, original seq, burned, seq)
        expected: Expected = None
        for index, percent, pick, original, refund_seq in refunds:
            who = self.members[index % len(self.members)]
            points = max(1, balances[who.address] * percent // 100)
            issued = original == "issued" and used
            original_seq = used[pick % len(used)] if issued else 100_000 + pick
            if refund_seq == "used" and used:
                seq = used[(pick // 7) % len(used)]
            else:
                seq, next_fresh = next_fresh, next_fresh + 1
            forged = not (
                original_seq in self.used[merchant_id] and original_seq not in self.refund_seqs
            )
            if forged:  # a claim on a number that issued nothing: a one-item chunk of its own
                chunk = IssuedChunk(original_seq, original_seq, (who.address,), (points,))
                proved = IssuanceProof(original_seq, chunk, [])
            else:
                proved = find_issuance(net.network, merchant_id, original_seq)
            items.append(proved.clawback_item(seq, refund_ref(seq), points))
            if expected is not None:
                continue  # the batch already reverts at an earlier item
            already = clawed_of.get((merchant_id, proved.seq), 0)
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
            else:
                burned = min(points, balances[proved.member])
                balances[proved.member] -= burned
                clawed_of[(merchant_id, proved.seq)] = already + burned
                applied.append((proved.member, proved.seq, burned, seq))
        fn = net.hub.clawback_batch(merchant_id, items)
        if self.expect(expected, lambda: net.operator.transact(fn)):
            for who_address, original_seq, burned, seq in applied:
                self.balances[who_address] -= burned
                self.clawed_back[merchant_id] += burned
                self.clawed_of[(merchant_id, original_seq)] = (
                    self.clawed_of.get((merchant_id, original_seq), 0) + burned
                )
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

    # -------------------------------------------------------------- badges

    @precondition(lambda self: len(self.badge_types) < MAX_BADGE_TYPES)
    @rule(soulbound=st.booleans(), max_supply=st.integers(0, 4), id_pick=st.integers(0, 31))
    def define_badge(self, soulbound: bool, max_supply: int, id_pick: int) -> None:
        """A new badge type (an existing id or a zero max supply is refused)."""
        net = self.net
        known = sorted(self.badge_types)
        if id_pick < 4:  # now and then, an id already defined
            badge_id = known[id_pick % len(known)]
        else:
            badge_id = max(FIRST_NEW_BADGE - 1, *known) + 1
        expected: Expected = None
        if badge_id in self.badge_types:
            expected = ("BadgeCollectionBadgeExists", {"id": badge_id})
        elif max_supply == 0:
            expected = ("BadgeCollectionZeroSupply", {"id": badge_id})
        fn = net.hub.define_badge(
            badge_id, f"Badge {badge_id}", f"ipfs://badge/{badge_id}", max_supply, soulbound
        )
        if self.expect(expected, lambda: net.operator.transact(fn)):
            self.badge_types[badge_id] = (max_supply, soulbound)
            self.badge_minted[badge_id] = 0

    def badge_of(self, pick: int) -> int:
        """A known badge type by ``pick``; 20 picks an id that was never defined."""
        if pick == 20:
            return UNKNOWN_BADGE
        known = sorted(self.badge_types)
        return known[pick % len(known)]

    @rule(
        merchant_id=st.sampled_from(MERCHANTS),
        items=st.lists(st.tuples(member_index, st.integers(0, 20)), min_size=1, max_size=4),
        by_merchant_signer=st.booleans(),
    )
    def award_badges(
        self, merchant_id: int, items: list[tuple[int, int]], by_merchant_signer: bool
    ) -> None:
        """Badges awarded through the hub: held ones skipped, beyond max supply reverts."""
        net = self.net
        members = [self.pick(i) for i, _ in items]
        badge_ids = [self.badge_of(p) for _, p in items]
        held = {m.address: set(self.badges_held[m.address]) for m in members}
        minted = dict(self.badge_minted)
        awarded: list[tuple[str, int]] = []
        expected: Expected = None
        if self.sunset:
            expected = ("LoyaltyNetworkSunset", {})
        for who, badge_id in zip(members, badge_ids, strict=True):
            if expected is not None:
                break
            if badge_id in held[who.address]:
                continue  # at most one per member: skipped, no revert
            if badge_id not in self.badge_types:
                expected = ("BadgeCollectionUnknownBadge", {"id": badge_id})
            elif minted[badge_id] >= self.badge_types[badge_id][0]:
                expected = (
                    "BadgeCollectionMaxSupplyReached",
                    {"id": badge_id, "maxSupply": self.badge_types[badge_id][0]},
                )
            else:
                minted[badge_id] += 1
                held[who.address].add(badge_id)
                awarded.append((who.address, badge_id))
        sender = net.merchant_signers[merchant_id] if by_merchant_signer else net.operator
        fn = net.hub.award_badges(merchant_id, [m.address for m in members], badge_ids)
        receipts: list[Any] = []
        if self.expect(expected, lambda: receipts.append(sender.transact(fn))):
            self.badge_minted = minted
            for address, badges in held.items():
                self.badges_held[address] = badges
            logged = [
                (to_checksum_address(r.member), r.badge_id)
                for r in decode_logs(net.network.emitters(), receipt_logs(receipts[0]))
                if isinstance(r, BadgeAward) and r.merchant == merchant_id
            ]
            assert logged == awarded, "decoded badge awards"

    @precondition(lambda self: self.members)
    @rule(
        index=member_index,
        to_index=member_index,
        pick=st.integers(0, 19),
        held_only=st.sampled_from([True, True, True, False]),
    )
    def transfer_badge(self, index: int, to_index: int, pick: int, held_only: bool) -> None:
        """A member moves a badge itself (safeTransferFrom): soulbound ones never move."""
        net = self.net
        who = self.members[index % len(self.members)]
        to = self.pick(to_index)
        mine = sorted(self.badges_held[who.address])
        badge_id = mine[pick % len(mine)] if held_only and mine else self.badge_of(pick)
        soulbound = self.badge_types[badge_id][1]
        expected: Expected = None
        if soulbound:
            expected = ("BadgeCollectionSoulbound", {"id": badge_id})
        elif badge_id in self.badges_held[to.address]:
            expected = ("BadgeCollectionAlreadyHeld", {"member": to.address, "id": badge_id})
        elif badge_id not in self.badges_held[who.address]:
            expected = (
                "ERC1155InsufficientBalance",
                {"sender": who.address, "balance": 0, "needed": 1, "tokenId": badge_id},
            )
        fn = net.badges.functions.safeTransferFrom(who.address, to.address, badge_id, 1, b"")
        send = self.own_sender(who)
        if self.expect(expected, lambda: send.transact(fn)):
            self.badges_held[who.address].remove(badge_id)
            self.badges_held[to.address].add(badge_id)
            type(self).badge_moves += 1
        elif soulbound and badge_id in self.badges_held[who.address]:
            type(self).soulbound_refusals += 1

    # -------------------------------------------------------------- sunset

    @precondition(lambda self: not self.sunset and self.states >= SUNSET_AFTER)
    @rule()
    def sunset_network(self) -> None:
        """The timelock sunsets the hub: no more minting, points keep working."""
        admin(self.net, self.net.hub.functions.sunset())
        self.sunset = True
        type(self).sunsets += 1

    # -------------------------------------------------------------- invariants

    @invariant()
    def chain_agrees_with_the_model(self) -> None:
        type(self).checks += 1
        self.states += 1
        net = self.net
        addresses = list(self.balances)
        badge_ids = sorted(self.badge_types)
        holdings = [(a, b) for a in addresses for b in badge_ids]
        reads = read_many(
            net,
            [
                net.token.functions.totalSupply(),
                net.hub.functions.sunsetActive(),
                *(net.hub.functions.merchant(m) for m in MERCHANTS),
                *(net.token.functions.balanceOf(a) for a in addresses),
                *(net.badges.functions.badgeType(b) for b in badge_ids),
                *(net.badges.functions.locked(b) for b in badge_ids),
                *(net.badges.functions.balanceOf(a, b) for a, b in holdings),
            ],
        )
        supply, sunset_active = reads[:2]
        rest = iter(reads[2:])
        merchants = {m: next(rest) for m in MERCHANTS}
        balances = {a: next(rest) for a in addresses}
        badge_types = {b: next(rest) for b in badge_ids}
        locked = {b: next(rest) for b in badge_ids}
        badge_balances = {h: next(rest) for h in holdings}

        assert sunset_active is self.sunset, "sunsetActive"

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

        # Badges: BadgeType is (maxSupply, minted, soulbound, exists, name, uri).
        expected_holdings = {(a, b): int(b in self.badges_held[a]) for a, b in holdings}
        assert badge_balances == expected_holdings, "badge balances"
        for badge_id in badge_ids:
            max_supply, minted, soulbound, exists = badge_types[badge_id][:4]
            assert exists is True
            assert (max_supply, soulbound) == self.badge_types[badge_id], f"badge {badge_id} type"
            assert locked[badge_id] is soulbound, f"badge {badge_id} locked"
            assert minted == self.badge_minted[badge_id], f"badge {badge_id} minted"
            assert minted <= max_supply, f"badge {badge_id} beyond max supply"
            held = sum(badge_balances[(a, badge_id)] for a in addresses)
            assert held == minted, f"badge {badge_id}: held {held}, minted {minted}"


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
    print(
        f"stateful run: {machine.checks} states checked against the model"
        f" ({machine.sunsets} sunsets, {machine.badge_moves} badges moved,"
        f" {machine.soulbound_refusals} soulbound transfers refused)"
    )
    record_property("states_checked", machine.checks)
    record_property("sunsets", machine.sunsets)
