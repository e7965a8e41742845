"""Properties of schedules, the waterfall and the terms hash (Hypothesis)."""

from __future__ import annotations

import copy
from datetime import date, timedelta
from fractions import Fraction
from typing import Any

from hypothesis import assume, given
from hypothesis import strategies as st

from node_api.kernel.errors import CreditNetValueError
from node_api.lending.billing_rules import Component, OutstandingItem, compute_waterfall
from node_api.lending.products import parse_product_terms, terms_hash
from node_api.lending.schedules import (
    PricingMethod,
    Schedule,
    compute_annuity_payment,
    compute_schedule,
)
from tests.unit.lending.samples import DEFAULT_THRESHOLDS

START = date(2025, 1, 5)
FIRST_DUE = date(2025, 2, 10)
TENORS = st.integers(min_value=1, max_value=36) | st.sampled_from([3, 6, 9, 12, 18, 24])


@st.composite
def plans(draw: st.DrawFn, principal_fen_min: int = 1) -> Schedule:
    method = draw(st.sampled_from(PricingMethod))
    rate_max = 300 if method is PricingMethod.FLAT_MONTHLY_FEE else 3_600
    return compute_schedule(
        draw(st.integers(min_value=principal_fen_min, max_value=10**10)),
        draw(TENORS),
        method,
        draw(st.integers(min_value=0, max_value=rate_max)),
        START,
        FIRST_DUE,
        draw(st.integers(min_value=0, max_value=5_000)),
    )


@given(plans())
def test_schedule_principal_sums_to_financed_amount(schedule: Schedule) -> None:
    assert schedule.total_principal_fen == schedule.principal_fen
    assert schedule.installments[-1].balance_after_fen == 0
    assert len(schedule.installments) == schedule.tenor_months


@given(plans())
def test_every_installment_is_non_negative_and_balances_only_fall(schedule: Schedule) -> None:
    previous_balance_fen = schedule.principal_fen
    for item in schedule.installments:
        assert min(item.principal_fen, item.interest_fen, item.fee_fen) >= 0
        assert item.payment_fen == item.principal_fen + item.interest_fen + item.fee_fen
        assert 0 <= item.balance_after_fen <= previous_balance_fen
        previous_balance_fen = item.balance_after_fen


@given(
    st.integers(min_value=1, max_value=10**10),
    TENORS,
    st.integers(min_value=0, max_value=3_600),
)
def test_annuity_payment_is_the_exact_formula_rounded_half_even(
    principal_fen: int, tenor_months: int, rate_bps: int
) -> None:
    # Independent of the implementation: Fraction arithmetic and round() (half-even).
    rate = Fraction(rate_bps, 120_000)
    if rate == 0:
        exact = Fraction(principal_fen, tenor_months)
    else:
        exact = principal_fen * rate / (1 - (1 + rate) ** -tenor_months)

    assert compute_annuity_payment(principal_fen, tenor_months, rate_bps) == round(exact)


@given(
    st.integers(min_value=10_000, max_value=10**10),
    TENORS,
    st.integers(min_value=0, max_value=3_600),
)
def test_annuity_payments_are_equal_except_the_last_within_a_bounded_difference(
    principal_fen: int, tenor_months: int, rate_bps: int
) -> None:
    schedule = compute_schedule(
        principal_fen, tenor_months, PricingMethod.ANNUITY, rate_bps, START, FIRST_DUE
    )
    payment_fen = compute_annuity_payment(principal_fen, tenor_months, rate_bps)
    *regular, last = schedule.installments

    assert all(item.payment_fen == payment_fen for item in regular)
    # Each period rounds the payment and the interest by at most half a fen each, and
    # that drift compounds at r: |last − payment| ≤ s_n = ((1 + r)^n − 1) / r (= n at 0%).
    rate = Fraction(rate_bps, 120_000)
    bound = tenor_months if rate == 0 else ((1 + rate) ** tenor_months - 1) / rate
    assert abs(last.payment_fen - payment_fen) <= bound


@given(plans())
def test_equal_principal_parts_differ_only_on_the_first_installment(schedule: Schedule) -> None:
    assume(schedule.method is not PricingMethod.ANNUITY)
    base_fen, remainder_fen = divmod(schedule.principal_fen, schedule.tenor_months)
    parts = [item.principal_fen for item in schedule.installments]

    assert parts == [base_fen + remainder_fen] + [base_fen] * (schedule.tenor_months - 1)


# --------------------------------------------------------------- waterfall


