"""`creditnet risk train --model gbm`: cross-validate three recipes, fit the boosted one,
write its card.

The same stratified folds score the scorecard recipe (the explainable default), the
boosted model and the benchmark (logistic regression on one-hot features), so the
figures compare; the card records all three in `training.cross_validation`. The card
itself is a scorecard card with a `gbm` section: its characteristics (every column,
binned) check and monitor the inputs, its trees (and linear part, when chosen) score.
Each outer fold's model makes its own inner choice (linear baseline or not, rounds) on
its training rows only; the card records every fold's choice and the final one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from pydantic import JsonValue

from node_api.risk.baseline import fit_onehot_logistic
from node_api.risk.card import (
    DATA_FINGERPRINT_KEY,
    CardMetrics,
    CardTarget,
    ScorecardCard,
    compute_data_fingerprint,
)
from node_api.risk.card_export import ScalingSettings, build_characteristics, compute_score_bands
from node_api.risk.evaluation import (
    CrossValidation,
    Predictor,
    cross_validate,
    cross_validate_recipe,
)
from node_api.risk.gbm_fit import (
    FittedGbm,
    GbmChoice,
    GbmSettings,
    check_export,
    export_gbm_section,
    fit_gbm_model,
)
from node_api.risk.model_fit import BoolArray, ModelSettings
from node_api.risk.tabular import Column, ColumnKind, Dataset, load_dataset


@dataclass(frozen=True, slots=True)
class GbmTrainingSettings:
    gbm: GbmSettings = field(default_factory=GbmSettings)
    scorecard: ModelSettings = field(default_factory=ModelSettings)
    scaling: ScalingSettings = field(default_factory=ScalingSettings)
    folds: int = 5
    seed: int = 0
    score_band_count: int = 10
    compare: bool = True
    """Also cross-validate the scorecard and the benchmark (for the report)."""


@dataclass(frozen=True, slots=True)
class GbmTrainingResult:
    card: ScorecardCard
    model: FittedGbm
    dataset: Dataset
    validation: CrossValidation
    scorecard_validation: CrossValidation | None
    baseline_validation: CrossValidation | None
    export_gap: float
    fold_choices: tuple[GbmChoice | None, ...] = ()
    """Each outer fold's inner choice (None when `linear` is "never")."""


def _choice_json(choice: GbmChoice | None) -> JsonValue:
    if choice is None:
        return None
    return {
        "model": choice.label,
        "inner_auc": {label: round(auc, 4) for label, auc in sorted(choice.inner_auc.items())},
    }


def _validation_json(validation: CrossValidation | None) -> JsonValue:
    if validation is None:
        return None
    return {
        "auc": round(validation.auc, 4),
        "ks": round(validation.ks, 4),
        "auc_by_fold": [round(auc, 4) for auc in validation.auc_by_fold],
    }


def train_gbm(
    csv_path: Path | str,
    target: str,
    bad_value: str,
    ignore: Sequence[str] = (),
    *,
    settings: GbmTrainingSettings | None = None,
    reason_texts: Mapping[str, str] | None = None,
) -> GbmTrainingResult:
    """Cross-validate, fit on every row, export and check the trees, build the card."""
    chosen = settings if settings is not None else GbmTrainingSettings()
    dataset = load_dataset(Path(csv_path), target, bad_value, ignore)

    fold_choices: list[GbmChoice | None] = []

    def recipe(columns: Sequence[Column], is_bad: BoolArray) -> Predictor:
        fitted = fit_gbm_model(columns, is_bad, chosen.gbm, chosen.seed)
        fold_choices.append(fitted.choice)
        return fitted.log_odds_bad

    validation = cross_validate_recipe(dataset, recipe, folds=chosen.folds, seed=chosen.seed)
    scorecard_validation = baseline_validation = None
    if chosen.compare:
        scorecard_validation = cross_validate(
            dataset, chosen.scorecard, folds=chosen.folds, seed=chosen.seed
        )
        baseline_validation = cross_validate_recipe(
            dataset, fit_onehot_logistic, folds=chosen.folds, seed=chosen.seed
        )
    is_bad = np.array(dataset.is_bad, dtype=np.bool_)
    model = fit_gbm_model(dataset.columns, is_bad, chosen.gbm, chosen.seed)
    scaling = chosen.scaling.to_card()
    characteristics = build_characteristics(
        model.binnings, [0.0] * len(model.binnings), scaling, dataset.n_rows, reason_texts
    )
    section = export_gbm_section(
        model, reason_texts or {}, {c.name: c.reason_code for c in characteristics}
    )
    columns = {column.name: column.values for column in dataset.columns}
    kinds = {
        b.name: "numeric" if b.kind == ColumnKind.NUMERIC else "categorical" for b in model.binnings
    }
    gap = check_export(section, model, columns, kinds)
    scores = scaling.offset - scaling.factor * model.log_odds_bad(columns)
    notes: dict[str, JsonValue] = {
        "model": "gbm",
        "settings": json.loads(json.dumps(asdict(chosen))),
        "column_roles": dict(chosen.gbm.roles),
        "ignored_columns": list(sorted(ignore)),
        "information_values": {b.name: b.iv for b in sorted(model.binnings, key=lambda b: b.name)},
        "cross_validation": {
            "gbm": _validation_json(validation),
            "scorecard": _validation_json(scorecard_validation),
            "logistic_onehot": _validation_json(baseline_validation),
        },
        "gbm_choice": _choice_json(model.choice),
        "gbm_choice_by_fold": [_choice_json(choice) for choice in fold_choices],
        "export_max_gap": gap,
        "rows_dropped_without_target": dataset.rows_dropped,
        DATA_FINGERPRINT_KEY: compute_data_fingerprint(Path(csv_path).read_bytes()),
    }
    card = ScorecardCard(
        model_id="",
        target=CardTarget(column=dataset.target, bad_value=dataset.bad_value),
        scaling=scaling,
        intercept=0.0,
        base_points=scaling.offset,
        characteristics=characteristics,
        score_bands=compute_score_bands(scores, chosen.score_band_count),
        metrics=CardMetrics(
            auc=validation.auc,
            ks=validation.ks,
            gini=validation.gini,
            n_rows=dataset.n_rows,
            bad_rate=sum(dataset.is_bad) / dataset.n_rows,
            folds=validation.folds,
            auc_by_fold=validation.auc_by_fold,
        ),
        training=notes,
        gbm=section,
    ).with_model_id()
    return GbmTrainingResult(
        card,
        model,
        dataset,
        validation,
        scorecard_validation,
        baseline_validation,
        gap,
        tuple(fold_choices),
    )
