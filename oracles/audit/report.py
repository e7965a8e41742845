"""The audit report: report.json for machines and report.html for people.

report.json holds one object per check (`id`, `title`, `result` pass/fail, `message`,
`evidence` with block, tx, address and values), plus the admin actions (timelock
operations and role changes included), the contracts' verification details, the
signer-set history, the money of every cycle (due, funded, claimed, refunded, still
held, with its status, business date and attempt) and the governance (the timelock's
minimum delay, proposers, executors and operations; who administers each governed
contract). report.html shows the same on one self-contained page: inline CSS, no
script, no external resource, every value escaped, so it opens offline and can be
archived or mailed as a single file.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TypedDict

from node_api.kernel.chain import CycleStatus
from node_api.kernel.errors import CreditNetValueError
from node_api.kernel.money import Fen
from oracles.audit.checks import CheckJson, CheckResult, Evidence, JsonValue
from oracles.audit.custody import held_fen
from oracles.audit.governance_checks import GovernanceSummary
from oracles.audit.replay_state import AdminAction, CycleReplay, SignerSet, TimelockOperation
from oracles.audit.source_verify import ContractVerification
from settlement.netting import get_cycle_attempt, get_cycle_date

REPORT_FORMAT: Final = "creditnet-audit-report"
REPORT_VERSION: Final = 1

_CSS: Final = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1200px;color:#1b1f24;
padding:0 1em}
h1{margin:0 0 .2em}h2{margin-top:2em;border-bottom:1px solid #d0d7de;padding-bottom:.2em}
table{border-collapse:collapse;width:100%;margin:.5em 0}
th,td{border:1px solid #d0d7de;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f6f8fa}code,pre{font:12px ui-monospace,monospace;word-break:break-all}
pre{white-space:pre-wrap;margin:0}.pass{color:#1a7f37;font-weight:600}
.fail{color:#cf222e;font-weight:600}.banner{padding:.8em 1em;border-radius:6px;margin:1em 0}
.banner.pass{background:#dafbe1}.banner.fail{background:#ffebe9}details summary{cursor:pointer}
.muted{color:#57606a}
"""


ReportSummary = dict[str, int | float | str]
"""The report's figures: counts, `sources` (where the sources came from) and the
`elapsed_<phase>_s` timings."""


class SignerSetJson(TypedDict):
    version: int
    signers: list[str]
    threshold: int
    block: int
    tx: str


class AdminActionJson(TypedDict):
    block: int
    tx: str
    contract: str
    address: str
    category: str
    description: str
    sender: str
    function: str
    privileged: bool
    timelock_operation: str


class CycleJson(TypedDict):
    """One cycle's money, in fen (`held_fen`: what the clearing house still holds for it)."""

    cycle_id: int
    business_date: str | None
    attempt: int | None
    status: str
    due_fen: Fen
    funded_fen: Fen
    claimed_fen: Fen
    refunded_fen: Fen
    held_fen: Fen
    funding_deadline: int
    defaulted_at: int | None
    defaulters: list[int]
    proposed_block: int | None
    proposed_tx: str | None


class TimelockOperationJson(TypedDict):
    id: str
    state: str
    calls: list[str]
    delay_s: int
    min_delay_s: int | None
    scheduled_block: int | None
    scheduled_tx: str | None
    ready_at: int | None
    executed_block: int | None
    executed_tx: str | None
    cancelled_block: int | None
    cancelled_tx: str | None


class GovernanceJson(TypedDict):
    timelock: str
    min_delay_s: int | None
    proposers: list[str]
    executors: list[str]
    """`0x000…0` means anyone may execute a ready operation."""
    cancellers: list[str]
    admins: dict[str, list[str]]
    pausers: dict[str, list[str]]
    operations: list[TimelockOperationJson]


class ContractJson(TypedDict):
    name: str
    address: str
    match: str
    deploy_block: int
    deploy_tx: str
    constructor_args: Mapping[str, JsonValue] | None
    immutables: dict[str, str]
    chain_metadata_ipfs: str | None
    build_metadata_ipfs: str | None
    chain_compiler: str | None
    sources_differing_from_manifest: list[str]
    problems: list[str]


