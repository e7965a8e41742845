"""Read the lender's export (a file, a folder of files, or the node's API) into memory.

The reader never stops at the first bad line: every problem (an invalid line, a
duplicate id, rows of a cycle the export never declares, a missing or wrong trailer) is
collected with its line number for the `reconcile.export` check, and whatever was valid
is still reconciled.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import httpx

from node_api.kernel.errors import ConfigurationError, CreditNetError
from oracles.audit.export_format import (
    MEDIA_TYPE,
    AgreementRecord,
    CycleEntriesRecord,
    CycleRecord,
    HeaderRecord,
    LineStateLeavesRecord,
    LineStateRecord,
    ManifestRecord,
    ProductTermsRecord,
    RecordCounter,
    TrailerRecord,
    parse_record,
)

EXPORT_PATH: Final = "/v1/audit/export"
API_TIMEOUT_S: Final = 300.0
PROBLEMS_MAX: Final = 1_000


class ExportUnavailableError(CreditNetError):
    """The node's export API did not answer."""

    code = "export_unavailable"


@dataclass
class ExportedCycle:
    record: CycleRecord | None
    entries: list[tuple[int, int, int, int, str]] = field(default_factory=list)
    """Rows `(entry_id, partner_id, kind, amount_fen, salt)`, the salt 0x-hex."""
    first_line: int = 0


@dataclass
class ExportedLineState:
    record: LineStateRecord | None
    leaves: list[tuple[str, int]] = field(default_factory=list)


@dataclass
class BooksExport:
    """The export in memory, with the problems found while reading it."""

    source: str
    header: HeaderRecord | None = None
    manifest: dict[str, Any] | None = None
    terms: dict[str, ProductTermsRecord] = field(default_factory=dict)
    agreements: dict[str, AgreementRecord] = field(default_factory=dict)
    cycles: dict[int, ExportedCycle] = field(default_factory=dict)
    line_states: dict[int, ExportedLineState] = field(default_factory=dict)
    trailer: TrailerRecord | None = None
    problems: list[str] = field(default_factory=list)
    counter: RecordCounter = field(default_factory=RecordCounter)

    def problem(self, text: str) -> None:
        if len(self.problems) < PROBLEMS_MAX:
            self.problems.append(text)


def _add_record(export: BooksExport, record: object, line_number: int) -> None:
    """Place one valid record (header and trailer are handled by the caller)."""
    if isinstance(record, ManifestRecord):
        export.manifest = record.manifest
    elif isinstance(record, ProductTermsRecord):
        if record.terms_hash in export.terms:
            export.problem(f"line {line_number}: terms {record.terms_hash} exported twice")
        export.terms[record.terms_hash] = record
    elif isinstance(record, AgreementRecord):
        if record.agreement_id in export.agreements:
            export.problem(f"line {line_number}: agreement {record.agreement_id} exported twice")
        export.agreements[record.agreement_id] = record
    elif isinstance(record, CycleRecord):
        cycle = export.cycles.setdefault(record.cycle_id, ExportedCycle(None))
        if cycle.record is not None:
            export.problem(f"line {line_number}: cycle {record.cycle_id} exported twice")
        cycle.record, cycle.first_line = record, line_number
    elif isinstance(record, CycleEntriesRecord):
        rows = export.cycles.setdefault(record.cycle_id, ExportedCycle(None)).entries
        rows.extend(record.entries)
    elif isinstance(record, LineStateRecord):
        line_state = export.line_states.setdefault(record.cycle_id, ExportedLineState(None))
        if line_state.record is not None:
            export.problem(f"line {line_number}: line state {record.cycle_id} exported twice")
        line_state.record = record
    elif isinstance(record, LineStateLeavesRecord):
        state = export.line_states.setdefault(record.cycle_id, ExportedLineState(None))
        state.leaves.extend(record.leaves)


def read_export(lines: Iterable[bytes], source: str) -> BooksExport:
    """Parse an NDJSON stream into a `BooksExport` (never raises on bad content)."""
    export = BooksExport(source)
    line_number = 0
    for line_number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = parse_record(line)
        except ValueError as error:
            first = str(error).splitlines()[1:2] or [type(error).__name__]
            export.problem(f"line {line_number}: invalid record ({first[0].strip()})")
            continue
        if export.trailer is not None:
            export.problem(f"line {line_number}: record after the trailer")
        if isinstance(record, HeaderRecord):
            if line_number != 1 or export.header is not None:
                export.problem(f"line {line_number}: header not on the first line")
            export.header = record
        elif isinstance(record, TrailerRecord):
            export.trailer = record
        else:
            export.counter.add(record)
            _add_record(export, record, line_number)
    _check_framing(export, line_number)
    return export


def _check_framing(export: BooksExport, line_count: int) -> None:
    if export.header is None:
        export.problem("no header record")
    if export.trailer is None:
        export.problem(f"no trailer record after {line_count} lines: the export is truncated")
    elif export.trailer.counts != export.counter.counts:
        export.problem(
            f"trailer counts {export.trailer.counts} differ from the records read "
            f"{export.counter.counts}"
        )
    for cycle_id, cycle in export.cycles.items():
        if cycle.record is None:
            export.problem(f"entries of cycle {cycle_id} without its cycle record")
    for cycle_id, line_state in export.line_states.items():
        if line_state.record is None:
            export.problem(f"leaves of line state {cycle_id} without its line_state record")


def iter_file_lines(path: Path) -> Iterator[bytes]:
    """The lines of an export file, or of every *.ndjson file of a folder in name order."""
    files = sorted(path.glob("*.ndjson")) if path.is_dir() else [path]
    if not files or not all(file.is_file() for file in files):
        raise ConfigurationError(
            f"no export at {path} (a .ndjson file or a folder)", field="export"
        )
    for file in files:
        with file.open("rb") as handle:
            yield from handle


def read_export_path(path: Path) -> BooksExport:
    return read_export(iter_file_lines(path), str(path))


def read_export_api(
    base_url: str, auditor_key: str, client: httpx.Client | None = None
) -> BooksExport:
    """Stream `GET /v1/audit/export` with an auditor key (never logged or reported).
    `client` replaces the default HTTP client (tests pass the app's test client)."""
    url = base_url.rstrip("/") + EXPORT_PATH
    headers = {"Authorization": f"Bearer {auditor_key}", "Accept": MEDIA_TYPE}
    http = client or httpx.Client(timeout=API_TIMEOUT_S)
    try:
        with http.stream("GET", url, headers=headers) as response:
            if response.status_code != 200:
                raise ConfigurationError(f"{url} answered HTTP {response.status_code}", field="api")
            return read_export((line.encode() for line in response.iter_lines()), url)
    except httpx.HTTPError as error:
        raise ExportUnavailableError(f"{url} unreachable: {type(error).__name__}") from None
    finally:
        if client is None:
            http.close()
