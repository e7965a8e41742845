"""Attacks on the ClearingHouse: a reentrant token, a fee-skimming token, replayed,
reordered and duplicated signatures, signatures for another chain or contract,
non-quorum signers, and unbalanced positions signed by a real quorum."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from web3.contract import Contract

from oracles.compiler import PROJECT_ROOT, CompiledContracts, compile_contracts
from oracles.eip712 import cycle_report_digest, sign_digest, sorted_signatures
from tests.unit.contracts.clearing import (
    CYCLE_ID,
    POSITIONS,
    cycle_of,
    propose,
    register_partners,
)
from tests.unit.contracts.helpers import (
    CONSUMER_ROLE,
    FUNDED,
    RELAYER_ROLE,
    CycleInput,
    Network,
    decode_revert,
    deploy,
    expect_revert,
    make_cycle,
    proposal_args,
    send,
    sign_cycle,
)

pytestmark = pytest.mark.chain

MOCK_DIR = Path(__file__).resolve().parents[2] / "fixtures" / "contracts"


@pytest.fixture(scope="session")
def mocks() -> CompiledContracts:
    """The test-only contracts of tests/fixtures/contracts (never in the deploy plan)."""
    return compile_contracts(MOCK_DIR, PROJECT_ROOT / "build" / "test-contracts")


def house_with_token(net: Network, token: Contract) -> Contract:
    """A ClearingHouse (dispute window 0, funding window 1 h) settling in `token`, wired to
    the quorum and the relayer."""
    artifact = net.compiled.artifact("ClearingHouse")
    house = deploy(
        net, net.admin, artifact, net.admin.address, net.quorum.address, token.address, 0, 3_600
    )
    send(net, net.admin, net.quorum, "grantRole", CONSUMER_ROLE, house.address)
    send(net, net.admin, house, "grantRole", RELAYER_ROLE, net.relayer.address)
    return house


@pytest.fixture
def hostile(net: Network, mocks: CompiledContracts) -> Iterator[tuple[Contract, Contract]]:
    """A hostile token and a ClearingHouse using it, with a finalized standard cycle
    whose payer (the admin) holds and approved enough tokens. `net.clearing_house`
    points at that house for the test."""
    token = deploy(net, net.admin, mocks.artifact("ReentrantTokenMock"))
    house = house_with_token(net, token)
    original, net.clearing_house = net.clearing_house, house
    register_partners(net)
    propose(net, make_cycle(CYCLE_ID, POSITIONS))
    send(net, net.outsider, house, "finalize", CYCLE_ID)
    send(net, net.admin, token, "mint", net.admin.address, 10**9)
    send(net, net.admin, token, "approve", house.address, 10**9)
    yield token, house
    net.clearing_house = original


def test_reentrant_token_cannot_claim_twice(
    net: Network, hostile: tuple[Contract, Contract]
) -> None:
    token, house = hostile
    send(net, net.admin, house, "fund", CYCLE_ID, 2)
    send(net, net.admin, house, "fund", CYCLE_ID, 3)
    send(net, net.admin, token, "arm", house.address, house.encode_abi("claim", [CYCLE_ID, 1]))
    send(net, net.outsider, house, "claim", CYCLE_ID, 1)
    assert token.functions.reentryAttempted().call()
    assert not token.functions.reentrySucceeded().call()
    reentry = decode_revert(net, token.functions.reentryReturnData().call())
    assert reentry == ("ReentrancyGuardReentrantCall", ())
    assert token.functions.balanceOf(net.partners[0].address).call() == 30_000
    assert token.functions.balanceOf(house.address).call() == 0
    assert cycle_of(net)["claimedFen"] == 30_000


def test_reentrant_token_cannot_fund_from_inside_a_funding(
    net: Network, hostile: tuple[Contract, Contract]
) -> None:
    token, house = hostile
    send(net, net.admin, token, "arm", house.address, house.encode_abi("fund", [CYCLE_ID, 3]))
    send(net, net.admin, house, "fund", CYCLE_ID, 2)
    assert not token.functions.reentrySucceeded().call()
    reentry = decode_revert(net, token.functions.reentryReturnData().call())
    assert reentry == ("ReentrancyGuardReentrantCall", ())
    assert cycle_of(net)["fundedFen"] == 10_000


def test_RevertWhen_a_fee_on_transfer_token_delivers_less_than_the_position(
    net: Network, hostile: tuple[Contract, Contract]
) -> None:
    token, house = hostile
    send(net, net.admin, token, "setFee", 10)
    expect_revert(net, net.admin, house, "fund", [CYCLE_ID, 2], "FundingShortfall", [10_000, 9_990])


def test_funded_total_always_matches_the_token_balance(
    net: Network, hostile: tuple[Contract, Contract]
) -> None:
    token, house = hostile
    send(net, net.admin, house, "fund", CYCLE_ID, 2)
    send(net, net.admin, house, "fund", CYCLE_ID, 3)
    assert cycle_of(net)["status"] == FUNDED
    assert token.functions.balanceOf(house.address).call() == cycle_of(net)["fundedFen"]


# --- signatures ----------------------------------------------------------------------


def _cycle(net: Network) -> CycleInput:
    register_partners(net)
    return make_cycle(CYCLE_ID, POSITIONS)


def test_RevertWhen_signatures_of_one_cycle_are_replayed_for_another(net: Network) -> None:
    cycle = _cycle(net)
    signatures = sign_cycle(net, cycle)
    propose(net, cycle)
    other = make_cycle(CYCLE_ID + 1, POSITIONS)
    expect_revert(
        net,
        net.outsider,
        net.clearing_house,
        "proposeCycle",
        proposal_args(other, signatures),
        "UnknownSigner",
    )


def test_RevertWhen_the_same_signed_report_is_submitted_twice(net: Network) -> None:
    cycle = _cycle(net)
    args = proposal_args(cycle, sign_cycle(net, cycle))
    send(net, net.relayer, net.clearing_house, "proposeCycle", *args)
    expect_revert(
        net,
        net.outsider,
        net.clearing_house,
        "proposeCycle",
        args,
        "CycleAlreadyProposed",
        [CYCLE_ID, 1],
    )


def test_RevertWhen_signatures_are_reordered(net: Network) -> None:
    cycle = _cycle(net)
    reordered = sign_cycle(net, cycle)[::-1]
    expect_revert(
        net,
        net.relayer,
        net.clearing_house,
        "proposeCycle",
        proposal_args(cycle, reordered),
        "SignersNotAscending",
    )


def test_RevertWhen_one_signature_is_duplicated_to_reach_the_threshold(net: Network) -> None:
    cycle = _cycle(net)
    one = sign_cycle(net, cycle, net.signers[:1])
    expect_revert(
        net,
        net.relayer,
        net.clearing_house,
        "proposeCycle",
        proposal_args(cycle, one + one),
        "SignersNotAscending",
        [1, net.signers[0].address, net.signers[0].address],
    )


def _digest(net: Network, cycle: CycleInput, chain_id: int, contract: str) -> bytes:
    return cycle_report_digest(
        chain_id,
        contract,
        cycle.cycle_id,
        cycle.root,
        cycle.entry_count,
        cycle.partner_ids,
        cycle.net_positions,
    )


def test_RevertWhen_signatures_were_made_for_another_chain_id(net: Network) -> None:
    cycle = _cycle(net)
    digest = _digest(net, cycle, net.chain_id + 1, net.clearing_house.address)
    signatures = sorted_signatures(net.signers[:2], digest)
    expect_revert(
        net,
        net.relayer,
        net.clearing_house,
        "proposeCycle",
        proposal_args(cycle, signatures),
        "UnknownSigner",
    )


def test_RevertWhen_signatures_were_made_for_another_clearing_house(net: Network) -> None:
    cycle = _cycle(net)
    twin = house_with_token(net, net.token)
    send(net, net.admin, twin, "registerPartner", 1, 0, net.partners[0].address)
    digest = _digest(net, cycle, net.chain_id, twin.address)
    signatures = sorted_signatures(net.signers[:2], digest)
    expect_revert(
        net,
        net.relayer,
        net.clearing_house,
        "proposeCycle",
        proposal_args(cycle, signatures),
        "UnknownSigner",
    )


def test_RevertWhen_a_non_signer_completes_the_quorum(net: Network) -> None:
    cycle = _cycle(net)
    digest = _digest(net, cycle, net.chain_id, net.clearing_house.address)
    signatures = sorted_signatures([net.signers[0], net.outsider], digest)
    index = signatures.index(sign_digest(net.outsider, digest))
    expect_revert(
        net,
        net.relayer,
        net.clearing_house,
        "proposeCycle",
        proposal_args(cycle, signatures),
        "UnknownSigner",
        [index, net.outsider.address],
    )
    assert cycle_of(net)["status"] == 0


def test_RevertWhen_only_non_signers_sign(net: Network) -> None:
    cycle = _cycle(net)
    digest = _digest(net, cycle, net.chain_id, net.clearing_house.address)
    signatures = sorted_signatures([net.outsider, net.relayer], digest)
    expect_revert(
        net,
        net.relayer,
        net.clearing_house,
        "proposeCycle",
        proposal_args(cycle, signatures),
        "UnknownSigner",
    )


def test_RevertWhen_a_quorum_signs_unbalanced_positions(net: Network) -> None:
    register_partners(net)
    cycle = make_cycle(CYCLE_ID, {1: 30_000, 2: -10_000, 3: -19_999})
    expect_revert(
        net,
        net.relayer,
        net.clearing_house,
        "proposeCycle",
        proposal_args(cycle, sign_cycle(net, cycle)),
        "CycleNotBalanced",
        [1],
    )
