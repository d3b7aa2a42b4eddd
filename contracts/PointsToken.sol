// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";
import {IPointsToken} from "./interfaces/IPointsToken.sol";

/// @dev What the token asks its hub before a member-to-member transfer.
interface ITransferPolicy {
    /// @dev `true` while member-to-member transfers are allowed and the network is not paused.
    function transfersOpen() external view returns (bool);
}

/**
 * @title PointsToken
 * @dev The network's loyalty point: an ERC-20 with 0 decimals and ERC-2612 permit.
 *
 * The hub that deploys the token is its only minter and burner, fixed for life
 * (`hub` is immutable). Members may move points among themselves directly while the
 * hub's transfer policy allows it; the hub also relays signed (gasless) transfers.
 */
contract PointsToken is ERC20, ERC20Permit, IPointsToken {
    /// @dev The {LoyaltyNetwork} hub that deployed this token.
    address public immutable hub;

    modifier onlyHub() {
        if (msg.sender != hub) revert PointsTokenUnauthorized(msg.sender);
        _;
    }

    /// @dev Deployed by the hub, which becomes the only minter and burner.
    constructor(string memory name_, string memory symbol_) ERC20(name_, symbol_) ERC20Permit(name_) {
        hub = msg.sender;
    }

    /// @dev Points are whole numbers.
    function decimals() public pure override returns (uint8) {
        return 0;
    }

    // ----------------------------------------------------------- hub-only

    /**
     * @dev Mints one issuance batch and returns the points minted: item `i` mints its low 96 bits
     * (the amount) to the address in its high 160 bits (the member), see {LoyaltyNetwork-issueBatch}.
     */
    function mintBatch(uint256[] calldata items) external onlyHub returns (uint256 total) {
        for (uint256 i; i < items.length; ++i) {
            uint256 item = items[i];
            address member = address(uint160(item >> 96));
            uint256 amount = uint96(item);
            if (amount == 0) revert PointsTokenZeroAmount(member);
            _mint(member, amount);
            total += amount;
        }
    }

    /// @dev Burns `amount` of `member`'s points (a redemption the member consented to).
    function burn(address member, uint256 amount) external onlyHub {
        _burn(member, amount);
    }

    /**
     * @dev Burns up to `amount` of `member`'s points (a refund clawback) and returns what was
     * burned: never more than the balance, so a clawback of spent points burns what is left.
     */
    function burnUpTo(address member, uint256 amount) external onlyHub returns (uint256 burned) {
        uint256 balance = balanceOf(member);
        burned = amount < balance ? amount : balance;
        if (burned != 0) _burn(member, burned);
    }

    /// @dev Moves points for a member who signed a transfer request the hub verified.
    function hubTransfer(address from, address to, uint256 amount) external onlyHub {
        _transfer(from, to, amount);
    }

    // ----------------------------------------------------------- internal

    /// @dev Direct member-to-member transfers follow the hub's transfer policy.
    function _update(address from, address to, uint256 value) internal override {
        if (from != address(0) && to != address(0) && msg.sender != hub) {
            if (!ITransferPolicy(hub).transfersOpen()) revert PointsTokenTransfersClosed(from, to);
        }
        super._update(from, to, value);
    }
}
