"""Derived ratios from declared column roles: bound only when their roles are declared,
constrained in their domain direction, computed the same way in training and serving."""

from __future__ import annotations

import math

import numpy as np
import pytest

from node_api.kernel.errors import CreditNetValueError
from node_api.risk.derived import ColumnRole, bind_derived_features, compute_derived, parse_roles
from node_api.risk.gbm_card import GbmFeature, GbmSection, compute_features, predict
from node_api.risk.gbm_fit import GbmSettings, fit_gbm_model
from node_api.risk.gbm_training import GbmTrainingSettings, train_gbm
from node_api.risk.scorecard import Scorecard
from node_api.risk.tabular import Column, ColumnKind, read_csv_rows
from tests.unit.risk.conftest import GERMAN_CSV

GERMAN_ROLES = (
    ("age", "age_in_years"),
    ("amount", "credit_amount"),
    ("duration", "duration_in_month"),
    ("installment_rate", "installment_rate_in_percentage_of_disposable_income"),
)


def test_a_derived_feature_is_bound_only_when_all_its_roles_are_declared() -> None:
    roles = {ColumnRole.AMOUNT: "amt", ColumnRole.DURATION: "months"}
    assert [d.name for d in bind_derived_features(roles)] == ["monthly_installment"]
    roles[ColumnRole.INCOME] = "inc"
    bound = {d.name: d for d in bind_derived_features(roles)}
    assert set(bound) == {"monthly_installment", "installment_to_income", "amount_to_income"}
    assert bound["installment_to_income"].characteristics == ("amt", "months", "inc")
    assert bound["installment_to_income"].monotone == 1
    assert bind_derived_features({}) == []


def test_ratios_divide_by_the_product_and_are_missing_on_a_zero_divisor() -> None:
    assert compute_derived("ratio", (1200.0, 12.0)) == 100.0
    assert compute_derived("ratio", (1200.0, 12.0, 4.0)) == 25.0
    assert compute_derived("ratio", (1200.0, 12.0, 0.0)) is None
    assert compute_derived("ratio", (1200.0, None)) is None
    assert compute_derived("difference", (900.0, 250.0)) == 650.0
    assert compute_derived("difference", (None, 250.0)) is None


def test_an_unknown_role_or_a_categorical_column_is_refused_naming_the_field() -> None:
    with pytest.raises(CreditNetValueError) as unknown:
        parse_roles({"salary": "x"}, {"x"})
    assert unknown.value.field == "role"
    with pytest.raises(CreditNetValueError) as categorical:
        parse_roles({"amount": "purpose"}, {"credit_amount"})
    assert categorical.value.field == "role"


def test_a_three_input_ratio_and_a_difference_are_valid_features_but_a_long_one_is_not() -> None:
    common = {"monotone": 1, "reason_code": "RD01", "reason_text": "x"}
    GbmFeature(name="a", kind="ratio", characteristics=("a", "b", "c"), **common)
    GbmFeature(name="b", kind="difference", characteristics=("a", "b"), **common)
    with pytest.raises(ValueError, match="difference two"):
        GbmFeature(name="c", kind="difference", characteristics=("a", "b", "c"), **common)


def _synthetic(rows: int) -> tuple[list[Column], np.ndarray]:
    """Bad when the monthly installment is high: neither amount nor duration alone says it."""
    generator = np.random.default_rng(7)
    amount = generator.uniform(500.0, 5000.0, rows).round()
    duration = generator.integers(6, 60, rows).astype(np.float64)
    installment = amount / duration
    is_bad = generator.uniform(size=rows) < 1.0 / (1.0 + np.exp(-(installment - 150.0) / 40.0))
    columns = [
        Column("amt", ColumnKind.NUMERIC, tuple(float(v) for v in amount)),
        Column("months", ColumnKind.NUMERIC, tuple(float(v) for v in duration)),
    ]
    return columns, is_bad


