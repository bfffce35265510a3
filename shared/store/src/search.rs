//! Search over every kind (`GET /api/v1/search`): words, phrases and
//! negations over each kind's generated `search_doc` (full text, `simple`
//! configuration) and `search_text` (`pg_trgm` substrings) columns, narrowed
//! by qualifiers, ranked and paged.
//!
//! Invariants: only live resources are found; a word matches a resource when
//! one of its tokens starts with the word or its text contains it (three
//! characters or more); a page's order is total (score, then source, kind,
//! account and id); a cursor is an offset, at most [`MAX_OFFSET`].

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use inventory_model::{ColumnType, KINDS, KindDef};
use serde_json::{Value, json};
use tokio_postgres::types::ToSql;

use crate::list::like_pattern;
use crate::{ReadStore, StoreError};

/// How deep a search pages: narrow the query rather than page further.
pub const MAX_OFFSET: usize = 10_000;

/// The columns a kind's search covers, besides its tags: the natural id and
/// every text column (names, descriptions, addresses, CIDRs, DNS names).
pub fn search_fields(kind: &KindDef) -> Vec<&'static str> {
    let mut out = vec![kind.id_column];
    for c in kind.columns {
        if c.ty == ColumnType::Text && !out.contains(&c.name) {
            out.push(c.name);
        }
    }
    out
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Term {
    Word(String),
    Phrase(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagQualifier {
    pub key: String,
    /// `tag:key=value` (`*` wildcards); `None`: `tag:key`, has the key.
    pub value: Option<String>,
    pub negated: bool,
}

/// A parsed search.
#[derive(Debug, Clone, Default)]
pub struct SearchQuery {
    pub terms: Vec<Term>,
    pub excluded: Vec<Term>,
    /// `kind:` / `source:` qualifiers (any of them); empty: every kind.
    pub kinds: Vec<&'static KindDef>,
    pub accounts: Vec<String>,
    pub regions: Vec<String>,
    pub tags: Vec<TagQualifier>,
    pub limit: usize,
    pub cursor: Option<String>,
}

/// Split a query into tokens: whitespace separates, `"…"` quotes (a leading
/// `-` negates either).
fn tokens(q: &str) -> Result<Vec<(bool, bool, String)>, String> {
    let mut out = Vec::new();
    let mut chars = q.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        let negated = c == '-';
        if negated {
            chars.next();
        }
        if chars.peek() == Some(&'"') {
            chars.next();
            let mut s = String::new();
            loop {
                match chars.next() {
                    Some('"') => break,
                    Some(c) => s.push(c),
                    None => return Err("a quoted phrase is not closed".into()),
                }
            }
            out.push((negated, true, s));
        } else {
            let mut s = String::new();
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                s.push(c);
                chars.next();
            }
            if !s.is_empty() {
                out.push((negated, false, s));
            }
        }
    }
    Ok(out)
}

impl SearchQuery {
    /// Parse `q`. Errors are messages for the caller (a bad request).
    pub fn parse(q: &str, limit: usize) -> Result<SearchQuery, String> {
        let mut out = SearchQuery {
            limit,
            ..SearchQuery::default()
        };
        let mut sources: Vec<String> = Vec::new();
        let mut kind_names: Vec<String> = Vec::new();
        for (negated, quoted, text) in tokens(q)? {
            if quoted {
                let t = Term::Phrase(text);
                if negated {
                    out.excluded.push(t)
                } else {
                    out.terms.push(t)
                }
                continue;
            }
            let qualifier = text
                .split_once(':')
                .filter(|(name, _)| ["kind", "source", "account", "region", "tag"].contains(name));
            match qualifier {
                Some((name, value)) => {
                    if value.is_empty() {
                        return Err(format!("the qualifier {name}: needs a value"));
                    }
                    if negated && name != "tag" {
                        return Err(format!("only tag: qualifiers can be negated, not {name}:"));
                    }
                    let value = value.to_owned();
                    match name {
                        "kind" => kind_names.push(value),
                        "source" => sources.push(value),
                        "account" => out.accounts.push(value),
                        "region" => out.regions.push(value),
                        _ => {
                            let (key, value) = match value.split_once('=') {
                                Some((k, v)) => (k.to_owned(), Some(v.to_owned())),
                                None => (value, None),
                            };
                            out.tags.push(TagQualifier {
                                key,
                                value,
                                negated,
                            });
                        }
                    }
                }
                None => {
                    let t = Term::Word(text);
                    if negated {
                        out.excluded.push(t)
                    } else {
                        out.terms.push(t)
                    }
                }
            }
        }
        for name in &kind_names {
            let (source, kind) = match name.split_once('/') {
                Some((s, k)) => (Some(s), k),
                None => (None, name.as_str()),
            };
            let found: Vec<&'static KindDef> = KINDS
                .iter()
                .copied()
                .filter(|k| {
                    (k.plural == kind || k.name == kind) && source.is_none_or(|s| k.source == s)
                })
                .collect();
            if found.is_empty() {
                return Err(format!("unknown kind {name} (see /api/v1/kinds)"));
            }
            out.kinds.extend(found);
        }
        for s in &sources {
            if !KINDS.iter().any(|k| k.source == s) {
                return Err(format!("unknown source {s}"));
            }
        }
        if !sources.is_empty() {
            let of_sources = |k: &&KindDef| sources.iter().any(|s| s == k.source);
            if out.kinds.is_empty() {
                out.kinds = KINDS.iter().copied().filter(|k| of_sources(k)).collect();
            } else {
                out.kinds.retain(of_sources);
            }
            if out.kinds.is_empty() {
                return Err("no kind is both of those kinds and of those sources".into());
            }
        }
        if out.terms.is_empty()
            && out.excluded.is_empty()
            && kind_names.is_empty()
            && sources.is_empty()
            && out.accounts.is_empty()
            && out.regions.is_empty()
            && out.tags.is_empty()
        {
            return Err("the search is empty: give a word, a \"phrase\" or a qualifier".into());
        }
        Ok(out)
    }
}

