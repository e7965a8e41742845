"""The gbm's linear part: a sign-constrained logistic baseline the trees boost from, served
from the card beside them; inner cross-validation on the training rows chooses it (and
the rounds) or today's trees from zero; cards without it load and score as before."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

import node_api.risk.gbm_fit as gbm_fit
from node_api.risk.baseline import fit_onehot_logistic
from node_api.risk.card import parse_card
from node_api.risk.evaluation import cross_validate_recipe
from node_api.risk.gbm_card import GbmOutput, GbmSection, compute_features, predict
from node_api.risk.gbm_fit import (
    FittedGbm,
    GbmChoice,
    GbmSettings,
    build_feature_matrix,
    check_export,
    export_gbm_section,
    fit_gbm_model,
    fit_linear,
)
from node_api.risk.gbm_training import GbmTrainingSettings, train_gbm
from node_api.risk.model_registry import check_servable
from node_api.risk.scorecard import Scorecard
from node_api.risk.tabular import Column, ColumnKind, load_dataset
from tests.unit.risk.conftest import DATA_DIR

OLD_CARD = Path(__file__).parent / "gbm_card_before_linear.json"
"""A gbm card written by the code before the linear part existed (commit cca6dd7), with
four applications and what that code scored for them."""
DEFAULT_CSV = DATA_DIR / "islr_default.csv"


def _synthetic(rows: int, seed: int = 3) -> tuple[list[Column], np.ndarray]:
    """Bad log-odds linear in debt (+) and age (-); income missing in every 9th row; a
    categorical whose effect given debt opposes its marginal one, and a numeric one
    (`spend`, tied to debt) whose marginal correlation with bad is positive while its
    effect given debt is negative."""
    generator = np.random.default_rng(seed)
    student = generator.uniform(size=rows) < 0.3
    debt = generator.normal(1000.0, 400.0, size=rows) + 500.0 * student
    age = generator.uniform(20.0, 70.0, size=rows)
    income = generator.uniform(100.0, 400.0, size=rows)
    spend = debt + generator.normal(0.0, 150.0, size=rows)
    score = (debt - 1000.0) / 200.0 - (age - 45.0) / 15.0 - 1.0 * student - 1.5
    score -= (spend - debt) / 150.0
    is_bad = generator.uniform(size=rows) < 1.0 / (1.0 + np.exp(-score))
    columns = [
        Column("debt", ColumnKind.NUMERIC, tuple(float(v) for v in debt)),
        Column("age", ColumnKind.NUMERIC, tuple(float(v) for v in age)),
        Column(
            "income",
            ColumnKind.NUMERIC,
            tuple(None if i % 9 == 0 else float(v) for i, v in enumerate(income)),
        ),
        Column("spend", ColumnKind.NUMERIC, tuple(float(v) for v in spend)),
        Column("student", ColumnKind.CATEGORICAL, tuple("yes" if s else "no" for s in student)),
    ]
    return columns, is_bad


def _kinds(columns: list[Column]) -> dict[str, str]:
    return {c.name: "numeric" if c.kind == ColumnKind.NUMERIC else "categorical" for c in columns}


def _serve(section: GbmSection, model: FittedGbm, columns: list[Column], row: int) -> GbmOutput:
    binnings = {b.name: b for b in model.binnings}
    numbers: dict[str, float | None] = {}
    woe: dict[str, float] = {}
    for column in columns:
        value = column.values[row]
        if column.kind == ColumnKind.NUMERIC:
            numbers[column.name] = None if value is None else float(value)
        else:
            woe[column.name] = float(binnings[column.name].transform([value])[0])
    return predict(section, compute_features(section, numbers, woe))


def test_the_card_serves_the_linear_part_and_the_trees_as_fitted_to_1e_9() -> None:
    columns, is_bad = _synthetic(1500)
    settings = GbmSettings(rounds=20, bags=2, linear="always", linear_rounds=(20,))
    model = fit_gbm_model(columns, is_bad, settings, seed=1)
    assert model.linear is not None and len(model.boosters) == 4
    codes = {c.name: f"RC{i + 1:02d}" for i, c in enumerate(columns)}
    section = export_gbm_section(model, {}, codes)
    assert section.linear is not None and len(section.trees) == 4 * 20
    data = {c.name: c.values for c in columns}
    assert check_export(section, model, data, _kinds(columns)) <= 1e-9
    # the library's prediction: the linear design times the fitted coefficients, plus the
    # mean of LightGBM's raw scores (its init_score is not part of them)
    matrix = build_feature_matrix(model.specs, {b.name: b for b in model.binnings}, data)
    expected = model.linear.log_odds(matrix) + np.mean(
        [b.booster.predict(matrix[:, list(b.features)], raw_score=True) for b in model.boosters],
        axis=0,
    )
    for row in range(0, 1500, 41):
        output = _serve(section, model, columns, row)
        assert math.isclose(output.log_odds_bad, float(expected[row]), abs_tol=1e-9)
        total = output.baseline + sum(output.contributions.values())
        assert math.isclose(total, output.log_odds_bad, abs_tol=1e-9)
    # a linear term is its feature's contribution: with the trees cut, debt's contribution
    # is exactly its coefficient times its standardized value
    linear_only = section.model_copy(update={"trees": ()})
    term = next(t for t in section.linear.terms if section.features[t.feature].name == "debt")
    output = _serve(linear_only, model, columns, 5)
    debt = columns[0].values[5]
    assert isinstance(debt, float)
    z = (debt - term.mean) / term.scale
    assert output.contributions["debt"] == pytest.approx(term.coefficient * z, abs=1e-12)
    assert output.baseline == section.linear.intercept


def test_without_bounds_the_baseline_is_the_benchmarks_penalized_logistic() -> None:
    columns, is_bad = _synthetic(2000)
    model = fit_gbm_model(columns, is_bad, GbmSettings(linear="never", rounds=1, bags=1))
    data = {c.name: c.values for c in columns}
    matrix = build_feature_matrix(model.specs, {b.name: b for b in model.binnings}, data)
    free = [0] * len(model.specs)
    linear = fit_linear(model.specs, free, matrix, is_bad, c=1.0)
    blocks = []
    for term in linear.terms:
        values = matrix[:, term.feature]
        if term.kind == "raw":
            missing = np.isnan(values)
            blocks += [(np.where(missing, term.median, values) - term.mean) / term.scale, missing]
        else:
            blocks.append(values)
    design = np.column_stack(blocks).astype(np.float64)
    reference = LogisticRegression(C=1.0, max_iter=10000, tol=1e-10).fit(design, is_bad)
    ours = linear.log_odds(matrix)
    assert np.max(np.abs(ours - reference.decision_function(design))) < 1e-4


def test_numeric_coefficients_never_oppose_their_monotone_direction() -> None:
    columns, is_bad = _synthetic(3000)
    model = fit_gbm_model(
        columns, is_bad, GbmSettings(rounds=1, bags=1, linear="always", linear_rounds=(0,))
    )
    assert model.linear is not None and not model.boosters
    direction = {spec.name: m for spec, m in zip(model.specs, model.monotone, strict=True)}
    coefficient = {model.specs[t.feature].name: t.coefficient for t in model.linear.terms}
    assert direction["debt"] == 1 and coefficient["debt"] > 0.5
    assert direction["age"] == -1 and coefficient["age"] < -0.5
    # spend: marginally riskier (it follows debt), less risky given debt: held at zero
    assert direction["spend"] == 1 and coefficient["spend"] == 0.0
    # a free fit would have gone negative: the bound is what holds it
    data = {c.name: c.values for c in columns}
    matrix = build_feature_matrix(model.specs, {b.name: b for b in model.binnings}, data)
    free = fit_linear(model.specs, [0] * len(model.specs), matrix, is_bad)
    assert next(t.coefficient for t in free.terms if model.specs[t.feature].name == "spend") < 0
    # a categorical's coefficient is free (the benchmark's one-hot ones are): students
    # are riskier marginally, less risky given their debt
    assert coefficient["student"] > 0.0
    # the card refuses a numeric coefficient against its feature's direction
    section = export_gbm_section(model, {}, {c.name: "RC01" for c in columns})
    document = section.model_dump(mode="json")
    for term in document["linear"]["terms"]:
        if section.features[term["feature"]].name == "age":
            term["coefficient"] = 0.3
    with pytest.raises(ValueError, match="opposes its feature's direction"):
        type(section).model_validate(document)


def test_a_card_of_the_linear_part_alone_is_valid_and_servable(tmp_path: Path) -> None:
    columns, is_bad = _synthetic(800)
    csv = tmp_path / "data.csv"
    lines = ["debt,age,income,spend,student,status"]
    for row in range(800):
        values = ["" if c.values[row] is None else str(c.values[row]) for c in columns]
        lines.append(",".join([*values, "bad" if is_bad[row] else "good"]))
    csv.write_text("\n".join(lines) + "\n", encoding="utf-8")
    gbm = GbmSettings(rounds=10, bags=1, linear="always", linear_rounds=(0,))
    result = train_gbm(
        csv, "status", "bad", settings=GbmTrainingSettings(gbm=gbm, folds=2, compare=False)
    )
    section = result.card.gbm
    assert section is not None and section.linear is not None and section.trees == ()
    assert result.export_gap <= 1e-9
    text = result.card.to_json()
    assert parse_card(text) == result.card and '"linear"' in text
    check_servable(result.card)
    assert result.card.training["gbm_choice"] == {"model": "linear+0", "inner_auc": {}}
    scored = Scorecard(result.card).score({"debt": "1800", "age": "25", "student": "no"})
    assert "debt" in {reason.characteristic for reason in scored.reasons}


def test_a_gbm_card_from_before_the_linear_part_loads_and_scores_unchanged() -> None:
    stored = json.loads(OLD_CARD.read_text(encoding="utf-8"))
    text = json.dumps(stored["card"], indent=1, ensure_ascii=False) + "\n"
    card = parse_card(text)  # its model_id still matches its content
    assert card.gbm is not None and card.gbm.linear is None
    assert card.to_json() == text  # no `linear` key appears
    served = Scorecard(card)
    for case in stored["scored"]:
        result = served.score(case["application"])
        assert result.score_exact == case["score_exact"]
        assert result.score == case["score"]
        assert [[r.code, r.characteristic, r.points_lost] for r in result.reasons] == case[
            "reasons"
        ]


def test_the_inner_choice_sees_only_the_outer_training_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    columns, is_bad = _synthetic(600)
    # a row id column: the rows each fit sees are read back from it
    csv = tmp_path / "data.csv"
    lines = ["row_id,debt,age,student,status"]
    for row in range(600):
        debt, age, student = columns[0].values[row], columns[1].values[row], columns[4].values[row]
        lines.append(f"{row},{debt},{age},{student},{'bad' if is_bad[row] else 'good'}")
    csv.write_text("\n".join(lines) + "\n", encoding="utf-8")
    chooser_rows: list[frozenset[int]] = []
    fitted_rows: list[frozenset[int]] = []
    choose, fit = gbm_fit.choose_gbm_recipe, gbm_fit._fit_fixed

    def row_ids(cols: Sequence[Column]) -> frozenset[int]:
        assert cols[0].name == "row_id"
        return frozenset(int(v) for v in cols[0].values if isinstance(v, float))

    def spy_choose(
        cols: Sequence[Column], bad: np.ndarray, settings: GbmSettings, seed: int = 0
    ) -> GbmChoice:
        chooser_rows.append(row_ids(cols))
        return choose(cols, bad, settings, seed)

    def spy_fit(
        cols: Sequence[Column], bad: np.ndarray, settings: GbmSettings, seed: int, **options: Any
    ) -> FittedGbm:
        fitted_rows.append(row_ids(cols))
        return fit(cols, bad, settings, seed, **options)

    monkeypatch.setattr(gbm_fit, "choose_gbm_recipe", spy_choose)
    monkeypatch.setattr(gbm_fit, "_fit_fixed", spy_fit)
    gbm = GbmSettings(rounds=6, bags=1, linear_rounds=(0, 3, 6), inner_folds=3)
    settings = GbmTrainingSettings(gbm=gbm, folds=3, compare=False, seed=2)
    result = train_gbm(csv, "status", "bad", settings=settings)
    outer = StratifiedKFold(n_splits=3, shuffle=True, random_state=2)
    labels = np.array(result.dataset.is_bad)
    trainings = [frozenset(int(i) for i in train) for train, _ in outer.split(labels, labels)]
    everything = frozenset(range(600))
    # three outer folds, then the final fit on every row: each chooses on its own rows
    assert chooser_rows == [*trainings, everything]
    # every inner fit (two per inner fold) reads a part of its outer training rows only;
    # each outer fold's final fit reads all of them
    per_choice = 3 * 2 + 1
    assert len(fitted_rows) == 4 * per_choice
    for index, rows in enumerate([*trainings, everything]):
        calls = fitted_rows[index * per_choice : (index + 1) * per_choice]
        assert all(seen < rows for seen in calls[:-1])
        assert calls[-1] == rows
    assert len(result.fold_choices) == 3 and all(c is not None for c in result.fold_choices)
    assert len(result.card.training["gbm_choice_by_fold"]) == 3  # type: ignore[arg-type]


def test_on_islr_default_the_gbm_is_at_least_the_one_hot_logistic() -> None:
    """The README's Default row: 5-fold CV, seed 0, the default settings (about 20 s)."""
    dataset = load_dataset(DEFAULT_CSV, "default", "Yes", ())
    settings = GbmSettings(roles=(("debt", "balance"), ("income", "income")))
    started = time.process_time()
    gbm = cross_validate_recipe(
        dataset, lambda c, b: fit_gbm_model(c, b, settings, 0).log_odds_bad, folds=5, seed=0
    )
    logistic = cross_validate_recipe(dataset, fit_onehot_logistic, folds=5, seed=0)
    assert time.process_time() - started < 120.0
    assert gbm.auc >= logistic.auc
