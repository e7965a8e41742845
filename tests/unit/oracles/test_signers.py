"""Signers sign only what they recompute from the books, and signatures come out sorted."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils.address import to_checksum_address

from node_api.http.problems import problem_body, problem_status
from node_api.kernel.config import Settings
from node_api.kernel.errors import CreditNetError
from oracles.eip712 import recover_signer
from oracles.signers import (
    CYCLE_REPORT_PATH,
    SIGNER_INFO_PATH,
    CycleReport,
    LineStateReport,
    LocalSigner,
    QuorumNotReachedError,
    RemoteSigner,
    ReportRefusedError,
    ReportSources,
    SignerSet,
    SignerUnavailableError,
    SigningDomain,
    build_signer_set,
    fetch_keystore_addresses,
    handle_sign_request,
    parse_remote_signers,
)

DOMAIN = SigningDomain(
    chain_id=31337,
    clearing_house="0x" + "c1" * 20,
    credit_registry="0x" + "c2" * 20,
)
BOOKS_CYCLE = CycleReport(
    cycle_id=20250131,
    entries_root=b"\x42" * 32,
    entry_count=12,
    partner_ids=(1, 2, 3),
    net_positions_fen=(-1_500, 1_000, 500),
)
BOOKS_LINE_STATE = LineStateReport(20250131, b"\x24" * 32, 40, 9_000_000)


def _books() -> ReportSources:
    return ReportSources(
        cycle=lambda cycle_id: BOOKS_CYCLE if cycle_id == BOOKS_CYCLE.cycle_id else None,
        line_state=lambda cycle_id: BOOKS_LINE_STATE if cycle_id == 20250131 else None,
    )


def _accounts(count: int) -> list[LocalAccount]:
    return [Account.from_key(bytes([index + 1]) * 32) for index in range(count)]


def test_signer_signs_a_report_that_matches_the_books() -> None:
    (account,) = _accounts(1)
    signer = LocalSigner(account, _books(), DOMAIN)
    signature = signer.sign_cycle_report(BOOKS_CYCLE)
    assert recover_signer(DOMAIN.digest_cycle_report(BOOKS_CYCLE), signature) == account.address
    line_signature = signer.sign_line_state_report(BOOKS_LINE_STATE)
    digest = DOMAIN.digest_line_state_report(BOOKS_LINE_STATE)
    assert recover_signer(digest, line_signature) == account.address


@pytest.mark.parametrize(
    ("tampered", "field"),
    [
        (replace(BOOKS_CYCLE, net_positions_fen=(-1_500, 1_100, 400)), "net_positions_fen"),
        (replace(BOOKS_CYCLE, entries_root=b"\x43" * 32), "entries_root"),
        (replace(BOOKS_CYCLE, entry_count=11), "entry_count"),
        (replace(BOOKS_CYCLE, partner_ids=(1, 2, 4)), "partner_ids"),
    ],
)
def test_RevertWhen_report_differs_from_the_books(tampered: CycleReport, field: str) -> None:
    signer = LocalSigner(_accounts(1)[0], _books(), DOMAIN)
    with pytest.raises(ReportRefusedError) as caught:
        signer.sign_cycle_report(tampered)
    assert caught.value.field == field
    assert "does not match the books" in caught.value.detail


def test_RevertWhen_the_books_have_no_such_cycle() -> None:
    signer = LocalSigner(_accounts(1)[0], _books(), DOMAIN)
    with pytest.raises(ReportRefusedError):
        signer.sign_cycle_report(replace(BOOKS_CYCLE, cycle_id=20250228))


def test_RevertWhen_signer_has_no_source_for_the_report_type() -> None:
    signer = LocalSigner(_accounts(1)[0], ReportSources(cycle=_books().cycle), DOMAIN)
    with pytest.raises(ReportRefusedError):
        signer.sign_line_state_report(BOOKS_LINE_STATE)


def test_signer_repr_shows_the_address_and_never_the_key() -> None:
    (account,) = _accounts(1)
    text = repr(LocalSigner(account, _books(), DOMAIN))
    assert account.address in text
    assert account.key.hex() not in text


def test_signer_set_orders_signatures_by_ascending_signer_address() -> None:
    accounts = _accounts(3)
    signer_set = SignerSet([LocalSigner(a, _books(), DOMAIN) for a in accounts], threshold=2)
    gathering = signer_set.gather_cycle_signatures(BOOKS_CYCLE)
    digest = DOMAIN.digest_cycle_report(BOOKS_CYCLE)
    recovered = [recover_signer(digest, signature) for signature in gathering.signatures]
    assert recovered == sorted((a.address for a in accounts), key=lambda a: int(a, 16))
    assert recovered == gathering.signers
    assert gathering.refusals == {}


def test_RevertWhen_fewer_signers_than_the_threshold_agree() -> None:
    accounts = _accounts(3)
    honest = LocalSigner(accounts[0], _books(), DOMAIN)
    wrong_books = ReportSources(cycle=lambda _id: replace(BOOKS_CYCLE, entry_count=99))
    others = [LocalSigner(a, wrong_books, DOMAIN) for a in accounts[1:]]
    signer_set = SignerSet([honest, *others], threshold=2)
    with pytest.raises(QuorumNotReachedError) as caught:
        signer_set.gather_cycle_signatures(BOOKS_CYCLE)
    assert len(caught.value.extra["refusals"]) == 2
    partial = signer_set.gather_cycle_signatures(BOOKS_CYCLE, require_quorum=False)
    assert partial.signers == [accounts[0].address]


def test_RevertWhen_threshold_is_outside_the_signer_count() -> None:
    signers = [LocalSigner(a, _books(), DOMAIN) for a in _accounts(2)]
    with pytest.raises(CreditNetError):
        SignerSet(signers, threshold=3)
    with pytest.raises(CreditNetError):
        SignerSet(signers, threshold=0)


def _remote_transport(signer: LocalSigner) -> httpx.MockTransport:
    """A remote signer endpoint served by `handle_sign_request`."""

    def handle(request: httpx.Request) -> httpx.Response:
        if request.method == "GET" and request.url.path == SIGNER_INFO_PATH:
            return httpx.Response(200, json={"address": signer.address})
        try:
            body: dict[str, Any] = json.loads(request.content)
            return httpx.Response(200, json=handle_sign_request(signer, request.url.path, body))
        except CreditNetError as error:
            return httpx.Response(problem_status(error), json=problem_body(error))

    return httpx.MockTransport(handle)


def test_remote_signer_returns_a_checked_signature() -> None:
    (account,) = _accounts(1)
    client = httpx.Client(transport=_remote_transport(LocalSigner(account, _books(), DOMAIN)))
    remote = RemoteSigner("http://signer-1", DOMAIN, client=client)
    assert remote.address == account.address
    signature = remote.sign_cycle_report(BOOKS_CYCLE)
    assert recover_signer(DOMAIN.digest_cycle_report(BOOKS_CYCLE), signature) == account.address


def test_RevertWhen_remote_signer_refuses_a_tampered_report() -> None:
    (account,) = _accounts(1)
    client = httpx.Client(transport=_remote_transport(LocalSigner(account, _books(), DOMAIN)))
    remote = RemoteSigner("http://signer-1", DOMAIN, client=client)
    with pytest.raises(ReportRefusedError):
        remote.sign_cycle_report(replace(BOOKS_CYCLE, entry_count=1))


def test_RevertWhen_remote_signer_signs_with_another_key() -> None:
    first, second = _accounts(2)
    client = httpx.Client(transport=_remote_transport(LocalSigner(second, _books(), DOMAIN)))
    remote = RemoteSigner("http://signer-1", DOMAIN, expected_address=first.address, client=client)
    with pytest.raises(SignerUnavailableError):
        remote.sign_cycle_report(BOOKS_CYCLE)


def test_unreachable_remote_signer_counts_as_a_refusal_in_the_set() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    accounts = _accounts(3)
    down = RemoteSigner(
        "http://down",
        DOMAIN,
        expected_address=accounts[2].address,
        client=httpx.Client(transport=httpx.MockTransport(refuse)),
    )
    local = [LocalSigner(a, _books(), DOMAIN) for a in accounts[:2]]
    gathering = SignerSet([*local, down], threshold=2).gather_cycle_signatures(BOOKS_CYCLE)
    assert len(gathering.signatures) == 2
    assert list(gathering.refusals) == [accounts[2].address]


def test_remote_signer_request_paths_match_the_handler() -> None:
    signer = LocalSigner(_accounts(1)[0], _books(), DOMAIN)
    answer = handle_sign_request(signer, CYCLE_REPORT_PATH, BOOKS_CYCLE.to_json())
    assert answer["address"] == signer.address
    with pytest.raises(CreditNetError):
        handle_sign_request(signer, "/v1/signer/unknown", {})


def test_report_json_round_trips() -> None:
    assert CycleReport.from_json(BOOKS_CYCLE.to_json()) == BOOKS_CYCLE
    assert LineStateReport.from_json(BOOKS_LINE_STATE.to_json()) == BOOKS_LINE_STATE
    with pytest.raises(CreditNetError):
        CycleReport.from_json({"cycle_id": 1})


def test_in_process_signer_set_comes_from_keystores(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, signer_count=2, signer_threshold=2)
    signer_set = build_signer_set(settings, _books(), DOMAIN)
    assert len(signer_set.addresses) == 2
    assert fetch_keystore_addresses(settings.signer_keystore_dir) == signer_set.addresses
    again = build_signer_set(settings, _books(), DOMAIN)
    assert again.addresses == signer_set.addresses
    for path in settings.signer_keystore_dir.glob("*.json"):
        assert "privateKey" not in path.read_text()


def test_remote_signers_setting_accepts_urls_with_optional_addresses() -> None:
    address = "0x" + "ab" * 20
    parsed = parse_remote_signers(f"http://a:9000, {address}=https://b/sign ,")
    assert parsed == [("http://a:9000", None), ("https://b/sign", address)]


def test_the_quorum_is_the_nodes_own_signers_and_every_remote_one(tmp_path: Path) -> None:
    remote = "0x" + "cd" * 20
    settings = Settings(
        data_dir=tmp_path,
        signer_count=1,
        signer_threshold=2,
        remote_signers=f"{remote}=http://partner-signer.example:9000",
    )
    signer_set = build_signer_set(settings, _books(), DOMAIN)
    own = fetch_keystore_addresses(settings.signer_keystore_dir)
    assert len(own) == 1
    assert sorted(signer_set.addresses) == sorted([*own, to_checksum_address(remote)])
