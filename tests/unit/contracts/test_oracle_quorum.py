"""OracleQuorum: M-of-N signatures, sorted and unique, consumed once per consumer."""

from __future__ import annotations

import pytest
from eth_utils.crypto import keccak

from oracles.eip712 import sign_digest, sorted_signatures
from tests.unit.contracts.helpers import (
    CONSUMER_ROLE,
    DEFAULT_ADMIN_ROLE,
    PAUSER_ROLE,
    Network,
    deploy,
    events,
    expect_deploy_revert,
    expect_revert,
    send,
)

pytestmark = pytest.mark.chain

DIGEST = keccak(b"a report digest")
REPORT_ID = keccak(b"report-1")
SECP256K1_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def _addresses_ascending(net: Network) -> list[str]:
    return sorted((account.address for account in net.signers), key=lambda a: int(a, 16))


def _grant_consumer(net: Network, account_address: str) -> None:
    send(net, net.admin, net.quorum, "grantRole", CONSUMER_ROLE, account_address)


def test_deployment_installs_signer_set_version_one(net: Network) -> None:
    quorum = net.quorum.functions
    assert quorum.signers().call() == [account.address for account in net.signers]
    assert quorum.threshold().call() == net.threshold
    assert quorum.signerSetVersion().call() == 1
    assert all(quorum.isSigner(account.address).call() for account in net.signers)
    assert not quorum.isSigner(net.outsider.address).call()


def test_verify_report_accepts_threshold_signatures_in_ascending_order(net: Network) -> None:
    signatures = sorted_signatures(net.signers[: net.threshold], DIGEST)
    assert net.quorum.functions.verifyReport(DIGEST, signatures).call() is True


def test_verify_report_accepts_more_than_threshold_signatures(net: Network) -> None:
    signatures = sorted_signatures(net.signers, DIGEST)
    assert net.quorum.functions.verifyReport(DIGEST, signatures).call() is True


def test_RevertWhen_fewer_signatures_than_threshold(net: Network) -> None:
    one = sorted_signatures(net.signers[:1], DIGEST)
    expect_revert(
        net, net.outsider, net.quorum, "verifyReport", [DIGEST, one], "QuorumNotReached", [1, 2]
    )
    expect_revert(
        net, net.outsider, net.quorum, "verifyReport", [DIGEST, []], "QuorumNotReached", [0, 2]
    )


def test_RevertWhen_signatures_are_in_descending_order(net: Network) -> None:
    signatures = sorted_signatures(net.signers[:2], DIGEST)[::-1]
    low, high = sorted(
        (account.address for account in net.signers[:2]), key=lambda address: int(address, 16)
    )
    expect_revert(
        net,
        net.outsider,
        net.quorum,
        "verifyReport",
        [DIGEST, signatures],
        "SignersNotAscending",
        [1, low, high],
    )


def test_RevertWhen_the_same_signer_signs_twice(net: Network) -> None:
    signature = sign_digest(net.signers[0], DIGEST)
    address = net.signers[0].address
    expect_revert(
        net,
        net.outsider,
        net.quorum,
        "verifyReport",
        [DIGEST, [signature, signature]],
        "SignersNotAscending",
        [1, address, address],
    )


def test_RevertWhen_a_signature_comes_from_a_non_signer(net: Network) -> None:
    signatures = sorted_signatures([net.signers[0], net.outsider], DIGEST)
    index = signatures.index(sign_digest(net.outsider, DIGEST))
    expect_revert(
        net,
        net.outsider,
        net.quorum,
        "verifyReport",
        [DIGEST, signatures],
        "UnknownSigner",
        [index, net.outsider.address],
    )


def test_RevertWhen_a_signature_for_another_digest_is_used(net: Network) -> None:
    other = sorted_signatures(net.signers[:2], keccak(b"another digest"))
    decoded = expect_revert(
        net, net.outsider, net.quorum, "verifyReport", [DIGEST, other], "UnknownSigner"
    )
    assert decoded[1] not in _addresses_ascending(net)


