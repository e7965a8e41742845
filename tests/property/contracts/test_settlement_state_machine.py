"""Random sequences of propose / dispute / resolve / finalize / fund / claim / open /
amend / set status / pause against the deployed contracts, mirrored by a ghost model.

Every rule predicts its outcome from the ghost state: either success (the ghost moves
with it) or the exact custom error it must revert with. After every step the
invariants compare the chain with the ghost: each cycle's status and funded/claimed
totals, Σ net positions = 0 per accepted cycle, the ClearingHouse's token balance =
Σ funded − Σ claimed, every agreement's status and limit, the pause flags. A write
during a pause must revert, so a pause can never change state; a status change the
ghost forbids must revert, so no illegal transition lands; a second claim must revert,
so nothing is paid twice. Each example runs inside an evm_snapshot and is reverted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from web3.contract import Contract

from oracles.anvil import revert_to_snapshot, take_snapshot
from tests.unit.contracts.clearing import ROLES, approve_payer, payout_of
from tests.unit.contracts.helpers import (
    ACTIVE,
    CHARGED_OFF,
    CLOSED,
    DEFAULTED,
    DISPUTE_WINDOW_S,
    DISPUTED,
    FINALIZED,
    FROZEN,
    FUNDED,
    NONE,
    PROPOSED,
    REJECTED,
    Network,
    advance_time,
    expect_revert,
    make_cycle,
    proposal_args,
    send,
    sign_cycle,
)

pytestmark = pytest.mark.chain

PARTNER_IDS = sorted(ROLES)
CYCLE_IDS = st.integers(min_value=1, max_value=3)
PARTNERS = st.sampled_from(PARTNER_IDS)
SERIALS = st.integers(min_value=0, max_value=5)
POSITION_FEN = st.integers(min_value=-50_000, max_value=50_000)
LIMITS_FEN = st.sampled_from([0, 1_000, 5_000_000, 9_000_000])
LEGAL = {
    (ACTIVE, FROZEN),
    (FROZEN, ACTIVE),
    (ACTIVE, CLOSED),
    (FROZEN, CLOSED),
    (ACTIVE, DEFAULTED),
    (FROZEN, DEFAULTED),
    (DEFAULTED, CHARGED_OFF),
    (DEFAULTED, ACTIVE),
}
OPENED_AT = 1_795_824_000
INITIAL_LIMIT_FEN = 5_000_000


@dataclass
class GhostCycle:
    positions: dict[int, int]
    status: int = PROPOSED
    window_open: bool = True
    disputed: set[int] = field(default_factory=set)
    funded: set[int] = field(default_factory=set)
    claimed: set[int] = field(default_factory=set)

    @property
    def total_due_fen(self) -> int:
        return sum(fen for fen in self.positions.values() if fen > 0)

    @property
    def funded_fen(self) -> int:
        return sum(-self.positions[p] for p in self.funded)

    @property
    def claimed_fen(self) -> int:
        return sum(self.positions[p] for p in self.claimed)


def agreement_input(serial: int) -> tuple[Any, ...]:
    tag = serial.to_bytes(4, "big")
    return (
        b"\x0a" * 28 + tag,
        b"\x0b" * 28 + tag,
        b"\x0c" * 28 + tag,
        1001,
        INITIAL_LIMIT_FEN,
        1_800,
        OPENED_AT,
    )


def pick(data: st.DataObject, preferred: list[int], anything: st.SearchStrategy[int]) -> int:
    """Mostly one of the `preferred` values (those the ghost expects to succeed), so
    random runs reach funding and claiming; sometimes `anything`, to hit the errors."""
    if preferred and data.draw(st.integers(min_value=0, max_value=3)) > 0:
        return data.draw(st.sampled_from(preferred))
    return data.draw(anything)


class SettlementMachine(RuleBasedStateMachine):
    """The ghost model of one example; `net` has partners 1-4 registered and a payer
    (the admin) holding and approving plenty of settlement tokens."""

    net: Network

    def __init__(self) -> None:
        super().__init__()
        self.snapshot_id = take_snapshot(self.net.w3)
        self.cycles: dict[int, GhostCycle] = {}
        self.active = dict.fromkeys(PARTNER_IDS, True)
        self.agreements: dict[int, tuple[int, int]] = {}
        self.house_paused = False
        self.registry_paused = False
        self.payout_received_fen = dict.fromkeys(PARTNER_IDS, 0)

    def teardown(self) -> None:
        revert_to_snapshot(self.net.w3, self.snapshot_id)

    # --- acting --------------------------------------------------------------------

    def act(
        self, who: Any, contract: Contract, function: str, args: list[Any], error: str | None
    ) -> bool:
        """Send the call when the ghost predicts success, else assert its exact revert."""
        if error is None:
            send(self.net, who, contract, function, *args)
            event(f"{function} succeeded")
            return True
        expect_revert(self.net, who, contract, function, args, error)
        event(f"{function} reverted {error}")
        return False

    def cycle_status(self, cycle_id: int) -> int:
        cycle = self.cycles.get(cycle_id)
        return cycle.status if cycle is not None else NONE

    def cycles_in(self, *statuses: int) -> list[int]:
        return sorted(c for c, cycle in self.cycles.items() if cycle.status in statuses)

    def pick_partner(self, data: st.DataObject, cycle_id: int, wanted: Any) -> int:
        """A partner of `cycle_id` for which `wanted(cycle, partner_id)` holds, mostly."""
        cycle = self.cycles.get(cycle_id)
        preferred = [p for p in PARTNER_IDS if cycle is not None and wanted(cycle, p)]
        return pick(data, preferred, PARTNERS)

    # --- clearing ------------------------------------------------------------------

    @rule(data=st.data(), unbalance_fen=st.sampled_from([0, 0, 0, 0, 1, -7]))
    def propose(self, data: st.DataObject, unbalance_fen: int) -> None:
        unused = [c for c in range(1, 4) if c not in self.cycles]
        cycle_id = pick(data, unused, CYCLE_IDS)
        partner_ids = sorted(data.draw(st.sets(PARTNERS, min_size=2, max_size=4)))
        fens = data.draw(
            st.lists(POSITION_FEN, min_size=len(partner_ids) - 1, max_size=len(partner_ids) - 1)
        )
        fens.append(-sum(fens) + unbalance_fen)
        positions = dict(zip(partner_ids, fens, strict=True))
        cycle = make_cycle(cycle_id, positions)
        error = None
        if self.house_paused:
            error = "EnforcedPause"
        elif cycle_id in self.cycles:
            error = "CycleAlreadyProposed"
        elif not all(self.active[p] for p in partner_ids):
            error = "PartnerNotActive"
        elif unbalance_fen != 0:
            error = "CycleNotBalanced"
        args = proposal_args(cycle, sign_cycle(self.net, cycle))
        if self.act(self.net.relayer, self.net.clearing_house, "proposeCycle", args, error):
            self.cycles[cycle_id] = GhostCycle(positions)
            on_chain = [
                self.net.clearing_house.functions.getPosition(cycle_id, p).call()[0]
                for p in partner_ids
            ]
            assert sum(on_chain) == 0

    @rule(data=st.data(), reason=st.binary(min_size=32, max_size=32))
    def dispute(self, data: st.DataObject, reason: bytes) -> None:
        cycle_id = pick(data, self.cycles_in(PROPOSED, DISPUTED), CYCLE_IDS)
        partner_id = self.pick_partner(
            data, cycle_id, lambda cycle, p: p in cycle.positions and p not in cycle.disputed
        )
        cycle = self.cycles.get(cycle_id)
        error = None
        if self.house_paused:
            error = "EnforcedPause"
        elif cycle is None or cycle.status not in (PROPOSED, DISPUTED):
            error = "UnexpectedCycleStatus"
        elif not cycle.window_open:
            error = "DisputeWindowClosed"
        elif partner_id not in cycle.positions:
            error = "PartnerNotListed"
        elif partner_id in cycle.disputed:
            error = "AlreadyDisputed"
        payout = self.net.partners[partner_id - 1]
        if self.act(
            payout, self.net.clearing_house, "dispute", [cycle_id, partner_id, reason], error
        ):
            assert cycle is not None
            cycle.status = DISPUTED
            cycle.disputed.add(partner_id)

    @rule(data=st.data(), upheld=st.booleans())
    def resolve_dispute(self, data: st.DataObject, upheld: bool) -> None:
        cycle_id = pick(data, self.cycles_in(DISPUTED), CYCLE_IDS)
        error = None
        if self.house_paused:
            error = "EnforcedPause"
        elif self.cycle_status(cycle_id) != DISPUTED:
            error = "UnexpectedCycleStatus"
        if self.act(
            self.net.admin, self.net.clearing_house, "resolveDispute", [cycle_id, upheld], error
        ):
            self.cycles[cycle_id].status = REJECTED if upheld else PROPOSED

    @rule()
    def let_dispute_windows_pass(self) -> None:
        advance_time(self.net, DISPUTE_WINDOW_S)
        for cycle in self.cycles.values():
            cycle.window_open = False

    @rule(data=st.data())
    def finalize(self, data: st.DataObject) -> None:
        cycle_id = pick(data, self.cycles_in(PROPOSED), CYCLE_IDS)
        cycle = self.cycles.get(cycle_id)
        error = None
        if self.house_paused:
            error = "EnforcedPause"
        elif cycle is None or cycle.status != PROPOSED:
            error = "UnexpectedCycleStatus"
        elif cycle.window_open:
            error = "DisputeWindowOpen"
        if self.act(self.net.outsider, self.net.clearing_house, "finalize", [cycle_id], error):
            assert cycle is not None
            cycle.status = FUNDED if cycle.total_due_fen == 0 else FINALIZED

    @rule(data=st.data())
    def fund(self, data: st.DataObject) -> None:
        cycle_id = pick(data, self.cycles_in(FINALIZED), CYCLE_IDS)
        partner_id = self.pick_partner(
            data, cycle_id, lambda cycle, p: cycle.positions.get(p, 0) < 0 and p not in cycle.funded
        )
        cycle = self.cycles.get(cycle_id)
        error = None
        if self.house_paused:
            error = "EnforcedPause"
        elif cycle is None or cycle.status != FINALIZED:
            error = "UnexpectedCycleStatus"
        elif partner_id not in cycle.positions:
            error = "PartnerNotListed"
        elif cycle.positions[partner_id] >= 0:
            error = "NotNetDebtor"
        elif partner_id in cycle.funded:
            error = "AlreadyFunded"
        if self.act(self.net.admin, self.net.clearing_house, "fund", [cycle_id, partner_id], error):
            assert cycle is not None
            cycle.funded.add(partner_id)
            if cycle.funded_fen == cycle.total_due_fen:
                cycle.status = FUNDED

    @rule(data=st.data())
    def claim(self, data: st.DataObject) -> None:
        cycle_id = pick(data, self.cycles_in(FUNDED), CYCLE_IDS)
        partner_id = self.pick_partner(
            data,
            cycle_id,
            lambda cycle, p: cycle.positions.get(p, 0) > 0 and p not in cycle.claimed,
        )
        cycle = self.cycles.get(cycle_id)
        error = None
        if self.house_paused:
            error = "EnforcedPause"
        elif cycle is None or cycle.status != FUNDED:
            error = "UnexpectedCycleStatus"
        elif partner_id not in cycle.positions:
            error = "PartnerNotListed"
        elif cycle.positions[partner_id] <= 0:
            error = "NotNetCreditor"
        elif partner_id in cycle.claimed:
            error = "AlreadyClaimed"
        if self.act(
            self.net.outsider, self.net.clearing_house, "claim", [cycle_id, partner_id], error
        ):
            assert cycle is not None
            cycle.claimed.add(partner_id)
            self.payout_received_fen[partner_id] += cycle.positions[partner_id]

    @rule(partner_id=PARTNERS, active=st.sampled_from([True, True, False]))
    def set_partner_active(self, partner_id: int, active: bool) -> None:
        error = "EnforcedPause" if self.house_paused else None
        args = [partner_id, active]
        if self.act(self.net.relayer, self.net.clearing_house, "setPartnerActive", args, error):
            self.active[partner_id] = active

    @rule()
    def toggle_clearing_house_pause(self) -> None:
        send(
            self.net,
            self.net.admin,
            self.net.clearing_house,
            "unpause" if self.house_paused else "pause",
        )
        self.house_paused = not self.house_paused

    # --- registry ------------------------------------------------------------------

    @rule(serials=st.lists(SERIALS, min_size=1, max_size=3))
    def open_agreements(self, serials: list[int]) -> None:
        error = None
        if self.registry_paused:
            error = "EnforcedPause"
        elif any(s in self.agreements for s in serials) or len(set(serials)) < len(serials):
            error = "AgreementExists"
        items = [agreement_input(serial) for serial in serials]
        if self.act(self.net.relayer, self.net.registry, "openAgreements", [items], error):
            for serial in serials:
                self.agreements[serial] = (ACTIVE, INITIAL_LIMIT_FEN)

    @rule(data=st.data(), limit_fen=LIMITS_FEN)
    def amend_limit(self, data: st.DataObject, limit_fen: int) -> None:
        serial = pick(data, sorted(self.agreements), SERIALS)
        known = self.agreements.get(serial)
        error = None
        if self.registry_paused:
            error = "EnforcedPause"
        elif known is None:
            error = "AgreementNotFound"
        elif known[0] in (CLOSED, CHARGED_OFF):
            error = "AgreementNotAmendable"
        elif known[1] == limit_fen:
            error = "LimitUnchanged"
        args = [agreement_input(serial)[0], limit_fen, 3]
        if self.act(self.net.relayer, self.net.registry, "amendLimit", args, error):
            assert known is not None
            self.agreements[serial] = (known[0], limit_fen)

    @rule(data=st.data())
    def set_status(self, data: st.DataObject) -> None:
        serial = pick(data, sorted(self.agreements), SERIALS)
        known = self.agreements.get(serial)
        legal_targets = sorted(to for (source, to) in LEGAL if known and source == known[0])
        new_status = pick(data, legal_targets, st.integers(min_value=0, max_value=6))
        error = None
        if self.registry_paused:
            error = "EnforcedPause"
        elif known is None:
            error = "AgreementNotFound"
        elif (known[0], new_status) not in LEGAL:
            error = "IllegalTransition"
        args = [agreement_input(serial)[0], new_status, 4]
        if self.act(self.net.relayer, self.net.registry, "setStatus", args, error):
            assert known is not None
            self.agreements[serial] = (new_status, known[1])

    @rule()
    def toggle_registry_pause(self) -> None:
        send(
            self.net,
            self.net.admin,
            self.net.registry,
            "unpause" if self.registry_paused else "pause",
        )
        self.registry_paused = not self.registry_paused

    # --- invariants ----------------------------------------------------------------

    @invariant()
    def chain_matches_ghost(self) -> None:
        net = self.net
        house, registry = net.clearing_house.functions, net.registry.functions
        with net.w3.batch_requests() as batch:
            batch.add(house.paused())
            batch.add(registry.paused())
            batch.add(net.token.functions.balanceOf(net.clearing_house.address))
            for cycle_id in self.cycles:
                batch.add(house.getCycle(cycle_id))
            for serial in self.agreements:
                batch.add(registry.getAgreement(agreement_input(serial)[0]))
            for partner_id in PARTNER_IDS:
                batch.add(net.token.functions.balanceOf(payout_of(net, partner_id)))
            results = batch.execute()
        house_paused, registry_paused, balance_fen = results[:3]
        assert (house_paused, registry_paused) == (self.house_paused, self.registry_paused)
        funded_fen = sum(cycle.funded_fen for cycle in self.cycles.values())
        claimed_fen = sum(cycle.claimed_fen for cycle in self.cycles.values())
        assert balance_fen == funded_fen - claimed_fen
        cycle_views = results[3 : 3 + len(self.cycles)]
        for cycle, view in zip(self.cycles.values(), cycle_views, strict=True):
            assert sum(cycle.positions.values()) == 0
            assert (view[1], view[6], view[7], view[8]) == (
                cycle.status,
                cycle.total_due_fen,
                cycle.funded_fen,
                cycle.claimed_fen,
            )
        agreement_views = results[
            3 + len(self.cycles) : 3 + len(self.cycles) + len(self.agreements)
        ]
        for (status, limit_fen), (record, _) in zip(
            self.agreements.values(), agreement_views, strict=True
        ):
            assert (record[0], record[1]) == (status, limit_fen)
        payouts = results[-len(PARTNER_IDS) :]
        assert list(payouts) == [self.payout_received_fen[p] for p in PARTNER_IDS]


def test_settlement_and_registry_follow_the_ghost_model(net: Network) -> None:
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
    approve_payer(net)
    SettlementMachine.net = net
    run_state_machine_as_test(
        SettlementMachine, settings=settings(settings.default, stateful_step_count=20)
    )
