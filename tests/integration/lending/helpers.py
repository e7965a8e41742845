"""Products, lines and invariant checks shared by the ledger and lending tests."""

from __future__ import annotations

import copy
from datetime import date
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from node_api.http.examples import PRODUCT_TERMS
from node_api.ledger.accounts import PRINCIPAL_ACCOUNT_TYPES
from node_api.ledger.balances import fetch_balance_drift, fetch_line_balances, fetch_trial_balance
from node_api.ledger.schema import ledger_account_table
from node_api.lending.core.context import LendingCaches
from node_api.lending.limits import ProductGroup
from node_api.lending.lines import LineOpening, ProductLimit, fetch_line, open_credit_line
from node_api.lending.product_versions import register_product_version
from node_api.lending.products import ProductTerms, parse_product_terms
from node_api.lending.purchase_tables import purchase_table

OPENED_ON = date(2025, 3, 1)


def product_data(code: str = "REV1", **changes: Any) -> dict[str, Any]:
    """A revolving purchase product: 70% funded by bank-a, 30% by the lender (the API's
    example with limits from 1 fen to 100,000 yuan)."""
    return {
        **copy.deepcopy(PRODUCT_TERMS),
        "product_code": code,
        "limit_fen_min": 1,
        "limit_fen_max": 10_000_000,
        **changes,
    }


def cash_product_data(code: str = "CASH1") -> dict[str, Any]:
    """A cash loan at 15% a year with a 0.3% origination fee: a drawdown repaid on its
    due date 20 days later (the shortest period) costs 22.18% effective, within the cap."""
    return product_data(
        code,
        product_type="cash_loan",
        interest={"method": "apr_bps", "rate": 1500, "day_count": "ACT/365"},
        free_interest_days=0,
        installment={"tenors_months": [3, 6, 12], "pricing_method": "annuity", "rate_bps": 1500},
        fees={"origination_fee_bps": 30},
    )


def register(conn: Connection, data: dict[str, Any]) -> ProductTerms:
    terms = parse_product_terms(data)
    register_product_version(conn, terms)
    return terms


def open_line(
    conn: Connection,
    caches: LendingCaches,
    *,
    customer_ref: str = "cust-1",
    total_fen: int = 100_000,
    purchase_fen: int = 80_000,
    product_fen: int = 80_000,
    cash_fen: int | None = None,
    channel_limits: dict[str, int] | None = None,
) -> int:
    """A line with REV1 (and CASH1 when `cash_fen` is given), products registered first."""
    register(conn, product_data())
    groups = {ProductGroup.PURCHASE: purchase_fen}
    products = [ProductLimit("REV1", 1, product_fen, channel_limits or {})]
    if cash_fen is not None:
        register(conn, cash_product_data())
        groups[ProductGroup.CASH] = cash_fen
        products.append(ProductLimit("CASH1", 1, cash_fen))
    opening = LineOpening(customer_ref, OPENED_ON, total_fen, groups, products)
    return open_credit_line(conn, opening, caches.products)


def check_books(conn: Connection, line_ids: list[int]) -> None:
    """The invariants every test ends with: the trial balance is zero, no floor is crossed,
    running balances equal their postings, and limit usage equals open principal at every
    level (each node: the sum of open principal of the uses through it)."""
    trial = fetch_trial_balance(conn)
    assert trial.balanced, trial
    assert fetch_balance_drift(conn) == []
    accounts = ledger_account_table
    crossed = conn.execute(
        select(func.count()).where(
            accounts.c.floor_fen.is_not(None)
            & (accounts.c.balance_fen * accounts.c.normal_sign < accounts.c.floor_fen)
        )
    ).scalar_one()
    assert crossed == 0
    for line_id in line_ids:
        check_line_usage(conn, line_id)


def check_line_usage(conn: Connection, line_id: int) -> None:
    line = fetch_line(conn, line_id)
    uses = conn.execute(
        select(
            purchase_table.c.product_node_id,
            purchase_table.c.channel_id,
            purchase_table.c.principal_open_fen,
        ).where(purchase_table.c.credit_line_id == line_id)
    ).all()
    by_id = {node.node_id: node for node in line.nodes}
    expected = {node.node_id: 0 for node in line.nodes}
    for product_node_id, channel_id, open_fen in uses:
        node = by_id[product_node_id]
        channel = line.node_at(f"{node.path}/{channel_id}")
        if channel is not None:
            expected[channel.node_id] += open_fen
        current: Any = node
        while current is not None:
            expected[current.node_id] += open_fen
            current = by_id.get(current.parent_id) if current.parent_id else None
    assert {n.node_id: n.used_fen for n in line.nodes} == expected
    balances = fetch_line_balances(conn, line_id)
    principal_fen = sum(balances[kind] for kind in PRINCIPAL_ACCOUNT_TYPES)
    root = line.node_at("total")
    assert root is not None and root.used_fen == principal_fen
