"""`creditnet bench settle`: close a cycle of 100,000 and 1,000,000 entries and submit it.

`--set sizes=10000000` (or `sizes=100000,1000000`) picks the sizes; `entries=N` one size.

For each size: allocate a synthetic but realistic day of money events to entries across
50 partners (`scripts.bench.tree`), sort, net (Σ = 0), hash the leaves, build the tree,
cut every proof, serialise the tree (the one blob the books store), then submit the
quorum-signed proposal to a local anvil (started here, the network deployed by the
default plan, the 50 partners registered once). Figures per size: wall and CPU seconds
per phase and in total (generation of the random events excluded), the submission's gas
(it must not grow with the number of entries: only the root and the count go on-chain),
proof size, local verification time, `verifyEntry` gas, and proof-on-demand time from the
stored tree. `--set store=1` also times writing the frozen cycle (entries, positions,
tree blob) to a fresh SQLite file, reported apart from the total. Each run also reports
the process's peak resident memory (`peak_rss_mib`, the close and the checks after it)
and the load average before and after it (the machine is shared).

Targets on the 2-core reference machine: 1,000,000 entries in under 30 s; 10,000,000 in
under 120 s with a peak under 4 GiB (issue #20).
"""

from __future__ import annotations

import random
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract import Contract

from node_api.kernel.chain import ContractName
from node_api.kernel.db import Database
from node_api.schema.migrate import migrate
from oracles.anvil import AnvilProcess, pick_free_port, revert_to_snapshot, take_snapshot
from oracles.chain import LocalAccounts, connect, send_transaction
from oracles.compiler import compile_contracts
from oracles.deploy import DeployContext, deploy_plan
from oracles.deploy_plan import DEFAULT_PLAN
from oracles.eip712 import cycle_report_digest, sorted_signatures
from scripts.bench.figures import Figures
from scripts.bench.gas import compute_intrinsic_gas
from scripts.bench.tree import (
    CHANNEL_IDS,
    CLOSE_PHASES,
    FUNDER_IDS,
    GUARANTOR_IDS,
    LENDER_ID,
    close_synthetic_cycle,
    get_load_average,
    get_peak_rss_mib,
)
from settlement.clearing_calls import encode_verify_entry
from settlement.cycle_close import store_close
from settlement.merkle import MerkleTree, verify
from settlement.netting import ClosedCycle

DEFAULT_SIZES = (100_000, 1_000_000)
ONCHAIN_SAMPLE = 50
LOCAL_SAMPLE = 10_000
PROPOSE_GAS_LIMIT = 6_000_000
TARGET_1M_S = 30.0
TARGET_10M_S = 120.0
TARGET_10M_PEAK_MIB = 4096.0


@dataclass
class _Chain:
    """The benchmark's network: web3, the ClearingHouse, relayer and signer accounts."""

    w3: Web3
    house: Contract
    relayer: LocalAccount
    signers: list[LocalAccount]


def _start_network(anvil: AnvilProcess) -> _Chain:
    w3 = connect(anvil.rpc_url)
    compiled = compile_contracts()
    accounts = LocalAccounts()
    context = DeployContext.for_development(accounts, dispute_window_s=0)
    manifest = deploy_plan(w3, compiled, accounts.deployer, DEFAULT_PLAN, context)
    house = w3.eth.contract(
        address=Web3.to_checksum_address(manifest.get_address(ContractName.CLEARING_HOUSE)),
        abi=compiled.artifact(ContractName.CLEARING_HOUSE).abi,
    )
    return _Chain(w3, house, accounts.relayer, accounts.signers(context.threshold))


def _register_partners(chain: _Chain, partner_ids: tuple[int, ...]) -> None:
    payout = LocalAccounts().account(9).address
    for partner_id in partner_ids:
        data = chain.house.encode_abi("registerPartner", args=[partner_id, 1, payout])
        send_transaction(
            chain.w3, chain.relayer, {"to": chain.house.address, "data": data, "gas": 200_000}
        )


@dataclass(frozen=True)
class _Submission:
    """What proposing one cycle cost: seconds, gas, calldata."""

    elapsed_s: float
    gas: int
    execution_gas: int
    calldata_bytes: int

    def figures(self) -> Figures:
        return {
            "submit_elapsed_s": self.elapsed_s,
            "submit_gas": self.gas,
            "submit_execution_gas": self.execution_gas,
            "submit_calldata_bytes": self.calldata_bytes,
        }


