"""Installment plans paid or reduced before their installments are billed.

Every path that takes principal off a plan's future installments goes through here, so
a plan's scheduled installments always carry exactly the plan principal the line still
holds unbilled, and the product's early-repayment terms apply whatever the path:

- the explicit early repayment (`installments.repay_plan_early`) ends the whole plan on
  `compute_early_repayment_quote`;
- a payment left over after everything else the line owes (the waterfall never takes a
  plan's unbilled principal itself, see `repayments`) prepays active plans, oldest
  first, on the same terms (`compute_prepayment_quote`): of what is left, the largest
  principal p with p + interest(p) + fee(p) within it, interest accrued on p since the
  last bill date (capped at the next installment's interest) and the fee p × early
  repayment fee bps, half-even. Whatever is left after that (a few fen the next fen of
  principal would not cover with its charges) stays customer credit;
- a purchase refund on a converted purchase takes its principal off that purchase's plan
  (no early-repayment charges: the customer did not choose to prepay);
- customer credit is only ever applied to what is due (billed or past due), never to a
  plan's future installments (`customer_credit`), so it prepays nothing.

A prepayment is one posting batch (kind `installment_prepayment`, business key
`installment_prepayment:<plan id>:<source>`): the customer credit left by the payment is
debited, the unbilled principal credited, the interest and fee credited straight to
income (paid as they are charged), with the same settlement events as a repayment.

A plan that loses part of its future principal is re-amortized: the principal it still
holds is spread over its installments still to be billed with the plan's own method,
rate and rounding (`installment_store.reamortize_installments`), keeping their due
dates; with nothing left they end as paid off. No installment is left with less than
the plan's minimum installment principal (the product's minimum plan amount over the
plan's tenor, rounded up, at least 1 fen): when fewer fen are left than that, the
schedule is shortened to the most installments that each carry it, keeping the
earliest dates (the plan ends sooner), and the later installments end as paid off.
Installments billed tonight (bill date on or before the posting date) are not prepaid:
they are due on their bill.

A bounced payment's prepayments are undone with it (`repayments.reverse_repayment`
reverses the batch, `restore_prepayment` puts the principal back on the plan and
re-amortizes, reopening a plan the prepayment had paid off).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from node_api.kernel.money import Fen
from node_api.ledger.accounts import AccountType, line_account_code, node_account_code
from node_api.ledger.postings import PostingLine, SettlementEventDraft
from node_api.ledger.schema import ledger_account_table, posting_batch_table, posting_table
from node_api.ledger.settlement_events import BatchKind, EventKind
from node_api.lending.core.books import LineBook
from node_api.lending.core.context import LendingCaches
from node_api.lending.installment_store import (
    InstallmentStatus,
    PlanStatus,
    StoredInstallment,
    compute_stored_schedule,
    fetch_installment_minimum_fen,
    fetch_live_installments,
    fetch_plan_unbilled_principal,
    reamortize_installments,
    reopen_ended_installments,
    reopen_plan,
)
from node_api.lending.installment_tables import installment_plan_table
from node_api.lending.lines import LockedLine
from node_api.lending.product_versions import ProductTermsCache
from node_api.lending.schedules import PayoffQuote, compute_prepayment_quote
from node_api.lending.use_reductions import (
    post_line_batch,
)

PREPAYMENT_KIND = BatchKind.INSTALLMENT_PREPAYMENT
"""Posting-batch kind of a plan prepaid from a payment's leftover."""


@dataclass(frozen=True, slots=True)
class PlanPrepayment:
    """Principal of a plan's future installments paid early, with its charges."""

    plan_id: int
    principal_fen: Fen
    interest_fen: Fen
    fee_fen: Fen

    @property
    def total_fen(self) -> Fen:
        return Fen(self.principal_fen + self.interest_fen + self.fee_fen)


@dataclass(frozen=True, slots=True)
class _OpenPlan:
    """An active plan and the installments a posting on `as_of` may still take off."""

    row: Any
    live: list[StoredInstallment]
    first_open: int
    """Index in `live` of the first installment billed after `as_of`."""

    @property
    def open_items(self) -> list[StoredInstallment]:
        return self.live[self.first_open :]

    @property
    def open_fen(self) -> Fen:
        return Fen(sum(item.principal_fen for item in self.open_items))


def fetch_plan_unbilled_fen(conn: Connection, line_id: int) -> Fen:
    """The principal the line's active plans still schedule (part of its unbilled)."""
    return Fen(fetch_plan_unbilled_principal(conn, [line_id]).get(line_id, 0))


