"""SettlementToken: a 2-decimal ERC-20 minted by its admin, pausable by the pauser."""

from __future__ import annotations

import pytest

from tests.unit.contracts.helpers import MINTER_ROLE, PAUSER_ROLE, Network, expect_revert, send

pytestmark = pytest.mark.chain


def test_token_has_name_symbol_and_two_decimals(net: Network) -> None:
    token = net.token.functions
    assert token.name().call() == "CreditNet Settlement Fen"
    assert token.symbol().call() == "CNYF"
    assert token.decimals().call() == 2
    assert token.totalSupply().call() == 0


def test_admin_holds_minter_role_and_plan_grants_pauser(net: Network) -> None:
    assert net.token.functions.hasRole(MINTER_ROLE, net.admin.address).call()
    assert net.token.functions.hasRole(PAUSER_ROLE, net.admin.address).call()


def test_minter_mints_fen_to_any_address(net: Network) -> None:
    send(net, net.admin, net.token, "mint", net.partners[0].address, 12_345)
    assert net.token.functions.balanceOf(net.partners[0].address).call() == 12_345
    assert net.token.functions.totalSupply().call() == 12_345


def test_RevertWhen_non_minter_mints(net: Network) -> None:
    expect_revert(
        net,
        net.outsider,
        net.token,
        "mint",
        [net.outsider.address, 1],
        "AccessControlUnauthorizedAccount",
        [net.outsider.address, MINTER_ROLE],
    )


def test_RevertWhen_transferring_while_paused(net: Network) -> None:
    send(net, net.admin, net.token, "mint", net.partners[0].address, 100)
    send(net, net.admin, net.token, "pause")
    expect_revert(
        net, net.partners[0], net.token, "transfer", [net.partners[1].address, 1], "EnforcedPause"
    )
    expect_revert(net, net.admin, net.token, "mint", [net.admin.address, 1], "EnforcedPause")


def test_unpause_restores_transfers(net: Network) -> None:
    send(net, net.admin, net.token, "mint", net.partners[0].address, 100)
    send(net, net.admin, net.token, "pause")
    send(net, net.admin, net.token, "unpause")
    send(net, net.partners[0], net.token, "transfer", net.partners[1].address, 40)
    assert net.token.functions.balanceOf(net.partners[1].address).call() == 40


def test_RevertWhen_non_pauser_pauses_or_unpauses(net: Network) -> None:
    for function in ("pause", "unpause"):
        expect_revert(
            net,
            net.outsider,
            net.token,
            function,
            [],
            "AccessControlUnauthorizedAccount",
            [net.outsider.address, PAUSER_ROLE],
        )
