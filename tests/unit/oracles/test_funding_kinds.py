"""The funding outbox messages: business keys per cycle and debtor, validated payloads,
and the landing check by `getPosition` (settled = funded, by anyone)."""

from __future__ import annotations

import pytest
from eth_abi.abi import encode as abi_encode

from node_api.kernel.errors import CreditNetValueError
from node_api.kernel.outbox import (
    CycleDefaultDeclaration,
    CycleFundApproval,
    CycleFunding,
    CycleRefund,
)
from oracles.abi_codec import ContractCodec
from oracles.compiler import CompiledContracts
from oracles.relay_kinds import (
    CycleDefaultKind,
    CycleFundApproveKind,
    CycleFundKind,
    CycleRefundKind,
    Landing,
)

HOUSE = "0x5FC8d32690cc91D4c39d9d3abcBD16989F875707"


def test_business_keys_name_the_cycle_and_the_debtor() -> None:
    assert CycleFunding(20250601, 1, 700).business_key == "cycle_fund:20250601:1"
    approval = CycleFundApproval(20250601, 1, 700, HOUSE)
    assert approval.business_key == "cycle_fund_approve:20250601:1"
    assert approval.to_payload() == {
        "cycle_id": 20250601,
        "partner_id": 1,
        "amount_fen": 700,
        "spender": HOUSE,
    }


@pytest.mark.parametrize(
    "message",
    [
        CycleFunding(1, 1, 0),
        CycleFundApproval(1, 1, -5, HOUSE),
        CycleFundApproval(1, 1, 5, "not an address"),
    ],
)
def test_invalid_fundings_are_refused(message: CycleFunding | CycleFundApproval) -> None:
    with pytest.raises(CreditNetValueError):
        message.to_payload()


def _position(net_fen: int, settled: bool) -> bytes:
    return abi_encode(
        ["int256", "bool", "bool", "bool", "bool"], [net_fen, True, False, settled, False]
    )


def test_landing_is_read_from_the_debtors_position(compiled: CompiledContracts) -> None:
    codec = ContractCodec(compiled.artifact("ClearingHouse").abi)
    payload = CycleFunding(7, 1, 700).to_payload()
    for kind in (CycleFundKind(), CycleFundApproveKind()):
        assert kind.classify(codec, payload, _position(-700, False)).landing is Landing.ABSENT  # type: ignore[arg-type]
        assert kind.classify(codec, payload, _position(-700, True)).landing is Landing.SAME  # type: ignore[arg-type]
        conflict = kind.classify(codec, payload, _position(-699, False))  # type: ignore[arg-type]
        assert conflict.landing is Landing.CONFLICT and "-699 fen" in conflict.detail


def _cycle_view(status: int) -> bytes:
    view = [b"\x01" * 32, status, 3, 100, 200, 300, 5, 700, 0, 0]
    types = ["bytes32", "uint8", "uint32", "uint64", "uint64", "uint64", "uint64"]
    return abi_encode([f"({','.join([*types, 'uint256', 'uint256', 'uint256'])})"], [view])


def test_a_default_lands_once_the_cycle_is_defaulted_and_waits_for_its_deadline(
    compiled: CompiledContracts,
) -> None:
    codec = ContractCodec(compiled.artifact("ClearingHouse").abi)
    declaration = CycleDefaultDeclaration(7, [2, 5])
    payload = declaration.to_payload()
    assert declaration.business_key == "cycle_default:7"
    assert payload == {"cycle_id": 7, "defaulters": [2, 5]}
    kind = CycleDefaultKind()
    assert kind.classify(codec, payload, _cycle_view(3)).landing is Landing.ABSENT
    assert kind.classify(codec, payload, _cycle_view(6)).landing is Landing.SAME
    assert kind.classify(codec, payload, _cycle_view(4)).landing is Landing.CONFLICT
    wait = kind.get_retry_delay_s("FundingWindowOpen", {"fundingDeadline": 1_000}, 940)
    assert wait == 60.0
    assert kind.get_retry_delay_s("DefaultersIncomplete", {}, 940) is None
    with pytest.raises(CreditNetValueError, match="ascending"):
        CycleDefaultDeclaration(7, [5, 2]).to_payload()


def test_a_refund_lands_when_the_position_is_refunded(compiled: CompiledContracts) -> None:
    codec = ContractCodec(compiled.artifact("ClearingHouse").abi)
    refund = CycleRefund(7, 2)
    assert refund.business_key == "cycle_refund:7:2"
    kind = CycleRefundKind()
    output = abi_encode(["int256", "bool", "bool", "bool", "bool"], [-700, True, False, True, True])
    assert kind.classify(codec, refund.to_payload(), output).landing is Landing.SAME
    output = abi_encode(
        ["int256", "bool", "bool", "bool", "bool"], [-700, True, False, True, False]
    )
    assert kind.classify(codec, refund.to_payload(), output).landing is Landing.ABSENT
