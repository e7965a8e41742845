"""PII vault: AES-GCM envelopes with key ids, rotation, and keyed lookup hashes.

Personal data is stored only as ciphertext produced here, and looked up only
through keyed hashes (dedupe, blacklists, velocity), never in plaintext. An
envelope is::

    version (1 byte) | key id length (1 byte) | key id (ASCII) | nonce (12 bytes) | ciphertext+tag

The associated data is the envelope header followed by the caller's `context`
(for example ``"customer:42:id_number"``), so a ciphertext copied to another row
or field fails to decrypt, and so does a tampered key id.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import unicodedata
from collections.abc import Callable, Mapping
from enum import StrEnum

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from node_api.kernel.errors import ConfigurationError, CreditNetError

ENVELOPE_VERSION = 1
NONCE_BYTES = 12
KEY_BYTES = 32
LOOKUP_KEY_BYTES_MIN = 32
KEY_ID_BYTES_MAX = 64


class LookupKind(StrEnum):
    """Kinds of looked-up values; the kind is part of the hash so kinds never collide."""

    ID_NUMBER = "id_number"
    PHONE = "phone"
    DEVICE = "device"
    IP = "ip"
    NAME = "name"


class PiiVaultError(CreditNetError):
    """A ciphertext cannot be opened: unknown key, wrong context, or tampering."""

    code = "pii_vault"


def _normalize_phone(value: str) -> str:
    digits = "".join(character for character in value if character.isdigit())
    if len(digits) == 13 and digits.startswith("86"):
        return digits[2:]
    return digits


def _normalize_ip(value: str) -> str:
    try:
        return ipaddress.ip_address(value.strip()).compressed
    except ValueError:
        return value.strip().lower()


def _normalize_text(value: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", value).casefold().split())


_NORMALIZERS: Mapping[LookupKind, Callable[[str], str]] = {
    LookupKind.ID_NUMBER: lambda value: value.strip().upper(),
    LookupKind.PHONE: _normalize_phone,
    LookupKind.DEVICE: _normalize_text,
    LookupKind.IP: _normalize_ip,
    LookupKind.NAME: _normalize_text,
}


def normalize_lookup_value(kind: LookupKind, value: str) -> str:
    """The canonical form hashed for `kind`, so trivially different spellings match."""
    return _NORMALIZERS[kind](value)


def compute_borrower_ref(node_secret: bytes, customer_id: str | int) -> bytes:
    """borrowerRef = HMAC-SHA256(node secret, customer id): the only on-chain handle."""
    return hmac.new(node_secret, str(customer_id).encode("utf-8"), hashlib.sha256).digest()


def _check_key_id(key_id: str) -> bytes:
    encoded = key_id.encode("ascii", errors="strict") if key_id.isascii() else b""
    if not 0 < len(encoded) <= KEY_ID_BYTES_MAX or not key_id.isprintable() or " " in key_id:
        raise ConfigurationError("PII key ids must be 1-64 printable ASCII characters, no spaces")
    return encoded


class PiiVault:
    """Encrypts, decrypts and re-encrypts personal data; computes keyed lookup hashes.

    `keys` maps key id to a 32-byte AES-256 key; new ciphertexts use
    `active_key_id`, and any listed key can still decrypt, which is what makes
    rotation possible without downtime.
    """

    def __init__(
        self,
        keys: Mapping[str, bytes],
        active_key_id: str,
        lookup_key: bytes,
        *,
        node_secret: bytes | None = None,
        nonce_source: Callable[[int], bytes] = os.urandom,
    ) -> None:
        if active_key_id not in keys:
            raise ConfigurationError("the active PII key id is not among the keys")
        for key_id, key in keys.items():
            _check_key_id(key_id)
            if len(key) != KEY_BYTES:
                raise ConfigurationError("PII encryption keys must be 32 bytes (AES-256)")
        if len(lookup_key) < LOOKUP_KEY_BYTES_MIN:
            raise ConfigurationError("the PII lookup key must have at least 32 bytes")
        if node_secret is not None and len(node_secret) < LOOKUP_KEY_BYTES_MIN:
            raise ConfigurationError("the node secret must have at least 32 bytes")
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keys.items()}
        self._active_key_id = active_key_id
        self._lookup_key = lookup_key
        self._node_secret = node_secret
        self._nonce_source = nonce_source

    @property
    def active_key_id(self) -> str:
        return self._active_key_id

    def encrypt(self, plaintext: str, context: str) -> bytes:
        """Seal `plaintext` under the active key, bound to `context`."""
        key_id_bytes = _check_key_id(self._active_key_id)
        header = bytes([ENVELOPE_VERSION, len(key_id_bytes)]) + key_id_bytes
        nonce = self._nonce_source(NONCE_BYTES)
        if len(nonce) != NONCE_BYTES:
            raise ConfigurationError("the nonce source must return 12 bytes")
        cipher = self._ciphers[self._active_key_id]
        sealed = cipher.encrypt(nonce, plaintext.encode("utf-8"), header + context.encode("utf-8"))
        return header + nonce + sealed

    def decrypt(self, blob: bytes, context: str) -> str:
        """Open an envelope made by any known key for the same `context`."""
        key_id, header, nonce, sealed = _split_envelope(blob)
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise PiiVaultError("ciphertext uses an unknown key id", code="pii_unknown_key")
        try:
            plaintext = cipher.decrypt(nonce, sealed, header + context.encode("utf-8"))
        except InvalidTag:
            raise PiiVaultError(
                "ciphertext does not authenticate under its key and context",
                code="pii_decrypt_failed",
            ) from None
        return plaintext.decode("utf-8")

    def needs_rotation(self, blob: bytes) -> bool:
        """True when the envelope is sealed under a key other than the active one."""
        return get_envelope_key_id(blob) != self._active_key_id

    def rotate(self, blob: bytes, context: str) -> bytes:
        """Re-encrypt under the active key; the context is needed to open the old envelope."""
        return self.encrypt(self.decrypt(blob, context), context)

    def lookup_hash(self, kind: LookupKind | str, value: str) -> bytes:
        """HMAC-SHA256(lookup key, kind NUL normalised value): stable, keyed, not reversible."""
        lookup_kind = LookupKind(kind)
        message = (
            lookup_kind.value.encode()
            + b"\x00"
            + normalize_lookup_value(lookup_kind, value).encode()
        )
        return hmac.new(self._lookup_key, message, hashlib.sha256).digest()

    def borrower_ref(self, customer_id: str | int) -> bytes:
        """The 32-byte on-chain borrower reference of a customer."""
        if self._node_secret is None:
            raise ConfigurationError("the vault was built without a node secret")
        return compute_borrower_ref(self._node_secret, customer_id)


def get_envelope_key_id(blob: bytes) -> str:
    """The key id recorded in an envelope (cheap; does not authenticate)."""
    return _split_envelope(blob)[0]


def _split_envelope(blob: bytes) -> tuple[str, bytes, bytes, bytes]:
    if len(blob) < 2 or blob[0] != ENVELOPE_VERSION:
        raise PiiVaultError("ciphertext has an unknown envelope version", code="pii_envelope")
    key_id_length = blob[1]
    header_end = 2 + key_id_length
    if key_id_length == 0 or len(blob) < header_end + NONCE_BYTES + 16:
        raise PiiVaultError("ciphertext envelope is truncated", code="pii_envelope")
    header = blob[:header_end]
    nonce = blob[header_end : header_end + NONCE_BYTES]
    try:
        key_id = blob[2:header_end].decode("ascii")
    except UnicodeDecodeError:
        raise PiiVaultError("ciphertext key id is not ASCII", code="pii_envelope") from None
    return key_id, header, nonce, blob[header_end + NONCE_BYTES :]
