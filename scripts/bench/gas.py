"""`creditnet bench gas`: the gas every contract operation costs, as one JSON-able dict.

Deploys a fresh network with DEFAULT_PLAN (dispute window 0, funding window 1 s) on its
own anvil, or on `rpc_url` when given (an anvil dev chain whose first accounts are
anvil's funded dev accounts; the bench moves its clock 2 s forward), then measures:
deployment per contract (the NetworkTimelock apart, under `governance_deploy_gas`);
opening agreements per agreement at batch sizes 1, 10 and 100; proposing a cycle with
5, 20 and 100 partners; the same 5-partner proposal committing 1,000 vs 1,000,000
entries (only the root and the count reach the chain, so the execution gas must be
equal); funding; claiming; declaring a default naming 1 and 50 defaulters; refunding a
funded debtor of a defaulted cycle; and verifying a salted entry with a depth-20 proof
(the depth of a 1M-entry tree).

`gas` figures are whole-transaction gas used (21,000 base and calldata included);
`execution_gas` figures subtract the intrinsic cost (base + calldata), which differs
between two calls only by how many zero bytes their arguments happen to contain.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from eth_abi.abi import encode as abi_encode
from eth_account.signers.local import LocalAccount
from eth_typing import HexStr
from eth_utils.crypto import keccak
from web3 import Web3
from web3.contract import Contract
from web3.types import TxParams, TxReceipt

from node_api.kernel.chain import ContractName
from oracles.anvil import AnvilProcess, pick_free_port
from oracles.chain import LocalAccounts, connect, send_transaction
from oracles.compiler import CompiledContracts, compile_contracts
from oracles.deploy import DeployContext, deploy_plan
from oracles.deploy_plan import (
    DEFAULT_PLAN,
)
from oracles.eip712 import cycle_report_digest, sorted_signatures
from scripts.bench.figures import Figures

AGREEMENT_BATCH_SIZES: Final = (1, 10, 100)
CYCLE_PARTNER_COUNTS: Final = (5, 20, 100)
SMALL_CYCLE_ENTRIES: Final = 1_000
LARGE_CYCLE_ENTRIES: Final = 1_000_000
PROOF_DEPTH: Final = 20
TARGET_OPEN_BATCH_100_GAS_PER_AGREEMENT: Final = 60_000
TARGET_CLAIM_GAS: Final = 80_000
TARGET_REFUND_GAS: Final = 80_000
FUNDING_WINDOW_S: Final = 1
BASE_TX_GAS: Final = 21_000
ZERO_BYTE_GAS: Final = 4
NONZERO_BYTE_GAS: Final = 16
FIRST_CYCLE_ID: Final = 20_261_101
GOVERNANCE_CONTRACTS: Final = (ContractName.NETWORK_TIMELOCK,)
BENCH_MINT_FEN: Final = 10**15


def compute_intrinsic_gas(calldata: bytes) -> int:
    """Base transaction cost plus calldata cost (EIP-2028: 4 per zero byte, 16 otherwise)."""
    zeros = calldata.count(0)
    return BASE_TX_GAS + ZERO_BYTE_GAS * zeros + NONZERO_BYTE_GAS * (len(calldata) - zeros)


def compute_entry_leaf(
    cycle_id: int, entry_id: int, partner_id: int, kind: int, amount_fen: int, salt: bytes
) -> bytes:
    """The salted settlement leaf: keccak256(keccak256(abi.encode(...))), StandardMerkleTree
    style."""
    encoded = abi_encode(
        ["uint64", "uint64", "uint32", "uint8", "int256", "bytes32"],
        [cycle_id, entry_id, partner_id, kind, amount_fen, salt],
    )
    return keccak(keccak(encoded))


def compute_bench_salt(cycle_id: int, entry_id: int) -> bytes:
    """A deterministic 32-byte salt per entry (the books derive theirs with an HMAC)."""
    return keccak(b"bench-salt" + cycle_id.to_bytes(8, "big") + entry_id.to_bytes(8, "big"))


def _hash_pair(left: bytes, right: bytes) -> bytes:
    return keccak(left + right) if left < right else keccak(right + left)


def compute_root_from_proof(leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """The root a sorted-pair Merkle proof leads to (what `MerkleProof.verify` computes)."""
    node = leaf
    for sibling in proof:
        node = _hash_pair(node, sibling)
    return node


def compute_tree_root(leaves: Sequence[bytes]) -> bytes:
    """Root of a sorted-pair Merkle tree over `leaves` (pairs level by level, an odd
    node carried up), enough to commit a realistic root for the small cycle."""
    level = sorted(leaves)
    while len(level) > 1:
        paired = [_hash_pair(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        level = paired + ([level[-1]] if len(level) % 2 else [])
    return level[0]


def compute_balanced_positions(partner_count: int) -> list[int]:
    """Non-zero net positions in fen, alternating creditor/debtor, summing to zero."""
    positions = [
        (index + 1) * 1_000 * (1 if index % 2 == 0 else -1) for index in range(partner_count - 1)
    ]
    positions.append(-sum(positions))
    return positions


@dataclass
class _Bench:
    """The deployed network and the accounts a measurement needs."""

    w3: Web3
    contracts: dict[str, Contract]
    admin: LocalAccount
    relayer: LocalAccount
    signers: list[LocalAccount]

    def send(self, account: LocalAccount, name: str, function: str, *args: Any) -> TxReceipt:
        contract = self.contracts[name]
        data = contract.encode_abi(function, args=list(args))
        tx: TxParams = {"to": contract.address, "data": HexStr(data)}
        return send_transaction(self.w3, account, tx)

    def advance_time(self, seconds: int) -> None:
        """Move the (anvil) chain clock forward and mine a block."""
        self.w3.provider.make_request("evm_increaseTime", [seconds])  # type: ignore[arg-type]
        self.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]

    def execution_gas(self, receipt: TxReceipt) -> int:
        tx = self.w3.eth.get_transaction(receipt["transactionHash"])
        return int(receipt["gasUsed"]) - compute_intrinsic_gas(bytes(tx["input"]))


def _payout_address(partner_id: int) -> str:
    """A fresh, never-used payout address per partner (claims then pay the worst case:
    a zero balance becoming non-zero)."""
    return Web3.to_checksum_address(keccak(b"bench-payout" + partner_id.to_bytes(4, "big"))[12:])


def _measure_deploy(w3: Web3, deploy_txs: dict[str, str]) -> dict[str, int]:
    return {
        name: int(w3.eth.get_transaction_receipt(HexStr(tx))["gasUsed"])
        for name, tx in deploy_txs.items()
    }


def _measure_open_agreements(bench: _Bench) -> dict[str, int]:
    """Gas per agreement at each batch size: transaction gas / batch size, rounded down."""
    figures: dict[str, int] = {}
    serial = 0
    for size in AGREEMENT_BATCH_SIZES:
        items = []
        for _ in range(size):
            serial += 1
            tag = serial.to_bytes(8, "big")
            items.append(
                (
                    keccak(b"agreement" + tag),
                    keccak(b"borrower" + tag),
                    keccak(b"terms" + tag),
                    1001,
                    5_000_000,
                    1_800,
                    1_795_824_000,
                )
            )
        receipt = bench.send(bench.relayer, ContractName.CREDIT_REGISTRY, "openAgreements", items)
        figures[f"batch_{size}"] = int(receipt["gasUsed"]) // size
    return figures


def _propose(
    bench: _Bench, cycle_id: int, root: bytes, entry_count: int, positions: list[int]
) -> TxReceipt:
    """Propose a cycle listing partners 1..len(positions), signed by a quorum."""
    partner_ids = list(range(1, len(positions) + 1))
    clearing_house = bench.contracts[ContractName.CLEARING_HOUSE]
    digest = cycle_report_digest(
        bench.w3.eth.chain_id,
        clearing_house.address,
        cycle_id,
        root,
        entry_count,
        partner_ids,
        positions,
    )
    signatures = sorted_signatures(bench.signers, digest)
    return bench.send(
        bench.relayer,
        ContractName.CLEARING_HOUSE,
        "proposeCycle",
        cycle_id,
        root,
        entry_count,
        partner_ids,
        positions,
        signatures,
    )


def _measure_by_partner_count(bench: _Bench, first_cycle_id: int) -> dict[str, int]:
    """Proposal gas with 5, 20 and 100 listed partners (cycle ids from `first_cycle_id`)."""
    for partner_id in range(1, max(CYCLE_PARTNER_COUNTS) + 1):
        payout = _payout_address(partner_id)
        bench.send(
            bench.relayer, ContractName.CLEARING_HOUSE, "registerPartner", partner_id, 1, payout
        )
    figures: dict[str, int] = {}
    for offset, count in enumerate(CYCLE_PARTNER_COUNTS):
        root = keccak(b"bench-root" + count.to_bytes(4, "big"))
        positions = compute_balanced_positions(count)
        receipt = _propose(bench, first_cycle_id + offset, root, 2 * count, positions)
        figures[f"partners_{count}"] = int(receipt["gasUsed"])
    return figures


@dataclass(frozen=True)
class _LargeCycle:
    """The 1M-entry cycle: one of its leaves and that leaf's depth-20 proof."""

    cycle_id: int
    positions: list[int]
    entry: tuple[int, int, int, int, bytes]  # entry id, partner id, kind, amount fen, salt
    proof: list[bytes]


