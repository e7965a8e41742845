"""The daily settlement inside `creditnet up`: close every finished business date, then
settle the lender's side of the cycles the chain has finalized.

A business date is finished when the business date has moved past it and no end-of-day
run of it (or before it) is unfinished, so the end of day's own events (charge-offs)
are in the date's cycle. Each pass closes the finished dates in order from the day
after the latest closed cycle (the first pass starts at the earliest ledger event),
completes any cycle frozen earlier but not yet signed, and then lets
`settle_lender_positions` queue the lender's claims and the treasury's fundings of its
debts in the outbox (the treasury's relayer sends them). It also keeps every partner's
money moving when a cycle fails: a cycle the chain rejected (upheld dispute) or that was
declared defaulted is voided in the books and its date settled again under the next
attempt's id (`settlement.resettle`), and `watch_defaults` declares an unfunded cycle
defaulted at its funding deadline and triggers the funders' refunds. Everything it does is
idempotent, so a pass after a crash simply carries on. Passes run every
`CREDITNET_SETTLEMENT_INTERVAL_S` seconds (30 by default).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import func, select

from node_api.kernel.config import Settings
from node_api.kernel.db import Database
from node_api.kernel.errors import ChainError, CreditNetError
from node_api.ledger.business_date import fetch_business_date
from node_api.ledger.schema import settlement_event_table
from node_api.lending.eod.checkpoint import fetch_unfinished_run
from node_api.runtime.settlement_wiring import (
    ChainTarget,
    build_settlement_signers,
    build_treasury_wallet,
)
from oracles.abi_codec import DeployedContracts, describe_error
from oracles.signers import SignerSet
from settlement.cycle_close import (
    close_settlement_cycle,
    fetch_cycle,
    propose_cycle,
)
from settlement.funding import SettlementWallet, settle_lender_positions, watch_defaults
from settlement.line_state import commit_line_states
from settlement.netting import CycleState
from settlement.resettle import fetch_dates_to_resettle, void_cycles_void_on_chain
from settlement.salts import LeafSalts
from settlement.tables import cycle_table

if TYPE_CHECKING:
    from node_api.runtime.boot import ChainRuntime

logger = logging.getLogger(__name__)

DATES_PER_PASS_MAX = 62


@dataclass
class SettlementPass:
    """What one pass did."""

    closed: list[int] = field(default_factory=list)
    proposed: list[int] = field(default_factory=list)
    voided: list[int] = field(default_factory=list)
    line_states_queued: list[int] = field(default_factory=list)
    defaults_queued: list[int] = field(default_factory=list)
    refunds_queued: list[tuple[int, int]] = field(default_factory=list)
    lender_claims_queued: list[int] = field(default_factory=list)
    lender_fundings_queued: list[int] = field(default_factory=list)


def fetch_dates_to_close(database: Database) -> list[date]:
    """Finished business dates without a cycle, oldest first (module doc)."""
    with database.engine.connect() as conn:
        business_date = fetch_business_date(conn)
        if business_date is None:
            return []
        last_finished = business_date - timedelta(days=1)
        unfinished = fetch_unfinished_run(conn)
        if unfinished is not None:
            last_finished = min(last_finished, unfinished - timedelta(days=1))
        latest = conn.execute(select(func.max(cycle_table.c.cycle_date))).scalar_one_or_none()
        if latest is not None:
            first = latest + timedelta(days=1)
        else:
            earliest = conn.execute(
                select(func.min(settlement_event_table.c.as_of))
            ).scalar_one_or_none()
            if earliest is None:
                return []
            first = earliest
    dates: list[date] = []
    day = first
    while day <= last_finished and len(dates) < DATES_PER_PASS_MAX:
        dates.append(day)
        day += timedelta(days=1)
    return dates


def _unsigned_cycles(database: Database) -> list[int]:
    with database.engine.connect() as conn:
        ids = conn.execute(
            select(cycle_table.c.cycle_id)
            .where(cycle_table.c.status == CycleState.CLOSED.value)
            .order_by(cycle_table.c.cycle_id)
        ).scalars()
        return [int(cycle_id) for cycle_id in ids]


def run_settlement_pass(
    database: Database,
    signers: SignerSet,
    treasury: SettlementWallet | None,
    watcher: SettlementWallet | None = None,
    *,
    salts: LeafSalts,
) -> SettlementPass:
    """Void cycles the chain voided, close finished and void dates, propose unsigned
    cycles, settle the lender's positions, and watch for defaults (with `watcher`)."""
    done = SettlementPass()
    done.voided = void_cycles_void_on_chain(database)
    for cycle_date in [*fetch_dates_to_resettle(database), *fetch_dates_to_close(database)]:
        cycle = close_settlement_cycle(database, cycle_date, signers, salts=salts)
        done.closed.append(cycle.cycle_id)
        if cycle.state is CycleState.PROPOSED:
            done.proposed.append(cycle.cycle_id)
    for cycle_id in _unsigned_cycles(database):
        with database.engine.connect() as conn:
            frozen = fetch_cycle(conn, cycle_id)
        if frozen is not None:
            propose_cycle(database, frozen, signers)
            done.proposed.append(cycle_id)
    done.line_states_queued = commit_line_states(database, signers).queued
    actions = settle_lender_positions(database, treasury)
    done.lender_claims_queued = actions.claims_queued
    done.lender_fundings_queued = actions.fundings_queued
    if watcher is not None:
        defaults = watch_defaults(database, watcher)
        done.defaults_queued = defaults.defaults_queued
        done.refunds_queued = defaults.refunds_queued
    return done


