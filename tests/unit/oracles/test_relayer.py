"""The relayer lands every outbox item once, in batches, and records it."""

from __future__ import annotations

import time
from typing import Any

import pytest
from web3 import Web3

from node_api.kernel.db import Database
from node_api.kernel.outbox import AgreementChange, CycleProposal, PartnerRegistration
from node_api.kernel.outbox_table import AgreementOpenPayload, OutboxStatus
from oracles.anvil import AnvilProcess
from oracles.chain import LocalAccounts, send_transaction
from oracles.compiler import CompiledContracts
from oracles.deploy import DeployContext
from oracles.eip712 import sorted_signatures
from oracles.manifest import Manifest
from oracles.relay_kinds import compute_agreement_commitment
from oracles.relay_store import LANDED_EARLIER
from oracles.relayer import HOOK_BEFORE_SEND
from oracles.signers import CycleReport, SigningDomain
from oracles.tables import SubmissionStatus
from tests.unit.oracles.oracle_helpers import (
    count_opened_on_chain,
    enqueue_all,
    fetch_outbox,
    fetch_submissions,
    make_opening,
    make_relayer,
)

pytestmark = pytest.mark.chain


class _Crash(Exception):
    """Stands in for the process dying at a hook point."""


def _registry(w3: Web3, deployed: Manifest, compiled: CompiledContracts) -> Any:
    return w3.eth.contract(
        address=Web3.to_checksum_address(deployed.get_address("CreditRegistry")),
        abi=compiled.artifact("CreditRegistry").abi,
    )


def _open_directly(
    w3: Web3,
    deployed: Manifest,
    compiled: CompiledContracts,
    accounts: LocalAccounts,
    payloads: list[AgreementOpenPayload],
) -> None:
    """Open agreements on-chain behind the relayer's back (another writer, or a lost record)."""
    registry = _registry(w3, deployed, compiled)
    items = [
        (
            bytes.fromhex(p["agreement_id"][2:]),
            bytes.fromhex(p["borrower_ref"][2:]),
            bytes.fromhex(p["terms_hash"][2:]),
            p["product_code"],
            p["limit_fen"],
            p["apr_bps"],
            p["opened_at"],
        )
        for p in payloads
    ]
    data = registry.encode_abi("openAgreements", args=[items])
    send_transaction(w3, accounts.relayer, {"to": registry.address, "data": data, "gas": 5_000_000})


def test_agreements_land_once_in_batches_of_at_most_200_and_are_recorded(
    chain: Web3,
    anvil: AnvilProcess,
    database: Database,
    deployed: Manifest,
    compiled: CompiledContracts,
    dev_accounts: LocalAccounts,
) -> None:
    openings = [make_opening(n) for n in range(450)]
    enqueue_all(database, openings)
    relayer = make_relayer(database, anvil.rpc_url, deployed, compiled, dev_accounts.relayer)
    relayer.run_until_idle(timeout_s=60)

    rows = fetch_outbox(database)
    assert {row.status for row in rows} == {OutboxStatus.CONFIRMED}
    assert all(row.tx_hash and row.block_number and row.attempts == 1 for row in rows)
    submissions = fetch_submissions(database)
    assert [s.item_count for s in submissions] == [200, 200, 50]
    assert {s.status for s in submissions} == {SubmissionStatus.CONFIRMED}
    counts = count_opened_on_chain(
        chain, deployed.get_address("CreditRegistry"), deployed.created_at_block
    )
    assert len(counts) == 450 and set(counts.values()) == {1}
    registry = _registry(chain, deployed, compiled)
    _record, commitment = registry.functions.getAgreement(openings[7].agreement_id).call()
    assert "0x" + commitment.hex() == compute_agreement_commitment(openings[7].to_payload())


def test_agreement_already_on_chain_with_the_same_content_counts_as_landed(
    chain: Web3,
    anvil: AnvilProcess,
    database: Database,
    deployed: Manifest,
    compiled: CompiledContracts,
    dev_accounts: LocalAccounts,
) -> None:
    openings = [make_opening(n) for n in range(5)]
    _open_directly(chain, deployed, compiled, dev_accounts, [openings[2].to_payload()])
    enqueue_all(database, openings)
    make_relayer(database, anvil.rpc_url, deployed, compiled, dev_accounts.relayer).run_until_idle(
        30
    )

    rows = {row.business_key: row for row in fetch_outbox(database)}
    assert {row.status for row in rows.values()} == {OutboxStatus.CONFIRMED}
    assert rows[openings[2].business_key].last_error == LANDED_EARLIER
    counts = count_opened_on_chain(
        chain, deployed.get_address("CreditRegistry"), deployed.created_at_block
    )
    assert len(counts) == 5 and set(counts.values()) == {1}


