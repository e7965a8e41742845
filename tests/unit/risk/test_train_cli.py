"""`creditnet risk train` body: any tabular CSV in, one JSON object of metrics out."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import pytest

from node_api.risk.scorecard import Scorecard
from node_api.risk.training import main

JOBS = ["fixed", "freelance", "partime", "others"]


def _write_applications(path: Path, rows: int = 800) -> None:
    """Synthetic applications whose bad rate depends on income, job and debt."""
    generator = random.Random(11)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["customer_id", "income", "job", "debt", "notes", "result"])
        for n in range(rows):
            income = generator.randint(50, 400)
            job = generator.choice(JOBS)
            debt = generator.choice([0, 0, 500, 2000])
            risk = 0.6 - income / 800 + (0.2 if job == "partime" else 0) + debt / 10_000
            result = "default" if generator.random() < risk else "paid"
            missing_income = n % 15 == 0
            writer.writerow([n, "" if missing_income else income, job, debt, "none", result])


def test_main_prints_metrics_and_writes_a_servable_card(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "applications.csv"
    out = tmp_path / "card.json"
    _write_applications(data)
    status = main(
        [
            "--data",
            str(data),
            "--target",
            "result",
            "--bad",
            "default",
            "--ignore",
            "customer_id",
            "--out",
            str(out),
        ]
    )
    assert status == 0
    metrics = json.loads(capsys.readouterr().out)
    assert {"auc", "ks", "gini", "n_rows", "bad_rate"} <= metrics.keys()
    assert metrics["n_rows"] == 800
    assert metrics["auc"] > 0.65
    assert "customer_id" not in metrics["characteristics"]
    assert "income" in metrics["characteristics"]
    scorecard = Scorecard.load(out)
    assert scorecard.model_id == metrics["model_id"]
    low = scorecard.score({"income": 60, "job": "partime", "debt": 2000})
    high = scorecard.score({"income": 390, "job": "fixed", "debt": 0})
    assert low.score < high.score


def test_RevertWhen_target_column_is_unknown(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "applications.csv"
    _write_applications(data, rows=50)
    assert main(["--data", str(data), "--target", "status", "--bad", "default"]) == 2
    assert json.loads(capsys.readouterr().err)["field"] == "target"


def test_RevertWhen_data_file_is_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--data", str(tmp_path / "nope.csv"), "--target", "t", "--bad", "b"]) == 2
    assert json.loads(capsys.readouterr().err)["field"] == "data"


def test_main_with_model_gbm_prints_all_three_recipes_and_writes_a_servable_tree_card(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "applications.csv"
    out = tmp_path / "gbm.json"
    _write_applications(data)
    argv = ["--data", str(data), "--target", "result", "--bad", "default"]
    argv += ["--ignore", "customer_id", "--out", str(out), "--model", "gbm"]
    status = main([*argv, "--rounds", "20", "--bags", "2", "--folds", "3", "--linear", "never"])
    assert status == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["model"] == "gbm" and metrics["folds"] == 3 and metrics["start"] == "trees"
    # two boosters with the income/debt ratio and two without, 20 trees each
    assert metrics["boosters"] == 4 and metrics["trees"] == 80
    for key in ("auc", "scorecard_auc", "logistic_onehot_auc"):
        assert 0.55 < metrics[key] < 1.0, key
    card = Scorecard.load(out)
    assert card.card.gbm is not None and card.model_id == metrics["model_id"]
    low = card.score({"income": 60, "job": "partime", "debt": 2000, "notes": "none"})
    high = card.score({"income": 390, "job": "fixed", "debt": 0, "notes": "none"})
    assert low.score < high.score
    assert low.reasons and low.reasons[0].points_lost > 0


def test_main_refuses_folds_out_of_range(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "applications.csv"
    _write_applications(data, rows=50)
    argv = ["--data", str(data), "--target", "result", "--bad", "default", "--folds", "1"]
    assert main(argv) == 2
    assert json.loads(capsys.readouterr().err)["field"] == "folds"


@pytest.mark.parametrize("bags", ["0", "11"])
def test_main_refuses_bags_out_of_range(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], bags: str
) -> None:
    data = tmp_path / "applications.csv"
    _write_applications(data, rows=50)
    argv = ["--data", str(data), "--target", "result", "--bad", "default", "--model", "gbm"]
    assert main([*argv, "--bags", bags]) == 2
    assert json.loads(capsys.readouterr().err)["field"] == "bags"


def test_the_creditnet_command_passes_bags_through(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from node_api.cli import app as cli_app

    data = tmp_path / "applications.csv"
    _write_applications(data, rows=50)
    argv = ["risk", "train", "--data", str(data), "--target", "result", "--bad", "default"]
    refused = CliRunner().invoke(cli_app, [*argv, "--model", "gbm", "--bags", "11"])
    assert refused.exit_code == 2
    assert json.loads(refused.stderr)["field"] == "bags"
    refused = CliRunner().invoke(cli_app, [*argv, "--model", "gbm", "--linear", "sometimes"])
    assert refused.exit_code == 2
    assert json.loads(refused.stderr)["field"] == "linear"


@pytest.mark.parametrize("role", ["income", "salary=income", "income=job", "income=missing"])
def test_RevertWhen_a_gbm_role_is_malformed_unknown_or_not_a_numeric_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], role: str
) -> None:
    data = tmp_path / "applications.csv"
    _write_applications(data, rows=80)
    argv = ["--data", str(data), "--target", "result", "--bad", "default", "--model", "gbm"]
    assert main([*argv, "--rounds", "5", "--folds", "2", "--role", role]) == 2
    assert json.loads(capsys.readouterr().err)["field"] == "role"


def test_main_with_roles_records_them_and_serves_the_derived_ratio(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "applications.csv"
    out = tmp_path / "gbm.json"
    _write_applications(data)
    argv = ["--data", str(data), "--target", "result", "--bad", "default", "--model", "gbm"]
    argv += ["--ignore", "customer_id", "--out", str(out), "--rounds", "10", "--folds", "2"]
    assert main([*argv, "--role", "debt=debt", "--role", "income=income"]) == 0
    card = Scorecard.load(out).card
    assert card.training["column_roles"] == {"debt": "debt", "income": "income"}
    assert card.gbm is not None
    assert [f.name for f in card.gbm.features if f.reason_code.startswith("RD")] == [
        "debt_to_income"
    ]


def test_main_with_linear_always_starts_the_trees_from_the_linear_part(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "applications.csv"
    out = tmp_path / "gbm.json"
    _write_applications(data)
    argv = ["--data", str(data), "--target", "result", "--bad", "default", "--out", str(out)]
    argv += ["--ignore", "customer_id", "--model", "gbm", "--rounds", "20", "--bags", "1"]
    assert main([*argv, "--folds", "3", "--linear", "always"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["start"].startswith("linear")
    card = Scorecard.load(out)
    assert card.card.gbm is not None and card.card.gbm.linear is not None
