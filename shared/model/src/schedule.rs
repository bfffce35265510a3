//! Periodic collections: their definitions and the pure arithmetic of periods.
//!
//! A schedule fires once per period. A period is named by its start: for
//! `every: 1h` the hours since the Unix epoch, for `cron` each time the
//! expression matches. The task a period fires has the deterministic id
//! `<schedule>-<period start in seconds>`, so every instance that decides to
//! fire the same period submits the same task, and the control plane runs it once.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};

use crate::request::CollectRequest;
use crate::task::{Priority, valid_task_id};

/// One periodic collection, as configured: exactly one of `every` and `cron`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleDef {
    pub name: String,
    /// What it collects (its priority is the schedule's own).
    pub request: CollectRequest,
    /// A period such as `15m` or `6h`, aligned to the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every: Option<String>,
    /// A five-field cron expression in UTC, e.g. `0 */6 * * *`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
    #[serde(default)]
    pub priority: Priority,
}

/// A schedule as the control plane keeps it: its definition and what it last fired.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleState {
    #[serde(flatten)]
    pub def: ScheduleDef,
    /// The start of the last period fired.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_period: Option<DateTime<Utc>>,
    /// The task that period fired.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_task: Option<String>,
}

/// When a schedule fires.
#[derive(Debug, Clone)]
pub enum Cadence {
    Every(Duration),
    Cron(Box<cron::Schedule>),
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ScheduleError {
    #[error("schedule name {0:?} must be 1-100 of letters, digits, '-' or '_'")]
    InvalidName(String),
    #[error("schedule {0} needs exactly one of every and cron")]
    Cadence(String),
    #[error("schedule {name}: invalid period {every:?}: {reason}")]
    Every {
        name: String,
        every: String,
        reason: String,
    },
    #[error("schedule {name}: invalid cron expression {cron:?}: {reason}")]
    Cron {
        name: String,
        cron: String,
        reason: String,
    },
    #[error("schedule {name}: {reason}")]
    Request { name: String, reason: String },
}

impl ScheduleDef {
    /// Check the definition and parse its cadence.
    pub fn cadence(&self) -> Result<Cadence, ScheduleError> {
        let name = &self.name;
        if name.len() > 100 || !valid_task_id(name) {
            return Err(ScheduleError::InvalidName(name.clone()));
        }
        let refused = |reason: String| ScheduleError::Request {
            name: name.clone(),
            reason,
        };
        self.request.kinds().map_err(|e| refused(e.to_string()))?;
        if self.request.priority.is_some() {
            return Err(refused(
                "set priority on the schedule, not on its request".into(),
            ));
        }
        match (&self.every, &self.cron) {
            (Some(every), None) => {
                let period = crate::duration::parse(every).map_err(|e| ScheduleError::Every {
                    name: name.clone(),
                    every: every.clone(),
                    reason: e.to_string(),
                })?;
                if period < Duration::from_secs(1) {
                    return Err(ScheduleError::Every {
                        name: name.clone(),
                        every: every.clone(),
                        reason: "must be at least 1s".into(),
                    });
                }
                Ok(Cadence::Every(period))
            }
            (None, Some(expr)) => {
                // The cron crate wants seconds first; schedules use the usual five fields.
                let fields = expr.split_whitespace().count();
                if fields != 5 {
                    return Err(ScheduleError::Cron {
                        name: name.clone(),
                        cron: expr.clone(),
                        reason: format!("expected 5 fields, found {fields}"),
                    });
                }
                let schedule = cron::Schedule::from_str(&format!("0 {expr}")).map_err(|e| {
                    ScheduleError::Cron {
                        name: name.clone(),
                        cron: expr.clone(),
                        reason: e.to_string(),
                    }
                })?;
                Ok(Cadence::Cron(Box::new(schedule)))
            }
            _ => Err(ScheduleError::Cadence(name.clone())),
        }
    }

