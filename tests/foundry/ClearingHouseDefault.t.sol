// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {TimelockController} from "@openzeppelin/contracts/governance/TimelockController.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";

import {ClearingHouse} from "../../contracts/ClearingHouse.sol";
import {OracleQuorum} from "../../contracts/OracleQuorum.sol";
import {IClearingHouse} from "../../contracts/interfaces/IClearingHouse.sol";

import {NetworkFixture} from "./base/NetworkFixture.sol";
import {Signing} from "./base/Signing.sol";

/// @title ClearingHouseDefaultTest
/// @notice Edge cases of member default and refunds, one at a time, on the fixture network
/// (timelock-governed). The cycle under test lists partners 1 and 2 as debtors (300 and 200
/// fen) and partner 7 as creditor (500 fen).
contract ClearingHouseDefaultTest is NetworkFixture {
    uint64 internal constant CYCLE = 1 * 10 ** 8 + 20_260_102;
    uint8 internal constant FUNDED = 4;
    uint8 internal constant DEFAULTED = 6;

    uint256 internal disputeDeadline;
    uint256 internal fundingDeadline;

    function setUp() public {
        _deployNetwork();
    }

    // ------------------------------------------------------------ declareDefault

    function test_declareDefault_opensExactlyAtTheFundingDeadline() public {
        _finalizedCycle();
        assertEq(fundingDeadline, disputeDeadline + FUNDING_WINDOW, "funding deadline");
        vm.warp(fundingDeadline - 1);
        vm.expectRevert(
            abi.encodeWithSelector(
                IClearingHouse.FundingWindowOpen.selector, CYCLE, uint64(fundingDeadline)
            )
        );
        house.declareDefault(CYCLE, _ids(1, 2));

        vm.warp(fundingDeadline);
        house.declareDefault(CYCLE, _ids(1, 2));
        assertEq(house.getCycle(CYCLE).status, DEFAULTED, "Defaulted");
    }

    function test_declareDefault_refusesAnIncompleteList() public {
        _finalizedCycle();
        vm.warp(fundingDeadline);
        vm.expectRevert(
            abi.encodeWithSelector(IClearingHouse.DefaultersIncomplete.selector, CYCLE, 300, 500)
        );
        house.declareDefault(CYCLE, _ids(1));
        vm.expectRevert(
            abi.encodeWithSelector(IClearingHouse.DefaultersIncomplete.selector, CYCLE, 0, 500)
        );
        house.declareDefault(CYCLE, new uint32[](0));
    }

    function test_declareDefault_refusesAWrongName() public {
        _finalizedCycle();
        _fund(1, payoutOf(1));
        vm.warp(fundingDeadline);
        vm.expectRevert(abi.encodeWithSelector(IClearingHouse.AlreadyFunded.selector, CYCLE, 1));
        house.declareDefault(CYCLE, _ids(1, 2));
        vm.expectRevert(
            abi.encodeWithSelector(IClearingHouse.NotNetDebtor.selector, CYCLE, 7, int256(500))
        );
        house.declareDefault(CYCLE, _ids(2, 7));
        vm.expectRevert(abi.encodeWithSelector(IClearingHouse.PartnerNotListed.selector, CYCLE, 42));
        house.declareDefault(CYCLE, _ids(2, 42));
        vm.expectRevert(
            abi.encodeWithSelector(IClearingHouse.PartnerIdsNotAscending.selector, 1, uint32(2))
        );
        house.declareDefault(CYCLE, _ids(2, 2));
        house.declareDefault(CYCLE, _ids(2));
        assertEq(house.getCycle(CYCLE).status, DEFAULTED, "Defaulted");
    }

    function test_declareDefault_onlyForAFinalizedCycle() public {
        _propose3();
        vm.expectRevert(
            abi.encodeWithSelector(IClearingHouse.UnexpectedCycleStatus.selector, CYCLE, 1)
        );
        house.declareDefault(CYCLE, _ids(1, 2));

        _finalize();
        _fund(1, payoutOf(1));
        _fund(2, payoutOf(2));
        vm.warp(fundingDeadline);
        vm.expectRevert(
            abi.encodeWithSelector(IClearingHouse.UnexpectedCycleStatus.selector, CYCLE, FUNDED)
        );
        house.declareDefault(CYCLE, new uint32[](0));
    }

    /// The deadline does not stop funding by itself: until someone declares the default, a
    /// late debtor may still fund, and the cycle then settles normally.
    function test_lateFundingBeforeADeclarationSettlesTheCycle() public {
        _finalizedCycle();
        vm.warp(fundingDeadline + 1 days);
        _fund(1, payoutOf(1));
        _fund(2, payoutOf(2));
        assertEq(house.getCycle(CYCLE).status, FUNDED, "Funded");
        vm.expectRevert(
            abi.encodeWithSelector(IClearingHouse.UnexpectedCycleStatus.selector, CYCLE, FUNDED)
        );
        house.declareDefault(CYCLE, new uint32[](0));
        uint256 before = token.balanceOf(payoutOf(7));
        house.claim(CYCLE, 7);
        assertEq(token.balanceOf(payoutOf(7)) - before, 500, "claim");
        assertEq(token.balanceOf(address(house)), 0, "nothing left");
    }

    // ------------------------------------------------------------ refund

    /// A refund goes to the debtor's payout address, whoever paid and whoever asks, and works
    /// while the ClearingHouse is paused; each funded debtor once.
    function test_refund_returnsTheDepositToThePayoutEvenWhilePaused() public {
        _finalizedCycle();
        _fund(1, benefactor); // a third party pays for partner 1
        vm.warp(fundingDeadline);
        house.declareDefault(CYCLE, _ids(2));
        _throughTimelock(address(house), abi.encodeCall(ClearingHouse.pause, ()));
        assertTrue(house.paused(), "paused");

        uint256 payoutBefore = token.balanceOf(payoutOf(1));
        uint256 benefactorBefore = token.balanceOf(benefactor);
        vm.prank(address(0xBEEF));
        house.refund(CYCLE, 1);
        assertEq(token.balanceOf(payoutOf(1)) - payoutBefore, 300, "refunded to the payout");
        assertEq(token.balanceOf(benefactor), benefactorBefore, "not to whoever paid");
        assertEq(house.getCycle(CYCLE).claimedFen, 300, "claimedFen counts refunds");
        (,,, bool settled, bool refunded) = house.getPosition(CYCLE, 1);
        assertTrue(settled && refunded, "flags");
        assertEq(token.balanceOf(address(house)), 0, "nothing left");

        vm.expectRevert(abi.encodeWithSelector(IClearingHouse.AlreadyRefunded.selector, CYCLE, 1));
        house.refund(CYCLE, 1);
        vm.expectRevert(abi.encodeWithSelector(IClearingHouse.NothingToRefund.selector, CYCLE, 2));
        house.refund(CYCLE, 2);
        vm.expectRevert(
            abi.encodeWithSelector(IClearingHouse.NotNetDebtor.selector, CYCLE, 7, int256(500))
        );
        house.refund(CYCLE, 7);
        vm.expectRevert(abi.encodeWithSelector(IClearingHouse.PartnerNotListed.selector, CYCLE, 42));
        house.refund(CYCLE, 42);
    }

    /// Nobody is paid from a defaulted cycle, and nobody can fund it any more.
    function test_defaultedCycle_paysNoCreditorAndTakesNoFunds() public {
        _finalizedCycle();
        _fund(1, payoutOf(1));
        vm.warp(fundingDeadline);
        house.declareDefault(CYCLE, _ids(2));
        vm.expectRevert(
            abi.encodeWithSelector(IClearingHouse.UnexpectedCycleStatus.selector, CYCLE, DEFAULTED)
        );
        house.claim(CYCLE, 7);
        vm.expectRevert(
            abi.encodeWithSelector(IClearingHouse.UnexpectedCycleStatus.selector, CYCLE, DEFAULTED)
        );
        vm.prank(payoutOf(2));
        house.fund(CYCLE, 2);
    }

    function test_refund_onlyFromADefaultedCycle() public {
        _finalizedCycle();
        _fund(1, payoutOf(1));
        vm.expectRevert(
            abi.encodeWithSelector(IClearingHouse.UnexpectedCycleStatus.selector, CYCLE, 3)
        );
        house.refund(CYCLE, 1);
        _fund(2, payoutOf(2));
        vm.expectRevert(
            abi.encodeWithSelector(IClearingHouse.UnexpectedCycleStatus.selector, CYCLE, FUNDED)
        );
        house.refund(CYCLE, 1);
    }

    /// When no debtor funded, the default leaves nothing to refund and nothing held.
    function test_defaultWithNoFunding_leavesNothingHeld() public {
        _finalizedCycle();
        vm.warp(fundingDeadline);
        house.declareDefault(CYCLE, _ids(1, 2));
        vm.expectRevert(abi.encodeWithSelector(IClearingHouse.NothingToRefund.selector, CYCLE, 1));
        house.refund(CYCLE, 1);
        assertEq(token.balanceOf(address(house)), 0, "nothing held");
    }

    // ------------------------------------------------------------ pause

    /// A pause stops finalization but never funding, so it cannot push a payable cycle into
    /// default.
    function test_pause_stopsFinalizationButNotFunding() public {
        _propose3();
        vm.warp(disputeDeadline);
        _throughTimelock(address(house), abi.encodeCall(ClearingHouse.pause, ()));
        vm.expectRevert(Pausable.EnforcedPause.selector);
        house.finalize(CYCLE);
        _throughTimelock(address(house), abi.encodeCall(ClearingHouse.unpause, ()));
        house.finalize(CYCLE);
        _throughTimelock(address(house), abi.encodeCall(ClearingHouse.pause, ()));
        _fund(1, payoutOf(1));
        _fund(2, payoutOf(2));
        assertEq(house.getCycle(CYCLE).status, FUNDED, "funded while paused");
        house.claim(CYCLE, 7);
    }

    /// Known limitation, pinned so a change is noticed: the exits move the settlement token,
    /// so whoever can pause the token (SettlementToken's PAUSER_ROLE, or the issuer of a
    /// production deposit token) can hold every claim and refund, whatever the ClearingHouse's
    /// own pause says.
    function test_knownLimitation_aPausedTokenHoldsTheExits() public {
        _finalizedCycle();
        _fund(1, payoutOf(1));
        _fund(2, payoutOf(2));
        token.grantRole(token.PAUSER_ROLE(), address(this));
        token.pause();
        vm.expectRevert(Pausable.EnforcedPause.selector);
        house.claim(CYCLE, 7);
        token.unpause();
        house.claim(CYCLE, 7);
    }

    // ------------------------------------------------------------ all-zero cycles

    function test_allZeroCycle_isFundedAtFinalization() public {
        uint32[] memory ids = _ids(0, 42);
        int256[] memory nets = new int256[](2);
        _propose(CYCLE, ids, nets);
        vm.warp(block.timestamp + DISPUTE_WINDOW);
        house.finalize(CYCLE);
        assertEq(house.getCycle(CYCLE).status, FUNDED, "Funded at once");
        vm.expectRevert(
            abi.encodeWithSelector(IClearingHouse.NotNetCreditor.selector, CYCLE, 0, int256(0))
        );
        house.claim(CYCLE, 0);
        vm.warp(block.timestamp + FUNDING_WINDOW);
        vm.expectRevert(
            abi.encodeWithSelector(IClearingHouse.UnexpectedCycleStatus.selector, CYCLE, FUNDED)
        );
        house.declareDefault(CYCLE, new uint32[](0));
    }

    // ------------------------------------------------------------ governance

    /// After the deployment, only a scheduled and delayed timelock operation changes the
    /// signers; the canceller-only account can stop one but not schedule one.
    function test_onlyTheTimelockChangesSigners() public {
        address[] memory next = new address[](2);
        next[0] = vm.addr(signerPool[3]);
        next[1] = vm.addr(signerPool[4]);
        bytes memory call = abi.encodeCall(OracleQuorum.setSigners, (next, 2));
        bytes32 adminRole = quorum.DEFAULT_ADMIN_ROLE();

        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessControl.AccessControlUnauthorizedAccount.selector, address(this), adminRole
            )
        );
        quorum.setSigners(next, 2);
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessControl.AccessControlUnauthorizedAccount.selector, proposer, adminRole
            )
        );
        vm.prank(proposer);
        quorum.setSigners(next, 2);
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessControl.AccessControlUnauthorizedAccount.selector,
                canceller,
                timelock.PROPOSER_ROLE()
            )
        );
        vm.prank(canceller);
        timelock.schedule(address(quorum), 0, call, bytes32(0), bytes32("s1"), MIN_DELAY);

        // Scheduled: not executable before the delay; the canceller can cancel it.
        vm.prank(proposer);
        timelock.schedule(address(quorum), 0, call, bytes32(0), bytes32("s1"), MIN_DELAY);
        vm.warp(block.timestamp + MIN_DELAY - 1);
        vm.expectPartialRevert(TimelockController.TimelockUnexpectedOperationState.selector);
        timelock.execute(address(quorum), 0, call, bytes32(0), bytes32("s1"));
        bytes32 id = timelock.hashOperation(address(quorum), 0, call, bytes32(0), bytes32("s1"));
        vm.prank(canceller);
        timelock.cancel(id);
        vm.warp(block.timestamp + 1);
        vm.expectPartialRevert(TimelockController.TimelockUnexpectedOperationState.selector);
        timelock.execute(address(quorum), 0, call, bytes32(0), bytes32("s1"));
        assertEq(quorum.signerSetVersion(), 1, "unchanged");

        // Scheduled again and left alone: anyone executes it once the delay has passed.
        _throughTimelock(address(quorum), call);
        assertEq(quorum.signerSetVersion(), 2, "changed by the timelock");
        assertTrue(quorum.isSigner(next[0]) && !quorum.isSigner(vm.addr(signerPool[0])), "set");
    }

    // ------------------------------------------------------------ salted leaves

    /// A leaf binds its salt: the right salt proves, any other does not, and a Rejected
    /// cycle proves nothing.
    function test_verifyEntry_needsTheSaltAndALiveCycle() public {
        bytes32 saltA = keccak256("salt A");
        bytes32 saltB = keccak256("salt B");
        bytes32 leafA = house.computeEntryLeaf(CYCLE, 1, 1, 2, -300, saltA);
        bytes32 leafB = house.computeEntryLeaf(CYCLE, 2, 7, 2, 300, saltB);
        bytes32 root = leafA < leafB
            ? keccak256(abi.encodePacked(leafA, leafB))
            : keccak256(abi.encodePacked(leafB, leafA));
        uint32[] memory ids = _ids(1, 7);
        int256[] memory nets = new int256[](2);
        nets[0] = -300;
        nets[1] = 300;
        _proposeWithRoot(root, ids, nets);

        bytes32[] memory proof = new bytes32[](1);
        proof[0] = leafB;
        assertTrue(house.verifyEntry(CYCLE, 1, 1, 2, -300, saltA, proof), "proves");
        assertTrue(!house.verifyEntry(CYCLE, 1, 1, 2, -300, saltB, proof), "wrong salt");
        assertTrue(!house.verifyEntry(CYCLE, 1, 1, 2, -301, saltA, proof), "wrong amount");

        vm.prank(payoutOf(1));
        house.dispute(CYCLE, 1, bytes32("wrong amount"));
        _throughTimelock(
            address(house), abi.encodeCall(ClearingHouse.resolveDispute, (CYCLE, true))
        );
        assertEq(house.getCycle(CYCLE).status, 5, "Rejected");
        assertTrue(!house.verifyEntry(CYCLE, 1, 1, 2, -300, saltA, proof), "rejected cycle");
    }

    // ------------------------------------------------------------ helpers

    function _propose3() internal {
        int256[] memory nets = new int256[](3);
        nets[0] = -300;
        nets[1] = -200;
        nets[2] = 500;
        _propose(CYCLE, _ids(1, 2, 7), nets);
        disputeDeadline = house.getCycle(CYCLE).disputeDeadline;
        fundingDeadline = house.getCycle(CYCLE).fundingDeadline;
    }

    function _finalize() internal {
        vm.warp(disputeDeadline);
        house.finalize(CYCLE);
    }

    function _finalizedCycle() internal {
        _propose3();
        _finalize();
    }

    function _fund(uint32 partnerId, address payer) internal {
        vm.prank(payer);
        house.fund(CYCLE, partnerId);
    }

    function _proposeWithRoot(bytes32 root, uint32[] memory ids, int256[] memory nets) internal {
        bytes32 digest = house.cycleReportDigest(CYCLE, root, 2, ids, nets);
        uint256[] memory keys = new uint256[](INITIAL_THRESHOLD);
        for (uint256 i = 0; i < INITIAL_THRESHOLD; ++i) {
            keys[i] = signerPool[i];
        }
        house.proposeCycle(CYCLE, root, 2, ids, nets, Signing.signSorted(digest, keys));
    }

    function payoutOf(uint32 partnerId) internal view returns (address) {
        for (uint256 i = 0; i < partnerIds.length; ++i) {
            if (partnerIds[i] == partnerId) return payouts[i];
        }
        revert AssertionFailed("unknown partner");
    }

    function _ids(uint32 a) internal pure returns (uint32[] memory ids) {
        ids = new uint32[](1);
        ids[0] = a;
    }

    function _ids(uint32 a, uint32 b) internal pure returns (uint32[] memory ids) {
        ids = new uint32[](2);
        ids[0] = a;
        ids[1] = b;
    }

    function _ids(uint32 a, uint32 b, uint32 c) internal pure returns (uint32[] memory ids) {
        ids = new uint32[](3);
        ids[0] = a;
        ids[1] = b;
        ids[2] = c;
    }
}
