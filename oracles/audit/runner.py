"""One audit, start to finish: sources, deployment, replay, invariants, governance, books.

`run_audit(config)` reads only the chain RPC, the manifest, the published sources and
the lender's export (file or API); it writes nothing (the CLI writes the report). The
chain is read at one pinned block so every comparison describes the same moment.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

from eth_utils.address import to_checksum_address

from node_api.kernel.chain import ContractName, CycleStatus
from node_api.kernel.errors import ConfigurationError
from oracles.audit.audited import AuditedContracts
from oracles.audit.chain_reader import ChainReader
from oracles.audit.checks import CheckResult, Evidence, make_check
from oracles.audit.custody import check_custody
from oracles.audit.events import UndecodedLog, decode_logs, stamp_events
from oracles.audit.exits import check_exits
from oracles.audit.export_reader import BooksExport, read_export_api, read_export_path
from oracles.audit.governance_checks import build_governance_checks, summarize_governance
from oracles.audit.history import replay
from oracles.audit.invariants import (
    build_invariant_checks,
    compute_known_addresses,
    get_proposal_txs,
)
from oracles.audit.manifest_check import check_manifest
from oracles.audit.provenance import (
    ModelTrail,
    check_provenance,
    fetch_trail_api,
    read_trail_path,
)
from oracles.audit.recompile import (
    DEFAULT_CACHE_DIR,
    Recompiled,
    build_standard_input,
    load_sources,
    recompile,
)
from oracles.audit.reconcile import ReconcileContext, build_reconcile_checks
from oracles.audit.replay_state import AdminAction, ReplayedState
from oracles.audit.report import AuditReport, ReportSummary
from oracles.audit.seeding import seed_before_window
from oracles.audit.source_verify import build_source_checks, verify_sources
from oracles.audit.state_views import compare_all
from oracles.chain import get_redacted_url
from oracles.manifest import Manifest
from oracles.tx_sender import JsonRpcClient


@dataclass(frozen=True)
class AuditConfig:
    """What to audit and against what. `api_key` is an auditor API key: never reported."""

    rpc_url: str
    manifest_path: Path
    export_path: Path | None = None
    api_url: str | None = None
    api_key: str | None = None
    from_block: int | None = None
    sample_size: int = 100
    allowlist: tuple[str, ...] = ()
    standard_input_path: Path | None = None
    contracts_dir: Path | None = None
    cache_dir: Path | None = DEFAULT_CACHE_DIR
    accept_partial: bool = False
    confirmations: int = 0
    trail_path: Path | None = None
    """The lender's model trail as a file, for an audit of an export file."""


class AuditProgress(Protocol):
    """What the CLI shows while an audit runs (the replay gets a progress bar)."""

    def stage(self, name: str) -> None: ...

    def start_replay(self, total_blocks: int) -> None: ...

    def advance(self, blocks: int) -> None: ...


class SilentProgress:
    def stage(self, name: str) -> None:
        return None

    def start_replay(self, total_blocks: int) -> None:
        return None

    def advance(self, blocks: int) -> None:
        return None


def load_manifest(path: Path) -> Manifest:
    try:
        return Manifest.model_validate_json(path.read_bytes())
    except OSError:
        raise ConfigurationError(f"manifest {path} not readable", field="manifest") from None
    except ValueError:
        raise ConfigurationError(f"{path} is not a deployment manifest", field="manifest") from None


@dataclass
class _Timer:
    phases_s: dict[str, float]

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        yield
        self.phases_s[name] = round(time.perf_counter() - started, 3)


def _events_check(undecoded: list[UndecodedLog], event_count: int) -> CheckResult:
    failures = [
        Evidence(
            log.ref.block,
            log.ref.tx,
            log.address,
            {
                "problem": f"{log.contract} emitted a log its published ABI does not declare "
                f"(topic0 {log.topic0}, {log.reason})",
            },
        )
        for log in undecoded
    ]
    return make_check(
        "replay.events",
        "Every log decodes with the published ABIs",
        failures,
        ok_message=f"{event_count} events decoded",
        fail_message="{count} undecodable logs; first: {first}",
    )


def _fill_senders(reader: ChainReader, actions: list[AdminAction]) -> list[AdminAction]:
    """Admin actions with the sending account of their transaction where none is known."""
    txs = reader.fetch_transactions([a.ref.tx for a in actions if not a.sender])
    filled = []
    for action in actions:
        tx = txs.get(action.ref.tx)
        if not action.sender and tx is not None and tx.get("from"):
            action = replace(action, sender=to_checksum_address(str(tx["from"])))
        filled.append(action)
    return filled


def _load_export(config: AuditConfig) -> BooksExport | None:
    if config.export_path is not None:
        return read_export_path(config.export_path)
    if config.api_url is not None:
        if not config.api_key:
            raise ConfigurationError("--api needs --key (an auditor API key)", field="key")
        return read_export_api(config.api_url, config.api_key)
    return None


def _load_trail(config: AuditConfig) -> ModelTrail | None:
    if config.trail_path is not None:
        return read_trail_path(config.trail_path)
    if config.api_url is not None and config.api_key:
        return fetch_trail_api(config.api_url, config.api_key)
    return None


