"""Event replay: the contracts' whole state rebuilt from their events alone.

`replay(events)` folds every decoded event, in chain order, into a `ReplayedState`:
agreements with their status and limit history, cycles with roots, positions,
disputes, fundings and claims, partners, the signer-set history, role grants and
revocations, pauses, line-state commitments, consumed reports, the settlement token's
supply and balances, and every admin action. Whatever an event says that the contracts'
documented state machines forbid (a transition from a status the agreement is not in, a
claim of a cycle that is not funded, ...) is recorded as an `Anomaly` for the invariant
checks; the fold itself never raises on chain data.

The fold is independent of the node's own indexer on purpose: the auditor trusts neither.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Final

from sha3 import keccak_256

from oracles.audit.events import AuditEvent, EventRef
from oracles.audit.state_machine import (
    AGREEMENT_ACTIVE,
    CYCLE_DISPUTED,
    CYCLE_FINALIZED,
    CYCLE_FUNDED,
    CYCLE_PROPOSED,
    CYCLE_REJECTED,
    is_legal_agreement_transition,
)

ZERO_ADDRESS: Final = "0x0000000000000000000000000000000000000000"
DEFAULT_ADMIN_ROLE: Final = "0x" + "00" * 32
TRANSITIONS_CHECK: Final = "invariant.agreement_transitions"
AGREEMENTS_CHECK: Final = "replay.agreements"
LIFECYCLE_CHECK: Final = "invariant.cycle_lifecycle"


@dataclass(frozen=True)
class Anomaly:
    """Something an event shows that the documented state machine forbids."""

    check_id: str
    problem: str
    ref: EventRef
    address: str
    values: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StatusChange:
    ref: EventRef
    from_status: int
    to_status: int
    reason_code: int


@dataclass(frozen=True)
class LimitChange:
    ref: EventRef
    old_limit_fen: int
    new_limit_fen: int
    reason_code: int


@dataclass
class AgreementReplay:
    """An agreement as its events describe it. `opened` is None when it was seeded from
    the views because it opened before the replayed window."""

    agreement_id: str
    borrower_ref: str
    terms_hash: str
    product_code: int
    limit_fen: int
    apr_bps: int
    opened_at: int
    commitment: str
    status: int
    last_reason_code: int
    change_count: int
    opened: EventRef | None
    opened_limit_fen: int = 0
    status_history: list[StatusChange] = field(default_factory=list)
    limit_history: list[LimitChange] = field(default_factory=list)


@dataclass
class CycleReplay:
    """A settlement cycle as its events describe it (amounts in fen)."""

    cycle_id: int
    entries_root: str
    entry_count: int
    partner_ids: tuple[int, ...]
    net_positions_fen: tuple[int, ...]
    dispute_deadline: int
    status: int
    proposed: EventRef | None
    disputes: list[tuple[int, str, EventRef]] = field(default_factory=list)
    resolutions: list[tuple[bool, EventRef]] = field(default_factory=list)
    finalized: EventRef | None = None
    fully_funded: EventRef | None = None
    fundings: dict[int, tuple[int, EventRef]] = field(default_factory=dict)
    claims: dict[int, tuple[int, str, EventRef]] = field(default_factory=dict)
    total_due_fen: int = 0
    funded_fen: int = 0
    claimed_fen: int = 0
    seeded_disputed: set[int] = field(default_factory=set)
    seeded_settled: set[int] = field(default_factory=set)
    """Partners disputed / settled before a partial replay's window (from the views)."""

    def is_settled(self, partner_id: int) -> bool:
        return (
            partner_id in self.fundings
            or partner_id in self.claims
            or partner_id in self.seeded_settled
        )

    def is_disputed(self, partner_id: int) -> bool:
        disputed = any(p == partner_id for p, _reason, _ref in self.disputes)
        return disputed or partner_id in self.seeded_disputed

    def position_of(self, partner_id: int) -> int | None:
        """The listed partner's net position, or None when not listed."""
        for listed, net_fen in zip(self.partner_ids, self.net_positions_fen, strict=True):
            if listed == partner_id:
                return net_fen
        return None


@dataclass
class PartnerReplay:
    partner_id: int
    role: int
    payout: str
    active: bool
    registered: EventRef | None


@dataclass(frozen=True)
class SignerSet:
    version: int
    signers: tuple[str, ...]
    threshold: int
    ref: EventRef


