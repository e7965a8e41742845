// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {NetworkFixture} from "./base/NetworkFixture.sol";
import {ClearingHouseHandler} from "./handlers/ClearingHouseHandler.sol";

/// @title ClearingHouseInvariants
/// @notice Stateful fuzzing of the ClearingHouse, its OracleQuorum and the NetworkTimelock
/// that governs both. The fuzzer calls only the handler's actions (random sequences of
/// proposals, disputes, resolutions, finalizations, fundings, claims, defaults, refunds,
/// pauses, partner toggles, time jumps and signer changes, authorized or not); after every
/// call each `invariant_*` below must hold. Runs and depth: foundry.toml (`default` for CI,
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

        bytes4[] memory selectors = new bytes4[](17);
        selectors[0] = ClearingHouseHandler.propose.selector;
        selectors[1] = ClearingHouseHandler.dispute.selector;
        selectors[2] = ClearingHouseHandler.resolveDispute.selector;
        selectors[3] = ClearingHouseHandler.finalize.selector;
        selectors[4] = ClearingHouseHandler.fund.selector;
        selectors[5] = ClearingHouseHandler.fundAll.selector;
        selectors[6] = ClearingHouseHandler.claim.selector;
        selectors[7] = ClearingHouseHandler.declareDefault.selector;
        selectors[8] = ClearingHouseHandler.refund.selector;
        selectors[9] = ClearingHouseHandler.togglePause.selector;
        selectors[10] = ClearingHouseHandler.togglePartner.selector;
        selectors[11] = ClearingHouseHandler.warp.selector;
        selectors[12] = ClearingHouseHandler.setSignersAsOutsider.selector;
        selectors[13] = ClearingHouseHandler.scheduleSignerChange.selector;
        selectors[14] = ClearingHouseHandler.executeSignerChange.selector;
        selectors[15] = ClearingHouseHandler.cancelSignerChange.selector;
        selectors[16] = ClearingHouseHandler.propose.selector; // proposals twice as often
        targetContract(address(handler));
        targetSelector(FuzzSelector({addr: address(handler), selectors: selectors}));
    }

    /// No token is ever stuck (1/2): the ClearingHouse's balance is exactly what was deposited
    /// and not paid out, = Σ Funded (funded − claimed) + Σ Defaulted (funded − refunded)
    /// + Σ Finalized funded (still in its funding window), by the ghost ledger, the model and
    /// the contract's books alike; and no token left the network's accounts.
    function invariant_balanceIsExactlyWhatIsOwed() public view {
        handler.checkTokenConservation();
    }

    /// No token is ever stuck (2/2), and exits work while paused: with the ClearingHouse
    /// paused and time past every funding deadline, every Finalized cycle can be declared
    /// Defaulted, every funded debtor of a Defaulted cycle refunded and every creditor of a
    /// Funded cycle paid, each exactly; then the ClearingHouse holds nothing. (Simulated: the
    /// probe reverts, so the fuzzed state goes on unchanged.)
    function invariant_everyTokenHasAnExitEvenWhilePaused() public {
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

    /// Σ net positions = 0 in every proposed cycle, and the total due is the creditors' sum.
    function invariant_netPositionsSumToZero() public view {
        handler.checkZeroSum();
    }

    /// funded = claimed + still claimable (Funded); funded = refunded + still refundable
    /// (Defaulted); statuses, amounts and flags agree with the model.
    function invariant_fundedEqualsPaidPlusOutstanding() public view {
        handler.checkAccounting();
    }

    /// Only the timelock changes signers: the signer set version moves only with executed,
    /// scheduled-and-delayed timelock operations, and nobody else holds the admin role.
    function invariant_onlyTheTimelockChangesSigners() public view {
        handler.checkGovernance();
    }

    /// Prints what the run reached (`forge test -vv`), to see that the sequences get deep.
    function _acc(string memory k, uint256 v) internal {
        (bool ok, bytes memory r) = address(vm).call(abi.encodeWithSignature("envOr(string,uint256)", k, uint256(0)));
        uint256 prev = abi.decode(r, (uint256));
        (ok,) = address(vm).call(abi.encodeWithSignature("setEnv(string,string)", k, _decimal(prev + v)));
        _log(k, prev + v);
    }
    function afterInvariant() public {
        _acc("A_proposals", handler.proposals());
        _acc("A_refused", handler.refusedProposals());
        _acc("A_disputes", handler.disputes());
        _acc("A_resolutions", handler.resolutions());
        _acc("A_finalizations", handler.finalizations());
        _acc("A_fundings", handler.fundings());
        _acc("A_fully", handler.fullyFundedCycles());
        _acc("A_claims", handler.claims());
        _acc("A_claimsPaused", handler.claimsWhilePaused());
        _acc("A_defaults", handler.defaults());
        _acc("A_refunds", handler.refunds());
        _acc("A_refundsPaused", handler.refundsWhilePaused());
        _acc("A_signerChanges", handler.signerChangesExecuted());
        _acc("A_early", handler.earlyExecutionsRefused());
    }
    function afterInvariantOld() public view {
        _log("cycles proposed", handler.proposals());
        _log("proposals refused as predicted", handler.refusedProposals());
        _log("disputes", handler.disputes());
        _log("disputes resolved", handler.resolutions());
        _log("finalizations", handler.finalizations());
        _log("fundings", handler.fundings());
        _log("cycles fully funded", handler.fullyFundedCycles());
        _log("claims", handler.claims());
        _log("claims while paused", handler.claimsWhilePaused());
        _log("defaults declared", handler.defaults());
        _log("refunds", handler.refunds());
        _log("refunds while paused", handler.refundsWhilePaused());
        _log("pause toggles", handler.pauseToggles());
        _log("signer changes executed", handler.signerChangesExecuted());
        _log("early executions refused", handler.earlyExecutionsRefused());
        _log("unauthorized governance attempts", handler.unauthorizedAttempts());
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
        handler.propose(30, 3, 0);
        assertEq(handler.proposals(), 1, "proposal accepted");
        handler.finalize(0, true);
        assertEq(handler.finalizations(), 1, "finalized");
        handler.fundAll(0, false);
        assertEq(handler.fullyFundedCycles(), 1, "funded");
        handler.togglePause();
        for (uint256 i = 0; i < 4; ++i) {
            handler.claim(0, i << 8, i);
        }
        assertTrue(handler.claimsWhilePaused() > 0, "claims while paused");
        handler.checkTokenConservation();
        handler.checkAccounting();
    }
}
