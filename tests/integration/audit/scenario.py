"""A realistic small history on a chain of the audit tests' own, and its books export.

The history exercises every kind of event the audit replays: partners, agreements with
status changes and a limit amendment, three settlement cycles (settled, disputed then
dismissed and partly claimed, still proposed), two line-state commitments with quorum
reports (one sent by the relayer, one by an outsider: the registry has no other way), a
pause and an unpause. The dispute resolution and the pauses go through the NetworkTimelock
(`Scenario.govern`), which holds the admin roles since the deployment. `BooksData` is what the
lender's books hold for it, from which tests write exports (faithful or tampered).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract import Contract
from web3.types import TxReceipt

from node_api.kernel.chain import EntryKind
from node_api.kernel.config import Settings
from node_api.lending.products import canonical_terms_json, parse_product_terms, terms_hash_hex
from oracles.anvil import AnvilProcess
from oracles.audit.checks import CheckResult
from oracles.audit.export_format import (
    AgreementRecord,
    CycleEntriesRecord,
    LineStateLeavesRecord,
    LineStateRecord,
    ManifestRecord,
    ProductTermsRecord,
    encode_export,
)
from oracles.audit.leaves import compute_line_leaf
from oracles.audit.report import AuditReport
from oracles.chain import LocalAccounts, send_transaction
from oracles.compiler import CompiledContracts
from oracles.eip712 import cycle_report_digest, line_state_report_digest, sorted_signatures
from oracles.manifest import Manifest
from scripts.bench.audit import agreement_commitment, cycle_record
from settlement.entries import SettlementEntry
from settlement.merkle import build_tree
from settlement.netting import ClosedCycle, close_cycle
from settlement.salts import LeafSalts
from tests.unit.lending.samples import installment_product_data, revolving_product_data

DISPUTE_WINDOW_S = 3_600
PARTNER_ROLES = {1: 0, 2: 1, 3: 2, 4: 3}
FIRST_PARTNER_INDEX = 5
OUTSIDER_INDEX = 9
OPENED_AT = 1_735_689_600
MINT_FEN = 10**12
RELAYER_ROLE = bytes(Web3.keccak(text="RELAYER_ROLE"))
GOVERNANCE_DELAY_S = 60
"""The NetworkTimelock's minimum delay (`DeployContext.for_development`'s default)."""


@dataclass
class BooksData:
    """What the lender's books hold for the scenario (the source of every export)."""

    terms: list[ProductTermsRecord] = field(default_factory=list)
    agreements: list[AgreementRecord] = field(default_factory=list)
    cycles: dict[int, ClosedCycle] = field(default_factory=dict)
    line_states: dict[int, list[tuple[str, int]]] = field(default_factory=dict)


@dataclass
class Scenario:
    """The chain, its manifest and accounts, the contracts and the books."""

    anvil: AnvilProcess
    w3: Web3
    manifest: Manifest
    manifest_path: Path
    compiled: CompiledContracts
    accounts: LocalAccounts
    contracts: dict[str, Contract]
    books: BooksData = field(default_factory=BooksData)
    signer_indexes: tuple[int, ...] = (2, 3)

    @property
    def admin(self) -> LocalAccount:
        return self.accounts.deployer

    @property
    def relayer(self) -> LocalAccount:
        return self.accounts.relayer

    @property
    def outsider(self) -> LocalAccount:
        return self.accounts.account(OUTSIDER_INDEX)

    def payout(self, partner_id: int) -> LocalAccount:
        return self.accounts.account(FIRST_PARTNER_INDEX + partner_id - 1)

    def send(self, account: LocalAccount, contract: str, function: str, *args: Any) -> TxReceipt:
        target = self.contracts[contract]
        data = target.encode_abi(function, args=list(args))
        return send_transaction(self.w3, account, {"to": target.address, "data": data})

    def advance_time(self, seconds: int) -> None:
        self.w3.provider.make_request("evm_increaseTime", [seconds])  # type: ignore[arg-type]
        self.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]

    def govern(self, contract: str, function: str, *args: Any) -> TxReceipt:
        """An admin call through the NetworkTimelock: the admin (a proposer) schedules it,
        the delay passes, the outsider executes it (executors: anyone). The execution's
        receipt."""
        target = self.contracts[contract]
        data = target.encode_abi(function, args=list(args))
        salt = bytes(Web3.keccak(text=f"scenario-{self.w3.eth.block_number}"))
        call = [target.address, 0, data, bytes(32), salt]
        self.send(self.admin, "NetworkTimelock", "schedule", *call, GOVERNANCE_DELAY_S)
        self.advance_time(GOVERNANCE_DELAY_S)
        return self.send(self.outsider, "NetworkTimelock", "execute", *call)

    def signers(self) -> list[LocalAccount]:
        return [self.accounts.account(index) for index in self.signer_indexes]


