"""Scorecard training entry point: CSV in, cross-validated metrics and a JSON card out.

Needs the `risk` extra (numpy, scipy, scikit-learn); the serving path never
imports this module. `main` is the body of `creditnet risk train`:

    creditnet risk train --data FILE.csv --target COLUMN --bad VALUE [--ignore id] [--out card.json]
        [--model scorecard|gbm] [--rounds N] [--bags N] [--linear auto|always|never]
        [--folds K] [--role ROLE=COLUMN ...]

prints one JSON object (`auc`, `ks`, `gini`, `n_rows`, `bad_rate`, ...). With `--model
gbm` it fits the boosted model instead (`gbm_training.py`) and also prints the
cross-validated AUC of the scorecard and of the one-hot logistic benchmark on the same
folds; `--role amount=credit_amount` (repeatable) declares what a column means, so the
boosted model gets the derived ratios those roles allow (`derived.py`); `--bags N` sets
the boosters averaged per feature set (1 to 10; default 5: 10 x 300 trees, about 3.4 MB);
`--linear` whether the trees may start from a linear part (`auto`, the default: inner
cross-validation decides, and `start` in the output says what it chose; `always`;
`never`: trees from zero, as before the linear part existed).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from pydantic import JsonValue

from node_api.kernel.errors import CreditNetError, CreditNetValueError
from node_api.risk.card import DATA_FINGERPRINT_KEY, ScorecardCard, compute_data_fingerprint
from node_api.risk.card_export import ScalingSettings, build_card
from node_api.risk.evaluation import CrossValidation, cross_validate
from node_api.risk.model_fit import FittedScorecard, ModelSettings, fit_scorecard_model
from node_api.risk.tabular import Dataset, load_dataset

if TYPE_CHECKING:
    from node_api.risk.gbm_fit import FittedGbm


@dataclass(frozen=True, slots=True)
class TrainingSettings:
    model: ModelSettings = field(default_factory=ModelSettings)
    scaling: ScalingSettings = field(default_factory=ScalingSettings)
    folds: int = 5
    seed: int = 0
    score_band_count: int = 10


@dataclass(frozen=True, slots=True)
class TrainingResult:
    """The card, the in-memory model it was exported from, and the data it saw."""

    card: ScorecardCard
    model: FittedScorecard
    dataset: Dataset
    validation: CrossValidation

    def get_metrics(self) -> dict[str, object]:
        """The one-line summary the CLI prints: the card's metrics (rates to 4 places,
        without the per-fold AUCs), its characteristics and its model id."""
        summary = self.card.metrics.model_dump(exclude={"auc_by_fold"})
        return {
            **{k: round(v, 4) if isinstance(v, float) else v for k, v in summary.items()},
            "characteristics": [c.name for c in self.card.characteristics],
            "model_id": self.card.model_id,
        }


def train_scorecard(
    csv_path: Path | str,
    target: str,
    bad_value: str,
    ignore: Sequence[str] = (),
    *,
    settings: TrainingSettings | None = None,
    reason_texts: Mapping[str, str] | None = None,
) -> TrainingResult:
    """Cross-validate the recipe on the file, then fit it on every row and export the card.

    The card records the file's SHA-256 (`training.data_sha256`): the registry's data
    fingerprint."""
    chosen = settings if settings is not None else TrainingSettings()
    dataset = load_dataset(Path(csv_path), target, bad_value, ignore)
    validation = cross_validate(dataset, chosen.model, folds=chosen.folds, seed=chosen.seed)
    is_bad = np.array(dataset.is_bad, dtype=np.bool_)
    model = fit_scorecard_model(dataset.columns, is_bad, chosen.model)
    ignored: list[JsonValue] = [name for name in sorted(ignore)]
    notes: dict[str, JsonValue] = {
        "settings": asdict(chosen),
        "ignored_columns": ignored,
        DATA_FINGERPRINT_KEY: compute_data_fingerprint(Path(csv_path).read_bytes()),
    }
    card = build_card(
        model,
        dataset,
        validation,
        chosen.scaling,
        band_count=chosen.score_band_count,
        reason_texts=reason_texts,
        training_notes=notes,
    )
    return TrainingResult(card, model, dataset, validation)


LINEAR_CHOICES = ("auto", "always", "never")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="creditnet risk train", description="Train a WOE logistic scorecard from a CSV file."
    )
    parser.add_argument("--data", required=True, type=Path, help="training CSV file")
    parser.add_argument("--target", required=True, help="target column")
    parser.add_argument("--bad", required=True, help="target value that means bad")
    parser.add_argument(
        "--ignore",
        action="append",
        default=[],
        help="column to leave out (repeat or comma-separate)",
    )
    parser.add_argument("--out", type=Path, help="where to write the JSON card")
    parser.add_argument(
        "--model",
        choices=("scorecard", "gbm"),
        default="scorecard",
        help="scorecard (WOE logistic, the default) or gbm (monotonic boosted trees)",
    )
    parser.add_argument("--folds", type=int, default=5, help="cross-validation folds")
    parser.add_argument("--rounds", type=int, help="boosting rounds (gbm; default 300)")
    parser.add_argument(
        "--bags", type=int, help="boosters averaged per feature set (gbm; default 5)"
    )
    parser.add_argument(
        "--linear",
        default="auto",
        help="gbm: start the trees from a linear part (auto: inner cross-validation decides)",
    )
    parser.add_argument(
        "--role",
        action="append",
        default=[],
        help="ROLE=COLUMN: what a numeric column means (gbm derived ratios; repeatable)",
    )
    return parser


def parse_role_arguments(items: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """`role=column` arguments as (role, column) pairs; a role given twice is refused."""
    pairs: dict[str, str] = {}
    for item in items:
        role, separator, column = item.partition("=")
        if not separator or not role.strip() or not column.strip():
            raise CreditNetValueError("a role is written ROLE=COLUMN", field="role")
        if role.strip() in pairs:
            raise CreditNetValueError("a role is given twice", field="role")
        pairs[role.strip()] = column.strip()
    return tuple(sorted(pairs.items()))


def _train_gbm(
    arguments: argparse.Namespace, ignore: list[str]
) -> tuple[ScorecardCard, dict[str, object]]:
    from node_api.risk.gbm_fit import GbmSettings
    from node_api.risk.gbm_training import GbmTrainingSettings, train_gbm

    roles = parse_role_arguments(arguments.role)
    gbm = GbmSettings(roles=roles, linear=arguments.linear)
    if arguments.rounds is not None:
        gbm = replace(gbm, rounds=arguments.rounds)
    if arguments.bags is not None:
        gbm = replace(gbm, bags=arguments.bags)
    result = train_gbm(
        arguments.data,
        arguments.target,
        arguments.bad,
        ignore,
        settings=GbmTrainingSettings(gbm=gbm, folds=arguments.folds),
    )
    card = result.card
    metrics: dict[str, object] = {
        "model": "gbm",
        "auc": round(card.metrics.auc, 4),
        "ks": round(card.metrics.ks, 4),
        "gini": round(card.metrics.gini, 4),
        "scorecard_auc": None,
        "logistic_onehot_auc": None,
        "n_rows": card.metrics.n_rows,
        "bad_rate": round(card.metrics.bad_rate, 4),
        "folds": card.metrics.folds,
        "start": _start_label(result.model),
        "boosters": len(result.model.boosters),
        "trees": len(card.gbm.trees) if card.gbm is not None else 0,
        "features": len(card.gbm.features) if card.gbm is not None else 0,
        "model_id": card.model_id,
    }
    if result.scorecard_validation is not None:
        metrics["scorecard_auc"] = round(result.scorecard_validation.auc, 4)
    if result.baseline_validation is not None:
        metrics["logistic_onehot_auc"] = round(result.baseline_validation.auc, 4)
    return card, metrics


def _start_label(model: FittedGbm) -> str:
    """Where the trees start: `trees` (from zero) or `linear+N` (N rounds from the linear
    part), as chosen by inner cross-validation or fixed by `--linear`."""
    if model.choice is not None:
        return model.choice.label
    return "trees" if model.linear is None else "linear"


def main(argv: Sequence[str] | None = None) -> int:
    """Run a training; print the metrics as one JSON object. Returns the exit status."""
    arguments = _parser().parse_args(argv)
    ignore = [name.strip() for item in arguments.ignore for name in item.split(",") if name.strip()]
    if not arguments.data.is_file():
        print(json.dumps({"error": "data file not found", "field": "data"}), file=sys.stderr)
        return 2
    if not 2 <= arguments.folds <= 20:
        print(json.dumps({"error": "folds must be 2 to 20", "field": "folds"}), file=sys.stderr)
        return 2
    if arguments.bags is not None and not 1 <= arguments.bags <= 10:
        print(json.dumps({"error": "bags must be 1 to 10", "field": "bags"}), file=sys.stderr)
        return 2
    if arguments.linear not in LINEAR_CHOICES:
        error = {"error": "linear must be auto, always or never", "field": "linear"}
        print(json.dumps(error), file=sys.stderr)
        return 2
    try:
        if arguments.model == "gbm":
            card, metrics = _train_gbm(arguments, ignore)
        else:
            settings = TrainingSettings(folds=arguments.folds)
            result = train_scorecard(
                arguments.data, arguments.target, arguments.bad, ignore, settings=settings
            )
            card, metrics = result.card, dict(result.get_metrics())
    except CreditNetError as error:
        print(json.dumps({"error": error.detail, "field": error.field}), file=sys.stderr)
        return 2
    if arguments.out is not None:
        arguments.out.write_text(card.to_json(), encoding="utf-8")
        metrics["out"] = str(arguments.out)
    print(json.dumps(metrics))
    return 0
