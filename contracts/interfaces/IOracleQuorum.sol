// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title IOracleQuorum
/// @notice An M-of-N set of oracle signers that attests reports (EIP-712 digests) on behalf of
/// consumer contracts. The quorum never builds digests itself: each consumer (for example the
/// ClearingHouse) hashes its own typed struct under its own EIP-712 domain, which binds the
/// signature to one chain id and one verifying contract, and passes the digest here.
/// @dev Signatures are 65-byte ECDSA signatures (r, s, v) over the digest, with low `s`
/// (OpenZeppelin `ECDSA`). A signature list is valid when it is sorted by strictly ascending
/// recovered signer address (which also rules out duplicates), every signer belongs to the
/// current signer set, and there are at least `threshold()` of them. Sorting costs the submitter
/// nothing and lets the contract reject duplicates without a memory set.
interface IOracleQuorum {
    /// @notice Emitted when the admin installs a new signer set (also once by the constructor).
    /// @param version The new signer-set version, starting at 1 and incremented on every change.
    /// @param signers The complete new signer set, in the order given by the admin.
    /// @param threshold The number of distinct signer signatures a report now needs.
    event SignerSetChanged(uint64 version, address[] signers, uint256 threshold);

    /// @notice Emitted when a consumer contract consumes (uses up) a quorum-signed report.
    /// @param consumer The consumer contract that consumed the report.
    /// @param reportId The consumer-chosen report id, now unusable by that consumer.
    /// @param digest The EIP-712 digest the signers signed.
    /// @param signerSetVersion The signer-set version that validated the signatures.
    event ReportConsumed(
        address indexed consumer, bytes32 indexed reportId, bytes32 digest, uint64 signerSetVersion
    );

    /// @notice The constructor's admin is the zero address.
    error ZeroAdmin();

    /// @notice The threshold is zero or larger than the number of signers.
    /// @param threshold The rejected threshold.
    /// @param signerCount The number of signers it was given with.
    error InvalidThreshold(uint256 threshold, uint256 signerCount);

    /// @notice A proposed signer is the zero address.
    /// @param index Position of the zero address in the proposed list.
    error ZeroSigner(uint256 index);

    /// @notice A proposed signer appears twice in the proposed list.
    /// @param signer The duplicated address.
    error DuplicateSigner(address signer);

    /// @notice A signature could not be decoded or recovered (wrong length, high `s`, bad `v`).
    /// @param index Position of the signature in the list.
    error MalformedSignature(uint256 index);

    /// @notice A signature recovered to an address that is not in the current signer set.
    /// @param index Position of the signature in the list.
    /// @param recovered The address the signature recovered to.
    error UnknownSigner(uint256 index, address recovered);

    /// @notice Signatures are not sorted by strictly ascending signer address (a duplicate
    /// signer also lands here, since equal is not ascending).
    /// @param index Position of the offending signature in the list.
    /// @param signer The signer recovered at `index`.
    /// @param previous The signer recovered at `index - 1`.
    error SignersNotAscending(uint256 index, address signer, address previous);

    /// @notice Fewer valid signatures than the threshold.
    /// @param signatureCount Number of signatures supplied (all of them valid).
    /// @param threshold The current threshold.
    error QuorumNotReached(uint256 signatureCount, uint256 threshold);

    /// @notice The calling consumer already consumed this report id.
    /// @param consumer The consumer contract.
    /// @param reportId The report id it tried to use again.
    error ReportAlreadyConsumed(address consumer, bytes32 reportId);

    /// @notice Checks that `signatures` are a quorum of the current signer set over `digest`.
    /// @dev Read-only; anyone may call it. Reverts with the first failing check instead of
    /// returning false, so callers learn why (`MalformedSignature`, `UnknownSigner`,
    /// `SignersNotAscending`, `QuorumNotReached`).
    /// @param digest The 32-byte EIP-712 digest the signers signed.
    /// @param signatures 65-byte signatures sorted by ascending signer address.
    /// @return valid Always true (failures revert).
    function verifyReport(bytes32 digest, bytes[] calldata signatures)
        external
        view
        returns (bool valid);

    /// @notice Verifies a quorum report and marks `reportId` used for the calling consumer, so
    /// the same report cannot be replayed through that consumer.
    /// @dev Only accounts holding CONSUMER_ROLE (consumer contracts); reverts while paused.
    /// Report ids are namespaced by consumer: two consumers never block each other.
    /// @param reportId Consumer-chosen unique id of the report (the ClearingHouse uses the digest).
    /// @param digest The 32-byte EIP-712 digest the signers signed.
    /// @param signatures 65-byte signatures sorted by ascending signer address.
    function consumeReport(bytes32 reportId, bytes32 digest, bytes[] calldata signatures) external;

    /// @notice Replaces the whole signer set and threshold, and bumps the signer-set version.
    /// @dev Only DEFAULT_ADMIN_ROLE; reverts while paused. Reports signed by removed signers stop
    /// verifying immediately.
    /// @param newSigners The new signer addresses: non-zero, no duplicates, any order.
    /// @param newThreshold Signatures required from now on: 1 <= newThreshold <= newSigners.length.
    function setSigners(address[] calldata newSigners, uint256 newThreshold) external;

    /// @notice The current signer set, in the order the admin gave it.
    /// @return The signer addresses.
    function signers() external view returns (address[] memory);

    /// @notice The number of distinct signer signatures a report needs.
    /// @return The current threshold (a count of signatures).
    function threshold() external view returns (uint256);

    /// @notice The version of the current signer set (1 after deployment, +1 per change).
    /// @return The signer-set version.
    function signerSetVersion() external view returns (uint64);

    /// @notice Whether `signer` belongs to the current signer set.
    /// @param signer The address to check.
    /// @return True when `signer` may sign reports now.
    function isSigner(address signer) external view returns (bool);

    /// @notice Whether `consumer` already consumed `reportId`.
    /// @param consumer The consumer contract.
    /// @param reportId The report id.
    /// @return True when the report id is used up for that consumer.
    function isReportConsumed(address consumer, bytes32 reportId) external view returns (bool);
}
