"""The group-committed authorization batch in two round trips on PostgreSQL: two functions.

Revision ID: 0016_use_batch_function
Revises: 0015_eod_shards

`creditnet_use_batch_open(doc)` claims the batch's idempotency keys (in the order given:
the caller sorts them by scope and key), reads back the earlier claims of the keys it
could not take, locks the claimed requests' lines with their limit trees (node id order),
reads the business date and reserves one purchase id per claimed request.
`creditnet_use_batch_write(doc)` resolves the postings' account codes, locks and checks
the floors of accounts moved toward them, and writes the purchases, the limit usage, the
stored responses (and releases), the posting batches, postings, settlement events and the
balance changes (accounts locked in id order). Both take one JSON text parameter (built
with orjson by the caller) and answer one JSON text: see `node_api/ledger/use_batch.py`
and `node_api/lending/core/batch_pg.py`, their only callers.

Each statement of a VOLATILE PL/pgSQL function takes a new snapshot (READ COMMITTED), so
a key claimed concurrently by a transaction that committed while this one waited on its
row is read back as that transaction left it, as the separate statements did before.

Expand only (two new functions): nodes of the previous release never call them. SQLite
has no functions: the batch keeps its plain statements there.
"""

from __future__ import annotations

from alembic import op

revision = "0016_use_batch_function"
down_revision = "0015_eod_shards"
branch_labels = None
depends_on = None

_OPEN = """
CREATE OR REPLACE FUNCTION creditnet_use_batch_open(p_doc text) RETURNS text
LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
    doc jsonb := p_doc::jsonb;
    wanted integer := jsonb_array_length(doc -> 'claims');
    claimed_scopes text[];
    claimed_keys text[];
    claimed_lines bigint[];
    earlier json := '[]';
    nodes json;
    business_date date;
    use_ids json;
BEGIN
    -- The first locks of the transaction: the keys, in the order given (scope, key).
    WITH given AS (
        SELECT e ->> 0 AS scope, e ->> 1 AS idempotency_key, e ->> 2 AS request_hash,
               (e ->> 3)::bigint AS credit_line_id, n
        FROM jsonb_array_elements(doc -> 'claims') WITH ORDINALITY AS g(e, n)
    ), inserted AS (
        INSERT INTO idempotency_record (scope, idempotency_key, request_hash)
        SELECT scope, idempotency_key, request_hash FROM given ORDER BY n
        ON CONFLICT (scope, idempotency_key) DO NOTHING
        RETURNING scope, idempotency_key
    )
    SELECT array_agg(i.scope), array_agg(i.idempotency_key), array_agg(g.credit_line_id)
    INTO claimed_scopes, claimed_keys, claimed_lines
    FROM inserted i
    JOIN given g ON g.scope = i.scope AND g.idempotency_key = i.idempotency_key;

    IF coalesce(cardinality(claimed_keys), 0) < wanted THEN
        -- A new statement, so a new snapshot: claims committed while we waited are seen.
        SELECT coalesce(json_agg(json_build_array(
                   r.scope, r.idempotency_key, r.request_hash, s.status_code, s.response_body)),
               '[]'::json)
        INTO earlier
        FROM unnest(
            ARRAY(SELECT e ->> 0 FROM jsonb_array_elements(doc -> 'claims') AS g(e)),
            ARRAY(SELECT e ->> 1 FROM jsonb_array_elements(doc -> 'claims') AS g(e))
        ) AS g(scope, idempotency_key)
        JOIN idempotency_record r
            ON r.scope = g.scope AND r.idempotency_key = g.idempotency_key
        LEFT JOIN idempotency_response s
            ON s.scope = r.scope AND s.idempotency_key = r.idempotency_key
        WHERE NOT EXISTS (
            SELECT 1 FROM unnest(claimed_scopes, claimed_keys) AS c(scope, idempotency_key)
            WHERE c.scope = r.scope AND c.idempotency_key = r.idempotency_key
        );
    END IF;

    -- Then the claimed requests' lines, every limit node and the line row, in node id order.
    SELECT json_agg(json_build_array(
               t.id, t.credit_line_id, t.parent_id, t.path, t.level, t.product_code,
               t.product_version, t.limit_fen, t.temp_raise_fen, t.temp_raise_expires_on,
               t.used_fen, t.customer_ref, t.status, t.currency, t.opened_on, t.bill_day)
           ORDER BY t.id)
    INTO nodes
    FROM (
        SELECT n.*, l.customer_ref, l.status, l.currency, l.opened_on, l.bill_day
        FROM limit_node n JOIN credit_line l ON l.id = n.credit_line_id
        WHERE n.credit_line_id = ANY(claimed_lines) AND l.id = ANY(claimed_lines)
        ORDER BY n.id
        FOR NO KEY UPDATE
    ) AS t;

    SELECT d.as_of INTO business_date FROM business_date d WHERE d.id = 1;

    SELECT coalesce(json_agg(nextval('purchase_id_seq'::regclass)), '[]'::json)
    INTO use_ids
    FROM generate_series(1, coalesce(cardinality(claimed_keys), 0));

    RETURN json_build_object(
        'claimed_scopes', coalesce(to_json(claimed_scopes), '[]'::json),
        'claimed_keys', coalesce(to_json(claimed_keys), '[]'::json),
        'earlier', earlier,
        'nodes', coalesce(nodes, '[]'::json),
        'business_date', business_date,
        'use_ids', use_ids
    )::text;
END
$fn$;
"""

