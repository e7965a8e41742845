"""Member default and the exits a pause cannot stop.

A debtor that never funds used to freeze a cycle for good: the other debtors' deposits
stayed in the ClearingHouse with no way out. Now, once the funding deadline has passed,
anyone declares the cycle Defaulted by naming exactly the debtors that did not fund, and
every debtor that did fund takes its deposit back with `refund`. And a pause (which the
timelock may order) stops what moves a cycle forward, never a dispute or an exit.
"""

from __future__ import annotations

from typing import Any

import pytest
from eth_utils.crypto import keccak

from tests.unit.contracts.clearing import (
    CYCLE_ID,
    MINT_FEN,
    cycle_of,
    finalized_cycle,
    funded_cycle,
    pass_funding_deadline,
    payout_of,
    position_of,
    propose,
    proposed_cycle,
    register_partners,
)
from tests.unit.contracts.helpers import (
    CYCLE_DEFAULTED,
    DISPUTE_WINDOW_S,
    DISPUTED,
    FINALIZED,
    FUNDED,
    PROPOSED,
    Network,
    advance_time,
    events,
    expect_revert,
    make_cycle,
    proposal_args,
    send,
    sign_and_send,
    sign_cycle,
)

pytestmark = pytest.mark.chain

# Partner 1 is owed 60,000 fen by partners 2, 3 and 4.
THREE_DEBTORS = {1: 60_000, 2: -10_000, 3: -20_000, 4: -30_000}
REASON = keccak(b"entry 7 double counted")


def balance_of(net: Network, address: str) -> int:
    return int(net.token.functions.balanceOf(address).call())


def house_balance(net: Network) -> int:
    return balance_of(net, net.clearing_house.address)


def give_debtors_tokens(net: Network, partner_ids: list[int]) -> None:
    """Each debtor's payout holds MINT_FEN tokens and lets the ClearingHouse pull them."""
    for partner_id in partner_ids:
        payout = net.partners[partner_id - 1]
        send(net, net.admin, net.token, "mint", payout.address, MINT_FEN)
        send(net, payout, net.token, "approve", net.clearing_house.address, MINT_FEN)


def fund_own(net: Network, partner_id: int, cycle_id: int = CYCLE_ID) -> None:
    """The debtor funds its own position from its payout address."""
    send(net, net.partners[partner_id - 1], net.clearing_house, "fund", cycle_id, partner_id)


def expect_declare_revert(
    net: Network, defaulters: list[int], error: str, error_args: list[Any] | None = None
) -> None:
    expect_revert(
        net,
        net.outsider,
        net.clearing_house,
        "declareDefault",
        [CYCLE_ID, defaulters],
        error,
        error_args,
    )


# --- attack: a debtor never funds ----------------------------------------------------


