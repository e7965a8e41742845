"""How each outbox kind reaches the chain and how to tell whether it already landed.

A kind names the contract and function, how many items one transaction may carry,
the gas to give it, the view that shows an item's on-chain state by business key,
which reverts mean "not yet" rather than "never", and which account sends it (the
relayer, or the lender's treasury for the funding kinds, whose tokens the
ClearingHouse pulls from the sender). The relayer is generic over these; adding a kind
adds a class here.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final, Generic, TypeVar

from eth_abi.abi import encode as abi_encode
from eth_utils.crypto import keccak

from node_api.kernel.chain import ContractName, CycleStatus
from node_api.kernel.errors import ConfigurationError
from node_api.kernel.outbox import OutboxKind
from node_api.kernel.outbox_table import (
    AgreementChangePayload,
    AgreementOpenPayload,
    CycleDefaultPayload,
    CycleFinalizePayload,
    CycleFundApprovePayload,
    CycleFundPayload,
    CyclePartnerPayload,
    CycleProposePayload,
    LineStatePayload,
    OutboxPayload,
    PartnerRegisterPayload,
)
from oracles.abi_codec import (
    ContractCodec,
    ErrorArgs,
    encode_static_tuple_array_json,
    get_int_arg,
)

AGREEMENT_BATCH_MAX: Final = 200
AGREEMENT_OPEN_BATCH_MAX: Final = 2_000
"""Openings per transaction at most; below it, what fits the block's gas and a pool's
size limit decides (`AgreementOpenKind.get_batch_size_max`)."""
OPEN_GAS_BASE: Final = 60_000
OPEN_GAS_PER_ITEM: Final = 75_000
"""An opening's gas limit per item (it uses about 52.5k; unused gas is not charged)."""
TX_DATA_BYTES_MAX: Final = 120_000
"""Calldata bytes per transaction at most: geth's pool refuses transactions over 128 KiB."""
OPEN_CALLDATA_HEAD_BYTES: Final = 4 + 64
OPEN_CALLDATA_ITEM_BYTES: Final = 32 * 7
COMMITMENT_TYPES: Final = ["bytes32", "bytes32", "bytes32", "uint32", "uint64", "uint32", "uint64"]
ZERO_HASH: Final = "0x" + "00" * 32
RETRY_NOT_YET_S: Final = 60.0


FUNDING_NOT_YET_ERRORS: Final = frozenset(
    {"ERC20InsufficientBalance", "ERC20InsufficientAllowance"}
)
"""Reverts of a funding that an operator fixes (top up the treasury): retried later."""


class RelayAccount(StrEnum):
    """Which account sends a kind's transactions (one relayer instance per account)."""

    RELAYER = "relayer"
    TREASURY = "treasury"


class Landing(StrEnum):
    """An item's on-chain state by business key."""

    ABSENT = "absent"
    SAME = "same"
    CONFLICT = "conflict"


@dataclass(frozen=True)
class LandingCheck:
    landing: Landing
    detail: str = ""


def _b32(value: str) -> bytes:
    return bytes.fromhex(value[2:])


def _hex(value: bytes) -> str:
    return "0x" + value.hex()


def compute_agreement_commitment(payload: AgreementOpenPayload) -> str:
    """The registry's commitment of an opening: keccak256(abi.encode(the seven fields))."""
    return _hex(keccak(abi_encode(COMMITMENT_TYPES, _agreement_tuple(payload))))


def _agreement_tuple(payload: AgreementOpenPayload) -> list[bytes | int]:
    return [
        _b32(payload["agreement_id"]),
        _b32(payload["borrower_ref"]),
        _b32(payload["terms_hash"]),
        payload["product_code"],
        payload["limit_fen"],
        payload["apr_bps"],
        payload["opened_at"],
    ]


P = TypeVar("P", bound=OutboxPayload)


