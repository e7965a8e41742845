"""Guarantor compensation (代偿) and the subrogated claim it leaves.

A product's guarantee agreement (`set_compensation_terms`) names its guarantor (a partner
registered for settlement with role GUARANTOR) and what it covers: the overdue amounts
(`overdue`) or the whole balance (`balance`). When one of the product's lines reaches the
node's compensation day past due (`CollectionsPolicy.compensation_days_past_due`) and is
not charged off, the guarantor pays that amount for the borrower, in one transaction:

1. the money is posted as a payment on the line (`lending.repayments.repay`, payment ref
   `compensation:<line>:<date>`): the product's waterfall pays what it covers, and the
   funders receive their principal, interest and fee shares through the ordinary
   settlement of that repayment;
2. a `guarantor_compensation` batch records the guarantor's subrogated claim: the
   borrower now owes the guarantor the amount (`subrogated_receivable`), which the node
   collects for it (`guarantor_claim`); its settlement event makes the guarantor pay the
   lender the amount in the next cycle (GUARANTEE_PAYMENT);
3. the line is frozen (no new use) and its agreement's freeze is enqueued for the chain
   with reason `REASON_GUARANTOR_COMPENSATED` (once: a later compensation of the same
   line finds it frozen already).

Later money collected from the borrower through `collections.recoveries` goes to the
guarantor first, until its claim is paid back. A line has at most one guarantor.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict
from sqlalchemy import insert, select
from sqlalchemy.engine import Connection, RowMapping

from node_api.collections.agreements import REASON_GUARANTOR_COMPENSATED, enqueue_status_change
from node_api.collections.facts import COMPENSATION_PAYMENT_PREFIX, fetch_line_facts
from node_api.collections.policy import CollectionsPolicy
from node_api.collections.tables import compensation_table, compensation_terms_table
from node_api.kernel.chain import AgreementStatus, PartnerRole
from node_api.kernel.errors import ConflictError, CreditNetValueError, NotFoundError
from node_api.kernel.money import Fen
from node_api.ledger.accounts import AccountType, ensure_accounts, subrogation_specs
from node_api.ledger.postings import BatchDraft, PostingLine, SettlementEventDraft, post_batch
from node_api.ledger.schema import ledger_account_table, limit_node_table, product_version_table
from node_api.ledger.settlement_events import BatchKind, CollectionsEventKind, LimitLevel
from node_api.ledger.sql import begin_write
from node_api.lending.core.context import LendingCaches
from node_api.lending.eod.tables import line_delinquency_table
from node_api.lending.line_limits import LineAction, change_line_status
from node_api.lending.lines import LineStatus, LockedLine, lock_line
from node_api.lending.repayments import repay

SYSTEM_ACTOR = "system"

_partner = sa.table(
    "settlement_partner", sa.column("ref", sa.String), sa.column("role", sa.SmallInteger)
)
"""Settlement's partner registry, read only to check a guarantor's role (collections does
not import settlement)."""


class Coverage(StrEnum):
    """What a guarantee agreement makes the guarantor pay at the compensation day."""

    OVERDUE = "overdue"
    """The line's past-due amounts: the borrower is current with the lender again."""
    BALANCE = "balance"
    """The whole balance, billed or not: the line owes the lender nothing more."""


class CompensationTermsView(BaseModel):
    """A product's guarantee agreement (also its API view)."""

    model_config = ConfigDict(frozen=True)

    product_code: str
    guarantor_ref: str
    coverage: Coverage
    set_on: date
    set_by: str


class CompensationView(BaseModel):
    """A compensation as stored (also its API view)."""

    model_config = ConfigDict(frozen=True)

    id: int
    credit_line_id: int
    product_code: str
    guarantor_ref: str
    coverage: Coverage
    days_past_due: int
    amount_fen: Fen
    repayment_id: int
    as_of: date
    agreement_change_seq: int | None
    recorded_by: str


@dataclass(frozen=True, slots=True)
class CompensationRun:
    """What one pass over the lines due for compensation did."""

    as_of: date
    compensations: tuple[CompensationView, ...]

    @property
    def amount_fen(self) -> int:
        return sum(item.amount_fen for item in self.compensations)