def _measure_by_entry_count(bench: _Bench, small_id: int) -> tuple[dict[str, int], _LargeCycle]:
    """The same 5-partner proposal committing a real 1,000-entry tree and a 1,000,000-entry
    root (built from a depth-20 path, the shape of a 1M tree: the contract only ever sees
    the root and the count)."""
    positions = compute_balanced_positions(CYCLE_PARTNER_COUNTS[0])
    small_leaves = [
        compute_entry_leaf(
            small_id,
            entry,
            1 + entry % len(positions),
            1,
            entry,
            compute_bench_salt(small_id, entry),
        )
        for entry in range(SMALL_CYCLE_ENTRIES)
    ]
    small_root = compute_tree_root(small_leaves)
    small = _propose(bench, small_id, small_root, SMALL_CYCLE_ENTRIES, positions)
    large_id = small_id + 1
    large = _LargeCycle(
        cycle_id=large_id,
        positions=positions,
        entry=(7, 1, 1, positions[0], compute_bench_salt(large_id, 7)),
        proof=[keccak(b"sibling" + level.to_bytes(1, "big")) for level in range(PROOF_DEPTH)],
    )
    large_root = compute_root_from_proof(
        compute_entry_leaf(large.cycle_id, *large.entry), large.proof
    )
    large_receipt = _propose(bench, large.cycle_id, large_root, LARGE_CYCLE_ENTRIES, positions)
    figures = {
        f"entries_{SMALL_CYCLE_ENTRIES}_gas": int(small["gasUsed"]),
        f"entries_{LARGE_CYCLE_ENTRIES}_gas": int(large_receipt["gasUsed"]),
        f"entries_{SMALL_CYCLE_ENTRIES}_execution_gas": bench.execution_gas(small),
        f"entries_{LARGE_CYCLE_ENTRIES}_execution_gas": bench.execution_gas(large_receipt),
    }
    return figures, large