def _fetch_open_plans(conn: Connection, line_id: int, as_of: date) -> list[_OpenPlan]:
    """Active plans, oldest first, with installments still to bill after `as_of`."""
    plans = installment_plan_table
    rows = conn.execute(
        select(plans)
        .where((plans.c.credit_line_id == line_id) & (plans.c.status == PlanStatus.ACTIVE.value))
        .order_by(plans.c.id)
    ).all()
    found = []
    for row in rows:
        live = fetch_live_installments(conn, int(row.id))
        first_open = next(
            (
                index
                for index, item in enumerate(live)
                if item.bill_date > as_of
                and all(i.status is InstallmentStatus.SCHEDULED for i in live[index:])
            ),
            None,
        )
        if first_open is not None:
            found.append(_OpenPlan(row, live, first_open))
    return found


def _quote(plan: _OpenPlan, as_of: date, fee_bps: int, principal_fen: Fen) -> PayoffQuote | None:
    """The early-repayment terms on `principal_fen` of the plan's open installments; None
    when the plan cannot be quoted on `as_of` (a payment dated before it started)."""
    schedule = compute_stored_schedule(plan.row, plan.live)
    previous = plan.live[plan.first_open - 1].bill_date if plan.first_open else None
    quote_on = max(as_of, schedule.start_date, previous or schedule.start_date)
    if quote_on >= plan.live[plan.first_open].bill_date:
        return None
    return compute_prepayment_quote(schedule, quote_on, plan.first_open, fee_bps, principal_fen)


def _largest_prepayment(
    plan: _OpenPlan, as_of: date, fee_bps: int, available_fen: Fen
) -> PayoffQuote | None:
    """The largest prepayment whose principal and charges fit in `available_fen` (the
    total grows with the principal, so a binary search finds it)."""
    low = 0
    high: int = min(plan.open_fen, available_fen)
    best: PayoffQuote | None = None
    while low < high:
        middle = (low + high + 1) // 2
        quote = _quote(plan, as_of, fee_bps, Fen(middle))
        if quote is None:
            return None
        if quote.total_fen <= available_fen:
            low, best = middle, quote
        else:
            high = middle - 1
    return best


def prepay_plans(
    conn: Connection,
    caches: LendingCaches,
    line: LockedLine,
    book: LineBook,
    as_of: date,
    available_fen: Fen,
    source: str,
) -> list[PlanPrepayment]:
    """Prepay the line's active plans, oldest first, out of `available_fen` of its customer
    credit (a payment's leftover) on the product's early-repayment terms (module
    docstring); post each prepayment, re-amortize each plan and advance `book`."""
    done: list[PlanPrepayment] = []
    for plan in _fetch_open_plans(conn, line.credit_line_id, as_of):
        if available_fen <= 0:
            break
        terms = caches.products.get(conn, plan.row.product_code, int(plan.row.product_version))
        quote = _largest_prepayment(plan, as_of, terms.fees.early_repayment_fee_bps, available_fen)
        if quote is None or quote.principal_fen == 0:
            continue
        prepaid = PlanPrepayment(
            int(plan.row.id), quote.principal_fen, quote.interest_fen, quote.fee_fen
        )
        _post_prepayment(conn, caches, line, book, prepaid, as_of, source)
        minimum_fen = fetch_installment_minimum_fen(conn, caches.products, plan.row)
        left_fen = Fen(plan.open_fen - quote.principal_fen)
        reamortize_installments(conn, plan.row, plan.open_items, left_fen, as_of, minimum_fen)
        available_fen = Fen(available_fen - prepaid.total_fen)
        done.append(prepaid)
    return done


def _post_prepayment(
    conn: Connection,
    caches: LendingCaches,
    line: LockedLine,
    book: LineBook,
    prepaid: PlanPrepayment,
    as_of: date,
    source: str,
) -> None:
    line_id = line.credit_line_id
    credit = line_account_code(line_id, AccountType.CUSTOMER_CREDIT)
    unbilled = line_account_code(line_id, AccountType.PRINCIPAL_UNBILLED)
    lines = [PostingLine(credit, prepaid.total_fen), PostingLine(unbilled, -prepaid.principal_fen)]
    events = [SettlementEventDraft(EventKind.PRINCIPAL_REPAID, prepaid.principal_fen)]
    charges = (
        (AccountType.INTEREST_INCOME, EventKind.INTEREST_REPAID, prepaid.interest_fen),
        (AccountType.FEE_INCOME, EventKind.FEE_REPAID, prepaid.fee_fen),
    )
    for income, event, amount_fen in charges:
        if amount_fen:
            lines.append(PostingLine(node_account_code(income), -amount_fen))
            events.append(SettlementEventDraft(event, amount_fen))
    events.append(SettlementEventDraft(EventKind.CUSTOMER_CREDIT, -prepaid.total_fen))
    post_line_batch(
        conn,
        caches,
        line,
        book,
        business_key=f"{PREPAYMENT_KIND}:{prepaid.plan_id}:{source}",
        kind=PREPAYMENT_KIND,
        as_of=as_of,
        lines=lines,
        events=events,
        principal_fen=prepaid.principal_fen,
    )


