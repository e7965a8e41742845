"""EIP-712 reports the oracle quorum signs, mirrored from the contracts.

The ClearingHouse and the CreditRegistry each hash a typed struct under their own
EIP-712 domain (name, version "1", chain id, verifying contract), so a signature
is valid for one report on one contract of one chain only. These functions build
the same digests with eth-account's standard typed-data encoding, sign them, and
order signatures the way OracleQuorum requires: by strictly ascending signer address.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Final

from eth_account.messages import SignableMessage, encode_typed_data
from eth_account.signers.local import LocalAccount
from eth_keys.datatypes import Signature
from eth_typing import Hash32
from eth_utils.crypto import keccak

from node_api.kernel.errors import CreditNetValueError

CLEARING_HOUSE_DOMAIN_NAME: Final = "CreditNet ClearingHouse"
CREDIT_REGISTRY_DOMAIN_NAME: Final = "CreditNet CreditRegistry"
DOMAIN_VERSION: Final = "1"
DIGEST_LENGTH: Final = 32
SIGNATURE_LENGTH: Final = 65

_DOMAIN_TYPE: Final = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]
CYCLE_REPORT_TYPE: Final = [
    {"name": "cycleId", "type": "uint64"},
    {"name": "entriesRoot", "type": "bytes32"},
    {"name": "entryCount", "type": "uint64"},
    {"name": "partnerIds", "type": "uint32[]"},
    {"name": "netPositions", "type": "int256[]"},
]
LINE_STATE_REPORT_TYPE: Final = [
    {"name": "cycleId", "type": "uint64"},
    {"name": "root", "type": "bytes32"},
    {"name": "count", "type": "uint64"},
    {"name": "totalOutstandingFen", "type": "uint256"},
]


def _typed_data(
    domain_name: str,
    chain_id: int,
    verifying_contract: str,
    primary_type: str,
    fields: list[dict[str, str]],
    message: dict[str, Any],
) -> dict[str, Any]:
    """A full EIP-712 message (domain, types, primary type, values)."""
    return {
        "types": {"EIP712Domain": _DOMAIN_TYPE, primary_type: fields},
        "primaryType": primary_type,
        "domain": {
            "name": domain_name,
            "version": DOMAIN_VERSION,
            "chainId": chain_id,
            "verifyingContract": verifying_contract,
        },
        "message": message,
    }


def _digest_of(signable: SignableMessage) -> bytes:
    """keccak256(0x19 || 0x01 || domainSeparator || structHash): what signers sign."""
    return keccak(b"\x19" + signable.version + signable.header + signable.body)


def _require_root(value: bytes, field: str) -> None:
    if len(value) != DIGEST_LENGTH:
        raise CreditNetValueError(f"{field} must be 32 bytes", field=field)


def compute_cycle_report_typed_data(
    chain_id: int,
    verifying_contract: str,
    cycle_id: int,
    entries_root: bytes,
    entry_count: int,
    partner_ids: Sequence[int],
    net_positions: Sequence[int],
) -> dict[str, Any]:
    """The `CycleReport` typed data for `eth_signTypedData_v4` (e.g. a hardware signer)."""
    _require_root(entries_root, "entries_root")
    if len(partner_ids) != len(net_positions):
        raise CreditNetValueError(
            "partner_ids and net_positions differ in length", field="net_positions"
        )
    message = {
        "cycleId": cycle_id,
        "entriesRoot": entries_root,
        "entryCount": entry_count,
        "partnerIds": list(partner_ids),
        "netPositions": list(net_positions),
    }
    return _typed_data(
        CLEARING_HOUSE_DOMAIN_NAME,
        chain_id,
        verifying_contract,
        "CycleReport",
        CYCLE_REPORT_TYPE,
        message,
    )


def cycle_report_digest(
    chain_id: int,
    verifying_contract: str,
    cycle_id: int,
    entries_root: bytes,
    entry_count: int,
    partner_ids: Sequence[int],
    net_positions: Sequence[int],
) -> bytes:
    """The 32-byte digest `ClearingHouse.proposeCycle` checks; net positions in fen."""
    typed = compute_cycle_report_typed_data(
        chain_id,
        verifying_contract,
        cycle_id,
        entries_root,
        entry_count,
        partner_ids,
        net_positions,
    )
    return _digest_of(encode_typed_data(full_message=typed))


def line_state_report_digest(
    chain_id: int,
    verifying_contract: str,
    cycle_id: int,
    root: bytes,
    count: int,
    total_outstanding_fen: int,
) -> bytes:
    """The 32-byte digest `CreditRegistry.commitLineStateWithReport` checks."""
    _require_root(root, "root")
    message = {
        "cycleId": cycle_id,
        "root": root,
        "count": count,
        "totalOutstandingFen": total_outstanding_fen,
    }
    typed = _typed_data(
        CREDIT_REGISTRY_DOMAIN_NAME,
        chain_id,
        verifying_contract,
        "LineStateReport",
        LINE_STATE_REPORT_TYPE,
        message,
    )
    return _digest_of(encode_typed_data(full_message=typed))


def sign_digest(account: LocalAccount, digest: bytes) -> bytes:
    """A 65-byte signature r || s || v (v = 27 or 28, low s) of `digest` by `account`.

    The digest is already EIP-712 hashed, so it is signed as is, with no prefix.
    """
    _require_root(digest, "digest")
    return bytes(account.unsafe_sign_hash(Hash32(digest)).signature)


def recover_signer(digest: bytes, signature: bytes) -> str:
    """The checksummed address that produced `signature` over `digest`."""
    _require_root(digest, "digest")
    if len(signature) != SIGNATURE_LENGTH or signature[-1] not in (27, 28):
        raise CreditNetValueError("signature must be 65 bytes r || s || v", field="signature")
    vrs = signature[:-1] + bytes([signature[-1] - 27])
    public_key = Signature(vrs).recover_public_key_from_msg_hash(digest)
    return str(public_key.to_checksum_address())


def sorted_signatures(accounts: Iterable[LocalAccount], digest: bytes) -> list[bytes]:
    """Each account's signature of `digest`, ordered by ascending signer address, the
    order OracleQuorum requires. Duplicate accounts are rejected rather than dropped,
    since a caller passing one twice has a bug the contract would also reject."""
    by_address: dict[int, bytes] = {}
    for account in accounts:
        key = int(account.address, 16)
        if key in by_address:
            raise CreditNetValueError("the same signer appears twice", field="accounts")
        by_address[key] = sign_digest(account, digest)
    return [by_address[key] for key in sorted(by_address)]