def set_compensation_terms(
    conn: Connection,
    *,
    product_code: str,
    guarantor_ref: str,
    coverage: Coverage,
    on: date,
    by: str,
) -> CompensationTermsView:
    """Name the guarantor of a product's lines and what it covers (replacing earlier
    terms; compensations already made keep theirs)."""
    registered = conn.execute(
        select(product_version_table.c.version)
        .where(product_version_table.c.product_code == product_code)
        .limit(1)
    ).first()
    if registered is None:
        raise NotFoundError(f"product {product_code} is not registered", field="product_code")
    role = conn.execute(
        select(_partner.c.role).where(_partner.c.ref == guarantor_ref)
    ).scalar_one_or_none()
    if role is None or int(role) != PartnerRole.GUARANTOR:
        raise CreditNetValueError(
            "the guarantor must be a partner registered with the guarantor role",
            field="guarantor_ref",
        )
    begin_write(conn)
    table = compensation_terms_table
    conn.execute(table.delete().where(table.c.product_code == product_code))
    values = {
        "product_code": product_code,
        "guarantor_ref": guarantor_ref,
        "coverage": coverage.value,
        "set_on": on,
        "set_by": by,
    }
    conn.execute(insert(table).values(**values))
    return CompensationTermsView.model_validate(values)


def fetch_compensation_terms(conn: Connection) -> list[CompensationTermsView]:
    """Every product's guarantee agreement, by product code."""
    table = compensation_terms_table
    rows = conn.execute(select(table).order_by(table.c.product_code)).mappings()
    return [CompensationTermsView.model_validate(dict(row)) for row in rows]


def _terms_of(conn: Connection, product_code: str) -> CompensationTermsView | None:
    table = compensation_terms_table
    row = conn.execute(select(table).where(table.c.product_code == product_code)).mappings()
    found = row.first()
    return None if found is None else CompensationTermsView.model_validate(dict(found))


def fetch_guarantor_claims(conn: Connection, credit_line_id: int) -> dict[str, Fen]:
    """What the line still owes each guarantor that compensated it (claims above zero)."""
    accounts = ledger_account_table
    rows = conn.execute(
        select(accounts.c.partner_ref, accounts.c.balance_fen * accounts.c.normal_sign).where(
            (accounts.c.credit_line_id == credit_line_id)
            & (accounts.c.account_type == AccountType.GUARANTOR_CLAIM.value)
        )
    )
    return {str(ref): Fen(int(claim)) for ref, claim in rows if int(claim) > 0}


def _first_product(line: LockedLine) -> str:
    """The product the line was booked on first (its repayments' waterfall)."""
    node = min(line.product_nodes(), key=lambda item: item.node_id)
    assert node.product_code is not None
    return node.product_code


def compensate_line(
    conn: Connection,
    caches: LendingCaches,
    policy: CollectionsPolicy,
    *,
    line_id: int,
    as_of: date,
    by: str,
) -> CompensationView:
    """The guarantor compensates one line (module docstring). Refused, changing nothing,
    when the line is charged off, not yet at the compensation day, has no guarantee, owes
    nothing the guarantee covers, or holds another guarantor's claim."""
    line = lock_line(conn, line_id)
    facts = fetch_line_facts(conn, [line_id])[line_id]
    if facts.charged_off_on is not None:
        raise ConflictError(
            "the line is charged off: what is collected on it is a recovery",
            field="credit_line_id",
            code="line_charged_off",
        )
    if facts.days_past_due < policy.compensation_days_past_due:
        raise ConflictError(
            f"the line is {facts.days_past_due} days past due; its guarantor compensates "
            f"at {policy.compensation_days_past_due}",
            field="credit_line_id",
            code="compensation_not_due",
            days_past_due=facts.days_past_due,
        )
    product_code = _first_product(line)
    terms = _terms_of(conn, product_code)
    if terms is None:
        raise ConflictError(
            f"product {product_code} has no guarantee agreement",
            field="credit_line_id",
            code="no_guarantee",
        )
    others = set(fetch_guarantor_claims(conn, line_id)) - {terms.guarantor_ref}
    if others:
        raise ConflictError(
            "another guarantor holds a claim on the line",
            field="credit_line_id",
            code="guarantor_changed",
        )
    covered = facts.past_due_fen if terms.coverage is Coverage.OVERDUE else facts.outstanding_fen
    if covered <= 0:
        raise ConflictError(
            "the line owes nothing the guarantee covers",
            field="credit_line_id",
            code="nothing_to_compensate",
        )
    return _compensate(conn, caches, line, terms, Fen(covered), facts.days_past_due, as_of, by)


