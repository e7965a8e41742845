"""Invariant checks over the replayed history.

- `invariant.cycle_balanced`: each cycle's net positions sum to zero;
- `invariant.cycle_quorum`: each cycle (and each quorum-reported line state) was signed
  by a quorum of the signer set in force at its block (see `quorum`);
- `invariant.settled_cycles`: a funded cycle was funded in full, and once every creditor
  has claimed, claimed = funded; a defaulted cycle paid no claim, and once every debtor
  that funded has its refund, refunded = funded;
- `invariant.agreement_transitions`: no agreement moved along a transition the registry's
  state machine forbids (or from a status it was not in);
- `invariant.cycle_lifecycle`: cycle, partner and pause events follow their state machines;
- `invariant.cycle_defaults`: a default only of a Finalized cycle after its funding
  deadline, naming exactly the unfunded debtors and their debts; a refund only in a
  Defaulted cycle, once, of a funder's deposit, to its registered payout;
- `invariant.role_holders_known`: every account ever granted a role is a known address;
- `invariant.signers_known`: every member of every signer set is a known signer.

Known addresses are the manifest's deployer and contracts, every address in the
constructor arguments and the recorded post-deploy calls (the relayer, the admin), plus
the auditor's allowlist. Known signers are the quorum's constructor signers plus the
allowlist. A signer-set change is an admin action the report lists; it fails nothing by
itself, only when it installs a signer nobody declared.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from eth_utils.address import is_address

from node_api.kernel.chain import ContractName, CycleStatus
from oracles.audit.audited import AuditedContracts
from oracles.audit.checks import CheckResult, Evidence, make_check
from oracles.audit.quorum import QuorumFinding, ReportedContract, judge_cycle, judge_line_state
from oracles.audit.replay_state import (
    DEFAULTS_CHECK,
    LIFECYCLE_CHECK,
    TRANSITIONS_CHECK,
    CycleReplay,
    ReplayedState,
)
from oracles.audit.source_verify import DecodedCall, DeploymentFacts
from oracles.chain import RpcTransaction
from oracles.compiler import AbiEntry
from oracles.manifest import Manifest


@dataclass(frozen=True)
class KnownAddresses:
    """Lowercase addresses the auditor accepts as role holders and as signers."""

    role_holders: frozenset[str]
    signers: frozenset[str]


def _addresses_in(call: DecodedCall | None) -> set[str]:
    """Every address-typed argument value (arrays included) of a decoded call."""
    found: set[str] = set()
    if call is None:
        return found
    for name, abi_type in call.types.items():
        if not abi_type.startswith("address"):
            continue
        value = call.args[name]
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, str) and is_address(item):
                found.add(item.lower())
    return found


def compute_known_addresses(
    manifest: Manifest, facts: DeploymentFacts, allowlist: Iterable[str]
) -> KnownAddresses:
    allowed = {address.lower() for address in allowlist}
    holders = {manifest.deployer.lower(), *allowed}
    holders |= {contract.address.lower() for contract in manifest.contracts.values()}
    signers = set(allowed)
    for verification in facts.verifications:
        holders |= _addresses_in(verification.constructor)
        if verification.name == ContractName.ORACLE_QUORUM and verification.constructor is not None:
            initial = verification.constructor.args.get("initialSigners", [])
            signers |= {str(signer).lower() for signer in initial}
    for _contract, call in facts.post_deploy_calls:
        holders |= _addresses_in(call)
    return KnownAddresses(frozenset(holders), frozenset(signers))


def _anomaly_check(state: ReplayedState, check_id: str, title: str, ok: str) -> CheckResult:
    failures = [
        Evidence(a.ref.block, a.ref.tx, a.address, {"problem": a.problem, **a.values})
        for a in state.anomalies
        if a.check_id == check_id
    ]
    return make_check(
        check_id, title, failures, ok_message=ok, fail_message="{count} violations; first: {first}"
    )


def check_cycle_balanced(state: ReplayedState, contracts: AuditedContracts) -> CheckResult:
    address = contracts.addresses.get(ContractName.CLEARING_HOUSE, "")
    failures = []
    for cycle in state.cycles.values():
        total_fen = sum(cycle.net_positions_fen)
        if cycle.proposed is not None and total_fen != 0:
            failures.append(
                Evidence(
                    cycle.proposed.block,
                    cycle.proposed.tx,
                    address,
                    {
                        "problem": f"cycle {cycle.cycle_id}: net positions sum to {total_fen} fen",
                        "partner_ids": list(cycle.partner_ids),
                        "net_positions_fen": list(cycle.net_positions_fen),
                    },
                )
            )
    return make_check(
        "invariant.cycle_balanced",
        "Every cycle's net positions sum to zero",
        failures,
        ok_message=f"{len(state.cycles)} cycles balance to zero",
        fail_message="{count} unbalanced cycles; first: {first}",
    )


def _finding_evidence(finding: QuorumFinding) -> Evidence:
    return Evidence(
        finding.ref.block,
        finding.ref.tx,
        finding.address,
        {
            "subject": finding.subject,
            "signers": list(finding.signers),
            "signer_set_version": finding.signer_set_version,
            **({"problem": f"{finding.subject}: {finding.problem}"} if finding.problem else {}),
        },
    )


def check_cycle_quorum(
    state: ReplayedState,
    contracts: AuditedContracts,
    transactions: dict[str, RpcTransaction | None],
    chain_id: int,
) -> CheckResult:
    """`invariant.cycle_quorum` from the proposing transactions (fetched by the caller)."""
    findings: list[QuorumFinding] = []
    if contracts.has(ContractName.CLEARING_HOUSE):
        house = _reported(contracts, ContractName.CLEARING_HOUSE, chain_id)
        for cycle in state.cycles.values():
            if cycle.proposed is not None:
                tx = transactions.get(cycle.proposed.tx)
                findings.append(judge_cycle(cycle, tx, state, house))
    if contracts.has(ContractName.CREDIT_REGISTRY):
        registry = _reported(contracts, ContractName.CREDIT_REGISTRY, chain_id)
        for line_state in state.line_states.values():
            tx = transactions.get(line_state.ref.tx)
            findings.append(judge_line_state(line_state, tx, state, registry))
    failed = [_finding_evidence(f) for f in findings if f.problem]
    return make_check(
        "invariant.cycle_quorum",
        "Every cycle was proposed with a valid quorum of the signer set in force",
        failed,
        ok_message=f"{len(findings)} quorum reports verified from their transactions",
        fail_message="{count} reports without a valid quorum; first: {first}",
        context=[_finding_evidence(f) for f in findings[:5]],
    )


def _reported(contracts: AuditedContracts, name: str, chain_id: int) -> ReportedContract:
    return ReportedContract(_abi_of(contracts, name), chain_id, contracts.addresses[name])


def _abi_of(contracts: AuditedContracts, name: str) -> list[AbiEntry]:
    return contracts.abis[name]


def get_proposal_txs(state: ReplayedState) -> list[str]:
    """Transactions whose calldata the quorum check needs."""
    hashes = [c.proposed.tx for c in state.cycles.values() if c.proposed is not None]
    return hashes + [ls.ref.tx for ls in state.line_states.values()]


def _funded_cycle_problem(cycle: CycleReplay) -> str:
    creditors = {
        p for p, net in zip(cycle.partner_ids, cycle.net_positions_fen, strict=True) if net > 0
    }
    if cycle.funded_fen != cycle.total_due_fen:
        return f"funded {cycle.funded_fen} fen of {cycle.total_due_fen} due"
    if cycle.refunded_fen:
        return f"refunded {cycle.refunded_fen} fen from a funded cycle"
    if cycle.claimed_fen > cycle.funded_fen:
        return f"claimed {cycle.claimed_fen} fen, more than funded {cycle.funded_fen}"
    if creditors <= set(cycle.claims) and cycle.claimed_fen != cycle.funded_fen:
        return f"all creditors claimed {cycle.claimed_fen} fen, funded {cycle.funded_fen}"
    return ""


def _defaulted_cycle_problem(cycle: CycleReplay) -> str:
    funders = set(cycle.fundings)
    if cycle.claimed_fen:
        return f"claimed {cycle.claimed_fen} fen from a defaulted cycle"
    if cycle.funded_fen + cycle.unfunded_fen != cycle.total_due_fen:
        return (
            f"funded {cycle.funded_fen} fen and {cycle.unfunded_fen} fen unfunded, "
            f"but {cycle.total_due_fen} fen due"
        )
    if cycle.refunded_fen > cycle.funded_fen:
        return f"refunded {cycle.refunded_fen} fen, more than funded {cycle.funded_fen}"
    if funders <= set(cycle.refunds) and cycle.refunded_fen != cycle.funded_fen:
        return f"every funder refunded {cycle.refunded_fen} fen, funded {cycle.funded_fen}"
    return ""


def _is_closed(cycle: CycleReplay) -> bool:
    """Whether every payment out of the cycle was made (all claims, or all refunds)."""
    if cycle.status == CycleStatus.DEFAULTED:
        return set(cycle.fundings) <= set(cycle.refunds)
    creditors = {
        p for p, net in zip(cycle.partner_ids, cycle.net_positions_fen, strict=True) if net > 0
    }
    return creditors <= set(cycle.claims)


def check_settled_cycles(state: ReplayedState, contracts: AuditedContracts) -> CheckResult:
    """`invariant.settled_cycles`: a Funded cycle was funded in full and never pays out
    more than funded (once every creditor claimed, exactly that); a Defaulted cycle pays
    no claim and refunds at most what was funded (once every funder is refunded, exactly
    that), and its funded plus unfunded amounts make what was due."""
    address = contracts.addresses.get(ContractName.CLEARING_HOUSE, "")
    failures = []
    closed = 0
    for cycle in state.cycles.values():
        if cycle.proposed is None:
            continue
        if cycle.status == CycleStatus.FUNDED:
            problem = _funded_cycle_problem(cycle)
        elif cycle.status == CycleStatus.DEFAULTED:
            problem = _defaulted_cycle_problem(cycle)
        else:
            continue
        closed += _is_closed(cycle)
        if problem:
            failures.append(
                Evidence(
                    cycle.proposed.block,
                    cycle.proposed.tx,
                    address,
                    {"problem": f"cycle {cycle.cycle_id}: {problem}"},
                )
            )
    return make_check(
        "invariant.settled_cycles",
        "Funded equals claimed for every settled cycle, refunded for every defaulted one",
        failures,
        ok_message=f"{closed} settled cycles: funded = claimed (or refunded)",
        fail_message="{count} cycles where funded and paid out disagree; first: {first}",
    )


def check_role_holders(state: ReplayedState, known: KnownAddresses) -> CheckResult:
    failures = []
    for change in state.role_changes:
        if not change.granted or change.account.lower() in known.role_holders:
            continue
        holds = change.account.lower() in state.role_members.get(
            (change.contract, change.role), set()
        )
        failures.append(
            Evidence(
                change.ref.block,
                change.ref.tx,
                change.address,
                {
                    "problem": f"{change.contract} granted {state.role_name(change.role)} "
                    f"to unknown {change.account} (by {change.sender}; "
                    f"{'still held' if holds else 'revoked since'})",
                    "role": change.role,
                    "account": change.account,
                    "granted_by": change.sender,
                },
            )
        )
    grants = sum(change.granted for change in state.role_changes)
    return make_check(
        "invariant.role_holders_known",
        "Every role was granted only to known addresses",
        failures,
        ok_message=f"{grants} role grants, all to known addresses",
        fail_message="{count} grants to unknown addresses; first: {first}",
    )


def check_signers_known(
    state: ReplayedState, known: KnownAddresses, contracts: AuditedContracts
) -> CheckResult:
    address = contracts.addresses.get(ContractName.ORACLE_QUORUM, "")
    failures = []
    for signer_set in state.signer_sets:
        unknown = [s for s in signer_set.signers if s.lower() not in known.signers]
        if unknown:
            failures.append(
                Evidence(
                    signer_set.ref.block,
                    signer_set.ref.tx,
                    address,
                    {
                        "problem": f"signer set v{signer_set.version} installs unknown signers "
                        + ", ".join(unknown),
                        "version": signer_set.version,
                        "unknown_signers": unknown,
                    },
                )
            )
    return make_check(
        "invariant.signers_known",
        "Every signer set holds only known signers",
        failures,
        ok_message=f"{len(state.signer_sets)} signer sets, all members known",
        fail_message="{count} signer sets with unknown signers; first: {first}",
    )


def _defaults_summary(state: ReplayedState) -> str:
    defaulted = [c for c in state.cycles.values() if c.status == CycleStatus.DEFAULTED]
    refunds = sum(len(c.refunds) for c in defaulted)
    return (
        f"{len(defaulted)} defaulted cycles, each after its funding deadline naming exactly "
        f"its unfunded debtors; {refunds} refunds, each of a funder's deposit"
    )


def build_invariant_checks(
    state: ReplayedState,
    contracts: AuditedContracts,
    known: KnownAddresses,
    transactions: dict[str, RpcTransaction | None],
    chain_id: int,
) -> Sequence[CheckResult]:
    return [
        check_cycle_balanced(state, contracts),
        check_cycle_quorum(state, contracts, transactions, chain_id),
        check_settled_cycles(state, contracts),
        _anomaly_check(
            state,
            TRANSITIONS_CHECK,
            "No agreement transition the state machine forbids",
            f"{len(state.agreements)} agreements, every transition legal",
        ),
        _anomaly_check(
            state,
            LIFECYCLE_CHECK,
            "Cycles, partners and pauses follow their state machines",
            f"{len(state.cycles)} cycles, every step in order",
        ),
        _anomaly_check(
            state,
            DEFAULTS_CHECK,
            "Defaults and refunds follow the member-default rules",
            _defaults_summary(state),
        ),
        check_role_holders(state, known),
        check_signers_known(state, known, contracts),
    ]
