"""Compare the replayed state with what the contracts' view functions return now.

Every agreement, cycle (and each listed partner's position), partner, line state,
role membership seen in the events, pause flag, the current signer set, every consumed
report, the token's supply and balances, and the timelock's minimum delay and the state
of each of its operations are read with `eth_call` at the audited
block, in JSON-RPC batches, and compared field by field with the replay. A difference
means the events do not tell the whole story of the state (or the replay is wrong):
either way the auditor must look, so each one is a failure with its evidence.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from node_api.kernel.chain import ContractName
from oracles.audit.audited import AuditedContracts
from oracles.audit.chain_reader import ChainReader
from oracles.audit.checks import CheckResult, Evidence, JsonValue, make_check
from oracles.audit.events import EventRef
from oracles.audit.governance_views import (
    compare_line_states,
    compare_partners,
    compare_pauses,
    compare_roles,
    compare_signers,
    compare_timelock,
    compare_token,
)
from oracles.audit.replay_state import CycleReplay, ReplayedState
from oracles.audit.view_calls import (
    CallSpec,
    diff_fields,
    hex_of,
    mismatch_evidence,
    run_views,
    view_failed_evidence,
)


def _anomalies(state: ReplayedState, check_id: str) -> list[Evidence]:
    return [
        Evidence(a.ref.block, a.ref.tx, a.address, {"problem": a.problem, **a.values})
        for a in state.anomalies
        if a.check_id == check_id
    ]


def compare_agreements(
    reader: ChainReader, contracts: AuditedContracts, state: ReplayedState
) -> CheckResult:
    """`replay.agreements`: every agreement's record and commitment equal the view's."""
    failures = _anomalies(state, "replay.agreements")
    agreements = list(state.agreements.values())
    address = contracts.addresses.get(ContractName.CREDIT_REGISTRY, "")
    if agreements and contracts.has(ContractName.CREDIT_REGISTRY):
        calls: list[CallSpec] = [
            (ContractName.CREDIT_REGISTRY, "getAgreement", [bytes.fromhex(a.agreement_id[2:])])
            for a in agreements
        ]
        for agreement, output in zip(agreements, run_views(reader, contracts, calls), strict=True):
            subject = f"agreement {agreement.agreement_id}"
            if output is None:
                failures.append(view_failed_evidence(address, subject))
                continue
            record, commitment = output
            mine: dict[str, JsonValue] = {
                "status": agreement.status,
                "limit_fen": agreement.limit_fen,
                "apr_bps": agreement.apr_bps,
                "product_code": agreement.product_code,
                "opened_at": agreement.opened_at,
                "last_reason_code": agreement.last_reason_code,
                "change_count": agreement.change_count,
                "commitment": agreement.commitment,
            }
            theirs: dict[str, JsonValue] = dict(
                zip(list(mine)[:-1], [int(v) for v in record], strict=True)
            )
            theirs["commitment"] = hex_of(commitment)
            diff = diff_fields(mine, theirs)
            if diff:
                last = _last_ref(
                    agreement.opened, agreement.status_history, agreement.limit_history
                )
                failures.append(mismatch_evidence(last, address, subject, diff))
    return make_check(
        "replay.agreements",
        "Agreement events replay to the registry's records",
        failures,
        ok_message=f"{len(agreements)} agreements replayed; every record and commitment equal",
        fail_message="{count} agreement differences; first: {first}",
    )


def _last_ref(first: EventRef | None, *histories: Sequence[Any]) -> EventRef | None:
    refs = [first] if first is not None else []
    refs += [item.ref for history in histories for item in history]
    return max(refs, key=lambda ref: ref.order) if refs else None


def compare_cycles(
    reader: ChainReader, contracts: AuditedContracts, state: ReplayedState
) -> CheckResult:
    """`replay.cycles`: each cycle and each listed partner's position equal the views."""
    failures: list[Evidence] = []
    address = contracts.addresses.get(ContractName.CLEARING_HOUSE, "")
    cycles = list(state.cycles.values())
    if cycles and contracts.has(ContractName.CLEARING_HOUSE):
        calls: list[CallSpec] = [
            (ContractName.CLEARING_HOUSE, "getCycle", [c.cycle_id]) for c in cycles
        ]
        position_keys = [(c, p) for c in cycles for p in c.partner_ids]
        calls += [
            (ContractName.CLEARING_HOUSE, "getPosition", [c.cycle_id, p]) for c, p in position_keys
        ]
        outputs = run_views(reader, contracts, calls)
        for cycle, output in zip(cycles, outputs[: len(cycles)], strict=True):
            subject = f"cycle {cycle.cycle_id}"
            if output is None:
                failures.append(view_failed_evidence(address, subject))
                continue
            (view,) = output
            mine: dict[str, JsonValue] = {
                "entries_root": cycle.entries_root,
                "status": cycle.status,
                "partner_count": len(cycle.partner_ids),
                "dispute_deadline": cycle.dispute_deadline,
                "funding_deadline": cycle.funding_deadline,
                "entry_count": cycle.entry_count,
                "total_due_fen": cycle.total_due_fen,
                "funded_fen": cycle.funded_fen,
                # the contract's claimedFen: claims, or refunds once Defaulted
                "claimed_fen": cycle.claimed_fen + cycle.refunded_fen,
            }
            theirs: dict[str, JsonValue] = {
                "entries_root": hex_of(view[0]),
                "status": int(view[1]),
                "partner_count": int(view[2]),
                "dispute_deadline": int(view[4]),
                "funding_deadline": int(view[5]),
                "entry_count": int(view[6]),
                "total_due_fen": int(view[7]),
                "funded_fen": int(view[8]),
                "claimed_fen": int(view[9]),
            }
            if cycle.proposed is None:
                del mine["partner_count"], theirs["partner_count"]
            diff = diff_fields(mine, theirs)
            if diff:
                failures.append(mismatch_evidence(cycle.proposed, address, subject, diff))
        for (cycle, partner_id), output in zip(position_keys, outputs[len(cycles) :], strict=True):
            failures.extend(_compare_position(cycle, partner_id, output, address))
    return make_check(
        "replay.cycles",
        "Cycle events replay to the clearing house's cycles and positions",
        failures,
        ok_message=f"{len(cycles)} cycles replayed; every cycle and position equal",
        fail_message="{count} cycle differences; first: {first}",
    )