class RelayKind(ABC, Generic[P]):
    """One outbox kind's way to the chain, over the stored payload type `P` of the kind."""

    kind: OutboxKind
    contract: str
    batch_size_max: int = 1
    strict_order: bool = False
    """Only one transaction of this kind in flight at a time (order matters per subject)."""
    depends_on: tuple[OutboxKind, ...] = ()
    """Items of this kind wait for earlier unfinished items of these kinds."""
    account: RelayAccount = RelayAccount.RELAYER
    """The account whose relayer sends this kind."""
    view_contract: str | None = None
    """The contract `encode_view` calls (default: `contract`)."""
    check_before_send: bool = False
    """Check the landing and simulate each batch before sending it: items already on-chain
    are confirmed without a transaction, and a simulated revert is handled as a revert
    (retried or parked with the decoded error) without spending gas."""

    @property
    def view_target(self) -> str:
        return self.view_contract or self.contract

    def get_batch_group(self, payload: P) -> str:
        """Items of one transaction share this value (one contract function each)."""
        return ""

    def get_batch_size_max(self, block_gas_limit: int) -> int:
        """Items one transaction may carry on a chain whose blocks hold `block_gas_limit`."""
        return self.batch_size_max

    @abstractmethod
    def encode(self, codec: ContractCodec, payloads: Sequence[P]) -> bytes:
        """Calldata of one transaction carrying `payloads`."""

    @abstractmethod
    def get_gas_limit(self, payloads: Sequence[P]) -> int:
        """An explicit gas limit (no estimate round trip); unused gas is not charged."""

    @abstractmethod
    def encode_view(self, codec: ContractCodec, payload: P) -> bytes:
        """Calldata of the view that shows the item's on-chain state."""

    @abstractmethod
    def classify(self, codec: ContractCodec, payload: P, output: bytes) -> LandingCheck:
        """Whether the item already landed, from the view's output."""

    def get_retry_delay_s(
        self, error_name: str, args: ErrorArgs, chain_time_s: int
    ) -> float | None:
        """Seconds to wait before retrying after this revert, or None to park the item.
        `chain_time_s` is the latest block's timestamp (contracts judge time by it)."""
        return None


class AgreementOpenKind(RelayKind[AgreementOpenPayload]):
    kind = OutboxKind.AGREEMENT_OPEN
    contract = ContractName.CREDIT_REGISTRY
    batch_size_max = AGREEMENT_OPEN_BATCH_MAX

    def get_batch_size_max(self, block_gas_limit: int) -> int:
        """The most openings whose gas limit fits one block and whose calldata a pool
        accepts (both rounded down: a batch one item too large would never be mined)."""
        fits_gas = (block_gas_limit - OPEN_GAS_BASE) // OPEN_GAS_PER_ITEM
        fits_size = (TX_DATA_BYTES_MAX - OPEN_CALLDATA_HEAD_BYTES) // OPEN_CALLDATA_ITEM_BYTES
        return max(1, min(self.batch_size_max, fits_gas, fits_size))

    def encode(self, codec: ContractCodec, payloads: Sequence[AgreementOpenPayload]) -> bytes:
        rows = [
            (
                p["agreement_id"],
                p["borrower_ref"],
                p["terms_hash"],
                p["product_code"],
                p["limit_fen"],
                p["apr_bps"],
                p["opened_at"],
            )
            for p in payloads
        ]
        function = codec.function("openAgreements")
        if function.input_types != (f"({','.join(COMMITMENT_TYPES)})[]",):
            raise ConfigurationError("openAgreements no longer takes AgreementInput[]")
        return function.selector + encode_static_tuple_array_json(COMMITMENT_TYPES, rows)

    def get_gas_limit(self, payloads: Sequence[AgreementOpenPayload]) -> int:
        return OPEN_GAS_BASE + OPEN_GAS_PER_ITEM * len(payloads)

    def encode_view(self, codec: ContractCodec, payload: AgreementOpenPayload) -> bytes:
        return codec.function("getAgreement").encode([_b32(payload["agreement_id"])])

    def classify(
        self, codec: ContractCodec, payload: AgreementOpenPayload, output: bytes
    ) -> LandingCheck:
        _record, commitment = codec.function("getAgreement").decode_output(output)
        stored = _hex(commitment)
        if stored == ZERO_HASH:
            return LandingCheck(Landing.ABSENT)
        if stored == compute_agreement_commitment(payload):
            return LandingCheck(Landing.SAME)
        return LandingCheck(
            Landing.CONFLICT,
            f"agreement {payload['agreement_id']} is on-chain with commitment {stored}, "
            f"which differs from the books' {compute_agreement_commitment(payload)}",
        )


