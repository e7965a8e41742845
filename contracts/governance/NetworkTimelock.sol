// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {TimelockController} from "@openzeppelin/contracts/governance/TimelockController.sol";

/// @title NetworkTimelock
/// @notice Holds the network's admin and pauser roles on OracleQuorum, CreditRegistry and
/// ClearingHouse, so that changing the signer set or threshold, granting a role, resolving a
/// dispute or pausing is announced on-chain (`CallScheduled`) at least `minDelay` seconds
/// before it can run (`CallExecuted`). Proposers (the lender's governance accounts) schedule;
/// cancellers (the funding partners' and auditors' accounts) can cancel any operation they
/// object to during the delay, without being able to schedule one, so no single key, the
/// lender's included, decides alone. (OpenZeppelin makes every proposer a canceller too.)
/// @dev OpenZeppelin's TimelockController unchanged; it administers itself (no admin account),
/// so a change of its own delay or roles goes through the same delay. Deploy with the
/// configured proposers and executors; the deployment then hands the admin roles of the other
/// contracts to this contract and the deployer renounces its own.
contract NetworkTimelock is TimelockController {
    /// @param minDelay The minimum delay of every operation, in seconds.
    /// @param proposers Accounts that may schedule (and cancel) operations.
    /// @param executors Accounts that may execute ready operations (address(0): anyone).
    /// @param cancellers Accounts that may only cancel operations (partners, auditors).
    constructor(
        uint256 minDelay,
        address[] memory proposers,
        address[] memory executors,
        address[] memory cancellers
    ) TimelockController(minDelay, proposers, executors, address(0)) {
        for (uint256 i = 0; i < cancellers.length; ++i) {
            _grantRole(CANCELLER_ROLE, cancellers[i]);
        }
    }
}
