"""Governance checks: the admin of the governed contracts is the NetworkTimelock.

The deploy plan (`oracles.deploy_plan`) hands DEFAULT_ADMIN_ROLE and PAUSER_ROLE of the
OracleQuorum, the CreditRegistry and the ClearingHouse to the NetworkTimelock and the
deployer then renounces its own admin role there, so every later admin action (a
signer-set change, a role grant or revocation, a dispute resolution, a pause) is
announced by `CallScheduled` at least the minimum delay before it runs.

- `governance.handover`: after the plan's last call (the manifest's `created_at_block`),
  on every governed contract the timelock holds both roles and no other account holds
  DEFAULT_ADMIN_ROLE (replayed from the role events; read with `hasRole` at that block
  on a partial replay, which needs an archive node like the seeding does);
- `governance.admin_via_timelock`: every action needing the admin or pauser role on a
  governed contract, outside the deployment's own transactions, was sent by the
  timelock. Events that carry their sender (role changes, pauses) are judged by it;
  the others (SignerSetChanged, DisputeResolved) by a `CallExecuted` of the same
  transaction that called that function on that contract (see `history_timelock`).
  Renouncing one's own role needs no admin and is not judged;
- `governance.timelock_operations`: every operation was scheduled with at least the
  minimum delay in force, ran only once ready, and was executed or cancelled only
  while pending (anomalies recorded by the replay).

`summarize_governance` reads what the report shows of the timelock: its minimum delay,
proposers, executors and cancellers (`hasRole` at the audited block over the constructor's
accounts and every account the role events name), and who holds the admin and pauser
roles of each governed contract now.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final

from eth_utils.address import is_address, to_checksum_address

from node_api.kernel.chain import AccessRole, ContractName
from oracles.audit.audited import AuditedContracts
from oracles.audit.chain_reader import ChainReader
from oracles.audit.checks import CheckResult, Evidence, JsonValue, make_check
from oracles.audit.replay_state import TIMELOCK_CHECK, ReplayedState, TimelockOperation
from oracles.audit.source_verify import DeploymentFacts
from oracles.audit.view_calls import CallSpec, run_views
from oracles.deploy_plan import GOVERNED
from oracles.manifest import Manifest

ADMIN_ROLE: Final = "0x" + AccessRole.DEFAULT_ADMIN_ROLE.hash.hex()
PAUSER_ROLE: Final = "0x" + AccessRole.PAUSER_ROLE.hash.hex()
HANDED_OVER: Final = ((ADMIN_ROLE, "DEFAULT_ADMIN_ROLE"), (PAUSER_ROLE, "PAUSER_ROLE"))
TIMELOCK_ROLES: Final = (
    AccessRole.PROPOSER_ROLE,
    AccessRole.EXECUTOR_ROLE,
    AccessRole.CANCELLER_ROLE,
)


def deployment_txs(manifest: Manifest) -> frozenset[str]:
    """The deployment's own transactions (lowercase hashes): deploys and plan calls."""
    hashes = [c.deploy_tx for c in manifest.contracts.values()]
    hashes += [call.tx for call in manifest.post_deploy_calls]
    return frozenset(h.lower() for h in hashes)


def _timelock(contracts: AuditedContracts) -> str:
    return contracts.addresses.get(ContractName.NETWORK_TIMELOCK, "")


def _governed(contracts: AuditedContracts) -> list[str]:
    return [name for name in GOVERNED if contracts.has(name)]


def check_admin_via_timelock(
    state: ReplayedState, contracts: AuditedContracts, manifest: Manifest
) -> CheckResult:
    """`governance.admin_via_timelock` (see the module); run after the senders of the
    admin actions are filled in from their transactions."""
    timelock = _timelock(contracts).lower()
    deployment = deployment_txs(manifest)
    governed = set(_governed(contracts))
    failures: list[Evidence] = []
    judged = 0
    for action in state.admin_actions:
        if not action.privileged or action.contract not in governed:
            continue
        if action.ref.tx.lower() in deployment:
            continue
        judged += 1
        if timelock and action.sender.lower() == timelock:
            continue
        what = f"{action.contract}.{action.function}" if action.function else action.contract
        failures.append(
            Evidence(
                action.ref.block,
                action.ref.tx,
                action.address,
                {
                    "problem": f"{what} sent directly by {action.sender or 'an unknown sender'}, "
                    f"not through the timelock: {action.description}",
                    "function": action.function,
                    "sender": action.sender,
                    "timelock": _timelock(contracts) or None,
                },
            )
        )
    return make_check(
        "governance.admin_via_timelock",
        "Every admin action on a governed contract after the deployment came through the timelock",
        failures,
        ok_message=f"{judged} admin actions after the deployment, all executed by the timelock",
        fail_message="{count} admin actions bypassed the timelock; first: {first}",
    )


