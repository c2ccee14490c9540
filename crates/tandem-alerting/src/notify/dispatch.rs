//! [`Dispatcher`]: routes firing and resolved alert instances (read from the store) through
//! each org's policy tree into groups, plans each due flush once per cluster, and delivers
//! the claimed notifications.
//!
//! Every instance runs one. A plan pass (every `poll_interval`) reads the instances and
//! the groups' shared rows; a group is due when the database's clock passes its
//! `next_due`, and the flush is planned by whichever instance's compare-and-swap on the
//! group's sequence wins, inserting its notifications claimed by that instance. A
//! take-over pass (every quarter of `claim_timeout`) claims notifications whose lease
//! expired unsent. An instance renews all the claims it holds in one write every third of
//! the lease, and checks the lease the database confirmed (the fence) before every
//! attempt, so an instance that stalled past its lease sends nothing afterwards. The plan
//! pass itself is [`crate::notify::plan`].
//!
//! The alerts are the rule state's instances and the alerts posted to the Alertmanager
//! API by outside generators ([`crate::notify::posted`]), both read from the shared
//! database at every pass.
//!
//! Alerts that an active silence of their org matches are left out of every notification;
//! the silences are read from the shared database at every plan pass, so a silence made
//! through any instance mutes the next flush of all of them.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, Semaphore};
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

use crate::notify::contact::ContactPoint;
use crate::notify::email::{SmtpSettings, send_email};
use crate::notify::plan::{Pass, plan_pass};
use crate::notify::store::{Claim, ClaimStatus, NotificationStore};
use crate::{AlertStore, OrgId};

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

pub(super) struct Shared {
    pub(super) store: Arc<dyn NotificationStore>,
    pub(super) holder: String,
    pub(super) settings: NotifySettings,
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
    let lease = shared.settings.claim_timeout;
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
        for claim in &claims {
            // The claim's lease was set by the database after `won_at`.
            shared
                .held()
                .insert((claim.id, claim.token), won_at + lease);
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

pub(super) fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
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
