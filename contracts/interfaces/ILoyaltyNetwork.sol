// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/**
 * @dev Types, events and errors of {LoyaltyNetwork}, the hub of the points network.
 *
 * Settlement is computable from these events alone: every issuance, redemption
 * and clawback names its merchant, so `issued - redeemed - clawedBack` per
 * merchant at the published point value is that partner's net position.
 */
interface ILoyaltyNetwork {
    /// @dev Lifecycle of a merchant in the registry.
    enum MerchantStatus {
        None,
        Active,
        Suspended
    }

    /**
     * @dev What an issuance batch mints for. `Rule`: points the merchant's published rule set
     * computes from events (the batch names the version in effect). The others name no rule
     * version (0): `Adjustment` (a correction the operator makes by hand), `Payout` (a
     * programme's payout outside the rules), `Prize` (a game or draw). Only `Rule` is issued
     * today; the others are accepted so that they need no new deployment.
     */
    enum MintKind {
        Rule,
        Adjustment,
        Payout,
        Prize
    }

    /// @dev A partner merchant. Amounts are in points (0 decimals).
    struct Merchant {
        address signer; // may call issuance functions for this merchant itself
        MerchantStatus status;
        uint64 capPerPeriod; // most points mintable per cap period
        uint64 period; // index of the cap period `mintedInPeriod` counts
        uint64 mintedInPeriod;
        uint64 ruleVersion; // latest published rule-set version (0: none yet)
        uint64 ruleEffectiveAt; // unix time version `ruleVersion` takes effect (earlier ones are in effect)
        bytes32 ruleSetHash; // hash of the latest published rule set (maybe not in effect yet)
        uint128 issued;
        uint128 redeemed;
        uint128 clawedBack;
    }

    /**
     * @dev What an issuance batch states besides its events (see {LoyaltyNetwork-issueBatch}):
     * the merchant, the rule-set version that computed it (0 for a kind other than `Rule`), its
     * {MintKind}, the root of its events' inputs, and the sequence number of its first event.
     * One static struct (encoded inline, as separate arguments would be) keeps the function's
     * stack shallow; this field order gives `issueBatch` a selector the dispatcher reaches early.
     */
    struct BatchHeader {
        uint32 merchantId;
        uint64 ruleVersion;
        uint8 kind;
        bytes32 inputRoot;
        uint64 firstSeq;
    }

    /// @dev A member's consent to burn `amount` points at `merchantId` for reward `ref`.
    struct Redemption {
        address member;
        uint32 merchantId;
        uint256 amount;
        bytes32 ref;
        uint256 nonce;
        uint256 deadline;
    }

    /// @dev One chunk of an issuance batch, as a clawback proves it (see `batchRoot`): the items
    /// with sequence numbers `firstSeq .. firstSeq + items.length - 1` of the batch starting at
    /// `batchFirstSeq`, packed as `issueBatch` takes them (member in the high 160 bits, amount
    /// in the low 96).
    struct IssuedChunk {
        uint64 batchFirstSeq;
        uint64 firstSeq;
        uint256[] items;
    }

    /// @dev One refund of a `clawbackBatch`: refund event `seq` (reference `eventRef`) claws back
    /// up to `amount` of the points that the issuance with sequence number `originalSeq` gave its
    /// member, proved by `chunk` (the chunk of its batch that holds it) and the chunk's Merkle
    /// `proof`.
    struct Clawback {
        uint64 seq;
        uint64 originalSeq;
        bytes32 eventRef;
        IssuedChunk chunk;
        bytes32[] proof;
        uint256 amount;
    }

    /// @dev A member's consent to move `amount` points to `to`.
    struct TransferRequest {
        address from;
        address to;
        uint256 amount;
        uint256 nonce;
        uint256 deadline;
    }

    // ------------------------------------------------------------------ events

    /// @dev Emitted when a merchant is admitted to the network.
    event MerchantAdded(uint32 indexed merchantId, address signer, uint64 capPerPeriod, string name);

    /// @dev Emitted when a merchant's status changes (suspended or reinstated).
    event MerchantStatusChanged(uint32 indexed merchantId, MerchantStatus status);

    /// @dev Emitted when a merchant's mint cap per period changes.
    event MerchantCapChanged(uint32 indexed merchantId, uint64 capPerPeriod);

