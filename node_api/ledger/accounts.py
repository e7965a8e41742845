"""The chart of accounts: which accounts exist, their normal side and their floor.

Four scopes:
- per credit line: receivables by component and bucket (principal, interest, fee and
  penalty; each unbilled, billed or past due), the customer's credit balance and the
  line's written-off amount;
- per credit line, product and funding partner: funding payable (the partner's share of
  that principal); per credit line and guarantor: the subrogated receivable and the
  guarantor's claim a compensation leaves (`subrogation_specs`);
- per partner: commission payable to each channel (no floor: a refund after the
  commission was settled leaves the channel owing the node until the next cycle);
- the node's own: settlement clearing (money in transit between the node and its
  counterparties), income by kind and commission expense.

Each account has a stable `code` (`line:17:principal_unbilled`,
`line:17:funding_payable:REV1:BANK-A`, `partner:app-x:channel_commission_payable`,
`node:settlement_clearing`) so callers can name an
account without looking it up first.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Final, NamedTuple

from sqlalchemy import select
from sqlalchemy.engine import Connection

from node_api.kernel.errors import NotFoundError
from node_api.ledger.schema import ledger_account_table
from node_api.ledger.sql import Row, in_values, insert_ignoring_conflicts

LEDGER_CURRENCY = "CNY"
DEBIT_NORMAL = 1
CREDIT_NORMAL = -1


class AccountScope(StrEnum):
    LINE = "line"
    """One per credit line."""
    LINE_PARTNER = "line_partner"
    """One per credit line, product and funding partner."""
    PARTNER = "partner"
    """One per partner (channel)."""
    NODE = "node"
    """One for the whole node."""


class AccountType(StrEnum):
    """Every kind of account in the chart. The value is part of the account code."""

    PRINCIPAL_UNBILLED = "principal_unbilled"
    PRINCIPAL_BILLED = "principal_billed"
    PRINCIPAL_PAST_DUE = "principal_past_due"
    INTEREST_UNBILLED = "interest_unbilled"
    INTEREST_BILLED = "interest_billed"
    INTEREST_PAST_DUE = "interest_past_due"
    FEE_UNBILLED = "fee_unbilled"
    FEE_BILLED = "fee_billed"
    FEE_PAST_DUE = "fee_past_due"
    PENALTY_UNBILLED = "penalty_unbilled"
    PENALTY_BILLED = "penalty_billed"
    PENALTY_PAST_DUE = "penalty_past_due"
    CUSTOMER_CREDIT = "customer_credit"
    """What the node owes the customer: over-payments and refunds beyond the debt."""
    WRITTEN_OFF = "written_off"
    """Principal and charges the node gave up on, kept per line: the part of the node's
    `loan_loss_allowance` a charge-off used on this line (the allowance left for the
    lines still on the books is `loan_loss_allowance` less every line's `written_off`).
    Recoveries and debt sales credit it: they replenish the allowance."""
    INTEREST_SUSPENDED = "interest_suspended"
    """Off balance sheet (a memo against `suspended_interest_contra`): interest and
    penalty a non-accrual line owes but the node does not recognize until collected."""
    FUNDING_PAYABLE = "funding_payable"
    """A funding partner's share of one line's open principal of one product: what the
    node owes it back as that principal is repaid. Kept per line so it always equals
    the share of that line's principal (rounded down) and ends at zero with it."""
    SUBROGATED_RECEIVABLE = "subrogated_receivable"
    """Per line and guarantor: what the borrower owes the guarantor after it compensated
    the line (代偿), collected by the node on its behalf (a memo against
    `guarantor_claim`)."""
    GUARANTOR_CLAIM = "guarantor_claim"
    """Per line and guarantor: the guarantor's subrogated claim, what the node owes it out
    of the line's later recoveries before anyone else is paid."""
    CHANNEL_COMMISSION_PAYABLE = "channel_commission_payable"
    SETTLEMENT_CLEARING = "settlement_clearing"
    INTEREST_INCOME = "interest_income"
    FEE_INCOME = "fee_income"
    PENALTY_INCOME = "penalty_income"
    COMMISSION_EXPENSE = "commission_expense"
    SUSPENDED_INTEREST_CONTRA = "suspended_interest_contra"
    """The memo side of every line's `interest_suspended` (off balance sheet)."""
    LOAN_LOSS_ALLOWANCE = "loan_loss_allowance"
    """The provision for loan losses (a contra-asset against the receivables)."""
    PROVISION_EXPENSE = "provision_expense"


@dataclass(frozen=True, slots=True)
class AccountRule:
    """Where an account lives, its normal side, and the least normal balance it may hold."""

    scope: AccountScope
    normal_sign: int
    floor_fen: int | None


_RECEIVABLE = AccountRule(AccountScope.LINE, DEBIT_NORMAL, 0)
ACCOUNT_RULES: dict[AccountType, AccountRule] = {
    AccountType.PRINCIPAL_UNBILLED: _RECEIVABLE,
    AccountType.PRINCIPAL_BILLED: _RECEIVABLE,
    AccountType.PRINCIPAL_PAST_DUE: _RECEIVABLE,
    AccountType.INTEREST_UNBILLED: _RECEIVABLE,
    AccountType.INTEREST_BILLED: _RECEIVABLE,
    AccountType.INTEREST_PAST_DUE: _RECEIVABLE,
    AccountType.FEE_UNBILLED: _RECEIVABLE,
    AccountType.FEE_BILLED: _RECEIVABLE,
    AccountType.FEE_PAST_DUE: _RECEIVABLE,
    AccountType.PENALTY_UNBILLED: _RECEIVABLE,
    AccountType.PENALTY_BILLED: _RECEIVABLE,
    AccountType.PENALTY_PAST_DUE: _RECEIVABLE,
    AccountType.CUSTOMER_CREDIT: AccountRule(AccountScope.LINE, CREDIT_NORMAL, 0),
    AccountType.WRITTEN_OFF: AccountRule(AccountScope.LINE, DEBIT_NORMAL, None),
    AccountType.INTEREST_SUSPENDED: AccountRule(AccountScope.LINE, DEBIT_NORMAL, 0),
    AccountType.FUNDING_PAYABLE: AccountRule(AccountScope.LINE_PARTNER, CREDIT_NORMAL, 0),
    AccountType.SUBROGATED_RECEIVABLE: AccountRule(AccountScope.LINE_PARTNER, DEBIT_NORMAL, 0),
    AccountType.GUARANTOR_CLAIM: AccountRule(AccountScope.LINE_PARTNER, CREDIT_NORMAL, 0),
    AccountType.CHANNEL_COMMISSION_PAYABLE: AccountRule(AccountScope.PARTNER, CREDIT_NORMAL, None),
    AccountType.SETTLEMENT_CLEARING: AccountRule(AccountScope.NODE, DEBIT_NORMAL, None),
    AccountType.INTEREST_INCOME: AccountRule(AccountScope.NODE, CREDIT_NORMAL, None),
    AccountType.FEE_INCOME: AccountRule(AccountScope.NODE, CREDIT_NORMAL, None),
    AccountType.PENALTY_INCOME: AccountRule(AccountScope.NODE, CREDIT_NORMAL, None),
    AccountType.COMMISSION_EXPENSE: AccountRule(AccountScope.NODE, DEBIT_NORMAL, None),
    AccountType.SUSPENDED_INTEREST_CONTRA: AccountRule(AccountScope.NODE, CREDIT_NORMAL, None),
    AccountType.LOAN_LOSS_ALLOWANCE: AccountRule(AccountScope.NODE, CREDIT_NORMAL, None),
    AccountType.PROVISION_EXPENSE: AccountRule(AccountScope.NODE, DEBIT_NORMAL, None),
}

LINE_ACCOUNT_TYPES: tuple[AccountType, ...] = tuple(
    kind for kind, rule in ACCOUNT_RULES.items() if rule.scope is AccountScope.LINE
)
NODE_ACCOUNT_TYPES: tuple[AccountType, ...] = tuple(
    kind for kind, rule in ACCOUNT_RULES.items() if rule.scope is AccountScope.NODE
)
PRINCIPAL_ACCOUNT_TYPES: tuple[AccountType, ...] = (
    AccountType.PRINCIPAL_UNBILLED,
    AccountType.PRINCIPAL_BILLED,
    AccountType.PRINCIPAL_PAST_DUE,
)


NODE_CUSTOMER: Final = ""
"""The customer id of the node's own rows (its and its partners' accounts, batches with no
credit line, their postings and events): a partitioned table's key cannot be NULL, and no
customer's id is empty (`lending.lines.CUSTOMER_REF_PATTERN`)."""


@dataclass(frozen=True, slots=True)
class AccountSpec:
    """An account to exist: its code, type and owner."""

    code: str
    account_type: AccountType
    credit_line_id: int | None = None
    partner_ref: str | None = None
    customer_id: str = NODE_CUSTOMER
    """The line's customer, for a per-line account (the partitioning key, issue #19);
    `NODE_CUSTOMER` for the node's and partners' own accounts."""


def line_code_prefix(credit_line_id: int) -> str:
    """What every per-line account's code begins with (`line:17:`)."""
    return f"line:{credit_line_id}:"


LINE_CODE_PREFIX_SQL: Final = "'line:' || {line_id} || ':'"
"""`line_code_prefix` as a SQL expression of the line id column `{line_id}` (for a
statement that learns the line's id as it inserts the line)."""


def line_account_code(credit_line_id: int, account_type: AccountType) -> str:
    if ACCOUNT_RULES[account_type].scope is not AccountScope.LINE:
        raise ValueError(f"{account_type} is not a per-line account")
    return line_code_prefix(credit_line_id) + account_type.value


def funding_payable_code(credit_line_id: int, product_code: str, partner_ref: str) -> str:
    kind = AccountType.FUNDING_PAYABLE.value
    return f"{line_code_prefix(credit_line_id)}{kind}:{product_code}:{partner_ref}"


def funding_payable_spec(
    credit_line_id: int, customer_id: str, product_code: str, partner_ref: str
) -> AccountSpec:
    return AccountSpec(
        funding_payable_code(credit_line_id, product_code, partner_ref),
        AccountType.FUNDING_PAYABLE,
        credit_line_id=credit_line_id,
        partner_ref=partner_ref,
        customer_id=customer_id,
    )


def subrogation_specs(
    credit_line_id: int, customer_id: str, guarantor_ref: str
) -> tuple[AccountSpec, AccountSpec]:
    """The subrogated receivable and the guarantor's claim of one line and guarantor
    (`line:17:guarantor_claim:GUARD-1`)."""

    def spec(kind: AccountType) -> AccountSpec:
        code = f"line:{credit_line_id}:{kind.value}:{guarantor_ref}"
        return AccountSpec(
            code,
            kind,
            credit_line_id=credit_line_id,
            partner_ref=guarantor_ref,
            customer_id=customer_id,
        )

    return spec(AccountType.SUBROGATED_RECEIVABLE), spec(AccountType.GUARANTOR_CLAIM)


def partner_account_code(partner_ref: str, account_type: AccountType) -> str:
    if ACCOUNT_RULES[account_type].scope is not AccountScope.PARTNER:
        raise ValueError(f"{account_type} is not a per-partner account")
    return f"partner:{partner_ref}:{account_type.value}"


def node_account_code(account_type: AccountType) -> str:
    if ACCOUNT_RULES[account_type].scope is not AccountScope.NODE:
        raise ValueError(f"{account_type} is not a node account")
    return f"node:{account_type.value}"


def line_account_specs(credit_line_id: int, customer_id: str) -> list[AccountSpec]:
    """Every per-line account of one credit line (of customer `customer_id`)."""
    return [
        AccountSpec(
            line_account_code(credit_line_id, kind),
            kind,
            credit_line_id=credit_line_id,
            customer_id=customer_id,
        )
        for kind in LINE_ACCOUNT_TYPES
    ]


def partner_account_spec(partner_ref: str, account_type: AccountType) -> AccountSpec:
    return AccountSpec(
        partner_account_code(partner_ref, account_type), account_type, partner_ref=partner_ref
    )


def node_account_specs() -> list[AccountSpec]:
    return [AccountSpec(node_account_code(kind), kind) for kind in NODE_ACCOUNT_TYPES]


def account_rows(specs: Iterable[AccountSpec]) -> list[Row]:
    """The `ledger_account` rows for these specs, in code order, balances zero."""
    return [
        {
            "code": spec.code,
            "account_type": spec.account_type.value,
            "credit_line_id": spec.credit_line_id,
            "partner_ref": spec.partner_ref,
            "currency": LEDGER_CURRENCY,
            "normal_sign": ACCOUNT_RULES[spec.account_type].normal_sign,
            "floor_fen": ACCOUNT_RULES[spec.account_type].floor_fen,
            "balance_fen": 0,
            "customer_id": spec.customer_id,
        }
        for spec in sorted(set(specs), key=lambda spec: spec.code)
    ]


def ensure_accounts(conn: Connection, specs: Iterable[AccountSpec]) -> None:
    """Create the accounts that do not exist yet; existing ones are left untouched.

    Rows are inserted in code order, so two transactions creating overlapping sets
    wait for each other instead of deadlocking.
    """
    rows = account_rows(specs)
    if rows:
        insert_ignoring_conflicts(conn, ledger_account_table, rows, ["customer_id", "code"])


class AccountRef(NamedTuple):
    """What never changes about an account: its id, normal side and floor.

    A tuple of plain ints, so the cyclic garbage collector stops tracking the hundreds of
    thousands a busy worker caches.
    """

    account_id: int
    normal_sign: int
    floor_fen: int | None

    def moves_toward_floor(self, delta_fen: int) -> bool:
        """Whether a change of `delta_fen` (debit positive) could cross the floor."""
        return self.floor_fen is not None and delta_fen * self.normal_sign < 0


def fetch_account_refs(conn: Connection, codes: Sequence[str]) -> dict[str, AccountRef]:
    """Accounts by code; NotFoundError naming the first code that does not exist."""
    wanted = sorted(set(codes))
    table = ledger_account_table
    rows = conn.execute(
        select(table.c.code, table.c.id, table.c.normal_sign, table.c.floor_fen).where(
            in_values(conn, table.c.code, wanted)
        )
    )
    found = {
        str(code): AccountRef(int(account_id), int(sign), floor)
        for code, account_id, sign, floor in rows
    }
    for code in wanted:
        if code not in found:
            raise NotFoundError(f"ledger account {code} does not exist", field="account")
    return found


class AccountIdCache:
    """Account ids (with normal side and floor) by code, kept for the life of the process.

    Accounts are never deleted, renumbered or re-typed, so a cached entry never goes
    stale. Entries are stored as plain tuples of ints, which the cyclic garbage
    collector stops tracking: a busy worker caches hundreds of thousands.
    """

    def __init__(self, max_entries: int = 500_000) -> None:
        self._refs: dict[str, tuple[int, int, int | None]] = {}
        self._max_entries = max_entries

    def remember(self, code: str, ref: AccountRef) -> None:
        """Record an account learned elsewhere (e.g. while reading a line's balances)."""
        if len(self._refs) < self._max_entries:
            self._refs[code] = (ref.account_id, ref.normal_sign, ref.floor_fen)

    def remember_all(self, refs: Mapping[str, tuple[int, int, int | None]]) -> None:
        """Record many accounts learned elsewhere, each as (id, normal sign, floor), in one
        call (no `AccountRef` built per account). Unlike `remember`, when they do not fit
        the cache is emptied first: the caller is about to use them (end of day reads a
        batch's accounts just before posting to them)."""
        if len(refs) > self._max_entries:
            return
        if len(self._refs) + len(refs) > self._max_entries:
            self._refs.clear()
        self._refs.update(refs)

    def refs(self, conn: Connection, codes: Iterable[str]) -> dict[str, AccountRef]:
        """Refs for `codes`, fetching the ones not cached yet in one query."""
        wanted = set(codes)
        missing = [code for code in wanted if code not in self._refs]
        if missing:
            if len(self._refs) + len(missing) > self._max_entries:
                self._refs.clear()
                missing = list(wanted)
            for code, ref in fetch_account_refs(conn, missing).items():
                self._refs[code] = (ref.account_id, ref.normal_sign, ref.floor_fen)
        return {code: AccountRef(*self._refs[code]) for code in wanted}

    def resolve(self, conn: Connection, codes: Iterable[str]) -> dict[str, int]:
        """Ids for `codes`."""
        return {code: ref.account_id for code, ref in self.refs(conn, codes).items()}
