"""What the registry accepts: servable cards, and the data fingerprint they were trained
on (as the card records it, as the uploader states it, or of the card itself)."""

from __future__ import annotations

import json

import pytest

from node_api.kernel.errors import CreditNetValueError
from node_api.risk.card import DATA_FINGERPRINT_KEY, ScorecardCard, compute_data_fingerprint
from node_api.risk.model_registry import (
    FingerprintSource,
    compute_card_fingerprint,
    parse_uploaded_card,
    resolve_fingerprint,
)
from node_api.risk.scorecard import Scorecard

DATA = compute_data_fingerprint(b"income,outcome\n10,good\n")


@pytest.fixture
def card() -> ScorecardCard:
    return Scorecard.load_packaged("german").card


def _with_data(card: ScorecardCard, fingerprint: str) -> ScorecardCard:
    training = {**card.training, DATA_FINGERPRINT_KEY: fingerprint}
    return card.model_copy(update={"training": training}).with_model_id()


def test_a_card_recording_its_data_is_fingerprinted_by_that_data(card: ScorecardCard) -> None:
    assert resolve_fingerprint(_with_data(card, DATA), None) == (DATA, FingerprintSource.DATA)
    assert resolve_fingerprint(_with_data(card, DATA), DATA) == (DATA, FingerprintSource.DATA)


def test_a_card_without_its_data_takes_the_stated_or_its_own(card: ScorecardCard) -> None:
    assert resolve_fingerprint(card, DATA) == (DATA, FingerprintSource.DATA)
    own = resolve_fingerprint(card, None)
    assert own == (compute_card_fingerprint(card), FingerprintSource.CARD)


def test_RevertWhen_the_stated_data_is_not_what_the_card_was_trained_on(
    card: ScorecardCard,
) -> None:
    other = compute_data_fingerprint(b"other")
    with pytest.raises(CreditNetValueError) as refused:
        resolve_fingerprint(_with_data(card, DATA), other)
    assert refused.value.code == "data_fingerprint_mismatch"


def test_RevertWhen_an_uploaded_card_was_edited(card: ScorecardCard) -> None:
    document = json.loads(card.to_json())
    document["base_points"] += 1
    with pytest.raises(CreditNetValueError) as refused:
        parse_uploaded_card(json.dumps(document))
    assert refused.value.code == "invalid_card" and refused.value.field == "card"


def test_RevertWhen_an_uploaded_card_names_a_characteristic_twice(card: ScorecardCard) -> None:
    twice = card.model_copy(
        update={"characteristics": (*card.characteristics, card.characteristics[0])}
    ).with_model_id()
    with pytest.raises(CreditNetValueError, match="twice"):
        parse_uploaded_card(twice.to_json())


def test_a_packaged_card_is_servable(card: ScorecardCard) -> None:
    assert parse_uploaded_card(card.to_json()).model_id == card.model_id