@pytest.mark.parametrize("mutation", ["short", "high_s", "bad_v"])
def test_RevertWhen_a_signature_is_malformed(net: Network, mutation: str) -> None:
    good = sign_digest(net.signers[0], DIGEST)
    r, s, v = good[:32], int.from_bytes(good[32:64], "big"), good[64]
    if mutation == "short":
        bad = good[:64]
    elif mutation == "high_s":
        # (r, n - s, flipped v) is the same signature's malleable twin; ECDSA must refuse it.
        bad = r + (SECP256K1_ORDER - s).to_bytes(32, "big") + bytes([55 - v])
    else:
        bad = good[:64] + bytes([29])
    expect_revert(
        net,
        net.outsider,
        net.quorum,
        "verifyReport",
        [DIGEST, [bad, good]],
        "MalformedSignature",
        [0],
    )


def test_consumer_consumes_a_report_once_and_the_event_says_so(net: Network) -> None:
    _grant_consumer(net, net.relayer.address)
    signatures = sorted_signatures(net.signers[:2], DIGEST)
    receipt = send(net, net.relayer, net.quorum, "consumeReport", REPORT_ID, DIGEST, signatures)
    assert events(net.quorum, receipt, "ReportConsumed") == [
        {
            "consumer": net.relayer.address,
            "reportId": REPORT_ID,
            "digest": DIGEST,
            "signerSetVersion": 1,
        }
    ]
    assert net.quorum.functions.isReportConsumed(net.relayer.address, REPORT_ID).call()
    expect_revert(
        net,
        net.relayer,
        net.quorum,
        "consumeReport",
        [REPORT_ID, DIGEST, signatures],
        "ReportAlreadyConsumed",
        [net.relayer.address, REPORT_ID],
    )


def test_report_ids_are_namespaced_by_consumer(net: Network) -> None:
    _grant_consumer(net, net.relayer.address)
    _grant_consumer(net, net.admin.address)
    signatures = sorted_signatures(net.signers[:2], DIGEST)
    send(net, net.relayer, net.quorum, "consumeReport", REPORT_ID, DIGEST, signatures)
    send(net, net.admin, net.quorum, "consumeReport", REPORT_ID, DIGEST, signatures)
    assert net.quorum.functions.isReportConsumed(net.admin.address, REPORT_ID).call()


def test_RevertWhen_consume_report_lacks_quorum(net: Network) -> None:
    _grant_consumer(net, net.relayer.address)
    one = sorted_signatures(net.signers[:1], DIGEST)
    expect_revert(
        net,
        net.relayer,
        net.quorum,
        "consumeReport",
        [REPORT_ID, DIGEST, one],
        "QuorumNotReached",
        [1, 2],
    )
    assert not net.quorum.functions.isReportConsumed(net.relayer.address, REPORT_ID).call()


def test_RevertWhen_non_consumer_consumes_a_report(net: Network) -> None:
    signatures = sorted_signatures(net.signers[:2], DIGEST)
    expect_revert(
        net,
        net.outsider,
        net.quorum,
        "consumeReport",
        [REPORT_ID, DIGEST, signatures],
        "AccessControlUnauthorizedAccount",
        [net.outsider.address, CONSUMER_ROLE],
    )


def test_RevertWhen_consuming_while_paused(net: Network) -> None:
    _grant_consumer(net, net.relayer.address)
    send(net, net.admin, net.quorum, "pause")
    signatures = sorted_signatures(net.signers[:2], DIGEST)
    expect_revert(
        net,
        net.relayer,
        net.quorum,
        "consumeReport",
        [REPORT_ID, DIGEST, signatures],
        "EnforcedPause",
    )


def test_set_signers_replaces_the_set_and_bumps_the_version(net: Network) -> None:
    new_signers = [net.signers[2], net.outsider]
    addresses = [account.address for account in new_signers]
    receipt = send(net, net.admin, net.quorum, "setSigners", addresses, 1)
    assert events(net.quorum, receipt, "SignerSetChanged") == [
        {"version": 2, "signers": addresses, "threshold": 1}
    ]
    quorum = net.quorum.functions
    assert quorum.signers().call() == addresses
    assert quorum.threshold().call() == 1
    assert quorum.signerSetVersion().call() == 2
    assert not quorum.isSigner(net.signers[0].address).call()
    assert quorum.verifyReport(DIGEST, [sign_digest(net.outsider, DIGEST)]).call()


