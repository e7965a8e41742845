"""Leaf salts: derived as published (HMAC-SHA256, two levels), private per partner, and
reproducible by a partner from its own leaf secret alone."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

from node_api.kernel.config import Settings
from node_api.kernel.errors import CreditNetValueError
from settlement.salts import (
    PARTNER_SECRET_DOMAIN,
    LeafSalts,
    PartnerSalts,
    derive_partner_secret,
    derive_salt,
)

ROOT = b"creditnet-test-leaf-salt-secret"
uint32 = st.integers(0, 2**32 - 1)
uint64 = st.integers(0, 2**64 - 1)


def _hmac(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha256).digest()


def test_the_derivation_is_the_published_one_with_known_answers() -> None:
    partner_secret = derive_partner_secret(ROOT, 2)
    assert PARTNER_SECRET_DOMAIN == b"creditnet/partner-leaf-secret/v1"
    assert partner_secret == _hmac(ROOT, b"creditnet/partner-leaf-secret/v1" + b"\0\0\0\2")
    salt = derive_salt(partner_secret, 20250630, 1)
    assert salt == _hmac(partner_secret, (20250630).to_bytes(8, "big") + (1).to_bytes(8, "big"))
    # Pinned, so a change of derivation cannot pass unnoticed (partners re-derive with it).
    assert salt.hex() == "aabae4dc2c53e661f8e7989cb9f4ee62356c00010525e739f8a5d3826a969bc9"


@given(uint32, uint64, uint64)
def test_the_keyed_fast_path_equals_hmac_digest(
    partner_id: int, cycle_id: int, entry_id: int
) -> None:
    partner_secret = derive_partner_secret(ROOT, partner_id)
    expected = derive_salt(partner_secret, cycle_id, entry_id)
    assert PartnerSalts(partner_secret).salt(cycle_id, entry_id) == expected
    assert LeafSalts(ROOT).salt(cycle_id, entry_id, partner_id) == expected


def test_two_partners_secrets_differ_and_so_do_their_salts() -> None:
    salts = LeafSalts(ROOT)
    secrets = {salts.partner_secret(partner_id) for partner_id in range(1, 51)}
    assert len(secrets) == 50
    assert all(len(secret) == 32 for secret in secrets)
    assert salts.salt(20250630, 7, 1) != salts.salt(20250630, 7, 2)


def test_a_partners_salts_are_reproducible_from_its_secret_alone() -> None:
    node = LeafSalts(ROOT)
    handed_over = node.partner_secret(7)
    partner_side = PartnerSalts(handed_over)
    for cycle_id, entry_id in (
        (20250630, 1),
        (20250630, 2),
        (120250630, 1),
        (2**64 - 1, 2**64 - 1),
    ):
        assert partner_side.salt(cycle_id, entry_id) == node.salt(cycle_id, entry_id, 7)
        assert derive_salt(handed_over, cycle_id, entry_id) == node.salt(cycle_id, entry_id, 7)


def test_salts_differ_per_entry_and_per_cycle_and_per_root_secret() -> None:
    salts = LeafSalts(ROOT)
    drawn = {salts.salt(cycle_id, entry_id, 3) for cycle_id in (1, 2) for entry_id in range(500)}
    assert len(drawn) == 1_000
    assert LeafSalts(ROOT + b"!").salt(1, 1, 3) != salts.salt(1, 1, 3)


def test_the_node_salts_come_from_the_settings_secret_and_never_show_it() -> None:
    settings = Settings(leaf_salt_secret=SecretStr("a-node-leaf-salt-secret-of-32-bytes!"))
    salts = LeafSalts.from_settings(settings)
    assert salts.salt(5, 6, 7) == LeafSalts(b"a-node-leaf-salt-secret-of-32-bytes!").salt(5, 6, 7)
    assert "secret-of" not in repr(salts)
    assert salts.partner_secret(7).hex() not in repr(salts.for_partner(7))


def test_RevertWhen_a_secret_or_an_id_is_unusable() -> None:
    with pytest.raises(CreditNetValueError):
        LeafSalts(b"")
    with pytest.raises(CreditNetValueError):
        PartnerSalts(b"\x01" * 31)
    with pytest.raises(CreditNetValueError) as raised:
        derive_partner_secret(ROOT, 2**32)
    assert raised.value.field == "partner_id"
    with pytest.raises(CreditNetValueError):
        derive_salt(b"\x01" * 32, -1, 1)
