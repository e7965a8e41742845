// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title IClearingHouse
/// @notice Partner clearing for the credit network. Each settlement cycle commits the Merkle
/// root of its settlement entries and every listed partner's net position; net debtors then
/// fund and net creditors claim, in the settlement token (an ERC-20 with 2 decimals: 1 unit =
/// 1 fen).
/// @dev Life of a cycle:
///  1. `proposeCycle`: anyone submits a report signed by a quorum of the OracleQuorum signers
///     (EIP-712 domain "CreditNet ClearingHouse", version "1", this chain, this contract).
///     The net positions must sum to zero. Each cycle id is used once, even if later rejected
///     (the books re-propose a business date under the next attempt's id, see below).
///  2. Dispute window (`disputeWindowSeconds`): a listed partner's payout address may
///     `dispute`; the cycle freezes until the admin (the timelock) `resolveDispute`s it
///     (upheld: Rejected for good; dismissed: back to Proposed with the original deadline).
///  3. `finalize` by anyone once the window has passed; the root and positions never change again.
///  4. `fund` by anyone, for each net debtor, pulling |position| with `transferFrom(msg.sender)`,
///     until the cycle is Funded or declared Defaulted.
///  5. Once every debtor has funded (status Funded), `claim` by anyone for each net creditor:
///     the position goes to the creditor's payout address (pull payment).
///  6. Member default: once the funding deadline (dispute deadline + `fundingWindowSeconds`)
///     has passed, anyone may `declareDefault` a Finalized cycle, naming every debtor that did
///     not fund; then each debtor that did fund takes its deposit back with `refund`.
/// Cost does not depend on the number of entries: only their root and count are stored.
/// Pausing stops registration, proposals, dispute resolution and finalization; it never stops
/// funding (a pause must not push a debtor into default), a dispute, a claim, a default
/// declaration or a refund. A refund goes to the debtor's payout address, whoever funded.
///
/// Settlement leaf (OpenZeppelin StandardMerkleTree, double hashed, leaf types
/// `["uint64","uint64","uint32","uint8","int256","bytes32"]`):
/// `keccak256(bytes.concat(keccak256(abi.encode(uint64 cycleId, uint64 entryId, uint32 partnerId,
/// uint8 kind, int256 amountFen, bytes32 salt))))`. `amountFen` is signed: positive = the
/// partner receives, negative = the partner pays; a partner's net position is the sum of its
/// entries' amounts. `salt` is private to the entry's partner (the books derive it as
/// HMAC-SHA256 of a per-partner secret and the cycle and entry ids, and hand it over with the
/// partner's entries), so the sibling hashes in a proof reveal nothing another partner could
/// recover by trying small amounts.
///
/// Units: amounts in fen (signed for positions, unsigned for transfers), times in unix seconds,
/// partner ids as assigned by the books. Cycle ids are `attempt * 10**8 + yyyymmdd`: the books'
/// business date, plus the attempt number for a date re-proposed after a rejection or default.
///
/// Partner roles (`uint8`): 0 Lender, 1 Funder, 2 Channel, 3 Guarantor.
/// Cycle status (`uint8`): 0 None, 1 Proposed, 2 Disputed, 3 Finalized (awaiting funding),
/// 4 Funded (claimable), 5 Rejected, 6 Defaulted (refundable).
interface IClearingHouse {
    /// @notice A cycle as stored.
    /// @param entriesRoot StandardMerkleTree root of the cycle's settlement entries.
    /// @param status The cycle status value.
    /// @param partnerCount Number of listed partners.
    /// @param proposedAt Unix seconds of the block that accepted the proposal.
    /// @param disputeDeadline Unix seconds from which the cycle may be finalized; disputes are
    /// accepted strictly before it.
    /// @param fundingDeadline Unix seconds from which an unfunded Finalized cycle may be
    /// declared Defaulted.
    /// @param entryCount Number of settlement entries under the root.
    /// @param totalDueFen Sum of the net debtors' |positions| (= sum of creditors' positions), in fen.
    /// @param fundedFen Amount funded so far, in fen.
    /// @param claimedFen Amount paid out so far, in fen: claims, or refunds once Defaulted.
    struct CycleView {
        bytes32 entriesRoot;
        uint8 status;
        uint32 partnerCount;
        uint64 proposedAt;
        uint64 disputeDeadline;
        uint64 fundingDeadline;
        uint64 entryCount;
        uint256 totalDueFen;
        uint256 fundedFen;
        uint256 claimedFen;
    }

