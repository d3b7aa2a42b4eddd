// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ERC1155} from "@openzeppelin/contracts/token/ERC1155/ERC1155.sol";
import {ERC1155Utils} from "@openzeppelin/contracts/token/ERC1155/utils/ERC1155Utils.sol";
import {IBadgeCollection} from "./interfaces/IBadgeCollection.sol";

/**
 * @title BadgeCollection
 * @dev Achievement badges as ERC-1155 token types ("First Order", "Eco Guardian",
 * "7-Day Streak", tier badges...). Each type has a name, a metadata URI, a max supply
 * and a soulbound flag, exposed ERC-5192 style through {locked}. A member holds at most
 * one badge of each type. Only the hub that deployed the collection defines and awards.
 *
 * Holdings are bitmaps: a member's badges of types `256 * w .. 256 * w + 255` are the bits
 * of one storage word `w`, so {balanceOf} is 0 or 1 and an award sets one bit (a member's
 * second badge in a word costs a warm word update instead of a fresh slot). This holds
 * for every type, transferable ones included: a transfer (value 1) clears the sender's
 * bit and sets the recipient's, so OpenZeppelin's per-id balances are never used.
 *
 * ERC-5192: soulbound types are locked from their definition, so {defineBadge} emits
 * `Locked(id)` once per soulbound type (the id names the type, as ERC-1155 ids do);
 * awards do not repeat it. `Unlocked` never happens: a type's flag is immutable.
 */
