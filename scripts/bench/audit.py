"""`creditnet bench audit`: audit a long history (10,000 agreements, 365 cycles).

On its own anvil, with DEFAULT_PLAN deployed (dispute window 0), it seeds a year of
history with pre-signed transactions sent in JSON-RPC batches: partners, agreements in
batches of 200, status changes and limit amendments, one quorum-signed cycle a day
(proposed, finalized, funded, claimed) and a monthly credit-line state commitment over
every agreement. It writes the matching books export, then runs the full audit (a cold
compile cache, so the recompile is included) and reports the time of each phase. The
target is a whole audit under 60 s on this 2-core machine.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Final

from eth_account.signers.local import LocalAccount
from sha3 import keccak_256

from node_api.kernel.chain import EntryKind
from node_api.kernel.errors import ChainError
from node_api.kernel.money import Fen
from oracles.abi_codec import ContractCodec, encode_static_tuple_array
from oracles.anvil import AnvilProcess, pick_free_port
from oracles.audit import export_format
from oracles.audit.leaves import compute_line_leaf
from oracles.audit.runner import AuditConfig, run_audit
from oracles.chain import LocalAccounts, connect, send_transaction
from oracles.compiler import compile_contracts
from oracles.deploy import DeployContext, ensure_deployed
from oracles.deploy_plan import DEFAULT_PLAN
from oracles.eip712 import cycle_report_digest, line_state_report_digest, sorted_signatures
from oracles.manifest import Manifest, get_manifest_path
from oracles.tx_sender import FeeQuote, JsonRpcClient, TxSender
from scripts.bench.figures import Figures
from settlement.entries import SettlementEntry
from settlement.merkle import build_tree
from settlement.netting import ClosedCycle, close_cycle
from settlement.salts import LeafSalts

AGREEMENT_BATCH: Final = 200
PARTNERS: Final = {1: 0, 2: 1, 3: 1, 4: 2}
ENTRIES_PER_CYCLE: Final = 24
OPENED_AT: Final = 1_735_689_600
FIRST_DAY: Final = date(2025, 1, 1)
LINE_STATE_EVERY_DAYS: Final = 30
MINT_FEN: Final = 10**15
SEND_BATCH: Final = 500
RPC_TIMEOUT_S: Final = 120.0
MINE_ATTEMPTS_MAX: Final = 200
"""A batch of hundreds of transactions, each mined on arrival, can take long on a busy machine."""
SEND_BATCH_CHARS_MAX: Final = 1_500_000
"""A JSON-RPC array stays well under 2 MB (anvil answers "Invalid request" to a 4 MB one)."""
COMMITMENT_TYPES: Final = ["bytes32", "bytes32", "bytes32", "uint32", "uint64", "uint32", "uint64"]
AgreementCommitment = tuple[bytes, bytes, bytes, int, int, int, int]
"""An agreement's `COMMITMENT_TYPES` tuple: agreement id, borrower and terms hash, product
code, limit (fen), APR (bps) and opening time (unix seconds)."""
TERMS: Final = (
    {"product_code": "BENCH-REV", "version": 1, "apr_bps": 1800, "bill_day_options": [5, 20]},
    {"product_code": "BENCH-INST", "version": 1, "apr_bps": 1200, "tenors_months": [3, 6, 12]},
)


@dataclass
class _Seeder:
    """Signs calls for the relayer with a local nonce and sends them in batches."""

    sender: TxSender
    fees: FeeQuote
    addresses: dict[str, str]
    codecs: dict[str, ContractCodec]
    pending: list[str] = field(default_factory=list)
    pending_chars: int = 0
    sent: list[str] = field(default_factory=list)

    def call(self, contract: str, function: str, args: Sequence[Any], gas: int) -> None:
        data = self.codecs[contract].function(function).encode(args)
        self.call_data(contract, data, gas)

    def call_data(self, contract: str, data: bytes, gas: int) -> None:
        signed = self.sender.sign_call(self.addresses[contract], data, gas, self.fees)
        self.pending.append(signed.raw_tx)
        self.pending_chars += len(signed.raw_tx)
        self.sent.append(signed.tx_hash)
        if len(self.pending) >= SEND_BATCH or self.pending_chars >= SEND_BATCH_CHARS_MAX:
            self.flush()

    def flush(self) -> None:
        """Broadcast the pending transactions and mine blocks until the last one is in.

        Automine is off while seeding: anvil answered evm_mine slowly or not at all under
        automine bursts, while explicit blocks of up to the gas limit are fast and certain.
        """
        if not self.pending:
            return
        results = self.sender.broadcast(self.pending)
        rejected = [r.message for r in results if r.outcome.value != "accepted"]
        if rejected:
            raise ChainError(f"bench transaction rejected: {rejected[0]}")
        self.pending, self.pending_chars = [], 0
        for _ in range(MINE_ATTEMPTS_MAX):
            self.sender.rpc.call("evm_mine", [])
            if self.sender.fetch_receipts(self.sent[-1:])[0] is not None:
                return
        raise ChainError(f"bench transactions still pending after {MINE_ATTEMPTS_MAX} blocks")

    def confirm_all(self) -> None:
        """Mine what is pending and require that every sent transaction succeeded."""
        self.flush()
        for start in range(0, len(self.sent), SEND_BATCH):
            hashes = self.sent[start : start + SEND_BATCH]
            receipts = self.sender.fetch_receipts(hashes)
            failed = [
                h for h, r in zip(hashes, receipts, strict=True) if not r or r["status"] != "0x1"
            ]
            if failed:
                raise ChainError(f"bench transaction {failed[0]} reverted or missing")


@dataclass
class _Books:
    terms: list[export_format.ProductTermsRecord] = field(default_factory=list)
    agreements: list[export_format.AgreementRecord] = field(default_factory=list)
    cycles: list[ClosedCycle] = field(default_factory=list)
    line_states: dict[int, list[tuple[str, int]]] = field(default_factory=dict)


def _terms() -> list[export_format.ProductTermsRecord]:
    records = []
    for document in TERMS:
        canonical = json.dumps(document, sort_keys=True, separators=(",", ":"))
        records.append(
            export_format.ProductTermsRecord(
                product_code=str(document["product_code"]),
                version=int(str(document["version"])),
                terms_hash="0x" + keccak_256(canonical.encode()).hexdigest(),
                canonical_terms=canonical,
            )
        )
    return records


def agreement_commitment(record: export_format.AgreementRecord) -> AgreementCommitment:
    """What `CreditRegistry.openAgreements` takes for an agreement (`COMMITMENT_TYPES`)."""
    return (
        bytes.fromhex(record.agreement_id[2:]),
        bytes.fromhex(record.borrower_ref[2:]),
        bytes.fromhex(record.terms_hash[2:]),
        record.product_code,
        record.limit_fen,
        record.apr_bps,
        record.opened_at,
    )


def _seed_agreements(seeder: _Seeder, books: _Books, count: int) -> None:
    hashes = [t.terms_hash for t in books.terms]
    for number in range(count):
        books.agreements.append(
            export_format.AgreementRecord(
                agreement_id="0x" + (0xAE << 248 | number).to_bytes(32, "big").hex(),
                borrower_ref="0x" + (0xB0 << 248 | number).to_bytes(32, "big").hex(),
                terms_hash=hashes[number % len(hashes)],
                product_code=1 + number % len(hashes),
                limit_fen=100_000 + 100 * (number % 9_000),
                apr_bps=1_200 + number % 600,
                opened_at=OPENED_AT,
            )
        )
    function = seeder.codecs["CreditRegistry"].function("openAgreements")
    for start in range(0, count, AGREEMENT_BATCH):
        batch = books.agreements[start : start + AGREEMENT_BATCH]
        rows = [agreement_commitment(a) for a in batch]
        data = function.selector + encode_static_tuple_array(COMMITMENT_TYPES, rows)
        seeder.call_data("CreditRegistry", data, 60_000 + 75_000 * len(batch))
    _seed_changes(seeder, books)


def _seed_changes(seeder: _Seeder, books: _Books) -> None:
    """Freeze every 10th agreement, then unfreeze half of them; amend every 20th limit."""
    frozen = [bytes.fromhex(a.agreement_id[2:]) for a in books.agreements[::10]]
    for status, ids in ((2, frozen), (1, frozen[::2])):
        for start in range(0, len(ids), AGREEMENT_BATCH):
            changes = [(i, status, 3) for i in ids[start : start + AGREEMENT_BATCH]]
            seeder.call("CreditRegistry", "setStatuses", [changes], 60_000 + 30_000 * len(changes))
    amended = books.agreements[5::20]
    for start in range(0, len(amended), AGREEMENT_BATCH):
        items = [
            (bytes.fromhex(a.agreement_id[2:]), a.limit_fen + 50_000, 4)
            for a in amended[start : start + AGREEMENT_BATCH]
        ]
        seeder.call("CreditRegistry", "amendLimits", [items], 60_000 + 30_000 * len(items))


BENCH_LEAF_SALTS: Final = LeafSalts(b"creditnet-bench-audit-leaf-salt-secret")
"""The seeded books' leaf salts (the export carries each entry's salt)."""


def _cycle_entries(cycle_id: int, day: int) -> list[SettlementEntry]:
    """Balanced entries: partners 2, 3 fund, 1 and 4 receive; amounts vary by day."""
    entries: list[SettlementEntry] = []
    for index in range(ENTRIES_PER_CYCLE // 2):
        amount_fen = 1_000 + 37 * ((day * 31 + index) % 500)
        payer, payee = (2, 1) if index % 2 else (3, 4)
        for partner_id, signed_fen in ((payer, Fen(-amount_fen)), (payee, Fen(amount_fen))):
            kind = EntryKind.PRINCIPAL_FUNDED if signed_fen < 0 else EntryKind.INTEREST_SHARE
            entry_id = len(entries) + 1
            salt = BENCH_LEAF_SALTS.salt(cycle_id, entry_id, partner_id)
            entries.append(SettlementEntry(cycle_id, entry_id, partner_id, kind, signed_fen, salt))
    return entries


def _seed_cycle(
    seeder: _Seeder, signers: list[LocalAccount], chain_id: int, close: ClosedCycle
) -> None:
    house = seeder.addresses["ClearingHouse"]
    digest = cycle_report_digest(
        chain_id,
        house,
        close.cycle_id,
        close.root,
        close.entry_count,
        close.partner_ids,
        close.net_positions_fen,
    )
    args = [
        close.cycle_id,
        close.root,
        close.entry_count,
        list(close.partner_ids),
        list(close.net_positions_fen),
        sorted_signatures(signers, digest),
    ]
    seeder.call("ClearingHouse", "proposeCycle", args, 600_000)
    seeder.call("ClearingHouse", "finalize", [close.cycle_id], 150_000)
    for partner_id, net_fen in zip(close.partner_ids, close.net_positions_fen, strict=True):
        if net_fen < 0:
            seeder.call("ClearingHouse", "fund", [close.cycle_id, partner_id], 200_000)
    for partner_id, net_fen in zip(close.partner_ids, close.net_positions_fen, strict=True):
        if net_fen > 0:
            seeder.call("ClearingHouse", "claim", [close.cycle_id, partner_id], 200_000)


def _seed_line_state(
    seeder: _Seeder,
    signers: list[LocalAccount],
    chain_id: int,
    books: _Books,
    cycle_id: int,
    day: int,
) -> None:
    leaves = [(a.agreement_id, (a.limit_fen * (day % 7 + 1)) // 10) for a in books.agreements]
    books.line_states[cycle_id] = leaves
    root = build_tree([compute_line_leaf(a, cycle_id, Fen(o)) for a, o in leaves]).root
    total_fen = sum(o for _a, o in leaves)
    registry = seeder.addresses["CreditRegistry"]
    digest = line_state_report_digest(chain_id, registry, cycle_id, root, len(leaves), total_fen)
    args = [cycle_id, root, len(leaves), total_fen, sorted_signatures(signers, digest)]
    seeder.call("CreditRegistry", "commitLineStateWithReport", args, 400_000)


def _seed(
    seeder: _Seeder, accounts: LocalAccounts, chain_id: int, agreements: int, cycles: int
) -> _Books:
    books = _Books(terms=_terms())
    for partner_id, role in PARTNERS.items():
        payout = accounts.account(4 + partner_id).address
        seeder.call("ClearingHouse", "registerPartner", [partner_id, role, payout], 150_000)
    seeder.call(
        "SettlementToken", "approve", [seeder.addresses["ClearingHouse"], MINT_FEN], 100_000
    )
    _seed_agreements(seeder, books, agreements)
    signers = accounts.signers(2)
    for day in range(cycles):
        cycle_id = int((FIRST_DAY + timedelta(days=day)).strftime("%Y%m%d"))
        close = close_cycle(cycle_id, _cycle_entries(cycle_id, day))
        books.cycles.append(close)
        _seed_cycle(seeder, signers, chain_id, close)
        if day % LINE_STATE_EVERY_DAYS == LINE_STATE_EVERY_DAYS - 1:
            _seed_line_state(seeder, signers, chain_id, books, cycle_id, day)
    seeder.confirm_all()
    return books


def cycle_record(close: ClosedCycle) -> export_format.CycleRecord:
    """The export's record of a closed cycle (its entries go in `CycleEntriesRecord`s)."""
    return export_format.CycleRecord(
        cycle_id=close.cycle_id,
        entry_count=close.entry_count,
        entries_root="0x" + close.root.hex(),
        partner_ids=list(close.partner_ids),
        net_positions_fen=list(close.net_positions_fen),
    )


