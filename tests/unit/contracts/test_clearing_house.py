"""ClearingHouse: partners, quorum-signed balanced cycles, disputes, finalization,
funding by net debtors and pull claims by net creditors, salted entry leaves.
(Member default, refunds and the exits a pause cannot stop: test_clearing_house_default.py.)"""

from __future__ import annotations

from typing import Any

import pytest
from eth_utils.crypto import keccak

from oracles.eip712 import cycle_report_digest
from tests.unit.contracts.clearing import (
    CYCLE_ID,
    POSITIONS,
    approve_payer,
    cycle_of,
    finalized_cycle,
    fund_all,
    funded_cycle,
    payout_of,
    position_of,
    propose,
    proposed_cycle,
    register_partners,
)
from tests.unit.contracts.helpers import (
    DEFAULT_ADMIN_ROLE,
    DISPUTE_WINDOW_S,
    DISPUTED,
    FINALIZED,
    FUNDED,
    FUNDER,
    FUNDING_WINDOW_S,
    GUARANTOR,
    LENDER,
    NONE,
    PAUSER_ROLE,
    PROPOSED,
    REJECTED,
    Network,
    advance_time,
    deploy,
    entry_leaf,
    events,
    expect_deploy_revert,
    expect_revert,
    make_cycle,
    proposal_args,
    send,
    sign_cycle,
    unsalted_entry_leaf,
)

pytestmark = pytest.mark.chain

ZERO_ADDRESS = "0x" + "00" * 20
REASON = keccak(b"entry 7 double counted")


def block_time(net: Network) -> int:
    return int(net.w3.eth.get_block("latest")["timestamp"])


# --- partners ------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["relayer", "admin"])
def test_admin_or_relayer_registers_an_active_partner(net: Network, who: str) -> None:
    payout = net.partners[0].address
    receipt = send(net, getattr(net, who), net.clearing_house, "registerPartner", 7, FUNDER, payout)
    assert net.clearing_house.functions.getPartner(7).call() == (payout, FUNDER, True, True)
    assert events(net.clearing_house, receipt, "PartnerRegistered") == [
        {"partnerId": 7, "role": FUNDER, "payout": payout}
    ]


def test_unknown_partner_reads_as_zero(net: Network) -> None:
    assert net.clearing_house.functions.getPartner(99).call() == (ZERO_ADDRESS, 0, False, False)


def test_RevertWhen_partner_role_is_out_of_range(net: Network) -> None:
    expect_revert(
        net,
        net.relayer,
        net.clearing_house,
        "registerPartner",
        [1, GUARANTOR + 1, net.partners[0].address],
        "InvalidPartnerRole",
        [GUARANTOR + 1],
    )


@pytest.mark.parametrize("target", ["clearing_house", "token"])
def test_RevertWhen_payout_is_the_house_or_the_token_where_tokens_would_be_stuck(
    net: Network, target: str
) -> None:
    address = getattr(net, target).address
    expect_revert(
        net,
        net.relayer,
        net.clearing_house,
        "registerPartner",
        [1, LENDER, address],
        "InvalidPayout",
        [1, address],
    )


def test_RevertWhen_payout_is_the_zero_address(net: Network) -> None:
    expect_revert(
        net,
        net.relayer,
        net.clearing_house,
        "registerPartner",
        [1, LENDER, ZERO_ADDRESS],
        "ZeroPayout",
        [1],
    )


def test_RevertWhen_a_partner_id_is_registered_twice(net: Network) -> None:
    send(
        net, net.relayer, net.clearing_house, "registerPartner", 1, LENDER, net.partners[0].address
    )
    expect_revert(
        net,
        net.relayer,
        net.clearing_house,
        "registerPartner",
        [1, FUNDER, net.partners[1].address],
        "PartnerAlreadyRegistered",
        [1],
    )


def test_RevertWhen_outsider_registers_a_partner(net: Network) -> None:
    expect_revert(
        net,
        net.outsider,
        net.clearing_house,
        "registerPartner",
        [1, LENDER, net.outsider.address],
        "NotAdminOrRelayer",
        [net.outsider.address],
    )


def test_set_partner_active_toggles_the_flag_and_emits(net: Network) -> None:
    register_partners(net)
    receipt = send(net, net.admin, net.clearing_house, "setPartnerActive", 2, False)
    assert net.clearing_house.functions.getPartner(2).call()[2] is False
    assert events(net.clearing_house, receipt, "PartnerActiveSet") == [
        {"partnerId": 2, "active": False}
    ]
    send(net, net.relayer, net.clearing_house, "setPartnerActive", 2, True)
    assert net.clearing_house.functions.getPartner(2).call()[2] is True


