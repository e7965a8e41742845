"""Compare the replayed state with what the contracts' view functions return now.

Every agreement, cycle (and each listed partner's position), partner, line state,
role membership seen in the events, pause flag, the current signer set, every consumed
report and the token's supply and balances are read with `eth_call` at the audited
block, in JSON-RPC batches, and compared field by field with the replay. A difference
means the events do not tell the whole story of the state (or the replay is wrong):
either way the auditor must look, so each one is a failure with its evidence.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from oracles.audit.audited import (
    CLEARING_HOUSE,
    CREDIT_REGISTRY,
    ORACLE_QUORUM,
    SETTLEMENT_TOKEN,
    AuditedContracts,
)
from oracles.audit.chain_reader import ChainReader
from oracles.audit.checks import CheckResult, Evidence, make_check
from oracles.audit.events import EventRef
from oracles.audit.history import CycleReplay, ReplayedState
from oracles.tx_sender import RpcFailure

CallSpec = tuple[str, str, list[Any]]


@dataclass(frozen=True)
class ViewOutcome:
    """A view's decoded output, or None when the call failed."""

    output: tuple[Any, ...] | None


def run_views(
    reader: ChainReader,
    contracts: AuditedContracts,
    calls: Sequence[CallSpec],
    block: int | None = None,
) -> list[tuple[Any, ...] | None]:
    """Call each (contract, function, args) at the audited block (or `block`); None for a
    failed call."""
    encoded = []
    for contract, function, args in calls:
        codec = contracts.codecs[contract].function(function)
        encoded.append((contracts.addresses[contract], codec.encode(args)))
    results = reader.call_many(encoded, block)
    outputs: list[tuple[Any, ...] | None] = []
    for (contract, function, _args), result in zip(calls, results, strict=True):
        if isinstance(result, RpcFailure):
            outputs.append(None)
            continue
        try:
            outputs.append(contracts.codecs[contract].function(function).decode_output(result))
        except Exception:  # an undecodable answer is a failed comparison, not a crash
            outputs.append(None)
    return outputs


def _hex(value: Any) -> str:
    return "0x" + value.hex() if isinstance(value, bytes) else str(value)


def _diff(mine: dict[str, Any], theirs: dict[str, Any]) -> dict[str, Any]:
    """Fields that differ: {field: {"replayed": x, "view": y}}."""
    return {
        key: {"replayed": mine[key], "view": theirs.get(key)}
        for key in mine
        if mine[key] != theirs.get(key)
    }


def _mismatch(ref: EventRef | None, address: str, subject: str, diff: dict[str, Any]) -> Evidence:
    fields = ", ".join(
        f"{key}: events {v['replayed']} vs view {v['view']}" for key, v in diff.items()
    )
    return Evidence(
        ref.block if ref else None,
        ref.tx if ref else None,
        address,
        {"subject": subject, "problem": f"{subject}: {fields}", "differences": diff},
    )


