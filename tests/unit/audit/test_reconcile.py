"""Reconciliation of an export with the replayed chain, on synthetic histories."""

from __future__ import annotations

import json
from typing import Any

from sha3 import keccak_256

from oracles.audit.audited import AuditedContracts
from oracles.audit.export_format import (
    AgreementRecord,
    CycleEntriesRecord,
    CycleRecord,
    LineStateLeavesRecord,
    LineStateRecord,
    ManifestRecord,
    ProductTermsRecord,
    encode_export,
)
from oracles.audit.export_reader import read_export
from oracles.audit.history import replay
from oracles.audit.leaves import compute_entry_leaf, compute_line_leaf, compute_root
from oracles.audit.reconcile import ReconcileContext, build_reconcile_checks
from oracles.audit.replay_state import ReplayedState
from oracles.manifest import DeployedContract, Manifest
from settlement.salts import LeafSalts
from tests.unit.audit.factory import (
    ADDRESSES,
    EventMaker,
    agreement_id,
    fresh_state,
    opened,
    proposed,
)

SEED = "0x" + "5e" * 32
SALTS = LeafSalts(b"test-reconcile-leaf-salt-secret")
Row = tuple[int, int, int, int, str]


def _rows(*values: tuple[int, int, int, int], cycle_id: int = 7) -> list[Row]:
    """Export rows: the four leaf values and the entry's salt (0x-hex), as the books give it."""
    return [(e, p, k, a, "0x" + SALTS.salt(cycle_id, e, p).hex()) for e, p, k, a in values]


ROWS = _rows((1, 1, 3, 700), (2, 2, 1, -500), (3, 2, 1, -200))
TERMS = '{"apr_bps":1800,"product_code":"P1","version":1}'
LOOSE_TERMS = '{"version": 1, "product_code": "P1"}'


def _root(rows: list[Row], cycle_id: int = 7) -> str:
    return compute_root(
        [compute_entry_leaf(cycle_id, e, p, k, a, bytes.fromhex(s[2:])) for e, p, k, a, s in rows]
    )


def _manifest() -> Manifest:
    contracts = {
        name: DeployedContract(
            address=a, deploy_block=1, deploy_tx="0x" + "00" * 32, constructor_args="0x"
        )
        for name, a in ADDRESSES.items()
    }
    return Manifest(
        chain_id=31337,
        contracts=contracts,
        compiler_version="0.8.30",
        settings={},
        source_hashes={},
        deployer="0x" + "99" * 20,
        created_at_block=1,
    )


def _hash(text: str) -> str:
    return "0x" + str(keccak_256(text.encode()).hexdigest())


def _state(*, line_state: bool = False, terms: str = TERMS) -> ReplayedState:
    make = EventMaker()
    events = [
        opened(make, 1, terms_hash=_hash(terms)),
        proposed(make, 7, {1: 700, 2: -700}, root=_root(ROWS), entry_count=len(ROWS)),
    ]
    if line_state:
        leaves = [compute_line_leaf(agreement_id(1), 7, 120_000)]
        events.append(
            make(
                "CreditRegistry",
                "LineStateCommitted",
                cycleId=7,
                root=compute_root(leaves),
                count=1,
                totalOutstandingFen=120_000,
                submitter="0x" + "01" * 20,
            )
        )
    return replay(events, fresh_state())


def _agreement(state: ReplayedState, **changes: Any) -> AgreementRecord:
    on_chain = state.agreements[agreement_id(1)]
    record = AgreementRecord(
        agreement_id=on_chain.agreement_id,
        borrower_ref=on_chain.borrower_ref,
        terms_hash=on_chain.terms_hash,
        product_code=on_chain.product_code,
        limit_fen=on_chain.opened_limit_fen,
        apr_bps=on_chain.apr_bps,
        opened_at=on_chain.opened_at,
    )
    return record.model_copy(update=changes)


def _records(
    state: ReplayedState,
    *,
    rows: list[Row] = ROWS,
    terms: str = TERMS,
    extra: list[Any] | None = None,
) -> list[Any]:
    terms_hash = _hash(terms)
    return [
        ManifestRecord(manifest=json.loads(_manifest().model_dump_json())),
        ProductTermsRecord(
            product_code="P1", version=1, terms_hash=terms_hash, canonical_terms=terms
        ),
        _agreement(state),
        CycleRecord(
            cycle_id=7,
            entry_count=len(rows),
            entries_root=_root(ROWS),
            partner_ids=[1, 2],
            net_positions_fen=[700, -700],
        ),
        CycleEntriesRecord(cycle_id=7, entries=rows),
        *(extra or []),
    ]


def _failures(state: ReplayedState, records: list[Any] | None) -> dict[str, str]:
    context = None
    if records is not None:
        export = read_export(b"".join(encode_export(31337, records)).splitlines(), "test")
        contracts = AuditedContracts(
            addresses=dict(ADDRESSES), codecs={}, abis={}, deploy_blocks={}
        )
        context = ReconcileContext(state, export, contracts, _manifest(), 31337)
    checks = build_reconcile_checks(context, sample_size=5, seed=SEED)
    return {check.id: check.message for check in checks if not check.passed}


