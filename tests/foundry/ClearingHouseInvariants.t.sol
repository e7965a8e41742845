// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {NetworkFixture} from "./base/NetworkFixture.sol";
import {ClearingHouseHandler} from "./handlers/ClearingHouseHandler.sol";

/// @title ClearingHouseInvariants
/// @notice Stateful fuzzing of the ClearingHouse, its OracleQuorum and the NetworkTimelock
/// that governs both. The fuzzer calls only the handler's actions (random sequences of
/// proposals, disputes, resolutions, finalizations, fundings, claims, defaults, refunds,
/// pauses, partner toggles, time jumps and signer changes, authorized or not); after every
/// call `invariant_clearingHouse` must hold. Runs and depth: foundry.toml (`default` for CI,
/// `FOUNDRY_PROFILE=thorough` for long runs).
contract ClearingHouseInvariants is NetworkFixture {
    ClearingHouseHandler internal handler;

    function setUp() public {
        _deployNetwork();
        handler = new ClearingHouseHandler(
            ClearingHouseHandler.Deployment({
                house: house,
                quorum: quorum,
                token: token,
                timelock: timelock,
                deployer: address(this),
                proposer: proposer,
                canceller: canceller,
                relayer: relayer,
                benefactor: benefactor,
                minDelay: MIN_DELAY,
                signerPool: signerPool,
                initialSignerCount: INITIAL_SIGNERS,
                initialThreshold: INITIAL_THRESHOLD,
                partnerIds: partnerIds,
                payouts: payouts
            })
        );
        vm.label(address(handler), "handler");

        // Repeats weight the draw toward the steps that move a cycle forward, and toward
        // lifting a pause (so paused spells are a third of the time, not half).
        bytes4[27] memory weighted = [
            ClearingHouseHandler.propose.selector,
            ClearingHouseHandler.propose.selector,
            ClearingHouseHandler.dispute.selector,
            ClearingHouseHandler.resolveDispute.selector,
            ClearingHouseHandler.finalize.selector,
            ClearingHouseHandler.finalize.selector,
            ClearingHouseHandler.fund.selector,
            ClearingHouseHandler.fund.selector,
            ClearingHouseHandler.fundAll.selector,
            ClearingHouseHandler.fundAll.selector,
            ClearingHouseHandler.claim.selector,
            ClearingHouseHandler.claimAll.selector,
            ClearingHouseHandler.declareDefault.selector,
            ClearingHouseHandler.declareDefault.selector,
            ClearingHouseHandler.declareDefault.selector,
            ClearingHouseHandler.refund.selector,
            ClearingHouseHandler.refundAll.selector,
            ClearingHouseHandler.pause.selector,
            ClearingHouseHandler.unpause.selector,
            ClearingHouseHandler.unpause.selector,
            ClearingHouseHandler.setPartnerActive.selector,
            ClearingHouseHandler.warp.selector,
            ClearingHouseHandler.setSignersAsOutsider.selector,
            ClearingHouseHandler.scheduleSignerChange.selector,
            ClearingHouseHandler.executeSignerChange.selector,
            ClearingHouseHandler.executeSignerChange.selector,
            ClearingHouseHandler.cancelSignerChange.selector
        ];
        bytes4[] memory selectors = new bytes4[](weighted.length);
        for (uint256 i = 0; i < weighted.length; ++i) {
            selectors[i] = weighted[i];
        }
        targetContract(address(handler));
        targetSelector(FuzzSelector({addr: address(handler), selectors: selectors}));
    }

    /// @notice After every call of every sequence, all of these hold (each check reverts with
    /// a message naming what broke). One campaign checks them all: forge fuzzes each
    /// `invariant_*` function in a campaign of its own, and with the fixed CI seed separate
    /// functions would replay the very same sequences.
    ///  1. No token is ever stuck (books): the ClearingHouse's balance is exactly what was
    ///     deposited and not paid out, = Σ Funded (funded − claimed) + Σ Defaulted
    ///     (funded − refunded) + Σ Finalized funded (still in its funding window), by the ghost
    ///     ledger, the model and the contract's books alike; no token left the network's
    ///     accounts.
    ///  2. Σ net positions = 0 in every proposed cycle; total due = the creditors' sum.
    ///  3. funded = claimed + still claimable (Funded); funded = refunded + still refundable
    ///     (Defaulted); statuses, amounts and per-position flags agree with the model.
    ///  4. Only the timelock changes signers: the signer-set version, set and threshold move
    ///     only with executed, scheduled-and-delayed timelock operations, and nobody but the
    ///     timelock holds the admin role on the quorum or the ClearingHouse.
    ///  5. No token is ever stuck (exits), even while paused: with the ClearingHouse paused and
    ///     time past every funding deadline, every Finalized cycle can be declared Defaulted,
    ///     every funded debtor of a Defaulted cycle refunded and every creditor of a Funded
    ///     cycle paid, each exactly, after which the ClearingHouse holds nothing. (Simulated:
    ///     the probe always reverts, so the fuzzed state goes on unchanged.)
    /// The handler also asserts, call by call, that every action succeeded or failed exactly
    /// as the model predicted, claims and refunds while paused included.
    function invariant_clearingHouse() public {
        handler.checkTokenConservation();
        handler.checkZeroSum();
        handler.checkAccounting();
        handler.checkGovernance();
        try handler.probeDrainWhilePaused() {
            revert AssertionFailed("drain probe returned instead of reverting");
        } catch (bytes memory reason) {
            if (bytes4(reason) != ClearingHouseHandler.DrainComplete.selector) {
                assembly ("memory-safe") {
                    revert(add(reason, 32), mload(reason))
                }
            }
        }
        vm.warp(handler.currentTime());
    }

    /// @notice Prints, under `forge test -vv`, what the campaign reached so far, summed over
    /// its runs (a run's handler starts from zero; the sums live in the forge process's
    /// environment, the one place that outlives a run). Zero claims or refunds would mean the
    /// fuzzer never got there.
    function afterInvariant() public {
        _total("cycles proposed", handler.proposals());
        _total("proposals refused as predicted", handler.refusedProposals());
        _total("disputes", handler.disputes());
        _total("disputes resolved", handler.resolutions());
        _total("finalizations", handler.finalizations());
        _total("fundings", handler.fundings());
        _total("fundings while paused", handler.fundingsWhilePaused());
        _total("cycles fully funded", handler.fullyFundedCycles());
        _total("claims", handler.claims());
        _total("claims while paused", handler.claimsWhilePaused());
        _total("defaults declared", handler.defaults());
        _total("refunds", handler.refunds());
        _total("refunds while paused", handler.refundsWhilePaused());
        _total("pauses and unpauses", handler.pauseToggles());
        _total("signer changes executed", handler.signerChangesExecuted());
        _total("early executions refused", handler.earlyExecutionsRefused());
        _total("unauthorized governance attempts", handler.unauthorizedAttempts());
    }

    function _total(string memory what, uint256 thisRun) internal {
        string memory key = string.concat("CREDITNET_FUZZ_TOTAL ", what);
        uint256 total = vm.envOr(key, uint256(0)) + thisRun;
        vm.setEnv(key, _decimal(total));
        _log(what, total);
    }
}

