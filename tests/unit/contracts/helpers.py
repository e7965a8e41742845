"""Helpers for the contract tests: the deployed network, sending, reverts, time, Merkle trees.

The tests deploy the four network contracts themselves (`deploy_network`), with the
deployer holding the admin and pauser roles directly, so they test the contracts and
not a deployment plan (the timelocked deployment has its own tests).

Transactions are signed locally (like the node does) with a fixed gas allowance, so a
test sends one transaction in three RPC round trips. Expected reverts are checked with
`eth_call` from the same sender on the same state, and decoded against the custom
errors of every contract ABI, so a test names the exact error and its arguments.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode
from eth_account.signers.local import LocalAccount
from eth_utils.abi import (
    abi_to_signature,
    function_signature_to_4byte_selector,
    get_abi_input_types,
)
from eth_utils.crypto import keccak
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import ContractLogicError
from web3.logs import DISCARD
from web3.types import TxReceipt

from oracles.chain import LocalAccounts
from oracles.compiler import CompiledContracts, ContractArtifact
from oracles.eip712 import cycle_report_digest, line_state_report_digest, sorted_signatures

GAS_PER_TX = 12_000_000
MAX_FEE_PER_GAS_WEI = 50 * 10**9
DISPUTE_WINDOW_S = 3_600
FUNDING_WINDOW_S = 7_200
SIGNER_COUNT = 3
THRESHOLD = 2
FIRST_PARTNER_INDEX = 5
PARTNER_COUNT = 4
OUTSIDER_INDEX = 9

# Agreement statuses (CreditRegistry).
ACTIVE, FROZEN, CLOSED, DEFAULTED, CHARGED_OFF = 1, 2, 3, 4, 5
# Cycle statuses (ClearingHouse); a defaulted cycle is CYCLE_DEFAULTED, not DEFAULTED.
NONE, PROPOSED, DISPUTED, FINALIZED, FUNDED, REJECTED = 0, 1, 2, 3, 4, 5
CYCLE_DEFAULTED = 6
LENDER, FUNDER, CHANNEL, GUARANTOR = 0, 1, 2, 3

RELAYER_ROLE = bytes(Web3.keccak(text="RELAYER_ROLE"))
PAUSER_ROLE = bytes(Web3.keccak(text="PAUSER_ROLE"))
CONSUMER_ROLE = bytes(Web3.keccak(text="CONSUMER_ROLE"))
MINTER_ROLE = bytes(Web3.keccak(text="MINTER_ROLE"))
DEFAULT_ADMIN_ROLE = bytes(32)


class Reverted(AssertionError):
    """A call expected to succeed reverted, or one expected to revert did otherwise."""


@dataclass
class Network:
    """The deployed contracts and the accounts that play each part."""

    w3: Web3
    compiled: CompiledContracts
    token: Contract
    quorum: Contract
    registry: Contract
    clearing_house: Contract
    admin: LocalAccount
    relayer: LocalAccount
    signers: list[LocalAccount]
    threshold: int
    partners: list[LocalAccount]
    outsider: LocalAccount
    chain_id: int
    errors: dict[bytes, tuple[str, list[str]]] = field(default_factory=dict)

    def contract(self, name: str, address: str) -> Contract:
        """A web3 contract object for the compiled contract `name` at `address`."""
        abi = self.compiled.artifact(name).abi
        return self.w3.eth.contract(address=Web3.to_checksum_address(address), abi=abi)


def sign_and_send(
    w3: Web3, chain_id: int, account: LocalAccount, to: str | None, data: str
) -> TxReceipt:
    """Sign and send `data` to `to` (None: create a contract); the receipt, whatever its status."""
    tx: dict[str, Any] = {
        "data": data,
        "gas": GAS_PER_TX,
        "maxFeePerGas": MAX_FEE_PER_GAS_WEI,
        "maxPriorityFeePerGas": 0,
        "nonce": w3.eth.get_transaction_count(account.address),
        "chainId": chain_id,
    }
    if to is not None:
        tx["to"] = to
    signed = account.sign_transaction(tx)
    tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
    return w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30)


def encode_constructor_args(artifact: ContractArtifact, args: Sequence[Any]) -> str:
    """The ABI-encoded constructor arguments as 0x-hex ("0x" when there are none)."""
    constructor = next((item for item in artifact.abi if item["type"] == "constructor"), None)
    types = get_abi_input_types(constructor) if constructor is not None else []  # type: ignore[arg-type]
    if len(types) != len(args):
        raise TypeError(
            f"{artifact.name} constructor takes {len(types)} arguments, got {len(args)}"
        )
    return "0x" + abi_encode(types, list(args)).hex()


def deploy_network(w3: Web3, compiled: CompiledContracts, dev_accounts: LocalAccounts) -> Network:
    """Deploy SettlementToken, OracleQuorum (3 signers, threshold 2), CreditRegistry and
    ClearingHouse (dispute window 1 h, funding window 2 h) from account 0, and wire them:
    the relayer (account 1) writes agreements and registers partners, both report consumers
    consume quorum reports, and account 0 administers and may pause every contract.

    Accounts: admin 0, relayer 1, signers 2-4, partners 5-8 (payout addresses of partner
    ids 1-4), an outsider with no role 9."""
    admin = dev_accounts.deployer
    chain_id = w3.eth.chain_id
    signers = dev_accounts.signers(SIGNER_COUNT)

    def deploy_raw(name: str, *args: Any) -> Contract:
        artifact = compiled.artifact(name)
        data = artifact.bytecode + encode_constructor_args(artifact, args)[2:]
        receipt = sign_and_send(w3, chain_id, admin, None, data)
        if receipt["status"] != 1:
            raise Reverted(f"deploying {name} failed")
        address = Web3.to_checksum_address(str(receipt["contractAddress"]))
        return w3.eth.contract(address=address, abi=artifact.abi)

    def call(contract: Contract, function: str, *args: Any) -> None:
        data = contract.encode_abi(function, args=list(args))
        if sign_and_send(w3, chain_id, admin, contract.address, data)["status"] != 1:
            raise Reverted(f"{function} failed during the test deployment")

    token = deploy_raw("SettlementToken", admin.address)
    quorum = deploy_raw(
        "OracleQuorum", admin.address, [account.address for account in signers], THRESHOLD
    )
    registry = deploy_raw("CreditRegistry", admin.address, quorum.address)
    clearing_house = deploy_raw(
        "ClearingHouse",
        admin.address,
        quorum.address,
        token.address,
        DISPUTE_WINDOW_S,
        FUNDING_WINDOW_S,
    )
    relayer = dev_accounts.relayer
    call(registry, "grantRole", RELAYER_ROLE, relayer.address)
    call(clearing_house, "grantRole", RELAYER_ROLE, relayer.address)
    call(quorum, "grantRole", CONSUMER_ROLE, clearing_house.address)
    call(quorum, "grantRole", CONSUMER_ROLE, registry.address)
    for contract in (token, quorum, registry, clearing_house):
        call(contract, "grantRole", PAUSER_ROLE, admin.address)
    return Network(
        w3=w3,
        compiled=compiled,
        token=token,
        quorum=quorum,
        registry=registry,
        clearing_house=clearing_house,
        admin=admin,
        relayer=relayer,
        signers=signers,
        threshold=THRESHOLD,
        partners=[dev_accounts.account(FIRST_PARTNER_INDEX + i) for i in range(PARTNER_COUNT)],
        outsider=dev_accounts.account(OUTSIDER_INDEX),
        chain_id=chain_id,
        errors=build_error_table(compiled),
    )


def build_error_table(compiled: CompiledContracts) -> dict[bytes, tuple[str, list[str]]]:
    """Every custom error of every artifact, by 4-byte selector: (name, argument types)."""
    table: dict[bytes, tuple[str, list[str]]] = {}
    for artifact in compiled.artifacts.values():
        for item in artifact.abi:
            if item["type"] != "error":
                continue
            signature = abi_to_signature(item)  # type: ignore[arg-type]
            selector = function_signature_to_4byte_selector(signature)
            table[selector] = (item["name"], [entry["type"] for entry in item["inputs"]])
    return table


def send(
    net: Network, account: LocalAccount, contract: Contract, function: str, *args: Any
) -> TxReceipt:
    """Send `contract.function(*args)` from `account`; Reverted (with the decoded error)
    when it fails."""
    data = contract.encode_abi(function, args=list(args))
    return send_data(net, account, contract.address, data)


def send_data(net: Network, account: LocalAccount, to: str | None, data: str) -> TxReceipt:
    """Send raw calldata `data` to `to` (None: create a contract) from `account` and
    return the successful receipt."""
    receipt = sign_and_send(net.w3, net.chain_id, account, to, data)
    if receipt["status"] != 1:
        failure = revert_of(net, account, to, data)
        raise Reverted(f"{to} reverted: {failure}")
    return receipt


def revert_of(
    net: Network, account: LocalAccount, to: str | None, data: str
) -> tuple[str, tuple[Any, ...]] | None:
    """The decoded custom error `data` reverts with when `account` calls `to` (None: a
    contract creation) now, or None when the call succeeds."""
    call: dict[str, Any] = {"from": account.address, "data": data}
    if to is not None:
        call["to"] = Web3.to_checksum_address(to)
    try:
        net.w3.eth.call(call)  # type: ignore[arg-type]
    except ContractLogicError as error:
        return decode_revert(net, error.data)
    return None


def decode_revert(net: Network, data: Any) -> tuple[str, tuple[Any, ...]]:
    """(error name, arguments) of revert data; ("<raw>", (hex,)) when unknown."""
    raw = bytes.fromhex(data[2:]) if isinstance(data, str) else bytes(data or b"")
    entry = net.errors.get(raw[:4])
    if entry is None:
        return ("<raw>", (raw.hex(),))
    name, types = entry
    values = abi_decode(types, raw[4:])
    return (
        name,
        tuple(
            Web3.to_checksum_address(value) if kind == "address" else value
            for kind, value in zip(types, values, strict=True)
        ),
    )


def expect_revert(
    net: Network,
    account: LocalAccount,
    contract: Contract,
    function: str,
    args: Sequence[Any],
    error: str,
    error_args: Sequence[Any] | None = None,
) -> tuple[Any, ...]:
    """Assert that `contract.function(*args)` from `account` reverts with `error`
    (and, when given, exactly `error_args`); return the decoded arguments."""
    data = contract.encode_abi(function, args=list(args))
    failure = revert_of(net, account, contract.address, data)
    if failure is None:
        raise Reverted(f"{function} did not revert (expected {error})")
    name, decoded = failure
    assert name == error, f"{function} reverted with {name}{decoded}, expected {error}"
    if error_args is not None:
        assert decoded == tuple(error_args), f"{error} args {decoded} != {tuple(error_args)}"
    return decoded


def deploy(net: Network, account: LocalAccount, artifact: ContractArtifact, *args: Any) -> Contract:
    """Deploy `artifact` with constructor `args` from `account`."""
    data = artifact.bytecode + encode_constructor_args(artifact, args)[2:]
    receipt = send_data(net, account, None, data)
    address = str(receipt["contractAddress"])
    return net.w3.eth.contract(address=Web3.to_checksum_address(address), abi=artifact.abi)


def expect_deploy_revert(
    net: Network,
    artifact: ContractArtifact,
    args: Sequence[Any],
    error: str,
    error_args: Sequence[Any],
) -> None:
    """Assert that deploying `artifact` with `args` reverts with `error(error_args)`."""
    data = artifact.bytecode + encode_constructor_args(artifact, args)[2:]
    failure = revert_of(net, net.admin, None, data)
    assert failure == (error, tuple(error_args)), f"deploy gave {failure}"


def advance_time(net: Network, seconds: int) -> None:
    """Move the chain clock forward by `seconds` and mine a block."""
    net.w3.provider.make_request("evm_increaseTime", [seconds])  # type: ignore[arg-type]
    net.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]


def events(contract: Contract, receipt: TxReceipt, name: str) -> list[dict[str, Any]]:
    """The decoded `name` events `contract` emitted in `receipt`, as plain dicts."""
    event = getattr(contract.events, name)()
    return [dict(log["args"]) for log in event.process_receipt(receipt, errors=DISCARD)]


ENTRY_LEAF_TYPES = ["uint64", "uint64", "uint32", "uint8", "int256", "bytes32"]
UNSALTED_ENTRY_LEAF_TYPES = ENTRY_LEAF_TYPES[:-1]


def entry_leaf(
    cycle_id: int, entry_id: int, partner_id: int, kind: int, amount_fen: int, salt: bytes
) -> bytes:
    """The settlement leaf, StandardMerkleTree style (double keccak of the ABI encoding),
    with the entry's private salt as its last field."""
    encoded = abi_encode(ENTRY_LEAF_TYPES, [cycle_id, entry_id, partner_id, kind, amount_fen, salt])
    return keccak(keccak(encoded))


