// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";

import {ICreditRegistry} from "./interfaces/ICreditRegistry.sol";
import {IOracleQuorum} from "./interfaces/IOracleQuorum.sol";

/// @title CreditRegistry
/// @notice Credit agreements and per-cycle credit-line state of the lender; see ICreditRegistry.
/// @dev Roles: DEFAULT_ADMIN_ROLE grants roles; RELAYER_ROLE writes agreements; line states
/// need an oracle-quorum report (no role can commit one alone); PAUSER_ROLE pauses every write. Storage per agreement: one packed record slot and
/// one commitment slot (every fresh slot costs about 22k gas); the remaining fields live in the
/// `AgreementOpened` event and stay verifiable through the commitment.
contract CreditRegistry is ICreditRegistry, AccessControl, Pausable, EIP712 {
    /// @notice Role of the lender node's relayer, allowed to write agreements.
    bytes32 public constant RELAYER_ROLE = keccak256("RELAYER_ROLE");
    /// @notice Role allowed to pause and unpause.
    bytes32 public constant PAUSER_ROLE = keccak256("PAUSER_ROLE");
    /// @notice EIP-712 type hash of the quorum-signed line-state report.
    bytes32 public constant LINE_STATE_REPORT_TYPEHASH = keccak256(
        "LineStateReport(uint64 cycleId,bytes32 root,uint64 count,uint256 totalOutstandingFen)"
    );

    uint8 private constant _ACTIVE = 1;
    uint8 private constant _FROZEN = 2;
    uint8 private constant _CLOSED = 3;
    uint8 private constant _DEFAULTED = 4;
    uint8 private constant _CHARGED_OFF = 5;

    // Bit (8 * from + to) is set when `from -> to` is legal. Every status value is below 8, so
    // the bits of different `from` values never overlap.
    uint256 private constant _LEGAL_TRANSITIONS = (uint256(1) << (8 * _ACTIVE + _FROZEN))
        | (uint256(1) << (8 * _FROZEN + _ACTIVE)) | (uint256(1) << (8 * _ACTIVE + _CLOSED))
        | (uint256(1) << (8 * _FROZEN + _CLOSED)) | (uint256(1) << (8 * _ACTIVE + _DEFAULTED))
        | (uint256(1) << (8 * _FROZEN + _DEFAULTED))
        | (uint256(1) << (8 * _DEFAULTED + _CHARGED_OFF))
        | (uint256(1) << (8 * _DEFAULTED + _ACTIVE))
        | (uint256(1) << (8 * _CHARGED_OFF + _CLOSED));

    struct LineState {
        bytes32 root;
        uint64 count;
        uint192 totalOutstandingFen;
    }

    IOracleQuorum private immutable _quorum;

    mapping(bytes32 agreementId => AgreementRecord) private _records;
    mapping(bytes32 agreementId => bytes32 commitment) private _commitments;
    mapping(uint64 cycleId => LineState) private _lineStates;

    /// @notice Deploys an empty registry.
    /// @param admin Receives DEFAULT_ADMIN_ROLE (non-zero).
    /// @param quorum The OracleQuorum accepted by `commitLineStateWithReport` (non-zero).
    constructor(address admin, address quorum) EIP712("CreditNet CreditRegistry", "1") {
        if (admin == address(0)) revert ZeroAddressArgument(0);
        if (quorum == address(0)) revert ZeroAddressArgument(1);
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _quorum = IOracleQuorum(quorum);
    }

    /// @inheritdoc ICreditRegistry
    function openAgreements(AgreementInput[] calldata items)
        external
        onlyRole(RELAYER_ROLE)
        whenNotPaused
    {
        uint256 count = items.length;
        if (count == 0) revert EmptyBatch();
        for (uint256 i = 0; i < count; ++i) {
            _open(i, items[i]);
        }
    }

    /// @inheritdoc ICreditRegistry
    function amendLimit(bytes32 agreementId, uint64 newLimitFen, uint16 reasonCode)
        external
        onlyRole(RELAYER_ROLE)
        whenNotPaused
    {
        _amendLimit(agreementId, newLimitFen, reasonCode);
    }

    /// @inheritdoc ICreditRegistry
    function amendLimits(LimitAmendment[] calldata amendments)
        external
        onlyRole(RELAYER_ROLE)
        whenNotPaused
    {
        uint256 count = amendments.length;
        if (count == 0) revert EmptyBatch();
        for (uint256 i = 0; i < count; ++i) {
            LimitAmendment calldata item = amendments[i];
            _amendLimit(item.agreementId, item.newLimitFen, item.reasonCode);
        }
    }

    /// @inheritdoc ICreditRegistry
    function setStatus(bytes32 agreementId, uint8 newStatus, uint16 reasonCode)
        external
        onlyRole(RELAYER_ROLE)
        whenNotPaused
    {
        _setStatus(agreementId, newStatus, reasonCode);
    }

    /// @inheritdoc ICreditRegistry
    function setStatuses(StatusChange[] calldata changes)
        external
        onlyRole(RELAYER_ROLE)
        whenNotPaused
    {
        uint256 count = changes.length;
        if (count == 0) revert EmptyBatch();
        for (uint256 i = 0; i < count; ++i) {
            StatusChange calldata item = changes[i];
            _setStatus(item.agreementId, item.newStatus, item.reasonCode);
        }
    }

    /// @inheritdoc ICreditRegistry
    function commitLineStateWithReport(
        uint64 cycleId,
        bytes32 root,
        uint64 count,
        uint256 totalOutstandingFen,
        bytes[] calldata signatures
    ) external whenNotPaused {
        bytes32 digest = lineStateReportDigest(cycleId, root, count, totalOutstandingFen);
        // The quorum is the trusted contract fixed at deployment; it reverts unless the
        // signatures are a quorum, and records the report so it cannot be replayed.
        _quorum.consumeReport(digest, digest, signatures);
        _commitLineState(cycleId, root, count, totalOutstandingFen);
    }

    /// @notice Pauses every write.
    /// @dev Only PAUSER_ROLE.
    function pause() external onlyRole(PAUSER_ROLE) {
        _pause();
    }

    /// @notice Lifts a pause.
    /// @dev Only PAUSER_ROLE.
    function unpause() external onlyRole(PAUSER_ROLE) {
        _unpause();
    }

    /// @inheritdoc ICreditRegistry
    function getAgreement(bytes32 agreementId)
        external
        view
        returns (AgreementRecord memory record, bytes32 commitment)
    {
        return (_records[agreementId], _commitments[agreementId]);
    }

    /// @inheritdoc ICreditRegistry
    function computeCommitment(AgreementInput calldata input) public pure returns (bytes32) {
        // A static struct ABI-encodes exactly as its fields in order.
        return keccak256(abi.encode(input));
    }

    /// @inheritdoc ICreditRegistry
    function getLineState(uint64 cycleId)
        external
        view
        returns (bytes32 root, uint64 count, uint256 totalOutstandingFen)
    {
        LineState storage state = _lineStates[cycleId];
        return (state.root, state.count, state.totalOutstandingFen);
    }

    /// @inheritdoc ICreditRegistry
    function verifyLineBalance(
        bytes32 agreementId,
        uint64 cycleId,
        uint256 outstandingFen,
        bytes32[] calldata proof
    ) external view returns (bool) {
        bytes32 root = _lineStates[cycleId].root;
        if (root == bytes32(0)) return false;
        bytes32 leaf =
            keccak256(bytes.concat(keccak256(abi.encode(agreementId, cycleId, outstandingFen))));
        return MerkleProof.verifyCalldata(proof, root, leaf);
    }

    /// @inheritdoc ICreditRegistry
    function lineStateReportDigest(
        uint64 cycleId,
        bytes32 root,
        uint64 count,
        uint256 totalOutstandingFen
    ) public view returns (bytes32) {
        return _hashTypedDataV4(
            keccak256(
                abi.encode(LINE_STATE_REPORT_TYPEHASH, cycleId, root, count, totalOutstandingFen)
            )
        );
    }

    /// @notice The OracleQuorum accepted by `commitLineStateWithReport`.
    /// @return The quorum address.
    function oracleQuorum() external view returns (address) {
        return address(_quorum);
    }

    /// @dev Validates and stores one agreement (record + commitment) and emits its event.
    function _open(uint256 index, AgreementInput calldata item) private {
        bytes32 agreementId = item.agreementId;
        if (agreementId == bytes32(0) || item.borrowerRef == bytes32(0) || item.openedAt == 0) {
            revert InvalidAgreementInput(index, agreementId);
        }
        bytes32 stored = _commitments[agreementId];
        if (stored != bytes32(0)) revert AgreementExists(agreementId, stored);
        bytes32 commitment = computeCommitment(item);
        _commitments[agreementId] = commitment;
        _records[agreementId] = AgreementRecord({
            status: _ACTIVE,
            limitFen: item.limitFen,
            aprBps: item.aprBps,
            productCode: item.productCode,
            openedAt: item.openedAt,
            lastReasonCode: 0,
            changeCount: 0
        });
        emit AgreementOpened(
            agreementId,
            item.borrowerRef,
            item.termsHash,
            item.productCode,
            item.limitFen,
            item.aprBps,
            item.openedAt,
            commitment
        );
    }

    /// @dev Changes the limit of an Active, Frozen or Defaulted agreement.
    function _amendLimit(bytes32 agreementId, uint64 newLimitFen, uint16 reasonCode) private {
        AgreementRecord storage record = _records[agreementId];
        uint8 status = record.status;
        if (status == 0) revert AgreementNotFound(agreementId);
        if (status == _CLOSED || status == _CHARGED_OFF) {
            revert AgreementNotAmendable(agreementId, status);
        }
        uint64 oldLimitFen = record.limitFen;
        if (oldLimitFen == newLimitFen) revert LimitUnchanged(agreementId, newLimitFen);
        record.limitFen = newLimitFen;
        record.lastReasonCode = reasonCode;
        record.changeCount += 1;
        emit AgreementLimitAmended(agreementId, oldLimitFen, newLimitFen, reasonCode);
    }

    /// @dev Moves an agreement along a legal transition.
    function _setStatus(bytes32 agreementId, uint8 newStatus, uint16 reasonCode) private {
        AgreementRecord storage record = _records[agreementId];
        uint8 status = record.status;
        if (status == 0) revert AgreementNotFound(agreementId);
        if (!_isLegalTransition(status, newStatus)) revert IllegalTransition(status, newStatus);
        record.status = newStatus;
        record.lastReasonCode = reasonCode;
        record.changeCount += 1;
        emit AgreementStatusChanged(agreementId, status, newStatus, reasonCode);
    }

    /// @dev Stores a cycle's line state once.
    function _commitLineState(
        uint64 cycleId,
        bytes32 root,
        uint64 count,
        uint256 totalOutstandingFen
    ) private {
        if (root == bytes32(0)) revert ZeroLineStateRoot(cycleId);
        LineState storage state = _lineStates[cycleId];
        bytes32 existing = state.root;
        if (existing != bytes32(0)) revert LineStateAlreadyCommitted(cycleId, existing);
        state.root = root;
        state.count = count;
        state.totalOutstandingFen = SafeCast.toUint192(totalOutstandingFen);
        emit LineStateCommitted(cycleId, root, count, totalOutstandingFen, msg.sender);
    }

    /// @dev Whether `from -> to` is one of the legal status transitions.
    function _isLegalTransition(uint8 from, uint8 to) private pure returns (bool) {
        if (to > _CHARGED_OFF) return false;
        return (_LEGAL_TRANSITIONS >> (8 * uint256(from) + to)) & 1 == 1;
    }
}