def test_RevertWhen_toggling_an_unregistered_partner(net: Network) -> None:
    expect_revert(
        net,
        net.relayer,
        net.clearing_house,
        "setPartnerActive",
        [5, False],
        "PartnerNotRegistered",
        [5],
    )


def test_RevertWhen_outsider_toggles_a_partner(net: Network) -> None:
    register_partners(net)
    expect_revert(
        net,
        net.outsider,
        net.clearing_house,
        "setPartnerActive",
        [1, False],
        "NotAdminOrRelayer",
        [net.outsider.address],
    )


# --- proposal ------------------------------------------------------------------------


def test_propose_stores_root_positions_and_deadline_and_emits(net: Network) -> None:
    register_partners(net)
    cycle = make_cycle(CYCLE_ID, POSITIONS)
    receipt = propose(net, cycle)
    now = block_time(net)
    assert cycle_of(net) == {
        "entriesRoot": cycle.root,
        "status": PROPOSED,
        "partnerCount": 4,
        "proposedAt": now,
        "disputeDeadline": now + DISPUTE_WINDOW_S,
        "fundingDeadline": now + DISPUTE_WINDOW_S + FUNDING_WINDOW_S,
        "entryCount": 8,
        "totalDueFen": 30_000,
        "fundedFen": 0,
        "claimedFen": 0,
    }
    for partner_id, net_fen in POSITIONS.items():
        assert position_of(net, partner_id) == (net_fen, True, False, False, False)
    assert events(net.clearing_house, receipt, "CycleProposed") == [
        {
            "cycleId": CYCLE_ID,
            "entriesRoot": cycle.root,
            "entryCount": 8,
            "partnerIds": [1, 2, 3, 4],
            "netPositions": [30_000, -10_000, -20_000, 0],
            "disputeDeadline": now + DISPUTE_WINDOW_S,
            "fundingDeadline": now + DISPUTE_WINDOW_S + FUNDING_WINDOW_S,
        }
    ]


def test_propose_consumes_the_quorum_report_by_digest(net: Network) -> None:
    register_partners(net)
    cycle = make_cycle(CYCLE_ID, POSITIONS)
    propose(net, cycle)
    digest = cycle_report_digest(
        net.chain_id,
        net.clearing_house.address,
        CYCLE_ID,
        cycle.root,
        cycle.entry_count,
        cycle.partner_ids,
        cycle.net_positions,
    )
    assert net.quorum.functions.isReportConsumed(net.clearing_house.address, digest).call()


def test_anyone_may_submit_a_quorum_signed_cycle(net: Network) -> None:
    register_partners(net)
    cycle = make_cycle(CYCLE_ID, POSITIONS)
    args = proposal_args(cycle, sign_cycle(net, cycle))
    send(net, net.outsider, net.clearing_house, "proposeCycle", *args)
    assert cycle_of(net)["status"] == PROPOSED


def test_partner_id_zero_may_be_listed_first(net: Network) -> None:
    send(
        net, net.relayer, net.clearing_house, "registerPartner", 0, LENDER, net.partners[0].address
    )
    send(
        net, net.relayer, net.clearing_house, "registerPartner", 1, FUNDER, net.partners[1].address
    )
    propose(net, make_cycle(CYCLE_ID, {0: 5, 1: -5}))
    assert position_of(net, 0) == (5, True, False, False, False)


def test_cycle_cost_does_not_depend_on_entry_count(net: Network) -> None:
    register_partners(net)
    small = make_cycle(CYCLE_ID, POSITIONS)
    large = make_cycle(CYCLE_ID + 1, POSITIONS)
    large.entries = large.entries * 125_000  # the chain only sees the count: 1,000,000
    gas_small = propose(net, small)["gasUsed"]
    gas_large = propose(net, large)["gasUsed"]
    # Only calldata may differ (a few zero vs non-zero bytes in roots and signatures).
    assert abs(gas_large - gas_small) < 300


def test_RevertWhen_the_cycle_id_was_already_used(net: Network) -> None:
    cycle = proposed_cycle(net)
    again = make_cycle(CYCLE_ID, {1: 1, 2: -1})
    args = proposal_args(again, sign_cycle(net, again))
    expect_revert(
        net,
        net.relayer,
        net.clearing_house,
        "proposeCycle",
        args,
        "CycleAlreadyProposed",
        [cycle.cycle_id, PROPOSED],
    )