@dataclass(frozen=True)
class RoleChange:
    contract: str
    address: str
    role: str
    account: str
    sender: str
    granted: bool
    ref: EventRef


@dataclass(frozen=True)
class LineStateReplay:
    cycle_id: int
    root: str
    count: int
    total_outstanding_fen: int
    submitter: str
    ref: EventRef


@dataclass(frozen=True)
class ReportConsumed:
    consumer: str
    report_id: str
    digest: str
    signer_set_version: int
    ref: EventRef


@dataclass(frozen=True)
class AdminAction:
    """A privileged action: role change, signer set, pause, dispute ruling, mint, partner."""

    contract: str
    address: str
    category: str
    description: str
    ref: EventRef
    sender: str = ""


@dataclass
class ReplayedState:
    """Everything the events say; `contracts` maps contract name -> lowercase address."""

    contracts: dict[str, str]
    agreements: dict[str, AgreementReplay] = field(default_factory=dict)
    cycles: dict[int, CycleReplay] = field(default_factory=dict)
    partners: dict[int, PartnerReplay] = field(default_factory=dict)
    signer_sets: list[SignerSet] = field(default_factory=list)
    role_changes: list[RoleChange] = field(default_factory=list)
    role_members: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    role_admins: dict[tuple[str, str], str] = field(default_factory=dict)
    paused: dict[str, bool] = field(default_factory=dict)
    line_states: dict[int, LineStateReplay] = field(default_factory=dict)
    reports: list[ReportConsumed] = field(default_factory=list)
    token_supply_fen: int = 0
    token_balances_fen: dict[str, int] = field(default_factory=dict)
    admin_actions: list[AdminAction] = field(default_factory=list)
    anomalies: list[Anomaly] = field(default_factory=list)
    event_count: int = 0
    role_names: dict[str, str] = field(default_factory=dict)
    """Role hash -> name (`RELAYER_ROLE`), for readable admin actions."""

    def role_name(self, role: str) -> str:
        return self.role_names.get(role.lower(), role)

    def signer_set_at(self, order: tuple[int, int]) -> SignerSet | None:
        """The signer set in force just before the event at `order` (block, log index)."""
        current: SignerSet | None = None
        for signer_set in self.signer_sets:
            if signer_set.ref.order < order:
                current = signer_set
        return current

    def note(self, check_id: str, problem: str, event: AuditEvent, **values: Any) -> None:
        self.anomalies.append(Anomaly(check_id, problem, event.ref, event.address, values))

    def admin(self, event: AuditEvent, category: str, description: str, sender: str = "") -> None:
        self.admin_actions.append(
            AdminAction(event.contract, event.address, category, description, event.ref, sender)
        )


Handler = Callable[[ReplayedState, AuditEvent], None]


def _word(value: int) -> bytes:
    return value.to_bytes(32, "big")


def compute_commitment(agreement: AgreementReplay) -> str:
    """keccak256(abi.encode(AgreementInput)) of the opening fields, as the registry stores
    it: seven static words (three bytes32, then uint32, uint64, uint32, uint64)."""
    encoded = b"".join(
        (
            bytes.fromhex(agreement.agreement_id[2:]),
            bytes.fromhex(agreement.borrower_ref[2:]),
            bytes.fromhex(agreement.terms_hash[2:]),
            _word(agreement.product_code),
            _word(agreement.opened_limit_fen),
            _word(agreement.apr_bps),
            _word(agreement.opened_at),
        )
    )
    return "0x" + str(keccak_256(encoded).hexdigest())


def _open_agreement(state: ReplayedState, event: AuditEvent) -> None:
    args = event.args
    agreement_id = str(args["agreementId"])
    if agreement_id in state.agreements:
        state.note(TRANSITIONS_CHECK, f"agreement {agreement_id} opened twice", event)
        return
    state.agreements[agreement_id] = AgreementReplay(
        agreement_id=agreement_id,
        borrower_ref=str(args["borrowerRef"]),
        terms_hash=str(args["termsHash"]),
        product_code=int(args["productCode"]),
        limit_fen=int(args["limitFen"]),
        apr_bps=int(args["aprBps"]),
        opened_at=int(args["openedAt"]),
        commitment=str(args["commitment"]),
        status=AGREEMENT_ACTIVE,
        last_reason_code=0,
        change_count=0,
        opened=event.ref,
        opened_limit_fen=int(args["limitFen"]),
    )
    expected = compute_commitment(state.agreements[agreement_id])
    if expected != state.agreements[agreement_id].commitment:
        state.note(
            AGREEMENTS_CHECK,
            f"agreement {agreement_id}: the opening fields hash to {expected}, "
            f"but the event's commitment is {args['commitment']}",
            event,
        )


