"""Replay of the ClearingHouse's cycle and partner events (see `history`).

Member default: a Finalized cycle may be declared Defaulted once its funding deadline
(from CycleProposed) has passed, naming exactly the listed debtors that did not fund,
whose debts sum to `unfundedFen` (= due - funded); then each debtor that funded takes
its deposit back once (`CycleRefunded`: the amount it funded, to its registered payout).
Whatever breaks these rules is an anomaly of `invariant.cycle_defaults`.
"""

from __future__ import annotations

from node_api.kernel.chain import CycleStatus
from node_api.kernel.money import Fen
from oracles.audit.events import AuditEvent
from oracles.audit.replay_state import (
    DEFAULTS_CHECK,
    LIFECYCLE_CHECK,
    CycleReplay,
    PartnerReplay,
    ReplayedState,
)


def propose_cycle(state: ReplayedState, event: AuditEvent) -> None:
    args = event.args
    cycle_id = int(args["cycleId"])
    if cycle_id in state.cycles:
        state.note(LIFECYCLE_CHECK, f"cycle {cycle_id} proposed twice", event)
        return
    positions = tuple(Fen(int(value)) for value in args["netPositions"])
    state.cycles[cycle_id] = CycleReplay(
        cycle_id=cycle_id,
        entries_root=str(args["entriesRoot"]),
        entry_count=int(args["entryCount"]),
        partner_ids=tuple(int(value) for value in args["partnerIds"]),
        net_positions_fen=positions,
        dispute_deadline=int(args["disputeDeadline"]),
        status=CycleStatus.PROPOSED,
        proposed=event.ref,
        total_due_fen=Fen(sum(value for value in positions if value > 0)),
        funding_deadline=int(args.get("fundingDeadline", 0)),
    )


def _cycle_in(
    state: ReplayedState,
    event: AuditEvent,
    allowed: tuple[int, ...],
    action: str,
    check_id: str = LIFECYCLE_CHECK,
) -> CycleReplay | None:
    """The event's cycle, after noting an anomaly when it is unknown or in a wrong status."""
    cycle_id = int(event.args["cycleId"])
    cycle = state.cycles.get(cycle_id)
    if cycle is None:
        state.note(check_id, f"{action} of cycle {cycle_id} never proposed", event)
        return None
    if cycle.status not in allowed:
        state.note(
            check_id,
            f"{action} of cycle {cycle_id} in status {cycle.status}",
            event,
            status=cycle.status,
        )
    return cycle


def dispute_cycle(state: ReplayedState, event: AuditEvent) -> None:
    cycle = _cycle_in(state, event, (CycleStatus.PROPOSED, CycleStatus.DISPUTED), "dispute")
    if cycle is None:
        return
    partner_id = int(event.args["partnerId"])
    if cycle.position_of(partner_id) is None:
        state.note(
            LIFECYCLE_CHECK, f"cycle {cycle.cycle_id}: dispute by unlisted {partner_id}", event
        )
    cycle.disputes.append((partner_id, str(event.args["reason"]), event.ref))
    cycle.status = CycleStatus.DISPUTED


def resolve_dispute(state: ReplayedState, event: AuditEvent) -> None:
    upheld = bool(event.args["upheld"])
    verdict = "upheld (cycle rejected)" if upheld else "dismissed"
    state.admin(
        event,
        "dispute",
        f"dispute of cycle {event.args['cycleId']} {verdict}",
        function="resolveDispute",
        privileged=True,
    )
    cycle = _cycle_in(state, event, (CycleStatus.DISPUTED,), "dispute resolution")
    if cycle is None:
        return
    cycle.resolutions.append((upheld, event.ref))
    cycle.status = CycleStatus.REJECTED if upheld else CycleStatus.PROPOSED


def finalize_cycle(state: ReplayedState, event: AuditEvent) -> None:
    cycle = _cycle_in(state, event, (CycleStatus.PROPOSED,), "finalization")
    if cycle is None:
        return
    if str(event.args["entriesRoot"]) != cycle.entries_root:
        state.note(LIFECYCLE_CHECK, f"cycle {cycle.cycle_id} finalized with another root", event)
    cycle.finalized = event.ref
    cycle.status = CycleStatus.FUNDED if cycle.total_due_fen == 0 else CycleStatus.FINALIZED


