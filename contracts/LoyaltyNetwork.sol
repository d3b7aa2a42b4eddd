// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {Nonces} from "@openzeppelin/contracts/utils/Nonces.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {Hashes} from "@openzeppelin/contracts/utils/cryptography/Hashes.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {ILoyaltyNetwork} from "./interfaces/ILoyaltyNetwork.sol";
import {PointsToken} from "./PointsToken.sol";
import {BadgeCollection} from "./BadgeCollection.sol";

/**
 * @title LoyaltyNetwork
 * @dev The hub of the points network: merchant registry, exactly-once issuance,
 * member-consented redemption, refund clawback, settlement accounting, tiers, badges.
 *
 * Roles (least privilege):
 * - `DEFAULT_ADMIN_ROLE`: the {TimelockController}. Every rule parameter (merchant
 *   admission and caps, point value, transfer policy, cap period, rule notice, sunset,
 *   roles) changes only through it, so members see a change coming before it applies.
 * - `ISSUER_ROLE`: the gateway's operator keys. Issue, claw back, relay redemptions,
 *   set tiers, define and award badges, publish rule sets, on behalf of any merchant.
 *   A merchant's own `signer` may do the same for that merchant only.
 * - `GUARDIAN_ROLE`: pause/unpause and suspend a merchant at once (emergency brake).
 *
 * Exactly once: every issuance and clawback carries a per-merchant sequence number that
 * can be used once (a bitmap, 256 per storage slot), so an event can never be minted
 * twice, even if the gateway's database is lost.
 *
 * Clawbacks are bound to what was issued: each batch stores a Merkle root over chunks of
 * its `(seq, member, amount)` items (each chunk of up to `ISSUE_CHUNK_SIZE` items hashed
 * flat as one leaf), a clawback proves the chunk holding the item it refunds, and the
 * total clawed back from one item never exceeds what it issued.
 *
 * Published rules with notice: a merchant's rule set is published in full (its canonical
 * JSON in the {RuleSetPublished} log). Its first version is in effect at once; every later
 * one `ruleNoticeSeconds` after its publication, and none may be published while another
 * waits, so only a merchant's latest version can be pending. Issuance by the rules names
 * the version it was computed with, which must be in effect when the batch is mined.
 */
