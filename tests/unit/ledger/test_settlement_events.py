"""The settlement terms the ledger reads from a version's canonical JSON are lending's."""

from __future__ import annotations

from typing import Any

import pytest

from node_api.ledger.settlement_events import (
    DayCount,
    InterestMethod,
    get_days_in_year,
    parse_settlement_terms,
)
from node_api.lending.products import canonical_terms_json, parse_product_terms
from tests.unit.lending.samples import installment_product_data, revolving_product_data


@pytest.mark.parametrize("data", [installment_product_data(), revolving_product_data()])
def test_settlement_terms_match_the_product_terms(data: dict[str, Any]) -> None:
    terms = parse_product_terms(data)
    read = parse_settlement_terms(canonical_terms_json(terms))
    assert (read.product_code, read.version) == (terms.product_code, terms.version)
    assert read.interest_method is terms.interest.method
    assert read.interest_rate == terms.interest.rate
    assert read.day_count is terms.interest.day_count
    assert [(s.partner_ref, s.share_ppm, s.funder_rate_bps) for s in read.funding_split] == [
        (s.partner_id, s.share_ppm, s.funder_rate_bps) for s in terms.funding_split
    ]


def test_apr_day_count_is_read() -> None:
    data = revolving_product_data()
    data["interest"] = {"method": "apr_bps", "rate": 1800, "day_count": "ACT/360"}
    read = parse_settlement_terms(canonical_terms_json(parse_product_terms(data)))
    assert read.interest_method is InterestMethod.APR_BPS
    assert get_days_in_year(read.day_count) == 360
    assert read.day_count is DayCount.ACT_360
