//! SQL generated once per kind from its catalogue definition.

use inventory_model::{KINDS, KindDef, Side};

/// Statements of one kind. Parameter order is documented on each field.
pub(crate) struct KindSql {
    /// `account_id, [region,] id, columns…, tags, raw, content_hash, observed_at, scan_id, seq`;
    /// returns a row only if it applied (the event is newer than the row).
    pub upsert: String,
    /// `account_id, [region,] id, observed_at, scan_id, seq`; returns a row if it applied.
    pub delete: String,
    /// `account_id, [region,] completed_at`: a completed scan saw every live row of its scope.
    pub touch_scope: String,
    /// Links this kind declares, in `KindDef::links` order.
    pub owned_links: Vec<OwnedLinkSql>,
    /// `account_id, [region,] id`: remove every link that has this resource on either side.
    pub unlink_all: Vec<String>,
}

pub(crate) struct OwnedLinkSql {
    /// `account_id, region, owner_id`
    pub clear: String,
    /// `account_id, region, owner_id, other_id, seq`
    pub insert: String,
}

/// Columns of the natural key, in order.
pub(crate) fn key_columns(kind: &KindDef) -> Vec<&'static str> {
    let mut cols = vec!["account_id"];
    if kind.regional {
        cols.push("region");
    }
    cols.push(kind.id_column);
    cols
}

fn placeholders(from: usize, n: usize) -> String {
    (from..from + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn key_predicate(kind: &KindDef) -> String {
    key_columns(kind)
        .iter()
        .enumerate()
        .map(|(i, c)| format!("{c} = ${}", i + 1))
        .collect::<Vec<_>>()
        .join(" AND ")
}

impl KindSql {
    pub(crate) fn new(kind: &KindDef) -> KindSql {
        let table = kind.table;
        let keys = key_columns(kind);
        let nk = keys.len();
        let data: Vec<&str> = kind.columns.iter().map(|c| c.name).collect();
        let mut insert_cols: Vec<&str> = keys.clone();
        insert_cols.extend(&data);
        insert_cols.extend(["tags", "raw", "content_hash"]);
        let n_params = insert_cols.len() + 3; // + observed_at, scan_id, seq
        let obs = insert_cols.len() + 1;
        let updates: Vec<String> = data
            .iter()
            .copied()
            .chain([
                "tags",
                "raw",
                "content_hash",
                "last_seen_at",
                "scan_id",
                "seq",
            ])
            .map(|c| format!("{c} = EXCLUDED.{c}"))
            .chain(["deleted_at = NULL".to_owned()])
            .collect();
        let upsert = format!(
            "INSERT INTO {table} ({cols}, first_seen_at, last_seen_at, scan_id, seq) \
             VALUES ({vals}, ${obs}, ${obs}, ${scan}, ${seq}) \
             ON CONFLICT ({keys}) DO UPDATE SET {updates} \
             WHERE {table}.seq < EXCLUDED.seq RETURNING 1",
            cols = insert_cols.join(", "),
            vals = placeholders(1, insert_cols.len()),
            scan = obs + 1,
            seq = n_params,
            keys = keys.join(", "),
            updates = updates.join(", "),
        );
        let delete = format!(
            "UPDATE {table} SET deleted_at = ${o}, scan_id = ${s}, seq = ${q} \
             WHERE {pred} AND seq < ${q} RETURNING 1",
            pred = key_predicate(kind),
            o = nk + 1,
            s = nk + 2,
            q = nk + 3,
        );
        let scope_pred = if kind.regional {
            "account_id = $1 AND region = $2"
        } else {
            "account_id = $1"
        };
        let ts = if kind.regional { 3 } else { 2 };
        let touch_scope = format!(
            "UPDATE {table} SET last_seen_at = ${ts} \
             WHERE {scope_pred} AND deleted_at IS NULL AND last_seen_at < ${ts}"
        );
        let owned_links = kind
            .links
            .iter()
            .map(|l| {
                let (a, b) = match l.owner {
                    Side::A => ("$3", "$4"),
                    Side::B => ("$4", "$3"),
                };
                OwnedLinkSql {
                    clear: format!(
                        "DELETE FROM {} WHERE account_id = $1 AND region = $2 AND {} = $3",
                        l.table,
                        l.owner_column()
                    ),
                    insert: format!(
                        "INSERT INTO {} (account_id, region, {}, {}, seq) VALUES ($1, $2, {a}, {b}, $5) \
                         ON CONFLICT DO NOTHING",
                        l.table, l.a_column, l.b_column
                    ),
                }
            })
            .collect();
        let unlink_all = KINDS
            .iter()
            .flat_map(|k| k.links.iter())
            .filter_map(|l| {
                let column = if l.a_kind == kind.name {
                    l.a_column
                } else if l.b_kind == kind.name {
                    l.b_column
                } else {
                    return None;
                };
                Some(if kind.regional {
                    format!(
                        "DELETE FROM {} WHERE account_id = $1 AND region = $2 AND {column} = $3",
                        l.table
                    )
                } else {
                    format!(
                        "DELETE FROM {} WHERE account_id = $1 AND {column} = $2",
                        l.table
                    )
                })
            })
            .collect();
        KindSql {
            upsert,
            delete,
            touch_scope,
            owned_links,
            unlink_all,
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
        assert!(s.upsert.contains("WHERE aws_vpc.seq < EXCLUDED.seq"));
        assert!(
            s.upsert
                .contains("ON CONFLICT (account_id, region, vpc_id)")
        );
        // 3 key + 7 columns + tags, raw, hash + observed, scan, seq = 16 parameters
        assert!(s.upsert.contains("$16") && !s.upsert.contains("$17"));
        assert!(s.delete.contains("seq < $6"));
    }

    #[test]
    fn links_are_written_by_their_owner_and_removed_from_both_sides() {
        let instance = kind_by_name("aws", "instance").unwrap();
        let s = KindSql::new(instance);
        assert_eq!(s.owned_links.len(), 2);
        assert!(s.owned_links[0].insert.contains(
            "(account_id, region, vpc_id, instance_id, seq) VALUES ($1, $2, $4, $3, $5)"
        ));
        assert!(s.owned_links[1].insert.contains(
            "(account_id, region, instance_id, subnet_id, seq) VALUES ($1, $2, $3, $4, $5)"
        ));
        let subnet = KindSql::new(kind_by_name("aws", "subnet").unwrap());
        assert_eq!(subnet.unlink_all.len(), 2, "vpc→subnet and instance→subnet");
        let region = KindSql::new(kind_by_name("aws", "region").unwrap());
        assert_eq!(
            region.unlink_all,
            ["DELETE FROM l_aws_region_to_vpc WHERE account_id = $1 AND region_name = $2"]
        );
    }
}
