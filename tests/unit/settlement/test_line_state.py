"""The credit-line state tree and its quorum report: leaves as the CreditRegistry hashes
them, proofs that verify against the root, and signers that sign only the books' state."""

from __future__ import annotations

from dataclasses import replace

import pytest
from eth_abi import encode as abi_encode
from eth_account import Account
from eth_account.signers.local import LocalAccount
from hypothesis import given
from hypothesis import strategies as st
from sha3 import keccak_256

from node_api.kernel.errors import CreditNetValueError
from node_api.lending.bills import RECEIVABLE_TYPES
from oracles.audit.leaves import compute_line_leaf as audit_line_leaf
from oracles.audit.leaves import compute_root
from oracles.eip712 import line_state_report_digest, recover_signer
from oracles.signers import (
    LineStateReport,
    LocalSigner,
    QuorumNotReachedError,
    ReportRefusedError,
    ReportSources,
    SignerSet,
    SigningDomain,
)
from settlement.line_state import (
    LEAF_RECORD_BYTES,
    RECEIVABLE_ACCOUNT_TYPES,
    LineBalance,
    build_line_state,
    compute_line_leaf,
)
from settlement.merkle import MerkleTree, verify

CYCLE_ID = 20250131
DOMAIN = SigningDomain(31337, "0x" + "11" * 20, "0x" + "22" * 20)
SIGNERS: list[LocalAccount] = [Account.from_key(bytes([n]) * 32) for n in (1, 2, 3)]


def _agreement(number: int) -> bytes:
    return (0xA0 << 248 | number).to_bytes(32, "big")


BALANCES = [LineBalance(_agreement(n), 10_000 * n + 7) for n in (5, 1, 4, 2, 3)]


def test_the_leaf_is_the_double_hashed_abi_encoding_the_registry_checks() -> None:
    encoded = abi_encode(["bytes32", "uint64", "uint256"], [_agreement(9), CYCLE_ID, 123_456])
    expected = keccak_256(keccak_256(encoded).digest()).digest()
    assert compute_line_leaf(_agreement(9), CYCLE_ID, 123_456) == expected
    assert audit_line_leaf("0x" + _agreement(9).hex(), CYCLE_ID, 123_456) == expected
    with pytest.raises(CreditNetValueError):
        compute_line_leaf(b"\x01" * 31, CYCLE_ID, 1)


def test_balances_are_the_receivables_lending_reports_as_outstanding() -> None:
    assert set(RECEIVABLE_ACCOUNT_TYPES) == set(RECEIVABLE_TYPES)
    assert len(RECEIVABLE_ACCOUNT_TYPES) == len(set(RECEIVABLE_ACCOUNT_TYPES))


def test_every_balance_proves_against_the_root() -> None:
    state = build_line_state(CYCLE_ID, BALANCES)
    assert state is not None
    assert state.leaf_count == 5 and state.total_outstanding_fen == sum(
        b.outstanding_fen for b in BALANCES
    )
    assert list(state.balances()) == sorted(BALANCES, key=lambda b: b.agreement_id)
    assert len(state.leaves) == 5 * LEAF_RECORD_BYTES
    leaves = [compute_line_leaf(b.agreement_id, CYCLE_ID, b.outstanding_fen) for b in BALANCES]
    assert "0x" + state.root.hex() == compute_root(leaves)  # the auditor's own rebuild
    for balance in BALANCES:
        index = state.find(balance.agreement_id)
        assert index is not None and state.balance(index) == balance
        leaf = compute_line_leaf(balance.agreement_id, CYCLE_ID, balance.outstanding_fen)
        assert verify(state.root, leaf, state.tree.proof(index))
        wrong = compute_line_leaf(balance.agreement_id, CYCLE_ID, balance.outstanding_fen + 1)
        assert not verify(state.root, wrong, state.tree.proof(index))
    assert state.find(_agreement(6)) is None
    assert state.find(b"\x00" * 32) is None and state.find(b"\xff" * 32) is None
    assert MerkleTree.from_bytes(state.tree.to_bytes()) == state.tree


def test_the_report_is_the_root_count_and_total() -> None:
    state = build_line_state(CYCLE_ID, BALANCES)
    assert state is not None
    assert state.report == LineStateReport(
        CYCLE_ID, state.root, 5, sum(b.outstanding_fen for b in BALANCES)
    )
    other_cycle = build_line_state(CYCLE_ID + 1, BALANCES)
    assert other_cycle is not None and other_cycle.root != state.root


def test_no_agreement_means_no_line_state_and_bad_balances_are_refused() -> None:
    assert build_line_state(CYCLE_ID, []) is None
    with pytest.raises(CreditNetValueError, match="two balances"):
        build_line_state(CYCLE_ID, [BALANCES[0], replace(BALANCES[1], agreement_id=_agreement(5))])
    with pytest.raises(CreditNetValueError, match="out of range"):
        build_line_state(CYCLE_ID, [LineBalance(_agreement(1), -1)])


@given(
    st.dictionaries(
        st.binary(min_size=32, max_size=32), st.integers(0, 2**63 - 1), min_size=1, max_size=40
    )
)
def test_any_set_of_balances_proves_each_one(balances: dict[bytes, int]) -> None:
    state = build_line_state(CYCLE_ID, [LineBalance(a, fen) for a, fen in balances.items()])
    assert state is not None
    for agreement_id, fen in balances.items():
        index = state.find(agreement_id)
        assert index is not None
        leaf = compute_line_leaf(agreement_id, CYCLE_ID, fen)
        assert verify(state.root, leaf, state.tree.proof(index))


def _signers(books: LineStateReport, tampered: int) -> SignerSet:
    honest = ReportSources(line_state=lambda cycle_id: books if cycle_id == CYCLE_ID else None)
    other = ReportSources(line_state=lambda _cycle_id: replace(books, total_outstanding_fen=1))
    sources = [honest] * (3 - tampered) + [other] * tampered
    return SignerSet(
        [LocalSigner(a, s, DOMAIN) for a, s in zip(SIGNERS, sources, strict=True)], threshold=2
    )


def test_a_quorum_signs_the_books_line_state_in_signer_address_order() -> None:
    state = build_line_state(CYCLE_ID, BALANCES)
    assert state is not None
    gathering = _signers(state.report, tampered=1).gather_line_state_signatures(state.report)
    digest = line_state_report_digest(
        DOMAIN.chain_id,
        DOMAIN.credit_registry,
        CYCLE_ID,
        state.root,
        state.leaf_count,
        state.total_outstanding_fen,
    )
    recovered = [recover_signer(digest, signature) for signature in gathering.signatures]
    assert recovered == gathering.signers and len(recovered) == 2
    assert [int(a, 16) for a in recovered] == sorted(int(a, 16) for a in recovered)
    assert len(gathering.refusals) == 1


def test_a_report_that_is_not_the_books_is_refused_and_misses_the_quorum() -> None:
    state = build_line_state(CYCLE_ID, BALANCES)
    assert state is not None
    signer = LocalSigner(SIGNERS[0], ReportSources(line_state=lambda _c: state.report), DOMAIN)
    with pytest.raises(ReportRefusedError):
        signer.sign_line_state_report(replace(state.report, leaf_count=4))
    with pytest.raises(QuorumNotReachedError):
        _signers(state.report, tampered=2).gather_line_state_signatures(state.report)
