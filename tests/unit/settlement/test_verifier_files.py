"""The verifier reads entries as the partner API streams them (NDJSON with a header line),
as a JSON document or as a JSON list; an unreadable entry is reported, never skipped."""

from __future__ import annotations

import json
from pathlib import Path

from node_api.kernel.chain import EntryKind
from settlement.entries import SettlementEntry
from settlement.proofs import to_json
from settlement.verifier import load_entries_file, parse_entries
from settlement.verify_core import ProvenEntry

SALT = bytes(range(32))
ENTRY = ProvenEntry(
    SettlementEntry(20250303, 7, 2, EntryKind.INTEREST_SHARE, 1_234, SALT), (b"\x01" * 32,)
)
HEADER = {"cycle_id": 20250303, "partner_id": 2, "entries_root": "0x" + "ab" * 32}


def test_ndjson_with_a_header_line_gives_the_entries_and_the_lenders_statement() -> None:
    lines = [json.dumps(HEADER), json.dumps(to_json(ENTRY)), ""]
    source = parse_entries(lines)
    assert source.entries == [ENTRY]
    assert source.stated["entries_root"] == HEADER["entries_root"]
    assert source.unreadable == []


def test_a_json_document_and_a_json_list_read_the_same(tmp_path: Path) -> None:
    document = tmp_path / "entries.json"
    document.write_text(json.dumps({**HEADER, "entries": [to_json(ENTRY)]}))
    listed = tmp_path / "list.json"
    listed.write_text(json.dumps([to_json(ENTRY)]))
    assert load_entries_file(document).entries == load_entries_file(listed).entries == [ENTRY]
    assert load_entries_file(document).stated["partner_id"] == 2


def test_an_entry_carries_its_salt_as_0x_hex() -> None:
    assert to_json(ENTRY)["salt"] == "0x" + SALT.hex()


def test_RevertWhen_an_entry_is_malformed_it_is_reported_by_id() -> None:
    bad_kind = dict(to_json(ENTRY), entry_id=8, kind=99)
    bad_proof = dict(to_json(ENTRY), entry_id=9, proof=["zz"])
    missing = {key: value for key, value in to_json(ENTRY).items() if key != "amount_fen"}
    unsalted = {key: value for key, value in to_json(ENTRY).items() if key != "salt"}
    short_salt = dict(to_json(ENTRY), entry_id=10, salt="0x" + SALT[:31].hex())
    items = (bad_kind, bad_proof, missing, dict(unsalted, entry_id=11), short_salt)
    source = parse_entries([json.dumps(item) for item in items] + ["{"])
    assert source.entries == []
    assert [problem.split(":")[0] for problem in source.unreadable] == [
        "entry 8",
        "entry 9",
        "entry 7",
        "entry 11",
        "entry 10",
        "line 6 is not JSON",
    ]
    assert "salt" in source.unreadable[3] and "salt" in source.unreadable[4]