def _members_after_plan(state: ReplayedState, block: int) -> dict[tuple[str, str], set[str]]:
    """Role members (lowercase) at the end of `block`, from the replayed role events."""
    members: dict[tuple[str, str], set[str]] = {}
    for change in state.role_changes:
        if change.ref.block > block:
            break
        holders = members.setdefault((change.contract, change.role.lower()), set())
        if change.granted:
            holders.add(change.account.lower())
        else:
            holders.discard(change.account.lower())
    return members


def _members_by_view(
    reader: ChainReader,
    contracts: AuditedContracts,
    accounts: Sequence[str],
    block: int,
) -> dict[tuple[str, str], set[str]] | None:
    """The same, from `hasRole` at `block` over `accounts`; None when a view fails."""
    keys = [
        (name, role, account)
        for name in _governed(contracts)
        for role, _label in HANDED_OVER
        for account in accounts
    ]
    calls: list[CallSpec] = [
        (name, "hasRole", [bytes.fromhex(role[2:]), account]) for name, role, account in keys
    ]
    members: dict[tuple[str, str], set[str]] = {}
    for (name, role, account), output in zip(
        keys, run_views(reader, contracts, calls, block), strict=True
    ):
        if output is None:
            return None
        if output[0]:
            members.setdefault((name, role), set()).add(account.lower())
    return members


def check_handover(
    reader: ChainReader,
    contracts: AuditedContracts,
    state: ReplayedState,
    manifest: Manifest,
    context: Sequence[Evidence] = (),
) -> CheckResult:
    """`governance.handover` (see the module); `context` is shown when it passes."""
    block = manifest.created_at_block
    last_tx = manifest.post_deploy_calls[-1].tx if manifest.post_deploy_calls else None
    timelock = _timelock(contracts)
    failures: list[Evidence] = []
    governed = _governed(contracts)
    if not timelock:
        failures += [
            Evidence(
                block,
                None,
                contracts.addresses[name],
                {"problem": f"no NetworkTimelock in the deployment: {name}'s admin acts at once"},
            )
            for name in governed
        ]
        members: dict[tuple[str, str], set[str]] | None = {}
    elif state.partial:
        members = _members_by_view(reader, contracts, [timelock, manifest.deployer], block)
    else:
        members = _members_after_plan(state, block)
    if members is None:
        failures.append(
            Evidence(
                block, None, timelock, {"problem": f"the roles at block {block} could not be read"}
            )
        )
        members = {}
    for name in governed if timelock else []:
        address = contracts.addresses[name]
        for role, label in HANDED_OVER:
            holders = members.get((name, role), set())
            if timelock.lower() not in holders:
                failures.append(
                    Evidence(
                        block,
                        last_tx,
                        address,
                        {"problem": f"the timelock lacks {label} on {name} after the deployment"},
                    )
                )
        for lowered in sorted(members.get((name, ADMIN_ROLE), set()) - {timelock.lower()}):
            holder = to_checksum_address(lowered)
            who = "the deployer" if lowered == manifest.deployer.lower() else "account"
            failures.append(
                Evidence(
                    block,
                    last_tx,
                    address,
                    {
                        "problem": f"{who} {holder} still holds DEFAULT_ADMIN_ROLE on {name} "
                        f"after the deployment's last call (block {block})",
                        "account": holder,
                    },
                )
            )
    return make_check(
        "governance.handover",
        "The deployment handed the governed contracts' admin and pauser roles to the timelock",
        failures,
        ok_message=f"{len(governed)} governed contracts administered by the timelock {timelock} "
        f"since block {block}",
        fail_message="{count} handover problems; first: {first}",
        context=context,
    )


def check_timelock_operations(state: ReplayedState, contracts: AuditedContracts) -> CheckResult:
    """`governance.timelock_operations` from the replay's anomalies."""
    failures = [
        Evidence(a.ref.block, a.ref.tx, a.address, {"problem": a.problem, **a.values})
        for a in state.anomalies
        if a.check_id == TIMELOCK_CHECK
    ]
    operations = state.timelock_operations
    executed = sum(op.state == "executed" for op in operations)
    cancelled = sum(op.state == "cancelled" for op in operations)
    minimum = state.timelock_min_delay_s
    return make_check(
        TIMELOCK_CHECK,
        "Every timelock operation waited at least the minimum delay",
        failures,
        ok_message=f"{len(operations)} timelock operations ({executed} executed, {cancelled} "
        f"cancelled), each scheduled with at least the minimum delay ({minimum} s now)",
        fail_message="{count} timelock problems; first: {first}",
    )


