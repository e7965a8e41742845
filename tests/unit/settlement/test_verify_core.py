"""The partner-side check names exactly which entry fails, and why."""

from __future__ import annotations

from dataclasses import replace

import pytest

from node_api.kernel.chain import CycleStatus, EntryKind
from node_api.kernel.errors import CreditNetValueError
from settlement.entries import SettlementEntry
from settlement.netting import ClosedCycle, close_cycle
from settlement.salts import LeafSalts
from settlement.verify_core import (
    EntryFailure,
    FailureReason,
    ProvenEntry,
    VerificationReport,
    prove_entries,
    verify_partner_entries,
)

CYCLE, BANK, LENDER, OTHER_BANK = 31, 2, 1, 3
SALTS = LeafSalts(b"test-verify-core-leaf-salt-secret")
ROWS = [
    (1, BANK, EntryKind.PRINCIPAL_FUNDED, -7_000),
    (2, OTHER_BANK, EntryKind.PRINCIPAL_FUNDED, -2_000),
    (3, LENDER, EntryKind.PRINCIPAL_FUNDED, 9_000),
    (4, BANK, EntryKind.INTEREST_SHARE, 450),
    (5, LENDER, EntryKind.INTEREST_SHARE, -450),
    (6, BANK, EntryKind.PRINCIPAL_REPAID, 1_200),
    (7, LENDER, EntryKind.PRINCIPAL_REPAID, -1_200),
]


def make_close() -> ClosedCycle:
    entries = [
        SettlementEntry(
            CYCLE, entry_id, partner, kind, amount, SALTS.salt(CYCLE, entry_id, partner)
        )
        for entry_id, partner, kind, amount in ROWS
    ]
    return close_cycle(CYCLE, entries)


def bank_entries(close: ClosedCycle) -> list[ProvenEntry]:
    return [
        ProvenEntry(item, tuple(close.proof_for_entry(item.entry_id)))
        for item in close.entries
        if item.partner_id == BANK
    ]


def check(
    close: ClosedCycle,
    proven: list[ProvenEntry],
    *,
    status: CycleStatus = CycleStatus.FINALIZED,
    net_position_fen: int | None = None,
) -> VerificationReport:
    return verify_partner_entries(
        partner_id=BANK,
        cycle_id=CYCLE,
        root=close.root,
        net_position_fen=(
            close.net_position_of(BANK) if net_position_fen is None else net_position_fen
        ),
        cycle_status=status,
        proven_entries=proven,
    )


def test_honest_entries_of_a_finalized_cycle_pass() -> None:
    close = make_close()

    report = check(close, bank_entries(close))

    assert report.ok
    assert report.failures == ()
    assert (report.entry_count, report.proven_count) == (3, 3)
    assert report.proven_total_fen == report.net_position_fen == -5_350


def test_tampered_amount_names_the_entry_and_breaks_the_sum() -> None:
    close = make_close()
    proven = bank_entries(close)
    proven[1] = ProvenEntry(replace(proven[1].entry, amount_fen=4_500), proven[1].proof)

    report = check(close, proven)

    assert report.failures == (EntryFailure(4, FailureReason.NOT_IN_ROOT),)
    assert not report.sum_matches
    assert not report.ok


def test_a_wrong_salt_names_the_entry() -> None:
    close = make_close()
    proven = bank_entries(close)
    wrong = SALTS.salt(CYCLE, 4, OTHER_BANK)
    proven[1] = ProvenEntry(replace(proven[1].entry, salt=wrong), proven[1].proof)

    report = check(close, proven)

    assert report.failures == (EntryFailure(4, FailureReason.NOT_IN_ROOT),)
    assert not report.ok


def test_salts_the_partner_re_derives_from_its_secret_pass() -> None:
    close = make_close()
    own = SALTS.for_partner(BANK)
    proven = [
        ProvenEntry(replace(item.entry, salt=own.salt(CYCLE, item.entry.entry_id)), item.proof)
        for item in bank_entries(close)
    ]

    assert check(close, proven).ok


def test_tampered_proof_names_the_entry() -> None:
    close = make_close()
    proven = bank_entries(close)
    siblings = list(proven[2].proof)
    siblings[0] = bytes(32)
    proven[2] = ProvenEntry(proven[2].entry, tuple(siblings))

    report = check(close, proven)

    assert report.failures == (EntryFailure(6, FailureReason.NOT_IN_ROOT),)


def test_malformed_proof_is_reported_as_such() -> None:
    close = make_close()
    proven = bank_entries(close)
    proven[0] = ProvenEntry(proven[0].entry, (b"\x01" * 31,))

    report = check(close, proven)

    assert report.failures == (EntryFailure(1, FailureReason.MALFORMED_PROOF),)


def test_another_partners_entry_is_rejected_even_with_a_valid_proof() -> None:
    close = make_close()
    foreign = close.entries[1]
    proven = [*bank_entries(close), ProvenEntry(foreign, tuple(close.proof_for_entry(2)))]

    report = check(close, proven)

    assert report.failures == (EntryFailure(2, FailureReason.WRONG_PARTNER),)
    assert report.sum_matches


def test_entry_of_another_cycle_is_rejected() -> None:
    close = make_close()
    proven = bank_entries(close)
    proven[0] = ProvenEntry(replace(proven[0].entry, cycle_id=CYCLE + 1), proven[0].proof)

    report = check(close, proven)

    assert report.failures == (EntryFailure(1, FailureReason.WRONG_CYCLE),)


def test_duplicate_entry_is_reported_and_counted_once() -> None:
    close = make_close()
    proven = bank_entries(close)

    report = check(close, [*proven, proven[0]])

    assert report.failures == (EntryFailure(1, FailureReason.DUPLICATE_ENTRY),)
    assert report.proven_total_fen == -5_350


def test_missing_entry_shows_only_as_a_sum_mismatch() -> None:
    close = make_close()

    report = check(close, bank_entries(close)[:-1])

    assert report.failures == ()
    assert report.proven_total_fen == -6_550
    assert not report.sum_matches
    assert not report.ok


def test_cycle_not_yet_finalized_does_not_pass() -> None:
    close = make_close()

    waiting = (CycleStatus.NONE, CycleStatus.PROPOSED, CycleStatus.DISPUTED, CycleStatus.REJECTED)
    for status in waiting:
        report = check(close, bank_entries(close), status=status)
        assert report.sum_matches and not report.failures
        assert not report.ok
    assert check(close, bank_entries(close), status=CycleStatus.FUNDED).ok


def test_wrong_on_chain_net_position_does_not_pass() -> None:
    close = make_close()

    report = check(close, bank_entries(close), net_position_fen=-5_349)

    assert not report.sum_matches
    assert not report.ok


def test_prove_entries_pairs_entries_with_proofs_in_order() -> None:
    close = make_close()
    mine = [item for item in close.entries if item.partner_id == BANK]

    proven = prove_entries(mine, [close.proof_for_entry(item.entry_id) for item in mine])

    assert check(close, proven).ok
    with pytest.raises(CreditNetValueError):
        prove_entries(mine, [])
