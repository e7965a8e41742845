"""Clearing partners: the lender, funding banks, channels and guarantors.

A partner has two ids: `ref`, the name the books use (a product's funding split, a
purchase's channel, `settlement_event.partner_ref`), and `partner_id`, the uint32 the
ClearingHouse knows and every settlement leaf carries. Registering a partner stores it
and, in the same transaction, enqueues its on-chain registration (role and payout
address) for the relayer, so the books and the chain never disagree on who a partner is.
Exactly one partner is the lender: the hub every movement is settled against.

A guarantee names, per product code, the guarantor and the share of a charged-off
principal it pays (see `settlement.allocate_events`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from eth_utils.address import is_hex_address, to_checksum_address
from sqlalchemy import func, insert, select
from sqlalchemy.engine import Connection, RowMapping

from node_api.kernel.chain import PartnerRole
from node_api.kernel.errors import ConflictError, CreditNetValueError
from node_api.kernel.money import PPM_DENOMINATOR
from node_api.kernel.outbox import PartnerRegistration, enqueue_core
from node_api.ledger.sql import begin_write
from settlement.allocation import GuaranteeTerms
from settlement.tables import guarantee_table, partner_table

PARTNER_ID_MAX = 2**32 - 1
REF_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
PRODUCT_CODE_PATTERN = re.compile(r"^[A-Z0-9][A-Z0-9_-]{0,31}$")
DISPLAY_NAME_MAX_CHARS = 120


@dataclass(frozen=True, slots=True)
class Partner:
    """A registered partner (an organisation, never a person)."""

    partner_id: int
    ref: str
    role: PartnerRole
    display_name: str
    payout_address: str
    active: bool


@dataclass(frozen=True, slots=True)
class PartnerDirectory:
    """Every partner and guarantee, as one cycle close sees them."""

    partners: tuple[Partner, ...]
    guarantees: dict[str, GuaranteeTerms]

    def get_lender(self) -> Partner:
        """The lender; ConflictError when none is registered."""
        for partner in self.partners:
            if partner.role is PartnerRole.LENDER:
                return partner
        raise ConflictError(
            "no lender partner is registered; register the node's lender first",
            field="role",
            code="lender_not_registered",
        )

    def get_id(self, ref: str) -> int:
        """The uint32 id of the partner the books call `ref`."""
        for partner in self.partners:
            if partner.ref == ref:
                return partner.partner_id
        raise ConflictError(
            f"partner {ref} appears in the books but is not registered for settlement",
            field="partner_ref",
            code="partner_not_registered",
        )


def get_utc_now() -> datetime:
    """Operational timestamp (naive UTC) for bookkeeping columns, never business time."""
    return datetime.now(UTC).replace(tzinfo=None)


def check_payout_address(address: str) -> str:
    """The checksummed form of a 0x address, else CreditNetValueError."""
    if not (address.startswith("0x") and is_hex_address(address)):
        raise CreditNetValueError("payout address must be 0x + 40 hex digits", field="payout")
    checksummed = to_checksum_address(address)
    if int(checksummed, 16) == 0:
        raise CreditNetValueError("payout address must not be zero", field="payout")
    return str(checksummed)


def _check_registration(ref: str, display_name: str, partner_id: int | None) -> None:
    if REF_PATTERN.fullmatch(ref) is None:
        raise CreditNetValueError(
            "a partner ref uses letters, digits and _ . : - (at most 64)", field="ref"
        )
    if not 0 < len(display_name) <= DISPLAY_NAME_MAX_CHARS:
        raise CreditNetValueError("display name has 1 to 120 characters", field="display_name")
    if partner_id is not None and not 0 < partner_id <= PARTNER_ID_MAX:
        raise CreditNetValueError("partner id must be in 1..2**32-1", field="partner_id")


def _row_to_partner(mapping: RowMapping) -> Partner:
    return Partner(
        partner_id=int(mapping["id"]),
        ref=str(mapping["ref"]),
        role=PartnerRole(int(mapping["role"])),
        display_name=str(mapping["display_name"]),
        payout_address=str(mapping["payout_address"]),
        active=bool(mapping["active"]),
    )


def register_partner(
    conn: Connection,
    *,
    ref: str,
    role: PartnerRole,
    payout_address: str,
    display_name: str,
    partner_id: int | None = None,
) -> tuple[Partner, bool]:
    """Store a partner and enqueue its on-chain registration: (partner, created).

    The id is the next free one unless given. Registering the same ref again with the same
    role and payout returns the stored partner (a retry); anything else is a conflict,
    because the chain never changes a registered payout address.
    """
    _check_registration(ref, display_name, partner_id)
    payout = check_payout_address(payout_address)
    begin_write(conn)
    existing = fetch_partner_by_ref(conn, ref)
    if existing is not None:
        if existing.role is role and existing.payout_address == payout:
            return existing, False
        raise ConflictError(
            f"partner {ref} is registered with another role or payout address",
            field="ref",
            code="partner_conflict",
        )
    if role is PartnerRole.LENDER and _has_lender(conn):
        raise ConflictError("a lender is already registered", field="role", code="lender_exists")
    new_id = partner_id if partner_id is not None else _next_partner_id(conn)
    if fetch_partner_or_none(conn, new_id) is not None:
        raise ConflictError(f"partner id {new_id} is taken", field="partner_id")
    partner = Partner(new_id, ref, role, display_name, payout, True)
    conn.execute(
        insert(partner_table).values(
            id=new_id,
            ref=ref,
            role=int(role),
            display_name=display_name,
            payout_address=payout,
            active=True,
            created_at=get_utc_now(),
        )
    )
    enqueue_core(conn, [PartnerRegistration(new_id, int(role), payout)])
    return partner, True


def _has_lender(conn: Connection) -> bool:
    table = partner_table
    found = conn.execute(select(table.c.id).where(table.c.role == int(PartnerRole.LENDER)))
    return found.first() is not None


def _next_partner_id(conn: Connection) -> int:
    highest = conn.execute(select(func.max(partner_table.c.id))).scalar_one_or_none()
    next_id = 1 if highest is None else int(highest) + 1
    if next_id > PARTNER_ID_MAX:
        raise ConflictError("no partner id left", field="partner_id")
    return next_id


def fetch_partners(conn: Connection) -> list[Partner]:
    """Every partner, by id."""
    rows = conn.execute(select(partner_table).order_by(partner_table.c.id))
    return [_row_to_partner(row) for row in rows.mappings()]


def fetch_partner_or_none(conn: Connection, partner_id: int) -> Partner | None:
    statement = select(partner_table).where(partner_table.c.id == partner_id)
    row = conn.execute(statement).mappings().first()
    return None if row is None else _row_to_partner(row)


def fetch_partner_by_ref(conn: Connection, ref: str) -> Partner | None:
    row = conn.execute(select(partner_table).where(partner_table.c.ref == ref)).mappings().first()
    return None if row is None else _row_to_partner(row)


def set_guarantee(
    conn: Connection, *, product_code: str, guarantor_ref: str, share_ppm: int
) -> GuaranteeTerms:
    """Name the guarantor of a product and the share of charged-off principal it pays.

    Replaces the product's earlier guarantee; cycles already closed keep what they used.
    """
    if PRODUCT_CODE_PATTERN.fullmatch(product_code) is None:
        raise CreditNetValueError("not a product code", field="product_code")
    if not 0 < share_ppm <= PPM_DENOMINATOR:
        raise CreditNetValueError("share must be in (0, 1e6] ppm", field="share_ppm")
    guarantor = fetch_partner_by_ref(conn, guarantor_ref)
    if guarantor is None or guarantor.role is not PartnerRole.GUARANTOR:
        raise CreditNetValueError("the guarantor must be a registered guarantor", field="ref")
    table = guarantee_table
    begin_write(conn)
    conn.execute(table.delete().where(table.c.product_code == product_code))
    conn.execute(
        insert(table).values(
            product_code=product_code, partner_id=guarantor.partner_id, share_ppm=share_ppm
        )
    )
    return GuaranteeTerms(guarantor.partner_id, share_ppm)


def fetch_guarantees(conn: Connection) -> dict[str, GuaranteeTerms]:
    """Guarantee terms by product code."""
    table = guarantee_table
    return {
        str(code): GuaranteeTerms(int(partner_id), int(share_ppm))
        for code, partner_id, share_ppm in conn.execute(
            select(table.c.product_code, table.c.partner_id, table.c.share_ppm)
        )
    }


def fetch_directory(conn: Connection) -> PartnerDirectory:
    """All partners and guarantees, for one cycle close or one recomputation."""
    return PartnerDirectory(tuple(fetch_partners(conn)), fetch_guarantees(conn))