def fund_cycle(state: ReplayedState, event: AuditEvent) -> None:
    cycle = _cycle_in(state, event, (CycleStatus.FINALIZED,), "funding")
    if cycle is None:
        return
    partner_id, amount_fen = int(event.args["partnerId"]), Fen(int(event.args["amount"]))
    net_fen = cycle.position_of(partner_id)
    if net_fen is None or net_fen >= 0 or -net_fen != amount_fen:
        state.note(
            LIFECYCLE_CHECK,
            f"cycle {cycle.cycle_id}: partner {partner_id} funded {amount_fen} fen, "
            f"position {net_fen}",
            event,
        )
    if cycle.is_settled(partner_id):
        state.note(LIFECYCLE_CHECK, f"cycle {cycle.cycle_id}: {partner_id} funded twice", event)
    cycle.fundings[partner_id] = (amount_fen, event.ref)
    cycle.funded_fen = Fen(cycle.funded_fen + amount_fen)
    if cycle.funded_fen == cycle.total_due_fen:
        cycle.status = CycleStatus.FUNDED


def fully_funded(state: ReplayedState, event: AuditEvent) -> None:
    cycle = state.cycles.get(int(event.args["cycleId"]))
    if cycle is None or cycle.status != CycleStatus.FUNDED:
        state.note(LIFECYCLE_CHECK, f"cycle {event.args['cycleId']} fully funded early", event)
        return
    if int(event.args["totalDueFen"]) != cycle.funded_fen:
        state.note(LIFECYCLE_CHECK, f"cycle {cycle.cycle_id}: fully funded amount differs", event)
    cycle.fully_funded = event.ref


def _payout_args(event: AuditEvent) -> tuple[int, Fen, str]:
    """(partner id, amount in fen, payout address) of a claim or a refund event."""
    args = event.args
    return int(args["partnerId"]), Fen(int(args["amount"])), str(args["payout"])


def claim_cycle(state: ReplayedState, event: AuditEvent) -> None:
    cycle = _cycle_in(state, event, (CycleStatus.FUNDED,), "claim")
    if cycle is None:
        return
    partner_id, amount_fen, payout = _payout_args(event)
    net_fen = cycle.position_of(partner_id)
    if net_fen is None or net_fen != amount_fen:
        state.note(
            LIFECYCLE_CHECK,
            f"cycle {cycle.cycle_id}: partner {partner_id} claimed {amount_fen} fen, "
            f"position {net_fen}",
            event,
        )
    partner = state.partners.get(partner_id)
    if partner is not None and partner.payout.lower() != payout.lower():
        state.note(
            LIFECYCLE_CHECK,
            f"cycle {cycle.cycle_id}: claim paid to {payout}, not the payout",
            event,
        )
    if cycle.is_settled(partner_id):
        state.note(LIFECYCLE_CHECK, f"cycle {cycle.cycle_id}: {partner_id} claimed twice", event)
    cycle.claims[partner_id] = (amount_fen, payout, event.ref)
    cycle.claimed_fen = Fen(cycle.claimed_fen + amount_fen)


def declare_default(state: ReplayedState, event: AuditEvent) -> None:
    cycle = _cycle_in(state, event, (CycleStatus.FINALIZED,), "default", DEFAULTS_CHECK)
    if cycle is None:
        return
    named = tuple(int(value) for value in event.args["defaulters"])
    unfunded_fen = Fen(int(event.args["unfundedFen"]))
    for problem in _default_problems(cycle, event.timestamp, named, unfunded_fen):
        state.note(DEFAULTS_CHECK, f"cycle {cycle.cycle_id}: {problem}", event)
    cycle.defaulted, cycle.defaulted_at = event.ref, event.timestamp
    cycle.defaulters = named
    cycle.unfunded_fen = unfunded_fen
    cycle.status = CycleStatus.DEFAULTED


