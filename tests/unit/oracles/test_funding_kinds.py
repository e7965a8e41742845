"""The funding outbox messages: business keys per cycle and debtor, validated payloads,
and the landing check by `getPosition` (settled = funded, by anyone)."""

from __future__ import annotations

import pytest
from eth_abi.abi import encode as abi_encode

from node_api.kernel.errors import CreditNetValueError
from node_api.kernel.outbox import CycleFundApproval, CycleFunding
from oracles.abi_codec import ContractCodec
from oracles.compiler import CompiledContracts
from oracles.relay_kinds import CycleFundApproveKind, CycleFundKind, Landing

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
    return abi_encode(["int256", "bool", "bool", "bool"], [net_fen, True, False, settled])


def test_landing_is_read_from_the_debtors_position(compiled: CompiledContracts) -> None:
    codec = ContractCodec(compiled.artifact("ClearingHouse").abi)
    payload = CycleFunding(7, 1, 700).to_payload()
    for kind in (CycleFundKind(), CycleFundApproveKind()):
        assert kind.classify(codec, payload, _position(-700, False)).landing is Landing.ABSENT  # type: ignore[arg-type]
        assert kind.classify(codec, payload, _position(-700, True)).landing is Landing.SAME  # type: ignore[arg-type]
        conflict = kind.classify(codec, payload, _position(-699, False))  # type: ignore[arg-type]
        assert conflict.landing is Landing.CONFLICT and "-699 fen" in conflict.detail