def unsalted_entry_leaf(
    cycle_id: int, entry_id: int, partner_id: int, kind: int, amount_fen: int
) -> bytes:
    """The settlement leaf as the contracts computed it before leaves carried a salt: what
    a sibling hash in a proof would be if it could be recovered by trying values."""
    encoded = abi_encode(
        UNSALTED_ENTRY_LEAF_TYPES, [cycle_id, entry_id, partner_id, kind, amount_fen]
    )
    return keccak(keccak(encoded))


def entry_salt(cycle_id: int, entry_id: int) -> bytes:
    """A deterministic test salt per entry (the books derive theirs with an HMAC per partner)."""
    return keccak(b"test-entry-salt" + cycle_id.to_bytes(8, "big") + entry_id.to_bytes(8, "big"))


def line_leaf(agreement_id: bytes, cycle_id: int, outstanding_fen: int) -> bytes:
    """The credit-line balance leaf, StandardMerkleTree style."""
    encoded = abi_encode(
        ["bytes32", "uint64", "uint256"], [agreement_id, cycle_id, outstanding_fen]
    )
    return keccak(keccak(encoded))


def _hash_pair(a: bytes, b: bytes) -> bytes:
    return keccak(a + b) if a < b else keccak(b + a)


class MerkleTree:
    """OpenZeppelin StandardMerkleTree over precomputed leaf hashes: leaves sorted,
    stored as a complete binary tree in an array, pairs hashed in sorted order."""

    def __init__(self, leaves: Sequence[bytes]) -> None:
        if not leaves:
            raise ValueError("a Merkle tree needs at least one leaf")
        ordered = sorted(leaves)
        size = 2 * len(ordered) - 1
        self._tree: list[bytes] = [b""] * size
        self._index: dict[bytes, int] = {}
        for position, leaf in enumerate(ordered):
            self._tree[size - 1 - position] = leaf
            self._index[leaf] = size - 1 - position
        for node in range(size - 1 - len(ordered), -1, -1):
            self._tree[node] = _hash_pair(self._tree[2 * node + 1], self._tree[2 * node + 2])

    @property
    def root(self) -> bytes:
        return self._tree[0]

    def proof(self, leaf: bytes) -> list[bytes]:
        """Sibling hashes from `leaf` up to the root."""
        node = self._index[leaf]
        path: list[bytes] = []
        while node > 0:
            sibling = node + 1 if node % 2 == 1 else node - 1
            path.append(self._tree[sibling])
            node = (node - 1) // 2
        return path


