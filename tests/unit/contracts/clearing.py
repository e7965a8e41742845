"""Shared steps of the ClearingHouse tests: partners, a standard cycle, its life stages."""

from __future__ import annotations

from web3.types import TxReceipt

from tests.unit.contracts.helpers import (
    CHANNEL,
    DISPUTE_WINDOW_S,
    FUNDER,
    FUNDING_WINDOW_S,
    GUARANTOR,
    LENDER,
    CycleInput,
    Network,
    advance_time,
    make_cycle,
    proposal_args,
    send,
    sign_cycle,
)

CYCLE_ID = 20_261_128
ROLES = {1: LENDER, 2: FUNDER, 3: CHANNEL, 4: GUARANTOR}
# Partner 1 receives 30,000 fen; partners 2 and 3 pay 10,000 and 20,000; partner 4 nets 0.
POSITIONS = {1: 30_000, 2: -10_000, 3: -20_000, 4: 0}
MINT_FEN = 10**9


def payout_of(net: Network, partner_id: int) -> str:
    """Partner ids 1..4 pay out to dev accounts 5..8."""
    return net.partners[partner_id - 1].address


def register_partners(net: Network) -> None:
    for partner_id, role in ROLES.items():
        send(
            net,
            net.relayer,
            net.clearing_house,
            "registerPartner",
            partner_id,
            role,
            payout_of(net, partner_id),
        )


def propose(net: Network, cycle: CycleInput) -> TxReceipt:
    """Propose `cycle` with a quorum of signatures, submitted by the relayer."""
    args = proposal_args(cycle, sign_cycle(net, cycle))
    return send(net, net.relayer, net.clearing_house, "proposeCycle", *args)


def proposed_cycle(net: Network, positions: dict[int, int] | None = None) -> CycleInput:
    """Registered partners and a proposed standard cycle."""
    register_partners(net)
    cycle = make_cycle(CYCLE_ID, positions or POSITIONS)
    propose(net, cycle)
    return cycle


def finalized_cycle(net: Network, positions: dict[int, int] | None = None) -> CycleInput:
    cycle = proposed_cycle(net, positions)
    advance_time(net, DISPUTE_WINDOW_S)
    send(net, net.outsider, net.clearing_house, "finalize", cycle.cycle_id)
    return cycle


def approve_payer(net: Network, amount_fen: int = MINT_FEN) -> None:
    """The admin holds `amount_fen` settlement tokens and lets the ClearingHouse pull them."""
    send(net, net.admin, net.token, "mint", net.admin.address, amount_fen)
    send(net, net.admin, net.token, "approve", net.clearing_house.address, amount_fen)


def fund_all(net: Network, cycle: CycleInput) -> None:
    approve_payer(net)
    for partner_id, net_fen in zip(cycle.partner_ids, cycle.net_positions, strict=True):
        if net_fen < 0:
            send(net, net.admin, net.clearing_house, "fund", cycle.cycle_id, partner_id)


def funded_cycle(net: Network, positions: dict[int, int] | None = None) -> CycleInput:
    cycle = finalized_cycle(net, positions)
    fund_all(net, cycle)
    return cycle


def pass_funding_deadline(net: Network) -> None:
    """Move a finalized cycle's clock past its funding deadline (the dispute window has
    already passed when it was finalized)."""
    advance_time(net, FUNDING_WINDOW_S)


def cycle_of(net: Network, cycle_id: int = CYCLE_ID) -> dict[str, int | bytes]:
    """getCycle as a dict keyed by field name."""
    fields = (
        "entriesRoot",
        "status",
        "partnerCount",
        "proposedAt",
        "disputeDeadline",
        "fundingDeadline",
        "entryCount",
        "totalDueFen",
        "fundedFen",
        "claimedFen",
    )
    return dict(zip(fields, net.clearing_house.functions.getCycle(cycle_id).call(), strict=True))


def position_of(
    net: Network, partner_id: int, cycle_id: int = CYCLE_ID
) -> tuple[int, bool, bool, bool, bool]:
    """(net position fen, listed, disputed, settled, refunded)."""
    return tuple(net.clearing_house.functions.getPosition(cycle_id, partner_id).call())  # type: ignore[return-value]
