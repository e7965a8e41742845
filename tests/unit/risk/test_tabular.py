"""Training CSV loading: type inference, missing tokens, target and ignored columns."""

from __future__ import annotations

from pathlib import Path

import pytest

from node_api.kernel.errors import CreditNetValueError
from node_api.risk.tabular import ColumnKind, load_dataset

CSV = """id,age,home,debts,outcome
1,30,own,,good
2,NA,none,100.5,bad
3,45,?,0,good
4,51,rent,7,
5,28,rent,1e3,good
"""


@pytest.fixture
def csv_path(tmp_path: Path) -> Path:
    path = tmp_path / "applications.csv"
    path.write_text(CSV, encoding="utf-8")
    return path


def test_columns_are_typed_and_missing_tokens_become_none(csv_path: Path) -> None:
    dataset = load_dataset(csv_path, "outcome", "bad", ignore=("id",))
    columns = {c.name: c for c in dataset.columns}
    assert list(columns) == ["age", "home", "debts"]
    assert columns["age"].kind == ColumnKind.NUMERIC
    assert columns["age"].values == (30.0, None, 45.0, 28.0)
    assert columns["home"].kind == ColumnKind.CATEGORICAL
    assert columns["home"].values == ("own", "none", None, "rent")
    assert columns["debts"].values == (None, 100.5, 0.0, 1000.0)


def test_rows_without_target_are_dropped(csv_path: Path) -> None:
    dataset = load_dataset(csv_path, "outcome", "bad", ignore=("id",))
    assert dataset.is_bad == (False, True, False, False)
    assert dataset.rows_dropped == 1


@pytest.mark.parametrize(
    ("target", "bad", "ignore", "field"),
    [
        ("status", "bad", (), "target"),
        ("outcome", "default", (), "bad"),
        ("outcome", "bad", ("nope",), "ignore"),
    ],
)
def test_RevertWhen_arguments_do_not_fit_the_file(
    csv_path: Path, target: str, bad: str, ignore: tuple[str, ...], field: str
) -> None:
    with pytest.raises(CreditNetValueError) as caught:
        load_dataset(csv_path, target, bad, ignore)
    assert caught.value.field == field