def _compensate(
    conn: Connection,
    caches: LendingCaches,
    line: LockedLine,
    terms: CompensationTermsView,
    amount_fen: Fen,
    days_past_due: int,
    as_of: date,
    by: str,
) -> CompensationView:
    line_id = line.credit_line_id
    repaid = repay(
        conn,
        caches,
        line_id=line_id,
        amount_fen=amount_fen,
        currency=line.currency,
        as_of=as_of,
        payment_ref=f"{COMPENSATION_PAYMENT_PREFIX}{line_id}:{as_of.isoformat()}",
    )
    receivable, claim = subrogation_specs(line_id, line.customer_ref, terms.guarantor_ref)
    ensure_accounts(conn, [receivable, claim])
    draft = BatchDraft(
        business_key=f"guarantor_compensation:{repaid.repayment_id}",
        kind=BatchKind.GUARANTOR_COMPENSATION,
        as_of=repaid.as_of,
        lines=(PostingLine(receivable.code, amount_fen), PostingLine(claim.code, -amount_fen)),
        credit_line_id=line_id,
        customer_id=line.customer_ref,
        events=(
            SettlementEventDraft(
                CollectionsEventKind.GUARANTOR_COMPENSATION,
                amount_fen,
                partner_ref=terms.guarantor_ref,
            ),
        ),
    )
    batch_id = post_batch(conn, draft, caches.accounts)
    if line.status is LineStatus.ACTIVE:
        change_line_status(conn, line_id, LineAction.FREEZE, repaid.as_of)
    change_seq = enqueue_status_change(
        conn, line_id, AgreementStatus.FROZEN, REASON_GUARANTOR_COMPENSATED
    )
    values = {
        "credit_line_id": line_id,
        "product_code": terms.product_code,
        "guarantor_ref": terms.guarantor_ref,
        "coverage": terms.coverage.value,
        "days_past_due": days_past_due,
        "amount_fen": amount_fen,
        "repayment_id": repaid.repayment_id,
        "batch_id": batch_id,
        "as_of": repaid.as_of,
        "agreement_change_seq": change_seq,
        "recorded_by": by,
    }
    table = compensation_table
    new_id = conn.execute(
        insert(table).values(**values, customer_id=line.customer_ref).returning(table.c.id)
    ).scalar_one()
    return CompensationView.model_validate({"id": int(new_id), **values})


def list_due_line_ids(conn: Connection, policy: CollectionsPolicy) -> list[int]:
    """Lines at or past the compensation day, not charged off, booked on a product with a
    guarantee agreement, by id."""
    state, nodes, terms = line_delinquency_table, limit_node_table, compensation_terms_table
    guaranteed = (
        select(nodes.c.credit_line_id)
        .join(terms, terms.c.product_code == nodes.c.product_code)
        .where(nodes.c.level == LimitLevel.PRODUCT.value)
    )
    return [
        int(line_id)
        for line_id in conn.execute(
            select(state.c.credit_line_id)
            .where(
                (state.c.days_past_due >= policy.compensation_days_past_due)
                & state.c.charged_off_on.is_(None)
                & state.c.credit_line_id.in_(guaranteed)
            )
            .order_by(state.c.credit_line_id)
        ).scalars()
    ]


_SKIPPED = frozenset({"no_guarantee", "nothing_to_compensate", "guarantor_changed"})


def run_due_compensations(
    conn: Connection,
    caches: LendingCaches,
    policy: CollectionsPolicy,
    as_of: date,
    *,
    by: str = SYSTEM_ACTOR,
    line_ids: Sequence[int] | None = None,
) -> CompensationRun:
    """Compensate every guaranteed line due (all of them, or those of `line_ids`), in the
    caller's transaction; lines without a guarantee or owing nothing covered are skipped.
    Run after end of day: a second run the same day finds nothing more to pay."""
    done: list[CompensationView] = []
    for line_id in line_ids if line_ids is not None else list_due_line_ids(conn, policy):
        try:  # every refusal is raised before anything is written
            done.append(compensate_line(conn, caches, policy, line_id=line_id, as_of=as_of, by=by))
        except ConflictError as error:
            if error.code not in _SKIPPED:
                raise
    return CompensationRun(as_of, tuple(done))


def _to_view(row: RowMapping) -> CompensationView:
    return CompensationView.model_validate(dict(row))


def fetch_compensations(conn: Connection, line_id: int | None = None) -> list[CompensationView]:
    """Compensations, newest first (of one line, or all)."""
    table = compensation_table
    statement = select(table).order_by(table.c.id.desc())
    if line_id is not None:
        statement = statement.where(table.c.credit_line_id == line_id)
    return [_to_view(row) for row in conn.execute(statement).mappings()]
