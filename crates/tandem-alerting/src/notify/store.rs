//! [`NotificationStore`]: the persistence of contact points, the policy tree, mute timings
//! and templates, and the dispatcher's shared state (alert groups and the notification log
//! with its claims), one trait with a sea-orm implementation
//! ([`crate::SqlNotificationStore`]).

use serde_json::Value;

use crate::notify::contact::ContactPoint;
use crate::notify::policy::Route;
use crate::notify::posted::{ExternalAlert, PostableAlert};
use crate::notify::silence::{PostableSilence, Silence};
use crate::{OrgId, Provenance, Result};

/// Which named documents a call is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DocumentKind {
    /// Mute timings (`alert_mute_timing`).
    MuteTiming,
    /// Notification templates (`alert_notification_template`).
    Template,
}

/// A mute timing or a template: a name and its JSON body.
#[derive(Clone, Debug, PartialEq)]
pub struct NamedDocument {
    /// The name, unique per org.
    pub name: String,
    /// The body (`time_intervals` of a timing, `template` of a template).
    pub body: Value,
    /// Who manages it.
    pub provenance: Provenance,
    /// Bumped by every change.
    pub version: i64,
}

/// The shared state of one alert group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupState {
    /// A hash of (org, route, receiver, group labels).
    pub group_id: String,
    /// The org.
    pub org_id: OrgId,
    /// The receiver.
    pub receiver: String,
    /// Alertmanager's group key.
    pub group_key: String,
    /// Random at creation: a group that ends and starts again gets new flush keys.
    pub epoch: i64,
    /// How many flushes were planned.
    pub seq: i64,
    /// When the next flush may happen (database clock, epoch ms).
    pub next_due: i64,
    /// When the last flush was planned (0: never).
    pub last_sent_at: i64,
    /// The fingerprints the last flush said were firing.
    pub sent_firing: Vec<String>,
}

/// A group seen for the first time.
#[derive(Clone, Debug)]
pub struct NewGroup {
    /// See [`GroupState::group_id`].
    pub group_id: String,
    /// The org.
    pub org_id: OrgId,
    /// The receiver.
    pub receiver: String,
    /// The group key.
    pub group_key: String,
    /// `group_wait`: the first flush is due this long after the insert (database clock).
    pub group_wait_ms: i64,
}

/// One integration's notification of a planned flush.
#[derive(Clone, Debug)]
pub struct PlannedNotification {
    /// The contact point.
    pub integration_uid: String,
    /// The rendered body.
    pub payload: Value,
}

/// A flush to plan: a compare-and-swap on the group's sequence.
#[derive(Clone, Debug)]
pub struct FlushPlan {
    /// The group.
    pub group_id: String,
    /// The org.
    pub org_id: OrgId,
    /// The receiver.
    pub receiver: String,
    /// The epoch read.
    pub epoch: i64,
    /// The sequence read: the plan wins only if it is still the stored one and the group
    /// is due by the database's clock.
    pub seq: i64,
    /// The next flush is due this long after this one.
    pub group_interval_ms: i64,
    /// The fingerprints this flush says are firing.
    pub firing: Vec<String>,
    /// Nothing fires any more: the group ends with this flush (its row is deleted).
    pub ends: bool,
    /// The notifications, one per integration; inserted claimed by `holder`.
    pub notifications: Vec<PlannedNotification>,
    /// Who plans (and sends).
    pub holder: String,
    /// The claim's lease, ms.
    pub ttl_ms: i64,
}

/// A notification claimed by this instance: it may send it while its lease holds.
#[derive(Clone, Debug, PartialEq)]
pub struct Claim {
    /// The log row.
    pub id: i64,
    /// The deterministic key of (group, epoch, flush, integration): the `Idempotency-Key`.
    pub flush_key: String,
    /// The org.
    pub org_id: OrgId,
    /// The contact point.
    pub integration_uid: String,
    /// The receiver.
    pub receiver: String,
    /// The body to send.
    pub payload: Value,
    /// The fencing token of this claim.
    pub token: i64,
    /// Attempts made so far, by any holder.
    pub attempts: i64,
}

