"""Proofs built by this project verify on-chain with `ClearingHouse.verifyEntry`
(OpenZeppelin `MerkleProof`), and a tampered entry, amount or proof does not; the
hand-encoded calls a partner uses match the compiled ABI."""

from __future__ import annotations

import random
from dataclasses import replace
from typing import Any, cast

import pytest
from eth_typing import ABIFunction
from eth_utils.abi import abi_to_signature
from web3 import Web3
from web3.contract import Contract

from node_api.kernel.chain import CycleStatus, EntryKind
from oracles.chain import LocalAccounts, send_transaction
from oracles.compiler import CompiledContracts
from oracles.eip712 import cycle_report_digest, sorted_signatures
from scripts.bench.tree import make_events, make_products
from settlement.allocation import allocate_to_entries
from settlement.clearing_calls import (
    CLEARING_HOUSE_CALLS,
    TOKEN_CALLS,
    CycleView,
    encode_verify_entry,
)
from settlement.entries import SettlementEntry
from settlement.netting import ClosedCycle, close_cycle
from settlement.salts import LeafSalts

pytestmark = pytest.mark.chain

CYCLE_ID = 20_250_303
SALTS = LeafSalts(b"test-onchain-proofs-leaf-salt-secret")


def _close() -> ClosedCycle:
    """A realistic cycle of a few hundred entries over 50 partners (the bench's products)."""
    rng = random.Random(3)
    products = make_products(rng)
    entries: list[SettlementEntry] = []
    for product_number, event in make_events(rng, 80, products):
        entries += allocate_to_entries(
            event,
            products[product_number],
            cycle_id=CYCLE_ID,
            first_entry_id=len(entries) + 1,
            salts=SALTS,
        )
    return close_cycle(CYCLE_ID, entries)


def _send(w3: Web3, account: Any, contract: Contract, function: str, *args: Any) -> None:
    data = contract.encode_abi(function, args=list(args))
    send_transaction(w3, account, {"to": contract.address, "data": data, "gas": 3_000_000})


@pytest.fixture
def proposed(
    chain: Web3, deployed_contracts: dict[str, Contract], dev_accounts: LocalAccounts
) -> ClosedCycle:
    close = _close()
    house = deployed_contracts["ClearingHouse"]
    for partner_id in close.partner_ids:
        _send(chain, dev_accounts.relayer, house, "registerPartner", partner_id, 1,
              dev_accounts.account(9).address)  # fmt: skip
    digest = cycle_report_digest(
        chain.eth.chain_id,
        house.address,
        CYCLE_ID,
        close.root,
        close.entry_count,
        close.partner_ids,
        close.net_positions_fen,
    )
    signatures = sorted_signatures(dev_accounts.signers(3)[:2], digest)
    args = (CYCLE_ID, close.root, close.entry_count, list(close.partner_ids),
            list(close.net_positions_fen), signatures)  # fmt: skip
    _send(chain, dev_accounts.relayer, house, "proposeCycle", *args)
    return close


def _verify_on_chain(w3: Web3, house: Contract, entry: SettlementEntry, proof: Any) -> bool:
    output = w3.eth.call({"to": house.address, "data": encode_verify_entry(entry, proof)})
    return int.from_bytes(bytes(output)[-32:], "big") == 1


def test_every_sampled_proof_verifies_with_the_contract(
    proposed: ClosedCycle, chain: Web3, deployed_contracts: dict[str, Contract]
) -> None:
    house = deployed_contracts["ClearingHouse"]
    on_chain = CycleView.decode(bytes(chain.eth.call({"to": house.address,
        "data": house.encode_abi("getCycle", args=[CYCLE_ID])})))  # fmt: skip
    assert on_chain.status is CycleStatus.PROPOSED
    assert on_chain.entries_root == proposed.root
    assert on_chain.entry_count == proposed.entry_count
    rng = random.Random(5)
    for index in rng.sample(range(proposed.entry_count), 25):
        entry = proposed.entries[index]
        assert _verify_on_chain(chain, house, entry, proposed.tree.proof(index))


def test_RevertWhen_an_entry_amount_or_proof_is_tampered_the_contract_refuses(
    proposed: ClosedCycle, chain: Web3, deployed_contracts: dict[str, Contract]
) -> None:
    house = deployed_contracts["ClearingHouse"]
    entry = proposed.entries[17]
    proof = proposed.tree.proof(17)
    other_kind = (
        EntryKind.SERVICE_FEE if entry.kind is not EntryKind.SERVICE_FEE else EntryKind.REFUND
    )
    tampered_entries = [
        replace(entry, amount_fen=entry.amount_fen + 1),
        replace(entry, amount_fen=-entry.amount_fen),
        replace(entry, entry_id=entry.entry_id + 1),
        replace(entry, partner_id=entry.partner_id + 1),
        replace(entry, kind=other_kind),
        replace(entry, cycle_id=CYCLE_ID + 1),
        replace(entry, salt=bytes(32)),
        replace(entry, salt=SALTS.salt(CYCLE_ID, entry.entry_id, entry.partner_id + 1)),
    ]
    for tampered in tampered_entries:
        assert not _verify_on_chain(chain, house, tampered, proof)
    flipped = bytes([proof[0][0] ^ 1]) + proof[0][1:]
    for bad_proof in ([flipped, *proof[1:]], proof[:-1], [*proof, proof[0]], proof[::-1]):
        assert not _verify_on_chain(chain, house, entry, bad_proof)
    assert _verify_on_chain(chain, house, entry, proof)


def test_the_partner_calls_match_the_compiled_abi(compiled: CompiledContracts) -> None:
    def signatures(name: str) -> set[str]:
        abi = compiled.artifact(name).abi
        functions = [item for item in abi if item.get("type") == "function"]
        return {abi_to_signature(cast(ABIFunction, item)) for item in functions}

    house, token = signatures("ClearingHouse"), signatures("SettlementToken")
    assert {call.signature for call in CLEARING_HOUSE_CALLS} <= house
    assert {call.signature for call in TOKEN_CALLS} <= token