def test_a_debtor_that_never_funds_cannot_lock_the_others_deposits(net: Network) -> None:
    cycle = finalized_cycle(net, THREE_DEBTORS)
    give_debtors_tokens(net, [2, 3, 4])
    fund_own(net, 2)
    funding_deadline = cycle_of(net)["fundingDeadline"]
    assert (
        funding_deadline
        == cycle_of(net)["disputeDeadline"]
        + net.clearing_house.functions.fundingWindowDurationSeconds().call()
    )

    # Partners 3 and 4 never fund. Before the deadline nobody can call it a default.
    expect_declare_revert(net, [3, 4], "FundingWindowOpen", [CYCLE_ID, funding_deadline])
    pass_funding_deadline(net)

    # The list must name every unfunded debtor, and only them.
    expect_declare_revert(net, [3], "DefaultersIncomplete", [CYCLE_ID, 20_000, 50_000])
    expect_declare_revert(net, [4], "DefaultersIncomplete", [CYCLE_ID, 30_000, 50_000])
    expect_declare_revert(net, [], "DefaultersIncomplete", [CYCLE_ID, 0, 50_000])
    expect_declare_revert(net, [2, 3, 4], "AlreadyFunded", [CYCLE_ID, 2])
    expect_declare_revert(net, [2, 4], "AlreadyFunded", [CYCLE_ID, 2])
    expect_declare_revert(net, [1, 3, 4], "NotNetDebtor", [CYCLE_ID, 1, 60_000])
    expect_declare_revert(net, [3, 4, 9], "PartnerNotListed", [CYCLE_ID, 9])
    expect_declare_revert(net, [4, 3], "PartnerIdsNotAscending", [1, 3])
    expect_declare_revert(net, [3, 3, 4], "PartnerIdsNotAscending", [1, 3])
    assert cycle_of(net)["status"] == FINALIZED

    receipt = send(net, net.outsider, net.clearing_house, "declareDefault", CYCLE_ID, [3, 4])
    assert events(net.clearing_house, receipt, "CycleDefaulted") == [
        {"cycleId": CYCLE_ID, "defaulters": [3, 4], "unfundedFen": 50_000}
    ]
    assert cycle_of(net)["status"] == CYCLE_DEFAULTED
    leaf_args = [CYCLE_ID, *cycle.entries[0]]  # void: its entries are settled again elsewhere
    assert not net.clearing_house.functions.verifyEntry(*leaf_args, cycle.proof(0)).call()

    # The debtor that funded gets exactly its deposit back, to its payout, once.
    payout = payout_of(net, 2)
    before = balance_of(net, payout)
    refund = send(net, net.outsider, net.clearing_house, "refund", CYCLE_ID, 2)
    assert balance_of(net, payout) - before == 10_000
    assert balance_of(net, payout) == MINT_FEN
    assert events(net.clearing_house, refund, "CycleRefunded") == [
        {"cycleId": CYCLE_ID, "partnerId": 2, "payout": payout, "amount": 10_000}
    ]
    assert position_of(net, 2) == (-10_000, True, False, True, True)
    assert cycle_of(net)["claimedFen"] == 10_000
    expect_revert(
        net,
        net.outsider,
        net.clearing_house,
        "refund",
        [CYCLE_ID, 2],
        "AlreadyRefunded",
        [CYCLE_ID, 2],
    )
    for defaulter in (3, 4):
        expect_revert(
            net,
            net.partners[defaulter - 1],
            net.clearing_house,
            "refund",
            [CYCLE_ID, defaulter],
            "NothingToRefund",
            [CYCLE_ID, defaulter],
        )
    expect_revert(
        net,
        net.outsider,
        net.clearing_house,
        "refund",
        [CYCLE_ID, 1],
        "NotNetDebtor",
        [CYCLE_ID, 1, 60_000],
    )

    # Nobody is paid from a defaulted cycle, and it stays defaulted.
    defaulted = [CYCLE_ID, CYCLE_DEFAULTED]
    for function, who, args in (
        ("claim", net.partners[0], [CYCLE_ID, 1]),
        ("fund", net.partners[2], [CYCLE_ID, 3]),
        ("declareDefault", net.outsider, [CYCLE_ID, [3, 4]]),
    ):
        expect_revert(
            net, who, net.clearing_house, function, args, "UnexpectedCycleStatus", defaulted
        )
    assert balance_of(net, payout_of(net, 1)) == 0
    assert house_balance(net) == 0


def test_every_funded_debtor_is_refunded_exactly_its_deposit(net: Network) -> None:
    finalized_cycle(net, THREE_DEBTORS)
    give_debtors_tokens(net, [2, 3, 4])
    fund_own(net, 2)
    fund_own(net, 4)
    assert house_balance(net) == 40_000
    pass_funding_deadline(net)
    expect_declare_revert(net, [], "DefaultersIncomplete", [CYCLE_ID, 0, 20_000])
    send(net, net.outsider, net.clearing_house, "declareDefault", CYCLE_ID, [3])
    for partner_id in (4, 2):
        send(net, net.outsider, net.clearing_house, "refund", CYCLE_ID, partner_id)
        assert balance_of(net, payout_of(net, partner_id)) == MINT_FEN
    assert cycle_of(net)["claimedFen"] == 40_000
    assert house_balance(net) == 0


def test_a_cycle_nobody_funded_defaults_with_every_debtor_named(net: Network) -> None:
    finalized_cycle(net, THREE_DEBTORS)
    pass_funding_deadline(net)
    receipt = send(net, net.outsider, net.clearing_house, "declareDefault", CYCLE_ID, [2, 3, 4])
    assert events(net.clearing_house, receipt, "CycleDefaulted")[0]["unfundedFen"] == 60_000
    assert house_balance(net) == 0


def test_the_funding_deadline_is_exact(net: Network) -> None:
    finalized_cycle(net, THREE_DEBTORS)
    deadline = int(cycle_of(net)["fundingDeadline"])
    data = net.clearing_house.encode_abi("declareDefault", args=[CYCLE_ID, [2, 3, 4]])
    for timestamp, status in ((deadline - 1, 0), (deadline, 1)):
        net.w3.provider.make_request("evm_setNextBlockTimestamp", [timestamp])  # type: ignore[arg-type]
        receipt = sign_and_send(
            net.w3, net.chain_id, net.outsider, net.clearing_house.address, data
        )
        assert receipt["status"] == status, f"declareDefault at {timestamp - deadline:+d} s"
    assert cycle_of(net)["status"] == CYCLE_DEFAULTED


