-- History: every created / updated / deleted event that changed a resource is one
-- version row in <table>_version, valid from the event's observed_at until the
-- next version's. Written by the projector in the same transaction as the current
-- row, so current state and history never disagree. See docs/history.md.

-- Create <base>_version for a kind table: the kind's key, typed columns, tags,
-- raw payload, content hash, scan id and sequence, plus the version's change,
-- validity interval, request id, trace id and declared links. A kind's migration
-- calls this once after creating its table:
--     SELECT inventory_version_table('aws_image');
CREATE FUNCTION inventory_version_table(base regclass) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    t text := base::text;
    v text := base::text || '_version';
    keys text;
BEGIN
    SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY array_position(i.indkey::int2[], a.attnum))
      INTO keys
      FROM pg_index i
      JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
     WHERE i.indrelid = base AND i.indisprimary;
    IF keys IS NULL THEN
        RAISE EXCEPTION 'table % has no primary key', t;
    END IF;
    EXECUTE format('CREATE TABLE %I (LIKE %I)', v, t);
    EXECUTE format(
        'ALTER TABLE %I
            DROP COLUMN first_seen_at,
            DROP COLUMN last_seen_at,
            DROP COLUMN deleted_at,
            ADD COLUMN change text NOT NULL CHECK (change IN (''created'', ''updated'', ''deleted'')),
            ADD COLUMN valid_from timestamptz NOT NULL,
            ADD COLUMN valid_to timestamptz,
            ADD COLUMN request_id text,
            ADD COLUMN trace_id text,
            ADD COLUMN links jsonb NOT NULL DEFAULT ''{}'',
            ADD PRIMARY KEY (%s, seq)',
        v, keys);
    -- The change feed reads every version table in stream order.
    EXECUTE format('CREATE INDEX %I ON %I (seq)', v || '_seq_idx', v);
    -- Retention finds superseded versions by the end of their validity.
    EXECUTE format('CREATE INDEX %I ON %I (valid_to) WHERE valid_to IS NOT NULL', v || '_valid_to_idx', v);
END
$$;

SELECT inventory_version_table('aws_region');
SELECT inventory_version_table('aws_vpc');
SELECT inventory_version_table('aws_subnet');
SELECT inventory_version_table('aws_instance');

-- What housekeeping removed, per run and table (also logged and counted).
CREATE TABLE retention_run (
    id               bigserial PRIMARY KEY,
    ran_at           timestamptz NOT NULL DEFAULT now(),
    table_name       text NOT NULL,
    -- superseded versions that ended before this were removed
    versions_cutoff  timestamptz,
    -- resources deleted before this were removed, with their history
    deleted_cutoff   timestamptz,
    versions         bigint NOT NULL,
    resources        bigint NOT NULL
);