def test_RevertWhen_a_rejected_cycle_id_is_proposed_again(net: Network) -> None:
    proposed_cycle(net)
    send(net, net.partners[1], net.clearing_house, "dispute", CYCLE_ID, 2, REASON)
    send(net, net.admin, net.clearing_house, "resolveDispute", CYCLE_ID, True)
    corrected = make_cycle(CYCLE_ID, {1: 1, 2: -1})
    expect_revert(
        net,
        net.relayer,
        net.clearing_house,
        "proposeCycle",
        proposal_args(corrected, sign_cycle(net, corrected)),
        "CycleAlreadyProposed",
        [CYCLE_ID, REJECTED],
    )


@pytest.mark.parametrize("flaw", ["zero_root", "zero_entries", "no_partners"])
def test_RevertWhen_the_cycle_is_empty(net: Network, flaw: str) -> None:
    register_partners(net)
    cycle = make_cycle(CYCLE_ID, POSITIONS)
    args: list[Any] = proposal_args(cycle, [])
    if flaw == "zero_root":
        args[1] = bytes(32)
    elif flaw == "zero_entries":
        args[2] = 0
    else:
        args[3], args[4] = [], []
    expect_revert(
        net, net.relayer, net.clearing_house, "proposeCycle", args, "EmptyCycle", [CYCLE_ID]
    )


def test_RevertWhen_partner_and_position_counts_differ(net: Network) -> None:
    register_partners(net)
    args: list[Any] = proposal_args(make_cycle(CYCLE_ID, POSITIONS), [])
    args[4] = args[4][:3]
    expect_revert(
        net, net.relayer, net.clearing_house, "proposeCycle", args, "LengthMismatch", [4, 3]
    )


@pytest.mark.parametrize(
    ("partner_ids", "index", "offender"), [([2, 1], 1, 1), ([1, 1], 1, 1), ([1, 3, 2], 2, 2)]
)
def test_RevertWhen_partner_ids_are_not_strictly_ascending(
    net: Network, partner_ids: list[int], index: int, offender: int
) -> None:
    register_partners(net)
    positions = [0] * len(partner_ids)
    args = [CYCLE_ID, keccak(b"root"), 1, partner_ids, positions, []]
    expect_revert(
        net,
        net.relayer,
        net.clearing_house,
        "proposeCycle",
        args,
        "PartnerIdsNotAscending",
        [index, offender],
    )


def test_RevertWhen_a_listed_partner_is_not_registered(net: Network) -> None:
    register_partners(net)
    args = [CYCLE_ID, keccak(b"root"), 1, [1, 99], [5, -5], []]
    expect_revert(
        net, net.relayer, net.clearing_house, "proposeCycle", args, "PartnerNotRegistered", [99]
    )


def test_RevertWhen_a_listed_partner_is_inactive(net: Network) -> None:
    register_partners(net)
    send(net, net.relayer, net.clearing_house, "setPartnerActive", 3, False)
    cycle = make_cycle(CYCLE_ID, POSITIONS)
    expect_revert(
        net,
        net.relayer,
        net.clearing_house,
        "proposeCycle",
        proposal_args(cycle, sign_cycle(net, cycle)),
        "PartnerNotActive",
        [3],
    )


@pytest.mark.parametrize("position", [2**95, -(2**95) - 1])
def test_RevertWhen_a_position_exceeds_int96(net: Network, position: int) -> None:
    register_partners(net)
    args = [CYCLE_ID, keccak(b"root"), 1, [1, 2], [position, -position], []]
    expect_revert(
        net,
        net.relayer,
        net.clearing_house,
        "proposeCycle",
        args,
        "PositionOutOfRange",
        [1, position],
    )


def test_RevertWhen_positions_do_not_sum_to_zero(net: Network) -> None:
    register_partners(net)
    cycle = make_cycle(CYCLE_ID, POSITIONS)
    cycle.net_positions[0] += 7
    expect_revert(
        net,
        net.relayer,
        net.clearing_house,
        "proposeCycle",
        proposal_args(cycle, sign_cycle(net, cycle)),
        "CycleNotBalanced",
        [7],
    )


def test_RevertWhen_the_proposal_has_fewer_signatures_than_the_threshold(net: Network) -> None:
    register_partners(net)
    cycle = make_cycle(CYCLE_ID, POSITIONS)
    one = sign_cycle(net, cycle, net.signers[:1])
    expect_revert(
        net,
        net.relayer,
        net.clearing_house,
        "proposeCycle",
        proposal_args(cycle, one),
        "QuorumNotReached",
        [1, net.threshold],
    )
    assert cycle_of(net)["status"] == NONE