    /// @notice A partner as registered.
    /// @param payout The address that disputes on the partner's behalf and receives its claims.
    /// @param role The partner role value.
    /// @param active Whether the partner may be listed in new cycles.
    /// @param registered Whether the id is registered at all.
    struct PartnerView {
        address payout;
        uint8 role;
        bool active;
        bool registered;
    }

    /// @notice Emitted when a partner is registered (active).
    /// @param partnerId The books' partner id.
    /// @param role The partner role value.
    /// @param payout The partner's payout address.
    event PartnerRegistered(uint32 indexed partnerId, uint8 role, address payout);

    /// @notice Emitted when a partner is activated or deactivated.
    /// @param partnerId The partner id.
    /// @param active The new flag.
    event PartnerActiveSet(uint32 indexed partnerId, bool active);

    /// @notice Emitted when a quorum-signed cycle is accepted.
    /// @param cycleId The cycle.
    /// @param entriesRoot The entries' Merkle root.
    /// @param entryCount Number of entries.
    /// @param partnerIds Listed partners, ascending.
    /// @param netPositions Their net positions, in fen (positive = receives).
    /// @param disputeDeadline Unix seconds from which the cycle may be finalized.
    /// @param fundingDeadline Unix seconds from which the cycle, unless Funded, may be declared
    /// Defaulted.
    event CycleProposed(
        uint64 indexed cycleId,
        bytes32 entriesRoot,
        uint64 entryCount,
        uint32[] partnerIds,
        int256[] netPositions,
        uint64 disputeDeadline,
        uint64 fundingDeadline
    );

    /// @notice Emitted when a listed partner disputes a cycle.
    /// @param cycleId The cycle.
    /// @param partnerId The disputing partner.
    /// @param reason The partner's reason (a code or a hash of a document).
    event CycleDisputed(uint64 indexed cycleId, uint32 indexed partnerId, bytes32 reason);

    /// @notice Emitted when the admin resolves a disputed cycle.
    /// @param cycleId The cycle.
    /// @param upheld True: the cycle is Rejected for good; false: it is Proposed again.
    event DisputeResolved(uint64 indexed cycleId, bool upheld);

    /// @notice Emitted when a cycle is finalized; its root and positions are now immutable.
    /// @param cycleId The cycle.
    /// @param entriesRoot The final root.
    event CycleFinalized(uint64 indexed cycleId, bytes32 entriesRoot);

    /// @notice Emitted when a net debtor's position is funded.
    /// @param cycleId The cycle.
    /// @param partnerId The debtor.
    /// @param amount The amount received, in fen.
    event CycleFunded(uint64 indexed cycleId, uint32 indexed partnerId, uint256 amount);

    /// @notice Emitted when the last debtor funds: the cycle becomes claimable.
    /// @param cycleId The cycle.
    /// @param totalDueFen The total funded, in fen.
    event CycleFullyFunded(uint64 indexed cycleId, uint256 totalDueFen);

    /// @notice Emitted when a net creditor's position is paid out.
    /// @param cycleId The cycle.
    /// @param partnerId The creditor.
    /// @param payout The address that received the tokens.
    /// @param amount The amount paid, in fen.
    event CycleClaimed(
        uint64 indexed cycleId, uint32 indexed partnerId, address payout, uint256 amount
    );

    /// @notice Emitted when a Finalized cycle passes its funding deadline unfunded.
    /// @param cycleId The cycle.
    /// @param defaulters Every debtor that did not fund, ascending.
    /// @param unfundedFen What they owed together, in fen.
    event CycleDefaulted(uint64 indexed cycleId, uint32[] defaulters, uint256 unfundedFen);

