// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ClearingHouse} from "../../../contracts/ClearingHouse.sol";
import {OracleQuorum} from "../../../contracts/OracleQuorum.sol";
import {SettlementToken} from "../../../contracts/SettlementToken.sol";
import {NetworkTimelock} from "../../../contracts/governance/NetworkTimelock.sol";
import {IClearingHouse} from "../../../contracts/interfaces/IClearingHouse.sol";

import {Signing} from "../base/Signing.sol";
import {TestBase} from "../base/TestBase.sol";

/// @title ClearingHouseHandler
/// @notice What the invariant fuzzer calls: every public action drives the network the way its
/// users do (quorum-signed proposals, disputes, timelocked dispute resolution and pausing,
/// finalization, funding, claims, default declarations, refunds, timelocked signer changes,
/// and unauthorized attempts at them), and checks each outcome against a model.
/// @dev Model-based: before each call the handler predicts from its own books whether the call
/// must succeed, then compares (`ModelMismatch` on any difference, so under
/// `fail_on_revert = true` the fuzzer reports the sequence). Successful calls update the model
/// and the ghost ledger (deposits, claims, refunds). The `check*` views and
/// `probeDrainWhilePaused` are what the invariants assert after every call.
/// Time is the handler's own (`currentTime`): every action first warps to it, since a
/// `vm.warp` is not guaranteed to outlive the call that made it.
contract ClearingHouseHandler is TestBase {
    /// @notice A call's outcome differs from the model's prediction.
    error ModelMismatch(string action, bool succeeded, bool expected, bytes revertData);
    /// @notice An account other than the timelock changed the signer set or took the admin role.
    error UnauthorizedGovernanceChange(string action, address actor);
    /// @notice An exit failed while the ClearingHouse was paused (partnerId 0 for a default).
    error ExitFailed(string action, uint64 cycleId, uint32 partnerId, bytes revertData);
    /// @notice A claim or refund succeeded a second time for the same position.
    error ExitTakenTwice(string action, uint64 cycleId, uint32 partnerId);
    /// @notice `probeDrainWhilePaused` ran every exit and emptied the ClearingHouse (the probe
    /// always reverts, so it changes nothing).
    error DrainComplete(uint256 exits);

    struct Deployment {
        ClearingHouse house;
        OracleQuorum quorum;
        SettlementToken token;
        NetworkTimelock timelock;
        address deployer;
        address proposer;
        address canceller;
        address relayer;
        address benefactor;
        uint256 minDelay;
        uint256[] signerPool;
        uint256 initialSignerCount;
        uint256 initialThreshold;
        uint32[] partnerIds;
        address[] payouts;
    }

    /// @dev One cycle as the model sees it; statuses as in IClearingHouse.
    struct CycleModel {
        uint64 id;
        uint8 status;
        uint64 disputeDeadline;
        uint64 fundingDeadline;
        uint256 totalDue;
        uint256 funded;
        /// Claims (Funded) or refunds (Defaulted) paid so far.
        uint256 paidOut;
        uint32[] partners;
        int256[] nets;
    }

    struct PositionModel {
        bool disputed;
        /// Funded (debtor) or claimed (creditor).
        bool settled;
        bool refunded;
    }

    /// @dev A signer-set change scheduled on the timelock; state 0 pending, 1 executed,
    /// 2 cancelled.
    struct SignerChange {
        bytes32 salt;
        uint256[] keys;
        uint256 threshold;
        uint256 readyAt;
        uint8 state;
    }

    struct Proposal {
        uint64 cycleId;
        bytes32 root;
        uint64 entryCount;
        uint32[] ids;
        int256[] nets;
        bytes[] signatures;
        bool expectOk;
    }

    uint8 internal constant PROPOSED = 1;
    uint8 internal constant DISPUTED = 2;
    uint8 internal constant FINALIZED = 3;
    uint8 internal constant FUNDED = 4;
    uint8 internal constant REJECTED = 5;
    uint8 internal constant DEFAULTED = 6;
    uint64 internal constant FIRST_CYCLE_ID = 1 * 10 ** 8 + 20_260_101;
    /// @dev A listed-nowhere, registered-nowhere partner id.
    uint32 internal constant STRANGER_ID = 99;
    /// @dev A key that is never in the signer pool.
    uint256 internal constant OUTSIDER_KEY = uint256(keccak256("creditnet.outsider.signer"));

    ClearingHouse public immutable house;
    OracleQuorum public immutable quorum;
    SettlementToken public immutable token;
    NetworkTimelock public immutable timelock;
    address internal immutable _deployer;
    address internal immutable _proposer;
    address internal immutable _canceller;
    address internal immutable _relayer;
    address internal immutable _benefactor;
    uint256 internal immutable _minDelay;
    uint64 internal immutable _disputeWindow;
    uint64 internal immutable _fundingWindow;

    uint32[] internal _partnerIds;
    mapping(uint32 partnerId => address) public payoutOf;
    mapping(uint32 partnerId => bool) internal _active;

    CycleModel[] internal _cycles;
    mapping(uint64 cycleId => mapping(uint32 partnerId => PositionModel)) internal _positions;

    uint256 public currentTime;
    bool public paused;

    uint256[] internal _signerPool;
    uint256[] internal _signerKeys;
    uint256 public signerThreshold;
    uint64 public expectedSignerSetVersion;
    SignerChange[] internal _signerChanges;
    uint256 internal _saltNonce;

    // Ghost ledger.
    uint256 public ghostDeposited;
    uint256 public ghostClaimed;
    uint256 public ghostRefunded;

    // Coverage counters (printed by the invariant test's afterInvariant under -vv).
    uint256 public proposals;
    uint256 public refusedProposals;
    uint256 public disputes;
    uint256 public resolutions;
    uint256 public finalizations;
    uint256 public fundings;
    uint256 public fundingsWhilePaused;
    uint256 public fullyFundedCycles;
    uint256 public claims;
    uint256 public claimsWhilePaused;
    uint256 public defaults;
    uint256 public refunds;
    uint256 public refundsWhilePaused;
    uint256 public pauseToggles; // pauses and unpauses
    uint256 public signerChangesExecuted;
    uint256 public earlyExecutionsRefused;
    uint256 public unauthorizedAttempts;

    constructor(Deployment memory d) {
        house = d.house;
        quorum = d.quorum;
        token = d.token;
        timelock = d.timelock;
        _deployer = d.deployer;
        _proposer = d.proposer;
        _canceller = d.canceller;
        _relayer = d.relayer;
        _benefactor = d.benefactor;
        _minDelay = d.minDelay;
        _disputeWindow = d.house.disputeWindowDurationSeconds();
        _fundingWindow = d.house.fundingWindowDurationSeconds();
        for (uint256 i = 0; i < d.partnerIds.length; ++i) {
            _partnerIds.push(d.partnerIds[i]);
            payoutOf[d.partnerIds[i]] = d.payouts[i];
            _active[d.partnerIds[i]] = true;
        }
        _signerPool = d.signerPool;
        for (uint256 i = 0; i < d.initialSignerCount; ++i) {
            _signerKeys.push(d.signerPool[i]);
        }
        signerThreshold = d.initialThreshold;
        expectedSignerSetVersion = 1;
        currentTime = block.timestamp;
    }

    modifier timed() {
        vm.warp(currentTime);
        _;
    }

    // ---------------------------------------------------------------- cycle actions

    /// @notice Submits a quorum-signed cycle over a subset of the active partners (mode 5: of
    /// all partners, inactive ones included); modes 6..9 make it invalid on purpose (reused id,
    /// a signature by a non-signer, too few signatures, positions that do not sum to zero);
    /// modes 10..19 are valid like 0..4.
    function propose(uint256 partnerMask, uint256 amountSeed, uint8 mode) external timed {
        mode = mode % 20;
        Proposal memory p;
        p.ids = _pickPartners(partnerMask, mode != 5);
        p.nets = _makePositions(p.ids.length, amountSeed);
        p.cycleId = uint64(FIRST_CYCLE_ID + _cycles.length);
        bool reused = mode == 6 && _cycles.length > 0;
        if (reused) p.cycleId = _cycles[amountSeed % _cycles.length].id;
        if (mode == 9) p.nets[p.nets.length - 1] += 1;
        p.root = keccak256(abi.encode("entries", p.cycleId, amountSeed));
        p.entryCount = uint64(1 + (amountSeed % 1000));
        bytes32 digest = house.cycleReportDigest(p.cycleId, p.root, p.entryCount, p.ids, p.nets);
        bool signaturesOk;
        (p.signatures, signaturesOk) = _quorumSignatures(digest, mode, amountSeed);
        p.expectOk = !paused && !reused && mode != 9 && signaturesOk && _allActive(p.ids);
        _submit(p, _actor(amountSeed));
    }

    /// @notice A listed partner's payout disputes (or, with `wrongCaller`, someone else tries).
    function dispute(uint256 cycleSeed, uint256 partnerSeed, bool wrongCaller) external timed {
        if (_cycles.length == 0) return;
        CycleModel storage c = _pickCycle(cycleSeed, PROPOSED);
        uint32 partnerId = _pickPartnerOf(c, partnerSeed, 0);
        address payout = payoutOf[partnerId];
        address caller = wrongCaller || payout == address(0) ? _benefactor : payout;
        PositionModel storage position = _positions[c.id][partnerId];
        bool expectOk = (c.status == PROPOSED || c.status == DISPUTED)
            && currentTime < c.disputeDeadline && _isListed(c, partnerId) && caller == payout
            && !position.disputed;
        bool ok;
        bytes memory err;
        vm.prank(caller);
        try house.dispute(c.id, partnerId, bytes32(partnerSeed)) {
            ok = true;
        } catch (bytes memory e) {
            err = e;
        }
        _expect("dispute", ok, expectOk, err);
        if (!ok) return;
        position.disputed = true;
        c.status = DISPUTED;
        ++disputes;
    }

    /// @notice The timelock resolves a dispute (scheduled, then executed after the delay).
    function resolveDispute(uint256 cycleSeed, bool upheld) external timed {
        if (_cycles.length == 0) return;
        CycleModel storage c = _pickCycle(cycleSeed, DISPUTED);
        bool expectOk = c.status == DISPUTED && !paused;
        (bool ok, bytes memory err) = _timelockCall(
            address(house), abi.encodeCall(ClearingHouse.resolveDispute, (c.id, upheld))
        );
        _expect("resolveDispute", ok, expectOk, err);
        if (!ok) return;
        c.status = upheld ? REJECTED : PROPOSED;
        ++resolutions;
    }

    /// @notice Anyone finalizes; three times in four time first moves to the dispute deadline.
    function finalize(uint256 cycleSeed, uint8 timing) external timed {
        if (_cycles.length == 0) return;
        CycleModel storage c = _pickCycle(cycleSeed, PROPOSED);
        if (timing % 4 != 0) _warpTo(c.disputeDeadline);
        bool expectOk = c.status == PROPOSED && currentTime >= c.disputeDeadline && !paused;
        bool ok;
        bytes memory err;
        vm.prank(_actor(cycleSeed));
        try house.finalize(c.id) {
            ok = true;
        } catch (bytes memory e) {
            err = e;
        }
        _expect("finalize", ok, expectOk, err);
        if (!ok) return;
        c.status = c.totalDue == 0 ? FUNDED : FINALIZED;
        ++finalizations;
        if (c.totalDue == 0) ++fullyFundedCycles;
    }

    /// @notice One debtor's position is funded, by its payout or by a third party.
    function fund(uint256 cycleSeed, uint256 partnerSeed, bool byBenefactor) external timed {
        if (_cycles.length == 0) return;
        CycleModel storage c = _pickCycle(cycleSeed, FINALIZED);
        uint32 partnerId = _pickPartnerOf(c, partnerSeed, -1);
        _fund(c, partnerId, byBenefactor ? _benefactor : payoutOf[partnerId]);
    }

    /// @notice Every unfunded debtor of a cycle funds (reaches Funded within a short
    /// sequence), or with `allButOne` every one but the last (sets up a partial default).
    function fundAll(uint256 cycleSeed, bool byBenefactor, bool allButOne) external timed {
        if (_cycles.length == 0) return;
        CycleModel storage c = _pickCycle(cycleSeed, FINALIZED);
        uint32[] memory unfunded = _unfundedDebtors(c);
        uint256 count = allButOne && unfunded.length > 0 ? unfunded.length - 1 : unfunded.length;
        for (uint256 i = 0; i < count; ++i) {
            _fund(c, unfunded[i], byBenefactor ? _benefactor : payoutOf[unfunded[i]]);
        }
    }

    /// @notice Anyone claims a creditor's position (must work while paused).
    function claim(uint256 cycleSeed, uint256 partnerSeed, uint256 callerSeed) external timed {
        if (_cycles.length == 0) return;
        CycleModel storage c = _pickCycle(cycleSeed, FUNDED);
        _claim(c, _pickPartnerOf(c, partnerSeed, 1), callerSeed);
    }

    /// @notice Anyone claims every unclaimed creditor of a cycle.
    function claimAll(uint256 cycleSeed, uint256 callerSeed) external timed {
        if (_cycles.length == 0) return;
        CycleModel storage c = _pickCycle(cycleSeed, FUNDED);
        for (uint256 i = 0; i < c.partners.length; ++i) {
            if (c.nets[i] > 0 && !_positions[c.id][c.partners[i]].settled) {
                _claim(c, c.partners[i], callerSeed ^ i);
            }
        }
    }

    function _claim(CycleModel storage c, uint32 partnerId, uint256 callerSeed) internal {
        int256 net = _netOf(c, partnerId);
        PositionModel storage position = _positions[c.id][partnerId];
        bool expectOk =
            c.status == FUNDED && _isListed(c, partnerId) && net > 0 && !position.settled;
        address payout = payoutOf[partnerId];
        uint256 before = token.balanceOf(payout);
        bool ok;
        bytes memory err;
        vm.prank(_actor(callerSeed));
        try house.claim(c.id, partnerId) {
            ok = true;
        } catch (bytes memory e) {
            err = e;
        }
        _expect(paused ? "claim (paused)" : "claim", ok, expectOk, err);
        if (!ok) return;
        uint256 amount = uint256(net);
        assertEq(token.balanceOf(payout) - before, amount, "claim: paid to the payout address");
        position.settled = true;
        c.paidOut += amount;
        ghostClaimed += amount;
        ++claims;
        if (paused) ++claimsWhilePaused;
    }

    /// @notice Anyone declares a default naming the unfunded debtors; `mode` 5..8 name a wrong
    /// list on purpose (one short, one too many, unsorted, duplicated); three times in four
    /// time first moves to the funding deadline.
    function declareDefault(uint256 cycleSeed, uint8 mode, uint8 timing, uint256 callerSeed)
        external
        timed
    {
        if (_cycles.length == 0) return;
        CycleModel storage c = _pickCycle(cycleSeed, FINALIZED);
        if (timing % 4 != 0) _warpTo(c.fundingDeadline);
        mode = mode % 9 < 5 ? 0 : (mode % 9) - 4;
        uint32[] memory defaulters = _corrupt(_unfundedDebtors(c), mode, c);
        bool expectOk = mode == 0 && c.status == FINALIZED && currentTime >= c.fundingDeadline;
        bool ok;
        bytes memory err;
        vm.prank(_actor(callerSeed));
        try house.declareDefault(c.id, defaulters) {
            ok = true;
        } catch (bytes memory e) {
            err = e;
        }
        _expect("declareDefault", ok, expectOk, err);
        if (!ok) return;
        c.status = DEFAULTED;
        ++defaults;
    }

    /// @notice Anyone refunds a funded debtor of a Defaulted cycle (must work while paused).
    function refund(uint256 cycleSeed, uint256 partnerSeed, uint256 callerSeed) external timed {
        if (_cycles.length == 0) return;
        CycleModel storage c = _pickCycle(cycleSeed, DEFAULTED);
        _refund(c, _pickPartnerOf(c, partnerSeed, -1), callerSeed);
    }

    /// @notice Anyone refunds every funded, unrefunded debtor of a cycle.
    function refundAll(uint256 cycleSeed, uint256 callerSeed) external timed {
        if (_cycles.length == 0) return;
        CycleModel storage c = _pickCycle(cycleSeed, DEFAULTED);
        for (uint256 i = 0; i < c.partners.length; ++i) {
            PositionModel storage position = _positions[c.id][c.partners[i]];
            if (c.nets[i] < 0 && position.settled && !position.refunded) {
                _refund(c, c.partners[i], callerSeed ^ i);
            }
        }
    }

    function _refund(CycleModel storage c, uint32 partnerId, uint256 callerSeed) internal {
        int256 net = _netOf(c, partnerId);
        PositionModel storage position = _positions[c.id][partnerId];
        bool expectOk = c.status == DEFAULTED && _isListed(c, partnerId) && net < 0
            && position.settled && !position.refunded;
        address payout = payoutOf[partnerId];
        uint256 before = token.balanceOf(payout);
        bool ok;
        bytes memory err;
        vm.prank(_actor(callerSeed));
        try house.refund(c.id, partnerId) {
            ok = true;
        } catch (bytes memory e) {
            err = e;
        }
        _expect(paused ? "refund (paused)" : "refund", ok, expectOk, err);
        if (!ok) return;
        uint256 amount = uint256(-net);
        assertEq(token.balanceOf(payout) - before, amount, "refund: paid to the payout address");
        position.refunded = true;
        c.paidOut += amount;
        ghostRefunded += amount;
        ++refunds;
        if (paused) ++refundsWhilePaused;
    }

    /// @notice The timelock pauses the ClearingHouse (refused when already paused).
    function pause() external timed {
        (bool ok, bytes memory err) =
            _timelockCall(address(house), abi.encodeCall(ClearingHouse.pause, ()));
        _expect("pause", ok, !paused, err);
        if (!ok) return;
        paused = true;
        ++pauseToggles;
    }

    /// @notice The timelock lifts the pause (refused when not paused).
    function unpause() external timed {
        (bool ok, bytes memory err) =
            _timelockCall(address(house), abi.encodeCall(ClearingHouse.unpause, ()));
        _expect("unpause", ok, paused, err);
        if (!ok) return;
        paused = false;
        ++pauseToggles;
    }

    /// @notice The relayer deactivates a partner (one time in three) or activates it.
    function setPartnerActive(uint256 partnerSeed) external timed {
        uint32 partnerId = _partnerIds[(partnerSeed >> 8) % _partnerIds.length];
        bool next = partnerSeed % 3 != 0;
        bool ok;
        bytes memory err;
        vm.prank(_relayer);
        try house.setPartnerActive(partnerId, next) {
            ok = true;
        } catch (bytes memory e) {
            err = e;
        }
        _expect("setPartnerActive", ok, !paused, err);
        if (ok) _active[partnerId] = next;
    }

    /// @notice Time passes (up to three days).
    function warp(uint256 secondsSeed) external {
        _warpTo(currentTime + _bound(secondsSeed, 1, 3 days));
    }

    // ---------------------------------------------------------------- governance actions

    /// @notice Someone other than the timelock tries to change the signer set: directly, by
    /// granting itself the admin role, by executing an operation nobody scheduled, and by
    /// scheduling one without the proposer role. Every attempt must fail.
    function setSignersAsOutsider(uint256 actorSeed, uint256 setSeed) external timed {
        address actor = _outsider(actorSeed);
        (uint256[] memory keys, uint256 threshold) = _signerSetFromSeed(setSeed);
        bytes memory data =
            abi.encodeCall(OracleQuorum.setSigners, (Signing.addresses(keys), threshold));
        uint64 versionBefore = quorum.signerSetVersion();
        bytes32 adminRole = quorum.DEFAULT_ADMIN_ROLE();

        vm.prank(actor);
        try quorum.setSigners(Signing.addresses(keys), threshold) {
            revert UnauthorizedGovernanceChange("setSigners", actor);
        } catch {}
        vm.prank(actor);
        try quorum.grantRole(adminRole, actor) {
            revert UnauthorizedGovernanceChange("grantRole", actor);
        } catch {}
        bytes32 straySalt = keccak256(abi.encode("never scheduled", actorSeed));
        vm.prank(actor);
        try timelock.execute(address(quorum), 0, data, bytes32(0), straySalt) {
            revert UnauthorizedGovernanceChange("execute unscheduled", actor);
        } catch {}
        if (actor != _proposer) {
            vm.prank(actor);
            try timelock.schedule(address(quorum), 0, data, bytes32(0), straySalt, _minDelay) {
                revert UnauthorizedGovernanceChange("schedule", actor);
            } catch {}
        }
        assertEq(quorum.signerSetVersion(), versionBefore, "outsider changed the signer set");
        ++unauthorizedAttempts;
    }

    /// @notice The proposer schedules a signer-set change (an invalid one when `!valid`).
    function scheduleSignerChange(uint256 setSeed, bool valid) external timed {
        (uint256[] memory keys, uint256 threshold) = _signerSetFromSeed(setSeed);
        if (!valid) threshold = setSeed % 2 == 0 ? 0 : keys.length + 1;
        bytes32 salt = bytes32(++_saltNonce);
        vm.prank(_proposer);
        timelock.schedule(
            address(quorum), 0, _setSignersCall(keys, threshold), bytes32(0), salt, _minDelay
        );
        SignerChange storage change = _signerChanges.push();
        change.salt = salt;
        change.keys = keys;
        change.threshold = threshold;
        change.readyAt = currentTime + _minDelay;
    }

    /// @notice Anyone executes a scheduled signer change, possibly before it is ready.
    function executeSignerChange(uint256 changeSeed, bool waitUntilReady, uint256 callerSeed)
        external
        timed
    {
        if (_signerChanges.length == 0) return;
        SignerChange storage change = _signerChanges[changeSeed % _signerChanges.length];
        if (waitUntilReady) _warpTo(change.readyAt);
        bool valid = change.threshold >= 1 && change.threshold <= change.keys.length;
        bool expectOk = change.state == 0 && currentTime >= change.readyAt && valid;
        bytes memory data = _setSignersCall(change.keys, change.threshold);
        bool ok;
        bytes memory err;
        vm.prank(_actor(callerSeed));
        try timelock.execute(address(quorum), 0, data, bytes32(0), change.salt) {
            ok = true;
        } catch (bytes memory e) {
            err = e;
        }
        _expect("timelock execute setSigners", ok, expectOk, err);
        if (!ok) {
            if (currentTime < change.readyAt) ++earlyExecutionsRefused;
            return;
        }
        change.state = 1;
        _signerKeys = change.keys;
        signerThreshold = change.threshold;
        ++expectedSignerSetVersion;
        ++signerChangesExecuted;
    }

    /// @notice The proposer (also a canceller) or the canceller-only partner account cancels
    /// a scheduled signer change.
    function cancelSignerChange(uint256 changeSeed, bool byPartner) external timed {
        if (_signerChanges.length == 0) return;
        SignerChange storage change = _signerChanges[changeSeed % _signerChanges.length];
        bytes32 id = timelock.hashOperation(
            address(quorum),
            0,
            _setSignersCall(change.keys, change.threshold),
            bytes32(0),
            change.salt
        );
        bool ok;
        bytes memory err;
        vm.prank(byPartner ? _canceller : _proposer);
        try timelock.cancel(id) {
            ok = true;
        } catch (bytes memory e) {
            err = e;
        }
        _expect("timelock cancel", ok, change.state == 0, err);
        if (ok) change.state = 2;
    }

    // ---------------------------------------------------------------- checks (invariants)

    /// @notice The ClearingHouse holds exactly what was deposited and not yet paid out: by the
    /// ghost ledger, by the model, by the contract's own books, and as
    /// Σ Funded (funded − claimed) + Σ Defaulted (funded − refunded) + Σ Finalized funded.
    function checkTokenConservation() external view {
        uint256 balance = token.balanceOf(address(house));
        assertEq(balance, ghostDeposited - ghostClaimed - ghostRefunded, "balance vs ghost ledger");
        uint256 byModel;
        uint256 byContract;
        uint256 byStatus;
        for (uint256 i = 0; i < _cycles.length; ++i) {
            CycleModel storage c = _cycles[i];
            IClearingHouse.CycleView memory v = house.getCycle(c.id);
            byModel += c.funded - c.paidOut;
            byContract += v.fundedFen - v.claimedFen;
            if (v.status == FUNDED || v.status == DEFAULTED || v.status == FINALIZED) {
                byStatus += v.fundedFen - v.claimedFen;
            } else {
                assertEq(v.fundedFen, 0, "tokens in a cycle that never finalized");
            }
        }
        assertEq(balance, byModel, "balance vs model");
        assertEq(balance, byContract, "balance vs contract books");
        assertEq(balance, byStatus, "balance vs funded/defaulted/finalized cycles");
        uint256 held = balance + token.balanceOf(_benefactor);
        for (uint256 i = 0; i < _partnerIds.length; ++i) {
            held += token.balanceOf(payoutOf[_partnerIds[i]]);
        }
        assertEq(held, token.totalSupply(), "tokens left the network's accounts");
    }

    /// @notice Every proposed cycle's positions sum to zero, and its total due is the sum of
    /// the creditors' positions.
    function checkZeroSum() external view {
        for (uint256 i = 0; i < _cycles.length; ++i) {
            CycleModel storage c = _cycles[i];
            int256 sum;
            uint256 due;
            for (uint256 j = 0; j < c.partners.length; ++j) {
                (int256 net, bool listed,,,) = house.getPosition(c.id, c.partners[j]);
                assertTrue(listed, "listed partner not listed");
                assertEq(net, c.nets[j], "stored position");
                sum += net;
                if (net > 0) due += uint256(net);
            }
            assertEq(sum, int256(0), "net positions do not sum to zero");
            IClearingHouse.CycleView memory v = house.getCycle(c.id);
            assertEq(v.totalDueFen, due, "total due vs creditor positions");
            assertEq(v.partnerCount, c.partners.length, "partner count");
        }
    }

    /// @notice The contract agrees with the model, status by status: funded = claimed + still
    /// claimable (Funded), funded = refunded + still refundable (Defaulted), funded = the
    /// settled debtors (Finalized), nothing funded elsewhere.
    function checkAccounting() external view {
        assertTrue(house.paused() == paused, "paused flag");
        for (uint256 i = 0; i < _cycles.length; ++i) {
            _checkCycle(_cycles[i]);
        }
    }

    /// @notice Only executed timelock operations changed the signer set, and only the timelock
    /// holds the admin role on the quorum and the ClearingHouse.
    function checkGovernance() external view {
        assertEq(quorum.signerSetVersion(), expectedSignerSetVersion, "signer set version");
        assertEq(quorum.threshold(), signerThreshold, "threshold");
        address[] memory onChain = quorum.signers();
        assertEq(onChain.length, _signerKeys.length, "signer count");
        for (uint256 i = 0; i < onChain.length; ++i) {
            assertEq(onChain[i], vm.addr(_signerKeys[i]), "signer");
        }
        bytes32 adminRole = quorum.DEFAULT_ADMIN_ROLE();
        assertTrue(quorum.hasRole(adminRole, address(timelock)), "timelock lost the quorum admin");
        assertTrue(house.hasRole(adminRole, address(timelock)), "timelock lost the house admin");
        address[6] memory others =
            [_deployer, _proposer, _canceller, _relayer, _benefactor, address(this)];
        for (uint256 i = 0; i < others.length; ++i) {
            assertTrue(!quorum.hasRole(adminRole, others[i]), "non-timelock quorum admin");
            assertTrue(!house.hasRole(adminRole, others[i]), "non-timelock house admin");
        }
    }

    /// @notice Pauses the ClearingHouse (if it is not), moves past every funding deadline and
    /// runs every exit there is: declares each Finalized cycle Defaulted, refunds each funded
    /// debtor of a Defaulted cycle, claims each creditor of a Funded cycle. Each must succeed
    /// and pay its payout exactly, and none can be taken a second time; afterwards the
    /// ClearingHouse must hold nothing. Always reverts (`DrainComplete` on success), so it
    /// changes nothing.
    function probeDrainWhilePaused() external {
        vm.warp(currentTime);
        if (!house.paused()) {
            vm.prank(address(timelock));
            house.pause();
        }
        uint256 latest = currentTime;
        for (uint256 i = 0; i < _cycles.length; ++i) {
            if (_cycles[i].fundingDeadline > latest) latest = _cycles[i].fundingDeadline;
        }
        vm.warp(latest);
        uint256 exits;
        for (uint256 i = 0; i < _cycles.length; ++i) {
            exits += _drainCycle(_cycles[i]);
        }
        assertEq(token.balanceOf(address(house)), 0, "tokens stuck after every exit ran");
        revert DrainComplete(exits);
    }

    /// @notice Number of cycles proposed so far.
    function cycleCount() external view returns (uint256) {
        return _cycles.length;
    }

    /// @notice The model of the `index`-th proposed cycle, in brief.
    function cycleSummary(uint256 index)
        external
        view
        returns (uint64 cycleId, uint8 status, uint256 totalDue, uint256 debtors, uint256 creditors)
    {
        CycleModel storage c = _cycles[index];
        for (uint256 i = 0; i < c.nets.length; ++i) {
            if (c.nets[i] < 0) ++debtors;
            if (c.nets[i] > 0) ++creditors;
        }
        return (c.id, c.status, c.totalDue, debtors, creditors);
    }

    // ---------------------------------------------------------------- internals

    /// @dev Three times in four a cycle in `status` if there is one (searching from a random
    /// index) — for Funded one with a claim left, for Defaulted one with a refund left —
    /// otherwise any cycle. The caller checks that there is at least one cycle.
    function _pickCycle(uint256 seed, uint8 status) internal view returns (CycleModel storage) {
        seed = _mix(seed);
        uint256 n = _cycles.length;
        uint256 offset = (seed >> 8) % n;
        if (seed % 4 != 0) {
            for (uint256 i = 0; i < n; ++i) {
                CycleModel storage candidate = _cycles[(offset + i) % n];
                if (candidate.status == status && _hasExitLeft(candidate)) return candidate;
            }
        }
        return _cycles[offset];
    }

    function _submit(Proposal memory p, address submitter) internal {
        bool ok;
        bytes memory err;
        vm.prank(submitter);
        try house.proposeCycle(p.cycleId, p.root, p.entryCount, p.ids, p.nets, p.signatures) {
            ok = true;
        } catch (bytes memory e) {
            err = e;
        }
        _expect("proposeCycle", ok, p.expectOk, err);
        if (!ok) {
            ++refusedProposals;
            return;
        }
        ++proposals;
        CycleModel storage c = _cycles.push();
        c.id = p.cycleId;
        c.status = PROPOSED;
        c.disputeDeadline = uint64(currentTime) + _disputeWindow;
        c.fundingDeadline = c.disputeDeadline + _fundingWindow;
        c.partners = p.ids;
        c.nets = p.nets;
        for (uint256 i = 0; i < p.nets.length; ++i) {
            if (p.nets[i] > 0) c.totalDue += uint256(p.nets[i]);
        }
    }

    function _fund(CycleModel storage c, uint32 partnerId, address payer) internal {
        int256 net = _netOf(c, partnerId);
        PositionModel storage position = _positions[c.id][partnerId];
        // Funding is never paused: a pause must not push a payable cycle into default.
        bool expectOk =
            c.status == FINALIZED && _isListed(c, partnerId) && net < 0 && !position.settled;
        if (payer == address(0)) payer = _benefactor;
        uint256 before = token.balanceOf(address(house));
        bool ok;
        bytes memory err;
        vm.prank(payer);
        try house.fund(c.id, partnerId) {
            ok = true;
        } catch (bytes memory e) {
            err = e;
        }
        _expect("fund", ok, expectOk, err);
        if (!ok) return;
        uint256 amount = uint256(-net);
        assertEq(token.balanceOf(address(house)) - before, amount, "fund: pulled amount");
        position.settled = true;
        c.funded += amount;
        ghostDeposited += amount;
        ++fundings;
        if (paused) ++fundingsWhilePaused;
        if (c.funded == c.totalDue) {
            c.status = FUNDED;
            ++fullyFundedCycles;
        }
    }

    function _checkCycle(CycleModel storage c) internal view {
        IClearingHouse.CycleView memory v = house.getCycle(c.id);
        assertEq(v.status, c.status, "cycle status");
        assertEq(v.fundedFen, c.funded, "fundedFen");
        assertEq(v.claimedFen, c.paidOut, "claimedFen");
        assertEq(v.disputeDeadline, c.disputeDeadline, "dispute deadline");
        assertEq(v.fundingDeadline, c.fundingDeadline, "funding deadline");
        uint256 settledDebts;
        uint256 claimable;
        uint256 refundable;
        for (uint256 j = 0; j < c.partners.length; ++j) {
            uint32 partnerId = c.partners[j];
            (int256 net,, bool disputed, bool settled, bool refunded) =
                house.getPosition(c.id, partnerId);
            PositionModel storage m = _positions[c.id][partnerId];
            assertTrue(disputed == m.disputed, "disputed flag");
            assertTrue(settled == m.settled, "settled flag");
            assertTrue(refunded == m.refunded, "refunded flag");
            assertTrue(!refunded || (settled && net < 0), "refund of an unfunded position");
            if (net < 0 && settled) settledDebts += uint256(-net);
            if (net > 0 && !settled) claimable += uint256(net);
            if (net < 0 && settled && !refunded) refundable += uint256(-net);
        }
        assertEq(v.fundedFen, settledDebts, "fundedFen vs funded debtors");
        if (v.status == FUNDED) {
            assertEq(v.fundedFen, v.totalDueFen, "Funded cycle not fully funded");
            assertEq(v.fundedFen, v.claimedFen + claimable, "funded != claimed + claimable");
        } else if (v.status == DEFAULTED) {
            assertTrue(v.fundedFen < v.totalDueFen, "Defaulted cycle was fully funded");
            assertEq(v.fundedFen, v.claimedFen + refundable, "funded != refunded + refundable");
        } else {
            assertEq(v.claimedFen, 0, "paid out of a cycle that is not Funded or Defaulted");
            if (v.status != FINALIZED) assertEq(v.fundedFen, 0, "funded before finalization");
        }
    }

    /// @dev Runs every exit of one cycle (see probeDrainWhilePaused), checks that none can
    /// be taken twice, and returns how many ran.
    function _drainCycle(CycleModel storage c) internal returns (uint256 exits) {
        uint8 status = house.getCycle(c.id).status;
        if (status == FINALIZED) {
            vm.prank(_benefactor);
            try house.declareDefault(c.id, _unfundedDebtorsOnChain(c)) {}
            catch (bytes memory err) {
                revert ExitFailed("declareDefault", c.id, 0, err);
            }
            status = DEFAULTED;
        }
        if (status != FUNDED && status != DEFAULTED) return 0;
        for (uint256 j = 0; j < c.partners.length; ++j) {
            uint32 partnerId = c.partners[j];
            (int256 net,,, bool settled, bool refunded) = house.getPosition(c.id, partnerId);
            if (status == FUNDED && net > 0 && !settled) {
                _exit(true, c.id, partnerId, uint256(net));
                ++exits;
            } else if (status == DEFAULTED && net < 0 && settled && !refunded) {
                _exit(false, c.id, partnerId, uint256(-net));
                ++exits;
            }
        }
    }

    /// @dev Claims (or refunds) one position, which must pay its payout exactly `amount`,
    /// then checks that a second attempt is refused.
    function _exit(bool isClaim, uint64 cycleId, uint32 partnerId, uint256 amount) internal {
        string memory action = isClaim ? "claim" : "refund";
        address payout = payoutOf[partnerId];
        uint256 before = token.balanceOf(payout);
        (bool ok, bytes memory err) = _tryExit(isClaim, cycleId, partnerId);
        if (!ok) revert ExitFailed(action, cycleId, partnerId, err);
        assertEq(token.balanceOf(payout) - before, amount, string.concat(action, ": amount"));
        (ok,) = _tryExit(isClaim, cycleId, partnerId);
        if (ok) revert ExitTakenTwice(action, cycleId, partnerId);
    }

    function _tryExit(bool isClaim, uint64 cycleId, uint32 partnerId)
        internal
        returns (bool ok, bytes memory err)
    {
        if (isClaim) {
            try house.claim(cycleId, partnerId) {
                ok = true;
            } catch (bytes memory e) {
                err = e;
            }
        } else {
            try house.refund(cycleId, partnerId) {
                ok = true;
            } catch (bytes memory e) {
                err = e;
            }
        }
    }

    function _timelockCall(address target, bytes memory data)
        internal
        returns (bool ok, bytes memory err)
    {
        bytes32 salt = bytes32(++_saltNonce);
        vm.prank(_proposer);
        timelock.schedule(target, 0, data, bytes32(0), salt, _minDelay);
        _warpTo(currentTime + _minDelay);
        try timelock.execute(target, 0, data, bytes32(0), salt) {
            ok = true;
        } catch (bytes memory e) {
            err = e;
        }
    }

    function _expect(string memory action, bool ok, bool expectOk, bytes memory err) internal pure {
        if (ok != expectOk) revert ModelMismatch(action, ok, expectOk, err);
    }

    function _warpTo(uint256 timestamp) internal {
        if (timestamp > currentTime) currentTime = timestamp;
        vm.warp(currentTime);
    }

    /// @dev A non-empty subset of the partners (of the active ones if `onlyActive` and there
    /// are any), ascending (the ids are registered ascending).
    function _pickPartners(uint256 mask, bool onlyActive)
        internal
        view
        returns (uint32[] memory ids)
    {
        mask = _mix(mask);
        uint256 count = _partnerIds.length;
        uint256 eligible = (1 << count) - 1;
        if (onlyActive) {
            uint256 activeMask;
            for (uint256 i = 0; i < count; ++i) {
                if (_active[_partnerIds[i]]) activeMask |= 1 << i;
            }
            if (activeMask != 0) eligible = activeMask;
        }
        mask = ((mask % eligible) + 1) & eligible;
        if (mask == 0) mask = eligible;
        uint256 size;
        for (uint256 i = 0; i < count; ++i) {
            if (mask & (1 << i) != 0) ++size;
        }
        ids = new uint32[](size);
        uint256 k;
        for (uint256 i = 0; i < count; ++i) {
            if (mask & (1 << i) != 0) ids[k++] = _partnerIds[i];
        }
    }

    /// @dev Positions summing to zero: all zero, tiny, ordinary (±1e9 fen) or huge (±2**90).
    function _makePositions(uint256 count, uint256 seed)
        internal
        pure
        returns (int256[] memory nets)
    {
        nets = new int256[](count);
        seed = _mix(seed);
        uint256 kind = seed % 8;
        uint256 scale = kind == 0 ? 0 : kind == 1 ? 2 ** 90 : kind == 2 ? 1 : 1e9;
        int256 sum;
        for (uint256 i = 0; i + 1 < count; ++i) {
            uint256 r = uint256(keccak256(abi.encode(seed, i))) % (2 * scale + 1);
            nets[i] = int256(r) - int256(scale);
            sum += nets[i];
        }
        nets[count - 1] = -sum;
    }

    /// @dev Signatures for a proposal: a valid quorum (threshold or more current signers), or
    /// for mode 7 one by a non-signer, for mode 8 one fewer than the threshold.
    function _quorumSignatures(bytes32 digest, uint8 mode, uint256 seed)
        internal
        view
        returns (bytes[] memory, bool)
    {
        uint256 n = _signerKeys.length;
        uint256 count = mode == 8
            ? signerThreshold - 1
            : signerThreshold + (seed >> 64) % (n - signerThreshold + 1);
        uint256[] memory keys = new uint256[](count);
        uint256 start = (seed >> 128) % n;
        for (uint256 i = 0; i < count; ++i) {
            keys[i] = _signerKeys[(start + i) % n];
        }
        bool valid = mode != 8;
        if (mode == 7) {
            keys[0] = OUTSIDER_KEY;
            valid = false;
        }
        return (Signing.signSorted(digest, keys), valid);
    }

    /// @dev A valid signer set from the pool: 1..6 distinct keys, threshold 1..size.
    function _signerSetFromSeed(uint256 seed)
        internal
        view
        returns (uint256[] memory keys, uint256 threshold)
    {
        uint256 poolSize = _signerPool.length;
        uint256 size = 1 + (seed % poolSize);
        uint256 start = (seed >> 8) % poolSize;
        keys = new uint256[](size);
        for (uint256 i = 0; i < size; ++i) {
            keys[i] = _signerPool[(start + i) % poolSize];
        }
        threshold = 1 + (seed >> 16) % size;
    }

    function _setSignersCall(uint256[] memory keys, uint256 threshold)
        internal
        pure
        returns (bytes memory)
    {
        return abi.encodeCall(OracleQuorum.setSigners, (Signing.addresses(keys), threshold));
    }

    function _allActive(uint32[] memory ids) internal view returns (bool) {
        for (uint256 i = 0; i < ids.length; ++i) {
            if (!_active[ids[i]]) return false;
        }
        return true;
    }

    /// @dev A partner of the cycle: half the time one whose position has the sign `want`
    /// asks for (+1 creditor, -1 debtor, 0 any) when there is one, three times in eight any
    /// listed partner, one time in eight a partner the cycle does not list.
    function _pickPartnerOf(CycleModel storage c, uint256 seed, int256 want)
        internal
        view
        returns (uint32)
    {
        seed = _mix(seed);
        uint256 n = c.partners.length;
        uint256 offset = (seed >> 8) % n;
        uint256 kind = seed % 8;
        if (kind < 4 && want != 0) {
            for (uint256 i = 0; i < n; ++i) {
                uint256 j = (offset + i) % n;
                if ((want > 0 && c.nets[j] > 0) || (want < 0 && c.nets[j] < 0)) {
                    return c.partners[j];
                }
            }
        }
        if (kind != 7) return c.partners[offset];
        for (uint256 i = 0; i < _partnerIds.length; ++i) {
            if (!_isListed(c, _partnerIds[i])) return _partnerIds[i];
        }
        return STRANGER_ID;
    }

    function _isListed(CycleModel storage c, uint32 partnerId) internal view returns (bool) {
        for (uint256 i = 0; i < c.partners.length; ++i) {
            if (c.partners[i] == partnerId) return true;
        }
        return false;
    }

    function _netOf(CycleModel storage c, uint32 partnerId) internal view returns (int256) {
        for (uint256 i = 0; i < c.partners.length; ++i) {
            if (c.partners[i] == partnerId) return c.nets[i];
        }
        return 0;
    }

    /// @dev The model's unfunded debtors of a cycle, ascending.
    function _unfundedDebtors(CycleModel storage c) internal view returns (uint32[] memory out) {
        uint32[] memory buffer = new uint32[](c.partners.length);
        uint256 k;
        for (uint256 i = 0; i < c.partners.length; ++i) {
            if (c.nets[i] < 0 && !_positions[c.id][c.partners[i]].settled) {
                buffer[k++] = c.partners[i];
            }
        }
        out = new uint32[](k);
        for (uint256 i = 0; i < k; ++i) {
            out[i] = buffer[i];
        }
    }

    /// @dev The chain's unfunded debtors of a cycle, ascending (for the drain probe).
    function _unfundedDebtorsOnChain(CycleModel storage c)
        internal
        view
        returns (uint32[] memory out)
    {
        uint32[] memory buffer = new uint32[](c.partners.length);
        uint256 k;
        for (uint256 i = 0; i < c.partners.length; ++i) {
            (int256 net,,, bool settled,) = house.getPosition(c.id, c.partners[i]);
            if (net < 0 && !settled) buffer[k++] = c.partners[i];
        }
        out = new uint32[](k);
        for (uint256 i = 0; i < k; ++i) {
            out[i] = buffer[i];
        }
    }

    /// @dev A wrong defaulter list: 1 one short, 2 one too many, 3 unsorted, 4 duplicated.
    function _corrupt(uint32[] memory exact, uint8 mode, CycleModel storage c)
        internal
        view
        returns (uint32[] memory out)
    {
        uint256 n = exact.length;
        if (mode == 0) return exact;
        if (mode == 1) {
            out = new uint32[](n == 0 ? 0 : n - 1);
            for (uint256 i = 0; i < out.length; ++i) {
                out[i] = exact[i];
            }
            return out;
        }
        if (mode == 2) {
            out = new uint32[](n + 1);
            for (uint256 i = 0; i < n; ++i) {
                out[i] = exact[i];
            }
            out[n] = STRANGER_ID;
            for (uint256 i = 0; i < c.partners.length; ++i) {
                uint32 candidate = c.partners[i];
                if (!_contains(exact, candidate)) {
                    out[n] = candidate;
                    break;
                }
            }
            return out;
        }
        if (mode == 3 && n >= 2) {
            out = new uint32[](n);
            for (uint256 i = 0; i < n; ++i) {
                out[i] = exact[n - 1 - i];
            }
            return out;
        }
        out = new uint32[](n + (n == 0 ? 0 : 1));
        for (uint256 i = 0; i < n; ++i) {
            out[i] = exact[i];
        }
        if (n > 0) out[n] = exact[n - 1];
    }

    /// @dev Whether a Funded cycle has a claim left or a Defaulted one a refund (true for
    /// every other status).
    function _hasExitLeft(CycleModel storage c) internal view returns (bool) {
        if (c.status != FUNDED && c.status != DEFAULTED) return true;
        for (uint256 i = 0; i < c.partners.length; ++i) {
            PositionModel storage position = _positions[c.id][c.partners[i]];
            if (c.status == FUNDED && c.nets[i] > 0 && !position.settled) return true;
            if (c.status == DEFAULTED && c.nets[i] < 0 && position.settled && !position.refunded) {
                return true;
            }
        }
        return false;
    }

    /// @dev Spreads a fuzzed seed: the fuzzer favours edge values (0, 1, max), which would
    /// otherwise always pick the same shape (one partner, all-zero positions, ...).
    function _mix(uint256 seed) internal pure returns (uint256) {
        return uint256(keccak256(abi.encode(seed)));
    }

    function _contains(uint32[] memory list, uint32 value) internal pure returns (bool) {
        for (uint256 i = 0; i < list.length; ++i) {
            if (list[i] == value) return true;
        }
        return false;
    }

    /// @dev An account that takes part in the network but is not the timelock.
    function _actor(uint256 seed) internal view returns (address) {
        uint256 pick = seed % (_partnerIds.length + 3);
        if (pick < _partnerIds.length) return payoutOf[_partnerIds[pick]];
        if (pick == _partnerIds.length) return _benefactor;
        if (pick == _partnerIds.length + 1) return _relayer;
        return address(uint160(uint256(keccak256(abi.encode("stranger", seed)))));
    }

    /// @dev Anyone but the timelock: the deployer (who renounced), the timelock's proposer
    /// acting directly, its canceller, the relayer, a signer, a partner, this handler, the
    /// ClearingHouse itself, or a random address.
    function _outsider(uint256 seed) internal view returns (address actor) {
        uint256 pick = seed % 9;
        if (pick == 0) actor = _deployer;
        else if (pick == 1) actor = _proposer;
        else if (pick == 8) actor = _canceller;
        else if (pick == 2) actor = _relayer;
        else if (pick == 3) actor = vm.addr(_signerPool[(seed >> 8) % _signerPool.length]);
        else if (pick == 4) actor = payoutOf[_partnerIds[(seed >> 8) % _partnerIds.length]];
        else if (pick == 5) actor = address(this);
        else if (pick == 6) actor = address(house);
        else actor = address(uint160(seed >> 8));
        if (actor == address(timelock)) actor = _benefactor;
    }
}
