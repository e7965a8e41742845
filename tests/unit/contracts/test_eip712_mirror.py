"""oracles.eip712: the Python mirror of the contracts' EIP-712 reports.

The on-chain comparison lives in the contract tests (the ClearingHouse and the
CreditRegistry accept these digests and signatures); here: the mirror is standard
EIP-712, and its helpers refuse malformed input.
"""

from __future__ import annotations

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils.crypto import keccak

from node_api.kernel.errors import CreditNetValueError
from oracles.eip712 import (
    compute_cycle_report_typed_data,
    cycle_report_digest,
    line_state_report_digest,
    recover_signer,
    sign_digest,
    sorted_signatures,
)

CONTRACT = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
ROOT = keccak(b"root")


def accounts(count: int) -> list[LocalAccount]:
    return [Account.from_key(keccak(b"key" + bytes([i]))) for i in range(count)]


def test_digest_signature_equals_eth_account_typed_data_signature() -> None:
    account = accounts(1)[0]
    args = (31337, CONTRACT, 20261128, ROOT, 8, [1, 2], [5, -5])
    typed = compute_cycle_report_typed_data(*args)
    expected = account.sign_typed_data(full_message=dict(typed)).signature
    assert sign_digest(account, cycle_report_digest(*args)) == bytes(expected)


@pytest.mark.parametrize(
    "change", [(31338, CONTRACT), (31337, "0x" + "11" * 20)], ids=["chain", "contract"]
)
def test_digest_is_bound_to_chain_and_contract(change: tuple[int, str]) -> None:
    base = cycle_report_digest(31337, CONTRACT, 1, ROOT, 1, [1], [0])
    assert cycle_report_digest(*change, 1, ROOT, 1, [1], [0]) != base


def test_line_state_digest_differs_by_every_field() -> None:
    base = line_state_report_digest(31337, CONTRACT, 1, ROOT, 2, 3)
    variants = [
        line_state_report_digest(31337, CONTRACT, 9, ROOT, 2, 3),
        line_state_report_digest(31337, CONTRACT, 1, keccak(b"x"), 2, 3),
        line_state_report_digest(31337, CONTRACT, 1, ROOT, 9, 3),
        line_state_report_digest(31337, CONTRACT, 1, ROOT, 2, 9),
    ]
    assert base not in variants
    assert len(set(variants)) == 4


def test_sorted_signatures_order_by_ascending_signer_address() -> None:
    signers = accounts(5)
    digest = keccak(b"digest")
    recovered = [recover_signer(digest, sig) for sig in sorted_signatures(signers, digest)]
    assert [int(a, 16) for a in recovered] == sorted(int(s.address, 16) for s in signers)


def test_signatures_are_65_bytes_with_v_27_or_28() -> None:
    signature = sign_digest(accounts(1)[0], keccak(b"digest"))
    assert len(signature) == 65
    assert signature[-1] in (27, 28)


def test_RevertWhen_the_same_account_signs_twice() -> None:
    account = accounts(1)[0]
    with pytest.raises(CreditNetValueError):
        sorted_signatures([account, account], keccak(b"digest"))


def test_RevertWhen_a_root_is_not_32_bytes() -> None:
    with pytest.raises(CreditNetValueError):
        cycle_report_digest(1, CONTRACT, 1, b"short", 1, [1], [0])
    with pytest.raises(CreditNetValueError):
        line_state_report_digest(1, CONTRACT, 1, b"\x00" * 33, 1, 0)


def test_RevertWhen_partner_and_position_lists_differ_in_length() -> None:
    with pytest.raises(CreditNetValueError):
        cycle_report_digest(1, CONTRACT, 1, ROOT, 1, [1, 2], [0])


def test_RevertWhen_a_signature_to_recover_is_malformed() -> None:
    good = sign_digest(accounts(1)[0], keccak(b"digest"))
    for bad in (good[:64], good[:64] + bytes([1])):
        with pytest.raises(CreditNetValueError):
            recover_signer(keccak(b"digest"), bad)
