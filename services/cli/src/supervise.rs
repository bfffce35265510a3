//! Several services in one process (`inventory up`): they run until the
//! shutdown signal or until any one of them ends. A service ending on its own,
//! with an error or without, is a failure of the whole; the others are then
//! stopped, and given a bounded time to finish.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use tokio::task::{Id, JoinSet};
use tokio_util::sync::CancellationToken;

#[derive(Default)]
pub struct Services {
    set: JoinSet<anyhow::Result<()>>,
    names: HashMap<Id, &'static str>,
}

impl Services {
    /// Run `service` (it must return once `shutdown` is cancelled).
    pub fn spawn<E>(
        &mut self,
        name: &'static str,
        service: impl Future<Output = Result<(), E>> + Send + 'static,
    ) where
        E: Into<anyhow::Error> + 'static,
    {
        let id = self
            .set
            .spawn(async move { service.await.map_err(Into::into) })
            .id();
        self.names.insert(id, name);
    }

    /// Run a service that cannot fail (it retries on its own).
    pub fn spawn_infallible(
        &mut self,
        name: &'static str,
        service: impl Future<Output = ()> + Send + 'static,
    ) {
        self.spawn(name, async move {
            service.await;
            Ok::<(), anyhow::Error>(())
        });
    }

    /// Wait for `shutdown` or for the first service to end, then cancel
    /// `shutdown` and wait for the others, at most `grace` (then they are
    /// aborted). The error is the first service's that ended on its own.
    pub async fn run(mut self, shutdown: CancellationToken, grace: Duration) -> anyhow::Result<()> {
        let first = tokio::select! {
            biased;
            _ = shutdown.cancelled() => None,
            Some(joined) = self.set.join_next_with_id() => Some(joined),
        };
        // A service that ends once shutdown has begun is stopping, not failing.
        let failure = match first {
            Some(joined) if !shutdown.is_cancelled() => Some(match joined {
                Ok((id, Ok(()))) => anyhow::anyhow!("{} stopped unexpectedly", self.name(id)),
                Ok((id, Err(e))) => e.context(format!("{} failed", self.name(id))),
                Err(e) => anyhow::anyhow!("{} panicked: {e}", self.name(e.id())),
            }),
            Some(joined) => {
                self.stopped(joined);
                None
            }
            None => None,
        };
        shutdown.cancel();
        if let Some(e) = &failure {
            tracing::error!(error = format!("{e:#}"), "stopping every service");
        }
        let rest = async {
            while let Some(joined) = self.set.join_next_with_id().await {
                self.stopped(joined);
            }
        };
        if tokio::time::timeout(grace, rest).await.is_err() {
            tracing::warn!(grace = ?grace, "services did not stop in time; aborting them");
            self.set.abort_all();
            while self.set.join_next().await.is_some() {}
        }
        failure.map_or(Ok(()), Err)
    }

    /// Log how a service ended while stopping.
    fn stopped(&self, joined: Result<(Id, anyhow::Result<()>), tokio::task::JoinError>) {
        match joined {
            Ok((_, Ok(()))) => {}
            Ok((id, Err(e))) => {
                tracing::error!(
                    service = self.name(id),
                    error = format!("{e:#}"),
                    "service failed"
                )
            }
            Err(e) if e.is_cancelled() => {}
            Err(e) => tracing::error!(service = self.name(e.id()), error = %e, "service panicked"),
        }
    }

    fn name(&self, id: Id) -> &'static str {
        self.names.get(&id).copied().unwrap_or("a service")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A service that runs until shutdown and notes that it stopped.
    fn until(
        shutdown: &CancellationToken,
        stopped: &std::sync::Arc<std::sync::atomic::AtomicBool>,
    ) -> impl Future<Output = anyhow::Result<()>> + Send + 'static {
        let (shutdown, stopped) = (shutdown.clone(), stopped.clone());
        async move {
            shutdown.cancelled().await;
            stopped.store(true, std::sync::atomic::Ordering::SeqCst);
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_service_that_returns_early_stops_the_others_with_an_error() {
        let shutdown = CancellationToken::new();
        let stopped = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut services = Services::default();
        services.spawn("api", until(&shutdown, &stopped));
        services.spawn_infallible("notifier", async {});
        let err = services
            .run(shutdown.clone(), Duration::from_secs(5))
            .await
            .unwrap_err();
        assert_eq!(err.to_string(), "notifier stopped unexpectedly");
        assert!(shutdown.is_cancelled());
        assert!(
            stopped.load(std::sync::atomic::Ordering::SeqCst),
            "the api was stopped and awaited"
        );
    }

    #[tokio::test]
    async fn failures_and_panics_are_named_and_never_awaited_twice() {
        let shutdown = CancellationToken::new();
        let mut services = Services::default();
        services.spawn("projector", async { Err(anyhow::anyhow!("no database")) });
        let err = services
            .run(shutdown.clone(), Duration::from_secs(5))
            .await
            .unwrap_err();
        assert_eq!(format!("{err:#}"), "projector failed: no database");

        let mut services = Services::default();
        services.spawn_infallible("collector", async { panic!("boom") });
        let err = services
            .run(CancellationToken::new(), Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(err.to_string().starts_with("collector panicked"), "{err}");
    }

    #[tokio::test]
    async fn shutdown_stops_everything_and_a_stuck_service_is_aborted() {
        let shutdown = CancellationToken::new();
        let stopped = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut services = Services::default();
        services.spawn("api", until(&shutdown, &stopped));
        services.spawn_infallible("stuck", std::future::pending());
        shutdown.cancel();
        let started = tokio::time::Instant::now();
        services
            .run(shutdown, Duration::from_millis(200))
            .await
            .unwrap();
        assert!(stopped.load(std::sync::atomic::Ordering::SeqCst));
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "the stuck service was aborted"
        );
    }
}
