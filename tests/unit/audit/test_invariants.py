"""Invariant checks on synthetic histories: balance, settlement, known roles and signers."""

from __future__ import annotations

from oracles.audit.audited import AuditedContracts
from oracles.audit.bytecode import CodeMatch
from oracles.audit.custody import judge_custody
from oracles.audit.events import AuditEvent
from oracles.audit.history import replay
from oracles.audit.invariants import (
    KnownAddresses,
    check_cycle_balanced,
    check_role_holders,
    check_settled_cycles,
    check_signers_known,
    compute_known_addresses,
)
from oracles.audit.source_verify import ContractVerification, DecodedCall, DeploymentFacts
from oracles.manifest import DeployedContract, Manifest
from tests.unit.audit.factory import ADDRESSES, HOUSE, TOKEN, EventMaker, fresh_state, proposed

CONTRACTS = AuditedContracts(addresses=dict(ADDRESSES), codecs={}, abis={}, deploy_blocks={})
ADMIN, RELAYER, SIGNER, STRANGER = ("0x" + f"{n:02x}" * 20 for n in (0xA1, 0xA2, 0xA3, 0xEE))
ROLE = "0x" + "ab" * 32


def test_unbalanced_cycle_fails_with_its_positions() -> None:
    state = replay([proposed(EventMaker(), 9, {1: 500, 2: -400})], fresh_state())
    check = check_cycle_balanced(state, CONTRACTS)
    assert not check.passed
    assert check.message == "1 unbalanced cycles; first: cycle 9: net positions sum to 100 fen"
    assert check.evidence[0].values["net_positions_fen"] == [500, -400]


def test_funded_cycle_with_all_claims_must_have_claimed_what_was_funded() -> None:
    make = EventMaker()
    events = [
        proposed(make, 9, {1: 300, 2: -300}),
        make("ClearingHouse", "CycleFinalized", cycleId=9, entriesRoot="0x" + "cc" * 32),
        make("ClearingHouse", "CycleFunded", cycleId=9, partnerId=2, amount=300),
        make(
            "ClearingHouse",
            "CycleClaimed",
            cycleId=9,
            partnerId=1,
            payout="0x" + "0a" * 20,
            amount=300,
        ),
    ]
    state = replay(events, fresh_state())
    assert check_settled_cycles(state, CONTRACTS).passed
    state.cycles[9].claimed_fen = 250
    failed = check_settled_cycles(state, CONTRACTS)
    assert failed.message.endswith("cycle 9: all creditors claimed 250 fen, funded 300")


def _grant(account: str) -> list[object]:
    make = EventMaker()
    return [make("CreditRegistry", "RoleGranted", role=ROLE, account=account, sender=ADMIN)]


def test_grant_to_an_unknown_address_fails_even_after_revocation() -> None:
    known = KnownAddresses(frozenset({ADMIN.lower(), RELAYER.lower()}), frozenset())
    assert check_role_holders(replay(_grant(RELAYER), fresh_state()), known).passed  # type: ignore[arg-type]
    make = EventMaker()
    events = [
        make("CreditRegistry", "RoleGranted", role=ROLE, account=STRANGER, sender=ADMIN),
        make("CreditRegistry", "RoleRevoked", role=ROLE, account=STRANGER, sender=ADMIN),
    ]
    check = check_role_holders(replay(events, fresh_state()), known)
    assert not check.passed and "revoked since" in check.message
    assert check.evidence[0].tx == events[0].ref.tx


def test_signer_set_with_a_signer_nobody_declared_fails() -> None:
    make = EventMaker()
    events = [
        make("OracleQuorum", "SignerSetChanged", version=1, signers=[SIGNER], threshold=1),
        make(
            "OracleQuorum", "SignerSetChanged", version=2, signers=[SIGNER, STRANGER], threshold=2
        ),
    ]
    known = KnownAddresses(frozenset(), frozenset({SIGNER.lower()}))
    check = check_signers_known(replay(events, fresh_state()), known, CONTRACTS)
    first = f"signer set v2 installs unknown signers {STRANGER}"
    assert check.message == f"1 signer sets with unknown signers; first: {first}"