@st.composite
def outstanding_items(draw: st.DrawFn) -> list[OutstandingItem]:
    rows = draw(
        st.lists(
            st.tuples(
                st.sampled_from(Component),
                st.integers(min_value=0, max_value=1_000_000),
                st.booleans(),
                st.integers(min_value=0, max_value=400),
            ),
            max_size=12,
        )
    )
    return [
        OutstandingItem(f"item-{index:02d}", component, amount, past_due, START + timedelta(days))
        for index, (component, amount, past_due, days) in enumerate(rows)
    ]


@given(
    st.integers(min_value=0, max_value=5_000_000),
    outstanding_items(),
    st.permutations(list(Component)),
    st.booleans(),
)
def test_waterfall_allocations_sum_to_the_payment(
    payment_fen: int,
    items: list[OutstandingItem],
    order: list[Component],
    past_due_first: bool,
) -> None:
    result = compute_waterfall(payment_fen, items, order, past_due_first)
    by_id = {item.item_id: item for item in items}

    assert result.allocated_fen + result.credit_balance_fen == payment_fen
    assert result.credit_balance_fen >= 0
    assert len({a.item_id for a in result.allocations}) == len(result.allocations)
    assert all(0 < a.amount_fen <= by_id[a.item_id].amount_fen for a in result.allocations)
    # Only the last allocation may be partial; credit is left only when all is paid.
    for allocation in result.allocations[:-1]:
        assert allocation.amount_fen == by_id[allocation.item_id].amount_fen
    total_outstanding_fen = sum(item.amount_fen for item in items)
    assert result.credit_balance_fen == max(payment_fen - total_outstanding_fen, 0)
    # Allocations follow the order: status (if past-due first), component, age, id.
    rank = {component: index for index, component in enumerate(order)}

    def key(item: OutstandingItem) -> tuple[bool, int, date, str]:
        return (
            past_due_first and not item.past_due,
            rank[item.component],
            item.due_date,
            item.item_id,
        )

    keys = [key(by_id[a.item_id]) for a in result.allocations]
    assert keys == sorted(keys)
    # Nothing ahead of the last allocation in that order is left unpaid.
    paid_fen = {a.item_id: a.amount_fen for a in result.allocations}
    for item in items:
        if keys and key(item) < keys[-1]:
            assert paid_fen.get(item.item_id, 0) == item.amount_fen


# ------------------------------------------------------------- terms hash

_IDENTIFIERS = st.from_regex(r"[a-z][a-z0-9-]{0,10}", fullmatch=True)


@st.composite
def product_data(draw: st.DrawFn) -> dict[str, Any]:
    product_type = draw(st.sampled_from(["revolving_purchase", "installment", "cash_loan"]))
    limit_fen_min = draw(st.integers(min_value=1, max_value=10**8))
    origination_bps = draw(st.integers(min_value=0, max_value=500))
    late_fee_fixed_fen = draw(st.integers(min_value=0, max_value=10_000))
    partner_count = draw(st.integers(min_value=1, max_value=3))
    cuts = sorted(
        draw(
            st.lists(
                st.integers(min_value=1, max_value=999_999),
                unique=True,
                min_size=partner_count - 1,
                max_size=partner_count - 1,
            )
        )
    )
    bounds = [0, *cuts, 1_000_000]
    partners = draw(
        st.lists(_IDENTIFIERS, unique=True, min_size=partner_count, max_size=partner_count)
    )
    return {
        "product_code": draw(st.from_regex(r"[A-Z][A-Z0-9-]{0,10}", fullmatch=True)),
        "version": draw(st.integers(min_value=1, max_value=1_000)),
        "product_type": product_type,
        "currency": "CNY",
        "limit_fen_min": limit_fen_min,
        "limit_fen_max": draw(st.integers(min_value=limit_fen_min, max_value=10**9)),
        "interest": {
            "method": draw(st.sampled_from(["daily_ppm", "apr_bps"])),
            "rate": draw(st.integers(min_value=0, max_value=3_600)),
            "day_count": draw(st.sampled_from(["ACT/365", "ACT/360"])),
        },
        "free_interest_days": draw(st.integers(min_value=0, max_value=60)),
        "bill_day_options": draw(
            st.lists(st.integers(min_value=1, max_value=28), unique=True, min_size=1, max_size=5)
        ),
        "due_date_offset_days": draw(st.integers(min_value=0, max_value=30)),
        "minimum_payment": {
            "principal_share_bps": draw(st.integers(min_value=0, max_value=10_000)),
            "floor_fen": draw(st.integers(min_value=0, max_value=10_000)),
        },
        "installment": {
            "tenors_months": draw(
                st.lists(
                    st.sampled_from([3, 6, 9, 12, 18, 24]),
                    unique=True,
                    min_size=0 if product_type == "revolving_purchase" else 1,
                )
            ),
            "pricing_method": draw(st.sampled_from(list(PricingMethod))).value,
            "rate_bps": draw(st.integers(min_value=0, max_value=3_000)),
            "cancellation_days": draw(st.integers(min_value=0, max_value=14)),
        },
        "fees": {
            "origination_fee_bps": origination_bps,
            "origination_fee_fixed_fen": 0
            if origination_bps
            else draw(st.integers(min_value=0, max_value=5_000)),
            "installment_fee_fen": draw(st.integers(min_value=0, max_value=1_000)),
            "late_fee_fixed_fen": late_fee_fixed_fen,
            "late_fee_cap_bps": draw(st.integers(min_value=0, max_value=1_000)),
            "late_fee_cap_per_bill_fen": draw(
                st.integers(min_value=late_fee_fixed_fen, max_value=20_000)
            ),
            "early_repayment_fee_bps": draw(st.integers(min_value=0, max_value=300)),
        },
        "penalty_rate_ppm_per_day": draw(st.integers(min_value=0, max_value=1_000)),
        "grace_days": draw(st.integers(min_value=0, max_value=10)),
        "allocation": {
            "order": draw(st.permutations(["penalty", "fees", "interest", "principal"])),
            "past_due_first": draw(st.booleans()),
        },
        "delinquency": {
            "thresholds": copy.deepcopy(DEFAULT_THRESHOLDS),
            "charge_off_days": draw(st.integers(min_value=1, max_value=360)),
        },
        "funding_split": [
            {
                "partner_id": partner,
                "share_ppm": bounds[index + 1] - bounds[index],
                "funder_rate_bps": draw(st.integers(min_value=0, max_value=1_000)),
            }
            for index, partner in enumerate(partners)
        ],
        "channel_commission_bps": draw(st.integers(min_value=0, max_value=500)),
        "eligible_channels": draw(st.lists(_IDENTIFIERS, unique=True, min_size=1, max_size=4)),
    }