def _compare_position(
    cycle: CycleReplay, partner_id: int, output: tuple[Any, ...] | None, address: str
) -> list[Evidence]:
    subject = f"cycle {cycle.cycle_id} partner {partner_id}"
    if output is None:
        return [view_failed_evidence(address, subject)]
    net_fen, listed, disputed, settled, refunded = output
    mine = {
        "net_position_fen": cycle.position_of(partner_id),
        "listed": True,
        "disputed": cycle.is_disputed(partner_id),
        "settled": cycle.is_settled(partner_id),
        "refunded": cycle.is_refunded(partner_id),
    }
    theirs = {
        "net_position_fen": int(net_fen),
        "listed": bool(listed),
        "disputed": bool(disputed),
        "settled": bool(settled),
        "refunded": bool(refunded),
    }
    diff = diff_fields(mine, theirs)
    return [mismatch_evidence(cycle.proposed, address, subject, diff)] if diff else []


def compare_all(
    reader: ChainReader, contracts: AuditedContracts, state: ReplayedState
) -> list[CheckResult]:
    """Every `replay.*` check."""
    return [
        compare_agreements(reader, contracts, state),
        compare_cycles(reader, contracts, state),
        compare_partners(reader, contracts, state),
        compare_signers(reader, contracts, state),
        compare_roles(reader, contracts, state),
        compare_pauses(reader, contracts, state),
        compare_line_states(reader, contracts, state),
        compare_token(reader, contracts, state),
        compare_timelock(reader, contracts, state),
    ]