def test_RevertWhen_signed_positions_differ_from_submitted_positions(net: Network) -> None:
    register_partners(net)
    signed = make_cycle(CYCLE_ID, POSITIONS)
    tampered = make_cycle(CYCLE_ID, {1: 30_000, 2: -20_000, 3: -10_000, 4: 0})
    expect_revert(
        net,
        net.relayer,
        net.clearing_house,
        "proposeCycle",
        proposal_args(tampered, sign_cycle(net, signed)),
        "UnknownSigner",
    )


# --- disputes ------------------------------------------------------------------------


def test_listed_partner_disputes_within_the_window(net: Network) -> None:
    proposed_cycle(net)
    receipt = send(net, net.partners[1], net.clearing_house, "dispute", CYCLE_ID, 2, REASON)
    assert cycle_of(net)["status"] == DISPUTED
    assert position_of(net, 2)[2] is True
    assert events(net.clearing_house, receipt, "CycleDisputed") == [
        {"cycleId": CYCLE_ID, "partnerId": 2, "reason": REASON}
    ]


def test_a_second_partner_may_dispute_a_disputed_cycle(net: Network) -> None:
    proposed_cycle(net)
    send(net, net.partners[1], net.clearing_house, "dispute", CYCLE_ID, 2, REASON)
    send(net, net.partners[3], net.clearing_house, "dispute", CYCLE_ID, 4, REASON)
    assert position_of(net, 4)[2] is True


def test_RevertWhen_a_partner_disputes_twice(net: Network) -> None:
    proposed_cycle(net)
    send(net, net.partners[1], net.clearing_house, "dispute", CYCLE_ID, 2, REASON)
    expect_revert(
        net,
        net.partners[1],
        net.clearing_house,
        "dispute",
        [CYCLE_ID, 2, REASON],
        "AlreadyDisputed",
        [CYCLE_ID, 2],
    )


def test_RevertWhen_dispute_comes_from_another_address_than_the_payout(net: Network) -> None:
    proposed_cycle(net)
    expect_revert(
        net,
        net.partners[0],
        net.clearing_house,
        "dispute",
        [CYCLE_ID, 2, REASON],
        "NotPartnerPayout",
        [2, net.partners[0].address],
    )


def test_RevertWhen_an_unlisted_partner_disputes(net: Network) -> None:
    register_partners(net)
    propose(net, make_cycle(CYCLE_ID, {1: 10, 2: -10}))
    expect_revert(
        net,
        net.partners[2],
        net.clearing_house,
        "dispute",
        [CYCLE_ID, 3, REASON],
        "PartnerNotListed",
        [CYCLE_ID, 3],
    )


def test_RevertWhen_disputing_after_the_window(net: Network) -> None:
    proposed_cycle(net)
    deadline = cycle_of(net)["disputeDeadline"]
    advance_time(net, DISPUTE_WINDOW_S)
    expect_revert(
        net,
        net.partners[1],
        net.clearing_house,
        "dispute",
        [CYCLE_ID, 2, REASON],
        "DisputeWindowClosed",
        [CYCLE_ID, deadline],
    )


@pytest.mark.parametrize("stage", ["unknown", "finalized"])
def test_RevertWhen_disputing_a_cycle_that_is_not_proposed(net: Network, stage: str) -> None:
    status = NONE
    if stage == "finalized":
        finalized_cycle(net)
        status = FINALIZED
    expect_revert(
        net,
        net.partners[1],
        net.clearing_house,
        "dispute",
        [CYCLE_ID, 2, REASON],
        "UnexpectedCycleStatus",
        [CYCLE_ID, status],
    )


def test_upheld_dispute_rejects_the_cycle_for_good(net: Network) -> None:
    cycle = proposed_cycle(net)
    send(net, net.partners[1], net.clearing_house, "dispute", CYCLE_ID, 2, REASON)
    receipt = send(net, net.admin, net.clearing_house, "resolveDispute", CYCLE_ID, True)
    assert cycle_of(net)["status"] == REJECTED
    assert events(net.clearing_house, receipt, "DisputeResolved") == [
        {"cycleId": CYCLE_ID, "upheld": True}
    ]
    leaf_args = [CYCLE_ID, *cycle.entries[0]]
    assert not net.clearing_house.functions.verifyEntry(*leaf_args, cycle.proof(0)).call()
    advance_time(net, DISPUTE_WINDOW_S)
    expect_revert(
        net,
        net.outsider,
        net.clearing_house,
        "finalize",
        [CYCLE_ID],
        "UnexpectedCycleStatus",
        [CYCLE_ID, REJECTED],
    )


