"""Purchase decisions, funding split, commission and FIFO principal, as plain data."""

from __future__ import annotations

import asyncio
from datetime import date

import pytest

from node_api.http.problems import problem_status
from node_api.idempotency import KeyClaim
from node_api.kernel.errors import ConflictError, CreditNetError, NotFoundError
from node_api.ledger.postings import PostingLine
from node_api.ledger.settlement_events import LimitLevel
from node_api.lending.core.books import LineBook
from node_api.lending.core.decide import Accepted, UseKind, UseRequest, decide_use
from node_api.lending.core.entries import (
    CLEARING,
    compute_commission_fen,
    compute_funded_split,
    funding_adjustment,
    use_lines,
)
from node_api.lending.limits import LimitNode
from node_api.lending.lines import LineStatus, LockedLine
from node_api.lending.products import FundingShare, ProductTerms, parse_product_terms
from node_api.lending.use_reductions import OpenUse, compute_fifo_reductions
from tests.integration.lending.helpers import product_data

DAY = date(2025, 3, 10)
TERMS = parse_product_terms(product_data())


def _line(status: LineStatus = LineStatus.ACTIVE, product_used: int = 0) -> LockedLine:
    nodes = [
        LimitNode(1, 9, None, "total", LimitLevel.TOTAL, None, None, 10_000, 0, None, product_used),
        LimitNode(
            2, 9, 1, "total/purchase", LimitLevel.GROUP, None, None, 8_000, 0, None, product_used
        ),
        LimitNode(
            3,
            9,
            2,
            "total/purchase/REV1",
            LimitLevel.PRODUCT,
            "REV1",
            1,
            8_000,
            0,
            None,
            product_used,
        ),
    ]
    return LockedLine(9, "c1", status, "CNY", date(2025, 3, 1), 5, nodes)


def _request(amount_fen: int = 1_000, **changes: object) -> UseRequest:
    fields: dict[str, object] = {
        "kind": UseKind.PURCHASE,
        "credit_line_id": 9,
        "amount_fen": amount_fen,
        "currency": "CNY",
        "channel_id": "app",
        "claim": KeyClaim("s", "k", "h"),
        "merchant_id": "m1",
    }
    fields.update(changes)
    return UseRequest(**fields)  # type: ignore[arg-type]


def _terms(_node: LimitNode) -> ProductTerms:
    return TERMS


def _decide(request: UseRequest, line: LockedLine | None) -> Accepted | CreditNetError:
    return decide_use(request, line, _terms, DAY)


def test_use_within_every_limit_is_accepted_on_the_full_path() -> None:
    decision = _decide(_request(8_000), _line())
    assert isinstance(decision, Accepted)
    assert [n.path for n in decision.path] == ["total", "total/purchase", "total/purchase/REV1"]


@pytest.mark.parametrize(
    "request_changes, line, code, status",
    [
        ({"amount_fen": 8_001}, _line(), "over_limit", 409),
        ({"channel_id": "kiosk"}, _line(), "channel_ineligible", 409),
        ({}, _line(LineStatus.FROZEN), "line_frozen", 409),
        ({}, _line(LineStatus.CLOSED), "line_closed", 409),
        ({"kind": UseKind.CASH_DRAWDOWN}, _line(), "product_not_on_line", 409),
        ({"currency": "USD"}, _line(), "wrong_currency", 422),
        ({"amount_fen": 0}, _line(), "invalid_value", 422),
        ({"as_of": date(2025, 2, 1)}, _line(), "invalid_value", 422),
    ],
)
def test_refusals_name_their_reason(
    request_changes: dict[str, object], line: LockedLine, code: str, status: int
) -> None:
    as_of = request_changes.pop("as_of", DAY)
    decision = decide_use(_request(**request_changes), line, _terms, as_of)  # type: ignore[arg-type]
    assert isinstance(decision, CreditNetError)
    assert (decision.code, problem_status(decision)) == (code, status)


def test_over_limit_names_the_binding_level() -> None:
    decision = _decide(_request(2_001), _line(product_used=6_000))
    assert isinstance(decision, ConflictError)
    assert decision.extra["limit_path"] == "total/purchase"


def test_unknown_line_is_not_found() -> None:
    assert isinstance(_decide(_request(), None), NotFoundError)


def _shares(*ppm: tuple[str, int]) -> list[FundingShare]:
    return [FundingShare(partner_id=p, share_ppm=s, funder_rate_bps=0) for p, s in ppm]


def test_commission_rounds_down() -> None:
    assert compute_commission_fen(999, 55) == 5


