"""The lender's audit export, format `creditnet-audit-export` version 2.

What the auditor needs from the books to reconcile them with the chain, and nothing
else: no personal data. A borrower appears only as `borrower_ref` (the HMAC the chain
also shows); there are no names, identity numbers, phones, customer ids or free-text
references. Every record is validated against a closed schema (unknown fields are
refused), so a field carrying personal data cannot slip in unnoticed.

Encoding: UTF-8 NDJSON (`application/x-ndjson`), one JSON object per line, each with a
`type`. Integers are JSON numbers and must be read exactly (amounts are fen; parsers
that use doubles must read them as big integers). Hashes are 0x-prefixed lowercase hex.

Records (in this order from the reference writer; a reader accepts any order between
the header, which comes first, and the trailer, which comes last):

- `header`: `format` = "creditnet-audit-export", `version` = 2, `chain_id`.
- `manifest`: `manifest` = the node's deployment manifest JSON (as in deployments/).
- `product_terms`: `product_code`, `version`, `terms_hash`, `canonical_terms` — the
  stored canonical terms JSON as a string, exactly the bytes whose keccak256 is
  `terms_hash` (rules in node_api/lending/products/canonical.py).
- `agreement`: `agreement_id`, `borrower_ref`, `terms_hash`, `product_code` (the chain's
  uint32 code), `limit_fen`, `apr_bps`, `opened_at` (unix seconds) — the opening fields
  whose abi-encoding the registry's commitment hashes — and `anchored_tx` /
  `anchored_block` where the books recorded the anchoring (else null).
- `cycle`: `cycle_id`, `entry_count`, `entries_root` (the books' root), `partner_ids`
  (ascending) and `net_positions_fen` (aligned).
- `cycle_entries`: `cycle_id`, `entries`: rows `[entry_id, partner_id, kind, amount_fen,
  salt]` (the five leaf values besides the cycle id; `salt` is the entry's private 32-byte
  leaf salt as 0x-hex, which only the entry's partner and the auditor are given), at most
  `CHUNK_ROWS_MAX` rows per record; a cycle's entries may span several records.
- `line_state`: `cycle_id`, `leaf_count`, `total_outstanding_fen`, `root` (the books').
- `line_state_leaves`: `cycle_id`, `leaves`: rows `[agreement_id, outstanding_fen]`.
- `trailer`: `counts` of the records and rows above (`agreement`, `product_terms`,
  `cycle`, `cycle_entry`, `line_state`, `line_state_leaf`), so a truncated stream is
  detected.

Leaves, as on-chain: a settlement entry is
`keccak256(keccak256(abi.encode(uint64 cycleId, uint64 entryId, uint32 partnerId,
uint8 kind, int256 amountFen, bytes32 salt)))`; a line-state leaf is
`keccak256(keccak256(abi.encode(bytes32 agreementId, uint64 cycleId, uint256
outstandingFen)))`; roots are OpenZeppelin StandardMerkleTree roots over them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Annotated, Any, Final, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

FORMAT_NAME: Final = "creditnet-audit-export"
FORMAT_VERSION: Final = 2
"""2: each cycle entry row ends with its leaf salt (version 1 rows had four values)."""
MEDIA_TYPE: Final = "application/x-ndjson"
CHUNK_ROWS_MAX: Final = 10_000

Hash32 = Annotated[str, Field(pattern=r"^0x[0-9a-f]{64}$")]
TxHash = Annotated[str, Field(pattern=r"^0x[0-9a-f]{64}$")]
Uint32 = Annotated[int, Field(ge=0, le=2**32 - 1)]
Uint64 = Annotated[int, Field(ge=0, le=2**64 - 1)]
Int256 = Annotated[int, Field(ge=-(2**255), le=2**255 - 1)]
Uint256 = Annotated[int, Field(ge=0, le=2**256 - 1)]


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HeaderRecord(_Record):
    type: Literal["header"] = "header"
    format: Literal["creditnet-audit-export"] = FORMAT_NAME
    version: Literal[2] = FORMAT_VERSION
    chain_id: int


class ManifestRecord(_Record):
    type: Literal["manifest"] = "manifest"
    manifest: dict[str, Any]


class ProductTermsRecord(_Record):
    type: Literal["product_terms"] = "product_terms"
    product_code: Annotated[str, Field(max_length=32)]
    version: int
    terms_hash: Hash32
    canonical_terms: str


class AgreementRecord(_Record):
    type: Literal["agreement"] = "agreement"
    agreement_id: Hash32
    borrower_ref: Hash32
    terms_hash: Hash32
    product_code: Uint32
    limit_fen: Uint64
    apr_bps: Uint32
    opened_at: Uint64
    anchored_tx: TxHash | None = None
    anchored_block: int | None = None


class CycleRecord(_Record):
    type: Literal["cycle"] = "cycle"
    cycle_id: Uint64
    entry_count: Uint64
    entries_root: Hash32
    partner_ids: list[Uint32]
    net_positions_fen: list[Int256]


class CycleEntriesRecord(_Record):
    type: Literal["cycle_entries"] = "cycle_entries"
    cycle_id: Uint64
    entries: Annotated[
        list[tuple[Uint64, Uint32, Annotated[int, Field(ge=0, le=255)], Int256, Hash32]],
        Field(max_length=CHUNK_ROWS_MAX),
    ]


class LineStateRecord(_Record):
    type: Literal["line_state"] = "line_state"
    cycle_id: Uint64
    leaf_count: Uint64
    total_outstanding_fen: Uint256
    root: Hash32


class LineStateLeavesRecord(_Record):
    type: Literal["line_state_leaves"] = "line_state_leaves"
    cycle_id: Uint64
    leaves: Annotated[list[tuple[Hash32, Uint256]], Field(max_length=CHUNK_ROWS_MAX)]


class TrailerRecord(_Record):
    type: Literal["trailer"] = "trailer"
    counts: dict[str, int]


BooksRecord = (
    ManifestRecord
    | ProductTermsRecord
    | AgreementRecord
    | CycleRecord
    | CycleEntriesRecord
    | LineStateRecord
    | LineStateLeavesRecord
)
"""Every record of an export but its header and trailer: what the books provide."""

ExportRecord = Annotated[HeaderRecord | BooksRecord | TrailerRecord, Field(discriminator="type")]
_RECORD_ADAPTER: Final[TypeAdapter[ExportRecord]] = TypeAdapter(ExportRecord)

COUNTED: Final = (
    "agreement",
    "product_terms",
    "cycle",
    "cycle_entry",
    "line_state",
    "line_state_leaf",
)


def parse_record(line: bytes | str) -> ExportRecord:
    """One line as a validated record; raises ValueError (pydantic's) when invalid."""
    return _RECORD_ADAPTER.validate_json(line)


def encode_record(record: _Record) -> bytes:
    """One record as one NDJSON line (with its newline)."""
    return orjson.dumps(record.model_dump(mode="json")) + b"\n"


def chunk_rows(rows: Sequence[Any]) -> Iterator[Sequence[Any]]:
    """`rows` in chunks of at most `CHUNK_ROWS_MAX` (at least one chunk, maybe empty)."""
    if not rows:
        yield rows
        return
    for start in range(0, len(rows), CHUNK_ROWS_MAX):
        yield rows[start : start + CHUNK_ROWS_MAX]


class RecordCounter:
    """Counts what the trailer declares, as records pass through a writer."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = dict.fromkeys(COUNTED, 0)

    def add(self, record: _Record) -> None:
        if isinstance(record, AgreementRecord):
            self.counts["agreement"] += 1
        elif isinstance(record, ProductTermsRecord):
            self.counts["product_terms"] += 1
        elif isinstance(record, CycleRecord):
            self.counts["cycle"] += 1
        elif isinstance(record, CycleEntriesRecord):
            self.counts["cycle_entry"] += len(record.entries)
        elif isinstance(record, LineStateRecord):
            self.counts["line_state"] += 1
        elif isinstance(record, LineStateLeavesRecord):
            self.counts["line_state_leaf"] += len(record.leaves)


def encode_export(chain_id: int, records: Iterable[_Record]) -> Iterator[bytes]:
    """A whole export as NDJSON lines: header, `records`, then the trailer with counts."""
    yield encode_record(HeaderRecord(chain_id=chain_id))
    counter = RecordCounter()
    for record in records:
        counter.add(record)
        yield encode_record(record)
    yield encode_record(TrailerRecord(counts=counter.counts))