def _known_agreement(state: ReplayedState, event: AuditEvent) -> AgreementReplay | None:
    agreement_id = str(event.args["agreementId"])
    agreement = state.agreements.get(agreement_id)
    if agreement is None:
        state.note(TRANSITIONS_CHECK, f"change of agreement {agreement_id} never opened", event)
    return agreement


def _amend_limit(state: ReplayedState, event: AuditEvent) -> None:
    agreement = _known_agreement(state, event)
    if agreement is None:
        return
    args = event.args
    old_fen, new_fen = int(args["oldLimitFen"]), int(args["newLimitFen"])
    if old_fen != agreement.limit_fen:
        state.note(
            TRANSITIONS_CHECK,
            f"agreement {agreement.agreement_id}: amendment from {old_fen} fen, "
            f"but its limit was {agreement.limit_fen} fen",
            event,
        )
    agreement.limit_history.append(
        LimitChange(event.ref, old_fen, new_fen, int(args["reasonCode"]))
    )
    agreement.limit_fen = new_fen
    agreement.last_reason_code = int(args["reasonCode"])
    agreement.change_count += 1


def _change_status(state: ReplayedState, event: AuditEvent) -> None:
    agreement = _known_agreement(state, event)
    if agreement is None:
        return
    args = event.args
    old, new = int(args["fromStatus"]), int(args["toStatus"])
    if old != agreement.status:
        state.note(
            TRANSITIONS_CHECK,
            f"agreement {agreement.agreement_id}: transition from status {old}, "
            f"but it was in status {agreement.status}",
            event,
        )
    if not is_legal_agreement_transition(old, new):
        state.note(
            TRANSITIONS_CHECK,
            f"agreement {agreement.agreement_id}: forbidden transition {old} -> {new}",
            event,
            from_status=old,
            to_status=new,
        )
    agreement.status_history.append(StatusChange(event.ref, old, new, int(args["reasonCode"])))
    agreement.status = new
    agreement.last_reason_code = int(args["reasonCode"])
    agreement.change_count += 1


def _commit_line_state(state: ReplayedState, event: AuditEvent) -> None:
    args = event.args
    cycle_id = int(args["cycleId"])
    if cycle_id in state.line_states:
        state.note(LIFECYCLE_CHECK, f"line state of cycle {cycle_id} committed twice", event)
        return
    state.line_states[cycle_id] = LineStateReplay(
        cycle_id,
        str(args["root"]),
        int(args["count"]),
        int(args["totalOutstandingFen"]),
        str(args["submitter"]),
        event.ref,
    )


def _propose_cycle(state: ReplayedState, event: AuditEvent) -> None:
    args = event.args
    cycle_id = int(args["cycleId"])
    if cycle_id in state.cycles:
        state.note(LIFECYCLE_CHECK, f"cycle {cycle_id} proposed twice", event)
        return
    positions = tuple(int(value) for value in args["netPositions"])
    state.cycles[cycle_id] = CycleReplay(
        cycle_id=cycle_id,
        entries_root=str(args["entriesRoot"]),
        entry_count=int(args["entryCount"]),
        partner_ids=tuple(int(value) for value in args["partnerIds"]),
        net_positions_fen=positions,
        dispute_deadline=int(args["disputeDeadline"]),
        status=CYCLE_PROPOSED,
        proposed=event.ref,
        total_due_fen=sum(value for value in positions if value > 0),
    )


def _cycle_in(
    state: ReplayedState, event: AuditEvent, allowed: tuple[int, ...], action: str
) -> CycleReplay | None:
    """The event's cycle, after noting an anomaly when it is unknown or in a wrong status."""
    cycle_id = int(event.args["cycleId"])
    cycle = state.cycles.get(cycle_id)
    if cycle is None:
        state.note(LIFECYCLE_CHECK, f"{action} of cycle {cycle_id} never proposed", event)
        return None
    if cycle.status not in allowed:
        state.note(
            LIFECYCLE_CHECK,
            f"{action} of cycle {cycle_id} in status {cycle.status}",
            event,
            status=cycle.status,
        )
    return cycle