def test_funded_shares_split_the_open_principal_by_largest_remainder() -> None:
    # 1,001 fen at 70% / 30%: exactly 700.7 and 300.3. Rounding each down leaves 1,000
    # (a fen nobody funds); the leftover fen goes to the larger remainder, bank-a's 0.7.
    split = compute_funded_split(1_001, _shares(("bank-a", 700_000), ("lender", 300_000)))
    assert split == {"bank-a": 701, "lender": 300}
    # 100 fen in thirds (333,334 / 333,333 / 333,333 ppm): 33.3334 + 33.3333 + 33.3333;
    # floors give 99, the one fen left goes to the largest remainder (0.3334).
    thirds = _shares(("a", 333_334), ("b", 333_333), ("c", 333_333))
    assert compute_funded_split(100, thirds) == {"a": 34, "b": 33, "c": 33}
    # Equal remainders (1 fen at 50% / 50%: 0.5 each): the first listed (by partner id).
    halves = _shares(("bank-a", 500_000), ("lender", 500_000))
    assert compute_funded_split(1, halves) == {"bank-a": 1, "lender": 0}
    # 5 fen in thirds: 1.66667 / 1.666665 / 1.666665 → floors 1, 1, 1; the two fen left
    # go to a (0.66667) and then b (0.666665, equal to c's but listed first).
    assert compute_funded_split(5, thirds) == {"a": 2, "b": 2, "c": 1}


def test_funding_adjustment_targets_each_share_of_open_principal() -> None:
    # Open principal 1,001: targets bank-a 701, lender 300 (largest remainder, above).
    line = _line(product_used=1_001)
    book = LineBook(9, {"line:9:funding_payable:REV1:bank-a": -350})
    own = use_lines(line_id=9, amount_fen=501, fee_fen=0, commission_fen=2, channel_id="app")
    lines, events = funding_adjustment(book, line.product_nodes(), _terms, own)
    assert {(e.partner_ref, e.amount_fen) for e in events} == {("bank-a", 351), ("lender", 300)}
    assert sum(line.amount_fen for line in own + lines) == 0
    assert lines[0] == PostingLine(CLEARING, 651)
    assert PostingLine("line:9:funding_payable:REV1:bank-a", -351) in lines


def test_funding_adjustment_is_empty_when_payables_are_on_target() -> None:
    line = _line(product_used=1_000)
    book = LineBook(
        9, {"line:9:funding_payable:REV1:bank-a": -700, "line:9:funding_payable:REV1:lender": -300}
    )
    assert funding_adjustment(book, line.product_nodes(), _terms, []) == ([], [])


def test_fifo_takes_the_oldest_use_first_and_splits_the_last() -> None:
    uses = [
        OpenUse(1, 3, "app", 300, "cust-1"),
        OpenUse(2, 3, "pos", 500, "cust-1"),
        OpenUse(3, 3, "app", 200, "cust-1"),
    ]
    reductions = compute_fifo_reductions(uses, 600)
    assert [(r.use.purchase_id, r.amount_fen) for r in reductions] == [(1, 300), (2, 300)]
    with pytest.raises(AssertionError):
        compute_fifo_reductions(uses, 1_001)


class _Recorder:
    """A stand-in engine whose transactions record the batches they ran."""

    def __init__(self, fail_when: int | None = None) -> None:
        self.batches: list[list[int]] = []
        self.fail_when = fail_when

    def begin(self) -> _Recorder:
        return self

    async def __aenter__(self) -> _Recorder:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def run_sync(self, run: object, items: list[int]) -> list[int]:
        await asyncio.sleep(0.001)
        if self.fail_when in items:
            raise RuntimeError("database error")
        self.batches.append(list(items))
        return [item * 10 for item in items]


def _commit_all(engine: _Recorder, count: int, **options: float) -> list[object]:
    from node_api.lending.core.batcher import GroupCommitter

    async def main() -> list[object]:
        committer: GroupCommitter[int, int] = GroupCommitter(
            engine,  # type: ignore[arg-type]
            lambda conn, items: items,
            **options,  # type: ignore[arg-type]
        )
        return await asyncio.gather(
            *(committer.submit(i) for i in range(count)), return_exceptions=True
        )

    return asyncio.run(main())


def test_group_commit_batches_concurrent_requests_up_to_the_cap_with_own_results() -> None:
    engine = _Recorder()
    results = _commit_all(engine, 120, max_items=50)
    assert results == [i * 10 for i in range(120)]
    assert [len(batch) for batch in engine.batches] == [50, 50, 20]


def test_group_commit_retries_a_failed_batch_item_by_item_and_fails_only_the_culprit() -> None:
    engine = _Recorder(fail_when=7)
    results = _commit_all(engine, 20, max_items=50)
    assert isinstance(results[7], RuntimeError)
    assert [r for i, r in enumerate(results) if i != 7] == [i * 10 for i in range(20) if i != 7]
    assert [len(batch) for batch in engine.batches] == [1] * 19
