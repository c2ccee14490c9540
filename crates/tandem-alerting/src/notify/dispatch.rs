//! [`Dispatcher`]: routes firing and resolved alert instances (read from the store) through
//! each org's policy tree into groups, plans each due flush once per cluster, and delivers
//! the claimed notifications.
//!
//! Every instance runs one. A plan pass (every `poll_interval`) reads the instances and
//! the groups' shared rows; a group is due when the database's clock passes its
//! `next_due`, and the flush is planned by whichever instance's compare-and-swap on the
//! group's sequence wins, inserting its notifications claimed by that instance. A
//! take-over pass (every quarter of `claim_timeout`) claims notifications whose lease
//! expired unsent. A holder renews its lease while it sends and retries, and checks it
//! (the fence) before every attempt, so an instance that stalled past its lease sends
//! nothing afterwards.
//!
//! The alerts are the rule state's instances and the alerts posted to the Alertmanager
//! API by outside generators ([`crate::notify::posted`]), both read from the shared
//! database at every pass.
//!
//! Alerts that an active silence of their org matches are left out of every notification;
//! the silences are read from the shared database at every plan pass, so a silence made
//! through any instance mutes the next flush of all of them.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, Semaphore};
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

use crate::notify::contact::ContactPoint;
use crate::notify::email::{SmtpSettings, email_body, send_email};
use crate::notify::payload::{Notification, NotifiedAlert, webhook_body};
use crate::notify::policy::CompiledRoute;
use crate::notify::silence::Silencer;
use crate::notify::store::{
    Claim, ClaimStatus, DocumentKind, FlushPlan, NewGroup, NotificationStore, PlannedNotification,
};
use crate::notify::timing::{MuteTiming, route_muted, timings_by_name};
use crate::{AlertInstance, AlertStore, InstanceState, Labels, OrgId};

/// Typed settings of notifications; `Default` is the documented default.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotifySettings {
    /// How long a claim lives unrenewed: a holder that dies or stalls is taken over after
    /// this (`[cluster] notification_claim_timeout`).
    pub claim_timeout: Duration,
    /// How often groups are recomputed from the alert instances
    /// (`[cluster] notification_poll_interval`).
    pub poll_interval: Duration,
    /// Attempts of one notification before it is given up.
    pub max_attempts: u32,
    /// The longest one webhook request may take.
    pub send_timeout: Duration,
    /// `[server] root_url`, the `externalURL` of payloads.
    pub external_url: String,
    /// `[smtp]`: how email contact points send.
    pub smtp: SmtpSettings,
    /// How long finished notifications stay in the log
    /// (`[cluster] notification_log_retention`); the composition layer runs the purge.
    pub log_retention: Duration,
}

impl Default for NotifySettings {
    fn default() -> NotifySettings {
        NotifySettings {
            claim_timeout: Duration::from_secs(2),
            poll_interval: Duration::from_secs(1),
            max_attempts: 5,
            send_timeout: Duration::from_secs(10),
            external_url: "http://localhost:3000/".to_owned(),
            smtp: SmtpSettings::default(),
            log_retention: Duration::from_secs(5 * 24 * 3600),
        }
    }
}

/// What the dispatcher needs.
pub struct DispatcherDeps {
    /// The alert instances.
    pub alerts: Arc<dyn AlertStore>,
    /// Contact points, trees, groups and the log.
    pub store: Arc<dyn NotificationStore>,
    /// This instance's id.
    pub instance_id: String,
    /// The settings.
    pub settings: NotifySettings,
}

/// The running dispatcher; stop it with [`Dispatcher::stop`].
pub struct Dispatcher {
    cancel: CancellationToken,
    task: Option<JoinHandle<()>>,
    wake: Arc<Notify>,
}

/// How many notifications one instance sends at once.
const MAX_CONCURRENT_SENDS: usize = 64;
/// How many expired claims one take-over pass takes.
const TAKE_OVER_BATCH: u64 = 200;

struct Shared {
    store: Arc<dyn NotificationStore>,
    holder: String,
    settings: NotifySettings,
    client: reqwest::Client,
    cancel: CancellationToken,
    /// The claims this instance holds, (id, token), with how long it knows it holds each:
    /// set when a claim is won, moved on only by a renewal the database confirmed.
    held: std::sync::Mutex<HashMap<(i64, i64), tokio::time::Instant>>,
}