@dataclass(frozen=True)
class _Run:
    """One size's report and the figures the summary compares across sizes."""

    figures: Figures
    entry_count: int
    submission: _Submission
    total_elapsed_s: float


def _submit(chain: _Chain, close: ClosedCycle) -> _Submission:
    """Sign the report with the quorum and propose it; seconds and gas of the submission."""
    started = time.perf_counter()
    digest = cycle_report_digest(
        chain.w3.eth.chain_id,
        chain.house.address,
        close.cycle_id,
        close.root,
        close.entry_count,
        close.partner_ids,
        close.net_positions_fen,
    )
    signatures = sorted_signatures(chain.signers, digest)
    data = chain.house.encode_abi(
        "proposeCycle",
        args=[
            close.cycle_id,
            close.root,
            close.entry_count,
            list(close.partner_ids),
            list(close.net_positions_fen),
            signatures,
        ],
    )
    receipt = send_transaction(
        chain.w3,
        chain.relayer,
        {"to": chain.house.address, "data": data, "gas": PROPOSE_GAS_LIMIT},
    )
    calldata = bytes.fromhex(data[2:])
    gas = int(receipt["gasUsed"])
    return _Submission(
        time.perf_counter() - started, gas, gas - compute_intrinsic_gas(calldata), len(calldata)
    )


def _onchain_verification(chain: _Chain, close: ClosedCycle, rng: random.Random) -> Figures:
    """`verifyEntry` of sampled entries: all must pass; mean gas of the call."""
    sample = rng.sample(range(close.entry_count), min(ONCHAIN_SAMPLE, close.entry_count))
    gas = []
    for index in sample:
        call = {
            "to": chain.house.address,
            "data": encode_verify_entry(close.entries[index], close.tree.proof(index)),
        }
        output = bytes(chain.w3.eth.call(call))  # type: ignore[arg-type]
        if int.from_bytes(output[-32:], "big") != 1:
            raise AssertionError(f"entry {close.entries[index].entry_id} failed on-chain")
        gas.append(int(chain.w3.eth.estimate_gas(call)))  # type: ignore[arg-type]
    return {"verify_entry_gas_mean": sum(gas) / len(gas), "onchain_proofs_checked": len(gas)}


def _proof_timing(close: ClosedCycle, rng: random.Random) -> Figures:
    """Sampled proofs checked against leaves rehashed from the entries (not read from the
    tree), then the stored blob's load time and proofs served from it."""
    tree = close.tree
    sample = rng.sample(range(tree.leaf_count), min(LOCAL_SAMPLE, tree.leaf_count))
    leaves = [close.entries[index].leaf_hash() for index in sample]
    proofs = [tree.proof(index) for index in sample]
    started = time.perf_counter()
    if not all(verify(tree.root, leaf, p) for leaf, p in zip(leaves, proofs, strict=True)):
        raise AssertionError("a proof failed to verify")
    verify_us = (time.perf_counter() - started) / len(sample) * 1e6
    blob = tree.to_bytes()
    started = time.perf_counter()
    restored = MerkleTree.from_bytes(blob)
    load_s = time.perf_counter() - started
    started = time.perf_counter()
    for index in sample:
        restored.proof(index)
    on_demand_us = (time.perf_counter() - started) / len(sample) * 1e6
    return {
        "proof_verify_us": verify_us,
        "proof_on_demand_us": on_demand_us,
        "tree_load_elapsed_s": load_s,
        "tree_blob_bytes": len(blob),
    }


def _store(close: ClosedCycle) -> float:
    """Seconds to write the frozen cycle to a fresh, migrated SQLite file."""
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'bench.db'}"
        migrate(url)
        database = Database(url)
        started = time.perf_counter()
        with database.engine.begin() as conn:
            store_close(conn, date(2025, 1, 1), close, event_count=0)
        elapsed = time.perf_counter() - started
        database.dispose()
    return elapsed


