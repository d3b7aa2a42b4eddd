// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/**
 * @dev Events and errors of {PointsToken}, the network's ERC-20 loyalty point.
 * Only the hub ({LoyaltyNetwork}) that deployed the token mints and burns.
 */
interface IPointsToken {
    /// @dev A function restricted to the hub was called by `caller`.
    error PointsTokenUnauthorized(address caller);

    /// @dev A zero amount in a mint batch (for `member`).
    error PointsTokenZeroAmount(address member);

    /// @dev A member-to-member transfer was attempted while the hub's policy forbids it
    /// (transfers disabled, or the network paused).
    error PointsTokenTransfersClosed(address from, address to);
}