class AgreementChangeKind(RelayKind[AgreementChangePayload]):
    """Limit amendments and status changes, batched per function, strictly in order."""

    kind = OutboxKind.AGREEMENT_CHANGE
    contract = ContractName.CREDIT_REGISTRY
    batch_size_max = AGREEMENT_BATCH_MAX
    strict_order = True
    depends_on = (OutboxKind.AGREEMENT_OPEN,)

    def get_batch_group(self, payload: AgreementChangePayload) -> str:
        return str(payload["change"])

    def encode(self, codec: ContractCodec, payloads: Sequence[AgreementChangePayload]) -> bytes:
        if payloads[0]["change"] == "limit":
            amendments = [
                (_b32(p["agreement_id"]), p["new_limit_fen"], p["reason_code"]) for p in payloads
            ]
            return codec.function("amendLimits").encode([amendments])
        changes = [(_b32(p["agreement_id"]), p["new_status"], p["reason_code"]) for p in payloads]
        return codec.function("setStatuses").encode([changes])

    def get_gas_limit(self, payloads: Sequence[AgreementChangePayload]) -> int:
        return 60_000 + 30_000 * len(payloads)

    def encode_view(self, codec: ContractCodec, payload: AgreementChangePayload) -> bytes:
        return codec.function("getAgreement").encode([_b32(payload["agreement_id"])])

    def classify(
        self, codec: ContractCodec, payload: AgreementChangePayload, output: bytes
    ) -> LandingCheck:
        record, _commitment = codec.function("getAgreement").decode_output(output)
        change_count = int(record[6])
        if change_count >= int(payload["change_seq"]):
            return LandingCheck(Landing.SAME)
        return LandingCheck(Landing.ABSENT)


class LineStateKind(RelayKind[LineStatePayload]):
    kind = OutboxKind.LINE_STATE
    contract = ContractName.CREDIT_REGISTRY

    def encode(self, codec: ContractCodec, payloads: Sequence[LineStatePayload]) -> bytes:
        (p,) = payloads
        args = [
            p["cycle_id"],
            _b32(p["root"]),
            p["leaf_count"],
            p["total_outstanding_fen"],
            [bytes.fromhex(signature[2:]) for signature in p["signatures"]],
        ]
        return codec.function("commitLineStateWithReport").encode(args)

    def get_gas_limit(self, payloads: Sequence[LineStatePayload]) -> int:
        (p,) = payloads
        return 200_000 + 10_000 * len(p["signatures"])

    def encode_view(self, codec: ContractCodec, payload: LineStatePayload) -> bytes:
        return codec.function("getLineState").encode([payload["cycle_id"]])

    def classify(
        self, codec: ContractCodec, payload: LineStatePayload, output: bytes
    ) -> LandingCheck:
        root, count, total = codec.function("getLineState").decode_output(output)
        if _hex(root) == ZERO_HASH:
            return LandingCheck(Landing.ABSENT)
        wanted = (payload["root"], payload["leaf_count"], payload["total_outstanding_fen"])
        if (_hex(root), int(count), int(total)) == wanted:
            return LandingCheck(Landing.SAME)
        return LandingCheck(
            Landing.CONFLICT,
            f"line state of cycle {payload['cycle_id']} is on-chain with root {_hex(root)}",
        )


class PartnerRegisterKind(RelayKind[PartnerRegisterPayload]):
    kind = OutboxKind.PARTNER_REGISTER
    contract = ContractName.CLEARING_HOUSE

    def encode(self, codec: ContractCodec, payloads: Sequence[PartnerRegisterPayload]) -> bytes:
        (p,) = payloads
        return codec.function("registerPartner").encode([p["partner_id"], p["role"], p["payout"]])

    def get_gas_limit(self, payloads: Sequence[PartnerRegisterPayload]) -> int:
        return 150_000

    def encode_view(self, codec: ContractCodec, payload: PartnerRegisterPayload) -> bytes:
        return codec.function("getPartner").encode([payload["partner_id"]])

    def classify(
        self, codec: ContractCodec, payload: PartnerRegisterPayload, output: bytes
    ) -> LandingCheck:
        ((payout, role, _active, registered),) = codec.function("getPartner").decode_output(output)
        if not registered:
            return LandingCheck(Landing.ABSENT)
        if str(payout).lower() == str(payload["payout"]).lower() and int(role) == payload["role"]:
            return LandingCheck(Landing.SAME)
        return LandingCheck(
            Landing.CONFLICT,
            f"partner {payload['partner_id']} is registered on-chain with another role or payout",
        )