Entry = tuple[int, int, int, int, bytes]  # (entry_id, partner_id, kind, amount_fen, salt)


@dataclass
class CycleInput:
    """A settlement cycle as the books would build it: entries, their tree, net positions."""

    cycle_id: int
    entries: list[Entry]
    tree: MerkleTree
    partner_ids: list[int]
    net_positions: list[int]

    @property
    def root(self) -> bytes:
        return self.tree.root

    @property
    def entry_count(self) -> int:
        return len(self.entries)

    def leaf(self, index: int) -> bytes:
        return entry_leaf(self.cycle_id, *self.entries[index])

    def proof(self, index: int) -> list[bytes]:
        """The Merkle proof of entry `index`."""
        return self.tree.proof(self.leaf(index))


def make_cycle(cycle_id: int, net_positions_by_partner: dict[int, int]) -> CycleInput:
    """A cycle whose entries are two per partner (a gross amount and a correction) that
    sum to the given net positions, listed by ascending partner id, each salted."""
    entries: list[Entry] = []
    for partner_id, net_fen in sorted(net_positions_by_partner.items()):
        gross_fen = net_fen + 1_000
        for kind, amount_fen in ((1, gross_fen), (2, net_fen - gross_fen)):
            entry_id = len(entries) + 1
            salt = entry_salt(cycle_id, entry_id)
            entries.append((entry_id, partner_id, kind, amount_fen, salt))
    return cycle_from_entries(cycle_id, entries, net_positions_by_partner)


