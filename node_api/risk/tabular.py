"""Loading a training CSV: column types inferred, missing values recognised, target split off.

Works on any tabular credit file: a column whose non-missing values are all
finite numbers is numeric, anything else is categorical. Rows without a target
value are dropped; the target is "bad" when it equals `bad_value` (as text).
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from node_api.kernel.errors import CreditNetValueError
from node_api.risk.values import is_missing_token, is_number_text, parse_category, parse_number


class ColumnKind(StrEnum):
    NUMERIC = "numeric"
    CATEGORICAL = "categorical"


@dataclass(frozen=True, slots=True)
class Column:
    """One candidate characteristic; `values` hold float/str, None when missing."""

    name: str
    kind: ColumnKind
    values: tuple[float | str | None, ...]


@dataclass(frozen=True, slots=True)
class Dataset:
    columns: tuple[Column, ...]
    is_bad: tuple[bool, ...]
    target: str
    bad_value: str
    rows_dropped: int

    @property
    def n_rows(self) -> int:
        return len(self.is_bad)


def read_csv_rows(csv_path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """Header and rows of a CSV file (UTF-8, optional BOM)."""
    with csv_path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        rows = [dict(row) for row in reader]
        header = list(reader.fieldnames or [])
    return header, rows


def _build_column(name: str, texts: Sequence[str]) -> Column | None:
    if all(is_missing_token(text) for text in texts):
        return None
    if all(is_number_text(text) for text in texts):
        return Column(name, ColumnKind.NUMERIC, tuple(parse_number(t, field=name) for t in texts))
    return Column(name, ColumnKind.CATEGORICAL, tuple(parse_category(t, field=name) for t in texts))


def _check_arguments(header: Sequence[str], target: str, ignore: Sequence[str]) -> None:
    if target not in header:
        raise CreditNetValueError("target column is not in the file", field="target")
    unknown = [name for name in ignore if name not in header]
    if unknown:
        raise CreditNetValueError("ignored column is not in the file", field="ignore")


def load_dataset(
    csv_path: Path, target: str, bad_value: str, ignore: Sequence[str] = ()
) -> Dataset:
    """Read `csv_path` into typed columns plus a bad/good flag per row."""
    header, rows = read_csv_rows(csv_path)
    _check_arguments(header, target, ignore)
    labelled = [row for row in rows if not is_missing_token(row[target] or "")]
    is_bad = tuple((row[target] or "").strip() == bad_value.strip() for row in labelled)
    bad_count = sum(is_bad)
    if bad_count == 0:
        raise CreditNetValueError("no row has the bad target value", field="bad")
    if bad_count == len(is_bad):
        raise CreditNetValueError("every row has the bad target value", field="bad")
    columns = []
    for name in header:
        if name == target or name in ignore:
            continue
        column = _build_column(name, [row[name] or "" for row in labelled])
        if column is not None:
            columns.append(column)
    if not columns:
        raise CreditNetValueError("the file has no usable characteristic", field="data")
    return Dataset(tuple(columns), is_bad, target, bad_value, len(rows) - len(labelled))