def build_terms() -> list[ProductTermsRecord]:
    records = []
    for data in (revolving_product_data(), installment_product_data()):
        terms = parse_product_terms(data)
        records.append(
            ProductTermsRecord(
                product_code=terms.product_code,
                version=terms.version,
                terms_hash=terms_hash_hex(terms),
                canonical_terms=canonical_terms_json(terms).decode("ascii"),
            )
        )
    return records


def make_agreement(number: int, terms_hash: str) -> AgreementRecord:
    return AgreementRecord(
        agreement_id="0x" + (0xA6 << 248 | number).to_bytes(32, "big").hex(),
        borrower_ref="0x" + (0xB0 << 248 | number).to_bytes(32, "big").hex(),
        terms_hash=terms_hash,
        product_code=1 + number % 2,
        limit_fen=500_000 + 10_000 * number,
        apr_bps=1_800,
        opened_at=OPENED_AT,
    )


def open_agreements(scenario: Scenario, records: list[AgreementRecord]) -> None:
    rows = [agreement_commitment(record) for record in records]
    receipt = scenario.send(scenario.relayer, "CreditRegistry", "openAgreements", rows)
    tx = receipt["transactionHash"].to_0x_hex()
    for record in records:
        scenario.books.agreements.append(
            record.model_copy(update={"anchored_tx": tx, "anchored_block": receipt["blockNumber"]})
        )


SALTS = LeafSalts.from_settings(Settings())
"""The leaf salts of a node with default settings, as the export route derives them."""


def make_entries(cycle_id: int, positions: dict[int, list[int]]) -> list[SettlementEntry]:
    """Entries numbered from 1, per partner in id order (amounts in fen), salted."""
    entries: list[SettlementEntry] = []
    kinds = (EntryKind.PRINCIPAL_FUNDED, EntryKind.INTEREST_SHARE, EntryKind.SERVICE_FEE)
    for partner_id, amounts in sorted(positions.items()):
        for amount_fen in amounts:
            kind = kinds[len(entries) % len(kinds)]
            entry_id = len(entries) + 1
            salt = SALTS.salt(cycle_id, entry_id, partner_id)
            entries.append(SettlementEntry(cycle_id, entry_id, partner_id, kind, amount_fen, salt))
    return entries


def propose(scenario: Scenario, close: ClosedCycle, submitter: LocalAccount | None = None) -> None:
    address = scenario.contracts["ClearingHouse"].address
    digest = cycle_report_digest(
        scenario.manifest.chain_id,
        address,
        close.cycle_id,
        close.root,
        close.entry_count,
        close.partner_ids,
        close.net_positions_fen,
    )
    signatures = sorted_signatures(scenario.signers(), digest)
    scenario.send(
        submitter or scenario.relayer,
        "ClearingHouse",
        "proposeCycle",
        close.cycle_id,
        close.root,
        close.entry_count,
        list(close.partner_ids),
        list(close.net_positions_fen),
        signatures,
    )


def fund_and_claim(scenario: Scenario, close: ClosedCycle, claim_partners: set[int]) -> None:
    for partner_id, net_fen in zip(close.partner_ids, close.net_positions_fen, strict=True):
        if net_fen < 0:
            scenario.send(scenario.admin, "ClearingHouse", "fund", close.cycle_id, partner_id)
    for partner_id, net_fen in zip(close.partner_ids, close.net_positions_fen, strict=True):
        if net_fen > 0 and partner_id in claim_partners:
            scenario.send(scenario.outsider, "ClearingHouse", "claim", close.cycle_id, partner_id)


def settle_cycle(scenario: Scenario, cycle_id: int, positions: dict[int, list[int]]) -> ClosedCycle:
    close = close_cycle(cycle_id, make_entries(cycle_id, positions))
    scenario.books.cycles[cycle_id] = close
    return close


def line_state_parts(cycle_id: int, leaves: list[tuple[str, int]]) -> tuple[bytes, int, int]:
    tree = build_tree([compute_line_leaf(a, cycle_id, o) for a, o in leaves])
    return tree.root, len(leaves), sum(o for _a, o in leaves)


def commit_line_state(
    scenario: Scenario,
    cycle_id: int,
    leaves: list[tuple[str, int]],
    submitter: LocalAccount | None = None,
) -> None:
    """Commit a line state with a quorum report, sent by `submitter` (default: outsider)."""
    root, count, total_fen = line_state_parts(cycle_id, leaves)
    scenario.books.line_states[cycle_id] = leaves
    address = scenario.contracts["CreditRegistry"].address
    digest = line_state_report_digest(
        scenario.manifest.chain_id, address, cycle_id, root, count, total_fen
    )
    signatures = sorted_signatures(scenario.signers(), digest)
    scenario.send(
        submitter or scenario.outsider,
        "CreditRegistry",
        "commitLineStateWithReport",
        cycle_id,
        root,
        count,
        total_fen,
        signatures,
    )


