//! Pacing of provider calls: a token bucket per (account, region, API), a bound
//! on calls in flight across all accounts, and retries with exponential backoff
//! and full jitter on throttling and transient failures.
//!
//! The bucket is adaptive: a throttled call halves its bucket's rate, and each
//! success gives back a tenth of the configured rate, so a collector that meets a
//! lower limit than configured settles just under it instead of hammering it.
//! (`governor` has no rate that changes at run time, and the SDK's adaptive retry
//! mode is per client and reports nothing; this is both, and counted.)
//!
//! Isolation: a call holds an in-flight permit only while it is on the wire,
//! never while it waits for tokens or backs off, so a throttled or failing
//! account slows itself, not the others.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tracing::Instrument;

/// Pacing settings (config `aws.pacing`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Pacing {
    /// Calls per second per (account, region, API): EC2 refills its describe
    /// buckets at 20/s; the default stays well under.
    pub rate: f64,
    /// Calls that may go at once after a quiet period.
    pub burst: u32,
    /// Provider calls on the wire at once, across every account.
    pub max_in_flight: usize,
    /// Tries per call, the first included.
    pub max_attempts: u32,
    /// First backoff; doubles per retry up to `max_backoff`, fully jittered.
    #[serde(deserialize_with = "inventory_model::duration::from_text")]
    pub base_backoff: Duration,
    #[serde(deserialize_with = "inventory_model::duration::from_text")]
    pub max_backoff: Duration,
}

impl Default for Pacing {
    fn default() -> Self {
        Pacing {
            rate: 5.0,
            burst: 10,
            max_in_flight: 16,
            max_attempts: 8,
            base_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(20),
        }
    }
}

/// A provider call: which API, in which scope. Calls are paced per key (one
/// token bucket each) and counted under it (`inventory_provider_calls_total`
/// and its throttles and retries).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallKey<'a> {
    pub source: &'a str,
    /// The operation (`DescribeInstances`, `instances`): a kind's list
    /// operation or another call the source makes.
    pub api: &'a str,
    pub account_id: &'a str,
    /// Empty for calls outside a region.
    pub region: &'a str,
}

impl CallKey<'_> {
    /// The pacing bucket.
    fn bucket(&self) -> String {
        format!(
            "{}/{}/{}/{}",
            self.source, self.account_id, self.region, self.api
        )
    }

    fn labels(&self) -> [&str; 4] {
        [self.source, self.api, self.account_id, self.region]
    }
}

/// How a failed call should be treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The provider asked us to slow down (`RequestLimitExceeded`, `Throttling`).
    Throttled,
    /// Worth another try: 5xx, timeouts, connection failures.
    Transient,
    /// Will fail again the same way (bad request, denied credentials): no retry.
    Permanent,
}

/// What the calls of one scan cost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CallStats {
    /// Calls sent, retries included.
    pub calls: u64,
    /// Calls the provider throttled.
    pub throttles: u64,
    /// Calls sent again after a failure.
    pub retries: u64,
}

impl CallStats {
    pub fn add(&mut self, other: CallStats) {
        self.calls += other.calls;
        self.throttles += other.throttles;
        self.retries += other.retries;
    }
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    rate: f64,
    updated: Instant,
}

impl Bucket {
    /// Take a token, going into debt if none is left; returns how long to wait
    /// until the token is really there.
    fn reserve(&mut self, now: Instant, burst: f64) -> Duration {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(burst);
        self.updated = now;
        self.tokens -= 1.0;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.rate)
        }
    }

    fn throttled(&mut self, floor: f64) {
        self.rate = (self.rate / 2.0).max(floor);
    }

    fn succeeded(&mut self, configured: f64) {
        self.rate = (self.rate + configured / 10.0).min(configured);
    }
}

/// Shared by every account of a collector.
#[derive(Debug)]
pub struct Pacer {
    settings: Pacing,
    buckets: Mutex<HashMap<String, Arc<Mutex<Bucket>>>>,
    in_flight: Semaphore,
}

