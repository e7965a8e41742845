"""Any JSON value of any card characteristic gets a decision or a 422, never a 5xx."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from node_api.kernel.db import Database
from node_api.risk.scorecard import Scorecard
from tests.integration.onboarding.onboarding_helpers import Api, application_body, count_rows

NAMES = [c.name for c in Scorecard.load_packaged("german").card.characteristics]
VALUES = st.one_of(
    st.sampled_from([2**70, -(2**64), 2**53, 1e308, -0.0, "NaN", "inf", " 12 ", "", "?"]),
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(characteristics=st.dictionaries(st.sampled_from(NAMES), VALUES, max_size=len(NAMES)))
def test_any_characteristic_values_are_decided_or_refused_by_field(
    api: Api, database: Database, characteristics: dict[str, Any]
) -> None:
    with database.engine.connect() as conn:
        before = count_rows(conn)["loan_application"]
    response = api.apply(application_body(characteristics=characteristics))
    with database.engine.connect() as conn:
        after = count_rows(conn)["loan_application"]
    if response.status_code == 201:
        assert response.json()["decision"] in {"approved", "declined", "review"}
        assert after == before + 1
    else:
        assert response.status_code == 422, response.text
        assert response.json()["field"].startswith("characteristics.")
        assert after == before
