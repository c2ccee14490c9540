//! The conformance suite of the silences of a [`NotificationStore`].
//!
//! Each function takes two or more handles on one shared store, standing for instances of a
//! cluster, writes through one and reads through another, and panics when the
//! implementation breaks one of Alertmanager's rules that the trait promises.

use std::sync::Arc;

use crate::notify::silence::{PostableSilence, SilenceMatcher, SilenceState};
use crate::notify::store::NotificationStore;
use crate::{Error, OrgId};

/// Runs every case in org `org` (and `org + 1`, which must see none of it).
pub async fn all(stores: Vec<Arc<dyn NotificationStore>>, org: OrgId) {
    assert!(
        stores.len() >= 2,
        "the suite needs two handles on one store"
    );
    silences_are_shared_and_stateful(&stores, org).await;
    updates_follow_alertmanager(&stores, org).await;
    bad_silences_write_nothing(&stores, org).await;
    expired_silences_are_purged_after_the_retention(&stores, org).await;
}

/// A matcher `name="value"`.
pub fn equal(name: &str, value: &str) -> SilenceMatcher {
    SilenceMatcher {
        name: name.to_owned(),
        value: value.to_owned(),
        is_regex: false,
        is_equal: true,
    }
}

/// A silence of `matchers` from `starts_at` to `ends_at`.
pub fn silence(matchers: Vec<SilenceMatcher>, starts_at: i64, ends_at: i64) -> PostableSilence {
    PostableSilence {
        id: None,
        matchers,
        starts_at,
        ends_at,
        created_by: "tester".to_owned(),
        comment: "maintenance".to_owned(),
    }
}

const HOUR: i64 = 3_600_000;

async fn silences_are_shared_and_stateful(stores: &[Arc<dyn NotificationStore>], org: OrgId) {
    let (a, b) = (&stores[0], &stores[1]);
    let now = tandem_storage::now_ms();
    let active = a
        .set_silence(
            org,
            &silence(vec![equal("team", "db")], now - HOUR, now + HOUR),
        )
        .await
        .unwrap();
    let pending = a
        .set_silence(
            org,
            &silence(vec![equal("team", "web")], now + HOUR, now + 2 * HOUR),
        )
        .await
        .unwrap();
    assert_ne!(active, pending);
    let got = b
        .silence(org, &active)
        .await
        .unwrap()
        .expect("read through B");
    assert_eq!(got.state, SilenceState::Active);
    assert_eq!(got.matchers, vec![equal("team", "db")]);
    assert_eq!(
        (got.created_by.as_str(), got.comment.as_str()),
        ("tester", "maintenance")
    );
    assert!(
        got.starts_at >= now - 1_000,
        "a silence that starts in the past starts now"
    );
    assert_eq!(got.ends_at, now + HOUR);
    assert_eq!(
        b.silence(org, &pending).await.unwrap().unwrap().state,
        SilenceState::Pending
    );
    let listed = b.silences(org).await.unwrap();
    assert_eq!(listed.len(), 2);
    let other = OrgId(org.0 + 1);
    assert!(b.silences(other).await.unwrap().is_empty(), "per org");
    assert!(b.silence(other, &active).await.unwrap().is_none());
    assert!(matches!(
        b.expire_silence(other, &active).await,
        Err(Error::SilenceNotFound)
    ));
    let in_force: Vec<String> = b
        .active_silences()
        .await
        .unwrap()
        .into_iter()
        .filter(|s| s.org_id == org)
        .map(|s| s.id)
        .collect();
    assert_eq!(in_force, vec![active.clone()], "only the active one mutes");

    // Expiring through B ends it now, for A too; a second expiry is an error.
    b.expire_silence(org, &active).await.unwrap();
    let expired = a.silence(org, &active).await.unwrap().unwrap();
    assert_eq!(expired.state, SilenceState::Expired);
    assert!(expired.ends_at <= tandem_storage::now_ms() + 1_000);
    assert!(
        !a.active_silences()
            .await
            .unwrap()
            .iter()
            .any(|s| s.id == active)
    );
    assert!(matches!(
        a.expire_silence(org, &active).await,
        Err(Error::BadRequest(message)) if message.contains("already expired")
    ));
    // An expired pending silence starts when it ends.
    a.expire_silence(org, &pending).await.unwrap();
    let expired = b.silence(org, &pending).await.unwrap().unwrap();
    assert_eq!(expired.state, SilenceState::Expired);
    assert_eq!(expired.starts_at, expired.ends_at);
    assert!(matches!(
        a.expire_silence(org, "00000000-0000-4000-8000-000000000000")
            .await,
        Err(Error::SilenceNotFound)
    ));
    assert_eq!(
        a.silences(org).await.unwrap().len(),
        2,
        "expired ones stay listed"
    );
}