class ReportJson(TypedDict):
    """report.json (`format` and `version` name this layout; never change a key)."""

    format: str
    version: int
    passed: bool
    chain_id: int
    rpc: str
    manifest: str
    from_block: int
    partial_replay: bool
    """Whether the replay began after the deployment (state before it seeded from views)."""
    audited_block: int
    audited_block_hash: str
    summary: ReportSummary
    checks: list[CheckJson]
    admin_actions: list[AdminActionJson]
    contracts: list[ContractJson]
    signer_sets: list[SignerSetJson]
    cycles: list[CycleJson]
    governance: GovernanceJson | None
    """None when the deployment has no NetworkTimelock."""


def _status_label(status: int) -> str:
    try:
        return CycleStatus(status).label
    except ValueError:
        return str(status)


def cycle_json(cycle: CycleReplay) -> CycleJson:
    """A replayed cycle's money, with its business date and attempt when its id has them."""
    try:
        business_date: str | None = get_cycle_date(cycle.cycle_id).isoformat()
        attempt: int | None = get_cycle_attempt(cycle.cycle_id)
    except CreditNetValueError:
        business_date, attempt = None, None
    return {
        "cycle_id": cycle.cycle_id,
        "business_date": business_date,
        "attempt": attempt,
        "status": _status_label(cycle.status),
        "due_fen": cycle.total_due_fen,
        "funded_fen": cycle.funded_fen,
        "claimed_fen": cycle.claimed_fen,
        "refunded_fen": cycle.refunded_fen,
        "held_fen": held_fen(cycle),
        "funding_deadline": cycle.funding_deadline,
        "defaulted_at": cycle.defaulted_at,
        "defaulters": list(cycle.defaulters),
        "proposed_block": cycle.proposed.block if cycle.proposed else None,
        "proposed_tx": cycle.proposed.tx if cycle.proposed else None,
    }


def _operation_json(operation: TimelockOperation) -> TimelockOperationJson:
    scheduled, executed, cancelled = operation.scheduled, operation.executed, operation.cancelled
    return {
        "id": operation.operation_id,
        "state": operation.state,
        "calls": [call.description for call in operation.calls],
        "delay_s": operation.delay_s,
        "min_delay_s": operation.min_delay_s,
        "scheduled_block": scheduled.block if scheduled else None,
        "scheduled_tx": scheduled.tx if scheduled else None,
        "ready_at": operation.ready_at,
        "executed_block": executed.block if executed else None,
        "executed_tx": executed.tx if executed else None,
        "cancelled_block": cancelled.block if cancelled else None,
        "cancelled_tx": cancelled.tx if cancelled else None,
    }


def governance_json(summary: GovernanceSummary) -> GovernanceJson:
    return {
        "timelock": summary.timelock,
        "min_delay_s": summary.min_delay_s,
        "proposers": list(summary.proposers),
        "executors": list(summary.executors),
        "cancellers": list(summary.cancellers),
        "admins": {name: list(holders) for name, holders in summary.admins.items()},
        "pausers": {name: list(holders) for name, holders in summary.pausers.items()},
        "operations": [_operation_json(op) for op in summary.operations],
    }


@dataclass
class AuditReport:
    """Everything an audit found."""

    chain_id: int
    rpc: str
    manifest: str
    audited_block: int
    audited_block_hash: str
    from_block: int
    partial_replay: bool
    checks: list[CheckResult]
    admin_actions: list[AdminAction] = field(default_factory=list)
    contracts: list[ContractVerification] = field(default_factory=list)
    signer_sets: list[SignerSet] = field(default_factory=list)
    summary: ReportSummary = field(default_factory=dict)
    cycles: list[CycleReplay] = field(default_factory=list)
    governance: GovernanceSummary | None = None

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(check.passed for check in self.checks)

    def failed_checks(self) -> list[CheckResult]:
        return [check for check in self.checks if not check.passed]

    def to_json(self) -> ReportJson:
        return {
            "format": REPORT_FORMAT,
            "version": REPORT_VERSION,
            "passed": self.passed,
            "chain_id": self.chain_id,
            "rpc": self.rpc,
            "manifest": self.manifest,
            "audited_block": self.audited_block,
            "audited_block_hash": self.audited_block_hash,
            "from_block": self.from_block,
            "partial_replay": self.partial_replay,
            "summary": self.summary,
            "checks": [check.to_json() for check in self.checks],
            "admin_actions": [_action_json(action) for action in self.admin_actions],
            "contracts": [_contract_json(item) for item in self.contracts],
            "signer_sets": [
                {
                    "version": s.version,
                    "signers": list(s.signers),
                    "threshold": s.threshold,
                    "block": s.ref.block,
                    "tx": s.ref.tx,
                }
                for s in self.signer_sets
            ],
            "cycles": [cycle_json(cycle) for cycle in self.cycles],
            "governance": governance_json(self.governance) if self.governance else None,
        }


