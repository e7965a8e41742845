// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Pausable} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Pausable.sol";

/// @title SettlementToken
/// @notice "CreditNet Settlement Fen" (CNYF): an ERC-20 with 2 decimals, so one unit is one fen
/// (1/100 CNY). For local and test networks, where partners settle cycles with it; in
/// production the ClearingHouse takes any ERC-20 (for example a bank-issued deposit token).
/// @dev Roles: DEFAULT_ADMIN_ROLE grants roles; MINTER_ROLE mints; PAUSER_ROLE pauses every
/// balance change (mints and transfers).
contract SettlementToken is ERC20Pausable, AccessControl {
    /// @notice Role allowed to mint.
    bytes32 public constant MINTER_ROLE = keccak256("MINTER_ROLE");
    /// @notice Role allowed to pause and unpause.
    bytes32 public constant PAUSER_ROLE = keccak256("PAUSER_ROLE");

    /// @notice Deploys the token with no supply.
    /// @param admin Receives DEFAULT_ADMIN_ROLE and MINTER_ROLE.
    constructor(address admin) ERC20("CreditNet Settlement Fen", "CNYF") {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(MINTER_ROLE, admin);
    }

    /// @notice Creates `amountFen` new tokens for `to`.
    /// @dev Only MINTER_ROLE; reverts while paused (ERC20Pausable).
    /// @param to The receiver (non-zero).
    /// @param amountFen The amount, in fen.
    function mint(address to, uint256 amountFen) external onlyRole(MINTER_ROLE) {
        _mint(to, amountFen);
    }

    /// @notice Pauses every mint and transfer.
    /// @dev Only PAUSER_ROLE.
    function pause() external onlyRole(PAUSER_ROLE) {
        _pause();
    }

    /// @notice Lifts a pause.
    /// @dev Only PAUSER_ROLE.
    function unpause() external onlyRole(PAUSER_ROLE) {
        _unpause();
    }

    /// @notice Token units have 2 decimals: 1 unit = 1 fen.
    /// @return Always 2.
    function decimals() public pure override returns (uint8) {
        return 2;
    }
}