    /// @dev Emitted when a merchant's signer address is replaced.
    event MerchantSignerChanged(uint32 indexed merchantId, address signer);

    /**
     * @dev Emitted when a merchant publishes rule-set `version`: `ruleSet` is the full canonical
     * JSON text, whose keccak-256 is `ruleSetHash`. The version takes effect at `effectiveAt`
     * (the publication's block time for a merchant's first version, that plus the network's
     * rule notice for later ones) and stays in effect until the next version's `effectiveAt`.
     */
    event RuleSetPublished(
        uint32 indexed merchantId, uint64 indexed version, bytes32 ruleSetHash, uint64 effectiveAt, bytes ruleSet
    );

    /**
     * @dev Emitted once per issuance batch. The i-th event of the batch has sequence number
     * `firstSeq + i`, reference `eventRefs[i]` (the gateway's hash of the merchant's
     * idempotency key, so a gateway can recover its state from the chain alone), and is the
     * i-th `Transfer(0, member, amount)` the token emitted in the same transaction. `kind` is
     * a {MintKind}; `inputRoot` commits to the events' disclosed inputs (a Merkle root over
     * `keccak256(0x00 ++ eventRefs[i] ++ inputHash[i])` in batch order, pairs hashed
     * commutatively, an odd last node carried up), which the hub neither stores nor checks.
     */
    event PointsIssued(
        uint32 indexed merchantId,
        uint64 indexed ruleVersion,
        uint64 firstSeq,
        bytes32[] eventRefs,
        uint256 total,
        uint8 kind,
        bytes32 inputRoot
    );

    /// @dev Emitted when `member` redeems `amount` points at `merchantId` for reward `ref`.
    event PointsRedeemed(uint32 indexed merchantId, address indexed member, uint256 amount, bytes32 ref, uint256 nonce);

    /**
     * @dev Emitted when a refund (event `seq`, reference `eventRef`: the gateway's hash of the
     * merchant's idempotency key, so a gateway can recover its state from the chain alone) claws
     * back points issued by event `originalSeq`. `burned` may be less than `requested` when the
     * member already spent the points.
     */
    event PointsClawedBack(
        uint32 indexed merchantId,
        address indexed member,
        uint64 seq,
        uint64 originalSeq,
        bytes32 eventRef,
        uint256 requested,
        uint256 burned
    );

    /// @dev Emitted when points move between members through a signed (gasless) transfer.
    event PointsTransferred(address indexed from, address indexed to, uint256 amount, uint256 nonce);

    /**
     * @dev Emitted once per `clawbackBatch`, after its `count` {PointsClawedBack} logs: `inputRoot`
     * commits to their disclosed inputs, leaves in item order (as {PointsIssued}'s `inputRoot`,
     * each leaf over the item's `eventRef`).
     */
    event ClawbackInputsCommitted(uint32 indexed merchantId, uint256 count, bytes32 inputRoot);

    /// @dev Emitted when a member's tier changes (0 Bronze .. 4 Black).
    event TierChanged(address indexed member, uint8 oldTier, uint8 newTier);

    /**
     * @dev Emitted once per `awardBadges` call that awarded anything: merchant `merchantId`
     * awarded the `count` badges of the last `count` `TransferSingle(hub, 0, member, id, 1)`
     * mints the badge collection emitted before this log in the same transaction (one per
     * award, in order). One event per batch instead of one per award keeps a batched award
     * near the cost of its mint.
     */
    event BadgesAwarded(uint32 indexed merchantId, uint256 count);

    /// @dev Emitted when the published face value of one point changes.
    event PointValueChanged(uint256 microUnits, string currency);

    /// @dev Emitted when member-to-member transfers are allowed or forbidden.
    event TransferPolicyChanged(bool allowed);

    /// @dev Emitted when the length of a mint-cap period changes.
    event CapPeriodChanged(uint64 secondsPerPeriod);

    /// @dev Emitted when the notice a new rule-set version waits before taking effect changes.
    event RuleNoticeChanged(uint64 noticeSeconds);

    /// @dev Emitted when the network enters sunset: no more minting, balances stay usable.
    event Sunset(uint256 timestamp);

    // ------------------------------------------------------------------ errors