def _action_json(action: AdminAction) -> AdminActionJson:
    return {
        "block": action.ref.block,
        "tx": action.ref.tx,
        "contract": action.contract,
        "address": action.address,
        "category": action.category,
        "description": action.description,
        "sender": action.sender,
        "function": action.function,
        "privileged": action.privileged,
        "timelock_operation": action.operation,
    }


def _contract_json(item: ContractVerification) -> ContractJson:
    return {
        "name": item.name,
        "address": item.address,
        "match": item.match.value,
        "deploy_block": item.deploy_block,
        "deploy_tx": item.deploy_tx,
        "constructor_args": item.constructor.args if item.constructor else None,
        "immutables": item.immutables,
        "chain_metadata_ipfs": item.chain_metadata_cid,
        "build_metadata_ipfs": item.build_metadata_cid,
        "chain_compiler": item.chain_compiler,
        "sources_differing_from_manifest": list(item.sources_differing),
        "problems": list(item.problems),
    }


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _json_block(value: Any) -> str:
    return f"<pre>{_e(json.dumps(value, indent=1, default=str))}</pre>"


def _badge(passed: bool) -> str:
    return '<span class="pass">PASS</span>' if passed else '<span class="fail">FAIL</span>'


def _evidence_rows(items: Iterable[Evidence]) -> str:
    rows = "".join(
        f"<tr><td>{_e(item.block if item.block is not None else '')}</td>"
        f"<td><code>{_e(item.tx or '')}</code></td><td><code>{_e(item.address or '')}</code></td>"
        f"<td>{_json_block(item.values)}</td></tr>"
        for item in items
    )
    return f"<table><tr><th>block</th><th>tx</th><th>address</th><th>values</th></tr>{rows}</table>"


def _check_row(check: CheckResult) -> str:
    evidence = ""
    if check.evidence:
        more = f" (+{check.evidence_omitted} more)" if check.evidence_omitted else ""
        evidence = (
            f"<details{'' if check.passed else ' open'}><summary>evidence: "
            f"{len(check.evidence)}{more}</summary>{_evidence_rows(check.evidence)}</details>"
        )
    return (
        f'<tr id="{_e(check.id)}"><td><code>{_e(check.id)}</code></td>'
        f"<td>{_e(check.title)}</td>"
        f"<td>{_badge(check.passed)}</td><td>{_e(check.message)}{evidence}</td></tr>"
    )