def _run_one(chain: _Chain, n_entries: int, seed: int, store: bool) -> _Run:
    load_before = get_load_average()
    timed = close_synthetic_cycle(n_entries, random.Random(seed))
    close, clock = timed.close, timed.clock
    report: Figures = {
        "entry_count": close.entry_count,
        "partner_count": len(close.partner_ids),
        "creditor_count": sum(1 for amount in close.net_positions_fen if amount > 0),
        "root": "0x" + close.root.hex(),
        "generate_elapsed_s": clock.elapsed_s["generate"],
        "proof_bytes_max": timed.proof_bytes_max,
        "proof_bytes_mean": timed.proof_bytes_mean,
    }
    for name in CLOSE_PHASES:
        report[f"{name}_elapsed_s"] = clock.elapsed_s[name]
        report[f"{name}_cpu_s"] = clock.cpu_s[name]
    snapshot = take_snapshot(chain.w3)  # every size proposes the same cycle id afresh
    submission = _submit(chain, close)
    report.update(submission.figures())
    total_elapsed_s = sum(clock.elapsed_s[name] for name in CLOSE_PHASES) + submission.elapsed_s
    report["total_elapsed_s"] = total_elapsed_s
    report["total_cpu_s"] = sum(clock.cpu_s[name] for name in CLOSE_PHASES)
    rng = random.Random(seed + 1)
    report["close_peak_rss_mib"] = get_peak_rss_mib()
    report.update(_proof_timing(close, rng))
    report.update(_onchain_verification(chain, close, rng))
    revert_to_snapshot(chain.w3, snapshot)
    if store:
        report["store_sqlite_elapsed_s"] = _store(close)
    report["peak_rss_mib"] = get_peak_rss_mib()
    report["load_average_before"] = load_before
    report["load_average_after"] = get_load_average()
    return _Run(report, close.entry_count, submission, total_elapsed_s)


def parse_sizes(sizes: Sequence[int] | int | str | None, entries: int | None) -> tuple[int, ...]:
    """The entry counts to run: `sizes` as a sequence, one int or `"100000,1000000"`."""
    if sizes is None:
        return DEFAULT_SIZES if entries is None else (int(entries),)
    if isinstance(sizes, int):
        return (sizes,)
    if isinstance(sizes, str):
        return tuple(int(part.replace("_", "")) for part in sizes.split(",") if part.strip())
    return tuple(int(size) for size in sizes)


def run_settle_bench(
    entries: int | None = None,
    *,
    seed: int = 7,
    store: int = 0,
    sizes: Sequence[int] | int | str | None = None,
) -> Figures:
    """Close and submit cycles of `entries` entries (or of each of `sizes`; by default
    100,000 and 1,000,000).

    Returns one report per size, the spread of the submission's execution gas across sizes
    (calldata aside, only the root and the count of the entries reach the chain, so it
    depends on the partners alone: one storage slot each, plus a few dozen gas for each
    creditor), and whether the 1M close met its 30 s target.
    """
    runs = []
    with AnvilProcess(pick_free_port(), state_path=None) as anvil:
        chain = _start_network(anvil)
        _register_partners(chain, (LENDER_ID, *FUNDER_IDS, *CHANNEL_IDS, *GUARANTOR_IDS))
        for size in parse_sizes(sizes, entries):
            runs.append(_run_one(chain, size, seed, bool(store)))
    execution = [run.submission.execution_gas for run in runs]
    figures: Figures = {
        "runs": [run.figures for run in runs],
        "submit_gas_by_entries": {str(run.entry_count): run.submission.gas for run in runs},
        "submit_execution_gas_spread": max(execution) - min(execution),
    }
    million = [run for run in runs if 1_000_000 <= run.entry_count < 10_000_000]
    if million:
        figures["target_1m_s"] = TARGET_1M_S
        figures["met_1m_target"] = million[0].total_elapsed_s < TARGET_1M_S
    ten_million = [run for run in runs if run.entry_count >= 10_000_000]
    if ten_million:
        peak_mib = float(ten_million[0].figures["peak_rss_mib"])  # type: ignore[arg-type]
        figures["target_10m_s"] = TARGET_10M_S
        figures["target_10m_peak_mib"] = TARGET_10M_PEAK_MIB
        figures["met_10m_target"] = (
            ten_million[0].total_elapsed_s < TARGET_10M_S and peak_mib < TARGET_10M_PEAK_MIB
        )
    return figures
