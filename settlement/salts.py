"""The private salt of every settlement leaf, derived from the node's secret.

A settlement leaf hashes small fields (ids, an entry kind, an amount in fen). Unsalted,
anyone holding a proof could recover another partner's entries from the sibling hashes by
trying every plausible amount. So each leaf also hashes a 32-byte salt that only the
entry's own partner (and the node, and an auditor reading the node's export) learns:

    partner_secret = HMAC-SHA256(leaf_salt_secret,
                                 b"creditnet/partner-leaf-secret/v1" || uint32_be(partner_id))
    salt           = HMAC-SHA256(partner_secret, uint64_be(cycle_id) || uint64_be(entry_id))

`leaf_salt_secret` is the node's root secret (`Settings.leaf_salt_secret`, as UTF-8
bytes); it never leaves the node. A partner is handed its own `partner_secret` (the partner
API's `GET /v1/partner/leaf-secret`) and can re-derive the salt of each of its entries
with `PartnerSalts`, or take the salts the API sends with the entries. A partner secret
reveals nothing about the root secret nor about any other partner's secret or salts.

Nothing is stored: the books recompute the salts from the root secret whenever they serve
or export entries, so the root secret must never change while cycles salted with it are
still to be proven or audited.

`PartnerSalts.salt` is the batch hot path (a million entries per cycle close): it runs the
standard HMAC construction (RFC 2104) over SHA-256 states keyed once per partner, which is
about twice as fast as `hmac.digest` per call and gives the same bytes (the tests check it).
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Final

from node_api.kernel.config import Settings
from node_api.kernel.errors import CreditNetValueError

PARTNER_SECRET_BYTES: Final = 32
PARTNER_SECRET_DOMAIN: Final = b"creditnet/partner-leaf-secret/v1"
"""Prefix of the message keyed by the root secret, before the 4-byte partner id."""

_SHA256_BLOCK_BYTES: Final = 64
_IPAD: Final = bytes(0x36 for _ in range(_SHA256_BLOCK_BYTES))
_OPAD: Final = bytes(0x5C for _ in range(_SHA256_BLOCK_BYTES))
_UINT32_MAX: Final = 2**32 - 1
_UINT64_MAX: Final = 2**64 - 1


def derive_partner_secret(root_secret: bytes, partner_id: int) -> bytes:
    """A partner's leaf secret: HMAC-SHA256(root, domain || uint32_be(partner_id))."""
    if not 0 <= partner_id <= _UINT32_MAX:
        raise CreditNetValueError("partner id must fit uint32", field="partner_id")
    message = PARTNER_SECRET_DOMAIN + partner_id.to_bytes(4, "big")
    return hmac.digest(root_secret, message, "sha256")


def derive_salt(partner_secret: bytes, cycle_id: int, entry_id: int) -> bytes:
    """One entry's salt: HMAC-SHA256(partner_secret, uint64_be(cycle) || uint64_be(entry))."""
    if not (0 <= cycle_id <= _UINT64_MAX and 0 <= entry_id <= _UINT64_MAX):
        raise CreditNetValueError("cycle and entry ids must fit uint64", field="entry_id")
    return hmac.digest(
        partner_secret, cycle_id.to_bytes(8, "big") + entry_id.to_bytes(8, "big"), "sha256"
    )


class PartnerSalts:
    """The salts of one partner's entries, from that partner's secret alone.

    What a partner's own tooling needs to re-derive its salts; the node uses one per
    partner (through `LeafSalts`). The secret is never shown by `repr`.
    """

    __slots__ = ("_inner", "_outer", "secret")

    def __init__(self, partner_secret: bytes) -> None:
        if len(partner_secret) != PARTNER_SECRET_BYTES:
            raise CreditNetValueError("a partner leaf secret is 32 bytes", field="leaf_secret")
        self.secret = partner_secret
        key = partner_secret.ljust(_SHA256_BLOCK_BYTES, b"\x00")
        self._inner = hashlib.sha256(bytes(a ^ b for a, b in zip(key, _IPAD, strict=True)))
        self._outer = hashlib.sha256(bytes(a ^ b for a, b in zip(key, _OPAD, strict=True)))

    def salt(self, cycle_id: int, entry_id: int) -> bytes:
        """`derive_salt(secret, cycle_id, entry_id)`, from the pre-keyed SHA-256 states.

        The ids are not range-checked here: `SettlementEntry` checks them (a negative or
        oversized id fails `to_bytes` with OverflowError).
        """
        inner = self._inner.copy()
        inner.update(cycle_id.to_bytes(8, "big") + entry_id.to_bytes(8, "big"))
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()

    def __repr__(self) -> str:
        return "PartnerSalts(<secret>)"


class LeafSalts:
    """The node's salt source: the root secret, each partner's secret and salts (cached
    per partner). Never hand one to a partner: hand it `partner_secret(partner_id)`."""

    __slots__ = ("_partners", "_root")

    def __init__(self, root_secret: bytes) -> None:
        if not root_secret:
            raise CreditNetValueError("the leaf salt secret is empty", field="leaf_salt_secret")
        self._root = root_secret
        self._partners: dict[int, PartnerSalts] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> LeafSalts:
        """The node's salts, keyed by `Settings.leaf_salt_secret` (UTF-8)."""
        return cls(settings.leaf_salt_secret.get_secret_value().encode("utf-8"))

    def for_partner(self, partner_id: int) -> PartnerSalts:
        """One partner's salts (derived once, then cached)."""
        partner = self._partners.get(partner_id)
        if partner is None:
            partner = PartnerSalts(derive_partner_secret(self._root, partner_id))
            self._partners[partner_id] = partner
        return partner

    def partner_secret(self, partner_id: int) -> bytes:
        """The secret to hand partner `partner_id` (and only it)."""
        return self.for_partner(partner_id).secret

    def salt(self, cycle_id: int, entry_id: int, partner_id: int) -> bytes:
        """The salt of entry `entry_id` of `partner_id` in `cycle_id`."""
        partner = self._partners.get(partner_id) or self.for_partner(partner_id)
        return partner.salt(cycle_id, entry_id)

    def __repr__(self) -> str:
        return "LeafSalts(<secret>)"