    /// @notice Emitted when a debtor that funded a Defaulted cycle takes its deposit back.
    /// @param cycleId The cycle.
    /// @param partnerId The debtor.
    /// @param payout The address that received the tokens.
    /// @param amount The amount returned, in fen.
    event CycleRefunded(
        uint64 indexed cycleId, uint32 indexed partnerId, address payout, uint256 amount
    );

    /// @notice A constructor address argument is zero.
    /// @param argumentIndex 0 for `admin`, 1 for `quorum`, 2 for `token`.
    error ZeroAddressArgument(uint256 argumentIndex);

    /// @notice The constructor's dispute window exceeds the maximum (365 days).
    /// @param disputeWindowSeconds The rejected window, in seconds.
    error DisputeWindowTooLong(uint64 disputeWindowSeconds);

    /// @notice The constructor's funding window is zero or exceeds the maximum (365 days).
    /// @param fundingWindowSeconds The rejected window, in seconds.
    error InvalidFundingWindow(uint64 fundingWindowSeconds);

    /// @notice The funding window is still open (now < funding deadline).
    /// @param cycleId The cycle.
    /// @param fundingDeadline The deadline, unix seconds.
    error FundingWindowOpen(uint64 cycleId, uint64 fundingDeadline);

    /// @notice The named defaulters' debts do not add up to what is still unfunded, so some
    /// debtor that did not fund is missing from the list.
    /// @param cycleId The cycle.
    /// @param namedFen What the named debtors owe together, in fen.
    /// @param unfundedFen What is still unfunded, in fen.
    error DefaultersIncomplete(uint64 cycleId, uint256 namedFen, uint256 unfundedFen);

    /// @notice The debtor never funded this cycle, so there is nothing to return.
    /// @param cycleId The cycle.
    /// @param partnerId The partner.
    error NothingToRefund(uint64 cycleId, uint32 partnerId);

    /// @notice The debtor's deposit was already returned.
    /// @param cycleId The cycle.
    /// @param partnerId The partner.
    error AlreadyRefunded(uint64 cycleId, uint32 partnerId);

    /// @notice The caller has neither DEFAULT_ADMIN_ROLE nor RELAYER_ROLE.
    /// @param account The caller.
    error NotAdminOrRelayer(address account);

    /// @notice The role value is not 0..3.
    /// @param role The rejected value.
    error InvalidPartnerRole(uint8 role);

    /// @notice The payout address is zero.
    /// @param partnerId The partner.
    error ZeroPayout(uint32 partnerId);

    /// @notice The payout address is this contract or the settlement token, where paid-out
    /// tokens would be stuck for good.
    /// @param partnerId The partner.
    /// @param payout The rejected address.
    error InvalidPayout(uint32 partnerId, address payout);

    /// @notice The partner id is already registered.
    /// @param partnerId The partner.
    error PartnerAlreadyRegistered(uint32 partnerId);

    /// @notice The partner id is not registered.
    /// @param partnerId The partner.
    error PartnerNotRegistered(uint32 partnerId);

    /// @notice The partner is deactivated and cannot be listed in a new cycle.
    /// @param partnerId The partner.
    error PartnerNotActive(uint32 partnerId);

    /// @notice The cycle id was already used (in any status).
    /// @param cycleId The cycle.
    /// @param status Its current status value.
    error CycleAlreadyProposed(uint64 cycleId, uint8 status);

    /// @notice The root is zero, there are no entries, or there are no partners.
    /// @param cycleId The cycle.
    error EmptyCycle(uint64 cycleId);

    /// @notice `partnerIds` and `netPositions` have different lengths.
    /// @param partnerCount Length of `partnerIds`.
    /// @param positionCount Length of `netPositions`.
    error LengthMismatch(uint256 partnerCount, uint256 positionCount);

    /// @notice Partner ids are not strictly ascending (duplicates included).
    /// @param index Position of the offending id.
    /// @param partnerId The offending id.
    error PartnerIdsNotAscending(uint256 index, uint32 partnerId);

