//! Every task record, kept in memory from a watch of the task bucket: the API
//! lists tasks, counts them and waits for one to finish without reading a
//! record from NATS per request.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_nats::jetstream::kv;
use futures::StreamExt;
use inventory_model::{Task, TaskFilter, sort_tasks};
use tokio::sync::watch;

use crate::{Bus, BusError, consume_error};

/// A live, in-memory copy of the task records.
#[derive(Clone)]
pub struct TaskView {
    tasks: Arc<RwLock<HashMap<String, Task>>>,
    /// Bumped on every change the view takes in.
    changes: watch::Receiver<u64>,
    _watcher: Arc<Watcher>,
}

/// Stops the background watch when the last view is dropped.
struct Watcher(tokio::task::JoinHandle<()>);

impl Drop for Watcher {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Bus {
    /// Start a view of the task records; returns once it holds every record
    /// the bucket had (later changes follow within milliseconds).
    pub async fn task_view(&self) -> Result<TaskView, BusError> {
        let kv = self.tasks_kv().await?.clone();
        let tasks = Arc::new(RwLock::new(HashMap::new()));
        let (tx, changes) = watch::channel(0u64);
        let (synced_tx, synced) = tokio::sync::oneshot::channel();
        let watcher = tokio::spawn(follow(kv, tasks.clone(), tx, synced_tx));
        match synced.await {
            Ok(Ok(())) => Ok(TaskView {
                tasks,
                changes,
                _watcher: Arc::new(Watcher(watcher)),
            }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(consume_error(
                "task view",
                "the watch ended before it synced",
            )),
        }
    }
}

/// Keep `tasks` equal to the bucket: a watch with history (the last value of
/// every key, then every change), started again whenever it ends.
async fn follow(
    kv: kv::Store,
    tasks: Arc<RwLock<HashMap<String, Task>>>,
    changes: watch::Sender<u64>,
    synced: tokio::sync::oneshot::Sender<Result<(), BusError>>,
) {
    let mut synced = Some(synced);
    let mut backoff = Duration::from_millis(100);
    loop {
        match watch_once(&kv, &tasks, &changes, &mut synced).await {
            Ok(()) => tracing::warn!(bucket = kv.name, "task watch ended; starting it again"),
            Err(e) => {
                if let Some(s) = synced.take() {
                    let _ = s.send(Err(e));
                    return;
                }
                tracing::warn!(bucket = kv.name, error = %e, retry_in = ?backoff, "task watch failed; starting it again");
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(10));
    }
}

async fn watch_once(
    kv: &kv::Store,
    tasks: &RwLock<HashMap<String, Task>>,
    changes: &watch::Sender<u64>,
    synced: &mut Option<tokio::sync::oneshot::Sender<Result<(), BusError>>>,
) -> Result<(), BusError> {
    let err = |e: crate::error::Source| consume_error(&kv.name, e);
    let mut watch = kv
        .watch_with_history(">")
        .await
        .map_err(|e| err(e.into()))?;
    // A new watch delivers the bucket anew: what it no longer holds is gone.
    let mut fresh: HashMap<String, Task> = HashMap::new();
    // Known once the watch exists: an empty bucket sends no first entry.
    let mut stream = kv.stream.clone();
    let empty = stream
        .info()
        .await
        .map_err(|e| err(e.into()))?
        .state
        .messages
        == 0;
    let mut current = empty;
    if current {
        replace(tasks, changes, std::mem::take(&mut fresh));
        if let Some(s) = synced.take() {
            let _ = s.send(Ok(()));
        }
    }
    while let Some(entry) = watch.next().await {
        let entry = entry.map_err(|e| err(e.into()))?;
        let value = match entry.operation {
            kv::Operation::Put => match serde_json::from_slice::<Task>(&entry.value) {
                Ok(task) => Some(task),
                Err(e) => {
                    tracing::warn!(key = entry.key, error = %e, "task record is not valid; left out");
                    None
                }
            },
            kv::Operation::Delete | kv::Operation::Purge => None,
        };
        if current {
            {
                let mut map = tasks.write().expect("task view lock");
                match value {
                    Some(task) => map.insert(entry.key, task),
                    None => map.remove(&entry.key),
                };
            }
            changes.send_modify(|n| *n += 1);
        } else {
            match value {
                Some(task) => fresh.insert(entry.key, task),
                None => fresh.remove(&entry.key),
            };
            if entry.delta == 0 {
                current = true;
                replace(tasks, changes, std::mem::take(&mut fresh));
                if let Some(s) = synced.take() {
                    let _ = s.send(Ok(()));
                }
            }
        }
    }
    Ok(())
}

fn replace(
    tasks: &RwLock<HashMap<String, Task>>,
    changes: &watch::Sender<u64>,
    fresh: HashMap<String, Task>,
) {
    *tasks.write().expect("task view lock") = fresh;
    changes.send_modify(|n| *n += 1);
}

impl TaskView {
    /// The tasks matching `filter`, newest first.
    pub fn list(&self, filter: &TaskFilter) -> Vec<Task> {
        let mut out: Vec<Task> = self
            .tasks
            .read()
            .expect("task view lock")
            .values()
            .filter(|t| filter.matches(t))
            .cloned()
            .collect();
        sort_tasks(&mut out);
        out
    }

    pub fn get(&self, id: &str) -> Option<Task> {
        self.tasks.read().expect("task view lock").get(id).cloned()
    }

    /// Every task, for counting.
    pub fn each(&self, mut f: impl FnMut(&Task)) {
        for task in self.tasks.read().expect("task view lock").values() {
            f(task)
        }
    }

    /// Wait until task `id` satisfies `done` (checked at every change), at
    /// most `timeout`; the task as it then is (`None`: no such task).
    pub async fn wait_for(
        &self,
        id: &str,
        timeout: Duration,
        done: impl Fn(&Task) -> bool,
    ) -> Result<Option<Task>, Option<Task>> {
        let mut changes = self.changes.clone();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let task = self.get(id);
            match &task {
                None => return Ok(None),
                Some(t) if done(t) => return Ok(task),
                Some(_) => {}
            }
            match tokio::time::timeout_at(deadline, changes.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) | Err(_) => return Err(task),
            }
        }
    }
}
