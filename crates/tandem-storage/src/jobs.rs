use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::{Result, ServerLock, ServerLockExt};

type JobFn = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<u64>> + Send>> + Send + Sync>;

/// Periodic jobs that must run once per cluster per interval (cleanup, retention), each
/// guarded by the [`ServerLock`].
///
/// Every instance schedules every job; at each tick the instances race for the job's
/// server lock and only the winner runs it.
pub struct ClusterJobs {
    lock: Arc<dyn ServerLock>,
    jobs: Vec<(String, Duration, JobFn)>,
}

impl ClusterJobs {
    /// An empty schedule guarded by `lock`.
    pub fn new(lock: Arc<dyn ServerLock>) -> ClusterJobs {
        ClusterJobs {
            lock,
            jobs: Vec::new(),
        }
    }

    /// Adds a job named `name` (also its server-lock operation) run every `interval`; the
    /// job returns how many items it processed, for the log.
    pub fn add<F, Fut>(&mut self, name: &str, interval: Duration, job: F)
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<u64>> + Send + 'static,
    {
        let job: JobFn = Arc::new(move || Box::pin(job()));
        self.jobs.push((name.to_owned(), interval, job));
    }

    /// Starts one task per job; they stop when the returned handle is stopped or dropped.
    pub fn start(self) -> JobsHandle {
        let cancel = CancellationToken::new();
        let mut tasks = JoinSet::new();
        for (name, interval, job) in self.jobs {
            let lock = self.lock.clone();
            let cancel = cancel.clone();
            tasks.spawn(async move {
                let mut ticker = tokio::time::interval(interval);
                ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tokio::select! {
                        () = cancel.cancelled() => break,
                        _ = ticker.tick() => {}
                    }
                    // Leave a tenth of the interval as slack, so that this instance's own
                    // next tick, arriving a little early, still finds the lock due.
                    let due = interval.saturating_sub(interval / 10);
                    match lock.lock_and_execute(&name, due, job()).await {
                        Ok(Some(Ok(count))) => tracing::debug!(job = %name, count, "ran cluster job"),
                        Ok(Some(Err(err))) => tracing::warn!(job = %name, error = %err, "cluster job failed"),
                        Ok(None) => tracing::trace!(job = %name, "cluster job ran elsewhere"),
                        Err(err) => tracing::warn!(job = %name, error = %err, "claiming a cluster job failed"),
                    }
                }
            });
        }
        JobsHandle { cancel, tasks }
    }
}

/// Owns the running [`ClusterJobs`] tasks.
pub struct JobsHandle {
    cancel: CancellationToken,
    tasks: JoinSet<()>,
}

impl JobsHandle {
    /// Stops every job task, waiting for a running job to finish.
    pub async fn stop(mut self) {
        self.cancel.cancel();
        while self.tasks.join_next().await.is_some() {}
    }
}

impl Drop for JobsHandle {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}
