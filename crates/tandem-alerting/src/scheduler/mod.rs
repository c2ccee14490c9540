//! [`Scheduler`]: evaluates every rule each group interval, on every instance (`all`) or on
//! the instance holding the rule's shard (`sharded`).
//!
//! One task per instance keeps a heap of each rule's next slot. A rule's slots are the
//! times `k × interval + offset`, the offset a hash of the rule, so a group's evaluations
//! spread over the interval instead of all landing on the same second. A due slot is run
//! on a bounded pool of evaluations (a slot whose rule is still being evaluated, or that
//! finds the pool full, is skipped and counted, as Grafana does). Rules are reloaded when
//! the store's [`RulesFingerprint`](crate::RulesFingerprint) changes. In sharded mode the
//! same task renews this instance's lease (one row, whatever the number of its shards),
//! releases shards rendezvous hashing gives to others (once their evaluations finished) and
//! claims the ones it gives to this instance (see `shards`). Stopping releases every shard
//! and ends the lease, so peers take over at once.

mod shards;
mod worker;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tandem_datasources::QueryService;
use tandem_storage::{Membership, now_ms};
use tokio::sync::{Mutex, Semaphore, broadcast};
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

use crate::metrics::AlertingMetrics;
use crate::scheduler::shards::{Held, Shards, shard_of};
use crate::scheduler::worker::Runtime;
use crate::service::{AlertingSettings, EvaluationMode, FolderLookup};
use crate::store::{RuleFilter, RulesFingerprint};
use crate::{AlertRule, AlertStore, FolderUid, InstanceState, OrgId, RuleUid};

/// How often the rules are read again even when their fingerprint did not change.
const FULL_RELOAD: Duration = Duration::from_secs(60);

/// What the scheduler needs.
pub struct SchedulerDeps {
    /// The rules and their state.
    pub store: Arc<dyn AlertStore>,
    /// Runs the queries.
    pub queries: Arc<dyn QueryService>,
    /// Folder titles for the `grafana_folder` label.
    pub folders: Arc<dyn FolderLookup>,
    /// The live members, for sharding.
    pub membership: Arc<dyn Membership>,
    /// This instance's id (its name in the membership view).
    pub instance_id: String,
    /// A member silent this long is dead; also the shard lease's lifetime.
    pub peer_timeout: Duration,
    /// How often ownership is reconsidered (the heartbeat interval); leases are renewed
    /// every half `peer_timeout`.
    pub tick: Duration,
    /// The metrics.
    pub metrics: AlertingMetrics,
    /// The settings.
    pub settings: AlertingSettings,
    /// Where each evaluation is announced, if anyone listens (tests, embedders).
    pub events: Option<broadcast::Sender<Evaluated>>,
}

/// One evaluation, as announced on [`SchedulerDeps::events`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Evaluated {
    /// The org.
    pub org_id: OrgId,
    /// The rule.
    pub rule_uid: RuleUid,
    /// The slot evaluated (epoch ms).
    pub slot: i64,
    /// The instance that evaluated it.
    pub instance_id: Arc<str>,
}

/// What the loop shares with the evaluations.
pub(crate) struct Shared {
    pub(crate) store: Arc<dyn AlertStore>,
    pub(crate) queries: Arc<dyn QueryService>,
    pub(crate) metrics: AlertingMetrics,
    pub(crate) settings: AlertingSettings,
    pub(crate) events: Option<broadcast::Sender<Evaluated>>,
    pub(crate) instance_id: Arc<str>,
    pub(crate) cancel: CancellationToken,
}