/// A search answer page.
#[derive(Debug)]
pub struct SearchPage {
    /// `{"source", "kind", "id", "name", "account_id", "region", "matched", "score", "href"}`.
    pub items: Vec<Value>,
    pub next: Option<String>,
}

fn decode_offset(cursor: &str) -> Result<usize, StoreError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| StoreError::BadCursor)?;
    let v: Value = serde_json::from_slice(&bytes).map_err(|_| StoreError::BadCursor)?;
    v.get("offset")
        .and_then(Value::as_u64)
        .map(|n| n as usize)
        .filter(|n| *n <= MAX_OFFSET)
        .ok_or(StoreError::BadCursor)
}

fn encode_offset(offset: usize) -> String {
    URL_SAFE_NO_PAD.encode(json!({ "offset": offset }).to_string())
}

/// A `tsquery` literal matching tokens that start with `word` (lowercased as
/// the `simple` configuration writes tokens; not split by the parser, so an
/// id like `i-0abc` is one prefix, not `i` matching everything).
fn prefix_query(word: &str) -> String {
    format!(
        "'{}':*",
        word.to_lowercase()
            .replace('\\', "\\\\")
            .replace('\'', "''")
    )
}

/// SQL text and parameters of one search, built up kind by kind.
struct Sql {
    params: Vec<String>,
}

impl Sql {
    fn param(&mut self, v: String) -> String {
        self.params.push(v);
        format!("${}::text", self.params.len())
    }

    /// The predicate matching `term` on table alias `t`.
    fn term(&mut self, term: &Term) -> String {
        match term {
            Term::Phrase(p) => {
                let p = self.param(p.clone());
                format!("t.search_doc @@ phraseto_tsquery('simple', {p})")
            }
            Term::Word(w) => {
                let q = self.param(prefix_query(w));
                let full = format!("t.search_doc @@ {q}::tsquery");
                if w.chars().count() >= 3 {
                    let like = self.param(format!("%{}%", like_pattern(w)));
                    format!("({full} OR t.search_text ILIKE {like})")
                } else {
                    full
                }
            }
        }
    }
}

fn has_column(kind: &KindDef, name: &str) -> bool {
    kind.columns.iter().any(|c| c.name == name)
}

fn any_like(col: &str, patterns: &[String], sql: &mut Sql) -> String {
    let ors: Vec<String> = patterns
        .iter()
        .map(|p| format!("{col} ILIKE {}", sql.param(like_pattern(p))))
        .collect();
    format!("({})", ors.join(" OR "))
}

