"""Event replay: the contracts' whole state rebuilt from their events alone.

`replay(events)` folds every decoded event, in chain order, into a `ReplayedState`:
agreements with their status and limit history, cycles with roots, positions,
disputes, fundings, claims, defaults and refunds, partners, the signer-set history, role
grants, revocations and renouncements, pauses, line-state commitments, consumed
reports, the settlement token's supply and balances, the timelock's operations and
minimum delay (`history_timelock`), and every admin action. Whatever an event says that
the contracts' documented state machines forbid (a transition from a status the
agreement is not in, a claim of a cycle that is not funded, a refund to a debtor that
never funded, ...) is recorded as an `Anomaly` for the invariant checks; the fold
itself never raises on chain data.

The fold is independent of the node's own indexer on purpose: the auditor trusts neither.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Final

from node_api.kernel.chain import AgreementStatus, is_legal_agreement_transition
from node_api.kernel.money import Fen
from oracles.audit.events import AuditEvent
from oracles.audit.history_cycles import (
    claim_cycle,
    declare_default,
    dispute_cycle,
    finalize_cycle,
    fully_funded,
    fund_cycle,
    propose_cycle,
    refund_cycle,
    register_partner,
    resolve_dispute,
    set_partner_active,
)
from oracles.audit.history_timelock import (
    cancel_operation,
    change_min_delay,
    execute_call,
    salt_operation,
    schedule_call,
)
from oracles.audit.leaves import compute_agreement_commitment
from oracles.audit.replay_state import (
    AGREEMENTS_CHECK,
    LIFECYCLE_CHECK,
    TRANSITIONS_CHECK,
    ZERO_ADDRESS,
    AgreementReplay,
    LimitChange,
    LineStateReplay,
    ReplayedState,
    ReportConsumed,
    RoleChange,
    SignerSet,
    StatusChange,
)

Handler = Callable[[ReplayedState, AuditEvent], None]


def compute_commitment(agreement: AgreementReplay) -> str:
    """The registry's commitment of an agreement's opening fields (see `leaves`)."""
    return compute_agreement_commitment(
        agreement.agreement_id,
        agreement.borrower_ref,
        agreement.terms_hash,
        agreement.product_code,
        agreement.opened_limit_fen,
        agreement.apr_bps,
        agreement.opened_at,
    )


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
        limit_fen=Fen(int(args["limitFen"])),
        apr_bps=int(args["aprBps"]),
        opened_at=int(args["openedAt"]),
        commitment=str(args["commitment"]),
        status=AgreementStatus.ACTIVE,
        last_reason_code=0,
        change_count=0,
        opened=event.ref,
        opened_limit_fen=Fen(int(args["limitFen"])),
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
    old_fen, new_fen = Fen(int(args["oldLimitFen"])), Fen(int(args["newLimitFen"]))
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
        Fen(int(args["totalOutstandingFen"])),
        str(args["submitter"]),
        event.ref,
    )


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
        function="setSigners",
        privileged=True,
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


_ROLE_VERBS: Final = {
    (True, False): ("granted to", "grantRole"),
    (False, False): ("revoked from", "revokeRole"),
    (False, True): ("renounced by", "renounceRole"),
}


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
        # A revocation by the account itself is `renounceRole`: anyone may give up a role.
        renounced = not granted and sender.lower() == account.lower()
        verb, function = _ROLE_VERBS[(granted, renounced)]
        state.admin(
            event,
            "role",
            f"{state.role_name(role)} {verb} {account}",
            sender,
            function=function,
            privileged=not renounced,
        )

    return handle


def _change_role_admin(state: ReplayedState, event: AuditEvent) -> None:
    args = event.args
    state.role_admins[(event.contract, str(args["role"]))] = str(args["newAdminRole"])
    role, admin_role = (
        state.role_name(str(args["role"])),
        state.role_name(str(args["newAdminRole"])),
    )
    state.admin(event, "role", f"admin of {role} set to {admin_role}", privileged=True)


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
        state.admin(
            event,
            "pause",
            f"{event.contract} {verb}",
            str(event.args["account"]),
            function="pause" if paused else "unpause",
            privileged=True,
        )

    return handle


def _transfer(state: ReplayedState, event: AuditEvent) -> None:
    args = event.args
    source, target, value = str(args["from"]).lower(), str(args["to"]).lower(), int(args["value"])
    balances = state.token_balances_fen
    if source == ZERO_ADDRESS:
        state.token_supply_fen = Fen(state.token_supply_fen + value)
        state.admin(event, "mint", f"{value} fen minted to {args['to']}")
    else:
        balances[source] = balances.get(source, 0) - value
    if target == ZERO_ADDRESS:
        state.token_supply_fen = Fen(state.token_supply_fen - value)
    else:
        balances[target] = balances.get(target, 0) + value


def _ignore(state: ReplayedState, event: AuditEvent) -> None:
    """Events that change nothing the audit compares (approvals, EIP-712 domain)."""


HANDLERS: Final[dict[str, Handler]] = {
    "AgreementOpened": _open_agreement,
    "AgreementLimitAmended": _amend_limit,
    "AgreementStatusChanged": _change_status,
    "LineStateCommitted": _commit_line_state,
    "CycleProposed": propose_cycle,
    "CycleDisputed": dispute_cycle,
    "DisputeResolved": resolve_dispute,
    "CycleFinalized": finalize_cycle,
    "CycleFunded": fund_cycle,
    "CycleFullyFunded": fully_funded,
    "CycleClaimed": claim_cycle,
    "CycleDefaulted": declare_default,
    "CycleRefunded": refund_cycle,
    "PartnerRegistered": register_partner,
    "PartnerActiveSet": set_partner_active,
    "SignerSetChanged": _change_signers,
    "ReportConsumed": _consume_report,
    "RoleGranted": _role_change(granted=True),
    "RoleRevoked": _role_change(granted=False),
    "RoleAdminChanged": _change_role_admin,
    "Paused": _pause(paused=True),
    "Unpaused": _pause(paused=False),
    "CallScheduled": schedule_call,
    "CallExecuted": execute_call,
    "Cancelled": cancel_operation,
    "MinDelayChange": change_min_delay,
    "CallSalt": salt_operation,
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
