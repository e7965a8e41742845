"""Collections end to end on anvil, from delinquency through compensation to a settlement
cycle the guarantor and the funders verify.

A guaranteed line (30 % lender, 50 % bank-a, 20 % bank-b) is bought on and never paid;
real end of day ages it; at the compensation day the collections loop has the guarantor
pay what is past due (posted as a repayment, its subrogated claim recorded) and freezes
the agreement; the borrower later pays an agent, and that money goes to the guarantor
first. The date's cycle is closed and signed by the quorum from the books, proposed and
finalized on-chain by the relayer; the agreement's freeze lands on the CreditRegistry with
the compensation's reason code; and the guarantor and both funders download their entries
from the partner API and prove them with `creditnet verify` against the chain.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import select
from web3 import Web3

from node_api.collections.agreements import REASON_GUARANTOR_COMPENSATED
from node_api.collections.compensation import Coverage, fetch_compensations
from node_api.collections.recoveries import record_recovery
from node_api.collections.worker import run_daily_collections
from node_api.kernel.chain import AgreementStatus, CycleStatus, EntryKind
from node_api.kernel.outbox import AgreementOpening, enqueue_core
from node_api.kernel.outbox_table import OUTBOX_TABLE, OutboxStatus
from node_api.lending.eod import run_eod_through
from oracles.compiler import CompiledContracts
from oracles.manifest import Manifest
from settlement.cycle_close import close_settlement_cycle
from tests.e2e.test_settlement_e2e import (
    SALTS,
    Node,
    _download_entries,
    _verify,
    node,  # noqa: F401 (the fixture)
    sqlite_only,
)
from tests.integration.collections.recovery_books import (
    AGREEMENT,
    BANK_A,
    BANK_B,
    GUARD,
    LENDER,
    POLICY,
    RecoveryBooks,
)

COMPENSATION_DAY = date(2025, 3, 30)
"""Bill of 5 March due 25 March: 5 days past due, the test policy's compensation day."""


def _open_agreement(books: RecoveryBooks) -> int:
    """A line opened with an agreement, as onboarding opens it (the opening enqueued)."""
    line_id = books.open_line("cust-e2e", 100_000, agreement=True)
    with books.database.engine.begin() as conn:
        enqueue_core(
            conn,
            [
                AgreementOpening(
                    agreement_id=bytes.fromhex(AGREEMENT[2:]),
                    borrower_ref=Web3.keccak(text="borrower-e2e"),
                    terms_hash=Web3.keccak(text="GUAR1 v1"),
                    product_code=11,
                    limit_fen=10_000_000,
                    apr_bps=1_825,
                    opened_at=1_740_787_200,  # 1 March 2025, 00:00 UTC
                )
            ],
        )
    return line_id


def _entries(path: Path) -> list[dict[str, Any]]:
    """The entries of a download (the first line is the lender's statement)."""
    items = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [item for item in items if "entry_id" in item]


@sqlite_only
def test_delinquency_compensation_and_recovery_settle_and_every_party_verifies(
    node: Node,  # noqa: F811
    deployed: Manifest,
    compiled: CompiledContracts,
    tmp_path: Path,
) -> None:
    books = RecoveryBooks(node.database)
    books.setup(Coverage.OVERDUE)
    line_id = _open_agreement(books)
    run_eod_through(node.database, COMPENSATION_DAY)
    daily = run_daily_collections(
        node.database, COMPENSATION_DAY, policy=POLICY, caches=books.caches
    )
    assert daily.compensations is not None
    (compensation,) = daily.compensations.compensations
    claim_fen = compensation.amount_fen
    assert claim_fen > 10_000  # the minimum payment of 10,000 plus its late charges
    with node.database.engine.begin() as conn:
        paid = record_recovery(
            conn, books.caches.accounts, line_id=line_id, amount_fen=4_000,
            as_of=COMPENSATION_DAY, payment_ref="agent-tx-1", by="agent",
        )  # fmt: skip
    assert (paid.guarantor_fen, paid.shared_fen) == (4_000, 0)

    cycle = close_settlement_cycle(node.database, COMPENSATION_DAY, node.signers, salts=SALTS)
    nets = dict(zip(cycle.partner_ids, cycle.net_positions_fen, strict=True))
    assert nets[GUARD] == -(claim_fen - 4_000)  # paid the claim, got 4,000 back
    node.sync()
    node.pass_dispute_window()
    node.sync()
    assert node.chain_status(cycle.cycle_id) is CycleStatus.FINALIZED
    with node.database.engine.connect() as conn:
        statuses = set(conn.execute(select(OUTBOX_TABLE.c.status)).scalars())
        (stored,) = fetch_compensations(conn, line_id)
    assert statuses == {OutboxStatus.CONFIRMED.value}
    assert stored.agreement_change_seq == 1

    registry = node.w3.eth.contract(
        address=Web3.to_checksum_address(deployed.get_address("CreditRegistry")),
        abi=compiled.artifact("CreditRegistry").abi,
    )
    record, _commitment = registry.functions.getAgreement(bytes.fromhex(AGREEMENT[2:])).call()
    assert (record[0], record[5]) == (AgreementStatus.FROZEN, REASON_GUARANTOR_COMPENSATED)

    kinds: dict[int, set[int]] = {}
    for partner_id in (GUARD, BANK_A, BANK_B):
        path = _download_entries(node.database, tmp_path, partner_id, cycle.cycle_id)
        entries = _entries(path)
        assert sum(int(entry["amount_fen"]) for entry in entries) == nets[partner_id]
        kinds[partner_id] = {int(entry["kind"]) for entry in entries}
        verified = _verify(node, path, partner_id, cycle.cycle_id)
        assert verified.exit_code == 0, verified.output
        assert "OK: every entry proves" in verified.output
    assert kinds[GUARD] == {EntryKind.GUARANTEE_PAYMENT, EntryKind.RECOVERY}
    for funder in (BANK_A, BANK_B):  # funded the purchase, repaid by the compensation
        assert {EntryKind.PRINCIPAL_FUNDED, EntryKind.PRINCIPAL_REPAID} <= kinds[funder]
    assert nets[LENDER] > 0
