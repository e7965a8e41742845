"""Bill mode as pure functions: what a bill cut moves and states, and what happens at the
due date (interest-free treatment, unpaid minimum made past due, the late fee).

Balances are a line's receivables on their normal side, by account type (see
`node_api.ledger.accounts`): each component (principal, interest, fee, penalty) is
unbilled, billed or past due.

Bill cut on bill date D (end of day D, after every posting dated D):
- revolving principal: the line's unbilled principal that is not an installment plan's
  (plans keep their principal unbilled until each installment's bill); all of it is billed;
- each installment whose bill date is D: its principal moves from unbilled to billed (never
  more than is still unbilled, if the customer prepaid) and its interest and fee are
  charged as billed;
- unbilled interest, fees and penalty move to billed.
The statement balance is everything billed or past due after the cut, less the customer
credit applied to it at the cut (`compute_figures_net_of_credit`). The minimum
payment is `compute_minimum_payment` with: share of the revolving principal on the
statement (new and carried), billed fees and interest (installments' own parts
excluded), the installments due, and everything already past due.

At the end of the due date (payments on the due date are on time):
- paid toward the bill = what non end-of-day postings took off the line's receivables
  other than unbilled principal since the cut (repayments, refunds, conversions into a
  plan; a reversal counts back);
- paid in full (paid ≥ statement balance): the bill keeps its interest-free treatment.
  Otherwise each purchase or drawdown posted in the bill's cycle, in full unless
  converted into a plan (or, with the product's `interest_on_unpaid_only`, times the
  share of the statement left unpaid), pays revolving interest from its posting date
  through the due date, rounded half-even once per bill; a bill converted into a plan
  is not charged this interest. With the product's `grace_payments_on_time`, this is
  decided at the end of the grace days, counting the payments made within them. The
  line is then revolving (see the accrual step);
- the unpaid minimum (minimum − paid) is past due: it moves from billed to past due in
  the product's allocation order, less what is already past due (older amounts were part
  of this minimum).
The late fee is charged on the product's late-fee date (due + grace + 1) if part of what
the bill made past due is still unpaid.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

from node_api.kernel.money import Fen, div_half_even
from node_api.ledger.accounts import AccountType
from node_api.lending.billing_rules import Component, compute_late_fee, compute_minimum_payment
from node_api.lending.interest import DailyRate
from node_api.lending.products import ProductTerms

RECEIVABLE: dict[tuple[Component, str], AccountType] = {
    (Component.PRINCIPAL, "unbilled"): AccountType.PRINCIPAL_UNBILLED,
    (Component.PRINCIPAL, "billed"): AccountType.PRINCIPAL_BILLED,
    (Component.PRINCIPAL, "past_due"): AccountType.PRINCIPAL_PAST_DUE,
    (Component.INTEREST, "unbilled"): AccountType.INTEREST_UNBILLED,
    (Component.INTEREST, "billed"): AccountType.INTEREST_BILLED,
    (Component.INTEREST, "past_due"): AccountType.INTEREST_PAST_DUE,
    (Component.FEES, "unbilled"): AccountType.FEE_UNBILLED,
    (Component.FEES, "billed"): AccountType.FEE_BILLED,
    (Component.FEES, "past_due"): AccountType.FEE_PAST_DUE,
    (Component.PENALTY, "unbilled"): AccountType.PENALTY_UNBILLED,
    (Component.PENALTY, "billed"): AccountType.PENALTY_BILLED,
    (Component.PENALTY, "past_due"): AccountType.PENALTY_PAST_DUE,
}
RECEIVABLE_TYPES: tuple[AccountType, ...] = tuple(RECEIVABLE.values())
BILLED_TYPES: tuple[AccountType, ...] = tuple(RECEIVABLE[c, "billed"] for c in Component)
PAST_DUE_TYPES: tuple[AccountType, ...] = tuple(RECEIVABLE[c, "past_due"] for c in Component)
PAID_TOWARD_BILL_TYPES: tuple[AccountType, ...] = tuple(
    kind for kind in RECEIVABLE_TYPES if kind is not AccountType.PRINCIPAL_UNBILLED
)
"""Receivables whose decrease counts as paid toward a bill (see the module docstring)."""

Balances = Mapping[AccountType, int]
Movement = dict[AccountType, int]
"""Signed changes (debit positive) to a line's accounts, by account type."""


def sum_balances(balances: Balances, kinds: Iterable[AccountType]) -> int:
    return sum(balances.get(kind, 0) for kind in kinds)


def add_movement(movement: Movement, kind: AccountType, amount_fen: int) -> None:
    if amount_fen:
        movement[kind] = movement.get(kind, 0) + amount_fen


@dataclass(frozen=True, slots=True)
class DueInstallment:
    """An installment billed on this bill."""

    installment_id: int
    plan_id: int
    principal_fen: Fen
    interest_fen: Fen
    fee_fen: Fen


