// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {TimelockController} from "@openzeppelin/contracts/governance/TimelockController.sol";

/**
 * @title NetworkTimelock
 * @dev OpenZeppelin's {TimelockController}, the admin of every rule parameter of the
 * network. Its `getMinDelay()` is the published delay members can count on: a scheduled
 * change (merchant admission, caps, point value, transfer policy, sunset) is visible on
 * chain at least that long before it can be executed.
 */
contract NetworkTimelock is TimelockController {
    /// @dev `proposers` schedule and cancel, `executors` execute (address(0): anyone).
    constructor(uint256 minDelay, address[] memory proposers, address[] memory executors)
        TimelockController(minDelay, proposers, executors, address(0))
    {}
}
