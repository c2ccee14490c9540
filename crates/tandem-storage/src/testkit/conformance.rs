//! Conformance suites for the storage traits.
//!
//! Each function takes several handles on one shared store, standing for several instances,
//! and panics when the implementation breaks a promise of its trait. The sea-orm
//! implementations run them on SQLite, PostgreSQL and MySQL; another implementation shows
//! it is a drop-in replacement by passing the same suites.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use time::OffsetDateTime;

use crate::{Cache, Error, Instance, Leases, Membership, ServerLock, ServerLockExt};

/// Polls `check` until it returns `true`, panicking with `what` after `deadline`.
pub async fn eventually<F, Fut>(what: &str, deadline: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !check().await {
        assert!(
            start.elapsed() < deadline,
            "timed out after {deadline:?} waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `contenders` (ten or more handles, typically over five connections) race for one
/// operation at the same moment: exactly one runs it. Within the interval nobody runs it
/// again; once the interval has passed, one contender runs it again.
pub async fn server_lock(contenders: Vec<Arc<dyn ServerLock>>) {
    assert!(
        contenders.len() >= 2,
        "the suite needs at least two contenders"
    );
    // Long enough that a slow machine finishes the first two phases within it.
    let interval = Duration::from_secs(5);
    let runs = Arc::new(AtomicUsize::new(0));
    let barrier = Arc::new(tokio::sync::Barrier::new(contenders.len()));
    let mut tasks = Vec::new();
    for lock in &contenders {
        let (lock, runs, barrier) = (lock.clone(), runs.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            lock.lock_and_execute("conformance.cleanup", interval, async {
                runs.fetch_add(1, Ordering::SeqCst);
            })
            .await
            .expect("lock_and_execute")
        }));
    }
    let mut winners = 0;
    for task in tasks {
        winners += usize::from(task.await.expect("contender task").is_some());
    }
    assert_eq!(runs.load(Ordering::SeqCst), 1, "the job ran more than once");
    assert_eq!(
        winners, 1,
        "exactly one contender reports that it ran the job"
    );

    for lock in &contenders {
        let ran = lock
            .lock_and_execute("conformance.cleanup", interval, async {})
            .await
            .expect("lock_and_execute");
        assert!(ran.is_none(), "the job ran again within its interval");
    }
    let other = contenders[1]
        .lock_and_execute("conformance.other", interval, async {})
        .await
        .expect("lock_and_execute");
    assert!(other.is_some(), "another operation has its own lock");

    let again = Arc::new(AtomicUsize::new(0));
    eventually(
        "the job is due again after its interval",
        Duration::from_secs(10),
        || {
            let (lock, again) = (contenders[0].clone(), again.clone());
            async move {
                let ran = lock
                    .lock_and_execute("conformance.cleanup", interval, async {
                        again.fetch_add(1, Ordering::SeqCst);
                    })
                    .await
                    .expect("lock_and_execute");
                ran.is_some()
            }
        },
    )
    .await;
    assert_eq!(again.load(Ordering::SeqCst), 1);
}

/// Leases are exclusive while held, can be renewed and released, are taken over once
/// expired (with a larger fencing token), and under contention from all `stores` at once
/// there is never more than one holder.
pub async fn leases(stores: Vec<Arc<dyn Leases>>) {
    assert!(stores.len() >= 2, "the suite needs at least two handles");
    let (a, b) = (&stores[0], &stores[1]);
    let long = Duration::from_secs(30);

    let held = a
        .claim("conf.lease", "alpha", long)
        .await
        .expect("claim")
        .expect("free lease");
    assert_eq!(
        (held.holder.as_str(), held.key.as_str()),
        ("alpha", "conf.lease")
    );
    assert!(held.expires_at > OffsetDateTime::now_utc());
    assert!(
        b.claim("conf.lease", "beta", long)
            .await
            .expect("claim")
            .is_none(),
        "held lease"
    );
    let seen = b
        .current("conf.lease")
        .await
        .expect("current")
        .expect("a current lease");
    assert_eq!((seen.holder.as_str(), seen.token), ("alpha", held.token));
    let renewed = a
        .renew(&held, long)
        .await
        .expect("renew")
        .expect("still ours");
    assert_eq!(renewed.token, held.token, "renewal keeps the fencing token");
    a.release(&renewed).await.expect("release");
    assert!(
        b.current("conf.lease").await.expect("current").is_none(),
        "released"
    );
    let taken = b
        .claim("conf.lease", "beta", long)
        .await
        .expect("claim")
        .expect("released lease");
    assert!(
        taken.token > held.token,
        "a new holder gets a larger fencing token"
    );
    assert!(
        a.renew(&held, long).await.expect("renew").is_none(),
        "old holder cannot renew"
    );
    a.release(&held).await.expect("stale release is a no-op");
    let still = a
        .current("conf.lease")
        .await
        .expect("current")
        .expect("beta still holds it");
    assert_eq!(
        still.holder, "beta",
        "a stale release does not free another holder's lease"
    );

    let too_long = "k".repeat(crate::MAX_LEASE_NAME_LEN + 1);
    for (key, holder) in [("", "alpha"), (too_long.as_str(), "alpha"), ("conf.x", "")] {
        let err = a
            .claim(key, holder, long)
            .await
            .expect_err("a bad name is refused");
        assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
    }
    let upper = a
        .claim("conf.Case", "alpha", long)
        .await
        .expect("claim")
        .expect("free");
    let lower = b.claim("conf.case", "beta", long).await.expect("claim");
    assert!(lower.is_some(), "lease keys are case-sensitive");
    a.release(&upper).await.expect("release");

    // Expiry: a short lease is taken over once it lapses, and the old holder is fenced.
    let short = a
        .claim("conf.expiring", "alpha", Duration::from_millis(200))
        .await
        .expect("claim")
        .expect("free lease");
    let mut takeover = None;
    let start = Instant::now();
    while takeover.is_none() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "expired lease never taken over"
        );
        takeover = b.claim("conf.expiring", "beta", long).await.expect("claim");
        if takeover.is_none() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let takeover = takeover.expect("taken over");
    assert!(
        start.elapsed() >= Duration::from_millis(100),
        "taken over before it expired"
    );
    assert!(takeover.token > short.token);
    assert!(a.renew(&short, long).await.expect("renew").is_none());

    // Contention: every handle, several tasks each, claims the same key in a loop.
    let inside = Arc::new(AtomicUsize::new(0));
    let acquisitions = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for (i, store) in stores.iter().cycle().take(8).enumerate() {
        let (store, inside, acquisitions) = (store.clone(), inside.clone(), acquisitions.clone());
        tasks.push(tokio::spawn(async move {
            let holder = format!("worker-{i}");
            for _ in 0..10 {
                if let Some(lease) = store
                    .claim("conf.contended", &holder, long)
                    .await
                    .expect("claim")
                {
                    assert_eq!(
                        inside.fetch_add(1, Ordering::SeqCst),
                        0,
                        "two holders at once"
                    );
                    acquisitions.fetch_add(1, Ordering::SeqCst);
                    for _ in 0..3 {
                        tokio::task::yield_now().await;
                    }
                    inside.fetch_sub(1, Ordering::SeqCst);
                    store.release(&lease).await.expect("release");
                }
                tokio::task::yield_now().await;
            }
        }));
    }
    for task in tasks {
        task.await.expect("contender task");
    }
    assert!(
        acquisitions.load(Ordering::SeqCst) >= 1,
        "nobody ever got the lease"
    );
}