def _replay(
    reader: ChainReader,
    contracts: AuditedContracts,
    from_block: int,
    partial: bool,
    progress: AuditProgress,
) -> tuple[ReplayedState, list[UndecodedLog]]:
    progress.start_replay(reader.pinned_block - from_block + 1)
    logs = reader.fetch_logs(list(contracts.addresses.values()), from_block, progress.advance)
    events, undecoded = decode_logs(logs, contracts.by_address())
    events = stamp_events(events, reader.fetch_block_timestamps)
    state = ReplayedState(
        contracts=contracts.lower_addresses(),
        role_names=contracts.role_names(),
        abis=dict(contracts.abis),
    )
    if partial:
        seed_before_window(reader, contracts, state, events, from_block - 1)
    return replay(events, state), undecoded


def run_audit(config: AuditConfig, progress: AuditProgress | None = None) -> AuditReport:
    """Run every check; the report's `passed` is True only if all pass."""
    progress = progress or SilentProgress()
    timer = _Timer({})
    manifest = load_manifest(config.manifest_path)
    reader = ChainReader(JsonRpcClient(config.rpc_url, timeout_s=60.0))
    chain_id = reader.fetch_chain_id()
    reader.pin_head(config.confirmations)
    progress.stage("recompiling the published sources")
    with timer.phase("recompile"):
        sources = load_sources(config.standard_input_path, config.contracts_dir)
        recompiled: Recompiled = recompile(
            build_standard_input(sources, manifest.settings), config.cache_dir
        )
    progress.stage("verifying deployed code")
    with timer.phase("source_verification"):
        facts = verify_sources(reader, manifest, recompiled)
        checks = [check_manifest(reader, manifest, chain_id)]
        checks += build_source_checks(
            facts, recompiled, manifest, accept_partial=config.accept_partial
        )
        checks.append(check_exits(recompiled, facts, accept_partial=config.accept_partial))
    contracts = AuditedContracts.build(manifest, recompiled)
    deploy_block = min(contracts.deploy_blocks.values(), default=0)
    from_block = deploy_block if config.from_block is None else config.from_block
    partial = from_block > deploy_block
    with timer.phase("replay"):
        state, undecoded = _replay(reader, contracts, from_block, partial, progress)
    progress.stage("comparing with the contracts' views")
    with timer.phase("views"):
        checks.append(_events_check(undecoded, state.event_count))
        checks += compare_all(reader, contracts, state)
    progress.stage("checking invariants and governance")
    with timer.phase("invariants"):
        known = compute_known_addresses(manifest, facts, config.allowlist)
        transactions = reader.fetch_transactions(get_proposal_txs(state))
        checks += build_invariant_checks(state, contracts, known, transactions, chain_id)
        checks.append(check_custody(reader, contracts, state, from_block))
        # governance is part of the invariants phase (the phases are the report's figures)
        actions = _fill_senders(reader, state.admin_actions)
        state.admin_actions = actions
        governance = summarize_governance(reader, contracts, state, facts, manifest)
        checks += build_governance_checks(reader, contracts, state, manifest, governance)
    progress.stage("reconciling the books")
    with timer.phase("reconcile"):
        export = _load_export(config)
        context = (
            ReconcileContext(state, export, contracts, manifest, chain_id, from_block)
            if export is not None
            else None
        )
        checks += build_reconcile_checks(context, config.sample_size, reader.pinned_hash)
        if export is not None:
            registry = contracts.addresses.get(ContractName.CREDIT_REGISTRY, "")
            trail = functools.partial(_load_trail, config)
            checks.append(check_provenance(state.agreements.values(), export, trail, registry))
    return AuditReport(
        chain_id=chain_id,
        rpc=get_redacted_url(config.rpc_url),
        manifest=str(config.manifest_path),
        audited_block=reader.pinned_block,
        audited_block_hash=reader.pinned_hash,
        from_block=from_block,
        partial_replay=partial,
        checks=checks,
        admin_actions=actions,
        contracts=facts.verifications,
        signer_sets=state.signer_sets,
        summary=_summary(state, timer.phases_s, sources.origin),
        cycles=sorted(state.cycles.values(), key=lambda cycle: cycle.cycle_id),
        governance=governance,
    )


def _summary(state: ReplayedState, phases_s: dict[str, float], origin: str) -> ReportSummary:
    return {
        "events": state.event_count,
        "agreements": len(state.agreements),
        "cycles": len(state.cycles),
        "cycles_defaulted": sum(c.status == CycleStatus.DEFAULTED for c in state.cycles.values()),
        "cycles_rejected": sum(c.status == CycleStatus.REJECTED for c in state.cycles.values()),
        "partners": len(state.partners),
        "line_states": len(state.line_states),
        "signer_sets": len(state.signer_sets),
        "role_changes": len(state.role_changes),
        "admin_actions": len(state.admin_actions),
        "timelock_operations": len(state.timelock_operations),
        "sources": origin,
        **{f"elapsed_{name}_s": seconds for name, seconds in phases_s.items()},
    }