def restore_prepayment(
    conn: Connection, products: ProductTermsCache, batch_id: int, as_of: date
) -> None:
    """After a prepayment batch is reversed: its principal is the plan's again, spread over
    the plan's installments still to bill (a plan it had paid off is reopened, and so are
    the installments a shortened re-amortization had ended)."""
    batches, postings, accounts = posting_batch_table, posting_table, ledger_account_table
    key, kind = conn.execute(
        select(batches.c.business_key, batches.c.kind).where(batches.c.id == batch_id)
    ).one()
    if kind != PREPAYMENT_KIND:
        return
    plan_id = int(str(key).split(":")[1])
    principal_fen = -int(
        conn.execute(
            select(postings.c.amount_fen)
            .join(accounts, accounts.c.id == postings.c.account_id)
            .where(
                (postings.c.batch_id == batch_id)
                & (accounts.c.account_type == AccountType.PRINCIPAL_UNBILLED.value)
            )
        ).scalar_one()
    )
    # What the plan holds is read before anything is reopened: installments a prepayment
    # paid off keep the amounts they had (as an early repayment's do), so counting them
    # once reopened would put their principal back twice.
    held_fen = Fen(_fetch_scheduled_fen(conn, plan_id) + principal_fen)
    reopen_plan(conn, plan_id)
    row = conn.execute(
        select(installment_plan_table).where(installment_plan_table.c.id == plan_id)
    ).one()
    if row.status != PlanStatus.ACTIVE.value:
        return
    reopen_ended_installments(conn, plan_id, as_of)
    scheduled = _fetch_scheduled(conn, plan_id)
    minimum_fen = fetch_installment_minimum_fen(conn, products, row)
    reamortize_installments(conn, row, scheduled, held_fen, as_of, minimum_fen)


def _fetch_scheduled(conn: Connection, plan_id: int) -> list[StoredInstallment]:
    return [
        item
        for item in fetch_live_installments(conn, plan_id)
        if item.status is InstallmentStatus.SCHEDULED
    ]


def _fetch_scheduled_fen(conn: Connection, plan_id: int) -> Fen:
    """The principal a plan's scheduled installments carry (0 for a plan that is not active:
    it schedules nothing)."""
    row = conn.execute(
        select(installment_plan_table.c.status).where(installment_plan_table.c.id == plan_id)
    ).one()
    if row.status != PlanStatus.ACTIVE.value:
        return Fen(0)
    return Fen(sum(item.principal_fen for item in _fetch_scheduled(conn, plan_id)))


def reduce_refunded_plan(
    conn: Connection,
    products: ProductTermsCache,
    line_id: int,
    purchase_id: int,
    principal_fen: Fen,
    unbilled_fen: Fen,
    as_of: date,
) -> None:
    """A refund of `principal_fen` on a converted purchase comes off its plan's installments
    still to be billed; then, if the line's unbilled principal (`unbilled_fen`, after the
    refund) is still below what its plans schedule (a refund of a purchase on a bill
    converted into a plan), the difference comes off the plans, oldest first. Each plan
    reduced is re-amortized; a refund charges nothing."""
    plans = _fetch_open_plans(conn, line_id, as_of)
    own = next((plan for plan in plans if plan.row.purchase_id == purchase_id), None)
    own_fen = min(principal_fen, own.open_fen) if own is not None else 0
    shortfall_fen = max(fetch_plan_unbilled_fen(conn, line_id) - own_fen - unbilled_fen, 0)
    ordered = ([own] if own is not None else []) + [plan for plan in plans if plan is not own]
    for plan in ordered:
        taken_fen = own_fen if plan is own else 0
        extra_fen = min(plan.open_fen - taken_fen, shortfall_fen)
        shortfall_fen -= extra_fen
        taken_fen += extra_fen
        if taken_fen > 0:
            minimum_fen = fetch_installment_minimum_fen(conn, products, plan.row)
            left_fen = Fen(plan.open_fen - taken_fen)
            reamortize_installments(conn, plan.row, plan.open_items, left_fen, as_of, minimum_fen)
