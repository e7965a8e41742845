// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";

import {IOracleQuorum} from "./interfaces/IOracleQuorum.sol";

/// @title OracleQuorum
/// @notice The M-of-N oracle signer set of the credit network; see IOracleQuorum.
/// @dev Roles: DEFAULT_ADMIN_ROLE changes the signer set and grants roles; CONSUMER_ROLE
/// (consumer contracts) consumes reports; PAUSER_ROLE pauses `consumeReport` and `setSigners`.
contract OracleQuorum is IOracleQuorum, AccessControl, Pausable {
    /// @notice Role of consumer contracts allowed to call `consumeReport`.
    bytes32 public constant CONSUMER_ROLE = keccak256("CONSUMER_ROLE");
    /// @notice Role allowed to pause and unpause.
    bytes32 public constant PAUSER_ROLE = keccak256("PAUSER_ROLE");

    address[] private _signers;
    uint256 private _threshold;
    uint64 private _signerSetVersion;
    // A signer is current when its recorded version equals `_signerSetVersion`, so replacing
    // the set never has to clear the old entries.
    mapping(address signer => uint64 version) private _signerVersion;
    mapping(address consumer => mapping(bytes32 reportId => bool used)) private _consumed;

    /// @notice Deploys the quorum with its first signer set (version 1).
    /// @param admin Receives DEFAULT_ADMIN_ROLE (non-zero).
    /// @param initialSigners The signers: non-zero, no duplicates.
    /// @param initialThreshold Signatures required: 1 <= initialThreshold <= initialSigners.length.
    constructor(address admin, address[] memory initialSigners, uint256 initialThreshold) {
        if (admin == address(0)) revert ZeroAdmin();
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _installSigners(initialSigners, initialThreshold);
    }

    /// @inheritdoc IOracleQuorum
    function verifyReport(bytes32 digest, bytes[] calldata signatures)
        external
        view
        returns (bool)
    {
        _verify(digest, signatures);
        return true;
    }

    /// @inheritdoc IOracleQuorum
    function consumeReport(bytes32 reportId, bytes32 digest, bytes[] calldata signatures)
        external
        onlyRole(CONSUMER_ROLE)
        whenNotPaused
    {
        if (_consumed[msg.sender][reportId]) revert ReportAlreadyConsumed(msg.sender, reportId);
        _verify(digest, signatures);
        _consumed[msg.sender][reportId] = true;
        emit ReportConsumed(msg.sender, reportId, digest, _signerSetVersion);
    }

    /// @inheritdoc IOracleQuorum
    function setSigners(address[] calldata newSigners, uint256 newThreshold)
        external
        onlyRole(DEFAULT_ADMIN_ROLE)
        whenNotPaused
    {
        _installSigners(newSigners, newThreshold);
    }

    /// @notice Pauses `consumeReport` and `setSigners`.
    /// @dev Only PAUSER_ROLE.
    function pause() external onlyRole(PAUSER_ROLE) {
        _pause();
    }

    /// @notice Lifts a pause.
    /// @dev Only PAUSER_ROLE.
    function unpause() external onlyRole(PAUSER_ROLE) {
        _unpause();
    }

    /// @inheritdoc IOracleQuorum
    function signers() external view returns (address[] memory) {
        return _signers;
    }

    /// @inheritdoc IOracleQuorum
    function threshold() external view returns (uint256) {
        return _threshold;
    }

    /// @inheritdoc IOracleQuorum
    function signerSetVersion() external view returns (uint64) {
        return _signerSetVersion;
    }

    /// @inheritdoc IOracleQuorum
    function isSigner(address signer) public view returns (bool) {
        return signer != address(0) && _signerVersion[signer] == _signerSetVersion;
    }

    /// @inheritdoc IOracleQuorum
    function isReportConsumed(address consumer, bytes32 reportId) external view returns (bool) {
        return _consumed[consumer][reportId];
    }

    /// @dev Reverts unless `signatures` are at least `_threshold` valid signatures over
    /// `digest` by current signers, in strictly ascending signer order.
    function _verify(bytes32 digest, bytes[] calldata signatures) private view {
        uint256 count = signatures.length;
        if (count < _threshold) revert QuorumNotReached(count, _threshold);
        address previous = address(0);
        for (uint256 i = 0; i < count; ++i) {
            (address signer, ECDSA.RecoverError err,) = ECDSA.tryRecover(digest, signatures[i]);
            if (err != ECDSA.RecoverError.NoError) revert MalformedSignature(i);
            if (signer <= previous) revert SignersNotAscending(i, signer, previous);
            if (!isSigner(signer)) revert UnknownSigner(i, signer);
            previous = signer;
        }
    }

    /// @dev Validates and installs a signer set under the next version, then emits the event.
    function _installSigners(address[] memory newSigners, uint256 newThreshold) private {
        uint256 count = newSigners.length;
        if (newThreshold == 0 || newThreshold > count) revert InvalidThreshold(newThreshold, count);
        // Versions start at 1, so the zero default of `_signerVersion` never matches; a uint64
        // cannot realistically overflow (one increment per admin transaction).
        uint64 version = _signerSetVersion + 1;
        for (uint256 i = 0; i < count; ++i) {
            address signer = newSigners[i];
            if (signer == address(0)) revert ZeroSigner(i);
            if (_signerVersion[signer] == version) revert DuplicateSigner(signer);
            _signerVersion[signer] = version;
        }
        _signers = newSigners;
        _threshold = newThreshold;
        _signerSetVersion = version;
        emit SignerSetChanged(version, newSigners, newThreshold);
    }
}
