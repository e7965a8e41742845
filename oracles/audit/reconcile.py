"""Reconciliation of the lender's books (its export) with what the chain commits to.

- `reconcile.export`: the export is complete and well formed, for this chain and these
  contracts;
- `reconcile.agreements`: every agreement on-chain is in the books with the same opening
  fields (their abi-encoding hashes to the on-chain commitment);
- `reconcile.cycle_coverage`: every cycle root on-chain is reproduced by an exported
  cycle (a root the books cannot reproduce was never theirs);
- `reconcile.cycle_roots`: every exported cycle's entries, each with the private salt
  the export gives it, hash to the signed on-chain root, count and net positions (an entry
  or a salt changed after signing breaks this);
- `reconcile.line_states`: every credit-line state root on-chain is reproduced by the
  exported balances, and the export's own line-state record (the root, count and total
  the books signed) is the chain's (no commitments on-chain: nothing to reproduce, which
  passes). That each was committed with a quorum report is `invariant.cycle_quorum`'s;
- `reconcile.terms_sample`: for N agreements drawn with a seed the lender cannot choose
  (the audited block's hash), the stored canonical terms hash to the terms hash the
  books and the chain record.

Leaves, roots and commitments come from `leaves` (the contracts' definitions).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass

from sha3 import keccak_256

from node_api.kernel.chain import ContractName
from node_api.kernel.money import Fen
from oracles.audit.audited import AuditedContracts
from oracles.audit.checks import CheckResult, Evidence, JsonValue, make_check
from oracles.audit.export_format import FORMAT_VERSION, AgreementRecord
from oracles.audit.export_reader import BooksExport, ExportedCycle
from oracles.audit.leaves import (
    compute_agreement_commitment,
    compute_entry_leaf,
    compute_line_leaf,
    compute_root,
)
from oracles.audit.replay_state import AgreementReplay, CycleReplay, ReplayedState
from oracles.manifest import Manifest


def _exported_commitment(record: AgreementRecord) -> str:
    return compute_agreement_commitment(
        record.agreement_id,
        record.borrower_ref,
        record.terms_hash,
        record.product_code,
        Fen(record.limit_fen),
        record.apr_bps,
        record.opened_at,
    )


@dataclass(frozen=True)
class ReconcileContext:
    state: ReplayedState
    export: BooksExport
    contracts: AuditedContracts
    manifest: Manifest
    chain_id: int
    from_block: int = 0
    """First replayed block: books' anchorings before it are not judged (partial replay)."""


def check_export(ctx: ReconcileContext) -> CheckResult:
    export = ctx.export
    failures = [Evidence(values={"problem": problem}) for problem in export.problems]
    if export.header is not None and export.header.chain_id != ctx.chain_id:
        failures.append(
            Evidence(values={"problem": f"export is for chain {export.header.chain_id}"})
        )
    if export.manifest is not None:
        contracts = export.manifest.get("contracts", {})
        exported = {
            str(name): str(item.get("address", "")).lower()
            for name, item in (contracts.items() if isinstance(contracts, dict) else [])
            if isinstance(item, dict)
        }
        audited = {name: c.address.lower() for name, c in ctx.manifest.contracts.items()}
        if exported != audited:
            failures.append(
                Evidence(
                    values={
                        "problem": "the export's manifest names other contract addresses",
                        "export": exported,
                        "audited": audited,
                    }
                )
            )
    counts = export.counter.counts
    return make_check(
        "reconcile.export",
        "The lender's export is complete and for these contracts",
        failures,
        ok_message=(
            f"format v{FORMAT_VERSION} from {export.source}: {counts['agreement']} agreements, "
            f"{counts['cycle']} cycles, {counts['cycle_entry']} entries, "
            f"{counts['line_state']} line states"
        ),
        fail_message="{count} problems in the export; first: {first}",
    )


