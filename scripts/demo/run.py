"""`creditnet demo`: a month of consumer lending and its settlement, end to end.

On the embedded default (anvil + SQLite, started here in a fresh folder) the demo runs
the lending side through the HTTP API (`scripts.demo.day`; its late payers are collected,
cure, or are compensated by the guarantor: `scripts.demo.late_payers`), then settles: the cycle
of the settlement day is closed (entries frozen, netted, one Merkle tree, the signer
quorum recomputing it from the books), proposed and finalized on-chain by the relayer,
funded by the net debtors (the bank pays with deposit tokens, the lender from its
treasury), claimed by the net creditors (the lender's claim goes through the outbox),
and finally every partner other than the lender downloads its entries with proofs from
the partner API and verifies them against the chain alone. Progress bars show each
phase; tables summarise the month and the settlement. Exit code 0 when every partner's
verification passes and every creditor received exactly its position.
"""

from __future__ import annotations

import random
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import func, select

from node_api.kernel.chain import CycleStatus, EntryKind
from node_api.kernel.errors import ConfigurationError
from node_api.runtime.boot import ANVIL_CHAIN_ID
from node_api.runtime.settlement_wiring import (
    DEV_TREASURY_FLOAT_FEN,
    LENDER_TREASURY_DEV_INDEX,
    build_settlement_signers,
)
from oracles.tx_sender import JsonRpcClient
from scripts.demo.day import (
    BANK_REF,
    FIRST_DAY,
    PAY_DAY,
    PRODUCT_CODE,
    SETTLEMENT_DAY,
    DayStats,
    convert_and_refund,
    end_days,
    pay_bills,
    plan_purchases,
    run_applications,
    run_purchases,
    settlement_day,
    setup_books,
)
from scripts.demo.node import DemoNode, start_demo_node
from settlement.cycle_close import close_settlement_cycle
from settlement.funding import settle_lender_positions
from settlement.netting import ClosedCycle
from settlement.salts import LeafSalts
from settlement.tables import entry_table
from settlement.verifier import download_entries, verify_partner_cycle

SEED = 2025


@dataclass(frozen=True)
class DemoPartner:
    """A partner of the demo and the dev account that holds its payout key."""

    ref: str
    role: str
    display_name: str
    account_index: int


PARTNERS = (
    DemoPartner("lender", "lender", "CreditNet Consumer Finance", LENDER_TREASURY_DEV_INDEX),
    DemoPartner(BANK_REF, "funder", "Bank of Hangzhou (demo)", 6),
    DemoPartner("app", "channel", "Shopping App (demo)", 7),
    DemoPartner("pos", "channel", "Store POS Network (demo)", 8),
    DemoPartner("guard-ins", "guarantor", "Credit Guarantee Co. (demo)", 9),
)


@dataclass
class PartnerResult:
    """One partner's part of the cycle, as the summary shows it (amounts fen)."""

    partner: DemoPartner
    partner_id: int
    net_position_fen: int
    balance_fen: int = 0
    verified: str = "-"


def format_cny(amount_fen: int) -> str:
    """Fen as CNY with two decimals, exactly (no float)."""
    sign = "-" if amount_fen < 0 else ""
    yuan, fen = divmod(abs(amount_fen), 100)
    return f"{sign}{yuan:,}.{fen:02d}"


