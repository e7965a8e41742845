"""Random sequences of propose / dispute / resolve / finalize / fund / claim / declare
default / refund / open / amend / set status / pause against the deployed contracts,
mirrored by a ghost model.

Every rule predicts its outcome from the ghost state: either success (the ghost moves
with it) or the exact custom error it must revert with. After every step the
invariants compare the chain with the ghost: each cycle's status and funded/paid-out
totals, Σ net positions = 0 per accepted cycle, the ClearingHouse's token balance =
Σ funded − Σ claimed − Σ refunded, every payout's balance, every agreement's status and
limit, the pause flags. A forward write during a pause must revert, while disputes and
the exits (claim, declare default, refund) go through; a status change the ghost forbids
must revert, so no illegal transition lands; a second claim or refund must revert, so
nothing is paid twice. Each example runs inside an evm_snapshot and is reverted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import Phase, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from web3.contract import Contract

from oracles.anvil import revert_to_snapshot, take_snapshot
from tests.unit.contracts.clearing import ROLES, approve_payer, payout_of
from tests.unit.contracts.helpers import (
    ACTIVE,
    CHARGED_OFF,
    CLOSED,
    CYCLE_DEFAULTED,
    DEFAULTED,
    DISPUTE_WINDOW_S,
    DISPUTED,
    FINALIZED,
    FROZEN,
    FUNDED,
    FUNDING_WINDOW_S,
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
SERIALS = st.integers(min_value=0, max_value=2)
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
    # Seconds the chain clock was moved forward since the proposal (evm_increaseTime); the
    # real seconds a run takes are far fewer than the gap to the next deadline.
    elapsed_s: int = 0
    disputed: set[int] = field(default_factory=set)
    funded: set[int] = field(default_factory=set)
    claimed: set[int] = field(default_factory=set)
    refunded: set[int] = field(default_factory=set)

    @property
    def window_open(self) -> bool:
        return self.elapsed_s < DISPUTE_WINDOW_S

    @property
    def funding_open(self) -> bool:
        return self.elapsed_s < DISPUTE_WINDOW_S + FUNDING_WINDOW_S

    @property
    def total_due_fen(self) -> int:
        return sum(fen for fen in self.positions.values() if fen > 0)

    @property
    def funded_fen(self) -> int:
        return sum(-self.positions[p] for p in self.funded)

    @property
    def claimed_fen(self) -> int:
        return sum(self.positions[p] for p in self.claimed)

    @property
    def refunded_fen(self) -> int:
        return sum(-self.positions[p] for p in self.refunded)

    @property
    def unfunded_debtors(self) -> list[int]:
        return sorted(p for p, fen in self.positions.items() if fen < 0 and p not in self.funded)


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


class SettlementMachine(RuleBasedStateMachine):
    """The ghost model of one example; `net` has partners 1-4 registered and a payer
    (the admin) holding and approving plenty of settlement tokens.

    Random rules draw their arguments from small domains, so they mostly hit the error
    paths; `progress` takes the least advanced cycle one valid step further, so runs
    also reach disputes, finalization, funding and claims in random interleavings.
    """

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

    # --- clearing: predictions -----------------------------------------------------

    def do_propose(self, cycle_id: int, positions: dict[int, int], unbalance_fen: int) -> None:
        partner_ids = sorted(positions)
        cycle = make_cycle(cycle_id, positions)
        cycle.net_positions[-1] += unbalance_fen
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
            self.cycles[cycle_id] = GhostCycle(dict(positions))
            position = self.net.clearing_house.functions.getPosition
            assert sum(position(cycle_id, p).call()[0] for p in partner_ids) == 0

    def do_dispute(self, cycle_id: int, partner_id: int, reason: bytes) -> None:
        cycle = self.cycles.get(cycle_id)
        error = None
        if cycle is None or cycle.status not in (PROPOSED, DISPUTED):
            error = "UnexpectedCycleStatus"
        elif not cycle.window_open:
            error = "DisputeWindowClosed"
        elif partner_id not in cycle.positions:
            error = "PartnerNotListed"
        elif partner_id in cycle.disputed:
            error = "AlreadyDisputed"
        payout = self.net.partners[partner_id - 1]
        args = [cycle_id, partner_id, reason]
        if self.act(payout, self.net.clearing_house, "dispute", args, error):
            assert cycle is not None
            cycle.status = DISPUTED
            cycle.disputed.add(partner_id)

    def do_resolve(self, cycle_id: int, upheld: bool) -> None:
        cycle = self.cycles.get(cycle_id)
        error = None
        if self.house_paused:
            error = "EnforcedPause"
        elif cycle is None or cycle.status != DISPUTED:
            error = "UnexpectedCycleStatus"
        args = [cycle_id, upheld]
        if self.act(self.net.admin, self.net.clearing_house, "resolveDispute", args, error):
            assert cycle is not None
            cycle.status = REJECTED if upheld else PROPOSED

    def do_finalize(self, cycle_id: int) -> None:
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

    def do_fund(self, cycle_id: int, partner_id: int) -> None:
        cycle = self.cycles.get(cycle_id)
        error = None  # funding is never paused: a pause must not push a debtor into default
        if cycle is None or cycle.status != FINALIZED:
            error = "UnexpectedCycleStatus"
        elif partner_id not in cycle.positions:
            error = "PartnerNotListed"
        elif cycle.positions[partner_id] >= 0:
            error = "NotNetDebtor"
        elif partner_id in cycle.funded:
            error = "AlreadyFunded"
        args = [cycle_id, partner_id]
        if self.act(self.net.admin, self.net.clearing_house, "fund", args, error):
            assert cycle is not None
            cycle.funded.add(partner_id)
            if cycle.funded_fen == cycle.total_due_fen:
                cycle.status = FUNDED

    def do_claim(self, cycle_id: int, partner_id: int) -> None:
        cycle = self.cycles.get(cycle_id)
        error = None
        if cycle is None or cycle.status != FUNDED:
            error = "UnexpectedCycleStatus"
        elif partner_id not in cycle.positions:
            error = "PartnerNotListed"
        elif cycle.positions[partner_id] <= 0:
            error = "NotNetCreditor"
        elif partner_id in cycle.claimed:
            error = "AlreadyClaimed"
        args = [cycle_id, partner_id]
        if self.act(self.net.outsider, self.net.clearing_house, "claim", args, error):
            assert cycle is not None
            cycle.claimed.add(partner_id)
            self.payout_received_fen[partner_id] += cycle.positions[partner_id]

    def do_declare_default(self, cycle_id: int, defaulters: list[int]) -> None:
        """Never paused; the contract checks the list in order, then its completeness."""
        cycle = self.cycles.get(cycle_id)
        error = None
        if cycle is None or cycle.status != FINALIZED:
            error = "UnexpectedCycleStatus"
        elif cycle.funding_open:
            error = "FundingWindowOpen"
        else:
            for partner_id in defaulters:
                if partner_id not in cycle.positions:
                    error = "PartnerNotListed"
                elif cycle.positions[partner_id] >= 0:
                    error = "NotNetDebtor"
                elif partner_id in cycle.funded:
                    error = "AlreadyFunded"
                if error is not None:
                    break
            else:
                if defaulters != cycle.unfunded_debtors:
                    error = "DefaultersIncomplete"
        args = [cycle_id, defaulters]
        if self.act(self.net.outsider, self.net.clearing_house, "declareDefault", args, error):
            assert cycle is not None
            cycle.status = CYCLE_DEFAULTED

    def do_refund(self, cycle_id: int, partner_id: int) -> None:
        cycle = self.cycles.get(cycle_id)
        error = None
        if cycle is None or cycle.status != CYCLE_DEFAULTED:
            error = "UnexpectedCycleStatus"
        elif partner_id not in cycle.positions:
            error = "PartnerNotListed"
        elif cycle.positions[partner_id] >= 0:
            error = "NotNetDebtor"
        elif partner_id not in cycle.funded:
            error = "NothingToRefund"
        elif partner_id in cycle.refunded:
            error = "AlreadyRefunded"
        args = [cycle_id, partner_id]
        if self.act(self.net.outsider, self.net.clearing_house, "refund", args, error):
            assert cycle is not None
            cycle.refunded.add(partner_id)
            self.payout_received_fen[partner_id] -= cycle.positions[partner_id]

    def do_set_active(self, partner_id: int, active: bool) -> None:
        error = "EnforcedPause" if self.house_paused else None
        args = [partner_id, active]
        if self.act(self.net.relayer, self.net.clearing_house, "setPartnerActive", args, error):
            self.active[partner_id] = active

    def advance(self, seconds: int) -> None:
        advance_time(self.net, seconds)
        for cycle in self.cycles.values():
            cycle.elapsed_s += seconds

    # --- clearing: random rules ----------------------------------------------------

    @rule(
        cycle_id=CYCLE_IDS,
        partner_ids=st.sets(PARTNERS, min_size=2, max_size=4),
        data=st.data(),
        unbalance_fen=st.sampled_from([0, 0, 0, 1, -7]),
    )
    def propose(
        self, cycle_id: int, partner_ids: set[int], data: st.DataObject, unbalance_fen: int
    ) -> None:
        size = len(partner_ids) - 1
        fens = data.draw(st.lists(POSITION_FEN, min_size=size, max_size=size))
        fens.append(-sum(fens))
        self.do_propose(cycle_id, dict(zip(sorted(partner_ids), fens, strict=True)), unbalance_fen)

    @rule(cycle_id=CYCLE_IDS, partner_id=PARTNERS, reason=st.binary(min_size=32, max_size=32))
    def dispute(self, cycle_id: int, partner_id: int, reason: bytes) -> None:
        self.do_dispute(cycle_id, partner_id, reason)

    @rule(cycle_id=CYCLE_IDS, upheld=st.booleans())
    def resolve_dispute(self, cycle_id: int, upheld: bool) -> None:
        self.do_resolve(cycle_id, upheld)

    @rule()
    def let_dispute_windows_pass(self) -> None:
        self.advance(DISPUTE_WINDOW_S)

    @rule()
    def let_funding_windows_pass(self) -> None:
        self.advance(FUNDING_WINDOW_S)

    @rule(cycle_id=CYCLE_IDS)
    def finalize(self, cycle_id: int) -> None:
        self.do_finalize(cycle_id)

    @rule(cycle_id=CYCLE_IDS, partner_id=PARTNERS)
    def fund(self, cycle_id: int, partner_id: int) -> None:
        self.do_fund(cycle_id, partner_id)

    @rule(cycle_id=CYCLE_IDS, partner_id=PARTNERS)
    def claim(self, cycle_id: int, partner_id: int) -> None:
        self.do_claim(cycle_id, partner_id)

    @rule(cycle_id=CYCLE_IDS, exact=st.booleans(), subset=st.sets(PARTNERS))
    def declare_default(self, cycle_id: int, exact: bool, subset: set[int]) -> None:
        """Name the ghost's unfunded debtors (`exact`) or any ascending set of partners."""
        cycle = self.cycles.get(cycle_id)
        if exact and cycle is not None:
            self.do_declare_default(cycle_id, cycle.unfunded_debtors)
        else:
            self.do_declare_default(cycle_id, sorted(subset))

    @rule(cycle_id=CYCLE_IDS, partner_id=PARTNERS)
    def refund(self, cycle_id: int, partner_id: int) -> None:
        self.do_refund(cycle_id, partner_id)

    @rule(partner_id=PARTNERS, active=st.booleans())
    def set_partner_active(self, partner_id: int, active: bool) -> None:
        self.do_set_active(partner_id, active)

    @rule(registry=st.booleans())
    def toggle_pause(self, registry: bool) -> None:
        """Pause or unpause the registry (True) or the ClearingHouse (False)."""
        if registry:
            action = "unpause" if self.registry_paused else "pause"
            send(self.net, self.net.admin, self.net.registry, action)
            self.registry_paused = not self.registry_paused
        else:
            action = "unpause" if self.house_paused else "pause"
            send(self.net, self.net.admin, self.net.clearing_house, action)
            self.house_paused = not self.house_paused

    # --- progress ------------------------------------------------------------

    @rule(data=st.data(), steps=st.integers(min_value=1, max_value=8))
    def progress(self, data: st.DataObject, steps: int) -> None:
        """Up to `steps` valid steps, each checked against the invariants: the least
        advanced open cycle (or a new one) moves on, or an agreement does."""
        for _ in range(steps):
            if data.draw(st.integers(min_value=0, max_value=3)) == 0:
                self.progress_agreement(data)
            elif self.house_paused:
                self.toggle_pause(registry=False)
            elif not any(
                self.progress_cycle(cycle_id, cycle, data)
                for cycle_id, cycle in sorted(self.cycles.items())
            ):
                unused = [c for c in range(1, 4) if c not in self.cycles]
                if not unused:
                    return
                self.progress_new_cycle(unused[0], data)
            self.chain_matches_ghost()

    def progress_cycle(self, cycle_id: int, cycle: GhostCycle, data: st.DataObject) -> bool:
        """Take `cycle` one step further; False when it has nothing left to do."""
        listed = sorted(cycle.positions)
        if cycle.status == PROPOSED and cycle.window_open:
            undisputed = [p for p in listed if p not in cycle.disputed]
            if undisputed and data.draw(st.integers(min_value=0, max_value=4)) == 0:
                self.do_dispute(cycle_id, data.draw(st.sampled_from(undisputed)), bytes(32))
            else:
                self.advance(DISPUTE_WINDOW_S)
        elif cycle.status == PROPOSED:
            self.do_finalize(cycle_id)
        elif cycle.status == DISPUTED:
            self.do_resolve(cycle_id, data.draw(st.booleans()))
        elif cycle.status == FINALIZED:
            # The next debtor funds, or the funding window passes instead, and once it
            # has, the cycle may be declared defaulted.
            if data.draw(st.booleans()):
                self.do_fund(cycle_id, cycle.unfunded_debtors[0])
            elif cycle.funding_open:
                self.advance(FUNDING_WINDOW_S)
            else:
                self.do_declare_default(cycle_id, cycle.unfunded_debtors)
        elif cycle.status == FUNDED:
            creditors = [p for p in listed if cycle.positions[p] > 0 and p not in cycle.claimed]
            if not creditors:
                return False
            self.do_claim(cycle_id, creditors[0])
        elif cycle.status == CYCLE_DEFAULTED:
            depositors = sorted(cycle.funded - cycle.refunded)
            if not depositors:
                return False
            self.do_refund(cycle_id, depositors[0])
        else:
            return False
        return True

    def progress_new_cycle(self, cycle_id: int, data: st.DataObject) -> None:
        inactive = [p for p in PARTNER_IDS if not self.active[p]]
        if inactive:
            self.do_set_active(inactive[0], True)
            return
        partner_ids = sorted(data.draw(st.sets(PARTNERS, min_size=2, max_size=4)))
        size = len(partner_ids) - 1
        fens = data.draw(st.lists(POSITION_FEN, min_size=size, max_size=size))
        fens.append(-sum(fens))
        self.do_propose(cycle_id, dict(zip(partner_ids, fens, strict=True)), 0)

    # --- registry ------------------------------------------------------------------

    @rule(serials=st.lists(SERIALS, min_size=1, max_size=2))
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

    @rule(serial=SERIALS, limit_fen=LIMITS_FEN)
    def amend_limit(self, serial: int, limit_fen: int) -> None:
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

    @rule(serial=SERIALS, new_status=st.integers(min_value=0, max_value=6))
    def set_status(self, serial: int, new_status: int) -> None:
        known = self.agreements.get(serial)
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

    def progress_agreement(self, data: st.DataObject) -> None:
        """Open an agreement, or move an open one along a legal transition or amend it."""
        if self.registry_paused:
            self.toggle_pause(registry=True)
            return
        unopened = [serial for serial in range(3) if serial not in self.agreements]
        movable = [
            (serial, to)
            for serial, (status, _) in sorted(self.agreements.items())
            for (source, to) in sorted(LEGAL)
            if source == status
        ]
        choice = data.draw(st.integers(min_value=0, max_value=3))
        if unopened and (choice == 0 or not self.agreements):
            self.open_agreements([unopened[0]])
        elif movable and choice == 1:
            serial, to = data.draw(st.sampled_from(movable))
            self.set_status(serial, to)
        elif choice == 2:
            serial = data.draw(st.sampled_from(sorted(self.agreements)))
            self.amend_limit(serial, self.agreements[serial][1] + 1)
        else:
            serial = data.draw(st.sampled_from(sorted(self.agreements)))
            self.set_status(serial, data.draw(st.integers(min_value=0, max_value=6)))

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
            results: list[Any] = list(batch.execute())
        house_paused, registry_paused, balance_fen = results[:3]
        assert (house_paused, registry_paused) == (self.house_paused, self.registry_paused)
        funded_fen = sum(cycle.funded_fen for cycle in self.cycles.values())
        claimed_fen = sum(cycle.claimed_fen for cycle in self.cycles.values())
        refunded_fen = sum(cycle.refunded_fen for cycle in self.cycles.values())
        assert balance_fen == funded_fen - claimed_fen - refunded_fen
        cycle_views = results[3 : 3 + len(self.cycles)]
        for cycle, view in zip(self.cycles.values(), cycle_views, strict=True):
            assert sum(cycle.positions.values()) == 0
            # CycleView: root, status, partnerCount, proposedAt, disputeDeadline,
            # fundingDeadline, entryCount, totalDueFen, fundedFen, claimedFen.
            assert view[5] == view[4] + FUNDING_WINDOW_S
            assert (view[1], view[7], view[8], view[9]) == (
                cycle.status,
                cycle.total_due_fen,
                cycle.funded_fen,
                cycle.claimed_fen + cycle.refunded_fen,
            )
            if cycle.status == CYCLE_DEFAULTED:
                assert cycle.claimed_fen == 0
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
    # No shrinking: every shrink attempt replays transactions on the chain, so it would
    # take minutes; an unshrunk failing run is at most 20 readable steps.
    quick = settings(
        settings.default,
        stateful_step_count=20,
        phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target],
    )
    run_state_machine_as_test(SettlementMachine, settings=quick)