    /// @dev `caller` may not act for merchant `merchantId`.
    error LoyaltyNetworkUnauthorizedIssuer(address caller, uint32 merchantId);

    /// @dev Merchant `merchantId` does not exist.
    error LoyaltyNetworkUnknownMerchant(uint32 merchantId);

    /// @dev Merchant `merchantId` is not active (`status`).
    error LoyaltyNetworkMerchantNotActive(uint32 merchantId, MerchantStatus status);

    /// @dev Issuing `requested` points would exceed merchant `merchantId`'s `cap` for the current period.
    error LoyaltyNetworkMintCapExceeded(uint32 merchantId, uint64 cap, uint256 requested);

    /// @dev Sequence number `seq` of merchant `merchantId` was already used.
    error LoyaltyNetworkSequenceUsed(uint32 merchantId, uint64 seq);

    /// @dev A clawback names issuance `originalSeq` with a chunk that its batch never issued or that does not hold it.
    error LoyaltyNetworkUnknownIssuance(uint32 merchantId, uint64 originalSeq);

    /// @dev Clawing back would take `requested` in total from issuance `originalSeq`, which issued `issued`.
    error LoyaltyNetworkClawbackExceedsIssued(uint32 merchantId, uint64 originalSeq, uint256 issued, uint256 requested);

    /// @dev A batch of `count` items starting at `firstSeq` runs past the largest sequence number.
    error LoyaltyNetworkSequenceOutOfRange(uint64 firstSeq, uint256 count);

    /// @dev Batch arrays have different lengths.
    error LoyaltyNetworkLengthMismatch(uint256 expected, uint256 actual);

    /// @dev An empty batch or a zero amount.
    error LoyaltyNetworkZeroAmount();

    /// @dev `ruleVersion` was never published by merchant `merchantId`.
    error LoyaltyNetworkUnknownRuleVersion(uint32 merchantId, uint64 ruleVersion);

    /// @dev Rule-set `ruleVersion` of merchant `merchantId` only takes effect at `effectiveAt`.
    error LoyaltyNetworkRuleVersionNotInEffect(uint32 merchantId, uint64 ruleVersion, uint64 effectiveAt);

    /// @dev Merchant `merchantId`'s version `pendingVersion` waits for `effectiveAt`: no newer one before it.
    error LoyaltyNetworkRuleChangePending(uint32 merchantId, uint64 pendingVersion, uint64 effectiveAt);

    /// @dev The rule set published hashes to `actual`, not to the `expected` hash given with it.
    error LoyaltyNetworkRuleSetHashMismatch(bytes32 expected, bytes32 actual);

    /// @dev A rule set of `size` bytes: it must hold between 1 and `max`.
    error LoyaltyNetworkRuleSetSize(uint256 size, uint256 max);

    /// @dev A rule notice of `noticeSeconds` exceeds the longest allowed, `max`.
    error LoyaltyNetworkRuleNoticeTooLong(uint64 noticeSeconds, uint64 max);

    /// @dev `kind` is not a {MintKind}.
    error LoyaltyNetworkUnknownMintKind(uint8 kind);

    /// @dev A batch of mint `kind` (not `Rule`) names rule version `ruleVersion`; it must name 0.
    error LoyaltyNetworkRuleVersionNotExpected(uint8 kind, uint64 ruleVersion);

    /// @dev The signature's `deadline` has passed.
    error LoyaltyNetworkSignatureExpired(uint256 deadline);

    /// @dev The signature is not `expectedSigner`'s over this request.
    error LoyaltyNetworkInvalidSignature(address expectedSigner);

    /// @dev `member`'s next nonce is `expected`, the request used `actual`.
    error LoyaltyNetworkInvalidNonce(address member, uint256 expected, uint256 actual);

    /// @dev Member-to-member transfers are forbidden by the transfer policy.
    error LoyaltyNetworkTransfersDisabled();

    /// @dev The network is in sunset: minting has stopped for good.
    error LoyaltyNetworkSunset();

    /// @dev `tier` is above the highest tier (4, Black).
    error LoyaltyNetworkInvalidTier(uint8 tier);

    /// @dev A zero address where an address is required.
    error LoyaltyNetworkZeroAddress();

    /// @dev A zero length for the cap period.
    error LoyaltyNetworkZeroPeriod();
}
