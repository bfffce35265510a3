//! Field-level differences between two JSON documents, as JSON-pointer paths
//! (RFC 6901) with the old and new values. Objects are compared key by key,
//! arrays index by index; a value of another type is replaced whole.

use serde::Serialize;
use serde_json::Value;

/// One difference. `old` is absent for an added field, `new` for a removed one.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldChange {
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new: Option<Value>,
}

/// Every difference between `old` and `new`, in path order.
pub fn json_diff(old: &Value, new: &Value) -> Vec<FieldChange> {
    let mut out = Vec::new();
    walk(String::new(), Some(old), Some(new), &mut out);
    out
}

fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

fn walk(path: String, old: Option<&Value>, new: Option<&Value>, out: &mut Vec<FieldChange>) {
    match (old, new) {
        (Some(a), Some(b)) if a == b => {}
        (Some(Value::Object(a)), Some(Value::Object(b))) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                walk(format!("{path}/{}", escape(k)), a.get(k), b.get(k), out);
            }
        }
        (Some(Value::Array(a)), Some(Value::Array(b))) => {
            for i in 0..a.len().max(b.len()) {
                walk(format!("{path}/{i}"), a.get(i), b.get(i), out);
            }
        }
        (None, None) => {}
        (old, new) => out.push(FieldChange {
            path,
            old: old.cloned(),
            new: new.cloned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn differences_are_pointer_paths_with_old_and_new_values() {
        let old = json!({"state": {"name": "running"}, "tags": [{"k": "a"}], "gone": 1, "a/b": 1});
        let new = json!({"state": {"name": "stopped"}, "tags": [{"k": "a"}, {"k": "b"}], "a/b": 2, "added": true});
        let d = json_diff(&old, &new);
        let paths: Vec<&str> = d.iter().map(|c| c.path.as_str()).collect();
        assert_eq!(
            paths,
            ["/a~1b", "/added", "/gone", "/state/name", "/tags/1"]
        );
        assert_eq!(d[3].old, Some(json!("running")));
        assert_eq!(d[3].new, Some(json!("stopped")));
        assert_eq!(d[1].old, None, "added fields have no old value");
        assert_eq!(d[2].new, None, "removed fields have no new value");
        assert!(json_diff(&old, &old).is_empty());
    }

    #[test]
    fn a_changed_type_replaces_the_whole_value() {
        let d = json_diff(&json!({"a": [1]}), &json!({"a": {"x": 1}}));
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].path, "/a");
    }
}
