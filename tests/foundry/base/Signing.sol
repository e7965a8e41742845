// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {HEVM_ADDRESS, Vm} from "./Vm.sol";

/// @title Signing
/// @notice Quorum signatures as OracleQuorum wants them: 65-byte (r, s, v) ECDSA signatures
/// over the EIP-712 digest, sorted by strictly ascending signer address.
library Signing {
    Vm private constant vm = Vm(HEVM_ADDRESS);

    /// @dev Signs `digest` with every key in `keys`, sorted by signer address.
    function signSorted(bytes32 digest, uint256[] memory keys)
        internal
        pure
        returns (bytes[] memory signatures)
    {
        uint256[] memory sorted = sortByAddress(keys);
        signatures = new bytes[](sorted.length);
        for (uint256 i = 0; i < sorted.length; ++i) {
            (uint8 v, bytes32 r, bytes32 s) = vm.sign(sorted[i], digest);
            signatures[i] = abi.encodePacked(r, s, v);
        }
    }

    /// @dev A copy of `keys` sorted by the address of each key (insertion sort: a handful).
    function sortByAddress(uint256[] memory keys) internal pure returns (uint256[] memory sorted) {
        sorted = new uint256[](keys.length);
        for (uint256 i = 0; i < keys.length; ++i) {
            uint256 key = keys[i];
            address keyAddress = vm.addr(key);
            uint256 j = i;
            while (j > 0 && vm.addr(sorted[j - 1]) > keyAddress) {
                sorted[j] = sorted[j - 1];
                --j;
            }
            sorted[j] = key;
        }
    }

    /// @dev The addresses of `keys`, in the same order.
    function addresses(uint256[] memory keys) internal pure returns (address[] memory out) {
        out = new address[](keys.length);
        for (uint256 i = 0; i < keys.length; ++i) {
            out[i] = vm.addr(keys[i]);
        }
    }
}
