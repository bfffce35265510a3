//! `docs/kinds.md`: every kind with its table, key, columns and links,
//! generated from the catalogue (`inventory kinds`), so that the document
//! cannot drift.

use std::fmt::Write;

use super::{KINDS, kind_by_name};
use crate::kind::{Field, KindDef};

fn field(f: Field) -> String {
    match f {
        Field::Pointer(p) => format!("`{p}`"),
        Field::List(p) => format!("`{p}` (a list)"),
        Field::Tag(k) => format!("tag `{k}`"),
        Field::ScopeRegion => "the scan's region".to_owned(),
        Field::Each(paths) => paths
            .iter()
            .map(|p| format!("`{p}`"))
            .collect::<Vec<_>>()
            .join(" and "),
    }
}

/// The document. `listed` is how each kind's source lists it, in words
/// (operation, owner filters, referenced items): the providers know that.
pub fn markdown(listed: impl Fn(&KindDef) -> String) -> String {
    let mut out = String::from(
        "# Resource kinds\n\n\
         Generated from the catalogue (`shared/model/src/catalogue/`, one file per \
         source) by `inventory kinds`; a test\n\
         fails when this file and the catalogue disagree.\n\n\
         Every table also has `tags` (jsonb), `raw` (the provider's payload), \
         `content_hash`, `first_seen_at`, `last_seen_at`, `deleted_at`, `scan_id` and \
         `seq`, and a history table `<table>_version` (see history.md). Values are read \
         from the raw payload at the JSON pointers shown; a `*` steps into every element \
         of a list.\n\n\
         Links are rows of `l_<source>_<a>_to_<b>`, declared by the events of one side \
         (the owner) and served both ways as nested collections: \
         `/api/v1/<source>/<a-plural>/<id>/<b-plural>` and back.\n\n\
         | kind | route | table | key | listed by |\n|---|---|---|---|---|\n",
    );
    for k in KINDS.iter() {
        let key = if k.regional() {
            "account_id, region, "
        } else {
            "account_id, "
        };
        let _ = writeln!(
            out,
            "| {} | `/api/v1/{}/{}` | `{}` | `{key}{}` | {} |",
            k.name,
            k.source,
            k.plural,
            k.table,
            k.id_column,
            listed(k)
        );
    }
    for k in KINDS.iter() {
        let _ = write!(
            out,
            "\n## {}/{}\n\nTable `{}`, id `{}` from {}; {}.\n\n| column | type | from |\n|---|---|---|\n",
            k.source,
            k.plural,
            k.table,
            k.id_column,
            field(k.id),
            if k.regional() {
                "one scan per account and region"
            } else {
                "one scan per account"
            },
        );
        for c in k.columns {
            let _ = writeln!(out, "| `{}` | {} | {} |", c.name, c.ty.sql(), field(c.from));
        }
        if !k.links.is_empty() {
            out.push_str("\n| link table | to | declared from |\n|---|---|---|\n");
            for l in k.links {
                let end = l.other_end();
                let other = kind_by_name(end.source, end.kind).map_or(end.kind, |o| o.plural);
                let other = if end.source == k.source {
                    other.to_owned()
                } else {
                    format!("{}/{other}", end.source)
                };
                let _ = writeln!(out, "| `{}` | {} | {} |", l.table, other, field(l.other));
            }
        }
    }
    out
}