def check_agreements(ctx: ReconcileContext) -> CheckResult:
    address = ctx.contracts.addresses.get(ContractName.CREDIT_REGISTRY, "")
    failures = []
    for agreement in ctx.state.agreements.values():
        ref = agreement.opened
        exported = ctx.export.agreements.get(agreement.agreement_id)
        if exported is None:
            problem = f"agreement {agreement.agreement_id} is on-chain but not in the books"
        elif (
            agreement.opened is not None and _exported_commitment(exported) != agreement.commitment
        ):
            problem = (
                f"agreement {agreement.agreement_id}: the books' opening fields hash to "
                f"{_exported_commitment(exported)}, "
                f"on-chain commitment {agreement.commitment}"
            )
        else:
            continue
        failures.append(
            Evidence(
                ref.block if ref else None, ref.tx if ref else None, address, {"problem": problem}
            )
        )
    for record in ctx.export.agreements.values():
        anchored = record.anchored_block
        if (
            anchored is not None
            and anchored >= ctx.from_block
            and record.agreement_id not in ctx.state.agreements
        ):
            failures.append(
                Evidence(
                    record.anchored_block,
                    record.anchored_tx,
                    address,
                    {
                        "problem": f"agreement {record.agreement_id}: the books say anchored "
                        f"in block {record.anchored_block}, the chain has no such agreement",
                    },
                )
            )
    pending = sum(1 for a in ctx.export.agreements if a not in ctx.state.agreements)
    return make_check(
        "reconcile.agreements",
        "Every on-chain agreement is in the books with the same opening fields",
        failures,
        ok_message=(
            f"{len(ctx.state.agreements)} on-chain agreements found in the books with equal "
            f"commitments; {pending} exported agreements not yet on-chain"
        ),
        fail_message="{count} agreement discrepancies; first: {first}",
    )


def _onchain_cycles(state: ReplayedState) -> list[CycleReplay]:
    return [cycle for cycle in state.cycles.values() if cycle.proposed is not None]


def check_cycle_coverage(ctx: ReconcileContext) -> CheckResult:
    address = ctx.contracts.addresses.get(ContractName.CLEARING_HOUSE, "")
    failures = []
    for cycle in _onchain_cycles(ctx.state):
        exported = ctx.export.cycles.get(cycle.cycle_id)
        if exported is None or exported.record is None:
            assert cycle.proposed is not None
            failures.append(
                Evidence(
                    cycle.proposed.block,
                    cycle.proposed.tx,
                    address,
                    {
                        "problem": f"cycle {cycle.cycle_id}: on-chain root {cycle.entries_root} "
                        "is reproduced by no exported cycle",
                        "cycle_id": cycle.cycle_id,
                        "entries_root": cycle.entries_root,
                        "entry_count": cycle.entry_count,
                    },
                )
            )
    not_on_chain = sorted(set(ctx.export.cycles) - set(ctx.state.cycles))
    return make_check(
        "reconcile.cycle_coverage",
        "Every cycle root on-chain comes from the books",
        failures,
        ok_message=(
            f"{len(_onchain_cycles(ctx.state))} on-chain cycles all in the export; "
            f"{len(not_on_chain)} exported cycles not on-chain"
        ),
        fail_message="{count} on-chain cycles the books do not reproduce; first: {first}",
    )


