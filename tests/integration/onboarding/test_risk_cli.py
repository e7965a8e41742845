"""`creditnet risk train` and `creditnet risk communities` through the CLI."""

from __future__ import annotations

import csv
import json
import random
from datetime import UTC, date, datetime
from pathlib import Path

from typer.testing import CliRunner

from node_api.cli import app as cli_app
from node_api.kernel.db import Database
from node_api.onboarding.fraud_history_sql import record_application
from node_api.risk.fraud_config import AttributeKind, FraudRuleConfig
from node_api.risk.fraud_facts import ApplicationFacts, Gender
from node_api.risk.scorecard import Scorecard


def _write_csv(path: Path, rows: int = 600) -> None:
    rng = random.Random(3)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["row_id", "income", "housing", "outcome"])
        for n in range(rows):
            income = rng.randint(20, 200)
            housing = rng.choice(["own", "rent", "parents"])
            risk = 0.55 - income / 400 + (0.15 if housing == "rent" else 0.0)
            outcome = "bad" if rng.random() < risk else "good"
            writer.writerow([n, "" if n % 20 == 0 else income, housing, outcome])


def test_train_prints_one_json_object_and_writes_a_servable_card(tmp_path: Path) -> None:
    data, out = tmp_path / "loans.csv", tmp_path / "card.json"
    _write_csv(data)
    arguments = ["risk", "train", "--data", str(data), "--target", "outcome", "--bad", "bad"]
    result = CliRunner().invoke(cli_app, [*arguments, "--ignore", "row_id", "--out", str(out)])
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)
    assert {"auc", "ks", "gini", "n_rows", "bad_rate"} <= set(metrics)
    assert metrics["n_rows"] == 600 and metrics["auc"] > 0.6
    card = Scorecard.load(out)
    assert {c.name for c in card.card.characteristics} <= {"income", "housing"}
    assert card.score({"income": 150, "housing": "own"}).score > card.score({"income": 25}).score


def test_train_refuses_a_missing_file_with_exit_status_2(tmp_path: Path) -> None:
    arguments = ["--data", str(tmp_path / "none.csv"), "--target", "t", "--bad", "1"]
    result = CliRunner().invoke(cli_app, ["risk", "train", *arguments])
    assert result.exit_code == 2


def test_communities_reports_the_chained_ring_from_the_link_log(database: Database) -> None:
    at = datetime(2025, 6, 1, tzinfo=UTC)
    with database.engine.begin() as conn:
        for person in range(5):
            for device in (person, person + 1):
                hashes = {
                    AttributeKind.ID: f"person-{person}".encode().ljust(32, b"."),
                    AttributeKind.DEVICE: f"device-{device}".encode().ljust(32, b"."),
                }
                facts = ApplicationFacts(at, hashes, date(1990, 1, 1), Gender.MALE)
                record_application(
                    conn, f"a-{person}-{device}", f"c-{person}", facts, FraudRuleConfig()
                )
    env = {"CREDITNET_DATABASE_URL": database.url}
    result = CliRunner().invoke(cli_app, ["risk", "communities", "--min-identities", "2"], env=env)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["links"] == 10 and report["communities"] == 1
    assert report["largest"][0]["identity_count"] == 5
    assert report["largest"][0]["attribute_count"] == 6
