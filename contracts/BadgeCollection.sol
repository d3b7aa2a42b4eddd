// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ERC1155} from "@openzeppelin/contracts/token/ERC1155/ERC1155.sol";
import {IBadgeCollection} from "./interfaces/IBadgeCollection.sol";

/**
 * @title BadgeCollection
 * @dev Achievement badges as ERC-1155 token types ("First Order", "Eco Guardian",
 * "7-Day Streak", tier badges...). Each type has a name, a metadata URI, a max supply
 * and a soulbound flag, exposed ERC-5192 style through {locked}. A member holds at most
 * one badge of each type. Only the hub that deployed the collection defines and awards.
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

    /// @dev ERC-165, including ERC-5192.
    function supportsInterface(bytes4 interfaceId) public view override returns (bool) {
        return interfaceId == _ERC5192_INTERFACE_ID || super.supportsInterface(interfaceId);
    }

    // ----------------------------------------------------------- hub-only

    /// @dev Defines badge type `id`. Types are immutable once defined.
    function defineBadge(uint256 id, string calldata name, string calldata metadataUri, uint64 maxSupply, bool soulbound)
        external
        onlyHub
    {
        if (_badgeTypes[id].exists) revert BadgeCollectionBadgeExists(id);
        if (maxSupply == 0) revert BadgeCollectionZeroSupply(id);
        _badgeTypes[id] = BadgeType(maxSupply, 0, soulbound, true, name, metadataUri);
        emit BadgeDefined(id, name, metadataUri, maxSupply, soulbound);
    }

    /**
     * @dev Awards one badge `id` to `member` unless the member already holds it; returns
     * whether a badge was minted, so a repeated award is harmless (idempotent).
     */
    function award(address member, uint256 id) external onlyHub returns (bool awarded) {
        if (balanceOf(member, id) != 0) return false;
        BadgeType storage badge = _existing(id);
        if (badge.minted >= badge.maxSupply) revert BadgeCollectionMaxSupplyReached(id, badge.maxSupply);
        // Overflow not possible: minted < maxSupply <= type(uint64).max.
        unchecked {
            ++badge.minted;
        }
        _mint(member, id, 1, "");
        return true;
    }

    // ----------------------------------------------------------- internal

    function _existing(uint256 id) private view returns (BadgeType storage badge) {
        badge = _badgeTypes[id];
        if (!badge.exists) revert BadgeCollectionUnknownBadge(id);
    }

    /// @dev Soulbound badges never move; nobody ends up with two of one type.
    function _update(address from, address to, uint256[] memory ids, uint256[] memory values) internal override {
        if (from != address(0) && to != address(0)) {
            for (uint256 i; i < ids.length; ++i) {
                if (_badgeTypes[ids[i]].soulbound) revert BadgeCollectionSoulbound(ids[i]);
                if (balanceOf(to, ids[i]) != 0) revert BadgeCollectionAlreadyHeld(to, ids[i]);
            }
        }
        super._update(from, to, ids, values);
    }
}