_WRITE = """
CREATE OR REPLACE FUNCTION creditnet_use_batch_write(p_doc text) RETURNS text
LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
    doc jsonb := p_doc::jsonb;
    batch_keys text[];
    batch_kinds text[];
    batch_dates date[];
    batch_lines bigint[];
    batch_ids bigint[];
    posting_batches integer[];
    posting_codes text[];
    posting_amounts bigint[];
    posting_accounts bigint[];
    node_ids bigint[];
    node_used bigint[];
    codes text[];
    account_ids bigint[];
    missing text[];
    toward_floor boolean;
    crossed json;
BEGIN
    -- Each section of the document is read once, into arrays.
    SELECT array_agg(b ->> 0 ORDER BY n), array_agg(b ->> 1 ORDER BY n),
           array_agg((b ->> 2)::date ORDER BY n), array_agg((b ->> 3)::bigint ORDER BY n)
    INTO batch_keys, batch_kinds, batch_dates, batch_lines
    FROM jsonb_array_elements(doc -> 'batches') WITH ORDINALITY AS g(b, n);
    SELECT array_agg((p ->> 0)::integer + 1 ORDER BY n), array_agg(p ->> 1 ORDER BY n),
           array_agg((p ->> 2)::bigint ORDER BY n)
    INTO posting_batches, posting_codes, posting_amounts
    FROM jsonb_array_elements(doc -> 'postings') WITH ORDINALITY AS g(p, n);

    -- Every account the postings name, and whether any moves toward its floor.
    SELECT array_agg(c.code), array_agg(a.id),
           array_agg(c.code) FILTER (WHERE a.id IS NULL),
           coalesce(bool_or(a.floor_fen IS NOT NULL AND c.delta_fen * a.normal_sign < 0), false)
    INTO codes, account_ids, missing, toward_floor
    FROM (
        SELECT code, sum(amount_fen) AS delta_fen
        FROM unnest(posting_codes, posting_amounts) AS p(code, amount_fen)
        GROUP BY code
    ) AS c
    LEFT JOIN ledger_account a ON a.code = c.code;
    IF missing IS NOT NULL THEN
        RETURN json_build_object('missing_accounts', missing)::text;
    END IF;
    posting_accounts := ARRAY(
        SELECT a.id
        FROM unnest(posting_codes) WITH ORDINALITY AS p(code, n)
        JOIN unnest(codes, account_ids) AS a(code, id) ON a.code = p.code
        ORDER BY p.n
    );

    IF toward_floor THEN
        -- Lock every changed account in id order, and check floors before any write.
        SELECT json_build_array(a.code, (a.balance_fen + d.delta_fen) * a.normal_sign,
                                a.floor_fen)
        INTO crossed
        FROM (
            SELECT id, code, balance_fen, normal_sign, floor_fen FROM ledger_account
            WHERE id = ANY(account_ids) ORDER BY id FOR NO KEY UPDATE
        ) AS a
        JOIN (
            SELECT id, sum(amount_fen) AS delta_fen
            FROM unnest(posting_accounts, posting_amounts) AS p(id, amount_fen)
            GROUP BY id
        ) AS d ON d.id = a.id
        WHERE a.floor_fen IS NOT NULL
          AND (a.balance_fen + d.delta_fen) * a.normal_sign < a.floor_fen
        ORDER BY a.id
        LIMIT 1;
        IF crossed IS NOT NULL THEN
            RETURN json_build_object('floor_crossed', crossed)::text;
        END IF;
    END IF;

    INSERT INTO purchase (
        id, credit_line_id, kind, product_node_id, product_code, product_version,
        channel_id, merchant_id, currency, amount_fen, fee_fen, refunded_fen,
        principal_open_fen, as_of)
    SELECT (u ->> 0)::bigint, (u ->> 1)::bigint, u ->> 2, (u ->> 3)::bigint, u ->> 4,
           (u ->> 5)::integer, u ->> 6, u ->> 7, u ->> 8, (u ->> 9)::bigint,
           (u ->> 10)::bigint, 0, (u ->> 9)::bigint, (u ->> 11)::date
    FROM jsonb_array_elements(doc -> 'uses') WITH ORDINALITY AS g(u, n)
    ORDER BY n;

    -- Arrays, not the JSON rows, drive the join: the planner then looks nodes up by key
    -- (it expects 100 JSON rows, and would scan the whole table for them).
    SELECT array_agg((v ->> 0)::bigint), array_agg((v ->> 1)::bigint)
    INTO node_ids, node_used
    FROM jsonb_array_elements(doc -> 'usage') AS g(v);
    UPDATE limit_node SET used_fen = v.used_fen
    FROM unnest(node_ids, node_used) AS v(id, used_fen)
    WHERE limit_node.id = v.id;

    INSERT INTO idempotency_response (scope, idempotency_key, status_code, response_body)
    SELECT r ->> 0, r ->> 1, (r ->> 2)::smallint, r ->> 3
    FROM jsonb_array_elements(doc -> 'responses') WITH ORDINALITY AS g(r, n)
    ORDER BY n;

    IF jsonb_array_length(doc -> 'releases') > 0 THEN
        DELETE FROM idempotency_record
        USING unnest(
            ARRAY(SELECT r ->> 0 FROM jsonb_array_elements(doc -> 'releases') AS g(r)),
            ARRAY(SELECT r ->> 1 FROM jsonb_array_elements(doc -> 'releases') AS g(r))
        ) AS g(scope, idempotency_key)
        WHERE idempotency_record.scope = g.scope
          AND idempotency_record.idempotency_key = g.idempotency_key;
    END IF;

    IF batch_keys IS NULL THEN
        RETURN '{}';
    END IF;
    batch_ids := ARRAY(
        SELECT nextval('posting_batch_id_seq'::regclass)
        FROM generate_series(1, cardinality(batch_keys))
    );
    INSERT INTO posting_batch (id, business_key, kind, as_of, credit_line_id)
    SELECT * FROM unnest(batch_ids, batch_keys, batch_kinds, batch_dates, batch_lines);

    INSERT INTO posting (batch_id, account_id, amount_fen, as_of)
    SELECT batch_ids[b], account_id, amount_fen, batch_dates[b]
    FROM unnest(posting_batches, posting_accounts, posting_amounts)
         WITH ORDINALITY AS p(b, account_id, amount_fen, n)
    ORDER BY n;

    INSERT INTO settlement_event (
        batch_id, kind, as_of, credit_line_id, product_code, product_version,
        partner_ref, counterparty_ref, amount_fen)
    SELECT batch_ids[b], e ->> 1, batch_dates[b], batch_lines[b],
           e ->> 5, (e ->> 6)::integer, e ->> 3, e ->> 4, (e ->> 2)::bigint
    FROM (
        SELECT e, (e ->> 0)::integer + 1 AS b, n
        FROM jsonb_array_elements(doc -> 'events') WITH ORDINALITY AS g(e, n)
    ) AS x
    ORDER BY n;

    -- Last, the running balances: accounts locked in id order (already, when a floor was
    -- checked), so accounts every batch shares stay locked only until the commit.
    WITH deltas AS (
        SELECT id, sum(amount_fen) AS delta_fen
        FROM unnest(posting_accounts, posting_amounts) AS p(id, amount_fen)
        GROUP BY id
        HAVING sum(amount_fen) <> 0
    ), locked AS (
        SELECT l.id FROM ledger_account l
        WHERE l.id IN (SELECT id FROM deltas) ORDER BY l.id FOR NO KEY UPDATE
    )
    UPDATE ledger_account SET balance_fen = ledger_account.balance_fen + deltas.delta_fen
    FROM deltas
    WHERE ledger_account.id = deltas.id AND deltas.id IN (SELECT id FROM locked);

    RETURN '{}';
END
$fn$;
"""


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(_OPEN)
    op.execute(_WRITE)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP FUNCTION IF EXISTS creditnet_use_batch_write(text)")
    op.execute("DROP FUNCTION IF EXISTS creditnet_use_batch_open(text)")
