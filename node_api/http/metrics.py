"""Prometheus metrics at `GET /metrics` (text exposition format, no key needed).

Two kinds of figures:

- measured in this process as requests pass: `creditnet_http_request_duration_seconds`
  (a histogram per method, route template and status; observed by
  `node_api.http.middleware.AccessMiddleware`, one dictionary lookup and one
  `observe` per request) and, inside `creditnet up`, the end-of-day step durations
  (`creditnet_eod_step_duration_seconds`, registered by the runtime) and the Python
  process figures of `prometheus_client`;
- read when scraped, never cached, from the books and the chain (`NodeCollector`):
  outbox depth and age of its oldest row per kind, relayer and indexer lag in blocks,
  settlement cycles by state (books and chain), each product's model stability (PSI,
  the latest matured weekly Gini, alerts over `CREDITNET_RISK_*` thresholds), and the
  lender treasury's settlement token balance (one `eth_call` with a short timeout). A
  part that fails (chain down, table missing) is left out of that scrape and counted in
  `creditnet_metrics_scrape_errors`.

With several uvicorn workers each worker serves its own request histograms.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from functools import partial
from typing import Any, Final

import httpx
from fastapi import APIRouter, FastAPI, Request, Response
from prometheus_client import REGISTRY, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector
from sqlalchemy import Table, func, select
from sqlalchemy.engine import Connection

from node_api.http.services import Services, services_of
from node_api.kernel.chain import ContractName, CycleStatus
from node_api.kernel.outbox_table import OUTBOX_TABLE, OutboxStatus
from node_api.ledger.business_date import fetch_business_date
from node_api.onboarding.stability import fetch_all_stability
from node_api.risk.monitoring import StabilityThresholds
from oracles.tables import ChainCycle, IndexerCheckpoint, RelaySubmission, SubmissionStatus
from settlement.tables import cycle_table

log = logging.getLogger("creditnet.metrics")

CHAIN_TIMEOUT_S: Final = 1.0
"""How long a scrape waits for the chain (head, treasury balance)."""
LATENCY_BUCKETS_S: Final = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
UNMATCHED_ROUTE: Final = "unmatched"
"""The route label of a request no route matched (its raw path is never a label)."""

REQUEST_SECONDS: Final = Histogram(
    "creditnet_http_request_duration_seconds",
    "HTTP request latency by method, route template and status",
    ["method", "route", "status"],
    buckets=LATENCY_BUCKETS_S,
)
_children: dict[tuple[str, str, int], Any] = {}


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    """Record one request (the labelled child is looked up once per combination)."""
    key = (method, route, status)
    child = _children.get(key)
    if child is None:
        child = _children[key] = REQUEST_SECONDS.labels(method, route, str(status))
    child.observe(seconds)


_CHECKPOINTS: Final[Table] = IndexerCheckpoint.__table__  # type: ignore[attr-defined]
_SUBMISSIONS: Final[Table] = RelaySubmission.__table__  # type: ignore[attr-defined]
_CHAIN_CYCLES: Final[Table] = ChainCycle.__table__  # type: ignore[attr-defined]
_BALANCE_OF: Final = "0x70a08231"
"""ERC-20 `balanceOf(address)` selector."""


class NodeCollector(Collector):
    """The node's state, read at scrape time (module docstring)."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self._treasury: str | None = None

    def describe(self) -> list[Metric]:
        return []  # registering must not run the queries

    def collect(self) -> Iterator[Metric]:
        errors = GaugeMetricFamily(
            "creditnet_metrics_scrape_errors",
            "Parts of this scrape that could not be read (1 = left out)",
            labels=["part"],
        )
        head = self._chain_head()
        parts: tuple[tuple[str, Callable[[Connection], Iterator[Metric]]], ...] = (
            ("outbox", self._outbox),
            ("lag", partial(self._lag, head=head)),
            ("cycles", self._cycles),
            ("risk", self._risk),
        )
        for part, read in parts:
            try:
                with self.services.database.engine.connect() as conn:
                    read_metrics = list(read(conn))
            except Exception as error:
                log.warning("metrics part failed", extra={"part": part, "error": str(error)})
                errors.add_metric([part], 1)
            else:
                yield from read_metrics
        if head is not None:
            yield _gauge("creditnet_chain_head_block", "Latest block of the chain", head)
        try:
            treasury = list(self._treasury_balance())
        except Exception as error:
            log.warning("metrics part failed", extra={"part": "treasury", "error": str(error)})
            errors.add_metric(["treasury"], 1)
        else:
            yield from treasury
        yield errors

    def _risk(self, conn: Connection) -> Iterator[Metric]:
        """Stability of each product's active model (`onboarding/stability.py`)."""
        settings = self.services.settings
        thresholds = StabilityThresholds(
            settings.risk_psi_alert, settings.risk_gini_drop_alert, settings.risk_gini_min_bads
        )
        psi = GaugeMetricFamily(
            "creditnet_risk_psi",
            "Population stability index of live applications vs training, by product and "
            "characteristic (`score`: the score distribution)",
            labels=["product_code", "characteristic"],
        )
        gini = GaugeMetricFamily(
            "creditnet_risk_gini_weekly",
            "Gini of the latest week whose outcomes matured, by product",
            labels=["product_code"],
        )
        alerts = GaugeMetricFamily(
            "creditnet_risk_alerts",
            "Stability alerts raised now, by product and kind (psi, gini)",
            labels=["product_code", "kind"],
        )
        as_of = fetch_business_date(conn)
        products = []
        if as_of is not None:  # nothing was decided before the first business date
            context = self.services.onboarding.current()
            products = fetch_all_stability(
                conn, as_of=as_of, thresholds=thresholds, context=context
            )
        for product in products:
            code = product.product_code
            psi.add_metric([code, "score"], product.psi.total.psi)
            for name, result in sorted(product.psi.characteristics.items()):
                psi.add_metric([code, name], result.psi)
            matured = [week.gini for week in product.weeks if week.gini is not None]
            if matured:
                gini.add_metric([code], matured[-1])
            for kind in ("psi", "gini"):
                alerts.add_metric([code, kind], sum(a.kind == kind for a in product.alerts))
        yield psi
        yield gini
        yield alerts

    def _outbox(self, conn: Connection) -> Iterator[Metric]:
        table = OUTBOX_TABLE
        rows = conn.execute(
            select(table.c.kind, table.c.status, func.count(), func.min(table.c.created_at))
            .where(table.c.status != OutboxStatus.CONFIRMED.value)
            .group_by(table.c.kind, table.c.status)
        ).all()
        depth = GaugeMetricFamily(
            "creditnet_outbox_depth",
            "Outbox rows not yet confirmed on-chain, by kind and status",
            labels=["kind", "status"],
        )
        age = GaugeMetricFamily(
            "creditnet_outbox_oldest_age_seconds",
            "Age of the oldest outbox row not yet confirmed, by kind",
            labels=["kind"],
        )
        now = datetime.now(UTC).replace(tzinfo=None)
        oldest: dict[str, datetime] = {}
        for kind, status, count, created_at in rows:
            depth.add_metric([str(kind), str(status)], int(count))
            if isinstance(created_at, datetime):  # stored as naive UTC
                if created_at.tzinfo is not None:
                    created_at = created_at.astimezone(UTC).replace(tzinfo=None)
                oldest[kind] = min(oldest.get(kind, created_at), created_at)
        for kind, created_at in sorted(oldest.items()):
            age.add_metric([kind], max((now - created_at).total_seconds(), 0.0))
        yield depth
        yield age

    def _lag(self, conn: Connection, head: int | None) -> Iterator[Metric]:
        if head is None:
            return
        checkpoints = _CHECKPOINTS.c
        checkpoint = conn.execute(
            select(checkpoints.block_number).where(checkpoints.name == "main")
        ).scalar_one_or_none()
        indexed = int(checkpoint) if checkpoint is not None else 0
        yield _gauge(
            "creditnet_indexer_lag_blocks",
            "Blocks between the chain head and the last block the indexer stored",
            max(head - indexed, 0),
        )
        table = OUTBOX_TABLE
        waiting = conn.execute(
            select(func.count())
            .select_from(table)
            .where(table.c.status.in_([OutboxStatus.PENDING.value, OutboxStatus.SENT.value]))
        ).scalar_one()
        submissions = _SUBMISSIONS.c
        landed = conn.execute(
            select(func.max(submissions.block_number)).where(
                submissions.status.in_(
                    [SubmissionStatus.MINED.value, SubmissionStatus.CONFIRMED.value]
                )
            )
        ).scalar_one_or_none()
        lag = max(head - int(landed or 0), 0) if waiting else 0
        yield _gauge(
            "creditnet_relayer_lag_blocks",
            "While outbox rows wait: blocks since the relayer's last transaction landed "
            "(0 when nothing waits)",
            lag,
        )

    def _cycles(self, conn: Connection) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "creditnet_settlement_cycles",
            "Settlement cycles by state, as the books and as the chain see them",
            labels=["source", "state"],
        )
        books = conn.execute(
            select(cycle_table.c.status, func.count()).group_by(cycle_table.c.status)
        ).all()
        for status, count in books:
            family.add_metric(["books", str(status)], int(count))
        status_column = _CHAIN_CYCLES.c.status
        chain = conn.execute(select(status_column, func.count()).group_by(status_column)).all()
        known = {int(status): status.name.lower() for status in CycleStatus}
        for status, count in chain:
            family.add_metric(["chain", known.get(int(status), str(status))], int(count))
        yield family

    def _chain_head(self) -> int | None:
        chain = self.services.chain
        return None if chain is None else chain.fetch_latest_block(timeout_s=CHAIN_TIMEOUT_S)

    def _treasury_balance(self) -> Iterator[Metric]:
        chain = self.services.chain
        if chain is None:
            return
        token = chain.contract_addresses.get(ContractName.SETTLEMENT_TOKEN)
        if token is None:
            return
        treasury = self._treasury_address(chain.chain_id)
        if treasury is None:
            return
        data = _BALANCE_OF + treasury.lower().removeprefix("0x").rjust(64, "0")
        response = httpx.post(
            chain.rpc_url,
            json={
                "jsonrpc": "2.0",
                "id": 1,
                "method": "eth_call",
                "params": [{"to": token, "data": data}, "latest"],
            },
            timeout=CHAIN_TIMEOUT_S,
        )
        balance = int(response.json()["result"], 16)
        family = GaugeMetricFamily(
            "creditnet_treasury_balance_fen",
            "Settlement tokens (fen) held by the lender treasury",
            labels=["address"],
        )
        family.add_metric([treasury], balance)
        yield family

    def _treasury_address(self, chain_id: int) -> str | None:
        """The treasury's address, found once (a keystore outside dev is decrypted once)."""
        if self._treasury is None:
            from node_api.runtime.settlement_wiring import load_lender_treasury

            account = load_lender_treasury(self.services.settings, chain_id)
            self._treasury = "" if account is None else str(account.address)
        return self._treasury or None


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


router = APIRouter()


@router.get("/metrics", include_in_schema=False)
def get_metrics(request: Request) -> Response:
    """Prometheus text format: this process's figures, then the node's (module doc)."""
    registry: CollectorRegistry = request.app.state.metrics_registry
    body = generate_latest(REGISTRY) + generate_latest(registry)
    return Response(content=body, media_type=CONTENT_TYPE_LATEST)


def install_metrics(app: FastAPI) -> None:
    """Mount `/metrics` on `app` with a collector of its node's state."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(NodeCollector(services_of(app)))
    app.state.metrics_registry = registry
    app.include_router(router)