def build_clean_history(scenario: Scenario) -> None:
    """The whole base history (see the module docstring)."""
    for partner_id, role in PARTNER_ROLES.items():
        payout = scenario.payout(partner_id).address
        scenario.send(
            scenario.relayer, "ClearingHouse", "registerPartner", partner_id, role, payout
        )
    scenario.books.terms = build_terms()
    hashes = [t.terms_hash for t in scenario.books.terms]
    records = [make_agreement(n, hashes[n % 2]) for n in range(6)]
    open_agreements(scenario, records)
    ids = [bytes.fromhex(r.agreement_id[2:]) for r in records]
    for agreement, status in ((0, 2), (0, 1), (1, 4), (1, 5), (2, 3)):
        scenario.send(scenario.relayer, "CreditRegistry", "setStatus", ids[agreement], status, 7)
    scenario.send(scenario.relayer, "CreditRegistry", "amendLimit", ids[3], 800_000, 11)
    scenario.send(scenario.admin, "SettlementToken", "mint", scenario.admin.address, MINT_FEN)
    scenario.send(
        scenario.admin,
        "SettlementToken",
        "approve",
        scenario.contracts["ClearingHouse"].address,
        MINT_FEN,
    )
    _run_cycles(scenario)
    leaves = [(r.agreement_id, 100_000 + 1_000 * n) for n, r in enumerate(records)]
    commit_line_state(scenario, 20250131, leaves, scenario.relayer)
    commit_line_state(scenario, 20250228, [(a, o + 7) for a, o in leaves])
    scenario.govern("CreditRegistry", "pause")
    scenario.govern("CreditRegistry", "unpause")


def _run_cycles(scenario: Scenario) -> None:
    first = settle_cycle(
        scenario, 20250131, {1: [30_000, 1_250], 2: [-10_000, -250], 3: [-21_000], 4: [0]}
    )
    propose(scenario, first)
    scenario.advance_time(DISPUTE_WINDOW_S + 1)
    scenario.send(scenario.outsider, "ClearingHouse", "finalize", first.cycle_id)
    fund_and_claim(scenario, first, claim_partners={1})
    second = settle_cycle(scenario, 20250228, {1: [5_000], 2: [-7_000], 3: [2_000]})
    propose(scenario, second)
    scenario.send(scenario.payout(2), "ClearingHouse", "dispute", second.cycle_id, 2, b"\x01" * 32)
    scenario.govern("ClearingHouse", "resolveDispute", second.cycle_id, False)
    scenario.advance_time(DISPUTE_WINDOW_S + 1)
    scenario.send(scenario.outsider, "ClearingHouse", "finalize", second.cycle_id)
    fund_and_claim(scenario, second, claim_partners={1})
    third = settle_cycle(scenario, 20250331, {1: [-3_000], 2: [1_000, 2_000]})
    propose(scenario, third)


def cycle_records(close: ClosedCycle, entries: list[SettlementEntry] | None = None) -> list[Any]:
    rows = [
        (e.entry_id, e.partner_id, int(e.kind), e.amount_fen, "0x" + e.salt.hex())
        for e in (entries or close.entries)
    ]
    return [cycle_record(close), CycleEntriesRecord(cycle_id=close.cycle_id, entries=rows)]


def line_state_records(cycle_id: int, leaves: list[tuple[str, int]]) -> list[Any]:
    root, count, total_fen = line_state_parts(cycle_id, leaves)
    return [
        LineStateRecord(
            cycle_id=cycle_id,
            leaf_count=count,
            total_outstanding_fen=total_fen,
            root="0x" + root.hex(),
        ),
        LineStateLeavesRecord(cycle_id=cycle_id, leaves=leaves),
    ]


def books_records(
    scenario: Scenario,
    *,
    entries_override: dict[int, list[SettlementEntry]] | None = None,
    drop_cycles: tuple[int, ...] = (),
) -> list[Any]:
    """The export's records from the books, optionally with some cycles' entries replaced
    (a tampered ledger) or some cycles left out."""
    books = scenario.books
    records: list[Any] = [ManifestRecord(manifest=json.loads(scenario.manifest.model_dump_json()))]
    records += books.terms + books.agreements
    for cycle_id, close in sorted(books.cycles.items()):
        if cycle_id not in drop_cycles:
            records += cycle_records(close, (entries_override or {}).get(cycle_id))
    for cycle_id, leaves in sorted(books.line_states.items()):
        records += line_state_records(cycle_id, leaves)
    return records


def write_export(path: Path, chain_id: int, records: list[Any]) -> Path:
    path.write_bytes(b"".join(encode_export(chain_id, records)))
    return path


def failed_ids(report: AuditReport) -> set[str]:
    return {check.id for check in report.failed_checks()}


def check_of(report: AuditReport, check_id: str) -> CheckResult:
    return next(check for check in report.checks if check.id == check_id)
