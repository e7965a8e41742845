"""What the HTTP benchmarks seed in their scratch database: a revolving purchase
product co-funded 70 % by one bank, and a lender_app key for the load generator."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from sqlalchemy.engine import Connection

from node_api.auth.keys import Role, create_api_key
from node_api.http.examples import PRODUCT_TERMS
from node_api.kernel.config import Settings
from node_api.kernel.db import Database
from node_api.ledger.business_date import set_business_date
from node_api.lending.product_versions import register_product_version
from node_api.lending.products import parse_product_terms


def register_bench_product(
    conn: Connection,
    product_code: str,
    *,
    limit_fen_min: int,
    limit_fen_max: int,
    daily_rate_ppm: int,
    bill_day_options: Sequence[int],
) -> None:
    """Version 1 of the API's example revolving product with these limits, rate and bill
    days: 50 interest-free days, 10 % minimum payment, 30 % lender / 70 % `bank-a`
    funding, sold through the app and POS channels at 30 bps."""
    terms: dict[str, object] = {
        **PRODUCT_TERMS,
        "product_code": product_code,
        "limit_fen_min": limit_fen_min,
        "limit_fen_max": limit_fen_max,
        "interest": {"method": "daily_ppm", "rate": daily_rate_ppm},
        "bill_day_options": list(bill_day_options),
        "channel_commission_bps": 30,
    }
    register_product_version(conn, parse_product_terms(terms))


def create_app_key(database: Database) -> str:
    """A lender_app API key (the token) the node started from the environment accepts."""
    pepper = Settings().api_key_pepper.get_secret_value().encode()
    with database.session() as session:
        return create_api_key(session, Role.LENDER_APP, pepper=pepper, label="bench")


def seed_application_node(
    url: str,
    business_day: date,
    product_code: str,
    *,
    daily_rate_ppm: int,
    bill_day_options: Sequence[int],
) -> str:
    """What a node needs before its first application: the business date and a product
    (`register_bench_product`, lines of 100 to 50,000 yuan); returns a lender_app key."""
    database = Database(url)
    with database.engine.begin() as conn:
        set_business_date(conn, business_day)
        register_bench_product(
            conn,
            product_code,
            limit_fen_min=10_000,
            limit_fen_max=5_000_000,
            daily_rate_ppm=daily_rate_ppm,
            bill_day_options=bill_day_options,
        )
    token = create_app_key(database)
    database.dispose()
    return token
