// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title ICreditRegistry
/// @notice The on-chain anchor of a lender's credit agreements and of its credit-line state per
/// settlement cycle. No personal data: a borrower appears only as `borrowerRef`
/// (HMAC-SHA256 of the customer id under the node's secret) and the terms only as `termsHash`
/// (keccak256 of the canonical terms JSON).
/// @dev Who may write: accounts holding RELAYER_ROLE (the lender node's relayer) for every
/// agreement write. Agreements are high volume and the lender's books are their source of
/// truth; the chain makes them tamper-evident (each agreement keeps a commitment hash of its
/// opening fields, every change is an event) rather than second-guessing them. A cycle's
/// line-state commitment needs an oracle-quorum report (`commitLineStateWithReport`, submitted
/// by anyone), so partners need not trust the relayer for it: no role can commit one alone.
/// Every state-changing function reverts while the contract is paused.
///
/// Units: amounts in fen (CNY minor unit, 1/100 yuan), rates in basis points (1/10,000) per
/// year, times in unix seconds, cycle ids as the books' business date `yyyymmdd`.
///
/// Status values (`uint8`): 0 None (unknown id), 1 Active, 2 Frozen, 3 Closed, 4 Defaulted,
/// 5 ChargedOff. Legal transitions: Active<->Frozen; Active/Frozen->Closed;
/// Active/Frozen->Defaulted; Defaulted->ChargedOff; Defaulted->Active (cured);
/// ChargedOff->Closed (the debt was sold, or recovered in full). Closed is terminal.
interface ICreditRegistry {
    /// @notice One agreement to open.
    /// @param agreementId The books' unique agreement id (non-zero).
    /// @param borrowerRef HMAC-SHA256(node secret, customer id) (non-zero); never PII.
    /// @param termsHash keccak256 of the canonical terms JSON.
    /// @param productCode The product's code in the lender's product factory.
    /// @param limitFen The credit limit, in fen.
    /// @param aprBps The annual percentage rate, in basis points.
    /// @param openedAt Unix seconds (UTC midnight) of the business date the agreement opened (non-zero).
    struct AgreementInput {
        bytes32 agreementId;
        bytes32 borrowerRef;
        bytes32 termsHash;
        uint32 productCode;
        uint64 limitFen;
        uint32 aprBps;
        uint64 openedAt;
    }

    /// @notice The stored record of an agreement (one storage slot).
    /// @param status Current status (see the status values above).
    /// @param limitFen Current credit limit, in fen.
    /// @param aprBps Annual percentage rate, in basis points.
    /// @param productCode Product code.
    /// @param openedAt Unix seconds of the opening business date.
    /// @param lastReasonCode Reason code of the last limit or status change (0 after opening).
    /// @param changeCount Number of limit and status changes since opening.
    struct AgreementRecord {
        uint8 status;
        uint64 limitFen;
        uint32 aprBps;
        uint32 productCode;
        uint64 openedAt;
        uint16 lastReasonCode;
        uint32 changeCount;
    }

    /// @notice One status change in a batch.
    /// @param agreementId The agreement.
    /// @param newStatus The target status value.
    /// @param reasonCode The books' reason code for the change.
    struct StatusChange {
        bytes32 agreementId;
        uint8 newStatus;
        uint16 reasonCode;
    }

    /// @notice One limit amendment in a batch.
    /// @param agreementId The agreement.
    /// @param newLimitFen The new credit limit, in fen.
    /// @param reasonCode The books' reason code for the change.
    struct LimitAmendment {
        bytes32 agreementId;
        uint64 newLimitFen;
        uint16 reasonCode;
    }

    /// @notice Emitted for each opened agreement, with every field (the chain stores only the
    /// packed record and the commitment).
    /// @param agreementId The agreement id.
    /// @param borrowerRef The borrower's HMAC reference.
    /// @param termsHash keccak256 of the canonical terms JSON.
    /// @param productCode Product code.
    /// @param limitFen Credit limit, in fen.
    /// @param aprBps APR, in basis points.
    /// @param openedAt Unix seconds of the opening business date.
    /// @param commitment `computeCommitment` of these fields.
    event AgreementOpened(
        bytes32 indexed agreementId,
        bytes32 indexed borrowerRef,
        bytes32 termsHash,
        uint32 productCode,
        uint64 limitFen,
        uint32 aprBps,
        uint64 openedAt,
        bytes32 commitment
    );