@pytest.mark.parametrize(("stage", "status"), [("proposed", PROPOSED), ("funded", FUNDED)])
def test_RevertWhen_declaring_a_default_on_a_cycle_that_is_not_finalized(
    net: Network, stage: str, status: int
) -> None:
    if stage == "proposed":
        proposed_cycle(net, THREE_DEBTORS)
    else:
        funded_cycle(net, THREE_DEBTORS)
    advance_time(net, DISPUTE_WINDOW_S)
    pass_funding_deadline(net)
    expect_declare_revert(net, [2, 3, 4], "UnexpectedCycleStatus", [CYCLE_ID, status])


def test_RevertWhen_refunding_a_cycle_that_is_not_defaulted(net: Network) -> None:
    finalized_cycle(net, THREE_DEBTORS)
    give_debtors_tokens(net, [2])
    fund_own(net, 2)
    pass_funding_deadline(net)
    expect_revert(
        net,
        net.outsider,
        net.clearing_house,
        "refund",
        [CYCLE_ID, 2],
        "UnexpectedCycleStatus",
        [CYCLE_ID, FINALIZED],
    )


# --- attack: a pause cannot trap anyone ----------------------------------------------


def test_claims_succeed_while_paused_but_proposals_and_finalization_do_not(
    net: Network,
) -> None:
    funded_cycle(net)
    waiting = make_cycle(CYCLE_ID + 1, {1: 5, 2: -5})
    propose(net, waiting)
    advance_time(net, DISPUTE_WINDOW_S)
    send(net, net.admin, net.clearing_house, "pause")

    send(net, net.outsider, net.clearing_house, "claim", CYCLE_ID, 1)
    assert balance_of(net, payout_of(net, 1)) == 30_000
    assert house_balance(net) == 0

    expect_revert(
        net, net.outsider, net.clearing_house, "finalize", [CYCLE_ID + 1], "EnforcedPause"
    )
    new = make_cycle(CYCLE_ID + 2, {1: 7, 2: -7})
    expect_revert(
        net,
        net.relayer,
        net.clearing_house,
        "proposeCycle",
        proposal_args(new, sign_cycle(net, new)),
        "EnforcedPause",
    )


def test_funding_a_default_and_refunds_all_go_on_while_paused(net: Network) -> None:
    """A pause cannot push a debtor into default (funding is not paused), nor hold a funder's
    deposit (declaring the default and refunding are not paused either)."""
    finalized_cycle(net, THREE_DEBTORS)
    give_debtors_tokens(net, [2, 3, 4])
    fund_own(net, 2)
    send(net, net.admin, net.clearing_house, "pause")
    fund_own(net, 3)
    pass_funding_deadline(net)

    send(net, net.outsider, net.clearing_house, "declareDefault", CYCLE_ID, [4])
    send(net, net.outsider, net.clearing_house, "refund", CYCLE_ID, 2)
    send(net, net.outsider, net.clearing_house, "refund", CYCLE_ID, 3)
    assert cycle_of(net)["status"] == CYCLE_DEFAULTED
    assert balance_of(net, payout_of(net, 2)) == MINT_FEN
    assert balance_of(net, payout_of(net, 3)) == MINT_FEN
    assert house_balance(net) == 0
    assert net.clearing_house.functions.paused().call()


def test_a_partner_disputes_while_paused_but_the_admin_cannot_resolve(net: Network) -> None:
    register_partners(net)
    propose(net, make_cycle(CYCLE_ID, THREE_DEBTORS))
    send(net, net.admin, net.clearing_house, "pause")
    receipt = send(net, net.partners[1], net.clearing_house, "dispute", CYCLE_ID, 2, REASON)
    assert events(net.clearing_house, receipt, "CycleDisputed") == [
        {"cycleId": CYCLE_ID, "partnerId": 2, "reason": REASON}
    ]
    assert cycle_of(net)["status"] == DISPUTED
    expect_revert(
        net,
        net.admin,
        net.clearing_house,
        "resolveDispute",
        [CYCLE_ID, False],
        "EnforcedPause",
    )
    advance_time(net, DISPUTE_WINDOW_S)
    expect_revert(net, net.outsider, net.clearing_house, "finalize", [CYCLE_ID], "EnforcedPause")
