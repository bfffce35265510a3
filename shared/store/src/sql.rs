//! SQL generated once per kind from its catalogue definition.
//!
//! Every statement is set-based: one statement per kind and batch, fed with one
//! array parameter per column (`unnest`), so a batch of events costs a handful of
//! round trips whatever its size.

use inventory_model::KindDef;

/// Statements of one kind. Parameter order is documented on each field.
pub(crate) struct KindSql {
    /// Arrays: key columns…, data columns…, tags, raw, content_hash, first seen
    /// (an inserted row's first and last seen time), scan_id, seq. Returns the key of every row it changed (the event was newer)
    /// and whether the row is new (`xmax = 0`: inserted, not updated).
    pub upsert: String,
    /// Arrays: key columns…, observed_at, scan_id, seq. Returns the keys it changed.
    pub delete: String,
    /// `account_id, [region,] completed_at`: a completed scan saw every row of its
    /// scope that was live when it completed.
    pub touch_scope: String,
    /// `account_id, [region,] known_from_seq`: the keys of the scope's live rows
    /// whose last event is older than what the collector knew (see the fold).
    pub ghosts: String,
    /// History (`<table>_version`), see [`VersionSql`].
    pub version: VersionSql,
}

/// What the version statements return about each version they write: its
/// key, sequence and what the change log records of it.
pub(crate) const VERSION_RETURNING: &str =
    "t.seq, t.change, t.valid_from, t.scan_id, t.request_id, t.trace_id, t.content_hash";

/// Session settings of a fold transaction (see `apply_batch`).
pub(crate) const FOLD_SETTINGS: &str =
    "SET LOCAL plan_cache_mode = force_generic_plan; SET LOCAL jit = off";

/// Statements on the one link table (`link`, partitioned by link name into
/// the `l_…` tables), whatever the link: a batch writes every link type with
/// these. Arrays: link, account_id, region, owner id (the declaring
/// resource's), and, per statement, the rest. Deletions go through
/// `link_delete` (migration V10), which deletes each link type from its own
/// partition with a plan made for the batch: one call, however many link
/// types the batch holds.
pub(crate) mod links {
    /// Remove the links owners on the `a` / `b` side declared (a state that
    /// replaces them follows).
    pub const CLEAR_A: &str =
        "SELECT link_delete('a', $1::text[], $2::text[], $3::text[], $4::text[])";
    pub const CLEAR_B: &str =
        "SELECT link_delete('b', $1::text[], $2::text[], $3::text[], $4::text[])";
    /// Arrays: link, account_id, region, a_id, b_id, seq.
    pub const INSERT: &str = "INSERT INTO link (link, account_id, region, a_id, b_id, seq) \
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[]) \
         ON CONFLICT DO NOTHING";
    /// Arrays: link, account_id, region, owner id, seq: end the links deleted
    /// resources declared before their deletion. Links the other side declared
    /// stay (that side publishes only changes and would never declare them
    /// again); queries hide links to deleted resources.
    pub const UNLINK_A: &str =
        "SELECT link_delete('a', $1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[])";
    pub const UNLINK_B: &str =
        "SELECT link_delete('b', $1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[])";
}

/// Arrays: seq, source, kind, account_id, region (NULL for account-wide
/// kinds), id, change, at, scan_id, request_id, trace_id, content_hash, in
/// stream order: the change log of a batch, in one statement.
/// Appends a batch's changes to the change log and adds them to the counts of
/// `resource_count`, in one statement.
pub(crate) const CHANGE_LOG_INSERT: &str = "WITH logged AS (INSERT INTO change_log \
     (seq, source, kind, account_id, region, id, change, at, scan_id, request_id, trace_id, content_hash) \
     SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], \
     $7::text[], $8::timestamptz[], $9::text[], $10::text[], $11::text[], $12::text[]) \
     RETURNING source, kind, account_id, coalesce(region, '') AS region, change) \
     INSERT INTO resource_count AS r (source, kind, account_id, region, live, created, updated, deleted) \
     SELECT source, kind, account_id, region, \
     count(*) FILTER (WHERE change = 'created') - count(*) FILTER (WHERE change = 'deleted'), \
     count(*) FILTER (WHERE change = 'created'), count(*) FILTER (WHERE change = 'updated'), \
     count(*) FILTER (WHERE change = 'deleted') \
     FROM logged GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4 \
     ON CONFLICT (source, kind, account_id, region) DO UPDATE SET \
     live = r.live + EXCLUDED.live, created = r.created + EXCLUDED.created, \
     updated = r.updated + EXCLUDED.updated, deleted = r.deleted + EXCLUDED.deleted";