@dataclass(frozen=True, slots=True)
class BillCutInputs:
    balances: Balances
    plan_unbilled_principal_fen: int
    installments: Sequence[DueInstallment] = ()


@dataclass(frozen=True, slots=True)
class BillCut:
    """A bill's figures and the line movements that produce them. `interest_income_fen`
    and `fee_income_fen` are the installments' charges (credited to the node's income)."""

    movement: Movement
    interest_income_fen: int
    fee_income_fen: int
    figures: dict[str, int] = field(default_factory=dict)


def compute_bill_cut(inputs: BillCutInputs, terms: ProductTerms) -> BillCut:
    """What a bill cut moves and the bill's figures (see the module docstring)."""
    b = inputs.balances
    unbilled_principal_fen = b.get(AccountType.PRINCIPAL_UNBILLED, 0)
    new_principal_fen = max(unbilled_principal_fen - inputs.plan_unbilled_principal_fen, 0)
    installment_principal_fen = min(
        sum(item.principal_fen for item in inputs.installments),
        unbilled_principal_fen - new_principal_fen,
    )
    installment_interest_fen = sum(item.interest_fen for item in inputs.installments)
    installment_fee_fen = sum(item.fee_fen for item in inputs.installments)
    movement: Movement = {}
    moved_fen: dict[Component, int] = {
        Component.PRINCIPAL: new_principal_fen + installment_principal_fen,
        Component.INTEREST: b.get(AccountType.INTEREST_UNBILLED, 0),
        Component.FEES: b.get(AccountType.FEE_UNBILLED, 0),
        Component.PENALTY: b.get(AccountType.PENALTY_UNBILLED, 0),
    }
    for component, amount_fen in moved_fen.items():
        add_movement(movement, RECEIVABLE[component, "unbilled"], -amount_fen)
        add_movement(movement, RECEIVABLE[component, "billed"], amount_fen)
    add_movement(movement, AccountType.INTEREST_BILLED, installment_interest_fen)
    add_movement(movement, AccountType.FEE_BILLED, installment_fee_fen)

    def after(kind: AccountType) -> int:
        return b.get(kind, 0) + movement.get(kind, 0)

    past_due_fen = sum_balances(b, PAST_DUE_TYPES)
    statement_fen = sum(after(kind) for kind in BILLED_TYPES) + past_due_fen
    revolving_principal_fen = after(AccountType.PRINCIPAL_BILLED) - installment_principal_fen
    installments_due_fen = (
        installment_principal_fen + installment_interest_fen + installment_fee_fen
    )
    minimum_fen = compute_minimum_payment(
        statement_balance_fen=statement_fen,
        new_principal_fen=revolving_principal_fen,
        fees_fen=after(AccountType.FEE_BILLED) - installment_fee_fen,
        interest_fen=after(AccountType.INTEREST_BILLED)
        - installment_interest_fen
        + after(AccountType.PENALTY_BILLED),
        due_installments_fen=installments_due_fen,
        past_due_fen=past_due_fen,
        principal_share_bps=terms.minimum_payment.principal_share_bps,
        floor_fen=terms.minimum_payment.floor_fen,
    )
    figures = {
        "statement_balance_fen": statement_fen,
        "minimum_payment_fen": int(minimum_fen),
        "carried_fen": sum_balances(b, BILLED_TYPES) + past_due_fen,
        "past_due_fen": past_due_fen,
        "new_principal_fen": new_principal_fen,
        "revolving_principal_fen": revolving_principal_fen,
        "interest_fen": moved_fen[Component.INTEREST],
        "fee_fen": moved_fen[Component.FEES],
        "penalty_fen": moved_fen[Component.PENALTY],
        "installment_principal_fen": installment_principal_fen,
        "installment_interest_fen": installment_interest_fen,
        "installment_fee_fen": installment_fee_fen,
        "credit_balance_fen": b.get(AccountType.CUSTOMER_CREDIT, 0),
        "credit_applied_fen": 0,
        "plan_principal_fen": after(AccountType.PRINCIPAL_UNBILLED),
        "total_balance_fen": sum(after(kind) for kind in RECEIVABLE_TYPES),
    }
    return BillCut(movement, installment_interest_fen, installment_fee_fen, figures)