/// How a claimed notification ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClaimStatus {
    /// Delivered (the receiver answered 2xx).
    Sent,
    /// Given up (a 4xx, or every attempt failed).
    Failed,
}

/// A row of the notification log, for tests and diagnostics.
#[derive(Clone, Debug, PartialEq)]
pub struct LogEntry {
    /// The flush key.
    pub flush_key: String,
    /// The group.
    pub group_id: String,
    /// The flush number within the group's epoch.
    pub seq: i64,
    /// The contact point.
    pub integration_uid: String,
    /// `pending`, `sent` or `failed`.
    pub status: String,
    /// The last holder.
    pub holder: String,
    /// Its token.
    pub token: i64,
    /// Attempts.
    pub attempts: i64,
    /// The last error.
    pub last_error: String,
}

/// Persistence of notification settings and dispatch state, shared by every instance.
///
/// Every write is one transaction. Claims compare times from the database's clock, so a
/// skewed instance clock can neither steal nor keep a claim.
#[async_trait::async_trait]
pub trait NotificationStore: Send + Sync {
    /// Creates the org's default tree and contact point unless the org has its config row.
    async fn ensure_defaults(&self, org: OrgId) -> Result<()>;
    /// The org's contact points, by name and uid.
    async fn contact_points(&self, org: OrgId) -> Result<Vec<ContactPoint>>;
    /// One contact point.
    async fn contact_point(&self, org: OrgId, uid: &str) -> Result<Option<ContactPoint>>;
    /// Inserts a contact point; `NotificationConflict` when the uid is taken.
    async fn create_contact_point(&self, org: OrgId, point: &ContactPoint) -> Result<()>;
    /// Replaces a contact point whose stored version is `point.version - 1`; renames the
    /// receiver in the tree when `rename_from` is given. `VersionMismatch` when it changed.
    async fn update_contact_point(
        &self,
        org: OrgId,
        point: &ContactPoint,
        rename_from: Option<&str>,
    ) -> Result<()>;
    /// Deletes a contact point; `false` when there was none.
    async fn delete_contact_point(&self, org: OrgId, uid: &str) -> Result<bool>;
    /// The org's tree and its provenance (the default tree when none is stored).
    async fn policy(&self, org: OrgId) -> Result<(Route, Provenance)>;
    /// Replaces the org's tree.
    async fn set_policy(&self, org: OrgId, tree: &Route, provenance: Provenance) -> Result<()>;
    /// Every mute timing or template of the org, by name.
    async fn documents(&self, org: OrgId, kind: DocumentKind) -> Result<Vec<NamedDocument>>;
    /// One of them.
    async fn document(
        &self,
        org: OrgId,
        kind: DocumentKind,
        name: &str,
    ) -> Result<Option<NamedDocument>>;
    /// Writes one: inserted when `create` (`NotificationConflict` if the name is taken),
    /// else inserted or replaced. Returns the stored document.
    async fn put_document(
        &self,
        org: OrgId,
        kind: DocumentKind,
        document: &NamedDocument,
        create: bool,
    ) -> Result<NamedDocument>;
    /// Deletes one; `false` when there was none.
    async fn delete_document(&self, org: OrgId, kind: DocumentKind, name: &str) -> Result<bool>;