class _Bars:
    """Progress bars, one per phase."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress

    def bar(self, phase: str, total: int | None) -> Callable[[str], None]:
        task = self.progress.add_task("", total=total, phase=phase)
        return lambda text: self.progress.update(task, advance=1, description=text)


def register_partners(node: DemoNode) -> dict[str, int]:
    """Register every partner over HTTP (on-chain registration queued) and a guarantee."""
    ids = {}
    for partner in PARTNERS:
        body = {
            "ref": partner.ref,
            "role": partner.role,
            "payout_address": node.accounts.account(partner.account_index).address,
            "display_name": partner.display_name,
        }
        ids[partner.ref] = int(node.client.post("/v1/partners", body, role="admin")["partner_id"])
    guarantee = {"product_code": PRODUCT_CODE, "guarantor_ref": "guard-ins", "share_ppm": 600_000}
    node.client.post("/v1/partners/guarantees", guarantee, role="admin")
    return ids


def run_lending(node: DemoNode, bars: _Bars, customers: int) -> DayStats:
    """The lending month (see `scripts.demo.day`), one progress bar per phase."""
    rng = random.Random(SEED)
    stats = DayStats()
    setup_books(node, stats)
    run_applications(node, stats, customers, bars.bar("Applications", customers))
    plan = plan_purchases(stats, rng)
    run_purchases(node, stats, rng, plan, bars.bar("Purchases, day 1", sum(plan.values())))
    convert_and_refund(node, stats)
    end_days(node, stats, PAY_DAY, bars.bar("End of day 1-19", (PAY_DAY - FIRST_DAY).days))
    paying = len(stats.line_ids) - len(stats.late.line_ids())
    pay_bills(node, stats, bars.bar("Bills paid, day 20", paying))
    days = (SETTLEMENT_DAY - PAY_DAY).days
    end_days(node, stats, SETTLEMENT_DAY, bars.bar("End of day 20-29", days))
    settlement_day(node, stats, rng, bars.bar("Settlement day", paying + 1))
    end_days(node, stats, SETTLEMENT_DAY + timedelta(days=1), bars.bar("End of day 30", 1))
    return stats


def _position(cycle: ClosedCycle, partner_id: int) -> int:
    if partner_id not in cycle.partner_ids:
        return 0
    return cycle.net_positions_fen[cycle.partner_ids.index(partner_id)]


def _fund_debtors(node: DemoNode, cycle: ClosedCycle, ids: dict[str, int]) -> None:
    """Each net debtor gets deposit tokens minted and pays its position."""
    for partner in PARTNERS:
        due_fen = -_position(cycle, ids[partner.ref])
        if due_fen <= 0:
            continue
        wallet = node.wallet(partner.account_index)
        node.minter().mint(wallet.address, due_fen)
        if partner.role == "lender":
            settle_lender_positions(node.database, wallet)  # queued; the sync sends it
            node.sync_chain()
        else:
            wallet.fund(cycle.cycle_id, ids[partner.ref])


def _claim_creditors(node: DemoNode, cycle: ClosedCycle, ids: dict[str, int]) -> None:
    """Partners claim for themselves; the lender's claim goes through the outbox."""
    node.indexer.run_until_caught_up(60)
    treasury = node.wallet(LENDER_TREASURY_DEV_INDEX)
    settle_lender_positions(node.database, treasury)
    for partner in PARTNERS:
        if partner.role != "lender" and _position(cycle, ids[partner.ref]) > 0:
            node.wallet(partner.account_index).claim(cycle.cycle_id, ids[partner.ref])
    node.sync_chain()


def run_settlement(node: DemoNode, bars: _Bars, ids: dict[str, int]) -> ClosedCycle:
    """Close, propose, finalize, fund and claim the settlement day's cycle."""
    step = bars.bar("Settlement cycle", 4)
    signers = build_settlement_signers(
        node.settings, node.database, node.target.domain, node.chain.signers
    )
    salts = LeafSalts.from_settings(node.settings)
    cycle = close_settlement_cycle(node.database, SETTLEMENT_DAY, signers, salts=salts)
    step(f"closed: {cycle.entry_count} entries, {len(cycle.signatures)} signatures")
    node.sync_chain()
    node.pass_dispute_window()
    node.sync_chain()
    status = node.minter().get_cycle(cycle.cycle_id).status
    if status is not CycleStatus.FINALIZED:
        raise ConfigurationError(f"the cycle is {status.name.lower()} on-chain, not finalized")
    step("proposed and finalized on-chain")
    _fund_debtors(node, cycle, ids)
    step("net debtors funded")
    _claim_creditors(node, cycle, ids)
    step("net creditors claimed")
    return cycle


