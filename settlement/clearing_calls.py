"""The few ClearingHouse and ERC-20 calls a partner needs, encoded by hand.

A funding partner verifies and settles with nothing but a JSON-RPC endpoint and the
ClearingHouse address: no build artifacts, no lender software. So these calls carry
their own function signatures (the tests check them against the compiled ABI) and are
encoded with `eth_abi`. Amounts are fen; the settlement token has 2 decimals.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode
from eth_utils.crypto import keccak

from node_api.kernel.chain import CycleStatus
from node_api.kernel.money import Fen
from settlement.entries import SettlementEntry


def _selector(signature: str) -> bytes:
    return keccak(text=signature)[:4]


@dataclass(frozen=True)
class Call:
    """A function: its signature, argument types and return types."""

    signature: str
    returns: tuple[str, ...] = ()

    @property
    def selector(self) -> bytes:
        return _selector(self.signature)

    @property
    def argument_types(self) -> list[str]:
        inner = self.signature[self.signature.index("(") + 1 : -1]
        return [item for item in inner.split(",") if item]

    def encode(self, *args: Any) -> bytes:
        """Calldata: selector and ABI-encoded arguments."""
        return self.selector + abi_encode(self.argument_types, list(args))

    def decode(self, output: bytes) -> tuple[Any, ...]:
        return tuple(abi_decode(list(self.returns), output))


_CYCLE_VIEW: Final = (
    "bytes32",
    "uint8",
    "uint32",
    "uint64",
    "uint64",
    "uint64",
    "uint64",
    "uint256",
    "uint256",
    "uint256",
)
GET_CYCLE: Final = Call("getCycle(uint64)", _CYCLE_VIEW)
GET_POSITION: Final = Call("getPosition(uint64,uint32)", ("int256", "bool", "bool", "bool", "bool"))
GET_PARTNER: Final = Call("getPartner(uint32)", ("address", "uint8", "bool", "bool"))
VERIFY_ENTRY: Final = Call(
    "verifyEntry(uint64,uint64,uint32,uint8,int256,bytes32,bytes32[])", ("bool",)
)
SETTLEMENT_TOKEN: Final = Call("settlementToken()", ("address",))
FUND: Final = Call("fund(uint64,uint32)")
CLAIM: Final = Call("claim(uint64,uint32)")
DISPUTE: Final = Call("dispute(uint64,uint32,bytes32)")
FINALIZE: Final = Call("finalize(uint64)")
DECLARE_DEFAULT: Final = Call("declareDefault(uint64,uint32[])")
REFUND: Final = Call("refund(uint64,uint32)")
APPROVE: Final = Call("approve(address,uint256)", ("bool",))
BALANCE_OF: Final = Call("balanceOf(address)", ("uint256",))
MINT: Final = Call("mint(address,uint256)")

CLEARING_HOUSE_CALLS: Final = (
    GET_CYCLE,
    GET_POSITION,
    GET_PARTNER,
    VERIFY_ENTRY,
    SETTLEMENT_TOKEN,
    FUND,
    CLAIM,
    DISPUTE,
    FINALIZE,
    DECLARE_DEFAULT,
    REFUND,
)
TOKEN_CALLS: Final = (APPROVE, BALANCE_OF, MINT)
DISPUTE_GAS: Final = 150_000
"""Gas limit of a `dispute` transaction."""


@dataclass(frozen=True, slots=True)
class CycleView:
    """`getCycle` decoded; amounts in fen, times in unix seconds."""

    entries_root: bytes
    status: CycleStatus
    partner_count: int
    proposed_at: int
    dispute_deadline: int
    funding_deadline: int
    entry_count: int
    total_due_fen: Fen
    funded_fen: Fen
    claimed_fen: Fen

    @classmethod
    def decode(cls, output: bytes) -> CycleView:
        values = GET_CYCLE.decode(output)
        return cls(
            bytes(values[0]),
            CycleStatus(int(values[1])),
            int(values[2]),
            int(values[3]),
            int(values[4]),
            int(values[5]),
            int(values[6]),
            Fen(int(values[7])),
            Fen(int(values[8])),
            Fen(int(values[9])),
        )


@dataclass(frozen=True, slots=True)
class PositionView:
    """`getPosition` decoded: net position in fen and its flags."""

    net_position_fen: Fen
    listed: bool
    disputed: bool
    settled: bool
    refunded: bool

    @classmethod
    def decode(cls, output: bytes) -> PositionView:
        net, listed, disputed, settled, refunded = GET_POSITION.decode(output)
        return cls(Fen(int(net)), bool(listed), bool(disputed), bool(settled), bool(refunded))


def encode_verify_entry(entry: SettlementEntry, proof: Sequence[bytes]) -> bytes:
    """Calldata of `verifyEntry` for one entry and its proof."""
    return VERIFY_ENTRY.encode(
        entry.cycle_id,
        entry.entry_id,
        entry.partner_id,
        int(entry.kind),
        entry.amount_fen,
        entry.salt,
        list(proof),
    )
