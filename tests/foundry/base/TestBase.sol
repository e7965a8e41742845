// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {CONSOLE_ADDRESS, HEVM_ADDRESS, Vm} from "./Vm.sol";

/// @title TestBase
/// @notice A minimal stand-in for forge-std's `Test` + `StdInvariant`: the cheatcode handle,
/// the target lists Foundry's invariant runner reads, assertion helpers that revert (a reverting
/// test or invariant is a failure in forge 1.x), `_bound` and a console log for `-vv`.
/// @dev The invariant runner calls `targetContracts()` and `targetSelectors()` on the test
/// contract when they exist (by name, so the ABI must match forge-std's). Contracts not listed
/// are never called by the fuzzer; with selectors listed only those functions are.
abstract contract TestBase {
    /// @dev The same struct forge-std declares in `StdInvariant` (the runner decodes it).
    struct FuzzSelector {
        address addr;
        bytes4[] selectors;
    }

    /// @notice An `assertTrue` failed.
    error AssertionFailed(string what);
    /// @notice An `assertEq` on unsigned integers failed.
    error AssertEqUintFailed(string what, uint256 left, uint256 right);
    /// @notice An `assertEq` on signed integers failed.
    error AssertEqIntFailed(string what, int256 left, int256 right);
    /// @notice An `assertEq` on addresses failed.
    error AssertEqAddressFailed(string what, address left, address right);

    Vm internal constant vm = Vm(HEVM_ADDRESS);

    address[] private _targetedContracts;
    FuzzSelector[] private _targetedSelectors;

    /// @notice Contracts the invariant fuzzer calls (read by forge).
    function targetContracts() public view returns (address[] memory) {
        return _targetedContracts;
    }

    /// @notice Functions the invariant fuzzer calls, per contract (read by forge).
    function targetSelectors() public view returns (FuzzSelector[] memory) {
        return _targetedSelectors;
    }

    function targetContract(address target) internal {
        _targetedContracts.push(target);
    }

    function targetSelector(FuzzSelector memory selector) internal {
        _targetedSelectors.push(selector);
    }

    function assertTrue(bool condition, string memory what) internal pure {
        if (!condition) revert AssertionFailed(what);
    }

    function assertEq(uint256 left, uint256 right, string memory what) internal pure {
        if (left != right) revert AssertEqUintFailed(what, left, right);
    }

    function assertEq(int256 left, int256 right, string memory what) internal pure {
        if (left != right) revert AssertEqIntFailed(what, left, right);
    }

    function assertEq(address left, address right, string memory what) internal pure {
        if (left != right) revert AssertEqAddressFailed(what, left, right);
    }

    /// @dev `x` mapped into [min, max] (uniform enough for fuzzing).
    function _bound(uint256 x, uint256 min, uint256 max) internal pure returns (uint256) {
        return min + (x % (max - min + 1));
    }

    /// @dev Prints `label value` under `forge test -vv` (does nothing on a real chain).
    function _log(string memory label, uint256 value) internal view {
        (bool ok,) =
            CONSOLE_ADDRESS.staticcall(abi.encodeWithSignature("log(string,uint256)", label, value));
        ok; // the console never fails; a real chain has no code there
    }
}
