//! The dependency graph over the link tables: breadth first from one
//! resource, level by level (one query per level and side), now or as of an
//! instant (from the owners' versions, which list their links).
//!
//! Invariants: a node is visited once (cycles end there); only live
//! resources are nodes (a link to a deleted resource is not followed); at most
//! `limit` nodes, and `truncated` says whether more were reachable.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use inventory_model::{KINDS, KindDef, LinkDef, Side, kind_by_name};
use serde_json::{Value, json};

use crate::list::valid_at;
use crate::{ReadStore, StoreError};

/// Which links a walk follows from a resource: those it points to (`out`:
/// from side a of `l_<a>_to_<b>` to b), those pointing to it (`in`), or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Out,
    In,
    Both,
}

impl Direction {
    pub fn parse(s: &str) -> Option<Direction> {
        match s {
            "out" => Some(Direction::Out),
            "in" => Some(Direction::In),
            "both" => Some(Direction::Both),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct GraphQuery {
    pub kind: &'static KindDef,
    pub id: String,
    pub account_id: String,
    pub depth: usize,
    pub direction: Direction,
    /// Only walk to these kinds (the start is always a node).
    pub kinds: Option<Vec<&'static KindDef>>,
    pub limit: usize,
    pub at: Option<DateTime<Utc>>,
}

/// The nodes and edges a walk reached.
#[derive(Debug)]
pub struct Graph {
    /// `{"source", "kind", "id", "account_id", "region", "name", "depth", "href"}`.
    pub nodes: Vec<Value>,
    /// `{"from", "to", "link"}`, `from`/`to` as `<source>/<kinds>/<id>`.
    pub edges: Vec<Value>,
    pub truncated: bool,
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct NodeKey {
    table: &'static str,
    account_id: String,
    id: String,
}

struct Node {
    kind: &'static KindDef,
    account_id: String,
    region: Option<String>,
    id: String,
    name: Option<String>,
    depth: usize,
}

impl Node {
    fn key(&self) -> NodeKey {
        NodeKey {
            table: self.kind.table,
            account_id: self.account_id.clone(),
            id: self.id.clone(),
        }
    }

    fn path(kind: &KindDef, id: &str) -> String {
        format!("{}/{}/{id}", kind.source, kind.plural)
    }
}

/// A step along one link: from a node on side `from` to the other side.
struct Step {
    link: &'static LinkDef,
    from: Side,
}

/// Every step a walk may take from `kind` in `direction`.
fn steps(kind: &KindDef, direction: Direction) -> Vec<Step> {
    let mut out = Vec::new();
    for link in KINDS.iter().flat_map(|k| k.links.iter()) {
        let a = link.a == kind.end();
        let b = link.b == kind.end();
        if a && direction != Direction::In {
            out.push(Step {
                link,
                from: Side::A,
            });
        }
        if b && direction != Direction::Out {
            out.push(Step {
                link,
                from: Side::B,
            });
        }
    }
    out
}

fn kind_of(end: inventory_model::End) -> &'static KindDef {
    kind_by_name(end.source, end.kind).expect("every link end is a kind of the catalogue")
}

/// A link found: the node it was found from and the other end's id.
struct Found {
    from: NodeKey,
    link: &'static LinkDef,
    from_side: Side,
    other: String,
}

impl ReadStore {
    /// Walk the graph from one resource (whose account the caller found).
    #[tracing::instrument(name = "db query", level = "info", skip_all, fields(db.system = "postgresql", db.operation = "graph"))]
    pub async fn graph(&self, q: &GraphQuery) -> Result<Graph, StoreError> {
        let mut client = self.pool.get().await?;
        // Small arrays joined to large tables by key: probe the indexes per
        // row (as the fold does), never a plan that reads whole tables.
        let tx = client.transaction().await?;
        tx.batch_execute(crate::sql::FOLD_SETTINGS).await?;
        // The caller found the start; gone since (or not live then): nothing.
        let Some(start) = live_nodes(
            &tx,
            q.kind,
            &q.account_id,
            std::slice::from_ref(&q.id),
            q.at,
            0,
        )
        .await?
        .pop() else {
            return Ok(Graph {
                nodes: Vec::new(),
                edges: Vec::new(),
                truncated: false,
            });
        };
        let mut seen: HashSet<NodeKey> = HashSet::from([start.key()]);
        let mut nodes = vec![start];
        let mut edges: Vec<(NodeKey, NodeKey, &'static str)> = Vec::new();
        let mut edge_seen: HashSet<(NodeKey, NodeKey, &'static str)> = HashSet::new();
        let mut frontier: Vec<usize> = vec![0];
        let mut truncated = false;
        for depth in 1..=q.depth {
            let mut found: Vec<Found> = Vec::new();
            for &i in &frontier {
                let node = &nodes[i];
                for step in steps(node.kind, q.direction) {
                    let other = kind_of(match step.from {
                        Side::A => step.link.b,
                        Side::B => step.link.a,
                    });
                    if let Some(kinds) = &q.kinds
                        && !kinds.iter().any(|k| k.table == other.table)
                    {
                        continue;
                    }
                    for id in linked(&tx, node, &step, q.at).await? {
                        found.push(Found {
                            from: node.key(),
                            link: step.link,
                            from_side: step.from,
                            other: id,
                        });
                    }
                }
            }
            // The other ends, by kind and account: live ones become nodes.
            let mut wanted: HashMap<(&'static str, String), Vec<String>> = HashMap::new();
            for f in &found {
                let other = kind_of(match f.from_side {
                    Side::A => f.link.b,
                    Side::B => f.link.a,
                });
                wanted
                    .entry((other.table, f.from.account_id.clone()))
                    .or_default()
                    .push(f.other.clone());
            }
            let mut live: HashMap<NodeKey, Node> = HashMap::new();
            let mut keys: Vec<_> = wanted.into_iter().collect();
            keys.sort_by(|a, b| a.0.cmp(&b.0));
            for ((table, account), mut ids) in keys {
                ids.sort();
                ids.dedup();
                let kind = KINDS
                    .iter()
                    .copied()
                    .find(|k| k.table == table)
                    .expect("a kind's table");
                for n in live_nodes(&tx, kind, &account, &ids, q.at, depth).await? {
                    live.insert(n.key(), n);
                }
            }
            let mut next = Vec::new();
            for f in found {
                let other = kind_of(match f.from_side {
                    Side::A => f.link.b,
                    Side::B => f.link.a,
                });
                let key = NodeKey {
                    table: other.table,
                    account_id: f.from.account_id.clone(),
                    id: f.other.clone(),
                };
                if !seen.contains(&key) {
                    let Some(node) = live.remove(&key) else {
                        continue;
                    };
                    if nodes.len() >= q.limit {
                        truncated = true;
                        continue;
                    }
                    seen.insert(key.clone());
                    next.push(nodes.len());
                    nodes.push(node);
                }
                // Edges run from side a to side b, whichever way they were walked.
                let edge = match f.from_side {
                    Side::A => (f.from.clone(), key, f.link.table),
                    Side::B => (key, f.from.clone(), f.link.table),
                };
                if edge_seen.insert(edge.clone()) {
                    edges.push(edge);
                }
            }
            frontier = next;
            if frontier.is_empty() {
                break;
            }
        }
        tx.commit().await?;
        let path_of: HashMap<NodeKey, String> = nodes
            .iter()
            .map(|n| (n.key(), Node::path(n.kind, &n.id)))
            .collect();
        Ok(Graph {
            edges: edges
                .iter()
                .map(|(a, b, link)| json!({"from": path_of[a], "to": path_of[b], "link": link}))
                .collect(),
            nodes: nodes
                .iter()
                .map(|n| {
                    json!({
                        "source": n.kind.source,
                        "kind": n.kind.plural,
                        "id": n.id,
                        "account_id": n.account_id,
                        "region": n.region,
                        "name": n.name,
                        "depth": n.depth,
                        "href": format!("/api/v1/{}", Node::path(n.kind, &n.id)),
                    })
                })
                .collect(),
            truncated,
        })
    }
}

/// The ids on the other side of `step`'s link from `node`: from the link
/// table now, from the owners' versions valid at `at` otherwise.
async fn linked(
    tx: &deadpool_postgres::Transaction<'_>,
    node: &Node,
    step: &Step,
    at: Option<DateTime<Utc>>,
) -> Result<Vec<String>, StoreError> {
    let (mine, theirs) = match step.from {
        Side::A => ("a_id", "b_id"),
        Side::B => ("b_id", "a_id"),
    };
    let rows = match at {
        None => {
            let sql = format!(
                "SELECT {theirs} FROM link WHERE link = $1 AND {mine} = $2 AND account_id = $3"
            );
            let stmt = tx.prepare_cached(&sql).await?;
            tx.query(&stmt, &[&step.link.table, &node.id, &node.account_id])
                .await?
        }
        Some(t) => {
            let owner = kind_of(step.link.owner_end());
            let t = t.to_rfc3339();
            if step.from == step.link.owner {
                // The node declares the link: its version lists the others.
                let sql = format!(
                    "SELECT jsonb_array_elements_text(p.links->$1) FROM {}_version p \
                     WHERE p.{} = $2 AND p.account_id = $3 AND {} AND p.change <> 'deleted'",
                    owner.table,
                    owner.id_column,
                    valid_at("p", 4)
                );
                let stmt = tx.prepare_cached(&sql).await?;
                tx.query(&stmt, &[&step.link.table, &node.id, &node.account_id, &t])
                    .await?
            } else {
                let sql = format!(
                    "SELECT p.{} FROM {}_version p WHERE p.links->$1 ? $2 AND p.account_id = $3 \
                     AND {} AND p.change <> 'deleted'",
                    owner.id_column,
                    owner.table,
                    valid_at("p", 4)
                );
                let stmt = tx.prepare_cached(&sql).await?;
                tx.query(&stmt, &[&step.link.table, &node.id, &node.account_id, &t])
                    .await?
            }
        }
    };
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// The resources of `kind` with these ids in `account` that are live (now,
/// or at `at`), with their region and name.
async fn live_nodes(
    tx: &deadpool_postgres::Transaction<'_>,
    kind: &'static KindDef,
    account: &str,
    ids: &[String],
    at: Option<DateTime<Utc>>,
    depth: usize,
) -> Result<Vec<Node>, StoreError> {
    let region = if kind.regional() {
        "t.region"
    } else {
        "NULL::text"
    };
    let name = if kind.columns.iter().any(|c| c.name == "name") {
        "t.name"
    } else {
        "NULL::text"
    };
    let (table, live, at_param) = match at {
        None => (
            kind.table.to_owned(),
            "t.deleted_at IS NULL".to_owned(),
            None,
        ),
        Some(t) => (
            format!("{}_version", kind.table),
            format!("{} AND t.change <> 'deleted'", valid_at("t", 3)),
            Some(t.to_rfc3339()),
        ),
    };
    let sql = format!(
        "SELECT t.{id}, {region}, {name} FROM {table} t WHERE t.{id} = ANY($1) \
         AND t.account_id = $2 AND {live} ORDER BY 1",
        id = kind.id_column
    );
    let stmt = tx.prepare_cached(&sql).await?;
    let rows = match &at_param {
        None => tx.query(&stmt, &[&ids, &account]).await?,
        Some(t) => tx.query(&stmt, &[&ids, &account, t]).await?,
    };
    Ok(rows
        .iter()
        .map(|r| Node {
            kind,
            account_id: account.to_owned(),
            id: r.get(0),
            region: r.get(1),
            name: r.get(2),
            depth,
        })
        .collect())
}