def cycle_from_entries(
    cycle_id: int, entries: list[Entry], net_positions_by_partner: dict[int, int]
) -> CycleInput:
    """The cycle of `entries` (salted), its tree and the listed partners' positions."""
    leaves = [entry_leaf(cycle_id, *entry) for entry in entries]
    partner_ids = sorted(net_positions_by_partner)
    return CycleInput(
        cycle_id=cycle_id,
        entries=entries,
        tree=MerkleTree(leaves),
        partner_ids=partner_ids,
        net_positions=[net_positions_by_partner[p] for p in partner_ids],
    )


def sign_cycle(
    net: Network, cycle: CycleInput, signers: Sequence[LocalAccount] | None = None
) -> list[bytes]:
    """Quorum signatures (ascending signer order) over the cycle's EIP-712 report."""
    digest = cycle_report_digest(
        net.chain_id,
        net.clearing_house.address,
        cycle.cycle_id,
        cycle.root,
        cycle.entry_count,
        cycle.partner_ids,
        cycle.net_positions,
    )
    chosen = list(signers) if signers is not None else net.signers[: net.threshold]
    return sorted_signatures(chosen, digest)


def proposal_args(cycle: CycleInput, signatures: Sequence[bytes]) -> list[Any]:
    """The arguments of `proposeCycle` for `cycle`."""
    return [
        cycle.cycle_id,
        cycle.root,
        cycle.entry_count,
        cycle.partner_ids,
        cycle.net_positions,
        list(signatures),
    ]


def sign_line_state(
    net: Network,
    cycle_id: int,
    root: bytes,
    count: int,
    total_outstanding_fen: int,
    signers: Sequence[LocalAccount] | None = None,
    registry: str | None = None,
) -> list[bytes]:
    """Signatures (ascending signer order; a quorum unless `signers` is given) over the
    line-state report for the registry at `registry` (default: the network's)."""
    digest = line_state_report_digest(
        net.chain_id,
        registry or net.registry.address,
        cycle_id,
        root,
        count,
        total_outstanding_fen,
    )
    chosen = list(signers) if signers is not None else net.signers[: net.threshold]
    return sorted_signatures(chosen, digest)


def line_state_args(
    net: Network,
    cycle_id: int,
    root: bytes,
    count: int,
    total_outstanding_fen: int,
    signers: Sequence[LocalAccount] | None = None,
) -> list[Any]:
    """The arguments of `commitLineStateWithReport`, signed by a quorum (or `signers`)."""
    signatures = sign_line_state(net, cycle_id, root, count, total_outstanding_fen, signers)
    return [cycle_id, root, count, total_outstanding_fen, signatures]