def _export_records(manifest: Manifest, books: _Books) -> list[Any]:
    records: list[Any] = [
        export_format.ManifestRecord(manifest=json.loads(manifest.model_dump_json()))
    ]
    records += books.terms + books.agreements
    for close in books.cycles:
        records.append(cycle_record(close))
        rows = [
            (e.entry_id, e.partner_id, int(e.kind), e.amount_fen, "0x" + e.salt.hex())
            for e in close.entries
        ]
        records += [
            export_format.CycleEntriesRecord(cycle_id=close.cycle_id, entries=list(chunk))
            for chunk in export_format.chunk_rows(rows)
        ]
    for cycle_id, leaves in books.line_states.items():
        root = build_tree([compute_line_leaf(a, cycle_id, Fen(o)) for a, o in leaves]).root
        records.append(
            export_format.LineStateRecord(
                cycle_id=cycle_id,
                leaf_count=len(leaves),
                total_outstanding_fen=sum(o for _a, o in leaves),
                root="0x" + root.hex(),
            )
        )
        records += [
            export_format.LineStateLeavesRecord(cycle_id=cycle_id, leaves=list(chunk))
            for chunk in export_format.chunk_rows(leaves)
        ]
    return records


def _deploy(folder: Path, rpc_url: str) -> tuple[Manifest, Path, _Seeder, LocalAccounts]:
    w3 = connect(rpc_url)
    compiled = compile_contracts()
    accounts = LocalAccounts()
    context = DeployContext.for_development(accounts, dispute_window_s=0)
    manifest = ensure_deployed(
        w3, compiled, accounts.deployer, DEFAULT_PLAN, folder / "deployments", context=context
    )
    addresses = {name: manifest.get_address(name) for name in manifest.contracts}
    token = compiled.artifact("SettlementToken")
    mint = w3.eth.contract(abi=token.abi).encode_abi(
        "mint", args=[accounts.relayer.address, MINT_FEN]
    )
    send_transaction(w3, accounts.deployer, {"to": addresses["SettlementToken"], "data": mint})  # type: ignore[typeddict-item]
    sender = TxSender(
        JsonRpcClient(rpc_url, timeout_s=RPC_TIMEOUT_S), accounts.relayer, manifest.chain_id
    )
    sender.sync_nonce()
    sender.rpc.call("evm_setAutomine", [False])
    codecs = {name: ContractCodec(compiled.artifact(name).abi) for name in manifest.contracts}
    seeder = _Seeder(sender, sender.fetch_fees(), dict(addresses), codecs)
    return manifest, get_manifest_path(folder / "deployments", manifest.chain_id), seeder, accounts


