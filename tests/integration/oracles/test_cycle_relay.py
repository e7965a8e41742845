"""Settlement cycles through the oracles: signers check the report against their books,
the relayer proposes, finalizes and claims, and the indexer mirrors every step.
Tampering: signers refuse a report that is not the books', and a report signed by too
few signers is rejected by the chain and parked by the relayer."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
import sqlalchemy as sa
from eth_account.signers.local import LocalAccount
from web3 import Web3

from node_api.kernel.db import Database
from node_api.kernel.outbox import CycleClaim, CycleFinalization, CycleProposal, PartnerRegistration
from node_api.kernel.outbox_table import OUTBOX_TABLE, OutboxStatus
from oracles.chain import LocalAccounts, send_transaction
from oracles.signers import (
    CycleReport,
    LocalSigner,
    QuorumNotReachedError,
    ReportSources,
    SignerSet,
    SigningDomain,
)
from oracles.tables import CHAIN_CYCLE_TABLE, CHAIN_POSITION_TABLE
from tests.integration.oracles.conftest import OwnChain
from tests.unit.oracles.oracle_helpers import (
    enqueue_all,
    fetch_outbox,
    make_indexer,
    make_relayer,
)

pytestmark = pytest.mark.chain

DEBTOR, CREDITOR = 11, 12
BOOKS = CycleReport(
    cycle_id=20250131,
    entries_root=Web3.keccak(text="cycle 20250131 entries"),
    entry_count=6,
    partner_ids=(DEBTOR, CREDITOR),
    net_positions_fen=(-2_500, 2_500),
)
DISPUTE_WINDOW_S = 3_600


def _signer_set(chain: OwnChain, tampered: int) -> SignerSet:
    """The dev signers; the last `tampered` of them keep books that differ from ours."""
    manifest = chain.manifest
    domain = SigningDomain(
        manifest.chain_id,
        manifest.get_address("ClearingHouse"),
        manifest.get_address("CreditRegistry"),
    )
    honest = ReportSources(cycle=lambda cycle_id: BOOKS if cycle_id == BOOKS.cycle_id else None)
    other_books = replace(BOOKS, net_positions_fen=(-2_400, 2_400))
    dishonest = ReportSources(cycle=lambda _cycle_id: other_books)
    accounts = LocalAccounts().signers(3)
    sources = [honest] * (3 - tampered) + [dishonest] * tampered
    return SignerSet(
        [LocalSigner(a, s, domain) for a, s in zip(accounts, sources, strict=True)], threshold=2
    )


def _partners() -> list[PartnerRegistration]:
    accounts = LocalAccounts()
    return [
        PartnerRegistration(DEBTOR, 1, accounts.account(6).address),
        PartnerRegistration(CREDITOR, 2, accounts.account(7).address),
    ]


def _proposal(signatures: list[bytes]) -> CycleProposal:
    return CycleProposal(
        BOOKS.cycle_id,
        BOOKS.entries_root,
        BOOKS.entry_count,
        BOOKS.partner_ids,
        BOOKS.net_positions_fen,
        signatures,
    )


def _relay(database: Database, chain: OwnChain) -> None:
    make_relayer(
        database, chain.anvil.rpc_url, chain.manifest, chain.compiled, chain.relayer
    ).run_until_idle(30)


def test_report_signed_by_too_few_signers_is_parked_after_the_chain_rejects_it(
    database: Database, own_chain: OwnChain
) -> None:
    signer_set = _signer_set(own_chain, tampered=2)
    with pytest.raises(QuorumNotReachedError):
        signer_set.gather_cycle_signatures(BOOKS)
    gathering = signer_set.gather_cycle_signatures(BOOKS, require_quorum=False)
    assert len(gathering.signatures) == 1 and len(gathering.refusals) == 2
    assert all("does not match the books" in reason for reason in gathering.refusals.values())

    proposal = _proposal(gathering.signatures)
    enqueue_all(database, [*_partners(), proposal])
    _relay(database, own_chain)

    rows = {row.business_key: row for row in fetch_outbox(database)}
    parked = rows.pop(proposal.business_key)
    assert parked.status == OutboxStatus.PARKED
    assert parked.last_error is not None and "QuorumNotReached" in parked.last_error
    assert {row.status for row in rows.values()} == {OutboxStatus.CONFIRMED}


def _contract(chain: OwnChain, name: str) -> Any:
    return chain.connect().eth.contract(
        address=Web3.to_checksum_address(chain.manifest.get_address(name)),
        abi=chain.compiled.artifact(name).abi,
    )


def _call(chain: OwnChain, account: LocalAccount, contract: Any, function: str, *args: Any) -> None:
    data = contract.encode_abi(function, args=list(args))
    send_transaction(
        chain.connect(), account, {"to": contract.address, "data": data, "gas": 500_000}
    )


def _fund_debtor(chain: OwnChain) -> None:
    """The debtor's bank pays its position (minted to it first), as a partner does."""
    accounts = LocalAccounts()
    payer = accounts.account(6)
    token, house = _contract(chain, "SettlementToken"), _contract(chain, "ClearingHouse")
    _call(chain, accounts.deployer, token, "mint", payer.address, 2_500)
    _call(chain, payer, token, "approve", house.address, 2_500)
    _call(chain, payer, house, "fund", BOOKS.cycle_id, DEBTOR)


def _mirror(database: Database) -> tuple[Any, dict[int, Any]]:
    with database.engine.connect() as conn:
        cycle = conn.execute(sa.select(CHAIN_CYCLE_TABLE)).mappings().one()
        positions = {
            int(row["partner_id"]): row
            for row in conn.execute(sa.select(CHAIN_POSITION_TABLE)).mappings()
        }
    return cycle, positions


def test_cycle_is_proposed_finalized_funded_and_claimed_and_mirrored(
    database: Database, own_chain: OwnChain
) -> None:
    gathering = _signer_set(own_chain, tampered=1).gather_cycle_signatures(BOOKS)
    assert len(gathering.signatures) == 2
    enqueue_all(database, [*_partners(), _proposal(gathering.signatures)])
    enqueue_all(database, [CycleFinalization(BOOKS.cycle_id)])
    _relay(database, own_chain)
    finalization = {row.kind: row for row in fetch_outbox(database)}["cycle_finalize"]
    assert finalization.status == OutboxStatus.PENDING
    assert finalization.available_at is not None
    assert finalization.last_error is not None and "DisputeWindowOpen" in finalization.last_error

    w3 = own_chain.connect()
    w3.provider.make_request("evm_increaseTime", [DISPUTE_WINDOW_S + 1])  # type: ignore[arg-type]
    w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    with database.engine.begin() as conn:  # the wait for the window is over
        conn.execute(sa.update(OUTBOX_TABLE).values(available_at=None))
    _relay(database, own_chain)
    _fund_debtor(own_chain)
    enqueue_all(database, [CycleClaim(BOOKS.cycle_id, CREDITOR)])
    _relay(database, own_chain)
    assert {row.status for row in fetch_outbox(database)} == {OutboxStatus.CONFIRMED}

    indexer = make_indexer(
        database, own_chain.anvil.rpc_url, own_chain.manifest, own_chain.compiled
    )
    indexer.run_until_caught_up(30)
    cycle, positions = _mirror(database)
    assert (cycle["status"], cycle["funded_fen"], cycle["claimed_fen"]) == (4, 2_500, 2_500)
    assert cycle["entries_root"] == "0x" + BOOKS.entries_root.hex()
    assert positions[DEBTOR]["net_position_fen"] == -2_500
    assert positions[DEBTOR]["settled_fen"] == positions[CREDITOR]["settled_fen"] == 2_500
