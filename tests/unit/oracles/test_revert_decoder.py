"""Reverts are named by the compiled ABIs' error entries, with their arguments: the
treasury's empty balance reads `ERC20InsufficientBalance(sender=…, balance=0, needed=…)`
in the relayer's log, the outbox row and `/v1/oracles/status`."""

from __future__ import annotations

from eth_abi.abi import encode as abi_encode
from eth_utils.crypto import keccak

from node_api.kernel.errors import ChainError
from node_api.kernel.outbox import OutboxKind
from node_api.runtime.settlement_scheduler import describe_failure
from oracles.abi_codec import DeployedContract, DeployedContracts
from oracles.compiler import CompiledContracts
from oracles.relay_kinds import CycleFundKind, RelayAccount, build_relay_kinds
from oracles.tx_sender import RevertDecoder

TREASURY = "0x9965507D1a55bcC2695C58ba16FB37d819B0A4dc"


def _insufficient_balance(balance: int, needed: int) -> bytes:
    selector = keccak(text="ERC20InsufficientBalance(address,uint256,uint256)")[:4]
    return selector + abi_encode(["address", "uint256", "uint256"], [TREASURY, balance, needed])


def test_the_decoder_names_erc20_insufficient_balance_with_its_arguments(
    compiled: CompiledContracts,
) -> None:
    decoder = RevertDecoder.from_compiled(compiled)
    data = _insufficient_balance(0, 1_200)
    assert decoder.decode(data) == (
        "ERC20InsufficientBalance",
        {"sender": TREASURY, "balance": 0, "needed": 1_200},
    )
    assert decoder.describe(data) == (
        f"ERC20InsufficientBalance(sender={TREASURY}, balance=0, needed=1200)"
    )


def test_an_unknown_selector_is_shown_raw(compiled: CompiledContracts) -> None:
    decoder = RevertDecoder.from_compiled(compiled)
    assert decoder.describe(bytes.fromhex("deadbeef")) == "revert 0xdeadbeef"


def test_a_failed_settlement_pass_logs_the_decoded_revert(compiled: CompiledContracts) -> None:
    from oracles.abi_codec import ContractCodec

    contracts = DeployedContracts(
        [
            DeployedContract(
                "SettlementToken",
                TREASURY,
                ContractCodec(compiled.artifact("SettlementToken").abi),
                0,
            )
        ]
    )
    data = _insufficient_balance(5, 70)
    error = ChainError("transaction would revert", code="tx_reverted", revert_data=data)
    assert describe_failure(error, contracts) == (
        f"transaction would revert: ERC20InsufficientBalance(sender={TREASURY}, balance=5, "
        "needed=70)"
    )
    as_hex = ChainError("reverted", revert_data="0x" + data.hex())
    assert "ERC20InsufficientBalance(" in describe_failure(as_hex, contracts)


def test_funding_waits_for_a_top_up_instead_of_parking() -> None:
    kind = CycleFundKind()
    assert kind.get_retry_delay_s("ERC20InsufficientBalance", {}, 0) is not None
    assert kind.get_retry_delay_s("AlreadyFunded", {}, 0) is None


def test_the_treasury_sends_only_the_funding_kinds() -> None:
    treasury = set(build_relay_kinds(RelayAccount.TREASURY))
    relayer = set(build_relay_kinds(RelayAccount.RELAYER))
    assert treasury == {OutboxKind.CYCLE_FUND_APPROVE.value, OutboxKind.CYCLE_FUND.value}
    assert not treasury & relayer
    assert treasury | relayer == set(build_relay_kinds())