def test_faithful_books_reconcile() -> None:
    state = _state()
    assert _failures(state, _records(state)) == {}


def test_entry_changed_after_signing_fails_the_cycle_roots_with_both_roots_and_partners() -> None:
    state = _state()
    tampered = _rows((1, 1, 3, 700), (2, 2, 1, -450), (3, 2, 1, -250))
    failures = _failures(state, _records(state, rows=tampered))
    assert list(failures) == ["reconcile.cycle_roots"]
    assert _root(tampered) in failures["reconcile.cycle_roots"]
    assert _root(ROWS) in failures["reconcile.cycle_roots"]


def test_entry_count_and_positions_must_match_the_chain() -> None:
    state = _state()
    moved = _rows((1, 1, 3, 700), (2, 2, 1, -500), (3, 1, 1, -200))
    message = _failures(state, _records(state, rows=moved))["reconcile.cycle_roots"]
    assert "net positions differ for partners 1 (books 500 fen, chain 700 fen)" in message


def test_a_salt_changed_after_signing_fails_the_cycle_roots() -> None:
    state = _state()
    resalted = [*ROWS[:2], (*ROWS[2][:4], "0x" + SALTS.salt(7, 3, 1).hex())]
    failures = _failures(state, _records(state, rows=resalted))
    assert list(failures) == ["reconcile.cycle_roots"]
    assert _root(resalted) in failures["reconcile.cycle_roots"]


def test_cycle_on_chain_without_exported_entries_fails_the_coverage() -> None:
    state = _state()
    records = [r for r in _records(state) if not isinstance(r, CycleRecord | CycleEntriesRecord)]
    failures = _failures(state, records)
    assert list(failures) == ["reconcile.cycle_coverage"]
    assert (
        f"cycle 7: on-chain root {_root(ROWS)} is reproduced by no exported cycle"
        in failures["reconcile.cycle_coverage"]
    )


def test_line_state_root_is_recomputed_from_exported_balances() -> None:
    state = _state(line_state=True)
    leaves = [(agreement_id(1), 120_000)]
    root = compute_root([compute_line_leaf(agreement_id(1), 7, 120_000)])
    record = LineStateRecord(cycle_id=7, leaf_count=1, total_outstanding_fen=120_000, root=root)
    balances = LineStateLeavesRecord(cycle_id=7, leaves=leaves)
    assert _failures(state, _records(state, extra=[record, balances])) == {}
    wrong = [LineStateLeavesRecord(cycle_id=7, leaves=[(agreement_id(1), 119_999)])]
    assert list(_failures(state, _records(state, extra=[record, *wrong]))) == [
        "reconcile.line_states"
    ]
    missing = _failures(state, _records(state))
    assert "is reproduced by no export" in missing["reconcile.line_states"]
    other = record.model_copy(update={"root": "0x" + "00" * 32})
    signed_other = _failures(state, _records(state, extra=[other, balances]))
    assert list(signed_other) == ["reconcile.line_states"]
    assert "the export's record says root 0x" + "00" * 32 in signed_other["reconcile.line_states"]


def test_terms_that_are_not_canonical_json_fail_even_when_their_hash_matches() -> None:
    state = _state(terms=LOOSE_TERMS)
    failures = _failures(state, _records(state, terms=LOOSE_TERMS))
    assert list(failures) == ["reconcile.terms_sample"]
    assert "not canonical JSON" in failures["reconcile.terms_sample"]


def test_on_chain_agreement_missing_from_the_books_fails_and_pending_ones_do_not() -> None:
    state = _state()
    records = [r for r in _records(state) if not isinstance(r, AgreementRecord)]
    pending = _agreement(state, agreement_id="0x" + "a7" * 32)
    failures = _failures(state, [*records, pending])
    assert set(failures) == {"reconcile.agreements", "reconcile.terms_sample"}
    assert "is on-chain but not in the books" in failures["reconcile.agreements"]


def test_books_claiming_an_anchoring_the_chain_lacks_fail() -> None:
    state = _state()
    ghost = _agreement(
        state, agreement_id="0x" + "a7" * 32, anchored_block=40, anchored_tx="0x" + "ee" * 32
    )
    failures = _failures(state, [*_records(state), ghost])
    assert list(failures) == ["reconcile.agreements"]
    assert "the books say anchored in block 40" in failures["reconcile.agreements"]


def test_export_for_other_contracts_fails_the_export_check() -> None:
    state = _state()
    records = _records(state)
    other = json.loads(_manifest().model_dump_json())
    other["contracts"]["ClearingHouse"]["address"] = "0x" + "98" * 20
    records[0] = ManifestRecord(manifest=other)
    assert list(_failures(state, records)) == ["reconcile.export"]


def test_without_books_reconciliation_fails_as_not_run() -> None:
    assert _failures(_state(), None) == {
        "reconcile.books": "reconciliation not run: no export (--export) or API (--api) given"
    }
