"""`/v1/portfolio/summary`: receivables by delinquency bucket and the NPL ratio (admin)."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict

from node_api.http.authz import AdminDep
from node_api.http.deps import SessionDep
from node_api.http.schemas import PROBLEMS
from node_api.kernel.money import Fen
from node_api.lending.portfolio import fetch_portfolio_summary

router = APIRouter(tags=["portfolio"])


class BucketOut(BaseModel):
    bucket: str
    lines: int
    balance_fen: Fen


class PortfolioOut(BaseModel):
    model_config = ConfigDict(use_attribute_docstrings=True)

    buckets: list[BucketOut]
    total_fen: Fen
    non_performing_fen: Fen
    npl_ratio_bps: int
    """M4+ balance / total balance, in basis points (half-even)."""
    written_off_fen: Fen


@router.get(
    "/v1/portfolio/summary",
    name="portfolio_summary",
    response_model=PortfolioOut,
    responses=PROBLEMS,
)
def get_portfolio_summary(session: SessionDep, who: AdminDep) -> PortfolioOut:
    """Current receivables by bucket (M0..M7+), the non-performing (M4+) part and ratio."""
    summary = fetch_portfolio_summary(session.connection())
    return PortfolioOut(
        buckets=[
            BucketOut(bucket=item.bucket.value, lines=item.lines, balance_fen=item.balance_fen)
            for item in summary.buckets
        ],
        total_fen=summary.total_fen,
        non_performing_fen=summary.non_performing_fen,
        npl_ratio_bps=summary.npl_ratio_bps,
        written_off_fen=summary.written_off_fen,
    )
