"""The unit of an audit report: one check, passed or failed, with the evidence behind it.

Evidence points at where a person can look the fact up independently: a block, a
transaction, a contract address, and the values compared. A check keeps at most
`EVIDENCE_MAX` items (the count of the rest is kept), so a history with a million
anomalies still yields a report one can open.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, Literal, TypedDict

EVIDENCE_MAX: Final = 50

JsonValue = int | float | str | bool | None | Sequence["JsonValue"] | Mapping[str, "JsonValue"]
"""A value in its JSON form (report.json writes evidence values as they are)."""


class EvidenceJson(TypedDict):
    """report.json's form of one piece of evidence."""

    block: int | None
    tx: str | None
    address: str | None
    values: Mapping[str, JsonValue]


class CheckJson(TypedDict):
    """report.json's form of one check."""

    id: str
    title: str
    result: Literal["pass", "fail"]
    passed: bool
    message: str
    evidence: list[EvidenceJson]
    evidence_omitted: int


@dataclass(frozen=True)
class Evidence:
    """One fact: where it is on-chain (any of block, tx, address) and the values seen."""

    block: int | None = None
    tx: str | None = None
    address: str | None = None
    values: Mapping[str, JsonValue] = field(default_factory=dict)

    def to_json(self) -> EvidenceJson:
        return {"block": self.block, "tx": self.tx, "address": self.address, "values": self.values}


@dataclass(frozen=True)
class CheckResult:
    """One check: a stable id (`source.ClearingHouse`, `reconcile.cycle_roots`), a title a
    person reads, the verdict, a one-line message, and the evidence (failures first)."""

    id: str
    title: str
    passed: bool
    message: str
    evidence: tuple[Evidence, ...] = ()
    evidence_omitted: int = 0

    def to_json(self) -> CheckJson:
        return {
            "id": self.id,
            "title": self.title,
            "result": "pass" if self.passed else "fail",
            "passed": self.passed,
            "message": self.message,
            "evidence": [item.to_json() for item in self.evidence],
            "evidence_omitted": self.evidence_omitted,
        }


def make_check(
    check_id: str,
    title: str,
    failures: Iterable[Evidence],
    *,
    ok_message: str,
    fail_message: str,
    context: Iterable[Evidence] = (),
) -> CheckResult:
    """A check that passes when `failures` is empty.

    `fail_message` may use `{count}` (the number of failures) and `{first}` (the first
    failure's `problem` value), so the one-line message already points at the evidence.
    `context` is evidence shown when the check passes (what was compared).
    """
    failed = list(failures)
    if failed:
        first = str(failed[0].values.get("problem", ""))
        message = fail_message.format(count=len(failed), first=first)
        shown = failed[:EVIDENCE_MAX]
        return CheckResult(check_id, title, False, message, tuple(shown), len(failed) - len(shown))
    shown_context = list(context)
    kept = shown_context[:EVIDENCE_MAX]
    return CheckResult(
        check_id, title, True, ok_message, tuple(kept), len(shown_context) - len(kept)
    )
