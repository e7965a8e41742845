"""PostgreSQL under real concurrency: 32 clients spending one customer's last 1,000 fen
get exactly 1,000 fen authorized, through threads, async tasks, two group committers
and HTTP; and transactions touching many lines in any order never deadlock."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import orjson
import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from node_api.auth.keys import Role, create_api_key
from node_api.http.app import create_app
from node_api.http.renderers import render_use
from node_api.idempotency import StoredResponse
from node_api.kernel.config import Settings
from node_api.kernel.db import Database
from node_api.kernel.errors import ConflictError
from node_api.ledger.business_date import set_business_date
from node_api.lending.core.batch import run_use_batch
from node_api.lending.core.batcher import GroupCommitter
from node_api.lending.core.context import LendingCaches
from node_api.lending.core.decide import UseRequest
from node_api.lending.eod.context import _lock_lines
from node_api.lending.limits import ProductGroup, compute_effective_limit_fen, product_path
from node_api.lending.line_limits import set_node_limit
from node_api.lending.lines import fetch_line, lock_line
from node_api.lending.purchases import refund_purchase
from node_api.lending.repayments import repay
from tests.db_fixtures import _truncate_all
from tests.integration.lending.helpers import OPENED_ON, check_books, open_line
from tests.integration.lending.test_purchases_db import purchase, use_request

CLIENTS = 32
LAST_FEN = 1_000
PEPPER = Settings().api_key_pepper.get_secret_value().encode()


@pytest.fixture
def pg(pg_database_url: str) -> Iterator[Database]:
    database = Database(pg_database_url, pool_size=20)
    _truncate_all(database.engine)
    yield database
    database.dispose()


@pytest.fixture
def caches() -> LendingCaches:
    return LendingCaches()


@pytest.fixture
def almost_spent(pg: Database, caches: LendingCaches) -> int:
    """A line with 100,000 fen of limit of which all but 1,000 is used."""
    with pg.engine.begin() as conn:
        set_business_date(conn, OPENED_ON)
        line_id = open_line(conn, caches)
    assert purchase(pg, caches, line_id, 80_000 - LAST_FEN, channel_id="pos").status_code == 201
    return line_id


def _authorized_fen(results: list[StoredResponse]) -> int:
    assert {r.status_code for r in results} <= {201, 409}
    declined = [r for r in results if r.status_code == 409]
    assert all(r.body["code"] == "over_limit" for r in declined)
    return sum(r.body["amount_fen"] for r in results if r.status_code == 201)


def test_threads_each_in_its_own_transaction_spend_exactly_the_last_1000_fen(
    pg: Database, caches: LendingCaches, almost_spent: int
) -> None:
    def spend(amount_fen: int) -> StoredResponse:
        return purchase(pg, caches, almost_spent, amount_fen, channel_id="pos")

    with ThreadPoolExecutor(CLIENTS) as pool:
        results = list(pool.map(spend, [100] * CLIENTS))
    assert _authorized_fen(results) == LAST_FEN
    with pg.engine.connect() as conn:
        check_books(conn, [almost_spent])


def test_async_tasks_and_two_group_committers_never_overspend(
    pg: Database, caches: LendingCaches, almost_spent: int
) -> None:
    async def main() -> list[StoredResponse]:
        def run(conn: object, items: list[UseRequest]) -> list[StoredResponse]:
            return run_use_batch(conn, caches, items, render_use)  # type: ignore[arg-type]

        workers = [
            GroupCommitter(pg.async_engine, run, max_items=8, max_wait_s=0.001) for _ in range(2)
        ]
        requests = [use_request(almost_spent, 100, channel_id="pos") for _ in range(CLIENTS)]
        tasks = [workers[i % 2].submit(request) for i, request in enumerate(requests)]
        solo = [
            asyncio.create_task(_own_transaction(pg, caches, use_request(almost_spent, 100)))
            for _ in range(4)
        ]
        results = await asyncio.gather(*tasks, *solo)
        await pg.dispose_async()
        return list(results)

    results = asyncio.run(main())
    assert _authorized_fen(results) == LAST_FEN
    with pg.engine.connect() as conn:
        check_books(conn, [almost_spent])


async def _own_transaction(
    database: Database, caches: LendingCaches, request: UseRequest
) -> StoredResponse:
    async with database.async_engine.begin() as conn:
        results = await conn.run_sync(run_use_batch, caches, [request], render_use)
    return results[0]


def test_http_clients_of_two_workers_spend_exactly_the_last_1000_fen(
    pg: Database, caches: LendingCaches, almost_spent: int, tmp_path: Path
) -> None:
    with pg.session() as session:
        token = create_api_key(session, Role.LENDER_APP, pepper=PEPPER)
    workers = [create_app(Settings(data_dir=tmp_path), database=Database(pg.url)) for _ in range(2)]

    async def main() -> list[httpx.Response]:
        clients = [
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://node")
            for app in workers
        ]
        headers = {"Authorization": f"Bearer {token}"}
        body = {"merchant_id": "m", "channel_id": "pos", "amount_fen": 100, "currency": "CNY"}
        calls = [
            clients[i % 2].post(
                f"/v1/credit-lines/{almost_spent}/purchases",
                json=body,
                headers={**headers, "Idempotency-Key": f"http-{i}"},
            )
            for i in range(CLIENTS)
        ]
        responses = await asyncio.gather(*calls)
        for client in clients:
            await client.aclose()
        for app in workers:
            await app.services.database.dispose_async()
        return list(responses)

    responses = asyncio.run(main())
    results = [StoredResponse(r.status_code, r.json()) for r in responses]
    assert _authorized_fen(results) == LAST_FEN
    with pg.engine.connect() as conn:
        check_books(conn, [almost_spent])


def test_batches_over_many_lines_in_any_order_with_refunds_and_repayments_never_deadlock(
    pg: Database, caches: LendingCaches
) -> None:
    with pg.engine.begin() as conn:
        set_business_date(conn, OPENED_ON)
        lines = [open_line(conn, caches, customer_ref=f"c{i}") for i in range(6)]
    first_uses = {
        line: purchase(pg, caches, line, 5_000, channel_id="pos").body["id"] for line in lines
    }

    def worker(seed: int) -> int:
        rng = random.Random(seed)
        done = 0
        for _ in range(15):
            order = rng.sample(lines, len(lines))
            with pg.engine.begin() as conn:
                choice = rng.random()
                if choice < 0.6:
                    requests = [
                        use_request(line, rng.randint(1, 500), channel_id="pos") for line in order
                    ]
                    run_use_batch(conn, caches, requests, render_use)
                elif choice < 0.8:
                    repay(
                        conn,
                        caches,
                        line_id=order[0],
                        amount_fen=rng.randint(1, 300),
                        currency="CNY",
                        as_of=None,
                    )
                else:
                    try:
                        refund_purchase(
                            conn,
                            caches,
                            line_id=order[0],
                            purchase_id=first_uses[order[0]],
                            amount_fen=1,
                            as_of=None,
                        )
                    except Exception as error:  # refund of a fully refunded purchase: declined
                        assert getattr(error, "code", "") == "refund_exceeds_purchase"
            done += 1
        return done

    with ThreadPoolExecutor(8) as pool:
        assert sum(pool.map(worker, range(8))) == 8 * 15
    with pg.engine.connect() as conn:
        check_books(conn, lines)


def test_limit_changes_and_batches_on_the_same_lines_never_deadlock_or_overspend(
    pg: Database, caches: LendingCaches
) -> None:
    """Lines are locked by their rows only (node_api.ledger.sql): limit changes, lowered
    to just above the usage they see, and batches over the same lines in any order
    finish without a deadlock, and no node ends above its limit."""
    with pg.engine.begin() as conn:
        set_business_date(conn, OPENED_ON)
        lines = [open_line(conn, caches, customer_ref=f"c{i}") for i in range(2)]
    product = product_path(ProductGroup.PURCHASE, "REV1")

    def worker(seed: int) -> int:
        rng = random.Random(seed)
        done = 0
        for _ in range(30):
            order = rng.sample(lines, len(lines))
            with pg.engine.begin() as conn:
                choice = rng.random()
                if choice < 0.6:
                    requests = [
                        use_request(line, rng.randint(100, 3_000), channel_id="pos")
                        for line in order
                    ]
                    results = run_use_batch(conn, caches, requests, render_use)
                    assert {r.status_code for r in results} <= {201, 409}
                else:  # just above the usage seen, or back up
                    node = fetch_line(conn, order[0]).node_at(product)
                    assert node is not None
                    limit_fen = min(
                        rng.choice([node.used_fen + rng.randint(0, 300), 80_000]), 80_000
                    )
                    try:
                        set_node_limit(conn, order[0], product, limit_fen, caches.products)
                    except ConflictError as error:  # below what is in use: refused
                        assert error.code == "limit_below_usage"
            done += 1
        return done

    with ThreadPoolExecutor(8) as pool:
        assert sum(pool.map(worker, range(8))) == 8 * 30
    with pg.engine.connect() as conn:
        check_books(conn, lines)
        for line_id in lines:
            for node in fetch_line(conn, line_id).nodes:
                assert node.used_fen <= compute_effective_limit_fen(node, OPENED_ON), node.path


def test_a_locked_line_holds_its_row_and_leaves_its_nodes_to_its_lock(
    pg: Database, caches: LendingCaches
) -> None:
    """`lock_line`, end of day's lock and the hot path's open function lock the line row
    and no node: a node waits for nobody once its line is held."""
    with pg.engine.begin() as conn:
        set_business_date(conn, OPENED_ON)
        line_id = open_line(conn, caches)
    line_row = text("SELECT 1 FROM credit_line WHERE id = :id FOR NO KEY UPDATE NOWAIT")
    node_rows = text("SELECT 1 FROM limit_node WHERE credit_line_id = :id FOR NO KEY UPDATE NOWAIT")
    claim = orjson.dumps({"claims": [["locks", "k-1", "h", line_id]]}).decode()
    lockers = {
        "lock_line": lambda conn: lock_line(conn, line_id),
        "end of day": lambda conn: _lock_lines(conn, [line_id]),
        "hot path": lambda conn: conn.execute(
            text("SELECT creditnet_use_batch_open(:doc)"), {"doc": claim}
        ),
    }
    for name, lock in lockers.items():
        with pg.engine.connect() as holder, pg.engine.connect() as other:
            holder.begin()
            lock(holder)
            with pytest.raises(OperationalError, match="could not obtain lock"), other.begin():
                other.execute(line_row, {"id": line_id})
            with other.begin():
                assert len(other.execute(node_rows, {"id": line_id}).all()) == 3, name
            holder.rollback()


def test_a_limit_change_waits_for_the_batch_holding_its_line_and_sees_its_usage(
    pg: Database, caches: LendingCaches
) -> None:
    """The line's lock, not a node's, is what a limit change waits for: lowering the limit
    to the usage before a purchase still in flight must be refused once that purchase
    commits (a change that read the tree without the line's lock would set the limit
    below the usage: its update waits only for the node row, then overwrites)."""
    with pg.engine.begin() as conn:
        set_business_date(conn, OPENED_ON)
        line_id = open_line(conn, caches)
    assert purchase(pg, caches, line_id, 1_000).status_code == 201
    product = product_path(ProductGroup.PURCHASE, "REV1")
    outcome: list[object] = []

    def lower_to_usage_seen_before() -> None:
        with pg.engine.begin() as conn:
            try:
                set_node_limit(conn, line_id, product, 1_000, caches.products)
                outcome.append("lowered")
            except ConflictError as error:
                outcome.append(error.code)

    with pg.engine.connect() as holder:
        holder.begin()
        [result] = run_use_batch(holder, caches, [use_request(line_id, 500)], render_use)
        assert result.status_code == 201
        with ThreadPoolExecutor(1) as pool:
            change = pool.submit(lower_to_usage_seen_before)
            time.sleep(0.5)  # the change is now waiting for the line
            assert not change.done()
            holder.commit()
            change.result(timeout=30)
    assert outcome == ["limit_below_usage"]
    with pg.engine.connect() as conn:
        check_books(conn, [line_id])
