"""Stateful property test of the books on SQLite and PostgreSQL.

Random purchases (alone and in batches over two lines), cash drawdowns, refunds,
repayments (customer credit applied to what is due), credit refunds, reversals of
repayments, end-of-day-like ageing, limit changes, temporary
raises, freezes and business-date moves. After every step: the trial balance is zero,
running balances equal their postings, no floor is crossed, limit usage equals the open
principal at every level, the funding payables of each product are its partners' exact
shares of what they add up to, no more than its open principal (uses leave them to end
of day) and all of it once end of day's funding step ran (before every date move), every
accepted use fitted every level it reserved on, and every over-limit decline named a
level that really could not take it.
"""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import delete
from sqlalchemy.engine import Engine

from node_api.http.renderers import render_use
from node_api.kernel.db import Database
from node_api.kernel.errors import ConflictError, CreditNetValueError
from node_api.ledger.accounts import (
    AccountType,
    funding_payable_code,
    line_account_code,
    node_account_code,
)
from node_api.ledger.balances import fetch_account_balance, fetch_line_balances
from node_api.ledger.business_date import fetch_business_date, set_business_date
from node_api.ledger.postings import BatchDraft, PostingLine, post_batch
from node_api.lending.core.batch import run_use_batch
from node_api.lending.core.context import LendingCaches
from node_api.lending.core.decide import UseKind
from node_api.lending.core.entries import compute_funded_split
from node_api.lending.customer_credit import refund_customer_credit
from node_api.lending.eod.context import EodContext
from node_api.lending.eod.step_fund import run_funding_batch
from node_api.lending.limits import compute_effective_limit_fen
from node_api.lending.line_limits import (
    LineAction,
    change_line_status,
    set_node_limit,
    set_temporary_raise,
)
from node_api.lending.lines import fetch_line
from node_api.lending.purchases import refund_purchase
from node_api.lending.repayments import repay, reverse_repayment
from node_api.schema.tables import metadata
from tests.db_fixtures import _truncate_all
from tests.integration.lending.helpers import OPENED_ON, check_books, open_line
from tests.integration.lending.test_purchases_db import use_request

PATHS = (
    "total",
    "total/purchase",
    "total/purchase/REV1",
    "total/purchase/REV1/app",
    "total/cash",
    "total/cash/CASH1",
)
SHARES = {"bank-a": 700_000, "lender": 300_000}


def _wipe(engine: Engine) -> None:
    if engine.dialect.name == "postgresql":
        _truncate_all(engine)
        return
    with engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            conn.execute(delete(table))


