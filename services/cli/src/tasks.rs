//! `inventory collect`, `inventory tasks …` and `inventory schedules list`:
//! the operator's view of the control plane, straight over NATS.

use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use inventory_bus::{Bus, TaskOpError};
use inventory_model::{CollectRequest, Priority, Task, TaskFilter, TaskState};

#[derive(Args)]
pub struct CollectArgs {
    /// Source, e.g. `aws`.
    source: String,
    /// Kind (plural, e.g. `instances`) or `all`.
    kind: String,
    /// Restrict to these accounts (repeatable).
    #[arg(long = "account")]
    accounts: Vec<String>,
    /// Restrict to these regions (repeatable).
    #[arg(long = "region")]
    regions: Vec<String>,
    /// high, normal or low.
    #[arg(long)]
    priority: Option<Priority>,
    /// Idempotency key: the task's id; submitting it again runs it once.
    #[arg(long)]
    id: Option<String>,
    /// Follow the task with a progress bar until it ends; exit non-zero unless
    /// it completed.
    #[arg(long)]
    wait: bool,
}

#[derive(Subcommand)]
pub enum TasksCommand {
    /// List tasks, newest first.
    List {
        #[arg(long)]
        state: Option<TaskState>,
        #[arg(long)]
        source: Option<String>,
        /// Plural kind name or `all`.
        #[arg(long)]
        kind: Option<String>,
        /// Show at most this many.
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Show one task as JSON.
    Show { id: String },
    /// Cancel a pending, scheduled or active task (nothing is deleted).
    Cancel { id: String },
    /// Forget a task that is not active.
    Delete { id: String },
    /// Run a completed, failed, dead or cancelled task again (re-drive).
    Retry { id: String },
}

#[derive(Subcommand)]
pub enum SchedulesCommand {
    /// List the schedules with the period and task each fired last.
    List,
}

/// `inventory collect`: send the request over NATS like any publisher would.
pub async fn collect(bus: &Bus, args: CollectArgs) -> anyhow::Result<bool> {
    let request = CollectRequest {
        source: args.source,
        kind: args.kind,
        accounts: args.accounts,
        regions: args.regions,
        priority: args.priority,
    };
    let reply = bus.request_collection(&request, args.id.as_deref()).await?;
    println!("{reply}");
    if reply.get("error").is_some() {
        return Ok(false);
    }
    if !args.wait {
        return Ok(true);
    }
    let id = reply["request_id"]
        .as_str()
        .context("the reply names no task")?;
    let task = follow(bus, id).await?;
    println!("{}", serde_json::to_string_pretty(&task)?);
    Ok(task.state == TaskState::Completed)
}

/// Show a task's progress until it ends.
async fn follow(bus: &Bus, id: &str) -> anyhow::Result<Task> {
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} {prefix} [{bar:30}] {pos}/{len} scopes  {msg}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar.set_prefix(id.to_owned());
    loop {
        let task = bus
            .task(id)
            .await?
            .with_context(|| format!("task {id} disappeared"))?;
        let p = task.progress;
        bar.set_length(p.scopes_total);
        bar.set_position(p.scopes_done);
        bar.set_message(format!(
            "{}  resources {}  errors {}{}",
            task.state,
            p.resources_seen,
            p.scopes_failed,
            task.error
                .as_ref()
                .map(|e| format!("  ({})", e.message))
                .unwrap_or_default()
        ));
        if task.state.is_final() {
            bar.finish();
            return Ok(task);
        }
        bar.tick();
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

fn op_result(r: Result<Task, TaskOpError>) -> anyhow::Result<()> {
    print_json(&r?)
}

pub async fn tasks(bus: &Bus, command: TasksCommand) -> anyhow::Result<()> {
    match command {
        TasksCommand::List {
            state,
            source,
            kind,
            limit,
        } => {
            let tasks = bus
                .tasks(&TaskFilter {
                    state,
                    source,
                    kind,
                })
                .await?;
            println!(
                "{:<40} {:<10} {:<7} {:<16} {:>3} {:<20} {:>9} {:>9}  ERROR",
                "ID", "STATE", "PRIO", "REQUEST", "TRY", "CREATED", "SCOPES", "RESOURCES"
            );
            // Cells are cut to their column (`tasks show` has everything).
            let cut = inventory_model::text::truncated;
            for t in tasks.iter().take(limit) {
                let p = t.progress;
                println!(
                    "{:<40} {:<10} {:<7} {:<16} {:>3} {:<20} {:>9} {:>9}  {}",
                    cut(&t.spec.id, 40),
                    t.state.as_str(),
                    t.spec.priority.as_str(),
                    cut(&format!("{}/{}", t.spec.source, t.spec.kind), 16),
                    t.attempts,
                    t.spec.created_at.format("%Y-%m-%d %H:%M:%S"),
                    format!("{}/{}", p.scopes_done, p.scopes_total),
                    p.resources_seen,
                    cut(
                        t.error.as_ref().map(|e| e.message.as_str()).unwrap_or(""),
                        100
                    )
                );
            }
            if tasks.len() > limit {
                println!("({} more; raise --limit)", tasks.len() - limit);
            }
            Ok(())
        }
        TasksCommand::Show { id } => match bus.task(&id).await? {
            Some(task) => print_json(&task),
            None => Err(TaskOpError::NotFound(id).into()),
        },
        TasksCommand::Cancel { id } => op_result(bus.cancel_task(&id).await),
        TasksCommand::Delete { id } => op_result(bus.delete_task(&id).await),
        TasksCommand::Retry { id } => op_result(bus.retry_task(&id).await),
    }
}

pub async fn schedules(bus: &Bus, command: SchedulesCommand) -> anyhow::Result<()> {
    match command {
        SchedulesCommand::List => {
            let list: Vec<_> = bus.schedules().await?.into_iter().map(|(s, _)| s).collect();
            print_json(&list)
        }
    }
}