def _table(headers: Iterable[str], rows: Iterable[Iterable[Any]], *, raw: bool = False) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    cells = "".join(
        "<tr>" + "".join(f"<td>{c if raw else _e(c)}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><tr>{head}</tr>{cells}</table>"


def render_html(report: AuditReport) -> str:
    """The report as one self-contained HTML page."""
    verdict = "pass" if report.passed else "fail"
    failed = len(report.failed_checks())
    contracts = _table(
        ["contract", "address", "match", "metadata (chain / published)", "constructor arguments"],
        [
            [
                _e(c.name),
                f"<code>{_e(c.address)}</code>",
                _badge(c.match.value == "exact") + f" {_e(c.match.value)}",
                f"<code>{_e(c.chain_metadata_cid)}</code><br><code>{_e(c.build_metadata_cid)}</code>",
                _json_block(c.constructor.args if c.constructor else None),
            ]
            for c in report.contracts
        ],
        raw=True,
    )
    actions = _table(
        ["block", "tx", "contract", "kind", "action", "sender", "timelock operation"],
        [
            [a.ref.block, a.ref.tx, a.contract, a.category, a.description, a.sender, a.operation]
            for a in report.admin_actions
        ],
    )
    signers = _table(
        ["version", "threshold", "signers", "block", "tx"],
        [
            [s.version, s.threshold, ", ".join(s.signers), s.ref.block, s.ref.tx]
            for s in report.signer_sets
        ],
    )
    checks = "".join(_check_row(check) for check in report.checks)
    return "\n".join(
        [
            '<!doctype html><html lang="en"><head><meta charset="utf-8">',
            f"<title>CreditNet audit, chain {_e(report.chain_id)} "
            f"block {_e(report.audited_block)}</title>",
            f"<style>{_CSS}</style></head><body><h1>CreditNet audit</h1>",
            _render_context(report),
            f'<div class="banner {verdict}">{_badge(report.passed)} '
            f"{len(report.checks) - failed} of {len(report.checks)} checks passed"
            f"{f', {failed} failed' if failed else ''}.</div>",
            _render_failures(report),
            _table(["figure", "value"], sorted(report.summary.items())),
            "<h2>Checks</h2><table><tr><th>id</th><th>check</th><th>result</th>"
            f"<th>finding</th></tr>{checks}</table>",
            f"<h2>Contracts</h2>{contracts}",
            f"<h2>Cycles ({len(report.cycles)}), money in fen</h2>{_render_cycles(report)}",
            f"<h2>Governance</h2>{_render_governance(report.governance)}",
            f"<h2>Admin actions ({len(report.admin_actions)})</h2>{actions}",
            f"<h2>Signer-set history</h2>{signers}",
            "</body></html>",
        ]
    )


def _render_cycles(report: AuditReport) -> str:
    rows = [cycle_json(cycle) for cycle in report.cycles]
    return _table(
        [
            "cycle",
            "date",
            "attempt",
            "status",
            "due",
            "funded",
            "claimed",
            "refunded",
            "held",
            "defaulters",
        ],
        [
            [
                r["cycle_id"],
                r["business_date"] or "",
                "" if r["attempt"] is None else r["attempt"],
                r["status"],
                r["due_fen"],
                r["funded_fen"],
                r["claimed_fen"],
                r["refunded_fen"],
                r["held_fen"],
                ", ".join(str(p) for p in r["defaulters"]),
            ]
            for r in rows
        ],
    )


def _render_governance(summary: GovernanceSummary | None) -> str:
    if summary is None:
        return '<p class="fail">No NetworkTimelock in the deployment.</p>'
    data = governance_json(summary)
    anyone = "0x" + "00" * 20
    executors = ["anyone (" + e + ")" if e.lower() == anyone else e for e in data["executors"]]
    parameters = _table(
        ["parameter", "value"],
        [
            ["timelock", data["timelock"]],
            ["minimum delay (s)", data["min_delay_s"]],
            ["proposers", ", ".join(data["proposers"])],
            ["executors", ", ".join(executors)],
            ["cancellers", ", ".join(data["cancellers"])],
            *[[f"{name} admins", ", ".join(h)] for name, h in data["admins"].items()],
            *[[f"{name} pausers", ", ".join(h)] for name, h in data["pausers"].items()],
        ],
    )
    operations = _table(
        [
            "operation",
            "state",
            "calls",
            "delay (s)",
            "scheduled",
            "ready at",
            "executed / cancelled",
        ],
        [
            [
                op["id"],
                op["state"],
                "; ".join(op["calls"]),
                op["delay_s"],
                f"{op['scheduled_block']} {op['scheduled_tx'] or ''}",
                op["ready_at"] if op["ready_at"] is not None else "",
                f"{op['executed_block'] or op['cancelled_block'] or ''} "
                f"{op['executed_tx'] or op['cancelled_tx'] or ''}",
            ]
            for op in data["operations"]
        ],
    )
    return f"{parameters}<h3>Timelock operations ({len(data['operations'])})</h3>{operations}"


def _render_failures(report: AuditReport) -> str:
    """The failed checks first, each linking to its row with the evidence."""
    failed = report.failed_checks()
    if not failed:
        return ""
    items = "".join(
        f'<li><a href="#{_e(check.id)}"><code>{_e(check.id)}</code></a>: {_e(check.message)}</li>'
        for check in failed
    )
    return f"<h2>Failed checks</h2><ul>{items}</ul>"


def _render_context(report: AuditReport) -> str:
    """The line under the title: which chain, RPC, manifest and blocks were audited."""
    partial = " (partial replay)" if report.partial_replay else ""
    return (
        f'<p class="muted">chain {_e(report.chain_id)} via {_e(report.rpc)} · '
        f"manifest {_e(report.manifest)} · blocks {_e(report.from_block)}–"
        f"{_e(report.audited_block)}{_e(partial)} · block hash "
        f"<code>{_e(report.audited_block_hash)}</code></p>"
    )


def write_report(report: AuditReport, out_dir: Path) -> tuple[Path, Path]:
    """Write report.json and report.html into `out_dir` (created if needed)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, html_path = out_dir / "report.json", out_dir / "report.html"
    json_path.write_text(
        json.dumps(report.to_json(), indent=2, default=str) + "\n", encoding="utf-8"
    )
    html_path.write_text(render_html(report), encoding="utf-8")
    return json_path, html_path