def test_agreement_on_chain_with_different_content_is_parked_as_a_conflict(
    chain: Web3,
    anvil: AnvilProcess,
    database: Database,
    deployed: Manifest,
    compiled: CompiledContracts,
    dev_accounts: LocalAccounts,
) -> None:
    openings = [make_opening(n) for n in range(4)]
    _open_directly(
        chain, deployed, compiled, dev_accounts, [make_opening(1, limit_fen=1).to_payload()]
    )
    enqueue_all(database, openings)
    make_relayer(database, anvil.rpc_url, deployed, compiled, dev_accounts.relayer).run_until_idle(
        30
    )

    rows = {row.business_key: row for row in fetch_outbox(database)}
    conflicted = rows.pop(openings[1].business_key)
    assert conflicted.status == OutboxStatus.PARKED
    assert conflicted.last_error is not None and conflicted.last_error.startswith("conflict:")
    assert {row.status for row in rows.values()} == {OutboxStatus.CONFIRMED}


def test_poison_item_is_parked_with_its_error_and_does_not_block_the_batch(
    chain: Web3,
    anvil: AnvilProcess,
    database: Database,
    deployed: Manifest,
    compiled: CompiledContracts,
    dev_accounts: LocalAccounts,
) -> None:
    openings = [make_opening(n) for n in range(30)]
    openings[17] = make_opening(17, opened_at=0)  # the registry refuses a zero opening time
    enqueue_all(database, openings)
    make_relayer(database, anvil.rpc_url, deployed, compiled, dev_accounts.relayer).run_until_idle(
        30
    )

    rows = {row.business_key: row for row in fetch_outbox(database)}
    poison = rows.pop(openings[17].business_key)
    assert poison.status == OutboxStatus.PARKED
    assert poison.last_error is not None and "InvalidAgreementInput" in poison.last_error
    assert {row.status for row in rows.values()} == {OutboxStatus.CONFIRMED}
    statuses = [s.status for s in fetch_submissions(database)]
    assert statuses == [SubmissionStatus.REVERTED, SubmissionStatus.CONFIRMED]


def test_recorded_transaction_that_was_never_broadcast_is_sent_as_recorded(
    chain: Web3,
    anvil: AnvilProcess,
    database: Database,
    deployed: Manifest,
    compiled: CompiledContracts,
    dev_accounts: LocalAccounts,
) -> None:
    def crash_before_send(point: str) -> None:
        if point == HOOK_BEFORE_SEND:
            raise _Crash

    enqueue_all(database, [make_opening(n) for n in range(10)])
    crashing = make_relayer(
        database, anvil.rpc_url, deployed, compiled, dev_accounts.relayer, hook=crash_before_send
    )
    with pytest.raises(_Crash):
        crashing.step()
    (recorded,) = fetch_submissions(database)
    assert chain.eth.get_transaction_count(dev_accounts.relayer.address) == recorded.nonce

    make_relayer(database, anvil.rpc_url, deployed, compiled, dev_accounts.relayer).run_until_idle(
        30
    )
    (landed,) = fetch_submissions(database)
    assert landed.tx_hash == recorded.tx_hash
    assert landed.status == SubmissionStatus.CONFIRMED
    assert {row.status for row in fetch_outbox(database)} == {OutboxStatus.CONFIRMED}


def test_nonce_taken_by_another_transaction_is_resolved_by_on_chain_state(
    chain: Web3,
    anvil: AnvilProcess,
    database: Database,
    deployed: Manifest,
    compiled: CompiledContracts,
    dev_accounts: LocalAccounts,
) -> None:
    def crash_before_send(point: str) -> None:
        if point == HOOK_BEFORE_SEND:
            raise _Crash

    openings = [make_opening(n) for n in range(6)]
    enqueue_all(database, openings)
    with pytest.raises(_Crash):
        make_relayer(
            database,
            anvil.rpc_url,
            deployed,
            compiled,
            dev_accounts.relayer,
            hook=crash_before_send,
        ).step()
    # Another writer uses the recorded nonce for half of the same agreements.
    _open_directly(chain, deployed, compiled, dev_accounts, [o.to_payload() for o in openings[:3]])

    make_relayer(database, anvil.rpc_url, deployed, compiled, dev_accounts.relayer).run_until_idle(
        30
    )
    submissions = fetch_submissions(database)
    assert [s.status for s in submissions] == [SubmissionStatus.DROPPED, SubmissionStatus.CONFIRMED]
    assert submissions[1].item_count == 3
    assert {row.status for row in fetch_outbox(database)} == {OutboxStatus.CONFIRMED}
    counts = count_opened_on_chain(
        chain, deployed.get_address("CreditRegistry"), deployed.created_at_block
    )
    assert len(counts) == 6 and set(counts.values()) == {1}