    /// @notice Emitted when an agreement's credit limit changes.
    /// @param agreementId The agreement.
    /// @param oldLimitFen The previous limit, in fen.
    /// @param newLimitFen The new limit, in fen.
    /// @param reasonCode The books' reason code.
    event AgreementLimitAmended(
        bytes32 indexed agreementId, uint64 oldLimitFen, uint64 newLimitFen, uint16 reasonCode
    );

    /// @notice Emitted when an agreement's status changes.
    /// @param agreementId The agreement.
    /// @param fromStatus The previous status value.
    /// @param toStatus The new status value.
    /// @param reasonCode The books' reason code.
    event AgreementStatusChanged(
        bytes32 indexed agreementId, uint8 fromStatus, uint8 toStatus, uint16 reasonCode
    );

    /// @notice Emitted when the credit-line state of a cycle is committed.
    /// @param cycleId The cycle (business date `yyyymmdd`).
    /// @param root Merkle root (StandardMerkleTree) of the cycle's balance leaves.
    /// @param count Number of leaves (agreements) under the root.
    /// @param totalOutstandingFen Sum of all leaves' outstanding balances, in fen.
    /// @param submitter The relayer, or the account that submitted a quorum report.
    event LineStateCommitted(
        uint64 indexed cycleId,
        bytes32 root,
        uint64 count,
        uint256 totalOutstandingFen,
        address submitter
    );

    /// @notice The batch is empty.
    error EmptyBatch();

    /// @notice An agreement id, borrower reference or opening time is zero.
    /// @param index Position of the item in the batch.
    /// @param agreementId The item's agreement id (may be zero).
    error InvalidAgreementInput(uint256 index, bytes32 agreementId);

    /// @notice The agreement id is already open. Compare `storedCommitment` with
    /// `computeCommitment(input)`: equal means the same agreement landed before (a retry),
    /// different means a conflicting agreement under the same id.
    /// @param agreementId The agreement id.
    /// @param storedCommitment The commitment stored for it.
    error AgreementExists(bytes32 agreementId, bytes32 storedCommitment);

    /// @notice No agreement with this id.
    /// @param agreementId The unknown id.
    error AgreementNotFound(bytes32 agreementId);

    /// @notice The status change is not one of the legal transitions (also for a same-status
    /// change and for an unknown target value).
    /// @param from The current status value.
    /// @param to The requested status value.
    error IllegalTransition(uint8 from, uint8 to);

    /// @notice The limit cannot change in the agreement's status (Closed or ChargedOff).
    /// @param agreementId The agreement.
    /// @param status Its current status value.
    error AgreementNotAmendable(bytes32 agreementId, uint8 status);

    /// @notice The new limit equals the current one.
    /// @param agreementId The agreement.
    /// @param limitFen The unchanged limit, in fen.
    error LimitUnchanged(bytes32 agreementId, uint64 limitFen);

    /// @notice This cycle's line state was already committed.
    /// @param cycleId The cycle.
    /// @param root The root committed for it.
    error LineStateAlreadyCommitted(uint64 cycleId, bytes32 root);

    /// @notice A line-state root is zero.
    /// @param cycleId The cycle.
    error ZeroLineStateRoot(uint64 cycleId);

    /// @notice A constructor address argument is zero.
    /// @param argumentIndex 0 for `admin`, 1 for `quorum`.
    error ZeroAddressArgument(uint256 argumentIndex);

    /// @notice Opens a batch of agreements, each Active, storing one packed record and one
    /// commitment per agreement and emitting `AgreementOpened` with every field.
    /// @dev Only RELAYER_ROLE; reverts while paused. Atomic: one invalid or existing item
    /// reverts the whole batch (`InvalidAgreementInput`, `AgreementExists`).
    /// About 53k gas per agreement in a batch of 100 (two fresh slots, the event, calldata).
    /// @param items The agreements to open (at least one).
    function openAgreements(AgreementInput[] calldata items) external;

    /// @notice Changes an agreement's credit limit.
    /// @dev Only RELAYER_ROLE; reverts while paused. Allowed in Active, Frozen and Defaulted.
    /// @param agreementId The agreement.
    /// @param newLimitFen The new limit, in fen (must differ from the current limit).
    /// @param reasonCode The books' reason code.
    function amendLimit(bytes32 agreementId, uint64 newLimitFen, uint16 reasonCode) external;