def compute_figures_net_of_credit(
    figures: Mapping[str, int], applied: Mapping[AccountType, int]
) -> dict[str, int]:
    """A bill's figures after the customer's credit settled part of what it made due (at
    the cut): the statement, minimum, past-due and total balances are net of it, the
    credit balance is what is left, and `credit_applied_fen` states it."""
    applied_fen = sum(applied.values())
    past_due_applied_fen = sum(applied.get(kind, 0) for kind in PAST_DUE_TYPES)
    return {
        **figures,
        "statement_balance_fen": figures["statement_balance_fen"] - applied_fen,
        "minimum_payment_fen": max(figures["minimum_payment_fen"] - applied_fen, 0),
        "past_due_fen": figures["past_due_fen"] - past_due_applied_fen,
        "total_balance_fen": figures["total_balance_fen"] - applied_fen,
        "credit_balance_fen": figures["credit_balance_fen"] - applied_fen,
        "credit_applied_fen": figures["credit_applied_fen"] + applied_fen,
    }


@dataclass(frozen=True, slots=True)
class CycleUse:
    """A purchase or drawdown posted in a bill's cycle, for the interest-free treatment."""

    amount_fen: Fen
    posted_on: date


def compute_retro_interest(
    uses: Iterable[CycleUse],
    due_date: date,
    rate: DailyRate,
    unpaid_share: tuple[int, int] = (1, 1),
) -> Fen:
    """Interest on each use from its posting date through the due date (both included),
    summed exactly and rounded half-even once; times `unpaid_share` (unpaid / statement)
    when only the unpaid part of the bill bears it (未还部分计息)."""
    numerator = 0
    for use in uses:
        days = (due_date - use.posted_on).days + 1
        if days > 0 and use.amount_fen > 0:
            numerator += use.amount_fen * days
    unpaid_fen, statement_fen = unpaid_share
    if statement_fen <= 0:
        return Fen(0)
    return Fen(
        div_half_even(numerator * rate.numerator * unpaid_fen, rate.denominator * statement_fen)
    )


@dataclass(frozen=True, slots=True)
class DueOutcome:
    paid_fen: Fen
    paid_in_full: bool
    unpaid_minimum_fen: Fen
    moved_to_past_due_fen: Fen
    movement: Movement


def compute_due_outcome(
    *,
    statement_fen: int,
    minimum_fen: int,
    paid_fen: int,
    balances: Balances,
    order: Sequence[Component],
) -> DueOutcome:
    """Paid in full or not, and the unpaid minimum made past due (module docstring)."""
    unpaid_minimum_fen = max(minimum_fen - paid_fen, 0)
    already_past_due_fen = sum_balances(balances, PAST_DUE_TYPES)
    to_move_fen = max(unpaid_minimum_fen - already_past_due_fen, 0)
    movement: Movement = {}
    moved_fen = 0
    for component in order:
        take_fen = min(balances.get(RECEIVABLE[component, "billed"], 0), to_move_fen - moved_fen)
        if take_fen > 0:
            add_movement(movement, RECEIVABLE[component, "billed"], -take_fen)
            add_movement(movement, RECEIVABLE[component, "past_due"], take_fen)
            moved_fen += take_fen
    return DueOutcome(
        paid_fen=Fen(paid_fen),
        paid_in_full=paid_fen >= statement_fen,
        unpaid_minimum_fen=Fen(unpaid_minimum_fen),
        moved_to_past_due_fen=Fen(moved_fen),
        movement=movement,
    )


def compute_bill_late_fee(
    terms: ProductTerms, moved_to_past_due_fen: int, past_due_now_fen: int
) -> Fen:
    """The late fee of a bill on its late-fee date: on what it made past due and is still
    unpaid (older past-due amounts are paid first, so at most the line's past due)."""
    unpaid_fen = min(moved_to_past_due_fen, past_due_now_fen)
    return compute_late_fee(
        unpaid_minimum_fen=unpaid_fen,
        late_fee_fixed_fen=terms.fees.late_fee_fixed_fen,
        late_fee_cap_bps=terms.fees.late_fee_cap_bps,
        late_fee_cap_per_bill_fen=terms.fees.late_fee_cap_per_bill_fen,
        late_fees_charged_on_bill_fen=0,
    )


@dataclass(frozen=True, slots=True)
class BillDebt:
    """What one bill made past due in total (moves, late fee, penalty), by due date."""

    bill_id: int
    due_date: date
    charged_fen: Fen


def find_oldest_unpaid_bill(debts: Sequence[BillDebt], past_due_fen: int) -> BillDebt | None:
    """The oldest bill whose past-due charges are not all repaid.

    Payments settle past-due amounts oldest first, so what has been repaid is the total
    ever charged minus what is past due now, applied to the bills in due-date order.
    None when nothing is past due (or the past due has no bill to age it by).
    """
    if past_due_fen <= 0 or not debts:
        return None
    ordered = sorted(debts, key=lambda debt: (debt.due_date, debt.bill_id))
    repaid_fen = sum(debt.charged_fen for debt in ordered) - past_due_fen
    cumulative_fen = 0
    for debt in ordered:
        cumulative_fen += debt.charged_fen
        if cumulative_fen > repaid_fen:
            return debt
    return ordered[-1]