def _default_problems(
    cycle: CycleReplay, declared_at: int | None, named: tuple[int, ...], unfunded_fen: Fen
) -> list[str]:
    """What a CycleDefaulted event shows that the default rules forbid."""
    problems = []
    deadline = cycle.funding_deadline
    if declared_at is not None and deadline and declared_at < deadline:
        problems.append(
            f"declared defaulted at {declared_at}, before its funding deadline {deadline}"
        )
    if list(named) != sorted(set(named)):
        problems.append(f"defaulters {list(named)} not strictly ascending")
    debtors = cycle.debtors()
    owed_fen = 0
    for partner_id in dict.fromkeys(named):
        if partner_id not in debtors:
            problems.append(f"defaulter {partner_id} is not a listed net debtor")
        elif cycle.is_settled(partner_id):
            problems.append(f"defaulter {partner_id} had funded")
        owed_fen += debtors.get(partner_id, 0)
    if cycle.proposed is not None:
        unfunded = sorted(p for p in debtors if not cycle.is_settled(p))
        missing = [p for p in unfunded if p not in named]
        if missing:
            problems.append(f"unfunded debtors {missing} not named as defaulters")
    outstanding_fen = cycle.total_due_fen - cycle.funded_fen
    if unfunded_fen != outstanding_fen:
        problems.append(
            f"unfunded {unfunded_fen} fen declared, but {outstanding_fen} fen of "
            f"{cycle.total_due_fen} due was unfunded"
        )
    elif owed_fen != unfunded_fen:
        problems.append(f"the defaulters owe {owed_fen} fen, not the {unfunded_fen} fen declared")
    return problems


def refund_cycle(state: ReplayedState, event: AuditEvent) -> None:
    cycle = _cycle_in(state, event, (CycleStatus.DEFAULTED,), "refund", DEFAULTS_CHECK)
    if cycle is None:
        return
    partner_id, amount_fen, payout = _payout_args(event)
    net_fen = cycle.position_of(partner_id)
    funding = cycle.fundings.get(partner_id)
    subject = f"cycle {cycle.cycle_id}: refund of {amount_fen} fen to partner {partner_id}"
    if net_fen is None:
        state.note(DEFAULTS_CHECK, f"{subject}, not listed", event)
    elif net_fen is not None and net_fen >= 0:
        state.note(DEFAULTS_CHECK, f"{subject}, not a net debtor (position {net_fen})", event)
    if not cycle.is_settled(partner_id):
        state.note(DEFAULTS_CHECK, f"{subject}, which never funded", event)
    elif funding is not None and funding[0] != amount_fen:
        state.note(DEFAULTS_CHECK, f"{subject}, which funded {funding[0]} fen", event)
    elif net_fen is not None and net_fen < 0 and -net_fen != amount_fen:
        state.note(DEFAULTS_CHECK, f"{subject}, position {net_fen}", event)
    if cycle.is_refunded(partner_id):
        state.note(DEFAULTS_CHECK, f"{subject}, refunded twice", event)
    partner = state.partners.get(partner_id)
    if partner is not None and partner.payout.lower() != payout.lower():
        state.note(DEFAULTS_CHECK, f"{subject}, paid to {payout}, not its payout", event)
    cycle.refunds[partner_id] = (amount_fen, payout, event.ref)
    cycle.refunded_fen = Fen(cycle.refunded_fen + amount_fen)


def register_partner(state: ReplayedState, event: AuditEvent) -> None:
    args = event.args
    partner_id = int(args["partnerId"])
    state.admin(event, "partner", f"partner {partner_id} registered, payout {args['payout']}")
    if partner_id in state.partners:
        state.note(LIFECYCLE_CHECK, f"partner {partner_id} registered twice", event)
    state.partners[partner_id] = PartnerReplay(
        partner_id, int(args["role"]), str(args["payout"]), True, event.ref
    )


def set_partner_active(state: ReplayedState, event: AuditEvent) -> None:
    partner_id, active = int(event.args["partnerId"]), bool(event.args["active"])
    state.admin(
        event, "partner", f"partner {partner_id} {'activated' if active else 'deactivated'}"
    )
    partner = state.partners.get(partner_id)
    if partner is None:
        state.note(LIFECYCLE_CHECK, f"partner {partner_id} toggled before registration", event)
        return
    partner.active = active
