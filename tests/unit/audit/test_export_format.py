"""The export format: closed records (no room for personal data), framing, and a reader
that reports every problem instead of stopping."""

from __future__ import annotations

import json

import pytest

from oracles.audit.export_format import (
    CHUNK_ROWS_MAX,
    AgreementRecord,
    CycleEntriesRecord,
    CycleRecord,
    chunk_rows,
    encode_export,
    encode_record,
    parse_record,
)
from oracles.audit.export_reader import read_export

AGREEMENT = AgreementRecord(
    agreement_id="0x" + "a1" * 32,
    borrower_ref="0x" + "b1" * 32,
    terms_hash="0x" + "c1" * 32,
    product_code=2,
    limit_fen=900_000,
    apr_bps=1_825,
    opened_at=1_735_689_600,
)
CYCLE = CycleRecord(
    cycle_id=20250131,
    entry_count=2,
    entries_root="0x" + "d1" * 32,
    partner_ids=[1, 2],
    net_positions_fen=[500, -500],
)
SALT_1, SALT_2 = "0x" + "e1" * 32, "0x" + "e2" * 32
ROWS = [(1, 1, 3, 500, SALT_1), (2, 2, 1, -500, SALT_2)]
ENTRIES = CycleEntriesRecord(cycle_id=20250131, entries=ROWS)


def _lines(records: list[object]) -> list[bytes]:
    return b"".join(encode_export(31337, records)).splitlines(keepends=True)  # type: ignore[arg-type]


def test_an_export_round_trips_through_the_reader() -> None:
    export = read_export(_lines([AGREEMENT, CYCLE, ENTRIES]), "test")
    assert export.problems == []
    assert export.header is not None and export.header.chain_id == 31337
    assert export.agreements == {AGREEMENT.agreement_id: AGREEMENT}
    assert export.cycles[20250131].entries == ROWS
    assert export.header.version == 2
    assert export.trailer is not None and export.trailer.counts["cycle_entry"] == 2


@pytest.mark.parametrize("field", ["customer_id", "name", "id_number", "phone", "source_ref"])
def test_RevertWhen_a_record_carries_a_field_outside_the_format(field: str) -> None:
    document = json.loads(encode_record(AGREEMENT))
    document[field] = "110101199003077777"
    with pytest.raises(ValueError, match=field):
        parse_record(json.dumps(document))


def test_RevertWhen_a_hash_is_not_32_bytes_of_lowercase_hex() -> None:
    document = json.loads(encode_record(AGREEMENT))
    document["terms_hash"] = "0x" + "C1" * 32
    with pytest.raises(ValueError):
        parse_record(json.dumps(document))


def test_RevertWhen_an_entry_row_lacks_its_salt_or_the_salt_is_not_32_bytes() -> None:
    document = json.loads(encode_record(ENTRIES))
    for row in ([1, 1, 3, 500], [1, 1, 3, 500, "0x" + "e1" * 31], [1, 1, 3, 500, "e1" * 32]):
        document["entries"] = [row]
        with pytest.raises(ValueError):
            parse_record(json.dumps(document))


def test_RevertWhen_the_header_is_of_version_1() -> None:
    document = json.loads(b"".join(encode_export(31337, [])).splitlines()[0])
    document["version"] = 1
    with pytest.raises(ValueError, match="version"):
        parse_record(json.dumps(document))


def test_a_truncated_export_is_reported() -> None:
    lines = _lines([AGREEMENT, CYCLE, ENTRIES])[:-1]
    export = read_export(lines, "test")
    assert export.problems == ["no trailer record after 4 lines: the export is truncated"]


def test_trailer_counts_that_differ_from_the_records_are_reported() -> None:
    lines = _lines([AGREEMENT, CYCLE, ENTRIES])
    del lines[1]
    problems = read_export(lines, "test").problems
    assert len(problems) == 1 and problems[0].startswith("trailer counts")


def test_invalid_lines_duplicates_and_orphan_entries_are_each_reported() -> None:
    lines = _lines([AGREEMENT, AGREEMENT, ENTRIES])
    lines.insert(2, b'{"type": "agreement", "agreement_id": "nope"}\n')
    export = read_export(lines, "test")
    assert export.agreements == {AGREEMENT.agreement_id: AGREEMENT}
    assert any(p.startswith("line 3: invalid record") for p in export.problems)
    assert "line 4: agreement " + AGREEMENT.agreement_id + " exported twice" in export.problems
    assert "entries of cycle 20250131 without its cycle record" in export.problems


def test_rows_are_chunked_within_the_limit() -> None:
    rows = list(range(2 * CHUNK_ROWS_MAX + 1))
    assert [len(chunk) for chunk in chunk_rows(rows)] == [CHUNK_ROWS_MAX, CHUNK_ROWS_MAX, 1]
    with pytest.raises(ValueError):
        CycleEntriesRecord(cycle_id=1, entries=[ROWS[0]] * (CHUNK_ROWS_MAX + 1))