    /// @notice Batch form of `amendLimit`; atomic.
    /// @dev Only RELAYER_ROLE; reverts while paused.
    /// @param amendments The amendments (at least one).
    function amendLimits(LimitAmendment[] calldata amendments) external;

    /// @notice Moves an agreement to `newStatus` if the transition is legal.
    /// @dev Only RELAYER_ROLE; reverts while paused; `IllegalTransition(from, to)` otherwise.
    /// @param agreementId The agreement.
    /// @param newStatus The target status value.
    /// @param reasonCode The books' reason code.
    function setStatus(bytes32 agreementId, uint8 newStatus, uint16 reasonCode) external;

    /// @notice Batch form of `setStatus`; atomic.
    /// @dev Only RELAYER_ROLE; reverts while paused.
    /// @param changes The status changes (at least one), applied in order.
    function setStatuses(StatusChange[] calldata changes) external;

    /// @notice Commits the lender's credit-line state at the end of a cycle: a StandardMerkleTree
    /// root over leaves `abi.encode(bytes32 agreementId, uint64 cycleId, uint256 outstandingFen)`,
    /// authorized by an oracle-quorum report only (no role may commit one alone): anyone may
    /// submit it. Each cycle once (`LineStateAlreadyCommitted`); `count` is the number of leaves
    /// and `totalOutstandingFen` their sum, in fen (< 2**192).
    /// @dev Reverts while paused. The signers sign the EIP-712 struct
    /// `LineStateReport(uint64 cycleId,bytes32 root,uint64 count,uint256 totalOutstandingFen)`
    /// under the domain ("CreditNet CreditRegistry", "1", chain id, this contract). Needs
    /// CONSUMER_ROLE for this contract on the quorum.
    /// @param cycleId The cycle (business date `yyyymmdd`).
    /// @param root The Merkle root (non-zero).
    /// @param count Number of leaves.
    /// @param totalOutstandingFen Sum of the leaves' outstanding balances, in fen (< 2**192).
    /// @param signatures Signer signatures over the digest, sorted by ascending signer address.
    function commitLineStateWithReport(
        uint64 cycleId, bytes32 root, uint64 count, uint256 totalOutstandingFen,
        bytes[] calldata signatures
    ) external;

    /// @notice The stored record and opening commitment of an agreement.
    /// @param agreementId The agreement.
    /// @return record The packed record (status 0 when the id is unknown).
    /// @return commitment The opening commitment (zero when the id is unknown).
    function getAgreement(bytes32 agreementId)
        external
        view
        returns (AgreementRecord memory record, bytes32 commitment);

    /// @notice The commitment of an agreement's opening fields:
    /// `keccak256(abi.encode(agreementId, borrowerRef, termsHash, productCode, limitFen, aprBps, openedAt))`.
    /// It binds the opening input; later amendments live in the record and in events.
    /// @param input The opening fields.
    /// @return The commitment hash.
    function computeCommitment(AgreementInput calldata input) external pure returns (bytes32);

    /// @notice The committed line state of a cycle (all zero when not committed).
    /// @param cycleId The cycle.
    /// @return root The Merkle root.
    /// @return count Number of leaves.
    /// @return totalOutstandingFen Sum of outstanding balances, in fen.
    function getLineState(uint64 cycleId)
        external
        view
        returns (bytes32 root, uint64 count, uint256 totalOutstandingFen);

    /// @notice Proves one agreement's outstanding balance at the end of a cycle against the
    /// committed root (leaf = keccak256(keccak256(abi.encode(agreementId, cycleId, outstandingFen)))).
    /// @param agreementId The agreement.
    /// @param cycleId The cycle.
    /// @param outstandingFen The claimed outstanding balance, in fen.
    /// @param proof The StandardMerkleTree proof (sibling hashes, leaf to root).
    /// @return True when the cycle is committed and the proof verifies.
    function verifyLineBalance(
        bytes32 agreementId,
        uint64 cycleId,
        uint256 outstandingFen,
        bytes32[] calldata proof
    ) external view returns (bool);

    /// @notice The EIP-712 digest the signers sign for `commitLineStateWithReport`.
    /// @param cycleId The cycle.
    /// @param root The Merkle root.
    /// @param count Number of leaves.
    /// @param totalOutstandingFen Sum of outstanding balances, in fen.
    /// @return The digest bound to this chain and this contract.
    function lineStateReportDigest(
        uint64 cycleId,
        bytes32 root,
        uint64 count,
        uint256 totalOutstandingFen
    ) external view returns (bytes32);
}