class CycleProposeKind(RelayKind[CycleProposePayload]):
    kind = OutboxKind.CYCLE_PROPOSE
    contract = ContractName.CLEARING_HOUSE
    strict_order = True
    depends_on = (OutboxKind.PARTNER_REGISTER,)

    def encode(self, codec: ContractCodec, payloads: Sequence[CycleProposePayload]) -> bytes:
        (p,) = payloads
        return codec.function("proposeCycle").encode(
            [
                p["cycle_id"],
                _b32(p["entries_root"]),
                p["entry_count"],
                p["partner_ids"],
                p["net_positions_fen"],
                [bytes.fromhex(signature[2:]) for signature in p["signatures"]],
            ]
        )

    def get_gas_limit(self, payloads: Sequence[CycleProposePayload]) -> int:
        (p,) = payloads
        return 250_000 + 40_000 * len(p["partner_ids"]) + 10_000 * len(p["signatures"])

    def encode_view(self, codec: ContractCodec, payload: CycleProposePayload) -> bytes:
        return codec.function("getCycle").encode([payload["cycle_id"]])

    def classify(
        self, codec: ContractCodec, payload: CycleProposePayload, output: bytes
    ) -> LandingCheck:
        (cycle,) = codec.function("getCycle").decode_output(output)
        if int(cycle[1]) == 0:
            return LandingCheck(Landing.ABSENT)
        if _hex(cycle[0]) == payload["entries_root"] and int(cycle[6]) == payload["entry_count"]:
            return LandingCheck(Landing.SAME)
        return LandingCheck(
            Landing.CONFLICT,
            f"cycle {payload['cycle_id']} is on-chain with root {_hex(cycle[0])}",
        )


class CycleFinalizeKind(RelayKind[CycleFinalizePayload]):
    kind = OutboxKind.CYCLE_FINALIZE
    contract = ContractName.CLEARING_HOUSE
    depends_on = (OutboxKind.CYCLE_PROPOSE,)

    def encode(self, codec: ContractCodec, payloads: Sequence[CycleFinalizePayload]) -> bytes:
        (p,) = payloads
        return codec.function("finalize").encode([p["cycle_id"]])

    def get_gas_limit(self, payloads: Sequence[CycleFinalizePayload]) -> int:
        return 150_000

    def encode_view(self, codec: ContractCodec, payload: CycleFinalizePayload) -> bytes:
        return codec.function("getCycle").encode([payload["cycle_id"]])

    def classify(
        self, codec: ContractCodec, payload: CycleFinalizePayload, output: bytes
    ) -> LandingCheck:
        (cycle,) = codec.function("getCycle").decode_output(output)
        status = int(cycle[1])
        if status in (CycleStatus.FINALIZED, CycleStatus.FUNDED):
            return LandingCheck(Landing.SAME)
        if status == CycleStatus.REJECTED:
            return LandingCheck(Landing.CONFLICT, f"cycle {payload['cycle_id']} was rejected")
        return LandingCheck(Landing.ABSENT)

    def get_retry_delay_s(
        self, error_name: str, args: ErrorArgs, chain_time_s: int
    ) -> float | None:
        if error_name == "DisputeWindowOpen":
            return max(1.0, float(get_int_arg(args, "disputeDeadline")) - chain_time_s)
        if error_name == "UnexpectedCycleStatus" and args.get("status") == CycleStatus.DISPUTED:
            return RETRY_NOT_YET_S
        return None