def _view_failed(address: str, subject: str) -> Evidence:
    return Evidence(
        address=address, values={"subject": subject, "problem": f"{subject}: view call failed"}
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
    address = contracts.addresses.get(CREDIT_REGISTRY, "")
    if agreements and contracts.has(CREDIT_REGISTRY):
        calls: list[CallSpec] = [
            (CREDIT_REGISTRY, "getAgreement", [bytes.fromhex(a.agreement_id[2:])])
            for a in agreements
        ]
        for agreement, output in zip(agreements, run_views(reader, contracts, calls), strict=True):
            subject = f"agreement {agreement.agreement_id}"
            if output is None:
                failures.append(_view_failed(address, subject))
                continue
            record, commitment = output
            mine = {
                "status": agreement.status,
                "limit_fen": agreement.limit_fen,
                "apr_bps": agreement.apr_bps,
                "product_code": agreement.product_code,
                "opened_at": agreement.opened_at,
                "last_reason_code": agreement.last_reason_code,
                "change_count": agreement.change_count,
                "commitment": agreement.commitment,
            }
            theirs: dict[str, Any] = dict(
                zip(list(mine)[:-1], [int(v) for v in record], strict=True)
            )
            theirs["commitment"] = _hex(commitment)
            diff = _diff(mine, theirs)
            if diff:
                last = _last_ref(
                    agreement.opened, agreement.status_history, agreement.limit_history
                )
                failures.append(_mismatch(last, address, subject, diff))
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
    address = contracts.addresses.get(CLEARING_HOUSE, "")
    cycles = list(state.cycles.values())
    if cycles and contracts.has(CLEARING_HOUSE):
        calls: list[CallSpec] = [(CLEARING_HOUSE, "getCycle", [c.cycle_id]) for c in cycles]
        position_keys = [(c, p) for c in cycles for p in c.partner_ids]
        calls += [(CLEARING_HOUSE, "getPosition", [c.cycle_id, p]) for c, p in position_keys]
        outputs = run_views(reader, contracts, calls)
        for cycle, output in zip(cycles, outputs[: len(cycles)], strict=True):
            subject = f"cycle {cycle.cycle_id}"
            if output is None:
                failures.append(_view_failed(address, subject))
                continue
            (view,) = output
            mine = {
                "entries_root": cycle.entries_root,
                "status": cycle.status,
                "partner_count": len(cycle.partner_ids),
                "dispute_deadline": cycle.dispute_deadline,
                "entry_count": cycle.entry_count,
                "total_due_fen": cycle.total_due_fen,
                "funded_fen": cycle.funded_fen,
                "claimed_fen": cycle.claimed_fen,
            }
            theirs = {
                "entries_root": _hex(view[0]),
                "status": int(view[1]),
                "partner_count": int(view[2]),
                "dispute_deadline": int(view[4]),
                "entry_count": int(view[5]),
                "total_due_fen": int(view[6]),
                "funded_fen": int(view[7]),
                "claimed_fen": int(view[8]),
            }
            if cycle.proposed is None:
                del mine["partner_count"], theirs["partner_count"]
            diff = _diff(mine, theirs)
            if diff:
                failures.append(_mismatch(cycle.proposed, address, subject, diff))
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
        return [_view_failed(address, subject)]
    net_fen, listed, disputed, settled = output
    mine = {
        "net_position_fen": cycle.position_of(partner_id),
        "listed": True,
        "disputed": cycle.is_disputed(partner_id),
        "settled": cycle.is_settled(partner_id),
    }
    theirs = {
        "net_position_fen": int(net_fen),
        "listed": bool(listed),
        "disputed": bool(disputed),
        "settled": bool(settled),
    }
    diff = _diff(mine, theirs)
    return [_mismatch(cycle.proposed, address, subject, diff)] if diff else []


def compare_simple(
    check_id: str,
    title: str,
    reader: ChainReader,
    contracts: AuditedContracts,
    items: Sequence[
        tuple[
            str,
            CallSpec,
            Callable[[tuple[Any, ...]], dict[str, Any]],
            dict[str, Any],
            EventRef | None,
        ]
    ],
    ok_message: str,
) -> CheckResult:
    """A check comparing one view call per item: (subject, call, view -> fields, replayed
    fields, where the replayed value comes from)."""
    failures: list[Evidence] = []
    present = [item for item in items if contracts.has(item[1][0])]
    outputs = run_views(reader, contracts, [item[1] for item in present])
    for (subject, call, convert, mine, ref), output in zip(present, outputs, strict=True):
        address = contracts.addresses[call[0]]
        if output is None:
            failures.append(_view_failed(address, subject))
            continue
        diff = _diff(mine, convert(output))
        if diff:
            failures.append(_mismatch(ref, address, subject, diff))
    return make_check(
        check_id,
        title,
        failures,
        ok_message=ok_message,
        fail_message="{count} differences; first: {first}",
    )


def compare_partners(
    reader: ChainReader, contracts: AuditedContracts, state: ReplayedState
) -> CheckResult:
    items = [
        (
            f"partner {p.partner_id}",
            (CLEARING_HOUSE, "getPartner", [p.partner_id]),
            lambda out: {
                "payout": str(out[0][0]).lower(),
                "role": int(out[0][1]),
                "active": bool(out[0][2]),
                "registered": bool(out[0][3]),
            },
            {"payout": p.payout.lower(), "role": p.role, "active": p.active, "registered": True},
            p.registered,
        )
        for p in state.partners.values()
    ]
    return compare_simple(
        "replay.partners",
        "Partner events replay to the registered partners",
        reader,
        contracts,
        items,
        f"{len(items)} partners replayed; all equal",
    )


def compare_signers(
    reader: ChainReader, contracts: AuditedContracts, state: ReplayedState
) -> CheckResult:
    """`replay.signers`: the last signer set is the quorum's; every consumed report is marked."""
    items: list[Any] = []
    if state.signer_sets:
        last = state.signer_sets[-1]
        items.append(
            (
                "current signer set",
                (ORACLE_QUORUM, "signers", []),
                lambda out: {"signers": [str(s).lower() for s in out[0]]},
                {"signers": [s.lower() for s in last.signers]},
                last.ref,
            )
        )
        items.append(
            (
                "signer threshold",
                (ORACLE_QUORUM, "threshold", []),
                lambda out: {"threshold": int(out[0])},
                {"threshold": last.threshold},
                last.ref,
            )
        )
        items.append(
            (
                "signer set version",
                (ORACLE_QUORUM, "signerSetVersion", []),
                lambda out: {"version": int(out[0])},
                {"version": last.version},
                last.ref,
            )
        )
    for report in state.reports:
        items.append(
            (
                f"report {report.report_id} of {report.consumer}",
                (
                    ORACLE_QUORUM,
                    "isReportConsumed",
                    [report.consumer, bytes.fromhex(report.report_id[2:])],
                ),
                lambda out: {"consumed": bool(out[0])},
                {"consumed": True},
                report.ref,
            )
        )
    versions = len(state.signer_sets)
    return compare_simple(
        "replay.signers",
        "Signer-set events replay to the oracle quorum's signers",
        reader,
        contracts,
        items,
        f"{versions} signer sets and {len(state.reports)} consumed reports replayed; all equal",
    )


def compare_roles(
    reader: ChainReader, contracts: AuditedContracts, state: ReplayedState
) -> CheckResult:
    """`replay.roles`: every (role, account) the events mention has the replayed membership."""
    seen: dict[tuple[str, str, str], EventRef] = {}
    for change in state.role_changes:
        seen[(change.contract, change.role, change.account)] = change.ref
    items: list[Any] = []
    for (contract, role, account), ref in seen.items():
        member = account.lower() in state.role_members.get((contract, role), set())
        items.append(
            (
                f"{contract} role {role} of {account}",
                (contract, "hasRole", [bytes.fromhex(role[2:]), account]),
                lambda out: {"member": bool(out[0])},
                {"member": member},
                ref,
            )
        )
    for (contract, role), admin_role in state.role_admins.items():
        items.append(
            (
                f"{contract} admin of role {role}",
                (contract, "getRoleAdmin", [bytes.fromhex(role[2:])]),
                lambda out: {"admin_role": _hex(out[0])},
                {"admin_role": admin_role},
                None,
            )
        )
    return compare_simple(
        "replay.roles",
        "Role grants and revocations replay to the contracts' role members",
        reader,
        contracts,
        items,
        f"{len(seen)} role memberships replayed; all equal",
    )


def compare_pauses(
    reader: ChainReader, contracts: AuditedContracts, state: ReplayedState
) -> CheckResult:
    items: list[Any] = [
        (
            f"{name} paused flag",
            (name, "paused", []),
            lambda out: {"paused": bool(out[0])},
            {"paused": state.paused.get(name, False)},
            None,
        )
        for name in contracts.addresses
        if "paused" in contracts.codecs[name].functions
    ]
    return compare_simple(
        "replay.pauses",
        "Pause events replay to each contract's paused flag",
        reader,
        contracts,
        items,
        f"{len(items)} pause flags replayed; all equal",
    )


def compare_line_states(
    reader: ChainReader, contracts: AuditedContracts, state: ReplayedState
) -> CheckResult:
    items = [
        (
            f"line state of cycle {ls.cycle_id}",
            (CREDIT_REGISTRY, "getLineState", [ls.cycle_id]),
            lambda out: {"root": _hex(out[0]), "count": int(out[1]), "total_fen": int(out[2])},
            {"root": ls.root, "count": ls.count, "total_fen": ls.total_outstanding_fen},
            ls.ref,
        )
        for ls in state.line_states.values()
    ]
    return compare_simple(
        "replay.line_states",
        "Line-state commitments replay to the registry's line states",
        reader,
        contracts,
        items,
        f"{len(items)} line-state commitments replayed; all equal",
    )


def compare_token(
    reader: ChainReader, contracts: AuditedContracts, state: ReplayedState
) -> CheckResult:
    items: list[Any] = [
        (
            "total supply",
            (SETTLEMENT_TOKEN, "totalSupply", []),
            lambda out: {"supply_fen": int(out[0])},
            {"supply_fen": state.token_supply_fen},
            None,
        )
    ]
    for holder, balance_fen in sorted(state.token_balances_fen.items()):
        items.append(
            (
                f"token balance of {holder}",
                (SETTLEMENT_TOKEN, "balanceOf", [holder]),
                lambda out: {"balance_fen": int(out[0])},
                {"balance_fen": balance_fen},
                None,
            )
        )
    return compare_simple(
        "replay.token",
        "Token transfers replay to the settlement token's supply and balances",
        reader,
        contracts,
        items,
        f"supply and {len(state.token_balances_fen)} balances replayed; all equal",
    )


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
    ]