def test_dismissed_dispute_resumes_the_cycle_with_its_deadline(net: Network) -> None:
    proposed_cycle(net)
    deadline = cycle_of(net)["disputeDeadline"]
    send(net, net.partners[1], net.clearing_house, "dispute", CYCLE_ID, 2, REASON)
    expect_revert(
        net,
        net.outsider,
        net.clearing_house,
        "finalize",
        [CYCLE_ID],
        "UnexpectedCycleStatus",
        [CYCLE_ID, DISPUTED],
    )
    send(net, net.admin, net.clearing_house, "resolveDispute", CYCLE_ID, False)
    assert cycle_of(net)["status"] == PROPOSED
    assert cycle_of(net)["disputeDeadline"] == deadline
    advance_time(net, DISPUTE_WINDOW_S)
    send(net, net.outsider, net.clearing_house, "finalize", CYCLE_ID)
    assert cycle_of(net)["status"] == FINALIZED


def test_RevertWhen_resolving_a_cycle_that_is_not_disputed(net: Network) -> None:
    proposed_cycle(net)
    expect_revert(
        net,
        net.admin,
        net.clearing_house,
        "resolveDispute",
        [CYCLE_ID, True],
        "UnexpectedCycleStatus",
        [CYCLE_ID, PROPOSED],
    )


def test_RevertWhen_non_admin_resolves_a_dispute(net: Network) -> None:
    proposed_cycle(net)
    send(net, net.partners[1], net.clearing_house, "dispute", CYCLE_ID, 2, REASON)
    expect_revert(
        net,
        net.relayer,
        net.clearing_house,
        "resolveDispute",
        [CYCLE_ID, True],
        "AccessControlUnauthorizedAccount",
        [net.relayer.address, DEFAULT_ADMIN_ROLE],
    )


# --- finalization --------------------------------------------------------------------


def test_anyone_finalizes_after_the_window_and_the_root_is_kept(net: Network) -> None:
    cycle = proposed_cycle(net)
    advance_time(net, DISPUTE_WINDOW_S)
    receipt = send(net, net.outsider, net.clearing_house, "finalize", CYCLE_ID)
    assert cycle_of(net)["status"] == FINALIZED
    assert cycle_of(net)["entriesRoot"] == cycle.root
    assert events(net.clearing_house, receipt, "CycleFinalized") == [
        {"cycleId": CYCLE_ID, "entriesRoot": cycle.root}
    ]


def test_RevertWhen_finalizing_inside_the_window(net: Network) -> None:
    proposed_cycle(net)
    deadline = cycle_of(net)["disputeDeadline"]
    expect_revert(
        net,
        net.outsider,
        net.clearing_house,
        "finalize",
        [CYCLE_ID],
        "DisputeWindowOpen",
        [CYCLE_ID, deadline],
    )


def test_RevertWhen_finalizing_twice(net: Network) -> None:
    finalized_cycle(net)
    expect_revert(
        net,
        net.outsider,
        net.clearing_house,
        "finalize",
        [CYCLE_ID],
        "UnexpectedCycleStatus",
        [CYCLE_ID, FINALIZED],
    )


def test_a_cycle_of_zero_positions_is_funded_on_finalization(net: Network) -> None:
    register_partners(net)
    propose(net, make_cycle(CYCLE_ID, {1: 0, 2: 0}))
    advance_time(net, DISPUTE_WINDOW_S)
    receipt = send(net, net.outsider, net.clearing_house, "finalize", CYCLE_ID)
    assert cycle_of(net)["status"] == FUNDED
    assert events(net.clearing_house, receipt, "CycleFullyFunded") == [
        {"cycleId": CYCLE_ID, "totalDueFen": 0}
    ]


# --- funding -------------------------------------------------------------------------


