"""Set-based line opening writes exactly the rows the row-by-row path wrote (PostgreSQL).

Each test runs the same work twice on one fresh database: first through the reference
(the row-by-row code this replaced: a SELECT for an open line then an INSERT, one INSERT
per limit node, the accounts by executemany), dumps every row it wrote and rolls back;
then, with every sequence put back where it was, through the code under test. The dumps
must be equal, ids included: the set-based statements must hand out ids in the same
order and skip none that the old path used.
"""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import Table, select, text
from sqlalchemy.engine import Connection

from node_api.kernel.config import Settings
from node_api.kernel.db import Database
from node_api.kernel.errors import ConflictError
from node_api.kernel.outbox_table import OUTBOX_TABLE
from node_api.ledger.accounts import ensure_accounts, node_account_specs
from node_api.ledger.schema import ledger_account_table, limit_node_table
from node_api.lending.limits import ProductGroup
from node_api.lending.lines import (
    LineOpening,
    LineStatus,
    ProductLimit,
    compute_line_account_specs,
    compute_tree_rows,
    credit_line_table,
    insert_tree_rows,
    open_credit_line,
)
from node_api.lending.product_versions import ProductTermsCache
from node_api.onboarding import agreements
from node_api.onboarding.application_input import ApplicationInput
from node_api.onboarding.applications import decide_application
from node_api.onboarding.context import OnboardingContext
from node_api.onboarding.provenance_tables import agreement_terms_table
from node_api.onboarding.tables import application_attribute_table, ring_link_table
from node_api.onboarding.vault_factory import build_vault
from tests.integration.lending.helpers import OPENED_ON, cash_product_data, product_data, register
from tests.integration.onboarding.onboarding_helpers import (
    AS_OF,
    BORDERLINE_PROFILE,
    application_body,
    new_applicant,
    setup_books,
)

pytestmark = pytest.mark.parametrize("db_backend", ["postgresql"], indirect=True)

T = TypeVar("T")
LINE_TABLES: tuple[Table, ...] = (credit_line_table, limit_node_table, ledger_account_table)


def reference_open_credit_line(
    conn: Connection, opening: LineOpening, products: ProductTermsCache
) -> int:
    """The row-by-row opening this change replaced (validation is shared, not copied)."""
    terms = [products.get(conn, item.product_code, item.version) for item in opening.products]
    lines = credit_line_table
    existing = conn.execute(
        select(lines.c.id).where(
            (lines.c.customer_ref == opening.customer_ref)
            & (lines.c.status != LineStatus.CLOSED.value)
        )
    ).first()
    if existing is not None:
        raise ConflictError("open line", field="customer_ref", code="customer_has_line")
    line_id = int(
        conn.execute(
            lines.insert()
            .values(
                customer_ref=opening.customer_ref,
                currency=terms[0].currency,
                status=LineStatus.ACTIVE.value,
                opened_on=opening.opened_on,
                bill_day=opening.bill_day or terms[0].bill_day_options[0],
            )
            .returning(lines.c.id)
        ).scalar_one()
    )
    insert_tree_rows(conn, line_id, opening.customer_ref, compute_tree_rows(opening, terms))
    ensure_accounts(conn, compute_line_account_specs(line_id, opening.customer_ref, terms))
    return line_id