def _cycle_problem(cycle: CycleReplay, exported: ExportedCycle) -> tuple[str, dict[str, JsonValue]]:
    """Why the exported entries do not reproduce the on-chain cycle ("" when they do)."""
    rows = exported.entries
    cycle_id = cycle.cycle_id
    leaves = [
        compute_entry_leaf(cycle_id, e, p, k, Fen(a), bytes.fromhex(salt[2:]))
        for e, p, k, a, salt in rows
    ]
    root = compute_root(leaves)
    sums: dict[int, int] = {}
    for _entry_id, partner_id, _kind, amount_fen, _salt in rows:
        sums[partner_id] = sums.get(partner_id, 0) + amount_fen
    chain_positions = dict(zip(cycle.partner_ids, cycle.net_positions_fen, strict=True))
    partners = {
        str(p): {"books_fen": sums.get(p, 0), "chain_fen": chain_positions.get(p, 0)}
        for p in sorted(set(sums) | set(chain_positions))
        if sums.get(p, 0) != chain_positions.get(p, 0)
    }
    values: dict[str, JsonValue] = {
        "cycle_id": cycle.cycle_id,
        "chain_root": cycle.entries_root,
        "recomputed_root": root,
        "declared_root": exported.record.entries_root if exported.record else None,
        "chain_entry_count": cycle.entry_count,
        "exported_entry_count": len(rows),
        "partners_differing": partners,
    }
    duplicates = len(rows) - len({row[0] for row in rows})
    if (
        root == cycle.entries_root
        and len(rows) == cycle.entry_count
        and not partners
        and not duplicates
    ):
        return "", values
    detail = f"entries hash to {root}, the signed root on-chain is {cycle.entries_root}"
    if root == cycle.entries_root:
        detail = f"{len(rows)} entries for entryCount {cycle.entry_count}"
    if partners:
        detail += "; net positions differ for partners " + ", ".join(
            f"{p} (books {v['books_fen']} fen, chain {v['chain_fen']} fen)"
            for p, v in partners.items()
        )
    if duplicates:
        detail += f"; {duplicates} duplicate entry ids"
    return f"cycle {cycle.cycle_id}: {detail}", values


def check_cycle_roots(ctx: ReconcileContext) -> CheckResult:
    address = ctx.contracts.addresses.get(ContractName.CLEARING_HOUSE, "")
    failures = []
    compared = 0
    for cycle in _onchain_cycles(ctx.state):
        exported = ctx.export.cycles.get(cycle.cycle_id)
        if exported is None or exported.record is None:
            continue
        compared += 1
        problem, values = _cycle_problem(cycle, exported)
        if problem:
            assert cycle.proposed is not None
            failures.append(
                Evidence(
                    cycle.proposed.block, cycle.proposed.tx, address, {"problem": problem, **values}
                )
            )
    return make_check(
        "reconcile.cycle_roots",
        "Every exported cycle's entries reproduce the signed on-chain root",
        failures,
        ok_message=(
            f"{compared} cycles recomputed from their entries; roots, counts and positions equal"
        ),
        fail_message="{count} cycles whose entries differ from what was signed; first: {first}",
    )


def check_line_states(ctx: ReconcileContext) -> CheckResult:
    address = ctx.contracts.addresses.get(ContractName.CREDIT_REGISTRY, "")
    failures = []
    for committed in ctx.state.line_states.values():
        exported = ctx.export.line_states.get(committed.cycle_id)
        ref = committed.ref
        if exported is None or exported.record is None:
            problem = (
                f"line state of cycle {committed.cycle_id}: root {committed.root} "
                "is reproduced by no export"
            )
            failures.append(Evidence(ref.block, ref.tx, address, {"problem": problem}))
            continue
        leaves = [compute_line_leaf(a, committed.cycle_id, Fen(o)) for a, o in exported.leaves]
        root = compute_root(leaves)
        total_fen = sum(o for _a, o in exported.leaves)
        values: dict[str, JsonValue] = {
            "chain_root": committed.root,
            "recomputed_root": root,
            "chain_count": committed.count,
            "exported_count": len(leaves),
            "chain_total_fen": committed.total_outstanding_fen,
            "exported_total_fen": total_fen,
        }
        on_chain = (committed.root, committed.count, committed.total_outstanding_fen)
        record = exported.record
        signed = (record.root, record.leaf_count, record.total_outstanding_fen)
        values["exported_root"] = record.root
        if (root, len(leaves), total_fen) != on_chain:
            problem = (
                f"line state of cycle {committed.cycle_id}: balances hash to {root} "
                f"({len(leaves)} lines, {total_fen} fen), on-chain {committed.root} "
                f"({committed.count} lines, {committed.total_outstanding_fen} fen)"
            )
            failures.append(Evidence(ref.block, ref.tx, address, {"problem": problem, **values}))
        elif signed != on_chain:
            problem = (
                f"line state of cycle {committed.cycle_id}: the export's record says root "
                f"{record.root} ({record.leaf_count} lines, {record.total_outstanding_fen} fen), "
                f"on-chain {committed.root}"
            )
            failures.append(Evidence(ref.block, ref.tx, address, {"problem": problem, **values}))
    if not ctx.state.line_states:
        ok = f"no line-state commitments on-chain; {len(ctx.export.line_states)} in the export"
    else:
        ok = f"{len(ctx.state.line_states)} line-state roots reproduced from the exported balances"
    return make_check(
        "reconcile.line_states",
        "Every credit-line state root on-chain is reproduced by the books",
        failures,
        ok_message=ok,
        fail_message="{count} line-state roots not reproduced; first: {first}",
    )


