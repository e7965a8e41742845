"""The postings and settlement events of each lending operation, as pure functions.

Conventions (debit positive):
- a purchase of X: principal_unbilled +X, settlement_clearing −X (owed to the merchant,
  event `merchant_payable`); a cash drawdown likewise (event `cash_disbursed`) plus its
  origination fee (fee_unbilled / fee_income);
- channel commission on a purchase, rounded down: commission_expense / the channel's
  commission payable (event `channel_commission`);
- funding: each funding partner's payable on the line is its share of the product's
  open principal (`compute_funded_split`: largest remainder, so the shares always add up
  to the open principal): one clearing line for the total, one funding_payable line per
  partner (event `funding_share` per partner, positive when the partner funds more,
  negative when principal is returned to it). Every operation that reduces principal or
  reads the payables (repayment, refund, charge-off) sets them to target in its own
  batch (`funding_adjustment`); purchases and drawdowns leave them to end of day's first
  step (`lending/eod/step_fund.py`), which sets every line used that day to target once.
  Because the target is recomputed from the open principal every time, rounding never
  accumulates, the shares a day's uses add are those of the day's total, and a repaid
  line ends with zero payable.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from node_api.kernel.money import BPS_DENOMINATOR, PPM_DENOMINATOR, div_floor
from node_api.ledger.accounts import (
    AccountType,
    funding_payable_code,
    line_account_code,
    node_account_code,
    partner_account_code,
)
from node_api.ledger.postings import PostingLine, SettlementEventDraft
from node_api.ledger.settlement_events import EventKind, LimitLevel
from node_api.lending.core.books import LineBook
from node_api.lending.limits import LimitNode
from node_api.lending.products import FundingShare, ProductTerms

CLEARING = node_account_code(AccountType.SETTLEMENT_CLEARING)


def compute_commission_fen(amount_fen: int, commission_bps: int) -> int:
    """Channel commission on an amount, rounded down (the remainder stays with the lender)."""
    return div_floor(amount_fen * commission_bps, BPS_DENOMINATOR)


def compute_funded_split(
    open_principal_fen: int, funding_split: Sequence[FundingShare]
) -> dict[str, int]:
    """Each funding partner's share of open principal, by largest remainder.

    Every partner gets its share rounded down; the fen those roundings leave (fewer than
    the number of partners) go one each to the partners with the largest remainders, the
    first listed (ascending partner id) among equals. The shares sum to the open principal
    exactly, since the product's shares sum to 1,000,000 ppm.
    """
    floors: dict[str, int] = {}
    remainders: list[tuple[int, int, str]] = []
    for position, share in enumerate(funding_split):
        exact = open_principal_fen * share.share_ppm
        floors[share.partner_id] = div_floor(exact, PPM_DENOMINATOR)
        remainder = exact - floors[share.partner_id] * PPM_DENOMINATOR
        remainders.append((-remainder, position, share.partner_id))
    left_fen = open_principal_fen - sum(floors.values())
    for _, _, partner_id in sorted(remainders)[: max(left_fen, 0)]:
        floors[partner_id] += 1
    return floors


def use_lines(
    *,
    line_id: int,
    amount_fen: int,
    fee_fen: int,
    commission_fen: int,
    channel_id: str,
) -> list[PostingLine]:
    """The principal, clearing, fee and commission lines of a purchase or drawdown."""
    lines = [
        PostingLine(line_account_code(line_id, AccountType.PRINCIPAL_UNBILLED), amount_fen),
        PostingLine(CLEARING, -amount_fen),
    ]
    if fee_fen:
        lines += [
            PostingLine(line_account_code(line_id, AccountType.FEE_UNBILLED), fee_fen),
            PostingLine(node_account_code(AccountType.FEE_INCOME), -fee_fen),
        ]
    if commission_fen:
        payable = partner_account_code(channel_id, AccountType.CHANNEL_COMMISSION_PAYABLE)
        lines += [
            PostingLine(node_account_code(AccountType.COMMISSION_EXPENSE), commission_fen),
            PostingLine(payable, -commission_fen),
        ]
    return lines


def funding_adjustment(
    book: LineBook,
    product_nodes: Sequence[LimitNode],
    terms_of: Callable[[LimitNode], ProductTerms],
    pending: Sequence[PostingLine],
) -> tuple[list[PostingLine], list[SettlementEventDraft]]:
    """Lines and events that bring every funding payable of the line to its target share
    of its product's open principal (`used_fen` of the product node), given the lines
    already pending in the same batch."""
    pending_fen: dict[str, int] = {}
    for line in pending:
        pending_fen[line.account_code] = pending_fen.get(line.account_code, 0) + line.amount_fen
    lines: list[PostingLine] = []
    events: list[SettlementEventDraft] = []
    for node in product_nodes:
        if node.level is not LimitLevel.PRODUCT or node.product_code is None:
            continue
        terms = terms_of(node)
        targets = compute_funded_split(node.used_fen, terms.funding_split)
        for share in terms.funding_split:
            code = funding_payable_code(book.credit_line_id, node.product_code, share.partner_id)
            current_fen = -(book.balances_fen.get(code, 0) + pending_fen.get(code, 0))
            delta_fen = targets[share.partner_id] - current_fen
            if delta_fen != 0:
                lines.append(PostingLine(code, -delta_fen))
                events.append(_funding_share_event(delta_fen, share.partner_id, node))
    return _with_clearing(lines), events


def _funding_share_event(delta_fen: int, partner_ref: str, node: LimitNode) -> SettlementEventDraft:
    """The event of a change of one funder's share of a product's open principal."""
    return SettlementEventDraft(
        EventKind.FUNDING_SHARE,
        delta_fen,
        partner_ref=partner_ref,
        product_code=node.product_code,
        product_version=node.product_version,
    )


def _with_clearing(payable_lines: list[PostingLine]) -> list[PostingLine]:
    """The payable lines and one clearing line for their total: the funding partners'
    cash moves through clearing as one amount; events carry the split per partner."""
    total_fen = -sum(line.amount_fen for line in payable_lines)
    return [PostingLine(CLEARING, total_fen), *payable_lines] if total_fen else payable_lines


def principal_bucket_lines(
    book: LineBook, reduction_fen: int, order: Sequence[AccountType]
) -> list[PostingLine]:
    """Credit lines that take `reduction_fen` off the line's principal buckets in `order`."""
    lines = []
    remaining_fen = reduction_fen
    for account_type in order:
        take_fen = min(book.normal_fen(account_type), remaining_fen)
        if take_fen > 0:
            lines.append(
                PostingLine(line_account_code(book.credit_line_id, account_type), -take_fen)
            )
            remaining_fen -= take_fen
    if remaining_fen:
        raise AssertionError("principal buckets hold less than the open principal")
    return lines
