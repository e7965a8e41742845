"""Serving a card in plain Python: bins, points, reason codes, missing values, integrity."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import node_api
from node_api.kernel.errors import ConfigurationError, CreditNetValueError, NotFoundError
from node_api.risk.card import CardCharacteristic, parse_card
from node_api.risk.scorecard import REASON_COUNT_MAX, Scorecard, assign_bin


@pytest.fixture(scope="module")
def german() -> Scorecard:
    return Scorecard.load_packaged("german")


def _value_in_bin(characteristic: CardCharacteristic, index: int) -> object:
    card_bin = characteristic.bins[index]
    if card_bin.is_missing:
        return None
    if characteristic.kind == "categorical":
        return card_bin.categories[0]
    if card_bin.lower is not None:
        return card_bin.lower
    assert card_bin.upper is not None
    return card_bin.upper - 1


def _best_applicant(scorecard: Scorecard) -> dict[str, object]:
    best = {}
    for c in scorecard.card.characteristics:
        index = max(
            (i for i, b in enumerate(c.bins) if b.count > 0), key=lambda i: c.bins[i].points
        )
        best[c.name] = _value_in_bin(c, index)
    return best


def test_best_bin_in_every_characteristic_gives_no_reason_codes(german: Scorecard) -> None:
    result = german.score(_best_applicant(german))
    assert result.reasons == ()
    assert result.missing == ()


def test_reason_codes_are_the_characteristics_that_lost_most_points(german: Scorecard) -> None:
    worst = {}
    for c in german.card.characteristics:
        index = min(
            (i for i, b in enumerate(c.bins) if b.count > 0), key=lambda i: c.bins[i].points
        )
        worst[c.name] = _value_in_bin(c, index)
    result = german.score(worst)
    best_points = {
        c.name: max(b.points for b in c.bins if b.count > 0) for c in german.card.characteristics
    }
    lost = sorted((best_points[n] - p for n, p in result.points.items()), reverse=True)
    assert len(result.reasons) == REASON_COUNT_MAX
    assert [r.points_lost for r in result.reasons] == pytest.approx(lost[:REASON_COUNT_MAX])
    by_name = {c.name: c for c in german.card.characteristics}
    for reason in result.reasons:
        assert reason.code == by_name[reason.characteristic].reason_code
        assert reason.text == by_name[reason.characteristic].reason_text


def test_score_is_base_points_plus_bin_points_rounded(german: Scorecard) -> None:
    result = german.score(_best_applicant(german))
    assert result.score_exact == pytest.approx(
        german.card.base_points + sum(result.points.values())
    )
    assert result.score == round(result.score_exact)
    assert result.model_id == german.model_id


def test_missing_values_use_the_missing_bin_and_are_listed(german: Scorecard) -> None:
    result = german.score({})
    names = [c.name for c in german.card.characteristics]
    assert result.missing == tuple(names)
    assert all(result.bin_indices[c.name] == c.missing_bin for c in german.card.characteristics)
    assert german.score({name: "NA" for name in names}).score == result.score


def test_numeric_value_on_an_edge_goes_to_the_upper_bin() -> None:
    card = Scorecard.load_packaged("german").card
    duration = next(c for c in card.characteristics if c.name == "duration_in_month")
    edge = duration.edges[0]
    assert assign_bin(duration, edge) == 1
    assert assign_bin(duration, str(edge)) == 1
    assert assign_bin(duration, edge - 0.001) == 0
    assert assign_bin(duration, int(duration.edges[-1]) + 1000) == len(duration.edges)


def test_unseen_category_counts_as_no_information(german: Scorecard) -> None:
    purpose = next(c for c in german.card.characteristics if c.name == "purpose")
    expected = purpose.missing_bin if purpose.unseen_bin is None else purpose.unseen_bin
    assert assign_bin(purpose, "space travel") == expected


@pytest.mark.parametrize("raw", ["twelve", True, [12], float("inf")])
def test_RevertWhen_numeric_value_is_not_a_number(german: Scorecard, raw: object) -> None:
    with pytest.raises(CreditNetValueError) as caught:
        german.score({"duration_in_month": raw})
    assert caught.value.field == "duration_in_month"


def test_RevertWhen_card_content_does_not_match_model_id(german: Scorecard) -> None:
    document = json.loads(german.card.to_json())
    document["characteristics"][0]["bins"][0]["points"] += 1.0
    with pytest.raises(ConfigurationError, match="model_id"):
        parse_card(json.dumps(document))


def test_RevertWhen_card_is_malformed() -> None:
    with pytest.raises(ConfigurationError, match="malformed"):
        parse_card('{"format": "creditnet.scorecard"}')


def test_RevertWhen_packaged_card_does_not_exist() -> None:
    with pytest.raises(NotFoundError):
        Scorecard.load_packaged("../training")


def test_model_id_is_stable_across_json_round_trips(german: Scorecard) -> None:
    again = parse_card(german.card.to_json())
    assert again.model_id == german.model_id == again.compute_model_id()


def test_serving_path_imports_no_training_libraries() -> None:
    code = (
        "import sys\n"
        "import node_api.risk.scorecard, node_api.risk.monitoring, node_api.risk.policy\n"
        "import node_api.risk.fraud, node_api.risk.fraud_memory, node_api.onboarding.pii\n"
        "s = node_api.risk.scorecard.Scorecard.load_packaged('credit_data')\n"
        "s.score({'Seniority': '3', 'Home': 'rent', 'Income': None})\n"
        "heavy = ('numpy', 'pandas', 'sklearn', 'scipy', 'networkx')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    repository = Path(node_api.__file__).resolve().parents[1]
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=repository
    )
    assert completed.stdout.strip() == "[]"