def test_anyone_funds_a_debtor_and_the_last_funding_makes_the_cycle_claimable(
    net: Network,
) -> None:
    finalized_cycle(net)
    approve_payer(net)
    first = send(net, net.admin, net.clearing_house, "fund", CYCLE_ID, 2)
    assert events(net.clearing_house, first, "CycleFunded") == [
        {"cycleId": CYCLE_ID, "partnerId": 2, "amount": 10_000}
    ]
    assert events(net.clearing_house, first, "CycleFullyFunded") == []
    assert position_of(net, 2) == (-10_000, True, False, True, False)
    assert cycle_of(net)["status"] == FINALIZED
    last = send(net, net.admin, net.clearing_house, "fund", CYCLE_ID, 3)
    assert events(net.clearing_house, last, "CycleFullyFunded") == [
        {"cycleId": CYCLE_ID, "totalDueFen": 30_000}
    ]
    assert cycle_of(net)["status"] == FUNDED
    assert cycle_of(net)["fundedFen"] == 30_000
    assert net.token.functions.balanceOf(net.clearing_house.address).call() == 30_000


@pytest.mark.parametrize(("partner_id", "net_fen"), [(1, 30_000), (4, 0)])
def test_RevertWhen_funding_a_partner_that_is_not_a_net_debtor(
    net: Network, partner_id: int, net_fen: int
) -> None:
    finalized_cycle(net)
    approve_payer(net)
    expect_revert(
        net,
        net.admin,
        net.clearing_house,
        "fund",
        [CYCLE_ID, partner_id],
        "NotNetDebtor",
        [CYCLE_ID, partner_id, net_fen],
    )


def test_RevertWhen_funding_a_debtor_twice(net: Network) -> None:
    finalized_cycle(net)
    approve_payer(net)
    send(net, net.admin, net.clearing_house, "fund", CYCLE_ID, 2)
    expect_revert(
        net, net.admin, net.clearing_house, "fund", [CYCLE_ID, 2], "AlreadyFunded", [CYCLE_ID, 2]
    )


def test_RevertWhen_funding_an_unlisted_partner(net: Network) -> None:
    finalized_cycle(net, {1: 10, 2: -10})
    expect_revert(
        net,
        net.admin,
        net.clearing_house,
        "fund",
        [CYCLE_ID, 3],
        "PartnerNotListed",
        [CYCLE_ID, 3],
    )


def test_RevertWhen_funding_before_finalization(net: Network) -> None:
    proposed_cycle(net)
    approve_payer(net)
    expect_revert(
        net,
        net.admin,
        net.clearing_house,
        "fund",
        [CYCLE_ID, 2],
        "UnexpectedCycleStatus",
        [CYCLE_ID, PROPOSED],
    )


def test_RevertWhen_the_payer_has_not_approved_enough(net: Network) -> None:
    finalized_cycle(net)
    approve_payer(net, amount_fen=9_999)
    expect_revert(
        net,
        net.admin,
        net.clearing_house,
        "fund",
        [CYCLE_ID, 2],
        "ERC20InsufficientAllowance",
        [net.clearing_house.address, 9_999, 10_000],
    )
    assert position_of(net, 2)[3] is False


# --- claims --------------------------------------------------------------------------


def test_claim_pays_the_creditor_payout_once_the_cycle_is_funded(net: Network) -> None:
    funded_cycle(net)
    payout = payout_of(net, 1)
    receipt = send(net, net.outsider, net.clearing_house, "claim", CYCLE_ID, 1)
    assert net.token.functions.balanceOf(payout).call() == 30_000
    assert net.token.functions.balanceOf(net.clearing_house.address).call() == 0
    assert net.token.functions.balanceOf(net.outsider.address).call() == 0
    assert cycle_of(net)["claimedFen"] == 30_000
    assert position_of(net, 1) == (30_000, True, False, True, False)
    assert events(net.clearing_house, receipt, "CycleClaimed") == [
        {"cycleId": CYCLE_ID, "partnerId": 1, "payout": payout, "amount": 30_000}
    ]


def test_claim_costs_under_80k_gas(net: Network) -> None:
    funded_cycle(net)
    assert send(net, net.partners[0], net.clearing_house, "claim", CYCLE_ID, 1)["gasUsed"] < 80_000


def test_a_deactivated_partner_still_claims_an_earlier_cycle(net: Network) -> None:
    funded_cycle(net)
    send(net, net.relayer, net.clearing_house, "setPartnerActive", 1, False)
    send(net, net.partners[0], net.clearing_house, "claim", CYCLE_ID, 1)
    assert net.token.functions.balanceOf(payout_of(net, 1)).call() == 30_000


def test_RevertWhen_claiming_before_every_debtor_funded(net: Network) -> None:
    finalized_cycle(net)
    approve_payer(net)
    send(net, net.admin, net.clearing_house, "fund", CYCLE_ID, 2)
    expect_revert(
        net,
        net.partners[0],
        net.clearing_house,
        "claim",
        [CYCLE_ID, 1],
        "UnexpectedCycleStatus",
        [CYCLE_ID, FINALIZED],
    )