fn instance(id: &str, port: u16) -> Instance {
    Instance {
        id: id.to_owned(),
        address: format!("127.0.0.1:{port}"),
        version: "12.1.0".to_owned(),
        started_at: OffsetDateTime::from_unix_timestamp(1_700_000_000).expect("a valid time"),
    }
}

/// Heartbeats from several handles show up in every handle's live-peer view; a peer that
/// leaves disappears at once; a peer that stops beating disappears after the timeout; long
/// dead rows can be purged.
pub async fn membership(stores: Vec<Arc<dyn Membership>>) {
    assert!(stores.len() >= 2, "the suite needs at least two handles");
    let (a, b) = (&stores[0], &stores[1]);
    let timeout = Duration::from_secs(30);
    a.heartbeat(&instance("alpha", 3001))
        .await
        .expect("heartbeat");
    b.heartbeat(&instance("beta", 3002))
        .await
        .expect("heartbeat");
    b.heartbeat(&instance("beta", 3002))
        .await
        .expect("a second heartbeat updates the row");
    for store in &stores {
        let peers = store.live_peers(timeout).await.expect("live peers");
        let ids: Vec<_> = peers.iter().map(|peer| peer.instance.id.as_str()).collect();
        assert_eq!(
            ids,
            ["alpha", "beta"],
            "every handle sees both instances, ordered by id"
        );
        assert_eq!(
            peers[0].instance,
            instance("alpha", 3001),
            "the row round-trips"
        );
        let age = OffsetDateTime::now_utc() - peers[1].last_heartbeat;
        assert!(
            age < time::Duration::seconds(5),
            "last heartbeat is recent: {age}"
        );
    }
    a.leave("alpha").await.expect("leave");
    let ids: Vec<_> = b
        .live_peers(timeout)
        .await
        .expect("live peers")
        .into_iter()
        .map(|p| p.instance.id)
        .collect();
    assert_eq!(ids, ["beta"], "a peer that left is gone at once");

    let short = Duration::from_millis(300);
    eventually(
        "a silent peer drops out of the live view",
        Duration::from_secs(10),
        || {
            let a = a.clone();
            async move { a.live_peers(short).await.expect("live peers").is_empty() }
        },
    )
    .await;
    assert_eq!(a.live_peers(timeout).await.expect("live peers").len(), 1);
    assert_eq!(a.purge(short).await.expect("purge"), 1);
    assert!(
        a.live_peers(timeout).await.expect("live peers").is_empty(),
        "purged"
    );
}