def _dispute_cycle(state: ReplayedState, event: AuditEvent) -> None:
    cycle = _cycle_in(state, event, (CYCLE_PROPOSED, CYCLE_DISPUTED), "dispute")
    if cycle is None:
        return
    partner_id = int(event.args["partnerId"])
    if cycle.position_of(partner_id) is None:
        state.note(
            LIFECYCLE_CHECK, f"cycle {cycle.cycle_id}: dispute by unlisted {partner_id}", event
        )
    cycle.disputes.append((partner_id, str(event.args["reason"]), event.ref))
    cycle.status = CYCLE_DISPUTED


def _resolve_dispute(state: ReplayedState, event: AuditEvent) -> None:
    upheld = bool(event.args["upheld"])
    verdict = "upheld (cycle rejected)" if upheld else "dismissed"
    state.admin(event, "dispute", f"dispute of cycle {event.args['cycleId']} {verdict}")
    cycle = _cycle_in(state, event, (CYCLE_DISPUTED,), "dispute resolution")
    if cycle is None:
        return
    cycle.resolutions.append((upheld, event.ref))
    cycle.status = CYCLE_REJECTED if upheld else CYCLE_PROPOSED


def _finalize_cycle(state: ReplayedState, event: AuditEvent) -> None:
    cycle = _cycle_in(state, event, (CYCLE_PROPOSED,), "finalization")
    if cycle is None:
        return
    if str(event.args["entriesRoot"]) != cycle.entries_root:
        state.note(LIFECYCLE_CHECK, f"cycle {cycle.cycle_id} finalized with another root", event)
    cycle.finalized = event.ref
    cycle.status = CYCLE_FUNDED if cycle.total_due_fen == 0 else CYCLE_FINALIZED


def _fund_cycle(state: ReplayedState, event: AuditEvent) -> None:
    cycle = _cycle_in(state, event, (CYCLE_FINALIZED,), "funding")
    if cycle is None:
        return
    partner_id, amount_fen = int(event.args["partnerId"]), int(event.args["amount"])
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
    cycle.funded_fen += amount_fen
    if cycle.funded_fen == cycle.total_due_fen:
        cycle.status = CYCLE_FUNDED


def _fully_funded(state: ReplayedState, event: AuditEvent) -> None:
    cycle = state.cycles.get(int(event.args["cycleId"]))
    if cycle is None or cycle.status != CYCLE_FUNDED:
        state.note(LIFECYCLE_CHECK, f"cycle {event.args['cycleId']} fully funded early", event)
        return
    if int(event.args["totalDueFen"]) != cycle.funded_fen:
        state.note(LIFECYCLE_CHECK, f"cycle {cycle.cycle_id}: fully funded amount differs", event)
    cycle.fully_funded = event.ref


def _claim_cycle(state: ReplayedState, event: AuditEvent) -> None:
    cycle = _cycle_in(state, event, (CYCLE_FUNDED,), "claim")
    if cycle is None:
        return
    args = event.args
    partner_id, amount_fen, payout = (
        int(args["partnerId"]),
        int(args["amount"]),
        str(args["payout"]),
    )
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
    cycle.claimed_fen += amount_fen


def _register_partner(state: ReplayedState, event: AuditEvent) -> None:
    args = event.args
    partner_id = int(args["partnerId"])
    state.admin(event, "partner", f"partner {partner_id} registered, payout {args['payout']}")
    if partner_id in state.partners:
        state.note(LIFECYCLE_CHECK, f"partner {partner_id} registered twice", event)
    state.partners[partner_id] = PartnerReplay(
        partner_id, int(args["role"]), str(args["payout"]), True, event.ref
    )


def _set_partner_active(state: ReplayedState, event: AuditEvent) -> None:
    partner_id, active = int(event.args["partnerId"]), bool(event.args["active"])
    state.admin(
        event, "partner", f"partner {partner_id} {'activated' if active else 'deactivated'}"
    )
    partner = state.partners.get(partner_id)
    if partner is None:
        state.note(LIFECYCLE_CHECK, f"partner {partner_id} toggled before registration", event)
        return
    partner.active = active


def _change_signers(state: ReplayedState, event: AuditEvent) -> None:
    args = event.args
    signers = tuple(str(signer) for signer in args["signers"])
    signer_set = SignerSet(int(args["version"]), signers, int(args["threshold"]), event.ref)
    previous = state.signer_sets[-1].version if state.signer_sets else 0
    if signer_set.version != previous + 1:
        state.note(
            LIFECYCLE_CHECK, f"signer set version {signer_set.version} after {previous}", event
        )
    state.signer_sets.append(signer_set)
    state.admin(
        event,
        "signers",
        f"signer set v{signer_set.version}: {signer_set.threshold} of "
        f"{len(signers)} ({', '.join(signers)})",
    )


