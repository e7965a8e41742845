"""Opening an approved applicant's credit line and its agreement, in one transaction.

The line (with its limit tree and ledger accounts) and the outbox row that will
anchor the agreement on-chain are written by the caller's transaction, so either
both exist or neither. On-chain the borrower is only `borrowerRef`, the terms
only their hash: the hash of the version-2 terms document that also names the model
that decided and the salted hash of the decision's inputs (`provenance.py`).
"""

from __future__ import annotations

import calendar
import hashlib
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy.engine import Connection

from node_api.kernel.outbox import AgreementOpening, OutboxRow, compute_outbox_rows, enqueue_core
from node_api.lending.lines import LineOpening, ProductLimit, open_credit_line
from node_api.lending.products import ProductTerms, compute_revolving_annual_rates
from node_api.onboarding.context import OnboardingContext
from node_api.onboarding.decision import LineLimits
from node_api.onboarding.fraud_history_sql import to_naive_utc
from node_api.onboarding.policies import OnboardingPolicy, get_chain_product_code
from node_api.onboarding.provenance import DecisionProvenance, compute_agreement_terms_row
from node_api.onboarding.provenance_tables import agreement_terms_table


@dataclass(slots=True)
class AgreementRows:
    """An opened line's agreement rows that the caller writes later in its transaction
    (the decision writes them with its other rows in one statement)."""

    terms: list[dict[str, Any]] = field(default_factory=list)
    """The terms document's row (`compute_agreement_terms_row`)."""
    outbox: list[OutboxRow] = field(default_factory=list)
    """The outbox row that anchors the agreement (`compute_outbox_rows`)."""


def compute_agreement_id(application_id: str) -> bytes:
    """The 32-byte agreement id of the line an application opens (one per application)."""
    return hashlib.sha256(b"creditnet.agreement:" + application_id.encode("ascii")).digest()


def get_unix_day_start(as_of: date) -> int:
    """Unix seconds of UTC midnight of a business date (`openedAt` on-chain)."""
    return calendar.timegm(as_of.timetuple())


def open_line_with_agreement(
    conn: Connection,
    *,
    application_id: str,
    customer_id: str,
    limits: LineLimits,
    terms: ProductTerms,
    policy: OnboardingPolicy,
    as_of: date,
    context: OnboardingContext,
    provenance: DecisionProvenance,
    deferred: AgreementRows | None = None,
) -> tuple[int, str]:
    """Open the line at every level, store its terms document and enqueue its agreement;
    returns (line id, 0x id). With `deferred` the terms document's and the outbox's rows
    are appended there for the caller to write later in the same transaction, instead of
    inserted now."""
    opening = LineOpening(
        customer_ref=customer_id,
        opened_on=as_of,
        total_limit_fen=limits.total_fen,
        group_limits=dict(limits.group_fen),
        products=[ProductLimit(terms.product_code, terms.version, limits.product_fen)],
    )
    line_id = open_credit_line(conn, opening, context.products)
    agreement_id = compute_agreement_id(application_id)
    terms_row, agreement_terms_hash = compute_agreement_terms_row(
        agreement_id=agreement_id,
        application_id=application_id,
        customer_id=customer_id,
        terms=terms,
        provenance=provenance,
    )
    message = AgreementOpening(
        agreement_id=agreement_id,
        borrower_ref=context.vault.borrower_ref(customer_id),
        terms_hash=agreement_terms_hash,
        product_code=get_chain_product_code(policy, terms.product_code),
        limit_fen=limits.total_fen,
        apr_bps=compute_revolving_annual_rates(terms.interest).nominal_bps,
        opened_at=get_unix_day_start(as_of),
    )
    if deferred is None:
        conn.execute(agreement_terms_table.insert(), terms_row)
        enqueue_core(conn, [message])
    else:
        deferred.terms.append(terms_row)
        # Stamped with the decision's receipt time, which the decision's rows share.
        stamp = to_naive_utc(provenance.decided_at)
        deferred.outbox.extend(compute_outbox_rows([message], now=stamp))
    return line_id, "0x" + agreement_id.hex()
