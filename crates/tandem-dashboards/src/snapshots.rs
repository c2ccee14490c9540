//! Dashboard snapshots: a frozen copy of a dashboard's JSON (with the data its panels
//! showed), shared by a secret `key` and deleted by a second secret, the `delete_key`.
//!
//! A snapshot is kept in the shared database, so one made through any instance is read
//! through every other. One that expired is not found, whether or not the cleanup (a
//! cluster-singleton job calling [`SnapshotStore::delete_expired`]) has removed it yet.

use rand::RngExt;
use time::OffsetDateTime;

use crate::{Error, OrgId, Result, UserId};

/// The longest snapshot name.
pub const MAX_SNAPSHOT_NAME_LEN: usize = 190;
/// The longest key or delete key a client may choose.
pub const MAX_SNAPSHOT_KEY_LEN: usize = 64;
/// The longest lifetime, in seconds: 100 years, as the input policy bounds durations.
pub const MAX_SNAPSHOT_EXPIRES_SECONDS: i64 = 3_155_760_000;
/// The most snapshots one list answers.
pub const MAX_SNAPSHOT_LIST: u64 = 1000;

/// A snapshot, with its dashboard.
#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot {
    /// Its id.
    pub id: i64,
    /// Its org.
    pub org_id: OrgId,
    /// Its name.
    pub name: String,
    /// The key that reads it.
    pub key: String,
    /// The key that deletes it.
    pub delete_key: String,
    /// Who made it.
    pub user_id: UserId,
    /// Whether it was published to an external snapshot server.
    pub external: bool,
    /// Where, if so.
    pub external_url: String,
    /// The dashboard JSON.
    pub dashboard: serde_json::Value,
    /// When it expires; `None` never.
    pub expires: Option<OffsetDateTime>,
    /// When it was made.
    pub created: OffsetDateTime,
    /// When it was last changed.
    pub updated: OffsetDateTime,
}

/// A snapshot to make (`POST /api/snapshots`).
#[derive(Clone, Debug)]
pub struct NewSnapshot {
    /// Its org.
    pub org_id: OrgId,
    /// Its name; empty takes the dashboard's title.
    pub name: String,
    /// A key chosen by the client; `None` draws a random one.
    pub key: Option<String>,
    /// A delete key chosen by the client; `None` draws a random one.
    pub delete_key: Option<String>,
    /// Who makes it.
    pub user_id: UserId,
    /// Whether it lives on an external snapshot server.
    pub external: bool,
    /// Where, if so.
    pub external_url: String,
    /// The dashboard JSON, an object.
    pub dashboard: serde_json::Value,
    /// Seconds until it expires; 0 is never.
    pub expires_seconds: i64,
}

/// Persistence of snapshots.
#[async_trait::async_trait]
pub trait SnapshotStore: Send + Sync {
    /// Makes a snapshot. A key or delete key already used is
    /// [`Error::SnapshotKeyTaken`]; a bad name, key or lifetime [`Error::InvalidInput`].
    async fn create_snapshot(&self, new: NewSnapshot) -> Result<Snapshot>;
    /// The snapshot with this key, unless it expired.
    async fn snapshot(&self, key: &str) -> Result<Option<Snapshot>>;
    /// The snapshot with this delete key, unless it expired.
    async fn snapshot_by_delete_key(&self, delete_key: &str) -> Result<Option<Snapshot>>;
    /// Deletes the snapshot with this key; `false` when there was none.
    async fn delete_snapshot(&self, key: &str) -> Result<bool>;
    /// The org's snapshots that have not expired, newest first, without their dashboards
    /// (`dashboard` is `null`), whose name contains `query` (any case), at most `limit`
    /// (0 or more than [`MAX_SNAPSHOT_LIST`] is that maximum).
    async fn list_snapshots(&self, org: OrgId, query: &str, limit: u64) -> Result<Vec<Snapshot>>;
    /// Deletes every expired snapshot; how many went.
    async fn delete_expired(&self) -> Result<u64>;
}

/// A fresh random key: 32 letters and digits, as Grafana draws them.
pub fn generate_snapshot_key() -> String {
    const ALPHANUMERIC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..32)
        .map(|_| {
            let n = rng.random_range(0..ALPHANUMERIC.len());
            ALPHANUMERIC.get(n).map_or('0', |c| char::from(*c))
        })
        .collect()
}

/// Checks a key a client chose: 1 to 64 of `[A-Za-z0-9_-]`.
pub(crate) fn check_key(field: &str, key: &str) -> Result<()> {
    if key.is_empty()
        || key.len() > MAX_SNAPSHOT_KEY_LEN
        || !key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(Error::InvalidInput(format!(
            "{field} must be 1 to {MAX_SNAPSHOT_KEY_LEN} letters, digits, '-' or '_'"
        )));
    }
    Ok(())
}

/// Checks what a new snapshot says about itself.
pub(crate) fn check_new(new: &NewSnapshot) -> Result<()> {
    if !new.dashboard.is_object() {
        return Err(Error::InvalidInput(
            "dashboard must be a JSON object".to_owned(),
        ));
    }
    if new.name.chars().count() > MAX_SNAPSHOT_NAME_LEN {
        return Err(Error::InvalidInput(format!(
            "name must be at most {MAX_SNAPSHOT_NAME_LEN} characters long"
        )));
    }
    if !(0..=MAX_SNAPSHOT_EXPIRES_SECONDS).contains(&new.expires_seconds) {
        return Err(Error::InvalidInput(format!(
            "expires must be between 0 (never) and {MAX_SNAPSHOT_EXPIRES_SECONDS} seconds"
        )));
    }
    if new.external_url.len() > 2048 {
        return Err(Error::InvalidInput(
            "externalUrl must be at most 2048 characters long".to_owned(),
        ));
    }
    if let Some(key) = &new.key {
        check_key("key", key)?;
    }
    if let Some(key) = &new.delete_key {
        check_key("deleteKey", key)?;
    }
    Ok(())
}