def describe_failure(error: CreditNetError, contracts: DeployedContracts | None) -> str:
    """The error's message, with a chain revert decoded to the contract's custom error."""
    data = error.extra.get("revert_data") if isinstance(error, ChainError) else None
    if isinstance(data, str) and data.startswith("0x"):
        try:
            data = bytes.fromhex(data[2:])
        except ValueError:
            data = None
    if not isinstance(data, bytes) or contracts is None:
        return error.detail
    return f"{error.detail}: {describe_error(contracts.decode_error(data), data)}"


def run_settlement_scheduler(
    stop_event: threading.Event,
    settings: Settings,
    database: Database,
    chain: ChainRuntime,
    *,
    interval_s: float | None = None,
) -> None:
    """Run settlement passes until `stop_event` is set (for a thread of `creditnet up`).

    A failing pass (a partner not registered, an unbalanced cycle, the chain away) is
    logged, a chain revert decoded to its custom error, and retried next time; it never
    stops the node.
    """
    interval_s = settings.settlement_interval_s if interval_s is None else interval_s
    target = ChainTarget(chain.rpc_url, chain.chain_id, chain.manifest)
    signers = build_settlement_signers(settings, database, target.domain, chain.signers)
    treasury = build_treasury_wallet(settings, target, chain.w3)
    watcher = SettlementWallet(chain.w3, chain.relayer, target.clearing_house)
    salts = LeafSalts.from_settings(settings)
    contracts = DeployedContracts.from_manifest(chain.manifest, chain.compiled)
    while not stop_event.is_set():
        try:
            done = run_settlement_pass(database, signers, treasury, watcher, salts=salts)
            activity = {key: value for key, value in asdict(done).items() if value}
            if activity:
                logger.info("settlement pass", extra=activity)
        except CreditNetError as error:
            details = {"error": describe_failure(error, contracts)}
            if "refusals" in error.extra:  # which signer refused which report, and why
                details["refusals"] = error.extra["refusals"]
            logger.warning("settlement pass failed", extra=details)
        except Exception:  # logged with its traceback; the node must keep running
            logger.exception("settlement pass crashed")
        stop_event.wait(interval_s)