impl ReadStore {
    /// One page of a search over every kind `q` narrows to.
    #[tracing::instrument(name = "db query", level = "info", skip_all, fields(db.system = "postgresql", db.operation = "search"))]
    pub async fn search(&self, q: &SearchQuery) -> Result<SearchPage, StoreError> {
        let offset = match &q.cursor {
            Some(c) => decode_offset(c)?,
            None => 0,
        };
        let kinds: Vec<&'static KindDef> = if q.kinds.is_empty() {
            KINDS.to_vec()
        } else {
            q.kinds.clone()
        };
        let mut sql = Sql { params: Vec::new() };
        let per_kind = format!("{}::bigint", sql.param((offset + q.limit + 1).to_string()));
        // the rank: full-text relevance of the words and phrases, plus one
        // for an exact id or name
        let words: Vec<String> = q
            .terms
            .iter()
            .map(|t| match t {
                Term::Word(w) => prefix_query(w),
                Term::Phrase(p) => format!("({})", phrase_query(p)),
            })
            .collect();
        let (rank_query, exact) = if words.is_empty() {
            (None, None)
        } else {
            let raw: Vec<&str> = q
                .terms
                .iter()
                .map(|t| match t {
                    Term::Word(w) | Term::Phrase(w) => w.as_str(),
                })
                .collect();
            (
                Some(sql.param(words.join(" & "))),
                Some(sql.param(raw.join(" ").to_lowercase())),
            )
        };
        let mut parts = Vec::new();
        for kind in kinds {
            let region = if kind.regional() || has_column(kind, "region") {
                Some("t.region")
            } else {
                None
            };
            if !q.regions.is_empty() && region.is_none() {
                continue;
            }
            let name = if has_column(kind, "name") {
                "t.name"
            } else {
                "NULL::text"
            };
            let mut conds = vec!["t.deleted_at IS NULL".to_owned()];
            for t in &q.terms {
                conds.push(sql.term(t));
            }
            for t in &q.excluded {
                let c = sql.term(t);
                conds.push(format!("NOT coalesce({c}, false)"));
            }
            if !q.accounts.is_empty() {
                conds.push(any_like("t.account_id", &q.accounts, &mut sql));
            }
            if let Some(r) = region
                && !q.regions.is_empty()
            {
                conds.push(any_like(r, &q.regions, &mut sql));
            }
            for tag in &q.tags {
                let key = sql.param(tag.key.clone());
                let c = match &tag.value {
                    None => format!("t.tags ? {key}"),
                    Some(v) if v.contains('*') => {
                        format!(
                            "coalesce(t.tags ->> {key} ILIKE {}, false)",
                            sql.param(like_pattern(v))
                        )
                    }
                    Some(v) => format!(
                        "coalesce(t.tags ->> {key} = {}, false)",
                        sql.param(v.clone())
                    ),
                };
                if tag.negated {
                    conds.push(format!("NOT ({c})"));
                } else {
                    // the tag's words are in the vector: let its index narrow
                    if tag.key.chars().any(char::is_alphanumeric) {
                        // (a wildcard value's words may be partial: the key's only)
                        let value = tag.value.as_deref().filter(|v| !v.contains('*'));
                        let words = format!("{} {}", tag.key, value.unwrap_or(""));
                        let w = sql.param(words);
                        conds.push(format!("t.search_doc @@ plainto_tsquery('simple', {w})"));
                    }
                    conds.push(c);
                }
            }
            let score = match (&rank_query, &exact) {
                (Some(rq), Some(ex)) => format!(
                    "(ts_rank(t.search_doc, {rq}::tsquery) \
                     + CASE WHEN lower(t.{id}) = {ex} OR lower({name}) = {ex} THEN 1 ELSE 0 END)::float8",
                    id = kind.id_column
                ),
                _ => "0::float8".to_owned(),
            };
            let fields: Vec<String> = search_fields(kind)
                .iter()
                .map(|c| format!("'{c}', t.{c}"))
                .collect();
            parts.push(format!(
                "(SELECT '{source}' AS source, '{plural}' AS kind, t.{id} AS id, {name} AS name, \
                 t.account_id, {region} AS region, \
                 jsonb_build_object({fields}) AS fields, t.tags, {score} AS score \
                 FROM {table} t WHERE {conds} \
                 ORDER BY score DESC, t.account_id, t.{id} LIMIT {per_kind})",
                source = kind.source,
                plural = kind.plural,
                id = kind.id_column,
                region = region.unwrap_or("NULL::text"),
                fields = fields.join(", "),
                table = kind.table,
                conds = conds.join(" AND "),
            ));
        }
        if parts.is_empty() {
            return Ok(SearchPage {
                items: Vec::new(),
                next: None,
            });
        }
        let lim = sql.param((q.limit + 1).to_string());
        let off = sql.param(offset.to_string());
        let text = format!(
            "SELECT source, kind, id, name, account_id, region, fields, tags, score FROM ({}) s \
             ORDER BY score DESC, source, kind, account_id, id LIMIT {lim}::bigint OFFSET {off}::bigint",
            parts.join(" UNION ALL ")
        );
        let client = self.pool.get().await?;
        let params: Vec<&(dyn ToSql + Sync)> = sql
            .params
            .iter()
            .map(|p| p as &(dyn ToSql + Sync))
            .collect();
        let rows = client.query(&text, &params).await?;
        let mut items: Vec<Value> = rows
            .iter()
            .map(|r| {
                let source: String = r.get(0);
                let kind: String = r.get(1);
                let id: String = r.get(2);
                let fields: Value = r.get(6);
                let tags: Value = r.get(7);
                let score: f64 = r.get(8);
                json!({
                    "source": source,
                    "kind": kind,
                    "href": format!("/api/v1/{source}/{kind}/{id}"),
                    "id": id,
                    "name": r.get::<_, Option<String>>(3),
                    "account_id": r.get::<_, String>(4),
                    "region": r.get::<_, Option<String>>(5),
                    "matched": matched(q, &fields, &tags),
                    "score": (score * 1e6).round() / 1e6,
                })
            })
            .collect();
        let next = if items.len() > q.limit {
            items.truncate(q.limit);
            let n = offset + q.limit;
            (n <= MAX_OFFSET).then(|| encode_offset(n))
        } else {
            None
        };
        Ok(SearchPage { items, next })
    }
}

