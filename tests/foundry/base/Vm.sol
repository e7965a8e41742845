// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title Vm
/// @notice The few Foundry cheatcodes these tests use, called at the HEVM address.
/// @dev We do not use forge-std: its npm package (1.1.2) predates invariant targeting and
/// `StdInvariant`. Signatures are Foundry's own (forge 1.7.1); add one here when a test needs it.
interface Vm {
    /// Sets `msg.sender` of the next call made by the calling contract.
    function prank(address sender) external;

    /// Sets `msg.sender` of every call until `stopPrank`.
    function startPrank(address sender) external;

    /// Ends a `startPrank`.
    function stopPrank() external;

    /// Sets `block.timestamp`. Not journaled: a revert does not undo it.
    function warp(uint256 timestamp) external;

    /// The next call must revert with exactly this data (an encoded custom error).
    function expectRevert(bytes calldata revertData) external;

    /// The next call must revert with exactly this 4-byte data (an argument-less custom error).
    function expectRevert(bytes4 revertData) external;

    /// The next call must revert with this custom error selector, whatever its arguments.
    function expectPartialRevert(bytes4 selector) external;

    /// The address of a private key.
    function addr(uint256 privateKey) external pure returns (address);

    /// Signs a 32-byte digest with a private key (low-s, v = 27 or 28).
    function sign(uint256 privateKey, bytes32 digest)
        external
        pure
        returns (uint8 v, bytes32 r, bytes32 s);

    /// Names an address in traces.
    function label(address account, string calldata newLabel) external;

    /// Sets an environment variable of the forge process (outlives an invariant run).
    function setEnv(string calldata name, string calldata value) external;

    /// Reads an environment variable as a uint256, or `defaultValue` when it is unset.
    function envOr(string calldata name, uint256 defaultValue) external view returns (uint256);
}

/// @dev keccak256("hevm cheat code") truncated to 20 bytes: where Foundry serves its cheatcodes.
address constant HEVM_ADDRESS = 0x7109709ECfa91a80626fF3989D68f67F5b1DD12D;

/// @dev The console that `forge test -vv` prints from (hardhat's console.log address).
address constant CONSOLE_ADDRESS = 0x000000000000000000636F6e736F6c652e6c6f67;
