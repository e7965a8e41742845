"""Every router the API serves, in one list (the app factory mounts them all)."""

from __future__ import annotations

from fastapi import APIRouter

from node_api.http.routes import (
    agreements,
    applications,
    audit,
    bills,
    collections,
    console_audit,
    console_ops,
    console_partner,
    console_session,
    contracts,
    credit_lines,
    health,
    installments,
    keys,
    ledger,
    oracles,
    partner_feed,
    partners,
    portfolio,
    products,
    purchases,
    recoveries,
    repayments,
    risk,
    risk_liveness,
    risk_models,
)

# The authorization route first: routes are matched in order on every request.
ROUTERS: list[APIRouter] = [
    purchases.router,
    health.router,
    products.router,
    credit_lines.router,
    repayments.router,
    installments.router,
    bills.router,
    portfolio.router,
    ledger.router,
    applications.router,
    risk.router,
    risk_models.router,
    risk_liveness.router,
    partners.router,
    partner_feed.router,
    oracles.router,
    audit.router,
    agreements.router,
    contracts.router,
    keys.router,
    collections.router,
    recoveries.router,
    console_session.router,
    console_partner.router,
    console_ops.router,
    console_audit.router,
]