def _dump(conn: Connection, tables: Sequence[Table]) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of `tables` in primary-key order; timestamps the clock set are left out."""
    dumped: dict[str, list[tuple[Any, ...]]] = {}
    for table in tables:
        columns = [c for c in table.c if c.name not in ("created_at", "updated_at")]
        order = list(table.primary_key.columns)
        dumped[table.name] = [tuple(row) for row in conn.execute(select(*columns).order_by(*order))]
    return dumped


def _sequences(conn: Connection) -> list[tuple[str, int | None, bool]]:
    rows = conn.execute(
        text("SELECT sequencename, last_value FROM pg_sequences WHERE schemaname = 'public'")
    )
    return [(str(name), value, value is not None) for name, value in rows]


def _restore(conn: Connection, sequences: list[tuple[str, int | None, bool]]) -> None:
    for name, value, called in sequences:
        conn.execute(
            text("SELECT setval(CAST(:name AS regclass), :value, :called)"),
            {"name": name, "value": value if value is not None else 1, "called": called},
        )


def _twice(
    database: Database, tables: Sequence[Table], work: Callable[[Connection, bool], T]
) -> tuple[dict[str, Any], dict[str, Any], T, T]:
    """Run `work(conn, reference)` with the reference then the new code, each on the same
    starting state; returns both dumps and both results."""
    with database.engine.connect() as conn:
        sequences = _sequences(conn)
        conn.commit()
    with database.engine.connect() as conn:
        transaction = conn.begin()
        before_result = work(conn, True)
        before = _dump(conn, tables)
        transaction.rollback()
        _restore(conn, sequences)
        conn.commit()
    with database.engine.begin() as conn:
        after_result = work(conn, False)
        after = _dump(conn, tables)
    return before, after, before_result, after_result


def _openings() -> list[LineOpening]:
    both = {ProductGroup.PURCHASE: 80_000, ProductGroup.CASH: 10_000}
    return [
        LineOpening(
            "cust-a", OPENED_ON, 50_000, {ProductGroup.PURCHASE: 40_000},
            [ProductLimit("REV1", 1, 40_000, {"pos": 5_000, "app": 7_000})],
        ),
        LineOpening(
            "cust-b", OPENED_ON, 100_000, both,
            [ProductLimit("CASH1", 1, 10_000), ProductLimit("REV1", 1, 80_000, {"app": 30_000})],
            bill_day=20,
        ),
        LineOpening(
            "cust-c", OPENED_ON, 1_000, {ProductGroup.PURCHASE: 1_000},
            [ProductLimit("REV1", 1, 1_000)],
        ),
    ]  # fmt: skip


def test_open_credit_line_writes_the_rows_of_the_row_by_row_path(database: Database) -> None:
    with database.engine.begin() as conn:
        register(conn, product_data(bill_day_options=[5, 20]))
        register(conn, cash_product_data())
        # Node and partner accounts that already exist: the second path must draw (and
        # skip) the same ids for them as the executemany did.
        ensure_accounts(conn, node_account_specs())
    products = ProductTermsCache()

    def work(conn: Connection, reference: bool) -> list[int]:
        opener = reference_open_credit_line if reference else open_credit_line
        return [opener(conn, opening, products) for opening in _openings()]

    before, after, before_ids, after_ids = _twice(database, LINE_TABLES, work)
    assert before_ids == after_ids
    assert len(after["limit_node"]) == 5 + 6 + 3
    assert len(after["ledger_account"]) > 3 * 15
    assert before == after


def test_a_customer_with_an_open_line_is_refused_naming_the_line(database: Database) -> None:
    with database.engine.begin() as conn:
        register(conn, product_data())
    products = ProductTermsCache()
    opening = _openings()[2]
    with database.engine.begin() as conn:
        line_id = open_credit_line(conn, opening, products)
    with database.engine.begin() as conn, pytest.raises(ConflictError) as caught:
        open_credit_line(conn, opening, products)
    assert caught.value.code == "customer_has_line"
    assert caught.value.field == "customer_ref"
    assert caught.value.extra == {"credit_line_id": line_id}


@pytest.fixture
def context(tmp_path: Path) -> Iterator[OnboardingContext]:
    yield OnboardingContext(vault=build_vault(Settings(data_dir=tmp_path)))


def test_decisions_write_the_rows_of_the_row_by_row_path(
    database: Database, context: OnboardingContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Approved, reviewed, repeat and shared-device applicants through the whole decision:
    the line, its tree and accounts, the agreement's terms and outbox row, the fraud
    history and its ring links."""
    setup_books(database)
    people = [new_applicant() for _ in range(4)]
    bodies = [
        application_body(people[0], device_id="shared-1"),
        application_body(people[1], device_id="shared-1"),
        application_body(people[2], profile=BORDERLINE_PROFILE),
        application_body(people[0], device_id="shared-1"),
        application_body(people[3]),
    ]
    tables = (
        *LINE_TABLES,
        agreement_terms_table,
        OUTBOX_TABLE,
        application_attribute_table,
        ring_link_table,
    )
    # A fixed salt, so the terms document, its hash and the outbox payload repeat.
    monkeypatch.setattr(secrets, "token_bytes", lambda size: b"s" * size)

    def work(conn: Connection, reference: bool) -> list[tuple[str, int | None]]:
        with monkeypatch.context() as patch:
            if reference:
                patch.setattr(agreements, "open_credit_line", reference_open_credit_line)
            ids = (f"{n:032x}" for n in itertools.count(1))
            answers = []
            for index, body in enumerate(bodies):
                inputs = ApplicationInput(
                    product_code=body["product_code"],
                    name=body["name"],
                    id_number=body["id_number"],
                    phone=body["phone"],
                    monthly_income_fen=body["monthly_income_fen"],
                    device_id=body["device_id"],
                    ip_address=body["ip"],
                    channel_id=body["channel_id"],
                    characteristics=body["characteristics"],
                )
                outcome = decide_application(
                    conn,
                    inputs,
                    as_of=AS_OF,
                    applied_at=datetime(2025, 6, 30, 8, index, tzinfo=UTC),
                    context=context,
                    new_id=lambda: next(ids),
                )
                answers.append((outcome.stored.decision.value, outcome.stored.credit_line_id))
            return answers

    before, after, before_answers, after_answers = _twice(database, tables, work)
    assert before_answers == after_answers
    decisions = [decision for decision, _ in after_answers]
    assert decisions.count("approved") == 4 and "review" in decisions
    assert len(after["credit_line"]) == 3 and len(after["oracle_outbox"]) == 3
    assert after["fraud_ring_link"], "the shared device should leave ring links"
    assert before == after