def verify_partners(
    node: DemoNode, bars: _Bars, cycle: ClosedCycle, ids: dict[str, int]
) -> list[PartnerResult]:
    """Every partner but the lender downloads its entries over HTTP and checks the chain."""
    listed = [p for p in PARTNERS if p.role != "lender" and ids[p.ref] in cycle.partner_ids]
    tick = bars.bar("Partner verification", len(listed))
    results = []
    client = JsonRpcClient(node.chain.rpc_url)
    for partner in PARTNERS:
        partner_id = ids[partner.ref]
        result = PartnerResult(partner, partner_id, _position(cycle, partner_id))
        wallet = node.wallet(partner.account_index)
        result.balance_fen = wallet.fetch_balance_fen()
        if partner.role == "lender":  # the dev treasury's float, minted at boot, aside
            result.balance_fen -= DEV_TREASURY_FLOAT_FEN
        if partner in listed:
            key = node.add_partner_key(partner.ref, partner_id)
            source = download_entries(node.server.url, key, cycle.cycle_id)
            outcome = verify_partner_cycle(
                client,
                node.target.clearing_house,
                partner_id=partner_id,
                cycle_id=cycle.cycle_id,
                source=source,
            )
            result.verified = f"OK ({len(source.entries)} proofs)" if outcome.ok else "FAILED"
            tick(f"{partner.ref}: {result.verified}")
        results.append(result)
    client.close()
    return results


def render_month(console: Console, stats: DayStats) -> None:
    table = Table(title="The month on the books (through the HTTP API)")
    table.add_column("what")
    table.add_column("count", justify="right")
    table.add_column("CNY", justify="right")
    decisions = ", ".join(f"{count} {name}" for name, count in sorted(stats.decisions.items()))
    table.add_row("applications", str(sum(stats.decisions.values())), decisions)
    table.add_row("credit lines opened", str(len(stats.line_ids)), "")
    for channel, count in sorted(stats.purchases_by_channel.items()):
        table.add_row(
            f"purchases via {channel}",
            str(count),
            format_cny(stats.purchase_fen_by_channel[channel]),
        )
    table.add_row("purchases declined (limit)", str(stats.purchases_declined), "")
    table.add_row("installment plans (6 months)", str(stats.installment_plans), "")
    table.add_row("refunds", "1", format_cny(stats.refunds_fen))
    table.add_row("repayments", str(stats.repayments), format_cny(stats.repaid_fen))
    late = stats.late
    days = f"{late.days_past_due} days past due"
    if late.collected is not None:
        table.add_row(
            f"late payer collected (line {late.collected}, {days}: {late.reminders_sent} SMS, "
            f"promise {late.promise_status})",
            "1",
            format_cny(late.collected_fen),
        )
    if late.cures is not None:
        table.add_row(f"late payer cured (line {late.cures}, paid in full)", "1",
                      format_cny(late.cured_fen))  # fmt: skip
    if late.compensated is not None:
        table.add_row(
            f"late payer compensated by the guarantor (line {late.compensated})",
            "1",
            format_cny(late.compensated_fen),
        )
    table.add_row("end-of-day runs", str(stats.end_of_days), "")
    console.print(table)


def fetch_kind_counts(node: DemoNode, cycle_id: int) -> dict[str, int]:
    """Entries of the cycle by kind (how the month's money moved between parties)."""
    with node.database.engine.connect() as conn:
        rows = conn.execute(
            select(entry_table.c.kind, func.count())
            .where(entry_table.c.cycle_id == cycle_id)
            .group_by(entry_table.c.kind)
        )
        return {EntryKind(int(kind)).name.lower(): int(count) for kind, count in rows}


def render_settlement(
    console: Console, cycle: ClosedCycle, results: list[PartnerResult], kinds: dict[str, int]
) -> None:
    console.print(
        f"Cycle [bold]{cycle.cycle_id}[/]: {cycle.entry_count} entries from "
        f"{cycle.event_count} ledger events, root 0x{(cycle.entries_root or b'').hex()}, "
        f"{len(cycle.signatures)} oracle signatures; total due {format_cny(cycle.total_due_fen)}"
    )
    console.print("entries by kind: " + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())))
    table = Table(title="Settlement on-chain (positions: + receives, - pays)")
    for column in ("id", "partner", "role", "net position CNY", "token balance CNY", "verified"):
        table.add_column(column, justify="right" if "CNY" in column else "left")
    for result in results:
        table.add_row(
            str(result.partner_id),
            result.partner.display_name,
            result.partner.role,
            format_cny(result.net_position_fen) if result.net_position_fen else "no movements",
            format_cny(result.balance_fen),
            result.verified,
        )
    console.print(table)