impl Pacer {
    pub fn new(settings: Pacing) -> Pacer {
        let permits = settings.max_in_flight.max(1);
        Pacer {
            settings,
            buckets: Mutex::new(HashMap::new()),
            in_flight: Semaphore::new(permits),
        }
    }

    fn bucket(&self, key: &str) -> Arc<Mutex<Bucket>> {
        self.buckets
            .lock()
            .expect("bucket map")
            .entry(key.to_owned())
            .or_insert_with(|| {
                Arc::new(Mutex::new(Bucket {
                    tokens: f64::from(self.settings.burst.max(1)),
                    rate: self.settings.rate,
                    updated: Instant::now(),
                }))
            })
            .clone()
    }

    /// The current rate of a bucket (calls per second), for tests and logs.
    pub fn rate(&self, key: &CallKey<'_>) -> f64 {
        self.bucket(&key.bucket()).lock().expect("bucket").rate
    }

    /// The backoff before retry number `retry` (1-based): uniformly random up to
    /// `base · 2^(retry-1)`, capped.
    pub fn backoff(&self, retry: u32) -> Duration {
        inventory_model::jittered_backoff(
            self.settings.base_backoff,
            self.settings.max_backoff,
            retry,
            fastrand::f64(),
        )
    }

    /// Run `call` under the bucket of `key`, retrying as `classify` says, and
    /// count each try. Returns the last error when tries run out.
    pub async fn call<T, E, F, Fut>(
        &self,
        key: &CallKey<'_>,
        stats: &mut CallStats,
        classify: impl Fn(&E) -> Failure,
        mut call: F,
    ) -> Result<T, E>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let bucket = self.bucket(&key.bucket());
        let metrics = &inventory_telemetry::metrics::METRICS;
        metrics.provider_scope(key.labels());
        let floor = self.settings.rate / 64.0;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let wait = bucket
                .lock()
                .expect("bucket")
                .reserve(Instant::now(), f64::from(self.settings.burst.max(1)));
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
            stats.calls += 1;
            metrics.provider_call(key.labels(), attempt > 1);
            let span = tracing::info_span!(
                "provider call",
                source = key.source,
                api = key.api,
                account_id = key.account_id,
                region = key.region,
                attempt,
                throttled = tracing::field::Empty,
                failed = tracing::field::Empty,
            );
            let result = {
                let _permit = self.in_flight.acquire().await.expect("never closed");
                call().instrument(span.clone()).await
            };
            let error = match result {
                Ok(value) => {
                    bucket.lock().expect("bucket").succeeded(self.settings.rate);
                    return Ok(value);
                }
                Err(e) => e,
            };
            let failure = classify(&error);
            span.record("failed", true);
            span.record("throttled", failure == Failure::Throttled);
            match failure {
                Failure::Permanent => return Err(error),
                Failure::Throttled => {
                    stats.throttles += 1;
                    metrics
                        .provider_throttles
                        .with_label_values(&key.labels())
                        .inc();
                    bucket.lock().expect("bucket").throttled(floor);
                }
                Failure::Transient => {}
            }
            if attempt >= self.settings.max_attempts.max(1) {
                return Err(error);
            }
            stats.retries += 1;
            let delay = self.backoff(attempt);
            tracing::debug!(
                source = key.source,
                api = key.api,
                account_id = key.account_id,
                region = key.region,
                attempt,
                delay_ms = delay.as_millis() as u64,
                "retrying provider call"
            );
            tokio::time::sleep(delay).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `account/region/Api` as a key.
    fn key(text: &str) -> CallKey<'_> {
        let mut parts = text.splitn(3, '/');
        let (account_id, region, api) = (
            parts.next().unwrap(),
            parts.next().unwrap_or(""),
            parts.next().unwrap_or(""),
        );
        CallKey {
            source: "test",
            api,
            account_id,
            region,
        }
    }

    fn pacer(rate: f64, burst: u32) -> Pacer {
        Pacer::new(Pacing {
            rate,
            burst,
            max_in_flight: 4,
            max_attempts: 4,
            base_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
        })
    }

    #[tokio::test(start_paused = true)]
    async fn bucket_allows_a_burst_then_paces_at_the_rate() {
        let p = pacer(10.0, 5);
        let start = Instant::now();
        let mut stats = CallStats::default();
        for _ in 0..25 {
            p.call(
                &key("a/r/Op"),
                &mut stats,
                |_: &()| Failure::Permanent,
                || async { Ok::<_, ()>(()) },
            )
            .await
            .unwrap();
        }
        // 5 from the burst, then 20 at 10/s.
        let elapsed = start.elapsed();
        assert!(elapsed >= Duration::from_millis(1990), "{elapsed:?}");
        assert!(elapsed < Duration::from_millis(2100), "{elapsed:?}");
        assert_eq!(
            stats,
            CallStats {
                calls: 25,
                throttles: 0,
                retries: 0
            }
        );
    }

    #[tokio::test(start_paused = true)]
    async fn buckets_are_independent() {
        let p = pacer(1.0, 1);
        let start = Instant::now();
        let mut stats = CallStats::default();
        for k in ["a/r/Op", "b/r/Op", "a/s/Op", "a/r/Other"] {
            p.call(
                &key(k),
                &mut stats,
                |_: &()| Failure::Permanent,
                || async { Ok::<_, ()>(()) },
            )
            .await
            .unwrap();
        }
        assert!(start.elapsed() < Duration::from_millis(10));
    }

    #[tokio::test(start_paused = true)]
    async fn throttling_backs_off_halves_the_rate_and_recovers() {
        let p = pacer(8.0, 100);
        let mut stats = CallStats::default();
        let mut failures = 2;
        let out = p
            .call(
                &key("a/r/Op"),
                &mut stats,
                |e: &&str| {
                    if *e == "slow down" {
                        Failure::Throttled
                    } else {
                        Failure::Permanent
                    }
                },
                || {
                    let fail = failures > 0;
                    failures -= 1;
                    async move { if fail { Err("slow down") } else { Ok(7) } }
                },
            )
            .await;
        assert_eq!(out, Ok(7));
        assert_eq!(
            stats,
            CallStats {
                calls: 3,
                throttles: 2,
                retries: 2
            }
        );
        // Halved twice (2/s), then one success gave back 0.8.
        assert!(
            (p.rate(&key("a/r/Op")) - 2.8).abs() < 1e-9,
            "{}",
            p.rate(&key("a/r/Op"))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn permanent_errors_are_not_retried_and_tries_are_bounded() {
        let p = pacer(100.0, 100);
        let mut stats = CallStats::default();
        let out: Result<(), &str> = p
            .call(
                &key("k"),
                &mut stats,
                |_| Failure::Permanent,
                || async { Err("denied") },
            )
            .await;
        assert_eq!(out, Err("denied"));
        assert_eq!(stats.calls, 1);
        let mut stats = CallStats::default();
        let out: Result<(), &str> = p
            .call(
                &key("k"),
                &mut stats,
                |_| Failure::Transient,
                || async { Err("503") },
            )
            .await;
        assert_eq!(out, Err("503"));
        assert_eq!(
            stats,
            CallStats {
                calls: 4,
                throttles: 0,
                retries: 3
            }
        );
    }

    #[test]
    fn backoff_is_jittered_under_a_doubling_cap() {
        let p = pacer(1.0, 1);
        for retry in 1..10 {
            let cap = Duration::from_millis(100 * (1 << (retry - 1))).min(Duration::from_secs(1));
            for _ in 0..50 {
                assert!(p.backoff(retry) <= cap);
            }
        }
        let spread: std::collections::HashSet<_> = (0..20).map(|_| p.backoff(3)).collect();
        assert!(spread.len() > 1, "jitter varies the delay");
    }
}
