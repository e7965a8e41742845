"""Every router the API serves, in one list (the app factory mounts them all)."""

from __future__ import annotations

from fastapi import APIRouter

from node_api.routes import health

ROUTERS: list[APIRouter] = [health.router]

from node_api.routes import oracles  # noqa: E402 - appended by the oracles part

ROUTERS.append(oracles.router)

from node_api.routes import (  # noqa: E402 - appended by the ledger and lending part
    credit_lines,
    ledger,
    purchases,
    repayments,
)

ROUTERS.extend([credit_lines.router, purchases.router, repayments.router, ledger.router])

from node_api.routes import applications, risk  # noqa: E402 - appended by the onboarding part

ROUTERS.extend([applications.router, risk.router])

from node_api.routes import bills, installments, portfolio  # noqa: E402 - appended by the EOD part

ROUTERS.extend([bills.router, installments.router, portfolio.router])

from node_api.routes import partners  # noqa: E402 - appended by the settlement part

ROUTERS.append(partners.router)

from node_api.routes import audit  # noqa: E402 - appended by the audit part

ROUTERS.append(audit.router)

from node_api.routes import products  # noqa: E402 - the product factory

ROUTERS.append(products.router)
