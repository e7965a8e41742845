"""`replay.partners`, `replay.signers`, `replay.roles`, `replay.pauses`,
`replay.line_states`, `replay.token` and `replay.timelock`: one view call per replayed fact (see
`state_views` for the comparison's rationale)."""

from __future__ import annotations

from node_api.kernel.chain import ContractName
from oracles.audit.audited import (
    AuditedContracts,
)
from oracles.audit.chain_reader import ChainReader
from oracles.audit.checks import CheckResult
from oracles.audit.events import EventRef
from oracles.audit.replay_state import ReplayedState
from oracles.audit.view_calls import SimpleComparison, compare_simple, hex_of


def compare_partners(
    reader: ChainReader, contracts: AuditedContracts, state: ReplayedState
) -> CheckResult:
    items: list[SimpleComparison] = [
        (
            f"partner {p.partner_id}",
            (ContractName.CLEARING_HOUSE, "getPartner", [p.partner_id]),
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
    items: list[SimpleComparison] = []
    if state.signer_sets:
        last = state.signer_sets[-1]
        items.append(
            (
                "current signer set",
                (ContractName.ORACLE_QUORUM, "signers", []),
                lambda out: {"signers": [str(s).lower() for s in out[0]]},
                {"signers": [s.lower() for s in last.signers]},
                last.ref,
            )
        )
        items.append(
            (
                "signer threshold",
                (ContractName.ORACLE_QUORUM, "threshold", []),
                lambda out: {"threshold": int(out[0])},
                {"threshold": last.threshold},
                last.ref,
            )
        )
        items.append(
            (
                "signer set version",
                (ContractName.ORACLE_QUORUM, "signerSetVersion", []),
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
                    ContractName.ORACLE_QUORUM,
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
    items: list[SimpleComparison] = []
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
                lambda out: {"admin_role": hex_of(out[0])},
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
    items: list[SimpleComparison] = [
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
    items: list[SimpleComparison] = [
        (
            f"line state of cycle {ls.cycle_id}",
            (ContractName.CREDIT_REGISTRY, "getLineState", [ls.cycle_id]),
            lambda out: {"root": hex_of(out[0]), "count": int(out[1]), "total_fen": int(out[2])},
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
    items: list[SimpleComparison] = [
        (
            "total supply",
            (ContractName.SETTLEMENT_TOKEN, "totalSupply", []),
            lambda out: {"supply_fen": int(out[0])},
            {"supply_fen": state.token_supply_fen},
            None,
        )
    ]
    for holder, balance_fen in sorted(state.token_balances_fen.items()):
        items.append(
            (
                f"token balance of {holder}",
                (ContractName.SETTLEMENT_TOKEN, "balanceOf", [holder]),
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


_OPERATION_STATES = {0: "unset", 1: "pending", 2: "pending", 3: "executed"}
"""TimelockController.getOperationState (Unset, Waiting, Ready, Done) as replayed."""
_DONE_TIMESTAMP = 1
"""TimelockController.getTimestamp of an executed operation."""


def compare_timelock(
    reader: ChainReader, contracts: AuditedContracts, state: ReplayedState
) -> CheckResult:
    """`replay.timelock`: the minimum delay and each operation's state (and, when the
    scheduling block's time is known, the time it became ready) equal the timelock's."""
    items: list[SimpleComparison] = []
    if state.timelock_min_delay_s is not None:
        last = state.min_delay_changes[-1].ref if state.min_delay_changes else None
        items.append(
            (
                "timelock minimum delay",
                (ContractName.NETWORK_TIMELOCK, "getMinDelay", []),
                lambda out: {"min_delay_s": int(out[0])},
                {"min_delay_s": state.timelock_min_delay_s},
                last,
            )
        )
    latest = {op.operation_id: op for op in state.timelock_operations}
    for operation_id, operation in latest.items():
        replayed = "unset" if operation.state == "cancelled" else operation.state
        ready_at = {"executed": _DONE_TIMESTAMP, "unset": 0}.get(replayed, operation.ready_at)
        ref = operation.executed or operation.cancelled or operation.scheduled
        key = [bytes.fromhex(operation_id[2:])]
        items.append(
            (
                f"timelock operation {operation_id}",
                (ContractName.NETWORK_TIMELOCK, "getOperationState", key),
                lambda out: {"state": _OPERATION_STATES.get(int(out[0]), str(out[0]))},
                {"state": replayed},
                ref,
            )
        )
        if ready_at is not None:
            items.append(
                (
                    f"ready time of timelock operation {operation_id}",
                    (ContractName.NETWORK_TIMELOCK, "getTimestamp", key),
                    lambda out: {"ready_at": int(out[0])},
                    {"ready_at": ready_at},
                    ref,
                )
            )
    return compare_simple(
        "replay.timelock",
        "Timelock events replay to the timelock's minimum delay and operations",
        reader,
        contracts,
        items,
        f"minimum delay and {len(latest)} timelock operations replayed; all equal",
    )