@pytest.mark.parametrize(("partner_id", "net_fen"), [(2, -10_000), (4, 0)])
def test_RevertWhen_claiming_for_a_partner_that_is_not_a_net_creditor(
    net: Network, partner_id: int, net_fen: int
) -> None:
    funded_cycle(net)
    expect_revert(
        net,
        net.outsider,
        net.clearing_house,
        "claim",
        [CYCLE_ID, partner_id],
        "NotNetCreditor",
        [CYCLE_ID, partner_id, net_fen],
    )


def test_RevertWhen_claiming_twice(net: Network) -> None:
    funded_cycle(net)
    send(net, net.partners[0], net.clearing_house, "claim", CYCLE_ID, 1)
    expect_revert(
        net,
        net.partners[0],
        net.clearing_house,
        "claim",
        [CYCLE_ID, 1],
        "AlreadyClaimed",
        [CYCLE_ID, 1],
    )


def test_RevertWhen_claiming_for_an_unlisted_partner(net: Network) -> None:
    funded_cycle(net, {1: 10, 2: -10})
    expect_revert(
        net,
        net.outsider,
        net.clearing_house,
        "claim",
        [CYCLE_ID, 3],
        "PartnerNotListed",
        [CYCLE_ID, 3],
    )


# --- views ---------------------------------------------------------------------------


def test_verify_entry_proves_every_entry_and_rejects_altered_ones(net: Network) -> None:
    cycle = proposed_cycle(net)
    verify = net.clearing_house.functions.verifyEntry
    for index, (entry_id, partner_id, kind, amount_fen, salt) in enumerate(cycle.entries):
        proof = cycle.proof(index)
        assert verify(CYCLE_ID, entry_id, partner_id, kind, amount_fen, salt, proof).call()
        assert not verify(CYCLE_ID, entry_id, partner_id, kind, amount_fen + 1, salt, proof).call()
        assert not verify(CYCLE_ID, entry_id, partner_id + 1, kind, amount_fen, salt, proof).call()


def test_verify_entry_needs_the_entry_salt(net: Network) -> None:
    cycle = proposed_cycle(net)
    verify = net.clearing_house.functions.verifyEntry
    entry_id, partner_id, kind, amount_fen, salt = cycle.entries[0]
    other_salt = cycle.entries[1][4]
    for wrong in (bytes(32), other_salt, keccak(salt)):
        assert not verify(
            CYCLE_ID, entry_id, partner_id, kind, amount_fen, wrong, cycle.proof(0)
        ).call()


def test_verify_entry_is_false_for_an_unknown_cycle(net: Network) -> None:
    cycle = make_cycle(CYCLE_ID, POSITIONS)
    verify = net.clearing_house.functions.verifyEntry
    assert not verify(CYCLE_ID, *cycle.entries[0], cycle.proof(0)).call()


def test_compute_entry_leaf_is_the_double_hashed_abi_encoding_with_the_salt(net: Network) -> None:
    salt = keccak(b"a private salt")
    args = (CYCLE_ID, 5, 3, 2, -12_345, salt)
    on_chain = bytes(net.clearing_house.functions.computeEntryLeaf(*args).call())
    assert on_chain == entry_leaf(*args)
    assert on_chain != entry_leaf(*args[:5], bytes(32))
    assert on_chain != unsalted_entry_leaf(*args[:5])


def test_cycle_report_digest_matches_the_python_mirror(net: Network) -> None:
    cycle = make_cycle(CYCLE_ID, POSITIONS)
    args = (CYCLE_ID, cycle.root, cycle.entry_count, cycle.partner_ids, cycle.net_positions)
    on_chain = net.clearing_house.functions.cycleReportDigest(*args).call()
    assert bytes(on_chain) == cycle_report_digest(net.chain_id, net.clearing_house.address, *args)


def test_views_report_quorum_token_and_window(net: Network) -> None:
    functions = net.clearing_house.functions
    assert functions.oracleQuorum().call() == net.quorum.address
    assert functions.settlementToken().call() == net.token.address
    assert functions.disputeWindowDurationSeconds().call() == DISPUTE_WINDOW_S
    assert functions.fundingWindowDurationSeconds().call() == FUNDING_WINDOW_S


def test_an_unknown_cycle_reads_as_zero(net: Network) -> None:
    assert set(cycle_of(net).values()) == {0, bytes(32)}


# --- pause ---------------------------------------------------------------------------