class CycleClaimKind(RelayKind[CyclePartnerPayload]):
    kind = OutboxKind.CYCLE_CLAIM
    contract = ContractName.CLEARING_HOUSE
    depends_on = (OutboxKind.CYCLE_FINALIZE,)

    def encode(self, codec: ContractCodec, payloads: Sequence[CyclePartnerPayload]) -> bytes:
        (p,) = payloads
        return codec.function("claim").encode([p["cycle_id"], p["partner_id"]])

    def get_gas_limit(self, payloads: Sequence[CyclePartnerPayload]) -> int:
        return 200_000

    def encode_view(self, codec: ContractCodec, payload: CyclePartnerPayload) -> bytes:
        return codec.function("getPosition").encode([payload["cycle_id"], payload["partner_id"]])

    def classify(
        self, codec: ContractCodec, payload: CyclePartnerPayload, output: bytes
    ) -> LandingCheck:
        _net, _listed, _disputed, settled, _refunded = codec.function("getPosition").decode_output(
            output
        )
        return LandingCheck(Landing.SAME if settled else Landing.ABSENT)

    def get_retry_delay_s(
        self, error_name: str, args: ErrorArgs, chain_time_s: int
    ) -> float | None:
        waiting = (CycleStatus.PROPOSED, CycleStatus.DISPUTED, CycleStatus.FINALIZED)
        if error_name == "UnexpectedCycleStatus" and args.get("status") in waiting:
            return RETRY_NOT_YET_S
        return None


def _classify_debt(
    codec: ContractCodec, payload: CycleFundApprovePayload | CycleFundPayload, output: bytes
) -> LandingCheck:
    """A debtor's funding by `getPosition`: settled means funded (by anyone)."""
    net, _listed, _disputed, settled, _refunded = codec.function("getPosition").decode_output(
        output
    )
    if settled:
        return LandingCheck(Landing.SAME)
    if int(net) != -int(payload["amount_fen"]):
        return LandingCheck(
            Landing.CONFLICT,
            f"position of partner {payload['partner_id']} in cycle {payload['cycle_id']} is "
            f"{int(net)} fen on-chain, not -{payload['amount_fen']}",
        )
    return LandingCheck(Landing.ABSENT)


class CycleFundApproveKind(RelayKind[CycleFundApprovePayload]):
    """The treasury's ERC-20 approval of exactly the debt the next `cycle_fund` pays.

    Approvals and fundings alternate (each waits for the other kind's earlier items), so
    an approval never overwrites an allowance a funding still needs. It counts as landed
    once the debt is funded."""

    kind = OutboxKind.CYCLE_FUND_APPROVE
    contract = ContractName.SETTLEMENT_TOKEN
    view_contract = ContractName.CLEARING_HOUSE
    depends_on = (OutboxKind.CYCLE_FUND,)
    account = RelayAccount.TREASURY
    check_before_send = True

    def encode(self, codec: ContractCodec, payloads: Sequence[CycleFundApprovePayload]) -> bytes:
        (p,) = payloads
        return codec.function("approve").encode([p["spender"], p["amount_fen"]])

    def get_gas_limit(self, payloads: Sequence[CycleFundApprovePayload]) -> int:
        return 100_000

    def encode_view(self, codec: ContractCodec, payload: CycleFundApprovePayload) -> bytes:
        return codec.function("getPosition").encode([payload["cycle_id"], payload["partner_id"]])

    def classify(
        self, codec: ContractCodec, payload: CycleFundApprovePayload, output: bytes
    ) -> LandingCheck:
        return _classify_debt(codec, payload, output)


class CycleFundKind(RelayKind[CycleFundPayload]):
    """`fund(cycle, partner)` from the treasury: the ClearingHouse pulls the debt from it."""

    kind = OutboxKind.CYCLE_FUND
    contract = ContractName.CLEARING_HOUSE
    depends_on = (OutboxKind.CYCLE_FUND_APPROVE,)
    account = RelayAccount.TREASURY
    check_before_send = True

    def encode(self, codec: ContractCodec, payloads: Sequence[CycleFundPayload]) -> bytes:
        (p,) = payloads
        return codec.function("fund").encode([p["cycle_id"], p["partner_id"]])

    def get_gas_limit(self, payloads: Sequence[CycleFundPayload]) -> int:
        return 200_000

    def encode_view(self, codec: ContractCodec, payload: CycleFundPayload) -> bytes:
        return codec.function("getPosition").encode([payload["cycle_id"], payload["partner_id"]])

    def classify(
        self, codec: ContractCodec, payload: CycleFundPayload, output: bytes
    ) -> LandingCheck:
        return _classify_debt(codec, payload, output)

    def get_retry_delay_s(
        self, error_name: str, args: ErrorArgs, chain_time_s: int
    ) -> float | None:
        if error_name in FUNDING_NOT_YET_ERRORS:
            return RETRY_NOT_YET_S
        waiting = (CycleStatus.PROPOSED, CycleStatus.DISPUTED)
        if error_name == "UnexpectedCycleStatus" and args.get("status") in waiting:
            return RETRY_NOT_YET_S
        return None