def _all_settled(results: list[PartnerResult]) -> bool:
    """Creditors hold exactly their position; debtors spent exactly what they were given;
    every listed partner (but the lender) verified."""
    for result in results:
        if result.balance_fen != max(result.net_position_fen, 0):
            return False
        if (
            result.partner.role != "lender"
            and result.net_position_fen
            and not (result.verified.startswith("OK"))
        ):
            return False
    return True


def run_demo(
    *,
    data_dir: Path | None = None,
    customers: int = 12,
    port: int | None = None,
    anvil_port: int | None = None,
) -> int:
    """Run the whole demo; 0 when everything settled and verified (module doc). The data
    folder (a new temporary one unless given) is left as a node's: the next commands
    printed at the end serve and audit it."""
    console = Console()
    folder = data_dir or Path(tempfile.mkdtemp(prefix="creditnet-demo-"))
    if data_dir is not None and data_dir.exists() and any(data_dir.iterdir()):
        raise ConfigurationError(
            f"{data_dir} is not empty; the demo starts a fresh node (give a new folder, "
            f"or serve this one with creditnet up --data-dir {data_dir})"
        )
    console.rule("[bold]CreditNet demo: a month of lending, one settlement cycle")
    with console.status("Starting the node: database, anvil, contracts, API ..."):
        node = start_demo_node(folder, port=port, anvil_port=anvil_port)
    try:
        console.print(f"node API {node.server.url}, chain {node.chain.rpc_url}, data {folder}")
        ids = register_partners(node)
        with _progress_bars(console) as progress:
            bars = _Bars(progress)
            stats = run_lending(node, bars, customers)
            cycle = run_settlement(node, bars, ids)
            results = verify_partners(node, bars, cycle, ids)
        render_month(console, stats)
        render_settlement(console, cycle, results, fetch_kind_counts(node, cycle.cycle_id))
        ok = _all_settled(results)
        console.print("[bold green]Settled and verified." if ok else "[bold red]Mismatch.")
    finally:
        node.stop()
    render_next_commands(console, folder, port=port, anvil_port=anvil_port)
    return 0 if ok else 1


def next_commands(
    folder: Path, *, port: int | None = None, anvil_port: int | None = None
) -> list[str]:
    """The commands that serve and audit the demo's node (shell syntax, in order)."""
    up = f"creditnet up --data-dir {folder}"
    if port is not None:
        up += f" --port {port}"
    if anvil_port is not None:
        up += f" --anvil-port {anvil_port}"
    api = f"http://127.0.0.1:{port or 8000}"
    rpc = f"http://127.0.0.1:{anvil_port or 8545}"
    manifest = folder / "deployments" / f"{ANVIL_CHAIN_ID}.json"
    return [
        up,
        f"export CREDITNET_AUDITOR_KEY=$(creditnet keys create --role auditor --data-dir "
        f"{folder} | tail -n 1)",
        f"creditnet audit --rpc {rpc} --manifest {manifest} --api {api} "
        f"--out {folder / 'audit-report'}",
    ]


def render_next_commands(
    console: Console, folder: Path, *, port: int | None, anvil_port: int | None
) -> None:
    """Hand the node over: how to serve it again and audit it."""
    console.print(
        f"\nThe demo's node is in [bold]{folder}[/]. Serve it again, then (in another shell) "
        "audit it:"
    )
    for command in next_commands(folder, port=port, anvil_port=anvil_port):
        console.print(f"  {command}", markup=False, highlight=False, soft_wrap=True)


def _progress_bars(console: Console) -> Progress:
    return Progress(
        TextColumn("[bold]{task.fields[phase]:<22}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
    )