def _consume_report(state: ReplayedState, event: AuditEvent) -> None:
    args = event.args
    state.reports.append(
        ReportConsumed(
            str(args["consumer"]),
            str(args["reportId"]),
            str(args["digest"]),
            int(args["signerSetVersion"]),
            event.ref,
        )
    )


def _role_change(granted: bool) -> Handler:
    def handle(state: ReplayedState, event: AuditEvent) -> None:
        args = event.args
        role, account, sender = str(args["role"]), str(args["account"]), str(args["sender"])
        change = RoleChange(
            event.contract, event.address, role, account, sender, granted, event.ref
        )
        state.role_changes.append(change)
        members = state.role_members.setdefault((event.contract, role), set())
        if granted:
            members.add(account.lower())
        else:
            members.discard(account.lower())
        verb = "granted to" if granted else "revoked from"
        state.admin(event, "role", f"{state.role_name(role)} {verb} {account}", sender)

    return handle


def _change_role_admin(state: ReplayedState, event: AuditEvent) -> None:
    args = event.args
    state.role_admins[(event.contract, str(args["role"]))] = str(args["newAdminRole"])
    role, admin_role = (
        state.role_name(str(args["role"])),
        state.role_name(str(args["newAdminRole"])),
    )
    state.admin(event, "role", f"admin of {role} set to {admin_role}")


def _pause(paused: bool) -> Handler:
    def handle(state: ReplayedState, event: AuditEvent) -> None:
        if state.paused.get(event.contract, False) == paused:
            state.note(
                LIFECYCLE_CHECK,
                f"{event.contract} {'paused' if paused else 'unpaused'} twice",
                event,
            )
        state.paused[event.contract] = paused
        verb = "paused" if paused else "unpaused"
        state.admin(event, "pause", f"{event.contract} {verb}", str(event.args["account"]))

    return handle


def _transfer(state: ReplayedState, event: AuditEvent) -> None:
    args = event.args
    source, target, value = str(args["from"]).lower(), str(args["to"]).lower(), int(args["value"])
    balances = state.token_balances_fen
    if source == ZERO_ADDRESS:
        state.token_supply_fen += value
        state.admin(event, "mint", f"{value} fen minted to {args['to']}")
    else:
        balances[source] = balances.get(source, 0) - value
    if target == ZERO_ADDRESS:
        state.token_supply_fen -= value
    else:
        balances[target] = balances.get(target, 0) + value


def _ignore(state: ReplayedState, event: AuditEvent) -> None:
    """Events that change nothing the audit compares (approvals, EIP-712 domain)."""


HANDLERS: Final[dict[str, Handler]] = {
    "AgreementOpened": _open_agreement,
    "AgreementLimitAmended": _amend_limit,
    "AgreementStatusChanged": _change_status,
    "LineStateCommitted": _commit_line_state,
    "CycleProposed": _propose_cycle,
    "CycleDisputed": _dispute_cycle,
    "DisputeResolved": _resolve_dispute,
    "CycleFinalized": _finalize_cycle,
    "CycleFunded": _fund_cycle,
    "CycleFullyFunded": _fully_funded,
    "CycleClaimed": _claim_cycle,
    "PartnerRegistered": _register_partner,
    "PartnerActiveSet": _set_partner_active,
    "SignerSetChanged": _change_signers,
    "ReportConsumed": _consume_report,
    "RoleGranted": _role_change(granted=True),
    "RoleRevoked": _role_change(granted=False),
    "RoleAdminChanged": _change_role_admin,
    "Paused": _pause(paused=True),
    "Unpaused": _pause(paused=False),
    "Transfer": _transfer,
    "Approval": _ignore,
    "EIP712DomainChanged": _ignore,
}


def replay(events: Iterable[AuditEvent], state: ReplayedState) -> ReplayedState:
    """Fold `events` (in chain order) into `state` (fresh, or seeded for a partial window)."""
    for event in events:
        state.event_count += 1
        handler = HANDLERS.get(event.name)
        if handler is None:
            state.note(LIFECYCLE_CHECK, f"event {event.name} the audit does not know", event)
            continue
        handler(state, event)
    return state