/// The running scheduler; stop it with [`Scheduler::stop`].
pub struct Scheduler {
    cancel: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl Scheduler {
    /// Starts the loop.
    pub fn start(deps: SchedulerDeps) -> Scheduler {
        let cancel = CancellationToken::new();
        let shared = Arc::new(Shared {
            store: deps.store.clone(),
            queries: deps.queries.clone(),
            metrics: deps.metrics.clone(),
            settings: deps.settings.clone(),
            events: deps.events.clone(),
            instance_id: Arc::from(deps.instance_id.as_str()),
            cancel: cancel.clone(),
        });
        let task = tokio::spawn(
            Loop {
                deps,
                shared,
                holder: None,
                entries: HashMap::new(),
                heap: BinaryHeap::new(),
                shards: Shards::default(),
                in_flight: HashMap::new(),
                fingerprint: None,
                renewed: None,
            }
            .run(cancel.clone()),
        );
        Scheduler {
            cancel,
            task: Some(task),
        }
    }

    /// Stops the loop: no new evaluation starts, running ones finish, shards are released.
    pub async fn stop(mut self) {
        self.cancel.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

type Key = (OrgId, RuleUid);

struct Entry {
    rule: Arc<AlertRule>,
    shard: u32,
    offset_ms: i64,
    next_slot: i64,
    runtime: Arc<Mutex<Runtime>>,
    reload: Arc<AtomicBool>,
}

struct Loop {
    deps: SchedulerDeps,
    shared: Arc<Shared>,
    /// The name this instance's lease is held under, while it is live; a lease lost is
    /// never renewed, a new one is registered under a new name.
    holder: Option<String>,
    entries: HashMap<Key, Entry>,
    heap: BinaryHeap<Reverse<(i64, Key)>>,
    shards: Shards,
    in_flight: HashMap<u32, usize>,
    fingerprint: Option<(RulesFingerprint, tokio::time::Instant)>,
    /// When the lease was last renewed.
    renewed: Option<tokio::time::Instant>,
}

impl Loop {
    async fn run(mut self, cancel: CancellationToken) {
        let semaphore = Arc::new(Semaphore::new(
            self.deps.settings.max_concurrent_evaluations.max(1),
        ));
        let mut evaluations: JoinSet<u32> = JoinSet::new();
        let reload_every = self
            .deps
            .settings
            .min_interval
            .clamp(Duration::from_secs(1), Duration::from_secs(10));
        let mut reload = tokio::time::interval(reload_every);
        reload.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut ownership = tokio::time::interval(self.deps.tick.max(Duration::from_millis(50)));
        ownership.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let wait = self
                .heap
                .peek()
                .map_or(Duration::from_secs(1), |Reverse((slot, _))| {
                    Duration::from_millis(u64::try_from(slot.saturating_sub(now_ms())).unwrap_or(0))
                });
            tokio::select! {
                () = cancel.cancelled() => break,
                _ = reload.tick() => self.reload().await,
                _ = ownership.tick() => {
                    if self.deps.settings.mode == EvaluationMode::Sharded {
                        self.ownership().await;
                    }
                    self.update_gauge();
                }
                Some(done) = evaluations.join_next(), if !evaluations.is_empty() => {
                    if let Ok(shard) = done
                        && let Some(n) = self.in_flight.get_mut(&shard)
                    {
                        *n = n.saturating_sub(1);
                    }
                }
                () = tokio::time::sleep(wait) => self.dispatch(&semaphore, &mut evaluations),
            }
        }
        while evaluations.join_next().await.is_some() {}
        let Some(holder) = self.holder.take() else {
            return;
        };
        for (shard, held) in std::mem::take(&mut self.shards.held) {
            if let Err(err) = self
                .deps
                .store
                .release_shard(&holder, held.claim, held.started_until)
                .await
            {
                tracing::warn!(shard, error = %err, "releasing an alerting shard failed");
            }
        }
        // Shards whose release failed are free at once from the lease's watermark.
        if let Err(err) = self.deps.store.end_holder(&holder).await {
            tracing::warn!(error = %err, "ending the alerting lease failed");
        }
    }

    /// Starts the evaluations that are due.
    fn dispatch(&mut self, semaphore: &Arc<Semaphore>, evaluations: &mut JoinSet<u32>) {
        let now = now_ms();
        let sharded = self.deps.settings.mode == EvaluationMode::Sharded;
        while let Some(Reverse((slot, _))) = self.heap.peek() {
            if *slot > now {
                break;
            }
            let Some(Reverse((slot, key))) = self.heap.pop() else {
                break;
            };
            let Some(entry) = self.entries.get_mut(&key) else {
                continue;
            };
            if entry.next_slot != slot {
                continue;
            }
            let interval_ms = entry.rule.interval_seconds.max(1).saturating_mul(1000);
            entry.next_slot = slot.saturating_add(interval_ms);
            self.heap.push(Reverse((entry.next_slot, key.clone())));
            if entry.rule.spec.is_paused || (sharded && !self.shards.permit(entry.shard, slot)) {
                continue;
            }
            let Ok(permit) = semaphore.clone().try_acquire_owned() else {
                self.shared
                    .metrics
                    .missed
                    .with_label_values(&[&key.0.0.to_string()])
                    .inc();
                continue;
            };
            let (shared, runtime, reload, shard) = (
                self.shared.clone(),
                entry.runtime.clone(),
                entry.reload.clone(),
                entry.shard,
            );
            *self.in_flight.entry(shard).or_insert(0) += 1;
            evaluations.spawn(async move {
                worker::evaluate(shared, runtime, reload, slot).await;
                drop(permit);
                shard
            });
        }
    }

    /// Reads the rules again when they changed.
    async fn reload(&mut self) {
        let fingerprint = match self.deps.store.rules_fingerprint().await {
            Ok(f) => f,
            Err(err) => {
                tracing::warn!(error = %err, "reading the alert rules' fingerprint failed");
                return;
            }
        };
        if let Some((known, at)) = &self.fingerprint
            && *known == fingerprint
            && at.elapsed() < FULL_RELOAD
        {
            return;
        }
        let rules = match self.deps.store.list_rules(RuleFilter::default()).await {
            Ok(rules) => rules,
            Err(err) => {
                tracing::warn!(error = %err, "loading the alert rules failed");
                return;
            }
        };
        let orgs: HashSet<OrgId> = rules.iter().map(|r| r.org_id).collect();
        let mut titles: HashMap<(OrgId, FolderUid), String> = HashMap::new();
        for org in orgs {
            match self.deps.folders.folders(org).await {
                Ok(folders) => titles.extend(folders.into_iter().map(|f| ((org, f.uid), f.title))),
                Err(err) => tracing::warn!(error = %err, "loading folder titles failed"),
            }
        }
        let now = now_ms();
        let shards = self.deps.settings.shards;
        let mut seen = HashSet::new();
        for rule in rules {
            let key = (rule.org_id, rule.uid.clone());
            seen.insert(key.clone());
            let title = titles
                .get(&(rule.org_id, rule.folder_uid.clone()))
                .cloned()
                .unwrap_or_else(|| rule.folder_uid.as_str().to_owned());
            let interval_ms = rule.interval_seconds.max(1).saturating_mul(1000);
            let offset_ms = i64::from(shard_of(rule.org_id, &rule.uid, u32::MAX)) % interval_ms;
            match self.entries.get_mut(&key) {
                Some(entry)
                    if entry.rule.version == rule.version
                        && entry.rule.interval_seconds == rule.interval_seconds =>
                {
                    if let Ok(mut rt) = entry.runtime.try_lock() {
                        rt.folder_title = title;
                    }
                }
                Some(entry) => {
                    let rule = Arc::new(rule);
                    if let Ok(mut rt) = entry.runtime.try_lock() {
                        rt.rule = rule.clone();
                        rt.folder_title = title;
                    } else {
                        // Busy: a fresh runtime takes over from the next slot, restored from
                        // the store.
                        entry.runtime = Arc::new(Mutex::new(runtime(rule.clone(), title)));
                    }
                    entry.offset_ms = offset_ms;
                    entry.next_slot = next_slot(now, interval_ms, offset_ms);
                    entry.rule = rule;
                    self.heap.push(Reverse((entry.next_slot, key)));
                }
                None => {
                    let rule = Arc::new(rule);
                    let next = next_slot(now, interval_ms, offset_ms);
                    self.entries.insert(
                        key.clone(),
                        Entry {
                            shard: shard_of(rule.org_id, &rule.uid, shards),
                            rule: rule.clone(),
                            offset_ms,
                            next_slot: next,
                            runtime: Arc::new(Mutex::new(runtime(rule, title))),
                            reload: Arc::new(AtomicBool::new(true)),
                        },
                    );
                    self.heap.push(Reverse((next, key)));
                }
            }
        }
        self.entries.retain(|key, _| seen.contains(key));
        // The heap keeps stale items of deleted rules; they are skipped when popped, and
        // the heap is rebuilt when they outnumber the rules.
        if self.heap.len() > self.entries.len().saturating_mul(2).saturating_add(64) {
            self.heap = self
                .entries
                .iter()
                .map(|(key, entry)| Reverse((entry.next_slot, key.clone())))
                .collect();
        }
        self.fingerprint = Some((fingerprint, tokio::time::Instant::now()));
    }

    /// Renews, releases and claims shards.
    async fn ownership(&mut self) {
        let me = self.deps.instance_id.clone();
        let mut members: Vec<String> = match self
            .deps
            .membership
            .live_peers(self.deps.peer_timeout)
            .await
        {
            Ok(peers) => peers.into_iter().map(|p| p.instance.id).collect(),
            Err(err) => {
                tracing::warn!(error = %err, "reading the live members failed");
                return;
            }
        };
        if !members.contains(&me) {
            members.push(me.clone());
        }
        // The lease lives `peer_timeout` and claims slots as far ahead; it is renewed at half
        // its life, in one row write, so a holder writes about twice per peer timeout
        // whatever the number of its shards. A holder that dies leaves its claim at most one
        // lease life ahead: the slots up to then are skipped, inside the fail-over window.
        let ttl = i64::try_from(self.deps.peer_timeout.as_millis()).unwrap_or(5_000);
        let horizon = ttl;
        let Some(holder) = self.lease(ttl, horizon).await else {
            return;
        };
        let desired = Shards::desired(&me, &members, self.deps.settings.shards);
        let leaving: Vec<(u32, Held)> = self
            .shards
            .held
            .iter()
            .filter(|(shard, _)| !desired.contains(shard))
            .filter(|(shard, _)| self.in_flight.get(shard).copied().unwrap_or(0) == 0)
            .map(|(shard, held)| (*shard, *held))
            .collect();
        for (shard, held) in leaving {
            self.shards.held.remove(&shard);
            if let Err(err) = self
                .deps
                .store
                .release_shard(&holder, held.claim, held.started_until)
                .await
            {
                tracing::warn!(shard, error = %err, "releasing an alerting shard failed");
            }
        }
        for shard in desired {
            if self.shards.held.contains_key(&shard) {
                continue;
            }
            match self.deps.store.claim_shard(shard, &holder).await {
                Ok(Some(claim)) => {
                    tracing::debug!(shard, start = claim.start, "claimed an alerting shard");
                    self.shards.held.insert(
                        shard,
                        Held {
                            claim,
                            started_until: claim.start,
                        },
                    );
                    // Its rules' state may have moved on elsewhere: restore before evaluating.
                    for entry in self.entries.values().filter(|e| e.shard == shard) {
                        entry.reload.store(true, Ordering::Release);
                    }
                }
                Ok(None) => {}
                Err(err) => {
                    tracing::warn!(shard, error = %err, "claiming an alerting shard failed")
                }
            }
        }
    }

    /// This instance's lease, registered or renewed when due; `None` when there is none.
    async fn lease(&mut self, ttl: i64, horizon: i64) -> Option<String> {
        let store = self.deps.store.clone();
        let Some(holder) = self.holder.clone() else {
            let holder = format!("{}/{:08x}", self.deps.instance_id, rand::random::<u32>());
            match store.register_holder(&holder, ttl, horizon).await {
                Ok(lease) => {
                    tracing::debug!(%holder, "registered an alerting lease");
                    self.renewed = Some(tokio::time::Instant::now());
                    self.shards.claimed_until = lease.claimed_until;
                    self.holder = Some(holder.clone());
                    return Some(holder);
                }
                Err(err) => {
                    tracing::warn!(error = %err, "registering the alerting lease failed");
                    return None;
                }
            }
        };
        let due = self
            .renewed
            .is_none_or(|at| at.elapsed() >= self.deps.peer_timeout / 2);
        if !due {
            return Some(holder);
        }
        self.renewed = Some(tokio::time::Instant::now());
        match store.renew_holder(&holder, ttl, horizon).await {
            Ok(Some(lease)) => {
                self.shards.claimed_until = self.shards.claimed_until.max(lease.claimed_until);
                Some(holder)
            }
            Ok(None) => {
                // Expired, and perhaps taken over: every shard is lost. Evaluations still
                // running were of slots before the watermark the takers start from.
                tracing::info!(
                    %holder,
                    shards = self.shards.held.len(),
                    "lost the alerting lease"
                );
                self.shards.held.clear();
                self.shards.claimed_until = 0;
                self.holder = None;
                None
            }
            Err(err) => {
                // Evaluation stops at the watermark until a renewal succeeds.
                tracing::warn!(error = %err, "renewing the alerting lease failed");
                Some(holder)
            }
        }
    }

    /// `grafana_alerting_alerts{state}` from the instances of the rules evaluated here.
    fn update_gauge(&self) {
        let sharded = self.deps.settings.mode == EvaluationMode::Sharded;
        let mut counts: HashMap<InstanceState, f64> = HashMap::new();
        for entry in self.entries.values() {
            if sharded && !self.shards.held.contains_key(&entry.shard) {
                continue;
            }
            if let Ok(rt) = entry.runtime.try_lock() {
                for instance in rt.instances.values() {
                    *counts.entry(instance.state).or_insert(0.0) += 1.0;
                }
            }
        }
        for state in InstanceState::ALL {
            let name = state.as_str().to_ascii_lowercase();
            self.shared
                .metrics
                .alerts
                .with_label_values(&[&name])
                .set(counts.get(&state).copied().unwrap_or(0.0));
        }
    }
}

fn runtime(rule: Arc<AlertRule>, folder_title: String) -> Runtime {
    Runtime {
        rule,
        folder_title,
        instances: HashMap::new(),
        loaded: false,
        status: None,
    }
}

/// The first slot after `now`.
fn next_slot(now: i64, interval_ms: i64, offset_ms: i64) -> i64 {
    let k = now.saturating_sub(offset_ms).div_euclid(interval_ms.max(1));
    k.saturating_add(1)
        .saturating_mul(interval_ms)
        .saturating_add(offset_ms)
}

/// The latest slot of a rule at or before `now`: what the read APIs report as the last
/// evaluation of a rule that is being evaluated.
pub fn latest_slot(org: OrgId, uid: &RuleUid, interval_seconds: i64, now: i64) -> i64 {
    let interval_ms = interval_seconds.max(1).saturating_mul(1000);
    let offset = i64::from(shard_of(org, uid, u32::MAX)) % interval_ms;
    next_slot(now, interval_ms, offset).saturating_sub(interval_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_spread_and_regular() {
        assert_eq!(next_slot(1_000, 10_000, 3_000), 3_000);
        assert_eq!(next_slot(3_000, 10_000, 3_000), 13_000);
        assert_eq!(next_slot(12_999, 10_000, 3_000), 13_000);
        let uid = RuleUid::from("abc");
        let latest = latest_slot(OrgId(1), &uid, 10, 100_000);
        assert!(latest <= 100_000 && latest > 90_000);
    }
}
