-- One link table for every link type, and one change log.
--
-- `link` is partitioned by link name; each partition is an `l_<source>_<a>_to_<b>`
-- table (the names SQL users know stay), holding the two ends' natural ids as
-- `a_id` and `b_id` in the scope (account, region) of the resource that
-- declared the link. The fold writes every link type with the same few
-- statements. Partitions are created by the generated catalogue migration.
CREATE TABLE link (
    link        text NOT NULL,
    account_id  text NOT NULL,
    region      text NOT NULL,
    a_id        text NOT NULL,
    b_id        text NOT NULL,
    seq         bigint NOT NULL,
    PRIMARY KEY (link, a_id, b_id, account_id, region)
) PARTITION BY LIST (link);
CREATE INDEX link_b_idx ON link (link, b_id, account_id, region);

-- The link tables so far become partitions, with their rows. Their columns
-- were (account_id, region, <a id>, <b id>, seq).
DO $$
DECLARE
    t text;
    a text;
    b text;
BEGIN
    FOR t IN SELECT c.relname FROM pg_class c
              WHERE c.relnamespace = current_schema()::regnamespace
                AND c.relkind = 'r' AND c.relname LIKE 'l\_%' ESCAPE '\'
              ORDER BY c.relname
    LOOP
        SELECT attname INTO a FROM pg_attribute WHERE attrelid = t::regclass AND attnum = 3;
        SELECT attname INTO b FROM pg_attribute WHERE attrelid = t::regclass AND attnum = 4;
        EXECUTE format(
            'CREATE TEMP TABLE moving ON COMMIT DROP AS SELECT %L::text AS link, account_id, region, %I AS a_id, %I AS b_id, seq FROM %I',
            t, a, b, t);
        EXECUTE format('DROP TABLE %I', t);
        EXECUTE format('CREATE TABLE %I PARTITION OF link FOR VALUES IN (%L)', t, t);
        INSERT INTO link SELECT * FROM moving;
        DROP TABLE moving;
    END LOOP;
END
$$;

-- Every change the fold records (a version written), in stream order: what the
-- change feed and the change notifier read. Appended in the transaction of the
-- batch that made it; `position` orders it within an event that changed several
-- resources, and is where the notifier stands.
CREATE TABLE change_log (
    position      bigserial PRIMARY KEY,
    seq           bigint NOT NULL,
    source        text NOT NULL,
    kind          text NOT NULL,
    account_id    text NOT NULL,
    region        text,
    id            text NOT NULL,
    change        text NOT NULL CHECK (change IN ('created', 'updated', 'deleted')),
    at            timestamptz NOT NULL,
    scan_id       text NOT NULL,
    request_id    text,
    trace_id      text,
    content_hash  text NOT NULL
);
CREATE INDEX change_log_seq_idx ON change_log (seq, position);
CREATE INDEX change_log_kind_idx ON change_log (source, kind, seq);

-- The versions written so far, in stream order. A version table `<source>_<kind>_version`
-- has the key (account_id, [region,] <id>, seq).
DO $$
DECLARE
    t text;
    keys text[];
    parts text[] := '{}';
BEGIN
    FOR t IN SELECT c.relname FROM pg_class c
              WHERE c.relnamespace = current_schema()::regnamespace
                AND c.relkind = 'r' AND c.relname LIKE '%\_version' ESCAPE '\'
              ORDER BY c.relname
    LOOP
        SELECT array_agg(a.attname::text ORDER BY array_position(i.indkey::int2[], a.attnum))
          INTO keys
          FROM pg_index i
          JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
         WHERE i.indrelid = t::regclass AND i.indisprimary;
        parts := parts || format(
            'SELECT seq, %L AS source, %L AS kind, account_id, %s AS region, %I AS id, change, valid_from, scan_id, request_id, trace_id, content_hash FROM %I',
            split_part(t, '_', 1),
            substr(regexp_replace(t, '_version$', ''), length(split_part(t, '_', 1)) + 2),
            CASE WHEN 'region' = ANY (keys) THEN 'region' ELSE 'NULL::text' END,
            keys[array_length(keys, 1) - 1],
            t);
    END LOOP;
    IF array_length(parts, 1) > 0 THEN
        EXECUTE 'INSERT INTO change_log (seq, source, kind, account_id, region, id, change, at, scan_id, request_id, trace_id, content_hash) '
             || 'SELECT * FROM (' || array_to_string(parts, ' UNION ALL ') || ') s ORDER BY seq, kind, account_id, region, id';
    END IF;
END
$$;

-- The change notifier stands at a position of the log now, not at an event.
UPDATE change_notifier n
   SET last_seq = coalesce((SELECT max(position) FROM change_log WHERE seq <= n.last_seq), 0);
ALTER TABLE change_notifier RENAME COLUMN last_seq TO last_position;