    /// @notice A net position does not fit in int96 (about ±3.9e28 fen).
    /// @param partnerId The partner.
    /// @param netPosition The rejected position, in fen.
    error PositionOutOfRange(uint32 partnerId, int256 netPosition);

    /// @notice The net positions do not sum to zero.
    /// @param sum Their sum, in fen.
    error CycleNotBalanced(int256 sum);

    /// @notice The cycle is not in the status the action needs.
    /// @param cycleId The cycle.
    /// @param status Its current status value.
    error UnexpectedCycleStatus(uint64 cycleId, uint8 status);

    /// @notice The dispute window is closed (now >= deadline).
    /// @param cycleId The cycle.
    /// @param disputeDeadline The deadline, unix seconds.
    error DisputeWindowClosed(uint64 cycleId, uint64 disputeDeadline);

    /// @notice The dispute window is still open (now < deadline).
    /// @param cycleId The cycle.
    /// @param disputeDeadline The deadline, unix seconds.
    error DisputeWindowOpen(uint64 cycleId, uint64 disputeDeadline);

    /// @notice The partner is not listed in the cycle.
    /// @param cycleId The cycle.
    /// @param partnerId The partner.
    error PartnerNotListed(uint64 cycleId, uint32 partnerId);

    /// @notice The caller is not the partner's payout address.
    /// @param partnerId The partner.
    /// @param caller The caller.
    error NotPartnerPayout(uint32 partnerId, address caller);

    /// @notice The partner already disputed this cycle.
    /// @param cycleId The cycle.
    /// @param partnerId The partner.
    error AlreadyDisputed(uint64 cycleId, uint32 partnerId);

    /// @notice The partner's position is not negative, so it has nothing to fund.
    /// @param cycleId The cycle.
    /// @param partnerId The partner.
    /// @param netPosition Its position, in fen.
    error NotNetDebtor(uint64 cycleId, uint32 partnerId, int256 netPosition);

    /// @notice The partner's position is not positive, so it has nothing to claim.
    /// @param cycleId The cycle.
    /// @param partnerId The partner.
    /// @param netPosition Its position, in fen.
    error NotNetCreditor(uint64 cycleId, uint32 partnerId, int256 netPosition);

    /// @notice The debtor's position was already funded.
    /// @param cycleId The cycle.
    /// @param partnerId The partner.
    error AlreadyFunded(uint64 cycleId, uint32 partnerId);

    /// @notice The creditor's position was already claimed.
    /// @param cycleId The cycle.
    /// @param partnerId The partner.
    error AlreadyClaimed(uint64 cycleId, uint32 partnerId);

    /// @notice The token delivered less than the position (for example a fee-on-transfer token).
    /// @param expectedFen The position, in fen.
    /// @param receivedFen The balance increase observed, in fen.
    error FundingShortfall(uint256 expectedFen, uint256 receivedFen);

    /// @notice Registers a partner, active, with its role and payout address.
    /// @dev Only DEFAULT_ADMIN_ROLE or RELAYER_ROLE; reverts while paused. Ids are the books'
    /// and are registered once; the payout address cannot be changed afterwards.
    /// @param partnerId The books' partner id.
    /// @param role 0 Lender, 1 Funder, 2 Channel, 3 Guarantor.
    /// @param payout The address that disputes for the partner and receives its claims (non-zero).
    function registerPartner(uint32 partnerId, uint8 role, address payout) external;

    /// @notice Activates or deactivates a partner. An inactive partner cannot be listed in new
    /// cycles; its positions in existing cycles still fund, claim and dispute as usual.
    /// @dev Only DEFAULT_ADMIN_ROLE or RELAYER_ROLE; reverts while paused.
    /// @param partnerId The partner.
    /// @param active The new flag.
    function setPartnerActive(uint32 partnerId, bool active) external;

