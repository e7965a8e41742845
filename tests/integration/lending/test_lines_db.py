"""Credit lines on both databases: opening rules, limit changes, raises, freeze, close."""

from __future__ import annotations

from datetime import date

import pytest

from node_api.http.renderers import render_use
from node_api.kernel.db import Database
from node_api.kernel.errors import ConflictError, CreditNetValueError, NotFoundError
from node_api.ledger.balances import fetch_line_balances
from node_api.ledger.business_date import set_business_date
from node_api.lending.core.batch import run_use_batch
from node_api.lending.core.context import LendingCaches
from node_api.lending.limits import ProductGroup, compute_available_fen
from node_api.lending.line_limits import (
    LineAction,
    change_line_status,
    set_node_limit,
    set_temporary_raise,
)
from node_api.lending.lines import (
    LineOpening,
    LineStatus,
    ProductLimit,
    fetch_line,
    open_credit_line,
)
from node_api.lending.repayments import repay
from tests.integration.lending.helpers import OPENED_ON, check_books, product_data, register
from tests.integration.lending.test_purchases_db import purchase


def _opening(**changes: object) -> LineOpening:
    fields: dict[str, object] = {
        "customer_ref": "cust-9",
        "opened_on": OPENED_ON,
        "total_limit_fen": 50_000,
        "group_limits": {ProductGroup.PURCHASE: 40_000},
        "products": [ProductLimit("REV1", 1, 40_000, {"pos": 5_000})],
    }
    fields.update(changes)
    return LineOpening(**fields)  # type: ignore[arg-type]


def test_open_line_builds_the_tree_and_its_accounts(
    database: Database, caches: LendingCaches
) -> None:
    with database.engine.begin() as conn:
        register(conn, product_data())
        line_id = open_credit_line(conn, _opening(), caches.products)
        line = fetch_line(conn, line_id)
        assert [n.path for n in line.nodes] == [
            "total",
            "total/purchase",
            "total/purchase/REV1",
            "total/purchase/REV1/pos",
        ]
        product = line.node_at("total/purchase/REV1")
        assert product is not None and (product.product_code, product.product_version) == (
            "REV1",
            1,
        )
        assert line.bill_day == 5
        balances = fetch_line_balances(conn, line_id)
        # 15 per-line accounts (12 receivables, customer credit, written off and interest
        # suspended off balance sheet) and the funding payables, summed.
        assert len(balances) == 16 and not any(balances.values())


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"customer_ref": "name with spaces"}, "customer_ref"),
        ({"group_limits": {ProductGroup.PURCHASE: 60_000}}, "group_limits.purchase"),
        ({"group_limits": {}}, "group_limits.purchase"),
        ({"products": [ProductLimit("REV1", 1, 45_000)]}, "products.0.limit_fen"),
        (
            {"products": [ProductLimit("REV1", 1, 100, {"kiosk": 50})]},
            "products.0.channel_limits.kiosk",
        ),
        (
            {"products": [ProductLimit("REV1", 1, 100, {"pos": 500})]},
            "products.0.channel_limits.pos",
        ),
        ({"bill_day": 7}, "bill_day"),
        ({"products": []}, "products"),
    ],
)
def test_RevertWhen_opening_breaks_a_rule_it_names_the_field(
    database: Database, caches: LendingCaches, changes: dict[str, object], field: str
) -> None:
    with database.engine.begin() as conn:
        register(conn, product_data())
        with pytest.raises(CreditNetValueError) as caught:
            open_credit_line(conn, _opening(**changes), caches.products)
        assert caught.value.field == field


def test_RevertWhen_product_is_not_registered(database: Database, caches: LendingCaches) -> None:
    with database.engine.begin() as conn, pytest.raises(NotFoundError):
        open_credit_line(conn, _opening(), caches.products)


def test_RevertWhen_customer_already_has_an_open_line(
    database: Database, line_id: int, caches: LendingCaches
) -> None:
    with database.engine.begin() as conn, pytest.raises(ConflictError) as caught:
        open_credit_line(conn, _opening(customer_ref="cust-1"), caches.products)
    assert caught.value.code == "customer_has_line"