def test_items_are_confirmed_only_after_the_configured_depth(
    chain: Web3,
    anvil: AnvilProcess,
    database: Database,
    deployed: Manifest,
    compiled: CompiledContracts,
    dev_accounts: LocalAccounts,
) -> None:
    enqueue_all(database, [make_opening(n) for n in range(3)])
    relayer = make_relayer(
        database, anvil.rpc_url, deployed, compiled, dev_accounts.relayer, confirmations=2
    )
    for _ in range(100):  # send, then see the receipt (a loaded machine may need more steps)
        relayer.step()
        if fetch_submissions(database)[0].status == SubmissionStatus.MINED:
            break
        time.sleep(0.05)
    assert {row.status for row in fetch_outbox(database)} == {OutboxStatus.SENT}
    assert fetch_submissions(database)[0].status == SubmissionStatus.MINED
    chain.provider.make_request("anvil_mine", [2])  # type: ignore[arg-type]
    relayer.step()
    assert {row.status for row in fetch_outbox(database)} == {OutboxStatus.CONFIRMED}


def test_agreement_changes_wait_for_the_opening_and_land_in_order(
    chain: Web3,
    anvil: AnvilProcess,
    database: Database,
    deployed: Manifest,
    compiled: CompiledContracts,
    dev_accounts: LocalAccounts,
) -> None:
    opening = make_opening(1)
    frozen, relimited, active = 2, 900_000, 1
    enqueue_all(
        database,
        [
            opening,
            AgreementChange(opening.agreement_id, 1, 31, new_status=frozen),
            AgreementChange(opening.agreement_id, 2, 32, new_limit_fen=relimited),
            AgreementChange(opening.agreement_id, 3, 33, new_status=active),
        ],
    )
    make_relayer(database, anvil.rpc_url, deployed, compiled, dev_accounts.relayer).run_until_idle(
        30
    )

    assert {row.status for row in fetch_outbox(database)} == {OutboxStatus.CONFIRMED}
    record, _commitment = (
        _registry(chain, deployed, compiled).functions.getAgreement(opening.agreement_id).call()
    )
    status, limit_fen, change_count = record[0], record[1], record[6]
    assert (status, limit_fen, change_count) == (active, relimited, 3)


def _cycle_report() -> CycleReport:
    return CycleReport(
        cycle_id=20250131,
        entries_root=Web3.keccak(text="entries"),
        entry_count=4,
        partner_ids=(11, 12),
        net_positions_fen=(-2_500, 2_500),
    )


def _proposal(
    deployed: Manifest,
    dev_accounts: LocalAccounts,
    deploy_context: DeployContext,
    signer_count: int,
) -> CycleProposal:
    report = _cycle_report()
    domain = SigningDomain(
        deployed.chain_id,
        deployed.get_address("ClearingHouse"),
        deployed.get_address("CreditRegistry"),
    )
    signers = dev_accounts.signers(len(deploy_context.signers))[:signer_count]
    signatures = sorted_signatures(signers, domain.digest_cycle_report(report))
    return CycleProposal(
        report.cycle_id,
        report.entries_root,
        report.entry_count,
        report.partner_ids,
        report.net_positions_fen,
        signatures,
    )


def _partners(dev_accounts: LocalAccounts) -> list[PartnerRegistration]:
    return [
        PartnerRegistration(11, 0, dev_accounts.account(6).address),
        PartnerRegistration(12, 1, dev_accounts.account(7).address),
    ]


def test_cycle_signed_by_too_few_signers_is_rejected_by_the_chain_and_parked(
    chain: Web3,
    anvil: AnvilProcess,
    database: Database,
    deployed: Manifest,
    compiled: CompiledContracts,
    dev_accounts: LocalAccounts,
    deploy_context: DeployContext,
) -> None:
    proposal = _proposal(
        deployed, dev_accounts, deploy_context, signer_count=deploy_context.threshold - 1
    )
    enqueue_all(database, [*_partners(dev_accounts), proposal])
    make_relayer(database, anvil.rpc_url, deployed, compiled, dev_accounts.relayer).run_until_idle(
        30
    )

    rows = {row.business_key: row for row in fetch_outbox(database)}
    parked = rows.pop(proposal.business_key)
    assert parked.status == OutboxStatus.PARKED
    assert parked.last_error is not None and "QuorumNotReached" in parked.last_error
    assert {row.status for row in rows.values()} == {OutboxStatus.CONFIRMED}


def test_cycle_signed_by_a_quorum_is_proposed_once(
    chain: Web3,
    anvil: AnvilProcess,
    database: Database,
    deployed: Manifest,
    compiled: CompiledContracts,
    dev_accounts: LocalAccounts,
    deploy_context: DeployContext,
) -> None:
    proposal = _proposal(
        deployed, dev_accounts, deploy_context, signer_count=deploy_context.threshold
    )
    enqueue_all(database, [*_partners(dev_accounts), proposal])
    make_relayer(database, anvil.rpc_url, deployed, compiled, dev_accounts.relayer).run_until_idle(
        30
    )

    assert {row.status for row in fetch_outbox(database)} == {OutboxStatus.CONFIRMED}
    house = chain.eth.contract(
        address=Web3.to_checksum_address(deployed.get_address("ClearingHouse")),
        abi=compiled.artifact("ClearingHouse").abi,
    )
    cycle = house.functions.getCycle(proposal.cycle_id).call()
    assert cycle[0] == proposal.entries_root and cycle[1] == 1
