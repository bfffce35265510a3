//! Change detection within one scan of one scope (pure).

use std::collections::{HashMap, HashSet};

/// What one listed resource means against the last published state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observation {
    Created,
    Updated,
    Unchanged,
    /// The listing returned this id twice in one scan; ignore the repeat.
    Repeated,
}

/// The last published state of a scope and what the running scan has seen.
#[derive(Debug, Default)]
pub struct ScopeDiff {
    previous: HashMap<String, String>,
    seen: HashSet<String>,
}

impl ScopeDiff {
    /// Start from the ids and hashes last published for the scope.
    pub fn new(previous: HashMap<String, String>) -> ScopeDiff {
        ScopeDiff {
            previous,
            seen: HashSet::new(),
        }
    }

    pub fn observe(&mut self, id: &str, hash: &str) -> Observation {
        if !self.seen.insert(id.to_owned()) {
            return Observation::Repeated;
        }
        match self.previous.remove(id) {
            None => Observation::Created,
            Some(last) if last != hash => Observation::Updated,
            Some(_) => Observation::Unchanged,
        }
    }

    pub fn seen(&self) -> usize {
        self.seen.len()
    }

    /// Resources published before and not seen by this (complete) scan, with the
    /// hash last published for each, sorted by id.
    pub fn into_deleted(self) -> Vec<(String, String)> {
        let mut gone: Vec<_> = self.previous.into_iter().collect();
        gone.sort();
        gone
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_against_the_previous_state() {
        let previous = HashMap::from([
            ("a".to_string(), "h1".to_string()),
            ("b".to_string(), "h2".to_string()),
            ("c".to_string(), "h3".to_string()),
        ]);
        let mut d = ScopeDiff::new(previous);
        assert_eq!(d.observe("a", "h1"), Observation::Unchanged);
        assert_eq!(d.observe("b", "hX"), Observation::Updated);
        assert_eq!(d.observe("n", "h9"), Observation::Created);
        assert_eq!(d.observe("n", "h9"), Observation::Repeated);
        assert_eq!(d.seen(), 3);
        assert_eq!(d.into_deleted(), vec![("c".to_string(), "h3".to_string())]);
    }
}
