"""Replacement fees: each fee rises by at least the bump (rounded up), follows the market,
never passes the ceiling; a raw transaction reads back to what was signed."""

from __future__ import annotations

from coincurve import PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from node_api.kernel.money import div_ceil
from oracles.tx_sender import (
    REPLACEMENT_BUMP_MIN_BPS,
    FeeQuote,
    cap_fees,
    compute_replacement_fees,
    decode_dynamic_fee_call,
    sign_dynamic_fee_call,
)

GWEI = 10**9
WEI = st.integers(min_value=1, max_value=10_000 * GWEI)


def test_fees_rise_by_the_bump_rounded_up() -> None:
    current = FeeQuote(max_fee_per_gas_wei=3 * GWEI + 1, max_priority_fee_per_gas_wei=GWEI)
    quiet_market = FeeQuote(max_fee_per_gas_wei=GWEI, max_priority_fee_per_gas_wei=GWEI)
    fees = compute_replacement_fees(current, quiet_market, 1_250, 100 * GWEI)
    assert fees == FeeQuote(
        max_fee_per_gas_wei=div_ceil((3 * GWEI + 1) * 11_250, 10_000),
        max_priority_fee_per_gas_wei=1_125_000_000,
    )


def test_fees_follow_a_market_that_rose_more_than_the_bump() -> None:
    current = FeeQuote(max_fee_per_gas_wei=4 * GWEI, max_priority_fee_per_gas_wei=GWEI)
    market = FeeQuote(max_fee_per_gas_wei=40 * GWEI, max_priority_fee_per_gas_wei=2 * GWEI)
    assert compute_replacement_fees(current, market, 1_250, 100 * GWEI) == market


def test_the_ceiling_caps_the_max_fee_and_refuses_a_replacement_it_leaves_no_room_for() -> None:
    current = FeeQuote(max_fee_per_gas_wei=80 * GWEI, max_priority_fee_per_gas_wei=GWEI)
    market = FeeQuote(max_fee_per_gas_wei=400 * GWEI, max_priority_fee_per_gas_wei=GWEI)
    capped = compute_replacement_fees(current, market, 1_250, 95 * GWEI)
    assert capped == FeeQuote(95 * GWEI, 1_125_000_000)
    assert compute_replacement_fees(current, market, 1_250, 89 * GWEI) is None


def test_a_bump_under_the_nodes_minimum_is_raised_to_it() -> None:
    current = FeeQuote(max_fee_per_gas_wei=10 * GWEI, max_priority_fee_per_gas_wei=GWEI)
    fees = compute_replacement_fees(current, current, 1, 100 * GWEI)
    assert fees == FeeQuote(11 * GWEI, 1_100_000_000)


@given(WEI, WEI, WEI, WEI, WEI, st.integers(min_value=0, max_value=50_000))
def test_a_replacement_always_meets_the_minimum_and_the_ceiling(
    max_fee: int, tip: int, market_fee: int, market_tip: int, ceiling: int, bump_bps: int
) -> None:
    current = FeeQuote(max(max_fee, tip), tip)
    fees = compute_replacement_fees(current, FeeQuote(market_fee, market_tip), bump_bps, ceiling)
    minimum = max(bump_bps, REPLACEMENT_BUMP_MIN_BPS) + 10_000
    if fees is None:
        assert div_ceil(current.max_fee_per_gas_wei * minimum, 10_000) > ceiling or (
            div_ceil(current.max_priority_fee_per_gas_wei * minimum, 10_000) > ceiling
        )
        return
    assert fees.max_fee_per_gas_wei <= ceiling
    assert fees.max_priority_fee_per_gas_wei <= fees.max_fee_per_gas_wei
    assert fees.max_fee_per_gas_wei * 10_000 >= current.max_fee_per_gas_wei * minimum
    tip_before = current.max_priority_fee_per_gas_wei
    assert fees.max_priority_fee_per_gas_wei * 10_000 >= tip_before * minimum


def test_cap_fees_keeps_the_tip_under_the_max_fee() -> None:
    assert cap_fees(FeeQuote(50 * GWEI, 60 * GWEI), 40 * GWEI) == FeeQuote(40 * GWEI, 40 * GWEI)
    assert cap_fees(FeeQuote(5 * GWEI, GWEI), 40 * GWEI) == FeeQuote(5 * GWEI, GWEI)


def test_a_signed_call_reads_back_field_for_field() -> None:
    key = PrivateKey(bytes(range(1, 33)))
    fees = FeeQuote(7 * GWEI, 2 * GWEI)
    to = "0x" + "ab" * 20
    raw, _hash = sign_dynamic_fee_call(key, 31337, 42, to, b"\x01\x02call", 123_456, fees)
    call = decode_dynamic_fee_call("0x" + raw.hex())
    assert (call.chain_id, call.nonce, call.fees, call.gas, call.to, call.data) == (
        31337,
        42,
        fees,
        123_456,
        to,
        b"\x01\x02call",
    )