def test_RevertWhen_a_removed_signer_signs_after_rotation(net: Network) -> None:
    send(
        net, net.admin, net.quorum, "setSigners", [net.signers[2].address, net.outsider.address], 1
    )
    removed = sign_digest(net.signers[0], DIGEST)
    expect_revert(
        net,
        net.outsider,
        net.quorum,
        "verifyReport",
        [DIGEST, [removed]],
        "UnknownSigner",
        [0, net.signers[0].address],
    )


def test_a_signer_kept_across_rotations_stays_valid(net: Network) -> None:
    keep = net.signers[0].address
    send(net, net.admin, net.quorum, "setSigners", [keep, net.outsider.address], 2)
    send(net, net.admin, net.quorum, "setSigners", [net.outsider.address, keep], 2)
    signatures = sorted_signatures([net.signers[0], net.outsider], DIGEST)
    assert net.quorum.functions.verifyReport(DIGEST, signatures).call()


@pytest.mark.parametrize("threshold", [0, 3])
def test_RevertWhen_threshold_is_zero_or_above_signer_count(net: Network, threshold: int) -> None:
    addresses = [account.address for account in net.signers[:2]]
    expect_revert(
        net,
        net.admin,
        net.quorum,
        "setSigners",
        [addresses, threshold],
        "InvalidThreshold",
        [threshold, 2],
    )


def test_RevertWhen_a_new_signer_is_the_zero_address(net: Network) -> None:
    zero = "0x" + "00" * 20
    expect_revert(
        net,
        net.admin,
        net.quorum,
        "setSigners",
        [[net.signers[0].address, zero], 1],
        "ZeroSigner",
        [1],
    )


def test_RevertWhen_a_new_signer_is_listed_twice(net: Network) -> None:
    address = net.signers[0].address
    expect_revert(
        net,
        net.admin,
        net.quorum,
        "setSigners",
        [[address, address], 1],
        "DuplicateSigner",
        [address],
    )


def test_RevertWhen_non_admin_sets_signers(net: Network) -> None:
    expect_revert(
        net,
        net.relayer,
        net.quorum,
        "setSigners",
        [[net.relayer.address], 1],
        "AccessControlUnauthorizedAccount",
        [net.relayer.address, DEFAULT_ADMIN_ROLE],
    )


def test_RevertWhen_setting_signers_while_paused(net: Network) -> None:
    send(net, net.admin, net.quorum, "pause")
    expect_revert(
        net, net.admin, net.quorum, "setSigners", [[net.admin.address], 1], "EnforcedPause"
    )


def test_RevertWhen_non_pauser_pauses(net: Network) -> None:
    expect_revert(
        net,
        net.outsider,
        net.quorum,
        "pause",
        [],
        "AccessControlUnauthorizedAccount",
        [net.outsider.address, PAUSER_ROLE],
    )


def test_unpause_restores_consumption(net: Network) -> None:
    _grant_consumer(net, net.relayer.address)
    send(net, net.admin, net.quorum, "pause")
    send(net, net.admin, net.quorum, "unpause")
    signatures = sorted_signatures(net.signers[:2], DIGEST)
    send(net, net.relayer, net.quorum, "consumeReport", REPORT_ID, DIGEST, signatures)
    assert net.quorum.functions.isReportConsumed(net.relayer.address, REPORT_ID).call()


def test_RevertWhen_constructed_with_a_zero_admin(net: Network) -> None:
    artifact = net.compiled.artifact("OracleQuorum")
    signers = [account.address for account in net.signers]
    expect_deploy_revert(net, artifact, ["0x" + "00" * 20, signers, 2], "ZeroAdmin", [])


def test_RevertWhen_constructed_with_an_invalid_threshold(net: Network) -> None:
    artifact = net.compiled.artifact("OracleQuorum")
    signers = [account.address for account in net.signers]
    expect_deploy_revert(net, artifact, [net.admin.address, signers, 4], "InvalidThreshold", [4, 3])


def test_a_fresh_quorum_emits_its_first_signer_set(net: Network) -> None:
    artifact = net.compiled.artifact("OracleQuorum")
    signers = [account.address for account in net.signers[:2]]
    quorum = deploy(net, net.admin, artifact, net.admin.address, signers, 1)
    logs = quorum.events.SignerSetChanged().get_logs(from_block=net.w3.eth.block_number)
    assert [dict(log["args"]) for log in logs] == [
        {"version": 1, "signers": signers, "threshold": 1}
    ]
