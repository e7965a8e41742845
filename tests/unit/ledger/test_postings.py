"""Posting batches as plain data: balance checks, deltas, floors, account codes."""

from __future__ import annotations

from datetime import date

import pytest

from node_api.kernel.errors import CreditNetValueError
from node_api.ledger.accounts import (
    ACCOUNT_RULES,
    AccountScope,
    AccountType,
    funding_payable_code,
    line_account_code,
    node_account_code,
)
from node_api.ledger.postings import (
    AccountState,
    BatchDraft,
    FloorCrossedError,
    PostingLine,
    UnbalancedBatchError,
    check_batch,
    check_floors,
    compute_deltas,
)

DAY = date(2025, 3, 1)


def _draft(*amounts: int, key: str = "k1", kind: str = "purchase") -> BatchDraft:
    lines = tuple(PostingLine(f"a{i}", amount) for i, amount in enumerate(amounts))
    return BatchDraft(business_key=key, kind=kind, as_of=DAY, lines=lines)


def test_balanced_batch_passes() -> None:
    check_batch(_draft(500, -300, -200))


@pytest.mark.parametrize("amounts", [(500, -499), (1, 1), (0, 0)])
def test_RevertWhen_batch_does_not_balance(amounts: tuple[int, ...]) -> None:
    with pytest.raises(UnbalancedBatchError):
        check_batch(_draft(*amounts))


def test_RevertWhen_batch_has_one_line() -> None:
    with pytest.raises(UnbalancedBatchError, match="at least two"):
        check_batch(_draft(0))


def test_RevertWhen_a_line_is_zero_even_if_the_rest_balances() -> None:
    with pytest.raises(UnbalancedBatchError, match="zero"):
        check_batch(_draft(100, -100, 0))


def test_imbalance_is_reported_in_fen() -> None:
    with pytest.raises(UnbalancedBatchError) as caught:
        check_batch(_draft(100, -90))
    assert caught.value.extra["imbalance_fen"] == 10


@pytest.mark.parametrize("key, kind", [("", "purchase"), ("x" * 161, "purchase"), ("k", "Bad")])
def test_RevertWhen_key_or_kind_is_malformed(key: str, kind: str) -> None:
    with pytest.raises(CreditNetValueError):
        check_batch(_draft(1, -1, key=key, kind=kind))


def test_deltas_net_per_account_over_batches_and_drop_zeros() -> None:
    first = BatchDraft("k1", "x", DAY, (PostingLine("a", 100), PostingLine("b", -100)))
    second = BatchDraft("k2", "x", DAY, (PostingLine("b", 100), PostingLine("c", -100)))
    assert compute_deltas([first, second], {"a": 1, "b": 2, "c": 3}) == {1: 100, 3: -100}


def test_floor_check_uses_the_normal_side() -> None:
    receivable = AccountState(1, "line:1:principal_unbilled", 300, 1, 0)
    credit = AccountState(2, "line:1:customer_credit", -50, -1, 0)
    check_floors([receivable, credit], {1: -300, 2: 50})
    with pytest.raises(FloorCrossedError) as caught:
        check_floors([receivable, credit], {1: -301})
    assert caught.value.extra["account"] == "line:1:principal_unbilled"
    with pytest.raises(FloorCrossedError):
        check_floors([receivable, credit], {2: 51})


def test_accounts_without_floor_may_go_either_way() -> None:
    clearing = AccountState(3, "node:settlement_clearing", 0, 1, None)
    check_floors([clearing], {3: -(10**12)})


def test_every_receivable_has_a_zero_floor_on_the_debit_side() -> None:
    receivables = [
        kind for kind in AccountType if kind.value.endswith(("_unbilled", "_billed", "_past_due"))
    ]
    assert len(receivables) == 12
    for kind in receivables:
        assert ACCOUNT_RULES[kind].normal_sign == 1
        assert ACCOUNT_RULES[kind].floor_fen == 0


def test_account_codes_name_their_owner() -> None:
    assert line_account_code(7, AccountType.PRINCIPAL_BILLED) == "line:7:principal_billed"
    assert funding_payable_code(7, "REV1", "bank-a") == "line:7:funding_payable:REV1:bank-a"
    assert node_account_code(AccountType.SETTLEMENT_CLEARING) == "node:settlement_clearing"
    with pytest.raises(ValueError):
        line_account_code(7, AccountType.SETTLEMENT_CLEARING)
    assert ACCOUNT_RULES[AccountType.FUNDING_PAYABLE].scope is AccountScope.LINE_PARTNER