/// @title ClearingHouseHandlerSmoke
/// @notice One fixed sequence through the handler, so a change that makes an action unreachable
/// (every proposal refused, say) fails here instead of leaving the fuzzer exploring nothing.
contract ClearingHouseHandlerSmoke is NetworkFixture {
    ClearingHouseHandler internal handler;

    function setUp() public {
        _deployNetwork();
        handler = new ClearingHouseHandler(
            ClearingHouseHandler.Deployment({
                house: house,
                quorum: quorum,
                token: token,
                timelock: timelock,
                deployer: address(this),
                proposer: proposer,
                canceller: canceller,
                relayer: relayer,
                benefactor: benefactor,
                minDelay: MIN_DELAY,
                signerPool: signerPool,
                initialSignerCount: INITIAL_SIGNERS,
                initialThreshold: INITIAL_THRESHOLD,
                partnerIds: partnerIds,
                payouts: payouts
            })
        );
    }

    function test_handlerReachesEveryExit() public {
        // A cycle with at least two debtors (seeds tried in turn; the handler derives the
        // partners and positions from them).
        uint256 first = _proposeWithDebtors(2);
        // It is finalized, funded in full, then claimed while paused. (Several seeds per step:
        // the handler picks the cycle and partner from the seed, mostly but not always the one
        // in the right status.)
        for (uint256 seed = 0; seed < 8; ++seed) {
            handler.finalize(seed, 1);
            handler.fundAll(seed, false, false);
        }
        (,, uint256 due,,) = handler.cycleSummary(first);
        assertTrue(due > 0, "a cycle with something due");
        assertTrue(handler.fundings() >= 2, "debtors funded");
        handler.pause();
        for (uint256 seed = 0; seed < 8; ++seed) {
            handler.claimAll(seed, seed);
        }
        assertTrue(handler.claimsWhilePaused() > 0, "claims while paused");
        handler.unpause();

        // Another: all debtors but one fund (one of them while paused), the cycle defaults, and
        // the funded debtors are refunded while paused.
        uint256 second = _proposeWithDebtors(2);
        for (uint256 seed = 0; seed < 8; ++seed) {
            handler.finalize(seed, 1);
        }
        handler.pause();
        for (uint256 seed = 0; seed < 8; ++seed) {
            handler.fundAll(seed, true, true);
        }
        assertTrue(handler.fundingsWhilePaused() > 0, "funding while paused");
        for (uint256 seed = 0; seed < 8; ++seed) {
            handler.declareDefault(seed, 0, 1, seed);
        }
        (, uint8 status,,,) = handler.cycleSummary(second);
        assertEq(status, 6, "second cycle Defaulted");
        for (uint256 seed = 0; seed < 8; ++seed) {
            handler.refundAll(seed, seed);
        }
        assertTrue(handler.refundsWhilePaused() > 0, "refunds while paused");

        handler.checkTokenConservation();
        handler.checkAccounting();
        handler.checkZeroSum();
        handler.checkGovernance();
        try handler.probeDrainWhilePaused() {
            revert AssertionFailed("drain probe returned");
        } catch (bytes memory reason) {
            assertTrue(bytes4(reason) == ClearingHouseHandler.DrainComplete.selector, "drain");
        }
    }

    /// @dev Proposes cycles until one has `debtors` net debtors; returns its index.
    function _proposeWithDebtors(uint256 debtors) internal returns (uint256 index) {
        for (uint256 seed = 0; seed < 64; ++seed) {
            uint256 before = handler.cycleCount();
            handler.propose(seed, seed, 0);
            if (handler.cycleCount() == before) continue;
            (,,, uint256 count,) = handler.cycleSummary(before);
            if (count >= debtors) return before;
        }
        revert AssertionFailed("no seed gave enough debtors");
    }
}
