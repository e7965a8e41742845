"""`creditnet risk register`, `activate` and `models`: the registry from the command line."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner, Result

from node_api.cli import app as cli_app
from node_api.kernel.db import Database
from node_api.risk.card import compute_data_fingerprint
from node_api.risk.training import TrainingResult
from tests.integration.onboarding.onboarding_helpers import PRODUCT, setup_books


def _run(database: Database, *arguments: str) -> Result:
    env = {"CREDITNET_DATABASE_URL": database.url}
    return CliRunner().invoke(cli_app, ["risk", *arguments], env=env)


def test_a_card_is_registered_activated_and_listed_from_the_command_line(
    database: Database, trained: TrainingResult, training_csv: Path, tmp_path: Path
) -> None:
    setup_books(database)
    card_file = tmp_path / "german slice.json"
    card_file.write_text(trained.card.to_json(), encoding="utf-8")
    registered = _run(database, "register", str(card_file), "--data", str(training_csv))
    assert registered.exit_code == 0, registered.output
    model = json.loads(registered.stdout)
    assert model["version"] == 1 and model["created"] is True
    assert model["label"] == "german-slice" and model["registered_by"] == "cli"
    assert model["data_fingerprint"] == compute_data_fingerprint(training_csv.read_bytes())
    again = json.loads(_run(database, "register", str(card_file)).stdout)
    assert again["version"] == 1 and again["created"] is False

    activated = _run(database, "activate", "1", "--product", PRODUCT)
    assert activated.exit_code == 0, activated.output
    activation = json.loads(activated.stdout)["activation"]
    assert activation["model_version"] == 1 and activation["activated_by"] == "cli"

    listed = json.loads(_run(database, "models").stdout)
    assert [m["version"] for m in listed["models"]] == [1]
    assert [a["model_version"] for a in listed["activations"]] == [1]


def test_a_card_trained_on_other_data_is_refused_with_status_2(
    database: Database, trained: TrainingResult, tmp_path: Path
) -> None:
    card_file, other = tmp_path / "card.json", tmp_path / "other.csv"
    card_file.write_text(trained.card.to_json(), encoding="utf-8")
    other.write_text("income,outcome\n1,good\n", encoding="utf-8")
    refused = _run(database, "register", str(card_file), "--data", str(other))
    assert refused.exit_code == 2
    assert json.loads(refused.stderr)["code"] == "data_fingerprint_mismatch"
    assert json.loads(_run(database, "models").stdout)["models"] == []