async fn updates_follow_alertmanager(stores: &[Arc<dyn NotificationStore>], org: OrgId) {
    let org = OrgId(org.0 + 10);
    let (a, b) = (&stores[0], &stores[1]);
    let now = tandem_storage::now_ms();
    let id = a
        .set_silence(
            org,
            &silence(vec![equal("team", "db")], now - HOUR, now + HOUR),
        )
        .await
        .unwrap();
    let first = b.silence(org, &id).await.unwrap().unwrap();

    // Same matchers and start, a later end: updated in place, under the same id.
    let mut longer = silence(vec![equal("team", "db")], first.starts_at, now + 2 * HOUR);
    longer.id = Some(id.clone());
    longer.comment = "longer".to_owned();
    assert_eq!(b.set_silence(org, &longer).await.unwrap(), id);
    let updated = a.silence(org, &id).await.unwrap().unwrap();
    assert_eq!(updated.ends_at, now + 2 * HOUR);
    assert_eq!(updated.comment, "longer");
    assert_eq!(updated.state, SilenceState::Active);
    assert_eq!(a.silences(org).await.unwrap().len(), 1);

    // Other matchers on an active silence: the old one expires and a new id is made.
    let mut changed = silence(vec![equal("team", "web")], first.starts_at, now + HOUR);
    changed.id = Some(id.clone());
    let new_id = b.set_silence(org, &changed).await.unwrap();
    assert_ne!(new_id, id);
    assert_eq!(
        a.silence(org, &id).await.unwrap().unwrap().state,
        SilenceState::Expired
    );
    let replacement = a.silence(org, &new_id).await.unwrap().unwrap();
    assert_eq!(replacement.state, SilenceState::Active);
    assert_eq!(replacement.matchers, vec![equal("team", "web")]);

    // An expired silence is never changed: writing it makes a new one.
    let mut revived = silence(vec![equal("team", "db")], now, now + HOUR);
    revived.id = Some(id.clone());
    let revived_id = a.set_silence(org, &revived).await.unwrap();
    assert_ne!(revived_id, id);
    assert_eq!(
        b.silence(org, &id).await.unwrap().unwrap().state,
        SilenceState::Expired
    );

    // A pending silence may move in the future, in place.
    let pending = a
        .set_silence(
            org,
            &silence(vec![equal("a", "b")], now + HOUR, now + 2 * HOUR),
        )
        .await
        .unwrap();
    let mut moved = silence(vec![equal("a", "b")], now + 2 * HOUR, now + 3 * HOUR);
    moved.id = Some(pending.clone());
    assert_eq!(b.set_silence(org, &moved).await.unwrap(), pending);
    assert_eq!(
        a.silence(org, &pending).await.unwrap().unwrap().starts_at,
        now + 2 * HOUR
    );

    // An id of another org, or of nothing, is not found and writes nothing.
    let before = a.silences(org).await.unwrap().len();
    let mut foreign = silence(vec![equal("a", "b")], now, now + HOUR);
    foreign.id = Some(pending.clone());
    assert!(matches!(
        a.set_silence(OrgId(org.0 + 1), &foreign).await,
        Err(Error::SilenceNotFound)
    ));
    foreign.id = Some("00000000-0000-4000-8000-000000000000".to_owned());
    assert!(matches!(
        a.set_silence(org, &foreign).await,
        Err(Error::SilenceNotFound)
    ));
    assert_eq!(a.silences(org).await.unwrap().len(), before);
    assert!(a.silences(OrgId(org.0 + 1)).await.unwrap().is_empty());
}

async fn bad_silences_write_nothing(stores: &[Arc<dyn NotificationStore>], org: OrgId) {
    let org = OrgId(org.0 + 20);
    let a = &stores[0];
    let now = tandem_storage::now_ms();
    let bad = [
        silence(vec![equal("team", "db")], now - 2 * HOUR, now - HOUR),
        silence(vec![equal("team", "db")], now + HOUR, now),
        silence(vec![], now, now + HOUR),
        silence(vec![equal("team", "")], now, now + HOUR),
        silence(vec![equal("team", "a\0b")], now, now + HOUR),
        silence(
            vec![SilenceMatcher {
                is_regex: true,
                ..equal("team", "(")
            }],
            now,
            now + HOUR,
        ),
        silence(vec![equal("team", "db"); 101], now, now + HOUR),
    ];
    for s in &bad {
        let err = a.set_silence(org, s).await.unwrap_err();
        assert!(err.is_client_error(), "{err}");
    }
    let mut long = silence(vec![equal("team", "db")], now, now + HOUR);
    long.comment = "x".repeat(10_001);
    assert!(
        a.set_silence(org, &long)
            .await
            .unwrap_err()
            .is_client_error()
    );
    assert!(a.silences(org).await.unwrap().is_empty());
}

async fn expired_silences_are_purged_after_the_retention(
    stores: &[Arc<dyn NotificationStore>],
    org: OrgId,
) {
    let org = OrgId(org.0 + 30);
    let (a, b) = (&stores[0], &stores[1]);
    let now = tandem_storage::now_ms();
    let old = a
        .set_silence(org, &silence(vec![equal("team", "old")], now, now + HOUR))
        .await
        .unwrap();
    let kept = a
        .set_silence(org, &silence(vec![equal("team", "kept")], now, now + HOUR))
        .await
        .unwrap();
    a.expire_silence(org, &old).await.unwrap();
    assert_eq!(
        b.purge_silences(HOUR).await.unwrap(),
        0,
        "too recently expired"
    );
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(b.purge_silences(100).await.unwrap() >= 1);
    let left: Vec<String> = a
        .silences(org)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(left, vec![kept], "an active silence stays");
}
