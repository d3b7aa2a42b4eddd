// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";

/**
 * @title NaiveERC20
 * @dev Test-only baseline for benchmarks: the plain OpenZeppelin ERC-20 a typical
 * integration deploys, minting one transaction per loyalty event.
 */
contract NaiveERC20 is ERC20, Ownable {
    constructor() ERC20("Naive Points", "NPT") Ownable(msg.sender) {}

    /// @dev Mints `amount` to `to`; one call per event.
    function mint(address to, uint256 amount) external onlyOwner {
        _mint(to, amount);
    }
}