def is_canonical_json(text: str) -> bool:
    """Whether `text` is already in canonical form (sorted keys, no whitespace, ASCII)."""
    try:
        document = json.loads(text)
    except ValueError:
        return False
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return canonical == text


def _terms_problem(agreement: AgreementReplay, export: BooksExport) -> str:
    exported = export.agreements.get(agreement.agreement_id)
    if exported is None:
        return "not in the books"
    if exported.terms_hash != agreement.terms_hash:
        return f"books record terms hash {exported.terms_hash}, chain {agreement.terms_hash}"
    terms = export.terms.get(agreement.terms_hash)
    if terms is None:
        return f"no stored terms with hash {agreement.terms_hash}"
    stored_hash = "0x" + str(keccak_256(terms.canonical_terms.encode("utf-8")).hexdigest())
    if stored_hash != agreement.terms_hash:
        return f"stored terms of {terms.product_code} v{terms.version} hash to {stored_hash}"
    if not is_canonical_json(terms.canonical_terms):
        return f"stored terms of {terms.product_code} v{terms.version} are not canonical JSON"
    return ""


def check_terms_sample(ctx: ReconcileContext, sample_size: int, seed: str) -> CheckResult:
    address = ctx.contracts.addresses.get(ContractName.CREDIT_REGISTRY, "")
    population = sorted(
        (a for a in ctx.state.agreements.values() if a.opened is not None),
        key=lambda agreement: agreement.agreement_id,
    )
    # A public, reproducible draw: anyone re-running the audit at this block draws the same.
    drawn = random.Random(int(seed, 16)).sample(population, min(sample_size, len(population)))
    failures = []
    for agreement in drawn:
        problem = _terms_problem(agreement, ctx.export)
        if problem:
            ref = agreement.opened
            assert ref is not None
            failures.append(
                Evidence(
                    ref.block,
                    ref.tx,
                    address,
                    {
                        "problem": f"agreement {agreement.agreement_id}: {problem}",
                        "terms_hash": agreement.terms_hash,
                    },
                )
            )
    return make_check(
        "reconcile.terms_sample",
        "Sampled agreements' terms hash to their stored canonical terms",
        failures,
        ok_message=f"{len(drawn)} agreements drawn with seed {seed[:18]}…: terms hashes reproduce",
        fail_message="{count} of the sampled agreements fail; first: {first}",
        context=[Evidence(values={"seed": seed, "sample": [a.agreement_id for a in drawn[:20]]})],
    )


def build_reconcile_checks(
    ctx: ReconcileContext | None, sample_size: int, seed: str
) -> list[CheckResult]:
    """Every `reconcile.*` check, or one failing `reconcile.books` without an export."""
    if ctx is None:
        return [
            make_check(
                "reconcile.books",
                "The lender's books reconcile with the chain",
                [Evidence(values={"problem": "no export (--export) or API (--api) given"})],
                ok_message="",
                fail_message="reconciliation not run: {first}",
            )
        ]
    return [
        check_export(ctx),
        check_agreements(ctx),
        check_cycle_coverage(ctx),
        check_cycle_roots(ctx),
        check_line_states(ctx),
        check_terms_sample(ctx, sample_size, seed),
    ]