def run_audit_bench(agreements: int = 10_000, cycles: int = 365, sample: int = 100) -> Figures:
    """Seed the history, export the books, audit; figures in seconds and counts."""
    with tempfile.TemporaryDirectory(prefix="creditnet-bench-audit-") as tmp:
        folder = Path(tmp)
        with AnvilProcess(pick_free_port(), None, log_path=folder / "anvil.log") as anvil:
            manifest, manifest_path, seeder, accounts = _deploy(folder, anvil.rpc_url)
            started = time.perf_counter()
            books = _seed(seeder, accounts, manifest.chain_id, agreements, cycles)
            seeded_s = time.perf_counter() - started
            export_path = folder / "books.ndjson"
            export = b"".join(
                export_format.encode_export(manifest.chain_id, _export_records(manifest, books))
            )
            export_path.write_bytes(export)
            config = AuditConfig(
                rpc_url=anvil.rpc_url,
                manifest_path=manifest_path,
                export_path=export_path,
                sample_size=sample,
                cache_dir=folder / "compile-cache",
            )
            started = time.perf_counter()
            report = run_audit(config)
            audit_s = time.perf_counter() - started
    return {
        "agreements": agreements,
        "cycles": cycles,
        "transactions_seeded": len(seeder.sent),
        "seed_elapsed_s": round(seeded_s, 3),
        "export_bytes": len(export),
        "export_rows": count_export_rows(books),
        "audit_elapsed_s": round(audit_s, 3),
        "target_s": 60,
        "passed": report.passed,
        "failed_checks": [check.id for check in report.failed_checks()],
        "events": report.summary["events"],
        "phases_s": {k: v for k, v in report.summary.items() if k.startswith("elapsed_")},
        "audited_block": report.audited_block,
    }


def count_export_rows(books: _Books) -> int:
    """Rows the export carries (entries + line-state leaves + agreements)."""
    entries = sum(close.entry_count for close in books.cycles)
    leaves = sum(len(leaves) for leaves in books.line_states.values())
    return entries + leaves + len(books.agreements)