def test_the_trees_use_the_derived_ratio_and_never_against_its_domain_direction() -> None:
    columns, is_bad = _synthetic(2000)
    settings = GbmSettings(
        rounds=40, ratios=False, roles=(("amount", "amt"), ("duration", "months"))
    )
    model = fit_gbm_model(columns, is_bad, settings)
    names = [spec.name for spec in model.specs]
    assert names == ["amt", "months", "monthly_installment"]
    assert model.monotone[2] == 1
    for fitted in model.boosters:
        assert fitted.features == (0, 1, 2)
        split_on = {
            node["split_feature"]
            for info in fitted.booster.dump_model()["tree_info"]
            for node in _internal_nodes(info["tree_structure"])
        }
        assert 2 in split_on
    # Raising the installment (amount up, duration fixed) never lowers the bad log-odds
    # through the derived feature: the partial dependence is monotone in its direction.
    grid = np.linspace(100.0, 600.0, 40)
    matrix = np.column_stack([np.full(40, 3000.0), np.full(40, 20.0), grid])
    raw = model.raw_score(matrix)
    assert np.all(np.diff(raw) >= -1e-12)


def _internal_nodes(node: dict[str, object]) -> list[dict[str, object]]:
    if "leaf_value" in node:
        return []
    left, right = node["left_child"], node["right_child"]
    assert isinstance(left, dict) and isinstance(right, dict)
    return [node, *_internal_nodes(left), *_internal_nodes(right)]


def test_a_german_card_with_roles_serves_its_derived_features_exactly_as_trained() -> None:
    gbm = GbmSettings(rounds=20, roles=GERMAN_ROLES)
    settings = GbmTrainingSettings(gbm=gbm, folds=2, compare=False)
    result = train_gbm(GERMAN_CSV, "creditability", "bad", settings=settings)
    section = result.card.gbm
    assert isinstance(section, GbmSection)
    derived = {f.name: f for f in section.features if f.reason_code.startswith("RD")}
    assert set(derived) == {"monthly_installment", "amount_per_age_year", "implied_income"}
    assert derived["implied_income"].monotone == -1
    assert derived["implied_income"].characteristics == (
        "credit_amount",
        "duration_in_month",
        "installment_rate_in_percentage_of_disposable_income",
    )
    assert result.export_gap < 1e-9
    served = Scorecard(result.card)
    columns = {c.name: c.values for c in result.dataset.columns}
    expected = result.model.log_odds_bad(columns)
    _header, rows = read_csv_rows(GERMAN_CSV)
    factor, offset = result.card.scaling.factor, result.card.scaling.offset
    for index, row in enumerate(rows[:100]):
        row.pop("creditability")
        log_odds = (offset - served.score(row).score_exact) / factor
        assert math.isclose(log_odds, float(expected[index]), abs_tol=1e-9)
    numbers = {"credit_amount": 1200.0, "duration_in_month": 12.0, "age_in_years": 30.0}
    numbers["installment_rate_in_percentage_of_disposable_income"] = 4.0
    woe = {c.name: 0.0 for c in result.card.characteristics if c.kind == "categorical"}
    names = [f.name for f in section.features]
    values = dict(zip(names, compute_features(section, numbers, woe), strict=True))
    assert values["monthly_installment"] == 100.0
    assert values["implied_income"] == 25.0
    assert values["amount_per_age_year"] == 40.0
    output = predict(section, list(values.values()))
    assert math.isclose(
        output.baseline + sum(output.contributions.values()), output.log_odds_bad, abs_tol=1e-9
    )


def test_declared_roles_limit_the_pairwise_ratios_to_the_declared_quantities() -> None:
    columns, is_bad = _synthetic(300)
    code = Column("dependants", ColumnKind.NUMERIC, tuple(float(i % 3) for i in range(300)))
    columns.append(code)
    plain = fit_gbm_model(columns, is_bad, GbmSettings(rounds=3))
    assert [s.name for s in plain.specs if s.kind == "ratio"] == [
        "amt/months",
        "amt/dependants",
        "months/dependants",
    ]
    roles = (("amount", "amt"), ("duration", "months"))
    declared = fit_gbm_model(columns, is_bad, GbmSettings(rounds=3, roles=roles))
    assert [s.name for s in declared.specs if s.kind == "ratio"] == [
        "amt/months",
        "monthly_installment",
    ]