/// Statements that append versions. Only the first version a batch writes for a
/// resource (`change` NULL) is compared with the stored history: same content as
/// the live version → nothing; otherwise `created` or `updated` by what precedes
/// it. Later versions of a batch were decided by the caller.
pub(crate) struct VersionSql {
    /// Arrays: key columns…, data columns…, tags, raw, content_hash, scan_id, seq,
    /// change (NULL: decide), valid_from, valid_to, request_id, trace_id, links.
    /// Returns the key and seq of every version written.
    pub insert: String,
    /// Arrays: key columns…, scan_id, seq, valid_from, valid_to, request_id,
    /// trace_id. A deletion version carries the last state of the resource; none
    /// is written if the resource has no live version before it. Returns key, seq.
    pub delete: String,
    /// Arrays: key columns…, seq, valid_from: end the open version before `seq`.
    pub close: String,
}

impl VersionSql {
    fn new(kind: &KindDef, keys: &[&str]) -> VersionSql {
        let v = format!("{}_version", kind.table);
        let data: Vec<&str> = keys
            .iter()
            .copied()
            .chain(kind.columns.iter().map(|c| c.name))
            .collect();
        let state: Vec<&str> = data
            .iter()
            .copied()
            .chain(["tags", "raw", "content_hash"])
            .collect();
        let version = [
            "scan_id",
            "seq",
            "change",
            "valid_from",
            "valid_to",
            "request_id",
            "trace_id",
            "links",
        ];
        let all: Vec<&str> = state.iter().copied().chain(version).collect();
        let mut ins: Vec<(&str, &str)> = keys.iter().map(|k| (*k, "text")).collect();
        ins.extend(kind.columns.iter().map(|c| (c.name, c.ty.sql())));
        ins.extend([
            ("tags", "jsonb"),
            ("raw", "jsonb"),
            ("content_hash", "text"),
            ("scan_id", "text"),
            ("seq", "bigint"),
            ("change", "text"),
            ("valid_from", "timestamptz"),
            ("valid_to", "timestamptz"),
            ("request_id", "text"),
            ("trace_id", "text"),
            ("links", "jsonb"),
        ]);
        let prefixed = |alias: &str, cols: &[&str]| {
            cols.iter()
                .map(|c| format!("{alias}.{c}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let returning = prefixed("t", keys) + ", " + VERSION_RETURNING;
        let insert = format!(
            "INSERT INTO {v} AS t ({all}) \
             SELECT {u_state}, u.scan_id, u.seq, \
             COALESCE(u.change, CASE WHEN p.change <> 'deleted' THEN 'updated' ELSE 'created' END), \
             u.valid_from, u.valid_to, u.request_id, u.trace_id, u.links \
             FROM {unnest} LEFT JOIN LATERAL (SELECT p.change, p.content_hash FROM {v} p \
             WHERE u.change IS NULL AND {p_keys} AND p.seq < u.seq ORDER BY p.seq DESC LIMIT 1) p ON true \
             WHERE NOT (u.change IS NULL AND p.change IS NOT NULL AND p.change <> 'deleted' \
             AND p.content_hash = u.content_hash) \
             ON CONFLICT DO NOTHING RETURNING {returning}",
            all = all.join(", "),
            u_state = prefixed("u", &state),
            unnest = unnest(&ins),
            p_keys = join_on("p", keys),
        );
        let mut del: Vec<(&str, &str)> = keys.iter().map(|k| (*k, "text")).collect();
        del.extend([
            ("scan_id", "text"),
            ("seq", "bigint"),
            ("valid_from", "timestamptz"),
            ("valid_to", "timestamptz"),
            ("request_id", "text"),
            ("trace_id", "text"),
        ]);
        let delete = format!(
            "INSERT INTO {v} AS t ({all}) \
             SELECT {p_state}, u.scan_id, u.seq, 'deleted', u.valid_from, u.valid_to, \
             u.request_id, u.trace_id, p.links \
             FROM {unnest} CROSS JOIN LATERAL (SELECT * FROM {v} p \
             WHERE {p_keys} AND p.seq < u.seq ORDER BY p.seq DESC LIMIT 1) p \
             WHERE p.change <> 'deleted' \
             ON CONFLICT DO NOTHING RETURNING {returning}",
            all = all.join(", "),
            p_state = prefixed("p", &state),
            unnest = unnest(&del),
            p_keys = join_on("p", keys),
        );
        let mut close_cols: Vec<(&str, &str)> = keys.iter().map(|k| (*k, "text")).collect();
        close_cols.extend([("seq", "bigint"), ("valid_from", "timestamptz")]);
        let close = format!(
            "UPDATE {v} AS t SET valid_to = greatest(u.valid_from, t.valid_from) FROM {} \
             WHERE {} AND t.valid_to IS NULL AND t.seq < u.seq",
            unnest(&close_cols),
            join_on("t", keys),
        );
        VersionSql {
            insert,
            delete,
            close,
        }
    }
}

/// Columns of the natural key, in order.
pub(crate) fn key_columns(kind: &KindDef) -> Vec<&'static str> {
    let mut cols = vec!["account_id"];
    if kind.regional() {
        cols.push("region");
    }
    cols.push(kind.id_column);
    cols
}

/// `unnest($1::text[], $2::bigint[], …) AS u(a, b, …)` over `cols` (name, sql type).
fn unnest(cols: &[(&str, &str)]) -> String {
    let params: Vec<String> = cols
        .iter()
        .enumerate()
        .map(|(i, (_, ty))| format!("${}::{ty}[]", i + 1))
        .collect();
    let names: Vec<&str> = cols.iter().map(|(n, _)| *n).collect();
    format!("unnest({}) AS u({})", params.join(", "), names.join(", "))
}

fn join_on(table_alias: &str, cols: &[&str]) -> String {
    cols.iter()
        .map(|c| format!("{table_alias}.{c} = u.{c}"))
        .collect::<Vec<_>>()
        .join(" AND ")
}

impl KindSql {
    pub(crate) fn new(kind: &KindDef) -> KindSql {
        let table = kind.table;
        let keys = key_columns(kind);
        let mut cols: Vec<(&str, &str)> = keys.iter().map(|k| (*k, "text")).collect();
        cols.extend(kind.columns.iter().map(|c| (c.name, c.ty.sql())));
        cols.extend([
            ("tags", "jsonb"),
            ("raw", "jsonb"),
            ("content_hash", "text"),
            ("observed_at", "timestamptz"),
            ("scan_id", "text"),
            ("seq", "bigint"),
        ]);
        let data: Vec<&str> = cols[..cols.len() - 3].iter().map(|(n, _)| *n).collect();
        let updates: Vec<String> = data[keys.len()..]
            .iter()
            .copied()
            .chain(["scan_id", "seq"])
            .map(|c| format!("{c} = EXCLUDED.{c}"))
            .chain(["deleted_at = NULL".to_owned()])
            .collect();
        let upsert = format!(
            "INSERT INTO {table} AS t ({data}, first_seen_at, last_seen_at, scan_id, seq) \
             SELECT {data}, observed_at, observed_at, scan_id, seq FROM {unnest} \
             ON CONFLICT ({keys}) DO UPDATE SET {updates} \
             WHERE t.seq < EXCLUDED.seq RETURNING {ret}, (t.xmax = 0)",
            data = data.join(", "),
            unnest = unnest(&cols),
            keys = keys.join(", "),
            updates = updates.join(", "),
            ret = keys
                .iter()
                .map(|k| format!("t.{k}"))
                .collect::<Vec<_>>()
                .join(", "),
        );
        let mut del_cols: Vec<(&str, &str)> = keys.iter().map(|k| (*k, "text")).collect();
        del_cols.extend([
            ("observed_at", "timestamptz"),
            ("scan_id", "text"),
            ("seq", "bigint"),
        ]);
        let delete = format!(
            "UPDATE {table} AS t SET deleted_at = COALESCE(t.deleted_at, u.observed_at), scan_id = u.scan_id, seq = u.seq \
             FROM {} WHERE {} AND t.seq < u.seq RETURNING {}",
            unnest(&del_cols),
            join_on("t", &keys),
            keys.iter()
                .map(|k| format!("t.{k}"))
                .collect::<Vec<_>>()
                .join(", "),
        );
        let (scope_pred, ts) = if kind.regional() {
            ("account_id = $1 AND region = $2", 3)
        } else {
            ("account_id = $1", 2)
        };
        // Rows deleted after the scan completed (a later scan in the same batch) were
        // still live when it completed: folding must not depend on batch boundaries.
        let touch_scope = format!(
            "UPDATE {table} SET last_seen_at = ${ts} \
             WHERE {scope_pred} AND (deleted_at IS NULL OR deleted_at > ${ts}) AND last_seen_at < ${ts}"
        );
        let ghosts = format!(
            "SELECT {} FROM {table} WHERE {scope_pred} AND deleted_at IS NULL AND seq < ${ts}",
            keys.join(", ")
        );
        KindSql {
            upsert,
            delete,
            touch_scope,
            ghosts,
            version: VersionSql::new(kind, &keys),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use inventory_model::kind_by_name;

    #[test]
    fn upsert_is_guarded_by_sequence_and_numbers_every_parameter() {
        let vpc = kind_by_name("aws", "vpc").unwrap();
        let s = KindSql::new(vpc);
        assert!(s.upsert.contains("WHERE t.seq < EXCLUDED.seq"));
        assert!(
            s.upsert
                .contains("ON CONFLICT (account_id, region, vpc_id)")
        );
        // 3 key + 7 columns + tags, raw, hash + observed, scan, seq = 16 array parameters
        assert!(s.upsert.contains("$16::bigint[]") && !s.upsert.contains("$17"));
        assert!(
            s.upsert.contains("$7::boolean[]"),
            "is_default keeps its type"
        );
        assert!(s.delete.contains("t.seq < u.seq") && s.delete.contains("$6::bigint[]"));
        assert!(
            s.delete.contains("COALESCE(t.deleted_at"),
            "a repeated deletion keeps the first time"
        );
        assert!(
            !s.upsert.contains("last_seen_at = EXCLUDED"),
            "only completed scans move last_seen_at"
        );
    }

    #[test]
    fn every_link_type_is_written_with_the_same_statements() {
        for sql in [
            links::CLEAR_A,
            links::CLEAR_B,
            links::UNLINK_A,
            links::UNLINK_B,
        ] {
            // One call whatever the link types (link_delete, migration V10).
            assert!(sql.starts_with("SELECT link_delete("), "{sql}");
            assert!(
                sql.contains("$1::text[]") && sql.contains("$4::text[]"),
                "{sql}"
            );
        }
        assert!(links::UNLINK_A.contains("'a'") && links::UNLINK_A.contains("$5::bigint[]"));
        assert!(links::UNLINK_B.contains("'b'") && links::UNLINK_B.contains("$5::bigint[]"));
        assert!(!links::CLEAR_A.contains("$5") && links::CLEAR_B.contains("'b'"));
        assert!(links::INSERT.contains("$6::bigint[]") && !links::INSERT.contains("$7"));
        assert!(CHANGE_LOG_INSERT.contains("$12::text[]") && !CHANGE_LOG_INSERT.contains("$13"));
    }

    #[test]
    fn versions_compare_only_a_batch_first_event_with_stored_history() {
        let vpc = KindSql::new(kind_by_name("aws", "vpc").unwrap()).version;
        // 3 key + 7 columns + tags, raw, hash + scan, seq, change, from, to,
        // request, trace, links = 21 array parameters
        assert!(vpc.insert.contains("$21::jsonb[]") && !vpc.insert.contains("$22"));
        assert!(vpc.insert.starts_with("INSERT INTO aws_vpc_version AS t"));
        assert!(
            vpc.insert
                .contains("WHERE u.change IS NULL AND p.account_id = u.account_id")
        );
        assert!(vpc.delete.contains("WHERE p.change <> 'deleted'"));
        assert!(vpc.close.contains("t.valid_to IS NULL AND t.seq < u.seq"));
        let region = KindSql::new(kind_by_name("aws", "region").unwrap()).version;
        assert!(
            !region.insert.contains("u.region"),
            "account-wide kinds have no region key"
        );
    }
}
