"""PII vault: AES-GCM envelopes, rotation, keyed lookup hashes, borrower references."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from node_api.kernel.errors import ConfigurationError
from node_api.onboarding.pii import (
    ENVELOPE_VERSION,
    NONCE_BYTES,
    LookupKind,
    PiiVault,
    PiiVaultError,
    compute_borrower_ref,
    get_envelope_key_id,
)

KEY_2024 = bytes(range(32))
KEY_2025 = bytes(range(100, 132))
LOOKUP_KEY = b"L" * 32
NODE_SECRET = b"S" * 32
PLAINTEXT = "11010519491231002X"
CONTEXT = "customer:42:id_number"


def _vault(
    keys: dict[str, bytes] | None = None, active: str = "k2024", **kwargs: bytes
) -> PiiVault:
    return PiiVault(
        keys or {"k2024": KEY_2024},
        active,
        kwargs.get("lookup_key", LOOKUP_KEY),
        node_secret=kwargs.get("node_secret", NODE_SECRET),
    )


def test_encrypt_then_decrypt_returns_the_plaintext() -> None:
    vault = _vault()
    assert vault.decrypt(vault.encrypt(PLAINTEXT, CONTEXT), CONTEXT) == PLAINTEXT


def test_envelope_carries_version_key_id_and_nonce_but_not_the_plaintext() -> None:
    blob = _vault().encrypt(PLAINTEXT, CONTEXT)
    assert blob[0] == ENVELOPE_VERSION
    assert blob[1] == len(b"k2024")
    assert blob[2:7] == b"k2024"
    assert get_envelope_key_id(blob) == "k2024"
    assert len(blob) == 2 + 5 + NONCE_BYTES + len(PLAINTEXT.encode()) + 16
    assert PLAINTEXT.encode() not in blob


def test_each_encryption_uses_a_fresh_nonce() -> None:
    vault = _vault()
    assert vault.encrypt(PLAINTEXT, CONTEXT) != vault.encrypt(PLAINTEXT, CONTEXT)


def test_RevertWhen_context_differs() -> None:
    vault = _vault()
    blob = vault.encrypt(PLAINTEXT, CONTEXT)
    with pytest.raises(PiiVaultError) as caught:
        vault.decrypt(blob, "customer:43:id_number")
    assert caught.value.code == "pii_decrypt_failed"
    assert PLAINTEXT not in str(caught.value)


def test_RevertWhen_key_under_the_same_id_is_wrong() -> None:
    blob = _vault().encrypt(PLAINTEXT, CONTEXT)
    impostor = _vault({"k2024": KEY_2025})
    with pytest.raises(PiiVaultError, match="authenticate"):
        impostor.decrypt(blob, CONTEXT)


def test_RevertWhen_key_id_is_unknown() -> None:
    blob = _vault({"k2025": KEY_2025}, "k2025").encrypt(PLAINTEXT, CONTEXT)
    with pytest.raises(PiiVaultError) as caught:
        _vault().decrypt(blob, CONTEXT)
    assert caught.value.code == "pii_unknown_key"


@pytest.mark.parametrize("position", [0, 3, 10, -1])
def test_RevertWhen_any_byte_is_tampered(position: int) -> None:
    vault = _vault({"k2024": KEY_2024, "k2025": KEY_2025})
    tampered = bytearray(vault.encrypt(PLAINTEXT, CONTEXT))
    tampered[position] ^= 0x01
    with pytest.raises(PiiVaultError):
        vault.decrypt(bytes(tampered), CONTEXT)


def test_RevertWhen_envelope_is_truncated() -> None:
    blob = _vault().encrypt(PLAINTEXT, CONTEXT)
    with pytest.raises(PiiVaultError) as caught:
        _vault().decrypt(blob[:20], CONTEXT)
    assert caught.value.code == "pii_envelope"


def test_rotation_reencrypts_under_the_active_key() -> None:
    old_blob = _vault().encrypt(PLAINTEXT, CONTEXT)
    both = _vault({"k2024": KEY_2024, "k2025": KEY_2025}, "k2025")
    assert both.needs_rotation(old_blob)
    new_blob = both.rotate(old_blob, CONTEXT)
    assert get_envelope_key_id(new_blob) == "k2025"
    assert not both.needs_rotation(new_blob)
    retired = _vault({"k2025": KEY_2025}, "k2025")
    assert retired.decrypt(new_blob, CONTEXT) == PLAINTEXT
    with pytest.raises(PiiVaultError):
        retired.decrypt(old_blob, CONTEXT)


def test_lookup_hash_is_stable_and_32_bytes() -> None:
    first = _vault().lookup_hash(LookupKind.ID_NUMBER, PLAINTEXT)
    second = _vault().lookup_hash("id_number", PLAINTEXT)
    assert first == second
    assert len(first) == 32


def test_lookup_hash_depends_on_the_key() -> None:
    other = _vault(lookup_key=b"M" * 32)
    assert _vault().lookup_hash(LookupKind.PHONE, "13800138000") != other.lookup_hash(
        LookupKind.PHONE, "13800138000"
    )


def test_lookup_hash_matches_hmac_of_kind_and_normalised_value() -> None:
    expected = hmac.new(LOOKUP_KEY, b"phone\x0013800138000", hashlib.sha256).digest()
    assert _vault().lookup_hash(LookupKind.PHONE, "+86 138-0013-8000") == expected


@pytest.mark.parametrize(
    ("kind", "spellings"),
    [
        (LookupKind.PHONE, ["13800138000", "+8613800138000", "+86 138 0013 8000", "138-0013-8000"]),
        (
            LookupKind.ID_NUMBER,
            ["11010519491231002X", "11010519491231002x", " 11010519491231002X "],
        ),
        (LookupKind.DEVICE, ["ABC-123 ", "abc-123"]),
        (LookupKind.IP, ["2001:DB8:0:0:0:0:0:1", "2001:db8::1"]),
    ],
)
def test_lookup_hash_normalises_trivial_spelling_differences(
    kind: LookupKind, spellings: list[str]
) -> None:
    vault = _vault()
    assert len({vault.lookup_hash(kind, spelling) for spelling in spellings}) == 1


def test_lookup_hash_separates_kinds() -> None:
    vault = _vault()
    assert vault.lookup_hash(LookupKind.DEVICE, "x1") != vault.lookup_hash(LookupKind.NAME, "x1")


def test_borrower_ref_is_hmac_of_customer_id_under_node_secret() -> None:
    expected = hmac.new(NODE_SECRET, b"42", hashlib.sha256).digest()
    assert _vault().borrower_ref(42) == expected == compute_borrower_ref(NODE_SECRET, "42")
    assert len(expected) == 32


def test_RevertWhen_borrower_ref_is_asked_without_node_secret() -> None:
    vault = PiiVault({"k2024": KEY_2024}, "k2024", LOOKUP_KEY)
    with pytest.raises(ConfigurationError):
        vault.borrower_ref(42)


@pytest.mark.parametrize(
    ("keys", "active", "lookup_key"),
    [
        ({"k1": b"short"}, "k1", LOOKUP_KEY),
        ({"k1": KEY_2024}, "k2", LOOKUP_KEY),
        ({"k1": KEY_2024}, "k1", b"short"),
        ({"bad id": KEY_2024}, "bad id", LOOKUP_KEY),
        ({"": KEY_2024}, "", LOOKUP_KEY),
    ],
)
def test_RevertWhen_vault_configuration_is_unsafe(
    keys: dict[str, bytes], active: str, lookup_key: bytes
) -> None:
    with pytest.raises(ConfigurationError):
        PiiVault(keys, active, lookup_key)