impl Shared {
    fn held(&self) -> std::sync::MutexGuard<'_, HashMap<(i64, i64), tokio::time::Instant>> {
        self.held
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Until when this instance knows it holds `claim` (in the past once it is lost).
    fn lease_until(&self, claim: &Claim) -> Option<tokio::time::Instant> {
        self.held().get(&(claim.id, claim.token)).copied()
    }
}

/// Forgets a claim once its delivery ends, however it ends.
struct Release<'a>(&'a Shared, (i64, i64));

impl Drop for Release<'_> {
    fn drop(&mut self) {
        self.0.held().remove(&self.1);
    }
}

impl Dispatcher {
    /// Starts the loop.
    pub fn start(deps: DispatcherDeps) -> Dispatcher {
        let cancel = CancellationToken::new();
        let client = reqwest::Client::builder()
            .timeout(deps.settings.send_timeout)
            .user_agent("Grafana")
            .build()
            .unwrap_or_default();
        let shared = Arc::new(Shared {
            store: deps.store.clone(),
            holder: format!("{}/{:08x}", deps.instance_id, rand::random::<u32>()),
            settings: deps.settings.clone(),
            client,
            cancel: cancel.clone(),
            held: std::sync::Mutex::new(HashMap::new()),
        });
        tokio::spawn(renew_held(shared.clone()));
        let wake = Arc::new(Notify::new());
        let task = tokio::spawn(run(deps.alerts, shared, cancel.clone(), wake.clone()));
        Dispatcher {
            cancel,
            task: Some(task),
            wake,
        }
    }

