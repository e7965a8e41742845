"""Leaves, roots and commitments exactly as the contracts define them.

Written from the contracts' published definitions (not taken from the node's settlement
code), so the auditor recomputes every hash independently; the tree layout is
OpenZeppelin's StandardMerkleTree (`settlement.merkle`, checked against the reference
library).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from sha3 import keccak_256

from node_api.kernel.money import Fen
from settlement.merkle import build_tree

INT256_BYTES: Final = 32
SALT_BYTES: Final = 32


def _double_hash(encoded: bytes) -> bytes:
    digest: bytes = keccak_256(keccak_256(encoded).digest()).digest()
    return digest


def compute_entry_leaf(
    cycle_id: int, entry_id: int, partner_id: int, kind: int, amount_fen: Fen, salt: bytes
) -> bytes:
    """The settlement leaf of one entry, as `ClearingHouse.computeEntryLeaf` defines it:
    the double hash of `abi.encode(uint64 cycleId, uint64 entryId, uint32 partnerId,
    uint8 kind, int256 amountFen, bytes32 salt)`, six static words."""
    if len(salt) != SALT_BYTES:
        raise ValueError(f"a leaf salt is {SALT_BYTES} bytes, got {len(salt)}")
    return _double_hash(
        cycle_id.to_bytes(32, "big")
        + entry_id.to_bytes(32, "big")
        + partner_id.to_bytes(32, "big")
        + kind.to_bytes(32, "big")
        + amount_fen.to_bytes(INT256_BYTES, "big", signed=True)
        + salt
    )


def compute_line_leaf(agreement_id: str, cycle_id: int, outstanding_fen: Fen) -> bytes:
    """The line-state leaf, as `CreditRegistry.verifyLineBalance` defines it."""
    return _double_hash(
        bytes.fromhex(agreement_id[2:])
        + cycle_id.to_bytes(32, "big")
        + outstanding_fen.to_bytes(32, "big")
    )


def compute_root(leaves: Sequence[bytes]) -> str:
    return "0x" + build_tree(leaves).root.hex() if leaves else "0x" + "00" * 32


def compute_agreement_commitment(
    agreement_id: str,
    borrower_ref: str,
    terms_hash: str,
    product_code: int,
    limit_fen: Fen,
    apr_bps: int,
    opened_at: int,
) -> str:
    """keccak256(abi.encode(AgreementInput)) of an agreement's opening fields, as the
    registry stores it: seven static words (three bytes32, then uint32, uint64, uint32,
    uint64), so the encoding is the words back to back."""
    encoded = b"".join(
        (
            bytes.fromhex(agreement_id[2:]),
            bytes.fromhex(borrower_ref[2:]),
            bytes.fromhex(terms_hash[2:]),
            product_code.to_bytes(32, "big"),
            limit_fen.to_bytes(32, "big"),
            apr_bps.to_bytes(32, "big"),
            opened_at.to_bytes(32, "big"),
        )
    )
    return "0x" + str(keccak_256(encoded).hexdigest())