def test_known_addresses_come_from_the_manifest_constructors_calls_and_allowlist() -> None:
    manifest = Manifest(
        chain_id=1,
        compiler_version="x",
        settings={},
        source_hashes={},
        deployer=ADMIN,
        created_at_block=1,
        contracts={
            "OracleQuorum": DeployedContract(
                address=ADDRESSES["OracleQuorum"],
                deploy_block=1,
                deploy_tx="0x" + "00" * 32,
                constructor_args="0x",
            )
        },
    )
    constructor = DecodedCall(
        "constructor",
        {"admin": ADMIN, "initialSigners": [SIGNER], "initialThreshold": 1},
        {"admin": "address", "initialSigners": "address[]", "initialThreshold": "uint256"},
    )
    verification = ContractVerification(
        name="OracleQuorum",
        address=ADDRESSES["OracleQuorum"],
        match=CodeMatch.EXACT,
        deploy_block=1,
        deploy_tx="0x",
        constructor=constructor,
        immutables={},
        chain_metadata_cid=None,
        build_metadata_cid=None,
        chain_compiler=None,
        sources_differing=(),
    )
    grant = DecodedCall(
        "grantRole", {"role": ROLE, "account": RELAYER}, {"role": "bytes32", "account": "address"}
    )
    facts = DeploymentFacts([verification], [("CreditRegistry", grant)])
    known = compute_known_addresses(manifest, facts, [STRANGER])
    assert {ADMIN, RELAYER, STRANGER, ADDRESSES["OracleQuorum"].lower()} <= known.role_holders
    assert known.signers == {SIGNER, STRANGER}


def _defaulted_history() -> list[AuditEvent]:
    """Cycle 9 funded by 2 (300 fen) and declared defaulted (3 owed 200), 2 refunded; cycle
    10 funded and half claimed; cycle 11 finalized with one of two debtors funded."""
    make = EventMaker()
    payout = "0x" + "0b" * 20
    return [
        proposed(make, 9, {1: 500, 2: -300, 3: -200}),
        make("ClearingHouse", "CycleFinalized", cycleId=9, entriesRoot="0x" + "cc" * 32),
        make("ClearingHouse", "CycleFunded", cycleId=9, partnerId=2, amount=300),
        make("ClearingHouse", "CycleDefaulted", cycleId=9, defaulters=[3], unfundedFen=200),
        make("ClearingHouse", "CycleRefunded", cycleId=9, partnerId=2, payout=payout, amount=300),
        proposed(make, 10, {1: 100, 2: 100, 3: -200}),
        make("ClearingHouse", "CycleFinalized", cycleId=10, entriesRoot="0x" + "cc" * 32),
        make("ClearingHouse", "CycleFunded", cycleId=10, partnerId=3, amount=200),
        make("ClearingHouse", "CycleClaimed", cycleId=10, partnerId=1, payout=payout, amount=100),
        proposed(make, 11, {1: 70, 2: -30, 3: -40}),
        make("ClearingHouse", "CycleFinalized", cycleId=11, entriesRoot="0x" + "cc" * 32),
        make("ClearingHouse", "CycleFunded", cycleId=11, partnerId=2, amount=30),
    ]


def test_defaulted_cycle_refunding_what_was_funded_is_settled() -> None:
    state = replay(_defaulted_history(), fresh_state())
    check = check_settled_cycles(state, CONTRACTS)
    assert check.passed and check.message.startswith("1 settled cycles")
    state.cycles[9].refunded_fen = 250
    failed = check_settled_cycles(state, CONTRACTS)
    assert failed.message.endswith("cycle 9: every funder refunded 250 fen, funded 300")
    state.cycles[9].claimed_fen = 10
    assert "claimed 10 fen from a defaulted cycle" in check_settled_cycles(state, CONTRACTS).message


def test_custody_balance_equals_what_the_cycles_still_hold() -> None:
    state = replay(_defaulted_history(), fresh_state())
    # 0 for the defaulted cycle, 200 - 100 for the funded one, 30 for the finalized one
    check = judge_custody(state, HOUSE, TOKEN, 130, None, 0)
    assert check.passed
    assert check.evidence[0].values["held_by_status_fen"] == {
        "Defaulted": 0,
        "Funded": 100,
        "Finalized": 30,
    }


def test_tokens_no_cycle_accounts_for_fail_the_custody_check() -> None:
    state = replay(_defaulted_history(), fresh_state())
    check = judge_custody(state, HOUSE, TOKEN, 230, None, 0)
    assert check.message == (
        "the clearing house holds 230 fen, but its cycles account for 130 fen "
        "(+100 fen with no way out)"
    )
    assert (check.evidence[0].address, check.evidence[0].values["expected_fen"]) == (HOUSE, 130)
    assert "(-30 fen missing)" in judge_custody(state, HOUSE, TOKEN, 100, None, 0).message
    unread = judge_custody(state, HOUSE, TOKEN, None, None, 0)
    assert not unread.passed and "could not be read" in unread.message


def test_custody_on_a_partial_replay_compares_the_window_flows() -> None:
    state = replay(_defaulted_history(), fresh_state())
    state.partial = True
    # window flows: funded 300 + 200 + 30, claimed 100, refunded 300
    assert judge_custody(state, HOUSE, TOKEN, 1_130, 1_000, 50).passed
    check = judge_custody(state, HOUSE, TOKEN, 1_131, 1_000, 50)
    assert check.message.startswith("the clearing house holds 1131 fen, but its balance before")
