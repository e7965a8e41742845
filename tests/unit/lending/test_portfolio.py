"""The portfolio summary's arithmetic: balances by bucket and the NPL ratio."""

from __future__ import annotations

from node_api.lending.billing_rules import DelinquencyBucket as B
from node_api.lending.portfolio import compute_portfolio_summary


def test_npl_ratio_is_the_m4_and_beyond_balance_over_the_total_in_bps() -> None:
    # Total 1,000,000 + 300,000 + 50,000 + 20,000 + 7,000 = 1,377,000; M4+ = 27,000.
    # 27,000 / 1,377,000 = 196.0784... bps → 196.
    per_line = {
        1: (B.M0, 1_000_000), 2: (B.M1, 300_000), 3: (B.M3, 50_000),
        4: (B.M4, 20_000), 5: (B.M7_PLUS, 7_000), 6: (B.M0, 0),
    }  # fmt: skip
    summary = compute_portfolio_summary(per_line, 12_345)
    assert summary.total_fen == 1_377_000 and summary.non_performing_fen == 27_000
    assert summary.npl_ratio_bps == 196
    by_bucket = {item.bucket: item for item in summary.buckets}
    assert [item.bucket for item in summary.buckets] == list(B)
    assert (by_bucket[B.M0].lines, by_bucket[B.M0].balance_fen) == (1, 1_000_000)
    assert summary.written_off_fen == 12_345


def test_npl_ratio_rounds_half_even_and_is_zero_for_an_empty_book() -> None:
    # 1 / 20,000 of the book = 0.5 bps → 0 (ties to even); 3 / 20,000 = 1.5 → 2.
    assert compute_portfolio_summary({1: (B.M0, 19_999), 2: (B.M5, 1)}, 0).npl_ratio_bps == 0
    assert compute_portfolio_summary({1: (B.M0, 19_997), 2: (B.M5, 3)}, 0).npl_ratio_bps == 2
    assert compute_portfolio_summary({}, 0).npl_ratio_bps == 0