    /// @notice Accepts a quorum-signed settlement cycle.
    /// @dev Anyone may submit (the signatures are the authorization); reverts while paused.
    /// Needs CONSUMER_ROLE for this contract on the quorum, which marks the report (id = digest)
    /// consumed. Checks: unused cycle id, non-zero root, entryCount > 0, at least one partner,
    /// equal lengths, at most 65,535 ascending registered active partner ids, positions in
    /// int96 (total due < 2**96), sum zero
    /// (`CycleNotBalanced(sum)`), then the quorum signatures over `cycleReportDigest(...)`.
    /// Gas grows with the number of partners (one slot each), never with `entryCount`.
    /// @param cycleId The cycle (business date `yyyymmdd`).
    /// @param entriesRoot StandardMerkleTree root of the settlement entries.
    /// @param entryCount Number of settlement entries.
    /// @param partnerIds Listed partners, strictly ascending.
    /// @param netPositions Net position per partner, in fen (positive = receives).
    /// @param signatures Signer signatures over the digest, sorted by ascending signer address.
    function proposeCycle(
        uint64 cycleId, bytes32 entriesRoot, uint64 entryCount,
        uint32[] calldata partnerIds, int256[] calldata netPositions,
        bytes[] calldata signatures
    ) external;

    /// @notice Disputes a Proposed (or already Disputed) cycle before its deadline; the cycle
    /// stays frozen until the admin resolves it.
    /// @dev Only the listed partner's payout address, once per partner per cycle; never paused,
    /// so a partner can always object before the window closes.
    /// @param cycleId The cycle.
    /// @param partnerId The disputing partner (listed in the cycle).
    /// @param reason A reason code or the hash of a supporting document.
    function dispute(uint64 cycleId, uint32 partnerId, bytes32 reason) external;

    /// @notice Resolves a Disputed cycle. Upheld: the cycle becomes Rejected (void for good;
    /// the books re-propose under a new cycle id). Dismissed: it becomes Proposed again with its
    /// original deadline, so it may be finalized at once if the deadline passed.
    /// @dev Only DEFAULT_ADMIN_ROLE; reverts while paused.
    /// @param cycleId The cycle.
    /// @param upheld Whether the dispute is upheld.
    function resolveDispute(uint64 cycleId, bool upheld) external;

    /// @notice Finalizes a Proposed cycle once `block.timestamp >= disputeDeadline`. A cycle
    /// whose positions are all zero becomes Funded at once.
    /// @dev Anyone may call; reverts while paused.
    /// @param cycleId The cycle.
    function finalize(uint64 cycleId) external;

    /// @notice Funds a net debtor's position of a Finalized cycle: pulls |position| fen of the
    /// settlement token from `msg.sender` (who must have approved this contract). The last
    /// funding makes the cycle Funded.
    /// @dev Anyone may pay for a debtor; never paused; non-reentrant; state is updated
    /// before the transfer, and the balance increase must equal the position.
    /// @param cycleId The cycle.
    /// @param partnerId The net debtor.
    function fund(uint64 cycleId, uint32 partnerId) external;

    /// @notice Pays a net creditor's position of a Funded cycle to its payout address.
    /// @dev Anyone may trigger it (the tokens only ever go to the registered payout address);
    /// never paused; non-reentrant; checks-effects-interactions.
    /// @param cycleId The cycle.
    /// @param partnerId The net creditor.
    function claim(uint64 cycleId, uint32 partnerId) external;

    /// @notice Declares a Finalized cycle Defaulted once its funding deadline has passed,
    /// naming every net debtor that did not fund. Nobody is paid from a defaulted cycle; each
    /// debtor that did fund may `refund` its deposit, and the books settle the obligations
    /// again in a new cycle.
    /// @dev Anyone may call; never paused. `defaulters` must be strictly ascending, each listed,
    /// a net debtor and unfunded, and together owe exactly `totalDueFen - fundedFen`
    /// (`DefaultersIncomplete` otherwise), so the event names exactly the members in default.
    /// @param cycleId The cycle.
    /// @param defaulters The debtors that did not fund, strictly ascending.
    function declareDefault(uint64 cycleId, uint32[] calldata defaulters) external;