    /// The database's clock and every group's state.
    async fn groups(&self) -> Result<(i64, Vec<GroupState>)>;
    /// Inserts a group unless it exists; `false` when another instance inserted it.
    async fn create_group(&self, group: &NewGroup) -> Result<bool>;
    /// Inserts the groups that do not exist (one transaction per batch where the store
    /// can).
    async fn create_groups(&self, groups: &[NewGroup]) -> Result<()> {
        for group in groups {
            self.create_group(group).await?;
        }
        Ok(())
    }
    /// Plans a flush (see [`FlushPlan`]); the claims of its notifications, or `None` when
    /// another instance planned it first or it is not due yet.
    async fn plan_flush(&self, plan: &FlushPlan) -> Result<Option<Vec<Claim>>>;
    /// Plans several flushes at once (one transaction per batch where the store can), in
    /// the order given; the claims of those this instance won.
    async fn plan_flushes(&self, plans: &[FlushPlan]) -> Result<Vec<Claim>> {
        let mut claims = Vec::new();
        for plan in plans {
            if let Some(won) = self.plan_flush(plan).await? {
                claims.extend(won);
            }
        }
        Ok(claims)
    }
    /// Claims up to `limit` pending notifications whose lease expired a quarter of `ttl_ms`
    /// ago or more. The grace is time for a holder that sent just before its lease ran out
    /// (it sends only with a quarter of the lease left) to record the outcome while its
    /// write waits for the database (SQLite serialises every writer), so that it is not
    /// sent again; a holder records with its fencing token, which a take-over bumps.
    async fn take_over(&self, holder: &str, ttl_ms: i64, limit: u64) -> Result<Vec<Claim>>;
    /// Extends a claim's lease if it is still held by this token and unexpired: the fence
    /// checked before every send.
    async fn renew_claim(&self, id: i64, token: i64, ttl_ms: i64) -> Result<bool>;
    /// Extends the leases of the claims `ids` that `holder` still holds unexpired, in one
    /// write, and answers those as (id, token): what the dispatcher renews every third of
    /// a lease for every claim it holds.
    async fn renew_claims(&self, holder: &str, ids: &[i64], ttl_ms: i64)
    -> Result<Vec<(i64, i64)>>;
    /// Records an attempt that failed and will be retried.
    async fn record_attempt(&self, id: i64, token: i64, attempts: i64, error: &str)
    -> Result<bool>;
    /// Records the outcome; `false` when the claim was lost meanwhile.
    async fn finish_claim(
        &self,
        id: i64,
        token: i64,
        status: ClaimStatus,
        attempts: i64,
        error: &str,
    ) -> Result<bool>;
    /// The notification log of the org, oldest first.
    async fn notification_log(&self, org: OrgId) -> Result<Vec<LogEntry>>;
    /// Deletes finished log rows older than `age_ms`.
    async fn purge_log(&self, age_ms: i64) -> Result<u64>;

    /// Creates a silence, or updates the one `silence.id` names, as Alertmanager does (see
    /// [`crate::notify::silence`]): an update that may not be made in place expires the old
    /// silence and creates a new one. Returns the id written. `SilenceNotFound` when the id
    /// names no silence of the org; `BadRequest` when the silence would end in the past.
    async fn set_silence(&self, org: OrgId, silence: &PostableSilence) -> Result<String>;
    /// One silence of the org, its state by the database's clock.
    async fn silence(&self, org: OrgId, id: &str) -> Result<Option<Silence>>;
    /// Every silence of the org (expired ones included), most recently updated first.
    async fn silences(&self, org: OrgId) -> Result<Vec<Silence>>;
    /// Expires a silence now (a pending one also starts now). `SilenceNotFound` when there
    /// is none; `BadRequest` when it already expired.
    async fn expire_silence(&self, org: OrgId, id: &str) -> Result<()>;
    /// The silences of every org that are active by the database's clock: what the
    /// dispatcher reads at every pass.
    async fn active_silences(&self) -> Result<Vec<Silence>>;
    /// Deletes the silences that expired more than `age_ms` ago (database clock), as
    /// Alertmanager drops them after its retention.
    async fn purge_silences(&self, age_ms: i64) -> Result<u64>;

    /// Stores alerts posted to the Alertmanager API by an outside generator, in one
    /// transaction at the database's time: each is merged into the stored alert of the
    /// same labels (see [`crate::notify::posted`]), or inserted.
    async fn post_alerts(&self, org: OrgId, alerts: &[PostableAlert]) -> Result<()>;
    /// The posted alerts of `org` (of every org when `None`), firing and resolved, with
    /// the database's time they were read at.
    async fn external_alerts(&self, org: Option<OrgId>) -> Result<(i64, Vec<ExternalAlert>)>;
    /// Deletes the posted alerts that ended more than `age_ms` ago (database clock).
    async fn purge_external_alerts(&self, age_ms: i64) -> Result<u64>;
}