def _measure_verify_entry(bench: _Bench, large: _LargeCycle) -> dict[str, int]:
    """Gas of `verifyEntry` with the depth-20 proof, as a transaction would pay it."""
    clearing_house = bench.contracts[ContractName.CLEARING_HOUSE]
    args = [large.cycle_id, *large.entry, large.proof]
    if not clearing_house.functions.verifyEntry(*args).call():
        raise AssertionError("the depth-20 proof does not verify")
    data = clearing_house.encode_abi("verifyEntry", args=args)
    gas = int(bench.w3.eth.estimate_gas({"to": clearing_house.address, "data": HexStr(data)}))
    return {
        "verify_entry_depth_20_gas": gas,
        "verify_entry_depth_20_execution_gas": gas - compute_intrinsic_gas(bytes.fromhex(data[2:])),
    }


def _measure_settlement(bench: _Bench) -> dict[str, Any]:
    """Proposals by partner count and entry count, then fund, claim, verifyEntry, and a
    default with its refund."""
    by_partners = _measure_by_partner_count(bench, FIRST_CYCLE_ID)
    by_entries, large = _measure_by_entry_count(bench, FIRST_CYCLE_ID + len(CYCLE_PARTNER_COUNTS))
    largest_id = FIRST_CYCLE_ID + len(CYCLE_PARTNER_COUNTS) - 1
    return {
        "propose_cycle_gas": by_partners,
        "propose_cycle_by_entry_count": by_entries,
        **_measure_fund_and_claim(bench, large.cycle_id, large.positions),
        **_measure_verify_entry(bench, large),
        **_measure_default_and_refund(
            bench,
            FIRST_CYCLE_ID + len(CYCLE_PARTNER_COUNTS) + 2,
            (largest_id, compute_balanced_positions(CYCLE_PARTNER_COUNTS[-1])),
        ),
    }


def _debtors(positions: list[int]) -> list[int]:
    """Partner ids (1-based, as proposed) of the net debtors."""
    return [index + 1 for index, fen in enumerate(positions) if fen < 0]


def _measure_default_and_refund(
    bench: _Bench, cycle_id: int, unfunded: tuple[int, list[int]]
) -> dict[str, Any]:
    """A 5-partner cycle whose first debtor funds and second never does: declareDefault
    naming the one defaulter, then the funded debtor's refund (to a fresh payout address,
    the worst case like a claim). And the `unfunded` (cycle id, positions) cycle, already
    proposed, which nobody funds: declareDefault naming every one of its debtors."""
    positions = compute_balanced_positions(CYCLE_PARTNER_COUNTS[0])
    _propose(bench, cycle_id, keccak(b"bench-default-root"), 10, positions)
    big_id, big_positions = unfunded
    for finalized in (cycle_id, big_id):
        bench.send(bench.admin, ContractName.CLEARING_HOUSE, "finalize", finalized)
    funder, *defaulters = _debtors(positions)
    bench.send(bench.admin, ContractName.CLEARING_HOUSE, "fund", cycle_id, funder)
    bench.advance_time(FUNDING_WINDOW_S + 1)
    declare = bench.send(
        bench.admin, ContractName.CLEARING_HOUSE, "declareDefault", cycle_id, defaulters
    )
    refund = bench.send(bench.admin, ContractName.CLEARING_HOUSE, "refund", cycle_id, funder)
    all_debtors = _debtors(big_positions)
    declare_all = bench.send(
        bench.admin, ContractName.CLEARING_HOUSE, "declareDefault", big_id, all_debtors
    )
    return {
        "declare_default_gas": {
            f"defaulters_{len(defaulters)}": int(declare["gasUsed"]),
            f"defaulters_{len(all_debtors)}": int(declare_all["gasUsed"]),
        },
        "refund_gas": int(refund["gasUsed"]),
    }