    /// @notice Returns a funded debtor's deposit from a Defaulted cycle to its payout address.
    /// @dev Anyone may trigger it (the tokens only go to the registered payout address); never
    /// paused; non-reentrant; checks-effects-interactions.
    /// @param cycleId The cycle.
    /// @param partnerId The debtor that funded.
    function refund(uint64 cycleId, uint32 partnerId) external;

    /// @notice A cycle as stored (status 0 when unknown).
    /// @param cycleId The cycle.
    /// @return The cycle.
    function getCycle(uint64 cycleId) external view returns (CycleView memory);

    /// @notice A partner's position in a cycle.
    /// @param cycleId The cycle.
    /// @param partnerId The partner.
    /// @return netPositionFen Net position, in fen (positive = receives).
    /// @return listed Whether the partner is listed in the cycle.
    /// @return disputed Whether the partner disputed the cycle.
    /// @return settled Whether the position was funded (debtor) or claimed (creditor).
    /// @return refunded Whether a funded debtor of a Defaulted cycle took its deposit back.
    function getPosition(uint64 cycleId, uint32 partnerId)
        external
        view
        returns (int256 netPositionFen, bool listed, bool disputed, bool settled, bool refunded);

    /// @notice A registered partner (all zero when unknown).
    /// @param partnerId The partner.
    /// @return The partner.
    function getPartner(uint32 partnerId) external view returns (PartnerView memory);

    /// @notice Proves one settlement entry against a cycle's root.
    /// @param cycleId The cycle.
    /// @param entryId The entry's id within the cycle.
    /// @param partnerId The entry's partner.
    /// @param kind The entry kind (the books' code).
    /// @param amountFen The entry amount, in fen (positive = the partner receives).
    /// @param salt The entry's private salt, as handed to its partner.
    /// @param proof StandardMerkleTree proof (sibling hashes, leaf to root).
    /// @return True when the cycle exists, is not void (Rejected or Defaulted: its obligations
    /// are settled again in another cycle), and the proof verifies.
    function verifyEntry(
        uint64 cycleId, uint64 entryId, uint32 partnerId, uint8 kind, int256 amountFen,
        bytes32 salt, bytes32[] calldata proof
    ) external view returns (bool);

    /// @notice The settlement leaf of one entry (double-hashed StandardMerkleTree leaf).
    /// @param cycleId The cycle.
    /// @param entryId The entry's id.
    /// @param partnerId The partner.
    /// @param kind The entry kind.
    /// @param amountFen The amount, in fen.
    /// @param salt The entry's private salt.
    /// @return The leaf hash.
    function computeEntryLeaf(
        uint64 cycleId, uint64 entryId, uint32 partnerId, uint8 kind, int256 amountFen,
        bytes32 salt
    ) external pure returns (bytes32);

    /// @notice The EIP-712 digest the signers sign for `proposeCycle`, for the struct
    /// `CycleReport(uint64 cycleId,bytes32 entriesRoot,uint64 entryCount,uint32[] partnerIds,int256[] netPositions)`.
    /// @param cycleId The cycle.
    /// @param entriesRoot The entries' root.
    /// @param entryCount Number of entries.
    /// @param partnerIds Listed partners.
    /// @param netPositions Net positions, in fen.
    /// @return The digest bound to this chain and this contract.
    function cycleReportDigest(
        uint64 cycleId, bytes32 entriesRoot, uint64 entryCount,
        uint32[] calldata partnerIds, int256[] calldata netPositions
    ) external view returns (bytes32);

    /// @notice The oracle quorum that authorizes cycles.
    /// @return The OracleQuorum address.
    function oracleQuorum() external view returns (address);

    /// @notice The ERC-20 settlement token (1 unit = 1 fen).
    /// @return The token address.
    function settlementToken() external view returns (address);

    /// @notice The dispute window every cycle gets after proposal.
    /// @return The window, in seconds.
    function disputeWindowDurationSeconds() external view returns (uint64);

    /// @notice The funding window every cycle gets after its dispute deadline.
    /// @return The window, in seconds.
    function fundingWindowDurationSeconds() external view returns (uint64);
}