/// Values set through one handle are read through another; overwrite, delete and TTL
/// expiry behave; expired entries are cleaned up; bad keys are refused.
pub async fn cache(stores: Vec<Arc<dyn Cache>>) {
    assert!(stores.len() >= 2, "the suite needs at least two handles");
    let (a, b) = (&stores[0], &stores[1]);
    let value = [0u8, 159, 146, 150, 255, b'\n'];
    a.set("conf:k", &value, None).await.expect("set");
    assert_eq!(
        b.get("conf:k").await.expect("get").as_deref(),
        Some(&value[..])
    );
    b.set("conf:k", b"second", Some(Duration::from_secs(60)))
        .await
        .expect("overwrite");
    assert_eq!(
        a.get("conf:k").await.expect("get").as_deref(),
        Some(&b"second"[..])
    );
    a.delete("conf:k").await.expect("delete");
    assert_eq!(b.get("conf:k").await.expect("get"), None);
    assert_eq!(b.get("conf:missing").await.expect("get"), None);

    a.set("conf:short", b"x", Some(Duration::from_millis(150)))
        .await
        .expect("set");
    a.set("conf:keep", b"y", None).await.expect("set");
    eventually(
        "an entry expires after its ttl",
        Duration::from_secs(10),
        || {
            let b = b.clone();
            async move { b.get("conf:short").await.expect("get").is_none() }
        },
    )
    .await;
    assert_eq!(
        a.delete_expired().await.expect("cleanup"),
        1,
        "one expired entry removed"
    );
    assert_eq!(
        a.delete_expired().await.expect("cleanup"),
        0,
        "nothing left to remove"
    );
    assert_eq!(
        b.get("conf:keep").await.expect("get").as_deref(),
        Some(&b"y"[..])
    );

    let too_long = "k".repeat(crate::MAX_KEY_LEN + 1);
    for key in ["", too_long.as_str()] {
        let err = a
            .set(key, b"v", None)
            .await
            .expect_err("a bad key is refused");
        assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
    }
    a.set("conf:Case", b"upper", None).await.expect("set");
    a.set("conf:case", b"lower", None).await.expect("set");
    assert_eq!(
        b.get("conf:Case").await.expect("get").as_deref(),
        Some(&b"upper"[..]),
        "keys are case-sensitive"
    );
    assert_eq!(
        b.get("conf:case").await.expect("get").as_deref(),
        Some(&b"lower"[..])
    );
    let large = vec![7u8; 256 * 1024];
    a.set("conf:large", &large, None)
        .await
        .expect("a 256 KiB value");
    assert_eq!(
        b.get("conf:large").await.expect("get"),
        Some(large),
        "large values round-trip"
    );

    let longest = "k".repeat(crate::MAX_KEY_LEN);
    a.set(&longest, b"v", None)
        .await
        .expect("the longest key is fine");
    assert_eq!(
        b.get(&longest).await.expect("get").as_deref(),
        Some(&b"v"[..])
    );
}