# What moves a cycle forward; funding, disputes and the exits (claim, declareDefault,
# refund) are never paused (test_clearing_house_default.py shows them during a pause).
PAUSED_WRITES: list[tuple[str, str, list[Any]]] = [
    ("relayer", "registerPartner", [9, LENDER, "0x" + "11" * 20]),
    ("relayer", "setPartnerActive", [1, False]),
    ("relayer", "proposeCycle", [CYCLE_ID + 1, keccak(b"r"), 1, [1, 2], [1, -1], []]),
    ("admin", "resolveDispute", [CYCLE_ID, True]),
    ("outsider", "finalize", [CYCLE_ID]),
]


@pytest.mark.parametrize(
    ("who", "function", "args"), PAUSED_WRITES, ids=[w[1] for w in PAUSED_WRITES]
)
def test_RevertWhen_a_forward_write_is_sent_while_paused(
    net: Network, who: str, function: str, args: list[Any]
) -> None:
    proposed_cycle(net)
    send(net, net.admin, net.clearing_house, "pause")
    expect_revert(net, getattr(net, who), net.clearing_house, function, args, "EnforcedPause")


def test_unpause_lets_a_paused_cycle_continue(net: Network) -> None:
    finalized_cycle(net)
    send(net, net.admin, net.clearing_house, "pause")
    send(net, net.admin, net.clearing_house, "unpause")
    fund_all(net, make_cycle(CYCLE_ID, POSITIONS))
    assert cycle_of(net)["status"] == FUNDED


def test_RevertWhen_non_pauser_pauses_the_clearing_house(net: Network) -> None:
    expect_revert(
        net,
        net.relayer,
        net.clearing_house,
        "pause",
        [],
        "AccessControlUnauthorizedAccount",
        [net.relayer.address, PAUSER_ROLE],
    )


# --- construction --------------------------------------------------------------------


@pytest.mark.parametrize("argument_index", [0, 1, 2])
def test_RevertWhen_constructed_with_a_zero_address(net: Network, argument_index: int) -> None:
    args: list[Any] = [net.admin.address, net.quorum.address, net.token.address, 0, 1]
    args[argument_index] = ZERO_ADDRESS
    artifact = net.compiled.artifact("ClearingHouse")
    expect_deploy_revert(net, artifact, args, "ZeroAddressArgument", [argument_index])


def test_RevertWhen_constructed_with_a_window_over_365_days(net: Network) -> None:
    too_long = 365 * 86_400 + 1
    args = [net.admin.address, net.quorum.address, net.token.address, too_long, 1]
    artifact = net.compiled.artifact("ClearingHouse")
    expect_deploy_revert(net, artifact, args, "DisputeWindowTooLong", [too_long])


@pytest.mark.parametrize("funding_window", [0, 365 * 86_400 + 1])
def test_RevertWhen_constructed_with_a_funding_window_of_zero_or_over_365_days(
    net: Network, funding_window: int
) -> None:
    args = [net.admin.address, net.quorum.address, net.token.address, 0, funding_window]
    artifact = net.compiled.artifact("ClearingHouse")
    expect_deploy_revert(net, artifact, args, "InvalidFundingWindow", [funding_window])


def test_windows_of_exactly_365_days_are_accepted(net: Network) -> None:
    year = 365 * 86_400
    artifact = net.compiled.artifact("ClearingHouse")
    house = deploy(
        net,
        net.admin,
        artifact,
        net.admin.address,
        net.quorum.address,
        net.token.address,
        year,
        year,
    )
    assert house.functions.disputeWindowDurationSeconds().call() == year
    assert house.functions.fundingWindowDurationSeconds().call() == year


def test_a_zero_window_allows_finalizing_in_the_next_block(net: Network) -> None:
    artifact = net.compiled.artifact("ClearingHouse")
    house = deploy(
        net, net.admin, artifact, net.admin.address, net.quorum.address, net.token.address, 0, 1
    )
    send(net, net.admin, net.quorum, "grantRole", keccak(text="CONSUMER_ROLE"), house.address)
    send(net, net.admin, house, "registerPartner", 1, LENDER, net.partners[0].address)
    send(net, net.admin, house, "registerPartner", 2, FUNDER, net.partners[1].address)
    original, net.clearing_house = net.clearing_house, house
    try:
        propose(net, make_cycle(CYCLE_ID, {1: 5, 2: -5}))
        send(net, net.outsider, house, "finalize", CYCLE_ID)
        assert cycle_of(net)["status"] == FINALIZED
    finally:
        net.clearing_house = original