class Books(RuleBasedStateMachine):
    database: Database

    uses = Bundle("uses")
    repayments = Bundle("repayments")

    def __init__(self) -> None:
        super().__init__()
        _wipe(self.database.engine)
        self.caches = LendingCaches()
        self.keys = itertools.count()
        self.reversed_lines: dict[int, bool] = {}
        with self.database.engine.begin() as conn:
            set_business_date(conn, OPENED_ON)
            self.lines = [
                open_line(
                    conn,
                    self.caches,
                    customer_ref=f"c{i}",
                    total_fen=20_000,
                    purchase_fen=15_000,
                    product_fen=15_000,
                    cash_fen=5_000,
                    channel_limits={"app": 6_000},
                )
                for i in range(2)
            ]

    @initialize()
    def start(self) -> None:
        self.today = OPENED_ON

    def _use(self, line_index: int, amount_fen: int, channel: str, kind: UseKind) -> Any:
        return use_request(
            self.lines[line_index],
            amount_fen,
            channel_id=channel,
            kind=kind,
            merchant_id="m-1" if kind is UseKind.PURCHASE else None,
        )

    def _check_decisions(self, requests: list[Any], results: list[Any]) -> None:
        """Accepted uses fit on every level of their path (a level off the path may be
        above its limit: a raise that expired or was cancelled leaves its usage); over-limit
        declines name a level that could not take them."""
        with self.database.engine.connect() as conn:
            for request, result in zip(requests, results, strict=True):
                if result.status_code == 201:
                    kind = "purchase" if request.kind is UseKind.PURCHASE else "cash"
                    use_path = f"total/{kind}/{result.body['product_code']}/{request.channel_id}/"
                    line = fetch_line(conn, request.credit_line_id)
                    on_path = [node for node in line.nodes if use_path.startswith(node.path + "/")]
                    assert len(on_path) >= 3
                    for node in on_path:
                        assert node.used_fen <= compute_effective_limit_fen(node, self.today) or (
                            self.reversed_lines.get(request.credit_line_id)
                        )
                elif result.body.get("code") == "over_limit":
                    assert result.body["limit_path"] in PATHS

    @rule(
        target=uses,
        requests=st.lists(
            st.tuples(
                st.integers(0, 1),
                st.integers(1, 9_000),
                st.sampled_from(["app", "pos"]),
                st.sampled_from([UseKind.PURCHASE, UseKind.PURCHASE, UseKind.CASH_DRAWDOWN]),
            ),
            min_size=1,
            max_size=4,
        ),
    )
    def authorize(self, requests: list[tuple[int, int, str, UseKind]]) -> Any:
        built = [self._use(*item) for item in requests]
        with self.database.engine.begin() as conn:
            results = run_use_batch(conn, self.caches, built, render_use)
        assert {r.status_code for r in results} <= {201, 409, 422}
        # 422: a tiny drawdown whose fee, rounded to the fen, costs more than the cap.
        assert all(r.body["code"] == "cost_cap_exceeded" for r in results if r.status_code == 422)
        self._check_decisions(built, results)
        accepted = [
            (r.body["credit_line_id"], r.body["id"])
            for r in results
            if r.status_code == 201 and r.body["kind"] == "purchase"
        ]
        return accepted[0] if accepted else None

    @rule(use=uses, amount_fen=st.one_of(st.none(), st.integers(1, 5_000)))
    def refund(self, use: tuple[int, int] | None, amount_fen: int | None) -> None:
        if use is None:
            return
        try:
            with self.database.engine.begin() as conn:
                refund_purchase(
                    conn,
                    self.caches,
                    line_id=use[0],
                    purchase_id=use[1],
                    amount_fen=amount_fen,
                    as_of=None,
                )
        except ConflictError as error:
            assert error.code in ("refund_exceeds_purchase", "line_closed")

    @rule(target=repayments, line_index=st.integers(0, 1), amount_fen=st.integers(1, 12_000))
    def pay(self, line_index: int, amount_fen: int) -> tuple[int, int]:
        line_id = self.lines[line_index]
        with self.database.engine.begin() as conn:
            result = repay(
                conn,
                self.caches,
                line_id=line_id,
                amount_fen=amount_fen,
                currency="CNY",
                as_of=None,
            )
        allocated = sum(a.amount_fen for a in result.allocations)
        assert allocated + result.customer_credit_fen == amount_fen
        return line_id, result.repayment_id

    @rule(line_index=st.integers(0, 1), amount_fen=st.integers(1, 6_000))
    def refund_credit(self, line_index: int, amount_fen: int) -> None:
        """Customer credit paid out (after it settles what is due), never beyond it."""
        try:
            with self.database.engine.begin() as conn:
                refund_customer_credit(
                    conn, self.caches, line_id=self.lines[line_index], amount_fen=amount_fen,
                    currency="CNY", as_of=None,
                )  # fmt: skip
        except ConflictError as error:
            assert error.code in ("insufficient_credit", "line_closed")

    @rule(repayment=consumes(repayments))
    def bounce(self, repayment: tuple[int, int]) -> None:
        line_id, repayment_id = repayment
        try:
            with self.database.engine.begin() as conn:
                reverse_repayment(
                    conn, self.caches, line_id=line_id, repayment_id=repayment_id, as_of=None
                )
        except ConflictError as error:
            # Customer credit from this payment was already given back by a refund's
            # reversal order, or the payment was reversed as part of another: both refusals.
            # Or its credit was paid out to the customer since.
            assert error.code in ("floor_crossed", "already_reversed", "credit_already_refunded")
            return
        self.reversed_lines[line_id] = True

    @rule(
        line_index=st.integers(0, 1),
        bill_share=st.integers(0, 100),
        due_share=st.integers(0, 100),
        penalty_fen=st.integers(0, 300),
    )
    def age(self, line_index: int, bill_share: int, due_share: int, penalty_fen: int) -> None:
        """What end of day does to balances: bill, make past due, charge penalty."""
        line_id = self.lines[line_index]
        customer = f"c{line_index}"  # as the lines were opened
        with self.database.engine.begin() as conn:
            balances = fetch_line_balances(conn, line_id)
            billed = balances[AccountType.PRINCIPAL_UNBILLED] * bill_share // 100
            overdue = (balances[AccountType.PRINCIPAL_BILLED] + billed) * due_share // 100

            def code(kind: AccountType) -> str:
                return line_account_code(line_id, kind)

            moves = [
                (code(AccountType.PRINCIPAL_UNBILLED), -billed),
                (code(AccountType.PRINCIPAL_BILLED), billed - overdue),
                (code(AccountType.PRINCIPAL_PAST_DUE), overdue),
                (code(AccountType.PENALTY_PAST_DUE), penalty_fen),
                (node_account_code(AccountType.PENALTY_INCOME), -penalty_fen),
            ]
            lines = tuple(PostingLine(c, a) for c, a in moves if a)
            if len(lines) >= 2:
                key = f"eod:{line_id}:{next(self.keys)}"
                post_batch(
                    conn,
                    BatchDraft(key, "end_of_day", self.today, lines, line_id, customer_id=customer),
                    self.caches.accounts,
                )

    @rule(
        line_index=st.integers(0, 1), path=st.sampled_from(PATHS), limit_fen=st.integers(0, 25_000)
    )
    def change_limit(self, line_index: int, path: str, limit_fen: int) -> None:
        try:
            with self.database.engine.begin() as conn:
                set_node_limit(conn, self.lines[line_index], path, limit_fen, self.caches.products)
        except (ConflictError, CreditNetValueError):
            pass

    @rule(
        line_index=st.integers(0, 1),
        path=st.sampled_from(PATHS),
        raise_fen=st.integers(0, 10_000),
        days=st.integers(0, 3),
    )
    def temporary_raise(self, line_index: int, path: str, raise_fen: int, days: int) -> None:
        expires = self.today + timedelta(days=days)
        try:
            with self.database.engine.begin() as conn:
                set_temporary_raise(
                    conn,
                    self.lines[line_index],
                    path,
                    raise_fen,
                    expires,
                    self.today,
                    self.caches.products,
                )
        except (ConflictError, CreditNetValueError):
            pass

    @rule(
        line_index=st.integers(0, 1),
        action=st.sampled_from([LineAction.FREEZE, LineAction.UNFREEZE]),
    )
    def freeze_or_unfreeze(self, line_index: int, action: LineAction) -> None:
        with self.database.engine.begin() as conn:
            change_line_status(conn, self.lines[line_index], action, self.today)

    @precondition(lambda self: self.today < OPENED_ON + timedelta(days=60))
    @rule(days=st.integers(1, 3))
    def next_day(self, days: int) -> None:
        self.fund()
        self.today += timedelta(days=days)
        with self.database.engine.begin() as conn:
            set_business_date(conn, self.today)
            assert fetch_business_date(conn) == self.today

    def fund(self) -> None:
        """End of day's funding step on both lines (before every date move): every
        payable on target after it."""
        with self.database.engine.begin() as conn:
            run_funding_batch(conn, EodContext(caches=self.caches), self.today, self.lines)
        with self.database.engine.connect() as conn:
            for node, payables in self._payables(conn):
                terms = self.caches.terms_of(conn, node)
                assert payables == compute_funded_split(node.used_fen, terms.funding_split)

    def _payables(self, conn: Any) -> list[tuple[Any, dict[str, int]]]:
        """(product node, each partner's payable) of every product node."""
        found = []
        for line_id in self.lines:
            for node in fetch_line(conn, line_id).product_nodes():
                product = str(node.product_code)
                payables = {
                    p: -fetch_account_balance(conn, funding_payable_code(line_id, product, p))
                    for p in SHARES
                }
                found.append((node, payables))
        return found

    @invariant()
    def books_balance_and_usage_equals_open_principal(self) -> None:
        with self.database.engine.connect() as conn:
            check_books(conn, self.lines)
            for node, payables in self._payables(conn):
                terms = self.caches.terms_of(conn, node)
                funded_fen = sum(payables.values())
                assert 0 <= funded_fen <= node.used_fen
                assert payables == compute_funded_split(funded_fen, terms.funding_split)


def test_books_stay_balanced_under_random_operations(database: Database) -> None:
    Books.database = database
    run_state_machine_as_test(Books, settings=settings(stateful_step_count=25))