def _measure_fund_and_claim(bench: _Bench, cycle_id: int, positions: list[int]) -> dict[str, int]:
    """Finalize (window 0), fund every debtor from the admin, then one creditor's claim."""
    bench.send(bench.admin, ContractName.CLEARING_HOUSE, "finalize", cycle_id)
    clearing_house = bench.contracts[ContractName.CLEARING_HOUSE].address
    bench.send(
        bench.admin, ContractName.SETTLEMENT_TOKEN, "mint", bench.admin.address, BENCH_MINT_FEN
    )
    bench.send(
        bench.admin, ContractName.SETTLEMENT_TOKEN, "approve", clearing_house, BENCH_MINT_FEN
    )
    debtors = [index + 1 for index, fen in enumerate(positions) if fen < 0]
    fund_receipts = [
        bench.send(bench.admin, ContractName.CLEARING_HOUSE, "fund", cycle_id, p) for p in debtors
    ]
    creditor = next(index + 1 for index, fen in enumerate(positions) if fen > 0)
    claim = bench.send(bench.admin, ContractName.CLEARING_HOUSE, "claim", cycle_id, creditor)
    return {
        "fund_gas": int(fund_receipts[0]["gasUsed"]),
        "fund_completing_cycle_gas": int(fund_receipts[-1]["gasUsed"]),
        "claim_gas": int(claim["gasUsed"]),
    }


def _measure(w3: Web3, compiled: CompiledContracts) -> Figures:
    accounts = LocalAccounts()
    context = DeployContext.for_development(
        accounts, dispute_window_s=0, funding_window_s=FUNDING_WINDOW_S
    )
    manifest = deploy_plan(w3, compiled, accounts.deployer, DEFAULT_PLAN, context)
    contracts = {
        name: w3.eth.contract(
            address=Web3.to_checksum_address(record.address), abi=compiled.artifact(name).abi
        )
        for name, record in manifest.contracts.items()
    }
    bench = _Bench(
        w3, contracts, accounts.deployer, accounts.relayer, accounts.signers(context.threshold)
    )
    deploy_gas = _measure_deploy(
        w3, {name: record.deploy_tx for name, record in manifest.contracts.items()}
    )
    governance_deploy_gas = {
        name: deploy_gas.pop(name) for name in GOVERNANCE_CONTRACTS if name in deploy_gas
    }
    open_gas = _measure_open_agreements(bench)
    settlement = _measure_settlement(bench)
    by_entries = settlement["propose_cycle_by_entry_count"]
    return {
        "chain_id": w3.eth.chain_id,
        "compiler_version": compiled.compiler_version,
        "deploy_gas": deploy_gas,
        "governance_deploy_gas": governance_deploy_gas,
        "open_agreements_gas_per_agreement": open_gas,
        **settlement,
        "targets": {
            "open_batch_100_gas_per_agreement_max": TARGET_OPEN_BATCH_100_GAS_PER_AGREEMENT,
            "claim_gas_max": TARGET_CLAIM_GAS,
            "open_batch_100_met": open_gas["batch_100"] < TARGET_OPEN_BATCH_100_GAS_PER_AGREEMENT,
            "claim_met": settlement["claim_gas"] < TARGET_CLAIM_GAS,
            "refund_gas_max": TARGET_REFUND_GAS,
            "refund_met": settlement["refund_gas"] < TARGET_REFUND_GAS,
            "cycle_cost_independent_of_entries": by_entries[
                f"entries_{SMALL_CYCLE_ENTRIES}_execution_gas"
            ]
            == by_entries[f"entries_{LARGE_CYCLE_ENTRIES}_execution_gas"],
        },
    }


def run_gas_bench(rpc_url: str | None = None) -> Figures:
    """Measure every operation's gas on a fresh deployment; see the module docstring.

    Without `rpc_url`, starts (and stops) its own anvil on a free port.
    """
    compiled = compile_contracts()
    if rpc_url is not None:
        return _measure(connect(rpc_url), compiled)
    with AnvilProcess(pick_free_port(), state_path=None) as anvil:
        return _measure(connect(anvil.rpc_url), compiled)
