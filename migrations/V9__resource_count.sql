-- Live resources and changes so far per (source, kind, account, region),
-- kept by the fold in the transaction that writes the change log, so that
-- `inventory_resources` and `inventory_changes_total` cost one small read
-- whatever the number of resources. The region is '' for kinds scanned per
-- account.
CREATE TABLE resource_count (
    source      text NOT NULL,
    kind        text NOT NULL,
    account_id  text NOT NULL,
    region      text NOT NULL DEFAULT '',
    live        bigint NOT NULL DEFAULT 0,
    created     bigint NOT NULL DEFAULT 0,
    updated     bigint NOT NULL DEFAULT 0,
    deleted     bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (source, kind, account_id, region)
);

-- From the change log so far: a resource is live if its last change is not a
-- deletion (retention keeps the current version of every live resource, and
-- forgets purged resources whole). Totals count the changes the log holds.
INSERT INTO resource_count (source, kind, account_id, region, live, created, updated, deleted)
SELECT t.source, t.kind, t.account_id, t.region,
       coalesce(l.live, 0), t.created, t.updated, t.deleted
FROM (
    SELECT source, kind, account_id, coalesce(region, '') AS region,
           count(*) FILTER (WHERE change = 'created') AS created,
           count(*) FILTER (WHERE change = 'updated') AS updated,
           count(*) FILTER (WHERE change = 'deleted') AS deleted
    FROM change_log GROUP BY 1, 2, 3, 4
) t
LEFT JOIN (
    SELECT source, kind, account_id, region, count(*) AS live
    FROM (
        SELECT DISTINCT ON (source, kind, account_id, coalesce(region, ''), id)
               source, kind, account_id, coalesce(region, '') AS region, change
        FROM change_log
        ORDER BY source, kind, account_id, coalesce(region, ''), id, position DESC
    ) last
    WHERE change <> 'deleted'
    GROUP BY 1, 2, 3, 4
) l USING (source, kind, account_id, region);
