// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC1155} from "@openzeppelin/contracts/token/ERC1155/IERC1155.sol";
import {IERC1155Receiver} from "@openzeppelin/contracts/token/ERC1155/IERC1155Receiver.sol";
import {ERC165, IERC165} from "@openzeppelin/contracts/utils/introspection/ERC165.sol";

/**
 * @title BadgeReceiverMock
 * @dev Test-only contract member: accepts ERC-1155 badges (answers the receiver hooks with
 * their selectors) or, built with `accepts_ = false`, refuses them with a wrong answer. Each
 * accepted single receipt records the balance the collection showed it during the hook, so
 * tests see that an award's state is written before the acceptance check runs.
 */
contract BadgeReceiverMock is ERC165, IERC1155Receiver {
    /// @dev Whether the hooks accept.
    bool public immutable accepts;
    /// @dev Single receipts accepted so far.
    uint256 public received;
    /// @dev `balanceOf(this, id)` the sending collection reported during the last accepted hook.
    uint256 public balanceSeen;

    constructor(bool accepts_) {
        accepts = accepts_;
    }

    /// @inheritdoc IERC1155Receiver
    function onERC1155Received(address, address, uint256 id, uint256, bytes calldata) external returns (bytes4) {
        if (!accepts) return bytes4(0);
        ++received;
        balanceSeen = IERC1155(msg.sender).balanceOf(address(this), id);
        return IERC1155Receiver.onERC1155Received.selector;
    }

    /// @inheritdoc IERC1155Receiver
    function onERC1155BatchReceived(address, address, uint256[] calldata, uint256[] calldata, bytes calldata)
        external
        view
        returns (bytes4)
    {
        return accepts ? IERC1155Receiver.onERC1155BatchReceived.selector : bytes4(0);
    }

    /// @dev ERC-165, including the receiver interface.
    function supportsInterface(bytes4 interfaceId) public view override(ERC165, IERC165) returns (bool) {
        return interfaceId == type(IERC1155Receiver).interfaceId || super.supportsInterface(interfaceId);
    }
}
