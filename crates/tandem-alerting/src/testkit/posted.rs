//! The conformance suite of the posted alerts of a [`NotificationStore`] (alerts posted to
//! the Alertmanager API by an outside generator).
//!
//! Each function takes two or more handles on one shared store, standing for instances of
//! a cluster, posts through one and reads through another, and panics when the
//! implementation breaks a rule that the trait promises.

use std::sync::Arc;

use crate::notify::posted::{PostableAlert, RESOLVE_TIMEOUT_MS};
use crate::notify::store::NotificationStore;
use crate::{Labels, OrgId};

/// Runs every case in org `org` (and `org + 1`, which must see none of it).
pub async fn all(stores: Vec<Arc<dyn NotificationStore>>, org: OrgId) {
    assert!(
        stores.len() >= 2,
        "the suite needs two handles on one store"
    );
    posted_alerts_are_shared_and_merged(&stores, org).await;
    concurrent_posts_of_one_alert_make_one_row(&stores, org).await;
    resolved_alerts_are_purged_after_the_retention(&stores, org).await;
}

/// An alert with labels `alertname=<name>` and `team=<team>`, times as given.
pub fn alert(
    name: &str,
    team: &str,
    starts_at: Option<i64>,
    ends_at: Option<i64>,
) -> PostableAlert {
    let labels: Labels = [
        ("alertname".to_owned(), name.to_owned()),
        ("team".to_owned(), team.to_owned()),
    ]
    .into();
    PostableAlert {
        labels,
        annotations: [("summary".to_owned(), format!("{name} fires"))].into(),
        starts_at,
        ends_at,
        generator_url: format!("http://prometheus.example:9090/graph?g0.expr={name}"),
    }
}

const MINUTE: i64 = 60_000;

async fn posted_alerts_are_shared_and_merged(stores: &[Arc<dyn NotificationStore>], org: OrgId) {
    let (a, b) = (&stores[0], &stores[1]);
    let now = tandem_storage::now_ms();
    a.post_alerts(org, &[alert("Shared", "db", Some(now - MINUTE), None)])
        .await
        .unwrap();
    let (read_at, alerts) = b.external_alerts(Some(org)).await.unwrap();
    let shared: Vec<_> = alerts
        .iter()
        .filter(|x| x.labels["alertname"] == "Shared")
        .collect();
    assert_eq!(shared.len(), 1, "{alerts:?}");
    let first = shared[0].clone();
    assert_eq!(first.starts_at, now - MINUTE);
    assert!(first.timeout, "no endsAt: the resolve timeout's end");
    // The database's clock and this one agree within seconds.
    assert!((first.ends_at - (now + RESOLVE_TIMEOUT_MS)).abs() < 10_000);
    assert!(!first.resolved(read_at));
    assert_eq!(first.annotations["summary"], "Shared fires");
    assert!(
        first
            .generator_url
            .starts_with("http://prometheus.example:9090/")
    );
    let (_, other) = b.external_alerts(Some(OrgId(org.0 + 1))).await.unwrap();
    assert!(other.is_empty(), "another org sees none: {other:?}");

    // Posted again through B, as Prometheus re-sends, with a later start: the first start
    // stays and the generator's end replaces the timeout.
    let mut again = alert("Shared", "db", Some(now), Some(now + 10 * MINUTE));
    again.annotations.insert("summary".into(), "still".into());
    b.post_alerts(org, &[again]).await.unwrap();
    let (_, alerts) = a.external_alerts(Some(org)).await.unwrap();
    let merged = alerts
        .iter()
        .find(|x| x.fingerprint == first.fingerprint)
        .unwrap();
    assert_eq!(merged.starts_at, now - MINUTE);
    assert_eq!(merged.ends_at, now + 10 * MINUTE);
    assert!(!merged.timeout);
    assert_eq!(merged.annotations["summary"], "still");

    // Resolved by a post whose end has passed.
    a.post_alerts(
        org,
        &[alert("Shared", "db", Some(now - MINUTE), Some(now - 1_000))],
    )
    .await
    .unwrap();
    let (read_at, alerts) = b.external_alerts(Some(org)).await.unwrap();
    let resolved = alerts
        .iter()
        .find(|x| x.fingerprint == first.fingerprint)
        .unwrap();
    assert!(resolved.resolved(read_at), "{resolved:?}");
    assert_eq!(resolved.instance(read_at).resolved_at, Some(now - 1_000));
    // Firing again later: a new start.
    b.post_alerts(org, &[alert("Shared", "db", Some(now + 1_000), None)])
        .await
        .unwrap();
    let (read_at, alerts) = a.external_alerts(Some(org)).await.unwrap();
    let anew = alerts
        .iter()
        .find(|x| x.fingerprint == first.fingerprint)
        .unwrap();
    assert_eq!(anew.starts_at, now + 1_000);
    assert!(!anew.resolved(read_at));
}

async fn concurrent_posts_of_one_alert_make_one_row(
    stores: &[Arc<dyn NotificationStore>],
    org: OrgId,
) {
    // A Prometheus server posts every alert to every instance it lists, at once.
    let now = tandem_storage::now_ms();
    let batch: Vec<PostableAlert> = (0..50)
        .map(|i| {
            alert(
                &format!("Concurrent{i}"),
                "web",
                Some(now),
                Some(now + MINUTE),
            )
        })
        .collect();
    let posts = stores.iter().flat_map(|s| {
        let (s1, s2, batch1, batch2) = (s.clone(), s.clone(), batch.clone(), batch.clone());
        [
            tokio::spawn(async move { s1.post_alerts(org, &batch1).await }),
            tokio::spawn(async move { s2.post_alerts(org, &batch2).await }),
        ]
    });
    for post in posts.collect::<Vec<_>>() {
        post.await.unwrap().unwrap();
    }
    let (_, alerts) = stores[1].external_alerts(Some(org)).await.unwrap();
    let concurrent = alerts
        .iter()
        .filter(|x| x.labels["alertname"].starts_with("Concurrent"))
        .count();
    assert_eq!(concurrent, 50);
}

async fn resolved_alerts_are_purged_after_the_retention(
    stores: &[Arc<dyn NotificationStore>],
    org: OrgId,
) {
    let (a, b) = (&stores[0], &stores[1]);
    let now = tandem_storage::now_ms();
    a.post_alerts(
        org,
        &[
            alert(
                "LongGone",
                "db",
                Some(now - 60 * MINUTE),
                Some(now - 30 * MINUTE),
            ),
            alert(
                "StillFiring",
                "db",
                Some(now - 60 * MINUTE),
                Some(now + 30 * MINUTE),
            ),
        ],
    )
    .await
    .unwrap();
    assert!(b.purge_external_alerts(10 * MINUTE).await.unwrap() >= 1);
    let (_, alerts) = a.external_alerts(Some(org)).await.unwrap();
    let names: Vec<&str> = alerts
        .iter()
        .map(|x| x.labels["alertname"].as_str())
        .collect();
    assert!(!names.contains(&"LongGone"), "{names:?}");
    assert!(names.contains(&"StillFiring"), "{names:?}");
}
