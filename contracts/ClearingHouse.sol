// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";

import {IClearingHouse} from "./interfaces/IClearingHouse.sol";
import {IOracleQuorum} from "./interfaces/IOracleQuorum.sol";

/// @title ClearingHouse
/// @notice Quorum-signed settlement cycles between the network's partners; see IClearingHouse.
/// @dev Roles: DEFAULT_ADMIN_ROLE resolves disputes and grants roles; RELAYER_ROLE (and the
/// admin) registers partners and toggles their active flag; PAUSER_ROLE pauses what moves a
/// cycle forward (registration, proposals, dispute resolution, finalization). In a network
/// deployment the admin and pauser roles are held by a TimelockController (NetworkTimelock),
/// so every such change is scheduled in public before it takes effect.
/// Proposals need no role: a quorum of oracle signers authorizes them.
///
/// Member default, as a clearing house handles it: each cycle gets a funding deadline when it
/// is proposed. Debtors fund until the cycle is Funded or, once the deadline has passed, anyone
/// declares it Defaulted by naming exactly the debtors that did not fund (the contract checks
/// the list is complete: their positions sum to what is still unfunded). A defaulted cycle
/// pays nobody: no creditor is paid from another member's money, and every debtor that did
/// fund takes its whole deposit back with `refund`. The books then settle the same
/// obligations again in a new cycle. No token can stay here without a way out: a Funded
/// cycle's tokens leave by `claim`, a Defaulted cycle's by `refund`, and neither exit (nor a
/// partner's dispute) can ever be paused. Funding is not paused either: a pause must never
/// stop a debtor from paying a finalized cycle and so push it into default; funding an
/// immutable cycle only brings tokens in. A refund goes to the debtor's payout address,
/// whoever paid for it (a guarantor paying for a debtor settles with that debtor off-chain).
contract ClearingHouse is IClearingHouse, AccessControl, Pausable, ReentrancyGuardTransient, EIP712 {
    using SafeERC20 for IERC20;

    /// @notice Role of the lender node's relayer, allowed to register and toggle partners.
    bytes32 public constant RELAYER_ROLE = keccak256("RELAYER_ROLE");
    /// @notice Role allowed to pause and unpause.
    bytes32 public constant PAUSER_ROLE = keccak256("PAUSER_ROLE");
    /// @notice EIP-712 type hash of the quorum-signed cycle report.
    bytes32 public constant CYCLE_REPORT_TYPEHASH = keccak256(
        "CycleReport(uint64 cycleId,bytes32 entriesRoot,uint64 entryCount,uint32[] partnerIds,int256[] netPositions)"
    );
    /// @notice The longest dispute window the constructor accepts, in seconds.
    uint64 public constant MAX_DISPUTE_WINDOW_SECONDS = 365 days;
    /// @notice The longest funding window the constructor accepts, in seconds.
    uint64 public constant MAX_FUNDING_WINDOW_SECONDS = 365 days;

    uint8 private constant _NONE = 0;
    uint8 private constant _PROPOSED = 1;
    uint8 private constant _DISPUTED = 2;
    uint8 private constant _FINALIZED = 3;
    uint8 private constant _FUNDED = 4;
    uint8 private constant _REJECTED = 5;
    uint8 private constant _DEFAULTED = 6;
    uint8 private constant _ROLE_MAX = 3;

    // Three slots per cycle. The fields every claim touches (status, claimedFen) share a
    // slot the proposal already made non-zero, so a claim rewrites it for 2.9k gas instead
    // of paying 22k for a fresh slot; fund likewise updates fundedFen next to totalDueFen.
    // uint96 holds 7.9e28 fen, far beyond any real settlement; the proposal time is not
    // stored since it equals disputeDeadline - disputeWindowSeconds, nor the funding
    // deadline, which is disputeDeadline + fundingWindowSeconds. In a Defaulted cycle nothing
    // is ever claimed, so claimedFen counts the refunds instead.
    struct Cycle {
        bytes32 entriesRoot;
        uint8 status;
        uint16 partnerCount;
        uint64 disputeDeadline;
        uint64 entryCount;
        uint96 claimedFen;
        uint96 totalDueFen;
        uint96 fundedFen;
    }

    // `settled`: a debtor funded or a creditor claimed; `refunded`: a funded debtor of a
    // Defaulted cycle took its deposit back.
    struct Position {
        int96 netFen;
        bool listed;
        bool disputed;
        bool settled;
        bool refunded;
    }

    IOracleQuorum private immutable _quorum;
    IERC20 private immutable _token;
    uint64 private immutable _disputeWindowSeconds;
    uint64 private immutable _fundingWindowSeconds;

    mapping(uint32 partnerId => PartnerView) private _partners;
    mapping(uint64 cycleId => Cycle) private _cycles;
    mapping(uint64 cycleId => mapping(uint32 partnerId => Position)) private _positions;

    /// @notice Deploys the clearing house.
    /// @param admin Receives DEFAULT_ADMIN_ROLE (non-zero).
    /// @param quorum The OracleQuorum that authorizes cycles (non-zero); grant this contract
    /// its CONSUMER_ROLE.
    /// @param token The ERC-20 settlement token, 1 unit = 1 fen (non-zero).
    /// @param disputeWindowSeconds Seconds between a proposal and the earliest finalization,
    /// during which listed partners may dispute; at most 365 days. Zero is accepted for
    /// throw-away local chains only: the node refuses a window under its configured minimum
    /// outside dev and test.
    /// @param fundingWindowSeconds Seconds after the dispute deadline during which the debtors
    /// fund; from then on anyone may declare an unfunded cycle Defaulted. 1 second to 365 days.
    constructor(
        address admin,
        address quorum,
        address token,
        uint64 disputeWindowSeconds,
        uint64 fundingWindowSeconds
    ) EIP712("CreditNet ClearingHouse", "1") {
        if (admin == address(0)) revert ZeroAddressArgument(0);
        if (quorum == address(0)) revert ZeroAddressArgument(1);
        if (token == address(0)) revert ZeroAddressArgument(2);
        if (disputeWindowSeconds > MAX_DISPUTE_WINDOW_SECONDS) {
            revert DisputeWindowTooLong(disputeWindowSeconds);
        }
        if (fundingWindowSeconds == 0 || fundingWindowSeconds > MAX_FUNDING_WINDOW_SECONDS) {
            revert InvalidFundingWindow(fundingWindowSeconds);
        }
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _quorum = IOracleQuorum(quorum);
        _token = IERC20(token);
        _disputeWindowSeconds = disputeWindowSeconds;
        _fundingWindowSeconds = fundingWindowSeconds;
    }

    /// @dev Lets through DEFAULT_ADMIN_ROLE or RELAYER_ROLE holders, else NotAdminOrRelayer.
    modifier onlyAdminOrRelayer() {
        if (!hasRole(DEFAULT_ADMIN_ROLE, msg.sender) && !hasRole(RELAYER_ROLE, msg.sender)) {
            revert NotAdminOrRelayer(msg.sender);
        }
        _;
    }

    /// @inheritdoc IClearingHouse
    function registerPartner(uint32 partnerId, uint8 role, address payout)
        external
        onlyAdminOrRelayer
        whenNotPaused
    {
        if (role > _ROLE_MAX) revert InvalidPartnerRole(role);
        if (payout == address(0)) revert ZeroPayout(partnerId);
        // Paying out to this contract or to the token would strand the tokens for good.
        if (payout == address(this) || payout == address(_token)) revert InvalidPayout(partnerId, payout);
        PartnerView storage partner = _partners[partnerId];
        if (partner.registered) revert PartnerAlreadyRegistered(partnerId);
        _partners[partnerId] = PartnerView({payout: payout, role: role, active: true, registered: true});
        emit PartnerRegistered(partnerId, role, payout);
    }

    /// @inheritdoc IClearingHouse
    function setPartnerActive(uint32 partnerId, bool active)
        external
        onlyAdminOrRelayer
        whenNotPaused
    {
        PartnerView storage partner = _partners[partnerId];
        if (!partner.registered) revert PartnerNotRegistered(partnerId);
        partner.active = active;
        emit PartnerActiveSet(partnerId, active);
    }

    /// @inheritdoc IClearingHouse
    function proposeCycle(
        uint64 cycleId,
        bytes32 entriesRoot,
        uint64 entryCount,
        uint32[] calldata partnerIds,
        int256[] calldata netPositions,
        bytes[] calldata signatures
    ) external whenNotPaused {
        Cycle storage cycle = _cycles[cycleId];
        if (cycle.status != _NONE) revert CycleAlreadyProposed(cycleId, cycle.status);
        if (entriesRoot == bytes32(0) || entryCount == 0 || partnerIds.length == 0) {
            revert EmptyCycle(cycleId);
        }
        if (partnerIds.length != netPositions.length) {
            revert LengthMismatch(partnerIds.length, netPositions.length);
        }
        // Positions are written while validated; any later failure reverts the whole call.
        uint96 totalDueFen = _storePositions(cycleId, partnerIds, netPositions);
        bytes32 digest = cycleReportDigest(cycleId, entriesRoot, entryCount, partnerIds, netPositions);
        // The quorum is the trusted contract fixed at deployment: it reverts unless the
        // signatures are a quorum over this digest, and marks the report consumed.
        _quorum.consumeReport(digest, digest, signatures);

        // block.timestamp fits in uint64 for the next 500 billion years; the window is capped
        // at 365 days, so the checked addition cannot overflow either.
        uint64 proposedAt = uint64(block.timestamp);
        uint64 disputeDeadline = proposedAt + _disputeWindowSeconds;
        cycle.entriesRoot = entriesRoot;
        cycle.status = _PROPOSED;
        cycle.partnerCount = SafeCast.toUint16(partnerIds.length);
        cycle.disputeDeadline = disputeDeadline;
        cycle.entryCount = entryCount;
        cycle.totalDueFen = totalDueFen;
        emit CycleProposed(
            cycleId,
            entriesRoot,
            entryCount,
            partnerIds,
            netPositions,
            disputeDeadline,
            disputeDeadline + _fundingWindowSeconds
        );
    }

    /// @inheritdoc IClearingHouse
    function dispute(uint64 cycleId, uint32 partnerId, bytes32 reason) external {
        Cycle storage cycle = _cycles[cycleId];
        uint8 status = cycle.status;
        if (status != _PROPOSED && status != _DISPUTED) {
            revert UnexpectedCycleStatus(cycleId, status);
        }
        uint64 disputeDeadline = cycle.disputeDeadline;
        if (block.timestamp >= disputeDeadline) revert DisputeWindowClosed(cycleId, disputeDeadline);
        Position storage position = _positions[cycleId][partnerId];
        if (!position.listed) revert PartnerNotListed(cycleId, partnerId);
        if (msg.sender != _partners[partnerId].payout) revert NotPartnerPayout(partnerId, msg.sender);
        if (position.disputed) revert AlreadyDisputed(cycleId, partnerId);
        position.disputed = true;
        cycle.status = _DISPUTED;
        emit CycleDisputed(cycleId, partnerId, reason);
    }

    /// @inheritdoc IClearingHouse
    function resolveDispute(uint64 cycleId, bool upheld)
        external
        onlyRole(DEFAULT_ADMIN_ROLE)
        whenNotPaused
    {
        Cycle storage cycle = _cycles[cycleId];
        if (cycle.status != _DISPUTED) revert UnexpectedCycleStatus(cycleId, cycle.status);
        cycle.status = upheld ? _REJECTED : _PROPOSED;
        emit DisputeResolved(cycleId, upheld);
    }

    /// @inheritdoc IClearingHouse
    function finalize(uint64 cycleId) external whenNotPaused {
        Cycle storage cycle = _cycles[cycleId];
        if (cycle.status != _PROPOSED) revert UnexpectedCycleStatus(cycleId, cycle.status);
        uint64 disputeDeadline = cycle.disputeDeadline;
        if (block.timestamp < disputeDeadline) revert DisputeWindowOpen(cycleId, disputeDeadline);
        bool nothingDue = cycle.totalDueFen == 0;
        cycle.status = nothingDue ? _FUNDED : _FINALIZED;
        emit CycleFinalized(cycleId, cycle.entriesRoot);
        if (nothingDue) emit CycleFullyFunded(cycleId, 0);
    }

    /// @inheritdoc IClearingHouse
    function fund(uint64 cycleId, uint32 partnerId) external nonReentrant {
        Cycle storage cycle = _cycles[cycleId];
        if (cycle.status != _FINALIZED) revert UnexpectedCycleStatus(cycleId, cycle.status);
        Position storage position = _positions[cycleId][partnerId];
        if (!position.listed) revert PartnerNotListed(cycleId, partnerId);
        int96 netFen = position.netFen;
        if (netFen >= 0) revert NotNetDebtor(cycleId, partnerId, netFen);
        if (position.settled) revert AlreadyFunded(cycleId, partnerId);

        // netFen is in [-2**95, 0), so its negation fits in uint96.
        uint96 amountFen = uint96(uint256(-int256(netFen)));
        position.settled = true;
        uint96 fundedFen = cycle.fundedFen + amountFen;
        cycle.fundedFen = fundedFen;
        bool fullyFunded = fundedFen == cycle.totalDueFen;
        if (fullyFunded) cycle.status = _FUNDED;

        uint256 balanceBefore = _token.balanceOf(address(this));
        _token.safeTransferFrom(msg.sender, address(this), amountFen);
        uint256 receivedFen = _token.balanceOf(address(this)) - balanceBefore;
        if (receivedFen != amountFen) revert FundingShortfall(amountFen, receivedFen);
        emit CycleFunded(cycleId, partnerId, amountFen);
        if (fullyFunded) emit CycleFullyFunded(cycleId, fundedFen);
    }

    /// @inheritdoc IClearingHouse
    function claim(uint64 cycleId, uint32 partnerId) external nonReentrant {
        Cycle storage cycle = _cycles[cycleId];
        if (cycle.status != _FUNDED) revert UnexpectedCycleStatus(cycleId, cycle.status);
        Position storage position = _positions[cycleId][partnerId];
        if (!position.listed) revert PartnerNotListed(cycleId, partnerId);
        int96 netFen = position.netFen;
        if (netFen <= 0) revert NotNetCreditor(cycleId, partnerId, netFen);
        if (position.settled) revert AlreadyClaimed(cycleId, partnerId);

        // netFen is in (0, 2**95), so it converts to uint96 without loss.
        uint96 amountFen = uint96(netFen);
        position.settled = true;
        cycle.claimedFen += amountFen;
        address payout = _partners[partnerId].payout;
        emit CycleClaimed(cycleId, partnerId, payout, amountFen);
        _token.safeTransfer(payout, amountFen);
    }

    /// @inheritdoc IClearingHouse
    function declareDefault(uint64 cycleId, uint32[] calldata defaulters) external {
        Cycle storage cycle = _cycles[cycleId];
        if (cycle.status != _FINALIZED) revert UnexpectedCycleStatus(cycleId, cycle.status);
        uint64 fundingDeadline = cycle.disputeDeadline + _fundingWindowSeconds;
        if (block.timestamp < fundingDeadline) revert FundingWindowOpen(cycleId, fundingDeadline);
        mapping(uint32 => Position) storage positions = _positions[cycleId];
        uint256 unfundedFen = 0;
        uint256 previousId = 0;
        for (uint256 i = 0; i < defaulters.length; ++i) {
            uint32 partnerId = defaulters[i];
            if (uint256(partnerId) + 1 <= previousId) revert PartnerIdsNotAscending(i, partnerId);
            previousId = uint256(partnerId) + 1;
            Position storage position = positions[partnerId];
            if (!position.listed) revert PartnerNotListed(cycleId, partnerId);
            if (position.netFen >= 0) revert NotNetDebtor(cycleId, partnerId, position.netFen);
            if (position.settled) revert AlreadyFunded(cycleId, partnerId);
            unfundedFen += uint256(-int256(position.netFen));
        }
        // Every named debtor is listed, owes, has not funded and is named once, so the list is
        // every such debtor exactly when their debts add up to what is still unfunded.
        uint256 outstandingFen = cycle.totalDueFen - cycle.fundedFen;
        if (unfundedFen != outstandingFen) revert DefaultersIncomplete(cycleId, unfundedFen, outstandingFen);
        cycle.status = _DEFAULTED;
        emit CycleDefaulted(cycleId, defaulters, outstandingFen);
    }

    /// @inheritdoc IClearingHouse
    function refund(uint64 cycleId, uint32 partnerId) external nonReentrant {
        Cycle storage cycle = _cycles[cycleId];
        if (cycle.status != _DEFAULTED) revert UnexpectedCycleStatus(cycleId, cycle.status);
        Position storage position = _positions[cycleId][partnerId];
        if (!position.listed) revert PartnerNotListed(cycleId, partnerId);
        int96 netFen = position.netFen;
        if (netFen >= 0) revert NotNetDebtor(cycleId, partnerId, netFen);
        if (!position.settled) revert NothingToRefund(cycleId, partnerId);
        if (position.refunded) revert AlreadyRefunded(cycleId, partnerId);

        // netFen is in [-2**95, 0), so its negation fits in uint96.
        uint96 amountFen = uint96(uint256(-int256(netFen)));
        position.refunded = true;
        cycle.claimedFen += amountFen;
        address payout = _partners[partnerId].payout;
        emit CycleRefunded(cycleId, partnerId, payout, amountFen);
        _token.safeTransfer(payout, amountFen);
    }

    /// @notice Pauses registration, proposals, dispute resolution and finalization. Funding,
    /// disputes and the exits (claim, declaring a default, refund) are never paused.
    /// @dev Only PAUSER_ROLE.
    function pause() external onlyRole(PAUSER_ROLE) {
        _pause();
    }

    /// @notice Lifts a pause.
    /// @dev Only PAUSER_ROLE.
    function unpause() external onlyRole(PAUSER_ROLE) {
        _unpause();
    }

    /// @inheritdoc IClearingHouse
    function getCycle(uint64 cycleId) external view returns (CycleView memory) {
        Cycle storage cycle = _cycles[cycleId];
        uint64 disputeDeadline = cycle.disputeDeadline;
        return CycleView({
            entriesRoot: cycle.entriesRoot,
            status: cycle.status,
            partnerCount: cycle.partnerCount,
            proposedAt: cycle.status == _NONE ? 0 : disputeDeadline - _disputeWindowSeconds,
            disputeDeadline: cycle.disputeDeadline,
            fundingDeadline: cycle.status == _NONE ? 0 : disputeDeadline + _fundingWindowSeconds,
            entryCount: cycle.entryCount,
            totalDueFen: cycle.totalDueFen,
            fundedFen: cycle.fundedFen,
            claimedFen: cycle.claimedFen
        });
    }

    /// @inheritdoc IClearingHouse
    function getPosition(uint64 cycleId, uint32 partnerId)
        external
        view
        returns (int256 netPositionFen, bool listed, bool disputed, bool settled, bool refunded)
    {
        Position storage position = _positions[cycleId][partnerId];
        return (
            position.netFen, position.listed, position.disputed, position.settled, position.refunded
        );
    }

    /// @inheritdoc IClearingHouse
    function getPartner(uint32 partnerId) external view returns (PartnerView memory) {
        return _partners[partnerId];
    }

    /// @inheritdoc IClearingHouse
    function verifyEntry(
        uint64 cycleId,
        uint64 entryId,
        uint32 partnerId,
        uint8 kind,
        int256 amountFen,
        bytes32 salt,
        bytes32[] calldata proof
    ) external view returns (bool) {
        Cycle storage cycle = _cycles[cycleId];
        uint8 status = cycle.status;
        if (status == _NONE || status == _REJECTED || status == _DEFAULTED) return false;
        bytes32 leaf = computeEntryLeaf(cycleId, entryId, partnerId, kind, amountFen, salt);
        return MerkleProof.verifyCalldata(proof, cycle.entriesRoot, leaf);
    }

    /// @inheritdoc IClearingHouse
    function computeEntryLeaf(
        uint64 cycleId,
        uint64 entryId,
        uint32 partnerId,
        uint8 kind,
        int256 amountFen,
        bytes32 salt
    ) public pure returns (bytes32) {
        return keccak256(
            bytes.concat(keccak256(abi.encode(cycleId, entryId, partnerId, kind, amountFen, salt)))
        );
    }

    /// @inheritdoc IClearingHouse
    function cycleReportDigest(
        uint64 cycleId,
        bytes32 entriesRoot,
        uint64 entryCount,
        uint32[] calldata partnerIds,
        int256[] calldata netPositions
    ) public view returns (bytes32) {
        // EIP-712 hashes an array as keccak256 of its 32-byte-padded elements, which is
        // exactly what abi.encodePacked produces for arrays.
        bytes32 structHash = keccak256(
            abi.encode(
                CYCLE_REPORT_TYPEHASH,
                cycleId,
                entriesRoot,
                entryCount,
                keccak256(abi.encodePacked(partnerIds)),
                keccak256(abi.encodePacked(netPositions))
            )
        );
        return _hashTypedDataV4(structHash);
    }

    /// @inheritdoc IClearingHouse
    function oracleQuorum() external view returns (address) {
        return address(_quorum);
    }

    /// @inheritdoc IClearingHouse
    function settlementToken() external view returns (address) {
        return address(_token);
    }

    /// @inheritdoc IClearingHouse
    function disputeWindowDurationSeconds() external view returns (uint64) {
        return _disputeWindowSeconds;
    }

    /// @inheritdoc IClearingHouse
    function fundingWindowDurationSeconds() external view returns (uint64) {
        return _fundingWindowSeconds;
    }

    /// @dev Validates the listed partners and their positions, stores one position slot per
    /// partner, and returns the total due (sum of the positive positions), in fen.
    function _storePositions(
        uint64 cycleId,
        uint32[] calldata partnerIds,
        int256[] calldata netPositions
    ) private returns (uint96 totalDueFen) {
        mapping(uint32 => Position) storage positions = _positions[cycleId];
        int256 sum = 0;
        uint256 dueFen = 0;
        uint256 previousId = 0;
        for (uint256 i = 0; i < partnerIds.length; ++i) {
            uint32 partnerId = partnerIds[i];
            // Compare as uint256 with a +1 offset so that id 0 is accepted first in line.
            if (uint256(partnerId) + 1 <= previousId) revert PartnerIdsNotAscending(i, partnerId);
            previousId = uint256(partnerId) + 1;
            PartnerView storage partner = _partners[partnerId];
            if (!partner.registered) revert PartnerNotRegistered(partnerId);
            if (!partner.active) revert PartnerNotActive(partnerId);
            int256 netFen = netPositions[i];
            if (netFen < type(int96).min || netFen > type(int96).max) {
                revert PositionOutOfRange(partnerId, netFen);
            }
            // Each term is within int96, so the checked int256 sum cannot overflow.
            sum += netFen;
            if (netFen > 0) dueFen += uint256(netFen);
            positions[partnerId] =
                Position({
                netFen: int96(netFen), listed: true, disputed: false, settled: false, refunded: false
            });
        }
        if (sum != 0) revert CycleNotBalanced(sum);
        totalDueFen = SafeCast.toUint96(dueFen);
    }
}