_SET_LIKE_KEYS = {"bill_day_options", "tenors_months", "eligible_channels", "funding_split"}


def _shuffled(value: Any, key: str, data: st.DataObject) -> Any:
    """`value` with every object's keys, and every set-like list, in a drawn order."""
    if isinstance(value, dict):
        keys = data.draw(st.permutations(list(value)))
        return {name: _shuffled(value[name], name, data) for name in keys}
    if isinstance(value, list):
        items = [_shuffled(item, "", data) for item in value]
        return data.draw(st.permutations(items)) if key in _SET_LIKE_KEYS else items
    return value


@given(product_data(), st.data())
def test_terms_hash_is_stable_under_field_reordering(
    product: dict[str, Any], data: st.DataObject
) -> None:
    reordered = _shuffled(product, "", data)

    assert terms_hash(parse_product_terms(reordered)) == terms_hash(parse_product_terms(product))


def _leaf_paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(value, dict):
        return [p for key, item in value.items() for p in _leaf_paths(item, (*path, key))]
    if isinstance(value, list):
        return [p for index, item in enumerate(value) for p in _leaf_paths(item, (*path, index))]
    return [path]


_ENUM_FAMILIES = [
    ("revolving_purchase", "installment", "cash_loan"),
    ("daily_ppm", "apr_bps"),
    ("ACT/365", "ACT/360"),
    ("annuity", "equal_principal", "flat_monthly_fee"),
    ("M1", "M2", "M3", "M4", "M5", "M6", "M7+"),
    ("penalty", "fees", "interest", "principal"),
]


def _alternatives(value: Any) -> list[Any]:
    """Other values of the same kind; the caller keeps only those that still validate."""
    if isinstance(value, bool):
        return [not value]
    if isinstance(value, int):
        return [value + 1, value - 1]
    for family in _ENUM_FAMILIES:
        if value in family:
            return [other for other in family if other != value]
    return [value + "x"]


def _replaced(document: Any, path: tuple[Any, ...], new_value: Any) -> Any:
    changed = copy.deepcopy(document)
    target = changed
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = new_value
    return changed


@given(product_data())
def test_terms_hash_changes_with_any_value(product: dict[str, Any]) -> None:
    terms = parse_product_terms(product)
    canonical = terms.model_dump(mode="json")
    original_hash = terms_hash(terms)
    changed_leaves = set()
    for path in _leaf_paths(canonical):
        value = canonical
        for part in path:
            value = value[part]
        for alternative in _alternatives(value):
            try:
                mutated = parse_product_terms(_replaced(canonical, path, alternative))
            except CreditNetValueError:
                continue
            assert terms_hash(mutated) != original_hash, path
            changed_leaves.add(path[0])
    # Not vacuous: most top-level fields had a valid other value (currency never has;
    # product type and limits may not, e.g. a revolving product without tenors).
    assert len(changed_leaves) >= len(canonical) - 4