def test_limit_cannot_drop_below_usage_or_above_its_parent(
    database: Database, line_id: int, caches: LendingCaches
) -> None:
    purchase(database, caches, line_id, 35_000, channel_id="pos")
    with database.engine.begin() as conn:
        with pytest.raises(ConflictError):
            set_node_limit(conn, line_id, "total/purchase/REV1", 34_999, caches.products)
        with pytest.raises(CreditNetValueError):
            set_node_limit(conn, line_id, "total/purchase/REV1", 80_001, caches.products)
        with pytest.raises(CreditNetValueError):
            set_node_limit(conn, line_id, "total/purchase/REV1", 29_999, caches.products)
        line = set_node_limit(conn, line_id, "total/purchase/REV1", 35_000, caches.products)
        node = line.node_at("total/purchase/REV1")
        assert node is not None and compute_available_fen(node, OPENED_ON) == 0


def test_new_channel_sub_limit_starts_with_the_principal_already_drawn_there(
    database: Database, line_id: int, caches: LendingCaches
) -> None:
    purchase(database, caches, line_id, 4_000, channel_id="pos")
    with database.engine.begin() as conn, pytest.raises(ConflictError):
        set_node_limit(conn, line_id, "total/purchase/REV1/pos", 3_000, caches.products)
    with database.engine.begin() as conn:
        line = set_node_limit(conn, line_id, "total/purchase/REV1/pos", 5_000, caches.products)
        node = line.node_at("total/purchase/REV1/pos")
        assert node is not None and node.used_fen == 4_000
    assert purchase(database, caches, line_id, 1_001, channel_id="pos").body["code"] == "over_limit"
    with database.engine.begin() as conn:
        repay(conn, caches, line_id=line_id, amount_fen=4_000, currency="CNY", as_of=None)
        check_books(conn, [line_id])


def test_temporary_raise_allows_more_until_it_expires(
    database: Database, line_id: int, caches: LendingCaches
) -> None:
    expires = date(2025, 3, 5)
    with database.engine.begin() as conn:
        for path in ("total", "total/purchase", "total/purchase/REV1"):
            set_temporary_raise(conn, line_id, path, 50_000, expires, OPENED_ON, caches.products)
    assert purchase(database, caches, line_id, 50_000, channel_id="pos").status_code == 201
    assert purchase(database, caches, line_id, 50_000, channel_id="pos").status_code == 201
    assert purchase(database, caches, line_id, 30_001, channel_id="pos").status_code == 409
    with database.engine.begin() as conn:
        set_business_date(conn, date(2025, 3, 6))
    late = purchase(database, caches, line_id, 1, channel_id="pos", as_of=date(2025, 3, 6))
    assert late.body["code"] == "over_limit"


def test_frozen_line_declines_use_and_closed_line_needs_zero_balances(
    database: Database, line_id: int, caches: LendingCaches
) -> None:
    with database.engine.begin() as conn:
        change_line_status(conn, line_id, LineAction.FREEZE, OPENED_ON)
    assert purchase(database, caches, line_id, 100).body["code"] == "line_frozen"
    with database.engine.begin() as conn:
        change_line_status(conn, line_id, LineAction.UNFREEZE, OPENED_ON)
    assert purchase(database, caches, line_id, 100).status_code == 201
    with database.engine.begin() as conn:
        with pytest.raises(ConflictError) as caught:
            change_line_status(conn, line_id, LineAction.CLOSE, OPENED_ON)
        assert caught.value.code == "line_has_balance"
        repay(conn, caches, line_id=line_id, amount_fen=100, currency="CNY", as_of=None)
        line = change_line_status(conn, line_id, LineAction.CLOSE, OPENED_ON)
        assert line.status is LineStatus.CLOSED
    with database.engine.begin() as conn:
        assert run_use_batch(conn, caches, [], render_use) == []