contract LoyaltyNetwork is ILoyaltyNetwork, AccessControl, Pausable, EIP712, Nonces {
    using SafeCast for uint256;

    // =========================================================== storage

    bytes32 public constant ISSUER_ROLE = keccak256("ISSUER_ROLE");
    bytes32 public constant GUARDIAN_ROLE = keccak256("GUARDIAN_ROLE");

    /// @dev Highest tier (0 Bronze, 1 Silver, 2 Gold, 3 Platinum, 4 Black).
    uint8 public constant MAX_TIER = 4;

    /// @dev Items per leaf of a batch's Merkle tree (the last chunk of a batch may be shorter).
    uint256 public constant ISSUE_CHUNK_SIZE = 8;

    /// @dev Largest rule set publishable, in bytes of canonical JSON (the default set is ~1.2 KB).
    uint256 internal constant MAX_RULE_SET_BYTES = 16_384;

    /// @dev Longest notice the timelock may set before a new rule-set version takes effect.
    uint64 internal constant MAX_RULE_NOTICE_SECONDS = 365 days;

    /// @dev Highest {MintKind} an issuance batch may name.
    uint8 internal constant MAX_MINT_KIND = uint8(type(MintKind).max);

    bytes32 public constant REDEMPTION_TYPEHASH = keccak256(
        "Redemption(address member,uint32 merchantId,uint256 amount,bytes32 ref,uint256 nonce,uint256 deadline)"
    );
    bytes32 public constant TRANSFER_TYPEHASH =
        keccak256("TransferRequest(address from,address to,uint256 amount,uint256 nonce,uint256 deadline)");

    PointsToken public immutable token;
    BadgeCollection public immutable badges;

    /// @dev Face value of one point in millionths of `valueCurrency` (10_000 = USD 0.01).
    uint256 public pointValueMicros;
    string public valueCurrency;
    bool public transfersAllowed;
    bool public sunsetActive;
    uint64 public capPeriodSeconds;
    uint32 public merchantCount;
    /// @dev Seconds between a rule-set version's publication and its effect (a merchant's
    /// first version excepted: it is in effect at once). Packs with the four fields above.
    uint64 public ruleNoticeSeconds;

    mapping(uint32 merchantId => Merchant) private _merchants;
    mapping(uint32 merchantId => mapping(uint256 word => uint256 bits)) private _usedSeqs;
    mapping(address member => uint8) public tierOf;
    mapping(uint32 merchantId => mapping(uint64 firstSeq => bytes32 root)) private _batchRoots;
    /// @dev Points clawed back so far from an issuance not (yet) fully refunded.
    mapping(uint32 merchantId => mapping(uint64 seq => uint256 burned)) private _clawedBackOf;
    /// @dev Bit `seq & 0xff` of word `seq >> 8`: the issuance `seq` was fully refunded (everything
    /// it issued was burned back), recorded in a shared word instead of a fresh amount slot.
    mapping(uint32 merchantId => mapping(uint256 word => uint256 bits)) private _fullyClawedBack;

    /// @dev Deployment parameters.
    struct Config {
        address timelock;
        address guardian;
        address[] issuers;
        uint256 pointValueMicros;
        string valueCurrency;
        bool transfersAllowed;
        uint64 capPeriodSeconds;
        uint64 ruleNoticeSeconds;
        string tokenName;
        string tokenSymbol;
    }

    /// @dev Deploys the token and badge collection, which take this hub as their only minter.
    constructor(Config memory config) EIP712("LoyaltyNetwork", "1") {
        if (config.timelock == address(0) || config.guardian == address(0)) revert LoyaltyNetworkZeroAddress();
        if (config.capPeriodSeconds == 0) revert LoyaltyNetworkZeroPeriod();
        _checkRuleNotice(config.ruleNoticeSeconds);
        token = new PointsToken(config.tokenName, config.tokenSymbol);
        badges = new BadgeCollection();
        _grantRole(DEFAULT_ADMIN_ROLE, config.timelock);
        _grantRole(GUARDIAN_ROLE, config.guardian);
        for (uint256 i; i < config.issuers.length; ++i) {
            _grantRole(ISSUER_ROLE, config.issuers[i]);
        }
        pointValueMicros = config.pointValueMicros;
        valueCurrency = config.valueCurrency;
        transfersAllowed = config.transfersAllowed;
        capPeriodSeconds = config.capPeriodSeconds;
        ruleNoticeSeconds = config.ruleNoticeSeconds;
        emit PointValueChanged(config.pointValueMicros, config.valueCurrency);
        emit TransferPolicyChanged(config.transfersAllowed);
        emit CapPeriodChanged(config.capPeriodSeconds);
        emit RuleNoticeChanged(config.ruleNoticeSeconds);
    }

    modifier onlyIssuerFor(uint32 merchantId) {
        _checkIssuer(merchantId);
        _;
    }

    modifier whileMinting() {
        _requireNotPaused();
        if (sunsetActive) revert LoyaltyNetworkSunset();
        _;
    }

    // =========================================================== views

    /// @dev Merchant `merchantId` (reverts for an unknown id).
    function merchant(uint32 merchantId) external view returns (Merchant memory) {
        return _existingMerchant(merchantId);
    }

    /// @dev Whether merchant `merchantId` already used sequence number `seq`.
    function isSequenceUsed(uint32 merchantId, uint64 seq) external view returns (bool) {
        return _usedSeqs[merchantId][seq >> 8] & (1 << (seq & 0xff)) != 0;
    }

    /// @dev The bitmap word holding sequence numbers `256 * word .. 256 * word + 255`.
    function sequenceWord(uint32 merchantId, uint256 word) external view returns (uint256) {
        return _usedSeqs[merchantId][word];
    }

    /// @dev Merkle root of the issuance batch of merchant `merchantId` starting at `firstSeq`
    /// (zero if none): one leaf per chunk of `ISSUE_CHUNK_SIZE` items as in `_chunkLeaf`, pairs
    /// hashed commutatively (OpenZeppelin `Hashes.commutativeKeccak256`), an odd last node
    /// carried up.
    function batchRoot(uint32 merchantId, uint64 firstSeq) external view returns (bytes32) {
        return _batchRoots[merchantId][firstSeq];
    }

    /**
     * @dev What was clawed back from the issuance with sequence number `seq`: `full` once
     * everything it issued was burned back (the amount is then the issuance's own, which the
     * hub does not store: it is in the batch's items), otherwise `burned`, the points clawed
     * back so far (0 when none).
     */
    function clawbackState(uint32 merchantId, uint64 seq) external view returns (bool full, uint256 burned) {
        full = _fullyClawedBack[merchantId][seq >> 8] & (1 << (seq & 0xff)) != 0;
        burned = _clawedBackOf[merchantId][seq];
    }

    /// @dev Whether member-to-member transfers may happen now (asked by the token).
    function transfersOpen() external view returns (bool) {
        return transfersAllowed && !paused();
    }

    /// @dev The EIP-712 domain separator (binds chain id and this contract).
    function domainSeparator() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    // =========================================================== issuance

    /**
     * @dev Mints the points of `items[i]` for the merchant event with sequence number `firstSeq + i`
     * (reference `eventRefs[i]`). An item packs the member in its high 160 bits and the amount in
     * its low 96 bits (`uint256(uint160(member)) << 96 | amount`). A batch covers a contiguous
     * range of sequence numbers and reverts as a whole if any of them was used before, so every
     * event mints at most once.
     *
     * `kind` is a {MintKind}. A `Rule` batch was computed by the merchant's published rule set
     * `ruleVersion`, which must be in effect now (a superseded version still is accepted: events
     * accepted before a change may be issued after it); any other kind names version 0.
     * `inputRoot` commits to the events' disclosed inputs (see {PointsIssued}); the hub only
     * logs it.
     */
    function issueBatch(BatchHeader calldata h, bytes32[] calldata eventRefs, uint256[] calldata items)
        external
        whileMinting
        onlyIssuerFor(h.merchantId)
    {
        uint32 merchantId = h.merchantId;
        uint64 firstSeq = h.firstSeq;
        uint256 n = eventRefs.length;
        if (n == 0) revert LoyaltyNetworkZeroAmount();
        if (items.length != n) revert LoyaltyNetworkLengthMismatch(n, items.length);
        Merchant storage m = _activeMerchant(merchantId);
        _checkRuleVersion(merchantId, m, h.kind, h.ruleVersion);
        if (firstSeq + n - 1 > type(uint64).max) revert LoyaltyNetworkSequenceOutOfRange(firstSeq, n);
        _useSequenceRange(merchantId, firstSeq, n);
        uint256 total = token.mintBatch(items);
        _countAgainstCap(merchantId, m, total);
        m.issued += total.toUint128();
        _batchRoots[merchantId][firstSeq] = _batchRoot(firstSeq, items);
        emit PointsIssued(merchantId, h.ruleVersion, firstSeq, eventRefs, total, h.kind, h.inputRoot);
    }

    /**
     * @dev Refund clawbacks for merchant `merchantId`, applied in order: for refund event
     * `items[i].seq`, burns up to `items[i].amount` of the points that the issuance with sequence
     * number `items[i].originalSeq` gave its member. Each item's `chunk` is the chunk of that
     * issuance's batch holding it, proved by `proof` against the batch root; the member and the
     * amount issued are read from it. Burns what is left when the member already spent the
     * points; never more, over all clawbacks of one issuance (items of this batch included),
     * than it issued. Emits one {PointsClawedBack} per item, then one {ClawbackInputsCommitted}
     * with `inputRoot` (the refunds' disclosed inputs, leaves in item order; only logged), and
     * reverts as a whole if any item is invalid or its refund sequence number was used before.
     */
    function clawbackBatch(uint32 merchantId, bytes32 inputRoot, Clawback[] calldata items)
        external
        whenNotPaused
        onlyIssuerFor(merchantId)
    {
        if (items.length == 0) revert LoyaltyNetworkZeroAmount();
        Merchant storage m = _existingMerchant(merchantId);
        for (uint256 i; i < items.length; ++i) {
            _clawback(merchantId, m, items[i]);
        }
        emit ClawbackInputsCommitted(merchantId, items.length, inputRoot);
    }

    // =========================================================== redemption

    /**
     * @dev Burns `r.amount` of `r.member`'s points at merchant `r.merchantId`, with the member's
     * EIP-712 consent `signature` (EOA or ERC-1271). Called by the merchant's side (an issuer
     * relaying for it, or its own signer), which then hands out reward `r.ref`.
     */
    function redeem(Redemption calldata r, bytes calldata signature)
        external
        whenNotPaused
        onlyIssuerFor(r.merchantId)
    {
        if (r.amount == 0) revert LoyaltyNetworkZeroAmount();
        Merchant storage m = _activeMerchant(r.merchantId);
        bytes32 structHash = keccak256(
            abi.encode(REDEMPTION_TYPEHASH, r.member, r.merchantId, r.amount, r.ref, r.nonce, r.deadline)
        );
        _verifyConsent(r.member, r.nonce, r.deadline, structHash, signature);
        token.burn(r.member, r.amount);
        m.redeemed += r.amount.toUint128();
        emit PointsRedeemed(r.merchantId, r.member, r.amount, r.ref, r.nonce);
    }

    // =========================================================== transfers

    /// @dev Moves points with the sender's EIP-712 consent; anyone may relay (gasless for members).
    function transferWithSignature(TransferRequest calldata t, bytes calldata signature) external whenNotPaused {
        if (!transfersAllowed) revert LoyaltyNetworkTransfersDisabled();
        if (t.amount == 0) revert LoyaltyNetworkZeroAmount();
        bytes32 structHash = keccak256(abi.encode(TRANSFER_TYPEHASH, t.from, t.to, t.amount, t.nonce, t.deadline));
        _verifyConsent(t.from, t.nonce, t.deadline, structHash, signature);
        token.hubTransfer(t.from, t.to, t.amount);
        emit PointsTransferred(t.from, t.to, t.amount, t.nonce);
    }

    // =========================================================== members

    /// @dev Sets `tiers[i]` for `members[i]` (computed by the gateway from RFM); unchanged tiers emit nothing.
    function setTiers(address[] calldata members, uint8[] calldata tiers) external onlyRole(ISSUER_ROLE) {
        if (tiers.length != members.length) revert LoyaltyNetworkLengthMismatch(members.length, tiers.length);
        for (uint256 i; i < members.length; ++i) {
            uint8 tier = tiers[i];
            if (tier > MAX_TIER) revert LoyaltyNetworkInvalidTier(tier);
            uint8 old = tierOf[members[i]];
            if (old != tier) {
                tierOf[members[i]] = tier;
                emit TierChanged(members[i], old, tier);
            }
        }
    }

    /// @dev Defines badge type `id` in the collection.
    function defineBadge(uint256 id, string calldata name, string calldata metadataUri, uint64 maxSupply, bool soulbound)
        external
        onlyRole(ISSUER_ROLE)
    {
        badges.defineBadge(id, name, metadataUri, maxSupply, soulbound);
    }

    /**
     * @dev Awards `badgeIds[i]` to `members[i]` for merchant `merchantId` in one call to the
     * collection ({BadgeCollection-awardBatch}); badges already held are skipped. Emits one
     * {BadgesAwarded} for the call (none when every badge was already held), naming the
     * merchant of the `count` badge mints the collection logged just before it.
     */
    function awardBadges(uint32 merchantId, address[] calldata members, uint256[] calldata badgeIds)
        external
        whileMinting
        onlyIssuerFor(merchantId)
    {
        if (badgeIds.length != members.length) revert LoyaltyNetworkLengthMismatch(members.length, badgeIds.length);
        _activeMerchant(merchantId);
        uint256 awarded = badges.awardBatch(members, badgeIds);
        if (awarded != 0) emit BadgesAwarded(merchantId, awarded);
    }

    /**
     * @dev Publishes the next rule-set version of merchant `merchantId`: `ruleSet` is its full
     * canonical JSON (1 to `MAX_RULE_SET_BYTES` bytes), which must hash to `ruleSetHash`. A
     * merchant's first version is in effect at once; a later one `ruleNoticeSeconds` from now,
     * and only once the version before it is in effect. Issuance by the rules cites the
     * version (see {issueBatch}).
     */
    function publishRuleSet(uint32 merchantId, bytes32 ruleSetHash, bytes calldata ruleSet)
        external
        onlyIssuerFor(merchantId)
    {
        if (ruleSet.length == 0 || ruleSet.length > MAX_RULE_SET_BYTES) {
            revert LoyaltyNetworkRuleSetSize(ruleSet.length, MAX_RULE_SET_BYTES);
        }
        bytes32 actual = keccak256(ruleSet);
        if (actual != ruleSetHash) revert LoyaltyNetworkRuleSetHashMismatch(ruleSetHash, actual);
        Merchant storage m = _activeMerchant(merchantId);
        uint64 latest = m.ruleVersion;
        if (latest != 0 && block.timestamp < m.ruleEffectiveAt) {
            revert LoyaltyNetworkRuleChangePending(merchantId, latest, m.ruleEffectiveAt);
        }
        uint64 effectiveAt = uint64(block.timestamp) + (latest == 0 ? 0 : ruleNoticeSeconds);
        uint64 version = latest + 1;
        m.ruleVersion = version;
        m.ruleEffectiveAt = effectiveAt;
        m.ruleSetHash = ruleSetHash;
        emit RuleSetPublished(merchantId, version, ruleSetHash, effectiveAt, ruleSet);
    }

    // =========================================================== admin (timelock)

    /// @dev Admits a merchant; returns its id (1, 2, ...).
    function addMerchant(string calldata name, address signer, uint64 capPerPeriod)
        external
        onlyRole(DEFAULT_ADMIN_ROLE)
        returns (uint32 merchantId)
    {
        if (signer == address(0)) revert LoyaltyNetworkZeroAddress();
        merchantId = ++merchantCount;
        Merchant storage m = _merchants[merchantId];
        m.signer = signer;
        m.status = MerchantStatus.Active;
        m.capPerPeriod = capPerPeriod;
        emit MerchantAdded(merchantId, signer, capPerPeriod, name);
    }

    /// @dev Changes merchant `merchantId`'s mint cap per period.
    function setMerchantCap(uint32 merchantId, uint64 capPerPeriod) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _existingMerchant(merchantId).capPerPeriod = capPerPeriod;
        emit MerchantCapChanged(merchantId, capPerPeriod);
    }

    /// @dev Replaces merchant `merchantId`'s signer (key rotation).
    function setMerchantSigner(uint32 merchantId, address signer) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (signer == address(0)) revert LoyaltyNetworkZeroAddress();
        _existingMerchant(merchantId).signer = signer;
        emit MerchantSignerChanged(merchantId, signer);
    }

    /// @dev Reinstates a suspended merchant.
    function reinstateMerchant(uint32 merchantId) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _existingMerchant(merchantId).status = MerchantStatus.Active;
        emit MerchantStatusChanged(merchantId, MerchantStatus.Active);
    }

    /// @dev Sets the published face value of one point.
    function setPointValue(uint256 microUnits) external onlyRole(DEFAULT_ADMIN_ROLE) {
        pointValueMicros = microUnits;
        emit PointValueChanged(microUnits, valueCurrency);
    }

    /// @dev Allows or forbids member-to-member transfers.
    function setTransfersAllowed(bool allowed) external onlyRole(DEFAULT_ADMIN_ROLE) {
        transfersAllowed = allowed;
        emit TransferPolicyChanged(allowed);
    }

    /// @dev Sets the length of a mint-cap period.
    function setCapPeriod(uint64 secondsPerPeriod) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (secondsPerPeriod == 0) revert LoyaltyNetworkZeroPeriod();
        capPeriodSeconds = secondsPerPeriod;
        emit CapPeriodChanged(secondsPerPeriod);
    }

    /// @dev Sets the notice a new rule-set version waits before taking effect (at most
    /// `MAX_RULE_NOTICE_SECONDS`). A version already published keeps its effective time.
    function setRuleNotice(uint64 noticeSeconds) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _checkRuleNotice(noticeSeconds);
        ruleNoticeSeconds = noticeSeconds;
        emit RuleNoticeChanged(noticeSeconds);
    }

    /// @dev Stops minting for good; balances stay transferable and redeemable.
    function sunset() external onlyRole(DEFAULT_ADMIN_ROLE) {
        sunsetActive = true;
        emit Sunset(block.timestamp);
    }

    // =========================================================== guardian

    /// @dev Suspends merchant `merchantId` at once (reinstating goes through the timelock).
    function suspendMerchant(uint32 merchantId) external onlyRole(GUARDIAN_ROLE) {
        _existingMerchant(merchantId).status = MerchantStatus.Suspended;
        emit MerchantStatusChanged(merchantId, MerchantStatus.Suspended);
    }

    /// @dev Pauses issuance, redemption, clawback and transfers.
    function pause() external onlyRole(GUARDIAN_ROLE) {
        _pause();
    }

    /// @dev Lifts a pause.
    function unpause() external onlyRole(GUARDIAN_ROLE) {
        _unpause();
    }

    // =========================================================== internal

    function _checkIssuer(uint32 merchantId) private view {
        if (hasRole(ISSUER_ROLE, msg.sender)) return;
        if (msg.sender != _merchants[merchantId].signer || msg.sender == address(0)) {
            revert LoyaltyNetworkUnauthorizedIssuer(msg.sender, merchantId);
        }
    }

    /// @dev Reverts unless a batch of mint `kind` may name `ruleVersion` now (see {issueBatch}).
    function _checkRuleVersion(uint32 merchantId, Merchant storage m, uint8 kind, uint64 ruleVersion)
        private
        view
    {
        if (kind == uint8(MintKind.Rule)) {
            uint64 latest = m.ruleVersion;
            if (ruleVersion == 0 || ruleVersion > latest) {
                revert LoyaltyNetworkUnknownRuleVersion(merchantId, ruleVersion);
            }
            if (ruleVersion == latest && block.timestamp < m.ruleEffectiveAt) {
                revert LoyaltyNetworkRuleVersionNotInEffect(merchantId, ruleVersion, m.ruleEffectiveAt);
            }
        } else if (kind > MAX_MINT_KIND) {
            revert LoyaltyNetworkUnknownMintKind(kind);
        } else if (ruleVersion != 0) {
            revert LoyaltyNetworkRuleVersionNotExpected(kind, ruleVersion);
        }
    }

    function _checkRuleNotice(uint64 noticeSeconds) private pure {
        if (noticeSeconds > MAX_RULE_NOTICE_SECONDS) {
            revert LoyaltyNetworkRuleNoticeTooLong(noticeSeconds, MAX_RULE_NOTICE_SECONDS);
        }
    }

    function _existingMerchant(uint32 merchantId) private view returns (Merchant storage m) {
        m = _merchants[merchantId];
        if (m.status == MerchantStatus.None) revert LoyaltyNetworkUnknownMerchant(merchantId);
    }

    function _activeMerchant(uint32 merchantId) private view returns (Merchant storage m) {
        m = _existingMerchant(merchantId);
        if (m.status != MerchantStatus.Active) revert LoyaltyNetworkMerchantNotActive(merchantId, m.status);
    }

    /**
     * @dev Marks sequence numbers `first .. first + count - 1` used, one bitmap word at a time
     * (a single read and write per 256 numbers); reverts on the first one already used.
     */
    function _useSequenceRange(uint32 merchantId, uint64 first, uint256 count) private {
        mapping(uint256 => uint256) storage bitmap = _usedSeqs[merchantId];
        uint256 seq = first;
        uint256 end = seq + count;
        while (seq < end) {
            uint256 index = seq >> 8;
            uint256 low = seq & 0xff;
            uint256 bits = end - seq < 256 - low ? end - seq : 256 - low;
            // The `bits` ones starting at bit `low`; a full word when bits == 256.
            uint256 mask = bits == 256 ? type(uint256).max : ((1 << bits) - 1) << low;
            uint256 word = bitmap[index];
            if (word & mask != 0) {
                revert LoyaltyNetworkSequenceUsed(merchantId, uint64(seq + _lowestBit(word & mask) - low));
            }
            bitmap[index] = word | mask;
            seq += bits;
        }
    }

    /// @dev Index of the lowest set bit of a non-zero `x`.
    function _lowestBit(uint256 x) private pure returns (uint256 i) {
        while (x & 1 == 0) {
            x >>= 1;
            ++i;
        }
    }

    /// @dev Merkle root of a batch's items (see {batchRoot}): one leaf per chunk, then each
    /// level folded in place.
    function _batchRoot(uint64 firstSeq, uint256[] calldata items) private pure returns (bytes32) {
        uint256 n = items.length;
        uint256 chunks = (n + ISSUE_CHUNK_SIZE - 1) / ISSUE_CHUNK_SIZE;
        bytes32[] memory level = new bytes32[](chunks);
        for (uint256 c; c < chunks; ++c) {
            uint256 start = c * ISSUE_CHUNK_SIZE;
            uint256 end = start + ISSUE_CHUNK_SIZE < n ? start + ISSUE_CHUNK_SIZE : n;
            // The chunk's leaf as `_chunkLeaf` hashes it, written out: the loop stays inlined.
            level[c] = keccak256(abi.encodePacked(firstSeq + uint64(start), items[start:end]));
        }
        n = chunks;
        while (n > 1) {
            uint256 pairs = n >> 1;
            for (uint256 i; i < pairs; ++i) {
                level[i] = Hashes.commutativeKeccak256(level[2 * i], level[2 * i + 1]);
            }
            if (n & 1 == 1) level[pairs] = level[n - 1];
            n = pairs + (n & 1);
        }
        return level[0];
    }

    /// @dev A chunk's leaf: `keccak256(abi.encodePacked(firstSeq, items))` over the chunk's packed
    /// items, whose sequence numbers run from `firstSeq` (8 bytes). A leaf hashes 8 + 32 * k bytes,
    /// never the 64 of an inner node, so no inner node can pass for a leaf.
    function _chunkLeaf(uint64 firstSeq, uint256[] calldata items) private pure returns (bytes32) {
        return keccak256(abi.encodePacked(firstSeq, items));
    }

    /// @dev One item of {clawbackBatch}: checks it against what was issued, uses its sequence
    /// number, burns and records what it burned: a refund that completes the issuance sets its
    /// fully-refunded bit, a partial one stores the running amount (see {clawbackState}).
    function _clawback(uint32 merchantId, Merchant storage m, Clawback calldata c) private {
        if (c.amount == 0) revert LoyaltyNetworkZeroAmount();
        IssuedChunk calldata chunk = c.chunk;
        uint64 originalSeq = c.originalSeq;
        bytes32 root = _batchRoots[merchantId][chunk.batchFirstSeq];
        bool inChunk = originalSeq >= chunk.firstSeq && originalSeq - chunk.firstSeq < chunk.items.length;
        bytes32 leaf = _chunkLeaf(chunk.firstSeq, chunk.items);
        if (!inChunk || root == bytes32(0) || !MerkleProof.verifyCalldata(c.proof, root, leaf)) {
            revert LoyaltyNetworkUnknownIssuance(merchantId, originalSeq);
        }
        uint256 item = chunk.items[originalSeq - chunk.firstSeq];
        address member = address(uint160(item >> 96));
        uint256 issued = uint96(item);
        mapping(uint256 => uint256) storage fully = _fullyClawedBack[merchantId];
        uint256 word = fully[originalSeq >> 8];
        uint256 bit = 1 << (originalSeq & 0xff);
        uint256 already = word & bit != 0 ? issued : _clawedBackOf[merchantId][originalSeq];
        if (already + c.amount > issued) {
            revert LoyaltyNetworkClawbackExceedsIssued(merchantId, originalSeq, issued, already + c.amount);
        }
        _useSequence(merchantId, c.seq);
        uint256 burned = token.burnUpTo(member, c.amount);
        if (already + burned == issued) {
            // A full refund: one bit in a shared word, and any partial amount slot freed.
            fully[originalSeq >> 8] |= bit;
            if (already != 0) delete _clawedBackOf[merchantId][originalSeq];
        } else {
            _clawedBackOf[merchantId][originalSeq] = already + burned;
        }
        m.clawedBack += burned.toUint128();
        emit PointsClawedBack(merchantId, member, c.seq, originalSeq, c.eventRef, c.amount, burned);
    }

    function _useSequence(uint32 merchantId, uint64 seq) private {
        uint256 bit = 1 << (seq & 0xff);
        uint256 word = _usedSeqs[merchantId][seq >> 8];
        if (word & bit != 0) revert LoyaltyNetworkSequenceUsed(merchantId, seq);
        _usedSeqs[merchantId][seq >> 8] = word | bit;
    }

    function _countAgainstCap(uint32 merchantId, Merchant storage m, uint256 amount) private {
        uint64 period = uint64(block.timestamp / capPeriodSeconds);
        uint256 minted = m.period == period ? m.mintedInPeriod + amount : amount;
        if (minted > m.capPerPeriod) revert LoyaltyNetworkMintCapExceeded(merchantId, m.capPerPeriod, minted);
        m.period = period;
        m.mintedInPeriod = uint64(minted);
    }

    function _verifyConsent(address signer, uint256 nonce, uint256 deadline, bytes32 structHash, bytes calldata sig)
        private
    {
        if (block.timestamp > deadline) revert LoyaltyNetworkSignatureExpired(deadline);
        uint256 expected = _useNonce(signer);
        if (nonce != expected) revert LoyaltyNetworkInvalidNonce(signer, expected, nonce);
        if (!SignatureChecker.isValidSignatureNowCalldata(signer, _hashTypedDataV4(structHash), sig)) {
            revert LoyaltyNetworkInvalidSignature(signer);
        }
    }
}