    /// The id of the task that fires period `period` (its start).
    pub fn task_id(&self, period: DateTime<Utc>) -> String {
        format!("{}-{}", self.name, period.timestamp())
    }
}

impl Cadence {
    /// The start of the period `now` is in: the latest firing time at or
    /// before `now`, if any.
    pub fn period_at(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Cadence::Every(period) => {
                let ms = period.as_millis().max(1) as i64;
                let start = now.timestamp_millis().div_euclid(ms) * ms;
                Utc.timestamp_millis_opt(start).single()
            }
            Cadence::Cron(schedule) => {
                // Firings are whole seconds: the last one before the next second.
                let second = Utc.timestamp_opt(now.timestamp(), 0).single()?;
                schedule
                    .after(&(second + chrono::Duration::seconds(1)))
                    .next_back()
            }
        }
    }

    /// The start of the period after the one `now` is in.
    pub fn next_after(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Cadence::Every(period) => {
                let start = self.period_at(now)?;
                Some(start + chrono::Duration::from_std(*period).ok()?)
            }
            Cadence::Cron(schedule) => schedule.after(&now).next(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(every: Option<&str>, cron: Option<&str>) -> ScheduleDef {
        ScheduleDef {
            name: "all-hourly".into(),
            request: CollectRequest::of("aws", "all"),
            every: every.map(Into::into),
            cron: cron.map(Into::into),
            priority: Priority::Low,
        }
    }

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn every_is_aligned_to_the_epoch() {
        let c = def(Some("1h"), None).cadence().unwrap();
        assert_eq!(
            c.period_at(at("2026-11-23T10:59:59Z")),
            Some(at("2026-11-23T10:00:00Z"))
        );
        assert_eq!(
            c.next_after(at("2026-11-23T10:00:00Z")),
            Some(at("2026-11-23T11:00:00Z"))
        );
        let d = def(Some("1h"), None);
        assert_eq!(
            d.task_id(at("2026-11-23T10:00:00Z")),
            "all-hourly-1795428000"
        );
    }

    #[test]
    fn cron_periods_are_the_latest_match() {
        let c = def(None, Some("0 */6 * * *")).cadence().unwrap();
        assert_eq!(
            c.period_at(at("2026-11-23T17:59:00Z")),
            Some(at("2026-11-23T12:00:00Z"))
        );
        assert_eq!(
            c.period_at(at("2026-11-23T18:00:00Z")),
            Some(at("2026-11-23T18:00:00Z"))
        );
        assert_eq!(
            c.next_after(at("2026-11-23T18:00:00Z")),
            Some(at("2026-11-24T00:00:00Z"))
        );
        let minutely = def(None, Some("* * * * *")).cadence().unwrap();
        assert_eq!(
            minutely.period_at(at("2026-11-23T17:59:30Z")),
            Some(at("2026-11-23T17:59:00Z"))
        );
    }

    #[test]
    fn bad_definitions_are_refused_clearly() {
        assert_eq!(
            def(None, None).cadence().unwrap_err(),
            ScheduleError::Cadence("all-hourly".into())
        );
        assert!(matches!(
            def(Some("1h"), Some("* * * * *")).cadence(),
            Err(ScheduleError::Cadence(_))
        ));
        assert!(matches!(
            def(Some("soon"), None).cadence(),
            Err(ScheduleError::Every { .. })
        ));
        assert!(matches!(
            def(None, Some("0 0 */6 * * *")).cadence(),
            Err(ScheduleError::Cron { .. })
        ));
        let mut bad = def(Some("1h"), None);
        bad.request.priority = Some(Priority::High);
        assert!(matches!(bad.cadence(), Err(ScheduleError::Request { .. })));
        bad.request.priority = None;
        bad.request.kind = "teapots".into();
        assert!(matches!(bad.cadence(), Err(ScheduleError::Request { .. })));
        bad.name = "a.b".into();
        assert!(matches!(bad.cadence(), Err(ScheduleError::InvalidName(_))));
    }
}
