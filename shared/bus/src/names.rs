//! Subject and stream names of one deployment (a subject prefix).

use inventory_model::subject::{region_token, token};
use inventory_model::{Envelope, EventType, Priority, Scope};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    prefix: String,
}

impl Names {
    /// `prefix` must be one subject token of `[a-z0-9_-]`.
    pub fn new(prefix: &str) -> Result<Names, String> {
        let ok = !prefix.is_empty()
            && prefix
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if !ok {
            return Err(format!(
                "subject prefix {prefix:?} must be non-empty lowercase letters, digits, '_' or '-'"
            ));
        }
        Ok(Names {
            prefix: prefix.to_owned(),
        })
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn upper(&self) -> String {
        self.prefix.to_ascii_uppercase().replace('-', "_")
    }

    /// Rewrite a stream name from the `nats/` definitions (`INVENTORY_…`).
    pub fn stream(&self, defined: &str) -> String {
        match defined.strip_prefix("INVENTORY") {
            Some(rest) => format!("{}{rest}", self.upper()),
            None => defined.to_owned(),
        }
    }

    /// Rewrite a subject or bucket name from the `nats/` definitions (`inventory…`).
    pub fn subject(&self, defined: &str) -> String {
        match defined.strip_prefix("inventory") {
            Some(rest) => format!("{}{rest}", self.prefix),
            None => defined.to_owned(),
        }
    }

    pub fn events_stream(&self) -> String {
        self.stream("INVENTORY_EVENTS")
    }

    pub fn changes_stream(&self) -> String {
        self.stream("INVENTORY_CHANGES")
    }

    /// `<p>.changes.<source>.<kind>.<change>`: a change notification.
    pub fn change_subject(&self, source: &str, kind: &str, change: &str) -> String {
        format!(
            "{}.changes.{}.{}.{}",
            self.prefix,
            token(source),
            token(kind),
            token(change)
        )
    }

    /// Every change notification.
    pub fn all_changes(&self) -> String {
        format!("{}.changes.>", self.prefix)
    }

    /// `<p>.events.<source>.<kind>.<account>.<region|_>.<id>` for resource events,
    /// `<p>.scans.<source>.<kind>.<account>.<region|_>` for scan markers.
    pub fn event_subject(&self, env: &Envelope) -> String {
        let scope = Self::scope_tokens(&env.scope);
        match &env.key {
            Some(key) if env.event_type.is_resource() => format!(
                "{}.events.{}.{}.{scope}.{}",
                self.prefix,
                token(&env.source),
                token(&env.kind),
                token(key)
            ),
            _ => format!(
                "{}.scans.{}.{}.{scope}",
                self.prefix,
                token(&env.source),
                token(&env.kind)
            ),
        }
    }

    /// Every resource event of one kind in one scope.
    pub fn scope_events_filter(&self, source: &str, kind: &str, scope: &Scope) -> String {
        format!(
            "{}.events.{}.{}.{}.*",
            self.prefix,
            token(source),
            token(kind),
            Self::scope_tokens(scope)
        )
    }

    /// Every resource event (not scan markers).
    pub fn all_resource_events(&self) -> String {
        format!("{}.events.>", self.prefix)
    }

    pub fn tasks_stream(&self) -> String {
        self.stream("INVENTORY_TASKS")
    }

    /// `<p>.tasks.queue.<priority>.<task id>`: one attempt of a task, queued.
    pub fn task_subject(&self, priority: Priority, id: &str) -> String {
        format!("{}.tasks.queue.{priority}.{}", self.prefix, token(id))
    }

    /// Every queued task of one priority.
    pub fn task_queue_filter(&self, priority: Priority) -> String {
        format!("{}.tasks.queue.{priority}.>", self.prefix)
    }

    pub fn collect_subject(&self, source: &str, kind: &str) -> String {
        format!("{}.collect.{}.{}", self.prefix, token(source), token(kind))
    }

    pub fn collect_wildcard(&self) -> String {
        format!("{}.collect.*.*", self.prefix)
    }

    fn scope_tokens(scope: &Scope) -> String {
        format!(
            "{}.{}",
            token(&scope.account_id),
            region_token(scope.region.as_deref())
        )
    }

    /// Deterministic message id: one scan publishes one event per resource (its
    /// subject) and type, so a retried publish of the same event is recognised as
    /// a duplicate while a later scan's event (even with identical content) is not.
    /// A scan may reject several items on its one marker subject: each
    /// rejected item's id also names its content.
    pub fn message_id(env: &Envelope, subject: &str) -> String {
        match (env.event_type, &env.content_hash) {
            (EventType::ItemRejected, Some(hash)) => {
                format!(
                    "{}:{}:{subject}:{hash}",
                    env.scan_id,
                    env.event_type.as_str()
                )
            }
            _ => format!("{}:{}:{subject}", env.scan_id, env.event_type.as_str()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use inventory_model::SCHEMA_VERSION;

    fn env(event_type: EventType, key: Option<&str>) -> Envelope {
        Envelope {
            event_type,
            schema_version: SCHEMA_VERSION,
            source: "aws".into(),
            kind: "instance".into(),
            scope: Scope {
                account_id: "123".into(),
                region: Some("eu-west-1".into()),
            },
            key: key.map(Into::into),
            observed_at: chrono::Utc::now(),
            scan_id: "s1".into(),
            request_id: None,
            content_hash: None,
            payload: None,
            resources_seen: None,
            error: None,
            known_from_seq: None,
        }
    }

    #[test]
    fn subjects_and_names_follow_the_prefix() {
        let n = Names::new("t-1").unwrap();
        assert_eq!(n.events_stream(), "T_1_EVENTS");
        assert_eq!(
            n.event_subject(&env(EventType::ResourceCreated, Some("i-1"))),
            "t-1.events.aws.instance.123.eu-west-1.i-1"
        );
        assert_eq!(
            n.event_subject(&env(EventType::ScanStarted, None)),
            "t-1.scans.aws.instance.123.eu-west-1"
        );
        assert_eq!(n.collect_subject("aws", "all"), "t-1.collect.aws.all");
        assert_eq!(n.changes_stream(), "T_1_CHANGES");
        assert_eq!(n.tasks_stream(), "T_1_TASKS");
        assert_eq!(
            n.task_subject(Priority::High, "a-1"),
            "t-1.tasks.queue.high.a-1"
        );
        assert_eq!(n.subject("inventory-tasks"), "t-1-tasks");
        assert_eq!(
            n.change_subject("aws", "instance", "deleted"),
            "t-1.changes.aws.instance.deleted"
        );
        assert!(Names::new("Bad.Prefix").is_err());
    }

    #[test]
    fn message_ids_are_deterministic_per_scan_and_event() {
        let n = Names::new("inventory").unwrap();
        let id = |e: &Envelope| Names::message_id(e, &n.event_subject(e));
        let a = env(EventType::ResourceUpdated, Some("i-1"));
        assert_eq!(id(&a), id(&a.clone()));
        let mut later = a.clone();
        later.scan_id = "s2".into();
        assert_ne!(id(&a), id(&later));
        let deleted = env(EventType::ResourceDeleted, Some("i-1"));
        assert_ne!(id(&a), id(&deleted));
        let mut elsewhere = a.clone();
        elsewhere.scope.account_id = "456".into();
        assert_ne!(id(&a), id(&elsewhere), "same scan and key in another scope");
    }
}
