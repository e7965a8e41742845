"""EIP-712 reports the oracle quorum signs, mirrored from the contracts.

The ClearingHouse and the CreditRegistry each hash a typed struct under their own
EIP-712 domain (name, version "1", chain id, verifying contract), so a signature
is valid for one report on one contract of one chain only. These functions build
the same digests with eth-account's standard typed-data encoding, sign them, and
order signatures the way OracleQuorum requires: by strictly ascending signer address.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Final, ParamSpec, TypedDict

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
_P = ParamSpec("_P")


class Eip712Field(TypedDict):
    """One member of an EIP-712 struct type."""

    name: str
    type: str


class Eip712Domain(TypedDict):
    """The EIP-712 domain both contracts use."""

    name: str
    version: str
    chainId: int
    verifyingContract: str


class CycleReportMessage(TypedDict):
    """The ClearingHouse's `CycleReport` values (net positions in fen)."""

    cycleId: int
    entriesRoot: bytes
    entryCount: int
    partnerIds: list[int]
    netPositions: list[int]


class LineStateReportMessage(TypedDict):
    """The CreditRegistry's `LineStateReport` values."""

    cycleId: int
    root: bytes
    count: int
    totalOutstandingFen: int


class TypedData(TypedDict):
    """A full EIP-712 message, as `eth_signTypedData_v4` takes it."""

    types: dict[str, list[Eip712Field]]
    primaryType: str
    domain: Eip712Domain
    message: CycleReportMessage | LineStateReportMessage


def _struct(*members: str) -> list[Eip712Field]:
    """An EIP-712 struct type from `"type name"` members, in order."""
    return [{"name": name, "type": kind} for kind, name in (m.split() for m in members)]


_DOMAIN_TYPE: Final = _struct(
    "string name", "string version", "uint256 chainId", "address verifyingContract"
)
CYCLE_REPORT_TYPE: Final = _struct(
    "uint64 cycleId",
    "bytes32 entriesRoot",
    "uint64 entryCount",
    "uint32[] partnerIds",
    "int256[] netPositions",
)
LINE_STATE_REPORT_TYPE: Final = _struct(
    "uint64 cycleId", "bytes32 root", "uint64 count", "uint256 totalOutstandingFen"
)


def _typed_data(
    domain_name: str,
    chain_id: int,
    verifying_contract: str,
    primary_type: str,
    fields: list[Eip712Field],
    message: CycleReportMessage | LineStateReportMessage,
) -> TypedData:
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
) -> TypedData:
    """The `CycleReport` typed data for `eth_signTypedData_v4` (e.g. a hardware signer)."""
    _require_root(entries_root, "entries_root")
    if len(partner_ids) != len(net_positions):
        raise CreditNetValueError(
            "partner_ids and net_positions differ in length", field="net_positions"
        )
    message: CycleReportMessage = {
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


def compute_line_state_report_typed_data(
    chain_id: int,
    verifying_contract: str,
    cycle_id: int,
    root: bytes,
    count: int,
    total_outstanding_fen: int,
) -> TypedData:
    """The `LineStateReport` typed data for `eth_signTypedData_v4`."""
    _require_root(root, "root")
    message: LineStateReportMessage = {
        "cycleId": cycle_id,
        "root": root,
        "count": count,
        "totalOutstandingFen": total_outstanding_fen,
    }
    return _typed_data(
        CREDIT_REGISTRY_DOMAIN_NAME,
        chain_id,
        verifying_contract,
        "LineStateReport",
        LINE_STATE_REPORT_TYPE,
        message,
    )


def _digest_of_typed_data(build: Callable[_P, TypedData], doc: str) -> Callable[_P, bytes]:
    """The digest function of a typed-data builder: same arguments, the 32-byte digest."""

    def digest(*args: _P.args, **kwargs: _P.kwargs) -> bytes:
        return _digest_of(encode_typed_data(full_message=dict(build(*args, **kwargs))))

    digest.__doc__ = doc
    return digest


cycle_report_digest = _digest_of_typed_data(
    compute_cycle_report_typed_data,
    "The 32-byte digest `ClearingHouse.proposeCycle` checks; net positions in fen.",
)
line_state_report_digest = _digest_of_typed_data(
    compute_line_state_report_typed_data,
    "The 32-byte digest `CreditRegistry.commitLineStateWithReport` checks.",
)


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
