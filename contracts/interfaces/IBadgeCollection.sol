// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/**
 * @dev Events and errors of {BadgeCollection}, the ERC-1155 achievement badges.
 * A member holds at most one of each badge type; soulbound types never move
 * (ERC-5192: `locked` and `Locked`).
 */
interface IBadgeCollection {
    /// @dev Emitted when the hub defines a new badge type.
    event BadgeDefined(uint256 indexed id, string name, string uri, uint64 maxSupply, bool soulbound);

    /// @dev ERC-5192: badge type `tokenId` is locked (soulbound). Emitted once, when a soulbound
    /// type is defined; its badges are locked from then on and never unlocked.
    event Locked(uint256 tokenId);

    /// @dev A function restricted to the hub was called by `caller`.
    error BadgeCollectionUnauthorized(address caller);

    /// @dev Badge type `id` does not exist.
    error BadgeCollectionUnknownBadge(uint256 id);

    /// @dev Badge type `id` was already defined.
    error BadgeCollectionBadgeExists(uint256 id);

    /// @dev Badge type `id` has reached its `maxSupply`.
    error BadgeCollectionMaxSupplyReached(uint256 id, uint64 maxSupply);

    /// @dev A soulbound badge `id` cannot be transferred.
    error BadgeCollectionSoulbound(uint256 id);

    /// @dev `member` already holds badge `id` (at most one per member).
    error BadgeCollectionAlreadyHeld(address member, uint256 id);

    /// @dev A badge type needs a positive max supply.
    error BadgeCollectionZeroSupply(uint256 id);

    /// @dev ERC-5192: `true` when badge type `id` is soulbound (never transferable).
    function locked(uint256 id) external view returns (bool);
}