contract BadgeCollection is ERC1155, IBadgeCollection {
    /// @dev A badge type. `minted` never exceeds `maxSupply`.
    struct BadgeType {
        uint64 maxSupply;
        uint64 minted;
        bool soulbound;
        bool exists;
        string name;
        string uri;
    }

    /// @dev ERC-5192 interface id (`locked(uint256)`).
    bytes4 private constant _ERC5192_INTERFACE_ID = 0xb45a3c0e;

    /// @dev The {LoyaltyNetwork} hub that deployed this collection.
    address public immutable hub;

    mapping(uint256 id => BadgeType) private _badgeTypes;

    /// @dev Bit `id & 0xff` of `_held[member][id >> 8]` is set while `member` holds badge `id`.
    mapping(address member => mapping(uint256 word => uint256 bits)) private _held;

    modifier onlyHub() {
        if (msg.sender != hub) revert BadgeCollectionUnauthorized(msg.sender);
        _;
    }

    /// @dev Deployed by the hub, which becomes the only definer and minter.
    constructor() ERC1155("") {
        hub = msg.sender;
    }

    // ----------------------------------------------------------- views

    /// @dev The badge type `id` (reverts for an unknown id).
    function badgeType(uint256 id) external view returns (BadgeType memory) {
        return _existing(id);
    }

    /// @dev Metadata URI of badge type `id`.
    function uri(uint256 id) public view override returns (string memory) {
        return _existing(id).uri;
    }

    /// @inheritdoc IBadgeCollection
    function locked(uint256 id) external view returns (bool) {
        return _existing(id).soulbound;
    }

    /// @dev 1 while `account` holds badge `id`, else 0 (at most one per member).
    /// {ERC1155-balanceOfBatch} answers through this function.
    function balanceOf(address account, uint256 id) public view override returns (uint256) {
        return (_held[account][id >> 8] >> (id & 0xff)) & 1;
    }

    /// @dev ERC-165, including ERC-5192.
    function supportsInterface(bytes4 interfaceId) public view override returns (bool) {
        return interfaceId == _ERC5192_INTERFACE_ID || super.supportsInterface(interfaceId);
    }

    // ----------------------------------------------------------- hub-only

    /// @dev Defines badge type `id`. Types are immutable once defined; a soulbound type
    /// emits ERC-5192 `Locked(id)` here, once, since it is locked from its definition.
    function defineBadge(uint256 id, string calldata name, string calldata metadataUri, uint64 maxSupply, bool soulbound)
        external
        onlyHub
    {
        if (_badgeTypes[id].exists) revert BadgeCollectionBadgeExists(id);
        if (maxSupply == 0) revert BadgeCollectionZeroSupply(id);
        _badgeTypes[id] = BadgeType(maxSupply, 0, soulbound, true, name, metadataUri);
        emit BadgeDefined(id, name, metadataUri, maxSupply, soulbound);
        if (soulbound) emit Locked(id);
    }

    /**
     * @dev Awards badge `ids[i]` to `members[i]`, skipping a member who already holds it (a
     * repeated award is harmless), and returns how many badges were minted. Each mint sets
     * the member's bit, counts against the type's max supply, emits a `TransferSingle`
     * (operator: the hub) and then, for a contract member, runs the ERC-1155 acceptance check
     * ({IERC1155Receiver-onERC1155Received}), after this item's state is written. Reverts as a
     * whole on an unknown type, an exhausted supply or a refused receipt.
     */
    function awardBatch(address[] calldata members, uint256[] calldata ids)
        external
        onlyHub
        returns (uint256 awarded)
    {
        if (ids.length != members.length) revert ERC1155InvalidArrayLength(ids.length, members.length);
        for (uint256 i; i < members.length; ++i) {
            address member = members[i];
            uint256 id = ids[i];
            mapping(uint256 => uint256) storage held = _held[member];
            uint256 word = held[id >> 8];
            uint256 bit = 1 << (id & 0xff);
            if (word & bit != 0) continue;
            BadgeType storage badge = _existing(id);
            uint64 minted = badge.minted;
            if (minted >= badge.maxSupply) revert BadgeCollectionMaxSupplyReached(id, badge.maxSupply);
            // Overflow not possible: minted < maxSupply <= type(uint64).max; awarded <= i.
            unchecked {
                badge.minted = minted + 1;
                ++awarded;
            }
            held[id >> 8] = word | bit;
            emit TransferSingle(msg.sender, address(0), member, id, 1);
            ERC1155Utils.checkOnERC1155Received(msg.sender, address(0), member, id, 1, "");
        }
    }

    // ----------------------------------------------------------- internal

    function _existing(uint256 id) private view returns (BadgeType storage badge) {
        badge = _badgeTypes[id];
        if (!badge.exists) revert BadgeCollectionUnknownBadge(id);
    }

    /**
     * @dev A transfer between members (ERC-1155 `safeTransferFrom` / `safeBatchTransferFrom`;
     * mints go through {awardBatch}, nothing burns). First every id is checked: soulbound
     * badges never move and nobody ends up with two of one type. Then each value-1 item moves
     * the sender's bit to the recipient (a value-0 item moves nothing, a larger value than
     * held reverts as {ERC1155-_update} does). Emits `TransferSingle` or `TransferBatch` as
     * {ERC1155-_update} does; the acceptance check follows in the caller.
     */
    function _update(address from, address to, uint256[] memory ids, uint256[] memory values) internal override {
        if (ids.length != values.length) revert ERC1155InvalidArrayLength(ids.length, values.length);
        for (uint256 i; i < ids.length; ++i) {
            if (_badgeTypes[ids[i]].soulbound) revert BadgeCollectionSoulbound(ids[i]);
            if (balanceOf(to, ids[i]) != 0) revert BadgeCollectionAlreadyHeld(to, ids[i]);
        }
        for (uint256 i; i < ids.length; ++i) {
            uint256 id = ids[i];
            uint256 value = values[i];
            uint256 balance = balanceOf(from, id);
            if (value > balance) revert ERC1155InsufficientBalance(from, balance, value, id);
            if (value == 0) continue;
            uint256 bit = 1 << (id & 0xff);
            _held[from][id >> 8] &= ~bit;
            _held[to][id >> 8] |= bit;
        }
        if (ids.length == 1) {
            emit TransferSingle(msg.sender, from, to, ids[0], values[0]);
        } else {
            emit TransferBatch(msg.sender, from, to, ids, values);
        }
    }
}