    /// What makes the dispatcher plan at once rather than at its next pass: notified by
    /// whoever just changed the alerts (a post to the Alertmanager API), so that a new
    /// group's `group_wait` starts from the post, not from the next poll.
    pub fn waker(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// Stops the loop; sends in flight finish (their claims stay valid).
    pub async fn stop(mut self) {
        self.cancel.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Dispatcher {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// The shortest wait between plan passes.
const MIN_PLAN_GAP: Duration = Duration::from_millis(10);

async fn run(
    alerts: Arc<dyn AlertStore>,
    shared: Arc<Shared>,
    cancel: CancellationToken,
    wake: Arc<Notify>,
) {
    let poll = shared.settings.poll_interval.max(Duration::from_millis(50));
    // A pass runs every `poll`, and sooner when a group falls due before that (the pass
    // learns when from the groups' rows) or when woken.
    let mut next_plan = tokio::time::Instant::now();
    let mut take_over =
        tokio::time::interval((shared.settings.claim_timeout / 4).max(Duration::from_millis(50)));
    take_over.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let permits = Arc::new(Semaphore::new(MAX_CONCURRENT_SENDS));
    let mut sends: JoinSet<()> = JoinSet::new();
    let mut ensured: HashSet<OrgId> = HashSet::new();
    let ttl = ms(shared.settings.claim_timeout);
    // Set when due flushes were left for later because every send slot was taken: the
    // next send that ends plans again at once.
    let mut backlog = false;
    let mut won_at = tokio::time::Instant::now();
    loop {
        // An instance wins no more claims than it can start sending at once: a claim left
        // waiting for a slot would outlive its lease unrenewed, and the due groups it leaves
        // are planned by the other instances meanwhile.
        let budget = MAX_CONCURRENT_SENDS.saturating_sub(sends.len());
        let claims = tokio::select! {
            () = cancel.cancelled() => break,
            () = async {
                tokio::select! {
                    () = tokio::time::sleep_until(next_plan) => {}
                    () = wake.notified() => {}
                }
            } => {
                let started = tokio::time::Instant::now();
                won_at = started;
                if budget == 0 {
                    backlog = true;
                    next_plan = started + poll;
                    Vec::new()
                } else {
                    let pass = match plan_pass(&alerts, &shared, &mut ensured, budget).await {
                        Ok(pass) => pass,
                        Err(err) => {
                            tracing::warn!(error = %err, "planning notifications failed");
                            Pass::default()
                        }
                    };
                    backlog = pass.backlog;
                    let wait = if pass.backlog {
                        MIN_PLAN_GAP
                    } else {
                        pass.due_in.map_or(poll, |d| d.clamp(MIN_PLAN_GAP, poll))
                    };
                    next_plan = (started + wait).max(tokio::time::Instant::now() + MIN_PLAN_GAP);
                    pass.claims
                }
            },
            _ = take_over.tick() => {
                won_at = tokio::time::Instant::now();
                let free = u64::try_from(budget).unwrap_or(0).min(TAKE_OVER_BATCH);
                if free == 0 {
                    Vec::new()
                } else {
                    match shared.store.take_over(&shared.holder, ttl, free).await {
                        Ok(claims) => {
                            for c in &claims {
                                tracing::info!(flush_key = %c.flush_key, receiver = %c.receiver, "took over a notification");
                            }
                            claims
                        }
                        Err(err) => {
                            tracing::warn!(error = %err, "taking over notifications failed");
                            Vec::new()
                        }
                    }
                }
            },
            Some(_) = sends.join_next(), if !sends.is_empty() => {
                if backlog {
                    next_plan = tokio::time::Instant::now();
                }
                Vec::new()
            },
        };
        let ttl_local = shared.settings.claim_timeout;
        for claim in &claims {
            // The claim's lease was set by the database after `won_at`.
            shared
                .held()
                .insert((claim.id, claim.token), won_at + ttl_local);
        }
        for claim in claims {
            let (shared, permits) = (shared.clone(), permits.clone());
            sends.spawn(async move {
                let Ok(_permit) = permits.acquire_owned().await else {
                    return;
                };
                deliver(&shared, claim).await;
            });
        }
    }
    while sends.join_next().await.is_some() {}
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// One group as computed from this instance's read of the alert instances.
struct Computed<'a> {
    org_id: OrgId,
    receiver: String,
    group_key: String,
    group_labels: Labels,
    route: CompiledRoute,
    alerts: Vec<&'a AlertInstance>,
}

fn labels_text(labels: &Labels) -> String {
    let pairs: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{{{}}}", pairs.join(", "))
}

fn group_id(org: OrgId, receiver: &str, key: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("{}\n{receiver}\n{key}", org.0));
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn is_resolved(i: &AlertInstance) -> bool {
    i.state == InstanceState::Normal && i.resolved_at.is_some()
}

struct OrgConfig {
    tree: CompiledRoute,
    points: Vec<ContactPoint>,
    templates: Vec<(String, String)>,
    timings: HashMap<String, MuteTiming>,
}

/// What one plan pass did.
#[derive(Default)]
struct Pass {
    /// The claims won.
    claims: Vec<Claim>,
    /// How long until the earliest group that is not yet due falls due (by the database's
    /// clock), when some is.
    due_in: Option<Duration>,
    /// Whether due flushes were left unplanned for want of send slots.
    backlog: bool,
}

/// One plan pass, planning at most `budget` due flushes.
async fn plan_pass(
    alerts: &Arc<dyn AlertStore>,
    shared: &Shared,
    ensured: &mut HashSet<OrgId>,
    budget: usize,
) -> crate::Result<Pass> {
    let mut instances = alerts.list_instances(None).await?;
    let (db_now, rows) = shared.store.groups().await?;
    // Alerts posted by outside generators (Prometheus) are routed with the rules' own.
    let (posted_now, posted) = shared.store.external_alerts(None).await?;
    instances.extend(posted.iter().map(|a| a.instance(posted_now)));
    // Read at every pass from the shared database: a silence made through any instance
    // mutes the next flush of every instance.
    let silencer = Silencer::new(&shared.store.active_silences().await?);
    let mut orgs: BTreeMap<OrgId, OrgConfig> = BTreeMap::new();
    let wanted: HashSet<OrgId> = instances
        .iter()
        .map(|i| i.org_id)
        .chain(rows.iter().map(|r| r.org_id))
        .collect();
    for org in wanted {
        if ensured.insert(org) {
            shared.store.ensure_defaults(org).await?;
        }
        let (tree, _) = shared.store.policy(org).await?;
        let templates = shared
            .store
            .documents(org, DocumentKind::Template)
            .await?
            .into_iter()
            .map(|d| {
                let text = d
                    .body
                    .get("template")
                    .and_then(|t| t.as_str())
                    .unwrap_or("")
                    .to_owned();
                (d.name, text)
            })
            .collect();
        let timings = timings_by_name(
            org,
            shared
                .store
                .documents(org, DocumentKind::MuteTiming)
                .await?,
        );
        orgs.insert(
            org,
            OrgConfig {
                tree: CompiledRoute::compile(&tree)?,
                points: shared.store.contact_points(org).await?,
                templates,
                timings,
            },
        );
    }
    let mut computed: HashMap<String, Computed<'_>> = HashMap::new();
    for instance in &instances {
        if !(instance.state.is_firing() || is_resolved(instance)) {
            continue;
        }
        let Some(config) = orgs.get(&instance.org_id) else {
            continue;
        };
        let mut routes = Vec::new();
        config.tree.matching(&instance.labels, &mut routes);
        for route in routes {
            let group_labels = route.group_labels(&instance.labels);
            let key = format!("{}:{}", route.path, labels_text(&group_labels));
            let id = group_id(instance.org_id, &route.receiver, &key);
            computed
                .entry(id)
                .or_insert_with(|| Computed {
                    org_id: instance.org_id,
                    receiver: route.receiver.clone(),
                    group_key: key,
                    group_labels,
                    route: route.clone(),
                    alerts: Vec::new(),
                })
                .alerts
                .push(instance);
        }
    }
    let known: HashSet<&str> = rows.iter().map(|r| r.group_id.as_str()).collect();
    let mut due_in: Option<i64> = rows
        .iter()
        .filter(|r| r.next_due > db_now)
        .map(|r| r.next_due - db_now)
        .min();
    let mut new_groups = Vec::new();
    for (id, group) in &computed {
        if known.contains(id.as_str()) || !group.alerts.iter().any(|a| a.state.is_firing()) {
            continue;
        }
        new_groups.push(NewGroup {
            group_id: id.clone(),
            org_id: group.org_id,
            receiver: group.receiver.clone(),
            group_key: group.group_key.clone(),
            group_wait_ms: group.route.group_wait_ms,
        });
        let wait = group.route.group_wait_ms.max(0);
        due_in = Some(due_in.map_or(wait, |d| d.min(wait)));
    }
    new_groups.sort_by(|a, b| a.group_id.cmp(&b.group_id));
    shared.store.create_groups(&new_groups).await?;
    let ttl = ms(shared.settings.claim_timeout);
    let mut due: Vec<Due<'_>> = Vec::new();
    for row in &rows {
        if row.next_due > db_now {
            continue;
        }
        let group = computed.get(&row.group_id);
        // A muted route sends nothing and records nothing: the group stays due, and its
        // flush is planned at the first pass after the timing ends (the database's clock
        // decides, so every instance agrees).
        if let (Some(g), Some(config)) = (group, orgs.get(&row.org_id))
            && route_muted(&g.route, &config.timings, db_now)
        {
            continue;
        }
        let sent: HashSet<&str> = row.sent_firing.iter().map(String::as_str).collect();
        let mut firing_all: Vec<&AlertInstance> = group
            .map(|g| {
                g.alerts
                    .iter()
                    .copied()
                    .filter(|a| a.state.is_firing())
                    .collect()
            })
            .unwrap_or_default();
        firing_all.sort_by(|a, b| a.fingerprint.cmp(&b.fingerprint));
        firing_all.dedup_by(|a, b| a.fingerprint == b.fingerprint);
        // Silenced alerts are left out of the notification (Alertmanager's mute stage), but
        // a silenced alert that was already notified still counts as notified, so the end of
        // its silence alone sends nothing before `repeat_interval`, as in Alertmanager.
        let silenced = |a: &AlertInstance| silencer.mutes(a.org_id, &a.labels);
        let firing: Vec<&AlertInstance> = firing_all
            .iter()
            .copied()
            .filter(|a| !silenced(a))
            .collect();
        let resolved: Vec<&AlertInstance> = group
            .map(|g| {
                g.alerts
                    .iter()
                    .copied()
                    .filter(|a| {
                        is_resolved(a) && sent.contains(a.fingerprint.as_str()) && !silenced(a)
                    })
                    .collect()
            })
            .unwrap_or_default();
        let firing_now: HashSet<&str> = firing_all.iter().map(|a| a.fingerprint.as_str()).collect();
        let changed = firing
            .iter()
            .any(|a| !sent.contains(a.fingerprint.as_str()))
            || row
                .sent_firing
                .iter()
                .any(|fp| !firing_now.contains(fp.as_str()));
        let firing_fps: Vec<String> = firing_all
            .iter()
            .filter(|a| !silenced(a) || sent.contains(a.fingerprint.as_str()))
            .map(|a| a.fingerprint.clone())
            .collect();
        let repeat_ms = group.map_or(crate::notify::policy::DEFAULT_REPEAT_INTERVAL_MS, |g| {
            g.route.repeat_interval_ms
        });
        let repeat = !firing.is_empty() && db_now >= row.last_sent_at.saturating_add(repeat_ms);
        if !changed && !repeat {
            continue;
        }
        let ends = firing_all.is_empty();
        // Everything left to say is silenced: nothing is sent and nothing recorded, so the
        // group stays due and is flushed at the first pass after its silences end.
        if !ends && firing.is_empty() && resolved.is_empty() {
            continue;
        }
        due.push(Due {
            row,
            group,
            firing,
            resolved,
            firing_fps,
            ends,
        });
    }
    // Beyond the budget, each instance plans a window starting at a random due group, so
    // that instances sharing a backlog mostly plan different groups rather than race for
    // the same ones; payloads are rendered for the window only.
    let backlog = due.len() > budget;
    if backlog {
        due.sort_by(|a, b| a.row.group_id.cmp(&b.row.group_id));
        let start = rand::random_range(0..due.len());
        due.rotate_left(start);
        due.truncate(budget);
    }
    let mut plans: Vec<FlushPlan> = due
        .into_iter()
        .map(|d| flush_plan(shared, &orgs, d, ttl))
        .collect();
    // One transaction per batch of flushes, every instance locking the groups' rows in the
    // same order, so that planners racing for the same groups wait rather than deadlock.
    plans.sort_by(|a, b| a.group_id.cmp(&b.group_id));
    let claims = shared.store.plan_flushes(&plans).await?;
    if !claims.is_empty() {
        tracing::debug!(
            planned = plans.len(),
            won = claims.len(),
            backlog,
            "planned notification flushes"
        );
    }
    let due_in = due_in.map(|ms| Duration::from_millis(u64::try_from(ms).unwrap_or(0)));
    Ok(Pass {
        claims,
        due_in,
        backlog,
    })
}

/// A group whose flush is due, with what it has to say.
struct Due<'a> {
    row: &'a crate::notify::store::GroupState,
    group: Option<&'a Computed<'a>>,
    firing: Vec<&'a AlertInstance>,
    resolved: Vec<&'a AlertInstance>,
    firing_fps: Vec<String>,
    ends: bool,
}

/// The flush of `due`, its payloads rendered for each integration of its receiver.
fn flush_plan(
    shared: &Shared,
    orgs: &BTreeMap<OrgId, OrgConfig>,
    due: Due<'_>,
    ttl: i64,
) -> FlushPlan {
    let Due {
        row,
        group,
        firing,
        resolved,
        firing_fps,
        ends,
    } = due;
    let mut notifications = Vec::new();
    if let (Some(group), Some(config)) = (group, orgs.get(&row.org_id)) {
        let mut notified: Vec<NotifiedAlert<'_>> = firing
            .iter()
            .map(|a| NotifiedAlert {
                instance: a,
                firing: true,
            })
            .collect();
        notified.extend(resolved.iter().map(|a| NotifiedAlert {
            instance: a,
            firing: false,
        }));
        if !notified.is_empty() {
            let notification = Notification {
                receiver: &row.receiver,
                org_id: row.org_id,
                group_key: &row.group_key,
                group_labels: &group.group_labels,
                alerts: notified,
                external_url: &shared.settings.external_url,
            };
            for point in config.points.iter().filter(|p| p.name == row.receiver) {
                if ends && point.disable_resolve_message {
                    continue;
                }
                notifications.push(PlannedNotification {
                    integration_uid: point.uid.clone(),
                    payload: if point.kind == "email" {
                        email_body(&notification, point, &config.templates)
                    } else {
                        webhook_body(&notification, point, &config.templates)
                    },
                });
            }
        }
    }
    let interval = group.map_or(crate::notify::policy::DEFAULT_GROUP_INTERVAL_MS, |g| {
        g.route.group_interval_ms
    });
    FlushPlan {
        group_id: row.group_id.clone(),
        org_id: row.org_id,
        receiver: row.receiver.clone(),
        epoch: row.epoch,
        seq: row.seq,
        group_interval_ms: interval,
        firing: firing_fps,
        ends,
        notifications,
        holder: shared.holder.clone(),
        ttl_ms: ttl,
    }
}

/// Why an attempt failed.
pub(crate) enum Failure {
    /// Worth another attempt (5xx, timeout, connection).
    Retry(String),
    /// Not worth one (4xx, bad configuration).
    Permanent(String),
}

/// Renews every claim this instance holds, in one write per 500 every third of a lease,
/// until the dispatcher stopped and its last send ended; a claim the database no longer
/// answers as held is marked lost, and its send is dropped.
async fn renew_held(shared: Arc<Shared>) {
    let ttl = shared.settings.claim_timeout;
    let mut tick = tokio::time::interval((ttl / 3).max(Duration::from_millis(20)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        // After a stop, sends in flight keep their claims until they end.
        if shared.cancel.is_cancelled() && shared.held().is_empty() {
            return;
        }
        let keys: Vec<(i64, i64)> = shared.held().keys().copied().collect();
        for chunk in keys.chunks(500) {
            let started = tokio::time::Instant::now();
            let ids: Vec<i64> = chunk.iter().map(|(id, _)| *id).collect();
            match shared
                .store
                .renew_claims(&shared.holder, &ids, ms(ttl))
                .await
            {
                Ok(still) => {
                    let still: HashSet<(i64, i64)> = still.into_iter().collect();
                    let mut held = shared.held();
                    for key in chunk {
                        if let Some(until) = held.get_mut(key) {
                            *until = if still.contains(key) {
                                started + ttl
                            } else {
                                started
                            };
                        }
                    }
                }
                // The leases run out by themselves unless a later renewal lands.
                Err(err) => tracing::warn!(error = %err, "renewing notification claims failed"),
            }
        }
    }
}

/// Runs `fut` while this instance holds `claim`; `None` when the lease ran out first (the
/// future is dropped: nothing more is sent). Leases are renewed for all claims at once
/// by [`renew_held`], so a busy database delays one write per instance, not one per send.
async fn hold<T>(shared: &Shared, claim: &Claim, fut: impl Future<Output = T>) -> Option<T> {
    let lost = async {
        while let Some(until) = shared.lease_until(claim) {
            if tokio::time::Instant::now() >= until {
                return;
            }
            tokio::time::sleep_until(until).await;
        }
    };
    tokio::select! {
        biased;
        out = fut => Some(out),
        () = lost => None,
    }
}

async fn deliver(shared: &Shared, claim: Claim) {
    let _release = Release(shared, (claim.id, claim.token));
    let point = match shared
        .store
        .contact_point(claim.org_id, &claim.integration_uid)
        .await
    {
        Ok(Some(point)) => point,
        Ok(None) => {
            finish(
                shared,
                &claim,
                ClaimStatus::Failed,
                claim.attempts,
                "the contact point no longer exists",
            )
            .await;
            return;
        }
        Err(err) => {
            tracing::warn!(error = %err, "reading a contact point failed; the claim will be taken over");
            return;
        }
    };
    let mut attempts = claim.attempts;
    let max = i64::from(shared.settings.max_attempts.max(1));
    let mut backoff = Duration::from_millis(250);
    loop {
        if shared.cancel.is_cancelled() {
            return;
        }
        // The fence: only the current holder sends, and only with time left on its lease
        // for the request to go out (an instance that stalled past its lease finds it gone).
        let margin = shared.settings.claim_timeout / 4;
        if shared
            .lease_until(&claim)
            .is_none_or(|until| tokio::time::Instant::now() + margin >= until)
        {
            tracing::info!(flush_key = %claim.flush_key, "lost a notification claim; not sending");
            return;
        }
        attempts += 1;
        let Some(outcome) = hold(shared, &claim, send(shared, &point, &claim)).await else {
            tracing::info!(flush_key = %claim.flush_key, "lost a notification claim while sending");
            return;
        };
        match outcome {
            Ok(()) => {
                tracing::info!(flush_key = %claim.flush_key, receiver = %claim.receiver, attempts, "sent a notification");
                finish(shared, &claim, ClaimStatus::Sent, attempts, "").await;
                return;
            }
            Err(Failure::Permanent(error)) => {
                tracing::warn!(flush_key = %claim.flush_key, %error, "a notification failed");
                finish(shared, &claim, ClaimStatus::Failed, attempts, &error).await;
                return;
            }
            Err(Failure::Retry(error)) => {
                if attempts >= max {
                    tracing::warn!(flush_key = %claim.flush_key, %error, attempts, "a notification failed; giving up");
                    finish(shared, &claim, ClaimStatus::Failed, attempts, &error).await;
                    return;
                }
                tracing::debug!(flush_key = %claim.flush_key, %error, attempts, "a notification failed; retrying");
                let _ = shared
                    .store
                    .record_attempt(claim.id, claim.token, attempts, &error)
                    .await;
                if hold(shared, &claim, tokio::time::sleep(backoff))
                    .await
                    .is_none()
                {
                    return;
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

async fn finish(shared: &Shared, claim: &Claim, status: ClaimStatus, attempts: i64, error: &str) {
    match shared
        .store
        .finish_claim(claim.id, claim.token, status, attempts, error)
        .await
    {
        Ok(true) => {}
        Ok(false) => {
            tracing::info!(flush_key = %claim.flush_key, "a notification's claim was lost before its outcome was recorded")
        }
        Err(err) => tracing::warn!(error = %err, "recording a notification's outcome failed"),
    }
}

async fn send(shared: &Shared, point: &ContactPoint, claim: &Claim) -> Result<(), Failure> {
    match point.kind.as_str() {
        "webhook" => send_webhook(&shared.client, point, &claim.flush_key, &claim.payload).await,
        "email" => {
            send_email(
                &shared.settings.smtp,
                point,
                &claim.flush_key,
                &claim.payload,
                shared.settings.send_timeout,
            )
            .await
        }
        other => Err(Failure::Permanent(format!(
            "integration type {other} cannot send"
        ))),
    }
}

/// Sends a webhook as Grafana does, with the `Idempotency-Key` of the flush.
async fn send_webhook(
    client: &reqwest::Client,
    point: &ContactPoint,
    key: &str,
    payload: &serde_json::Value,
) -> Result<(), Failure> {
    let url = point.text("url").unwrap_or("");
    let method = match point.text("httpMethod") {
        Some("PUT") => reqwest::Method::PUT,
        _ => reqwest::Method::POST,
    };
    let body = serde_json::to_vec(payload).map_err(|err| Failure::Permanent(err.to_string()))?;
    let mut request = client
        .request(method, url)
        .header("content-type", "application/json")
        .header("idempotency-key", format!("\"{key}\""))
        .body(body);
    if let Some(user) = point.text("username").filter(|u| !u.is_empty()) {
        request = request.basic_auth(user, point.secure.get("password"));
    } else if let Some(credentials) = point.secure.get("authorization_credentials") {
        let scheme = point
            .text("authorization_scheme")
            .filter(|s| !s.is_empty())
            .unwrap_or("Bearer");
        request = request.header("authorization", format!("{scheme} {credentials}"));
    }
    match request.send().await {
        Ok(response) if response.status().is_success() => Ok(()),
        Ok(response)
            if response.status().is_server_error() || response.status().as_u16() == 429 =>
        {
            Err(Failure::Retry(format!(
                "the receiver answered {}",
                response.status()
            )))
        }
        Ok(response) => Err(Failure::Permanent(format!(
            "the receiver answered {}",
            response.status()
        ))),
        Err(err) => Err(Failure::Retry(format!(
            "sending failed: {}",
            without_url(&err)
        ))),
    }
}

fn without_url(err: &reqwest::Error) -> String {
    // The URL may carry credentials; the error's text without it is enough.
    let mut text = err.to_string();
    if let Some(url) = err.url() {
        text = text.replace(url.as_str(), "<url>");
    }
    text
}

/// Sends one test notification to `point` right away, outside the claims (Grafana's
/// "test contact point"); the error text when it failed.
pub async fn send_test(
    point: &ContactPoint,
    payload: &serde_json::Value,
    smtp: &SmtpSettings,
    timeout: Duration,
) -> Result<(), String> {
    let client = reqwest::Client::builder()
        .timeout(timeout)
        .user_agent("Grafana")
        .build()
        .map_err(|err| err.to_string())?;
    let key = format!("test-{:016x}", rand::random::<u64>());
    let outcome = match point.kind.as_str() {
        "webhook" => send_webhook(&client, point, &key, payload).await,
        "email" => send_email(smtp, point, &key, payload, timeout).await,
        other => Err(Failure::Permanent(format!(
            "integration type {other} cannot send"
        ))),
    };
    outcome.map_err(|f| match f {
        Failure::Retry(e) | Failure::Permanent(e) => e,
    })
}