@dataclass
class GovernanceSummary:
    """What the report shows of the timelock and of who administers the contracts now."""

    timelock: str
    min_delay_s: int | None
    proposers: list[str] = field(default_factory=list)
    executors: list[str] = field(default_factory=list)
    cancellers: list[str] = field(default_factory=list)
    admins: dict[str, list[str]] = field(default_factory=dict)
    """Governed contract -> DEFAULT_ADMIN_ROLE holders at the audited block."""
    pausers: dict[str, list[str]] = field(default_factory=dict)
    operations: list[TimelockOperation] = field(default_factory=list)

    def to_values(self) -> dict[str, JsonValue]:
        return {
            "timelock": self.timelock,
            "min_delay_s": self.min_delay_s,
            "proposers": list(self.proposers),
            "executors": list(self.executors),
            "cancellers": list(self.cancellers),
            "admins": {k: list(v) for k, v in self.admins.items()},
            "pausers": {k: list(v) for k, v in self.pausers.items()},
        }


def _candidates(state: ReplayedState, facts: DeploymentFacts, manifest: Manifest) -> list[str]:
    """Accounts that may hold a role: the deployer, every address of the constructors
    and plan calls, and every account the role events name."""
    addresses: list[object] = [manifest.deployer]
    decoded = [v.constructor for v in facts.verifications] + [
        c for _n, c in facts.post_deploy_calls
    ]
    for call in decoded:
        if call is None:
            continue
        for name, abi_type in call.types.items():
            if abi_type.startswith("address"):
                value = call.args[name]
                addresses += value if isinstance(value, list) else [value]
    addresses += [change.account for change in state.role_changes]
    addresses += list(state.contracts.values())
    checksummed = (to_checksum_address(str(a)) for a in addresses if is_address(str(a)))
    return list(dict.fromkeys(checksummed))


def _holders(
    reader: ChainReader,
    contracts: AuditedContracts,
    pairs: Iterable[tuple[str, str]],
    accounts: Sequence[str],
) -> dict[tuple[str, str], list[str]]:
    """(contract, role hash) -> accounts holding it at the audited block."""
    keys = [(name, role, account) for name, role in pairs for account in accounts]
    calls: list[CallSpec] = [
        (name, "hasRole", [bytes.fromhex(role[2:]), account]) for name, role, account in keys
    ]
    holders: dict[tuple[str, str], list[str]] = {}
    for (name, role, account), output in zip(
        keys, run_views(reader, contracts, calls), strict=True
    ):
        members = holders.setdefault((name, role), [])
        if output is not None and output[0]:
            members.append(account)
    return holders


def summarize_governance(
    reader: ChainReader,
    contracts: AuditedContracts,
    state: ReplayedState,
    facts: DeploymentFacts,
    manifest: Manifest,
) -> GovernanceSummary | None:
    """The timelock's parameters and the governed contracts' admins (None without one)."""
    timelock = _timelock(contracts)
    if not timelock:
        return None
    accounts = _candidates(state, facts, manifest)
    roles = {role: "0x" + role.hash.hex() for role in TIMELOCK_ROLES}
    pairs = [(ContractName.NETWORK_TIMELOCK.value, h) for h in roles.values()]
    pairs += [(name, role) for name in _governed(contracts) for role, _label in HANDED_OVER]
    holders = _holders(reader, contracts, pairs, accounts)
    (delay,) = run_views(reader, contracts, [(ContractName.NETWORK_TIMELOCK, "getMinDelay", [])])
    on_timelock = ContractName.NETWORK_TIMELOCK.value
    return GovernanceSummary(
        timelock=timelock,
        min_delay_s=int(delay[0]) if delay is not None else state.timelock_min_delay_s,
        proposers=holders.get((on_timelock, roles[AccessRole.PROPOSER_ROLE]), []),
        executors=holders.get((on_timelock, roles[AccessRole.EXECUTOR_ROLE]), []),
        cancellers=holders.get((on_timelock, roles[AccessRole.CANCELLER_ROLE]), []),
        admins={n: holders.get((n, ADMIN_ROLE), []) for n in _governed(contracts)},
        pausers={n: holders.get((n, PAUSER_ROLE), []) for n in _governed(contracts)},
        operations=list(state.timelock_operations),
    )


def build_governance_checks(
    reader: ChainReader,
    contracts: AuditedContracts,
    state: ReplayedState,
    manifest: Manifest,
    summary: GovernanceSummary | None,
) -> list[CheckResult]:
    context = [Evidence(address=summary.timelock, values=summary.to_values())] if summary else []
    return [
        check_handover(reader, contracts, state, manifest, context),
        check_admin_via_timelock(state, contracts, manifest),
        check_timelock_operations(state, contracts),
    ]