class CycleDefaultKind(RelayKind[CycleDefaultPayload]):
    """`declareDefault(cycle, defaulters)` once the funding deadline has passed; until then
    the relayer retries at the deadline. Landed once the cycle is Defaulted; a cycle that
    got funded meanwhile is a conflict (nothing to declare)."""

    kind = OutboxKind.CYCLE_DEFAULT
    contract = ContractName.CLEARING_HOUSE
    depends_on = (OutboxKind.CYCLE_FINALIZE,)
    check_before_send = True

    def encode(self, codec: ContractCodec, payloads: Sequence[CycleDefaultPayload]) -> bytes:
        (p,) = payloads
        return codec.function("declareDefault").encode([p["cycle_id"], p["defaulters"]])

    def get_gas_limit(self, payloads: Sequence[CycleDefaultPayload]) -> int:
        (p,) = payloads
        return 100_000 + 10_000 * len(p["defaulters"])

    def encode_view(self, codec: ContractCodec, payload: CycleDefaultPayload) -> bytes:
        return codec.function("getCycle").encode([payload["cycle_id"]])

    def classify(
        self, codec: ContractCodec, payload: CycleDefaultPayload, output: bytes
    ) -> LandingCheck:
        (cycle,) = codec.function("getCycle").decode_output(output)
        status = int(cycle[1])
        if status == CycleStatus.DEFAULTED:
            return LandingCheck(Landing.SAME)
        if status == CycleStatus.FUNDED:
            return LandingCheck(
                Landing.CONFLICT, f"cycle {payload['cycle_id']} was funded in full meanwhile"
            )
        return LandingCheck(Landing.ABSENT)

    def get_retry_delay_s(
        self, error_name: str, args: ErrorArgs, chain_time_s: int
    ) -> float | None:
        if error_name == "FundingWindowOpen":
            return max(1.0, float(get_int_arg(args, "fundingDeadline")) - chain_time_s)
        return None


class CycleRefundKind(RelayKind[CyclePartnerPayload]):
    """`refund(cycle, partner)`: a funded debtor's deposit back from a defaulted cycle to
    its payout address (anyone may trigger it; the lender's node does, for every funder)."""

    kind = OutboxKind.CYCLE_REFUND
    contract = ContractName.CLEARING_HOUSE
    depends_on = (OutboxKind.CYCLE_DEFAULT,)

    def encode(self, codec: ContractCodec, payloads: Sequence[CyclePartnerPayload]) -> bytes:
        (p,) = payloads
        return codec.function("refund").encode([p["cycle_id"], p["partner_id"]])

    def get_gas_limit(self, payloads: Sequence[CyclePartnerPayload]) -> int:
        return 150_000

    def encode_view(self, codec: ContractCodec, payload: CyclePartnerPayload) -> bytes:
        return codec.function("getPosition").encode([payload["cycle_id"], payload["partner_id"]])

    def classify(
        self, codec: ContractCodec, payload: CyclePartnerPayload, output: bytes
    ) -> LandingCheck:
        *_flags, refunded = codec.function("getPosition").decode_output(output)
        return LandingCheck(Landing.SAME if refunded else Landing.ABSENT)


KIND_FACTORIES: Final[tuple[Callable[[], RelayKind[Any]], ...]] = (
    PartnerRegisterKind,
    AgreementOpenKind,
    AgreementChangeKind,
    LineStateKind,
    CycleProposeKind,
    CycleFinalizeKind,
    CycleClaimKind,
    CycleFundApproveKind,
    CycleFundKind,
    CycleDefaultKind,
    CycleRefundKind,
)


def build_relay_kinds(account: RelayAccount | None = None) -> dict[str, RelayKind[Any]]:
    """Every kind (sent by `account`, when given), in the order the relayer serves them
    (dependencies first)."""
    kinds = [factory() for factory in KIND_FACTORIES]
    return {
        relay_kind.kind.value: relay_kind
        for relay_kind in kinds
        if account is None or relay_kind.account is account
    }