fn phrase_query(p: &str) -> String {
    // ranked as its words, each a prefix (a phrase query has no literal form
    // to_tsquery takes from arbitrary input)
    p.split_whitespace()
        .map(prefix_query)
        .collect::<Vec<_>>()
        .join(" & ")
}

/// Which fields of a found resource hold a word or phrase of the search, or
/// a tag it names: `name`, `tags.env`, ….
fn matched(q: &SearchQuery, fields: &Value, tags: &Value) -> Vec<String> {
    let needles: Vec<String> = q
        .terms
        .iter()
        .map(|t| match t {
            Term::Word(w) | Term::Phrase(w) => w.to_lowercase(),
        })
        .collect();
    let hit = |s: &str| {
        let s = s.to_lowercase();
        needles.iter().any(|n| s.contains(n.as_str()))
    };
    let mut out = Vec::new();
    if let Some(obj) = fields.as_object() {
        for (name, v) in obj {
            if v.as_str().is_some_and(hit) {
                out.push(name.clone());
            }
        }
    }
    if let Some(obj) = tags.as_object() {
        for (k, v) in obj {
            let named = q.tags.iter().any(|t| !t.negated && &t.key == k);
            if named || hit(k) || v.as_str().is_some_and(hit) {
                out.push(format!("tags.{k}"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_parse_into_words_phrases_negations_and_qualifiers() {
        let q = SearchQuery::parse(
            r#"web "front end" -old kind:instances region:eu-* tag:env=prod -tag:owner arn:aws:x"#,
            10,
        )
        .unwrap();
        assert_eq!(
            q.terms,
            [
                Term::Word("web".into()),
                Term::Phrase("front end".into()),
                Term::Word("arn:aws:x".into())
            ]
        );
        assert_eq!(q.excluded, [Term::Word("old".into())]);
        // every source's instances
        assert!(q.kinds.len() >= 2 && q.kinds.iter().all(|k| k.plural == "instances"));
        let one = SearchQuery::parse("kind:aws/instances", 10).unwrap();
        assert_eq!((one.kinds.len(), one.kinds[0].source), (1, "aws"));
        assert_eq!(q.regions, ["eu-*"]);
        assert_eq!(
            q.tags,
            [
                TagQualifier {
                    key: "env".into(),
                    value: Some("prod".into()),
                    negated: false
                },
                TagQualifier {
                    key: "owner".into(),
                    value: None,
                    negated: true
                }
            ]
        );
    }

    #[test]
    fn bad_queries_say_why() {
        for (q, says) in [
            ("", "empty"),
            ("\"open", "not closed"),
            ("kind:nope", "unknown kind"),
            ("source:nope", "unknown source"),
            ("-kind:instances", "negated"),
            ("region:", "needs a value"),
        ] {
            let e = SearchQuery::parse(q, 10).unwrap_err();
            assert!(e.contains(says), "{q}: {e}");
        }
    }

    #[test]
    fn cursors_are_bounded_offsets() {
        assert_eq!(decode_offset(&encode_offset(40)).unwrap(), 40);
        assert!(decode_offset(&encode_offset(MAX_OFFSET + 1)).is_err());
        assert!(decode_offset("nope").is_err());
    }
}
