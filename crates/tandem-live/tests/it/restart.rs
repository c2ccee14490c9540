//! Engines lost and regained under load, on private servers.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::json;
use tandem_live::testkit::{
    DEADLINE, PrivatePostgres, PrivateRedis, TestClient, TestEnv, wait_until,
};
use tandem_live::{Channel, Hub, LiveHealth};
use tandem_storage::testkit::proxy::TcpProxy;

use crate::common::viewer;

/// Publishes on `a` every few milliseconds, cuts the engine, brings it back, and checks
/// what clients see: degraded health, local delivery meanwhile, the insufficient-state
/// unsubscribe afterwards, and live publications again after resubscribing.
async fn restart_under_load(env: TestEnv, mut stop: impl FnMut(), mut start: impl FnMut()) {
    let a = Arc::new(env.hub("a").await);
    let b = env.hub("b").await;
    let channel = "1/grafana/broadcast/load";
    let target = Channel::parse_wire(channel).unwrap();
    let mut remote = TestClient::connect(&b, viewer(1)).await;
    let sub = remote.subscribe(channel).await;
    let epoch = sub["epoch"].as_str().unwrap().to_owned();
    let mut local = TestClient::connect(&a, viewer(2)).await;
    local.subscribe(channel).await;

    let running = Arc::new(AtomicBool::new(true));
    let load = tokio::spawn({
        let (a, running, target) = (a.clone(), running.clone(), target.clone());
        async move {
            let mut n = 0u64;
            while running.load(Ordering::Relaxed) {
                n += 1;
                let data = serde_json::value::to_raw_value(&json!({"n": n})).unwrap();
                // Errors are the point of this test; the hub must not return them for
                // publications it could serve locally.
                a.publish(&target, &data).await.unwrap();
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            n
        }
    });
    let mut last = 0;
    for _ in 0..5 {
        last = remote.publication(channel).await["offset"]
            .as_u64()
            .unwrap();
    }

    tokio::task::block_in_place(&mut stop);
    wait_until("both hubs degraded", DEADLINE, || async {
        a.health() == LiveHealth::Degraded && b.health() == LiveHealth::Degraded
    })
    .await;
    // a's own subscriber is still served, without offsets (nothing reaches history).
    loop {
        let publication = local.publication(channel).await;
        if publication.get("offset").is_none() {
            break;
        }
    }
    tokio::task::block_in_place(&mut start);
    wait_until("both hubs resumed", DEADLINE, || async {
        a.health() == LiveHealth::Ok && b.health() == LiveHealth::Ok
    })
    .await;
    // The remote subscriber is told it may have missed publications, and recovers.
    loop {
        let push = remote.push().await;
        if push["channel"] == json!(channel) && push.get("unsubscribe").is_some() {
            assert_eq!(push["unsubscribe"]["code"], 2500, "{push}");
            break;
        }
        if let Some(offset) = push["pub"]["offset"].as_u64() {
            last = offset;
        }
    }
    let sub = remote
        .subscribe_with(
            json!({"channel": channel, "recover": true, "epoch": epoch, "offset": last}),
        )
        .await;
    assert_eq!(sub["was_recovering"], true, "{sub}");
    if sub["recovered"] != true {
        // The engine lost the stream: a new epoch tells the client so.
        assert_ne!(sub["epoch"], json!(epoch), "{sub}");
    }
    let after = remote.publication(channel).await;
    assert!(after["offset"].as_u64().is_some(), "live again: {after}");
    assert!(a.metrics().engine_losses >= 1 && b.metrics().engine_losses >= 1);
    running.store(false, Ordering::Relaxed);
    assert!(load.await.unwrap() > 0);
    b.shutdown().await;
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restart_under_load() {
    let redis = std::sync::Mutex::new(PrivateRedis::start());
    let address = redis.lock().unwrap().address();
    let env = TestEnv::with_redis(&address).await;
    restart_under_load(
        env,
        || redis.lock().unwrap().stop(),
        || redis.lock().unwrap().restart(),
    )
    .await;
}

/// One instance's link to Redis is cut while the other keeps its own: what the cut one
/// publishes meanwhile reaches only its own subscribers. When its link is back it names
/// those channels to the cluster, and the other instance's subscribers of them are told to
/// resubscribe (2500), though their own engine never dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_elsewhere_are_told_what_a_cut_off_instance_published() {
    let redis = PrivateRedis::start();
    let proxy = TcpProxy::start(&redis.address()).await;
    let env = TestEnv::with_redis(&redis.address()).await;
    let mut through_proxy = env.settings();
    through_proxy.ha_engine_address = proxy.addr().to_string();
    let a = env.hub_with("a", through_proxy).await;
    let b = env.hub("b").await;
    let channel = "1/grafana/broadcast/cut";
    let other = "1/grafana/broadcast/untouched";
    let target = Channel::parse_wire(channel).unwrap();
    let mut remote = TestClient::connect(&b, viewer(1)).await;
    remote.subscribe(channel).await;
    remote.subscribe(other).await;
    let publish = |n: u64| {
        let data = serde_json::value::to_raw_value(&json!({"n": n})).unwrap();
        let (a, target) = (&a, &target);
        async move { a.publish(target, &data).await.unwrap() }
    };
    publish(1).await;
    assert_eq!(remote.publication(channel).await["data"], json!({"n": 1}));

    proxy.set_up(false);
    wait_until("a degraded", DEADLINE, || async {
        a.health() == LiveHealth::Degraded
    })
    .await;
    assert_eq!(b.health(), LiveHealth::Ok, "b keeps its own link");
    publish(2).await;
    proxy.set_up(true);
    wait_until("a resumed", DEADLINE, || async {
        a.health() == LiveHealth::Ok
    })
    .await;
    loop {
        let push = remote.push().await;
        assert_ne!(
            push["pub"]["data"],
            json!({"n": 2}),
            "published locally on a: {push}"
        );
        if push.get("unsubscribe").is_some() {
            assert_eq!(
                push["channel"],
                json!(channel),
                "only the channel a published on: {push}"
            );
            assert_eq!(push["unsubscribe"]["code"], 2500, "{push}");
            break;
        }
    }
    b.shutdown().await;
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_redis_at_start_is_degraded_not_fatal() {
    // A port with nobody behind it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let env = TestEnv::with_redis(&format!("127.0.0.1:{port}")).await;
    let hub: Hub = env.hub("a").await;
    assert_eq!(hub.health(), LiveHealth::Degraded);
    assert_eq!(hub.metrics().engine_up, 0);
    let channel = "1/grafana/broadcast/alone";
    let mut client = TestClient::connect(&hub, viewer(1)).await;
    client.subscribe(channel).await;
    let data = serde_json::value::to_raw_value(&json!({"solo": true})).unwrap();
    hub.publish(&Channel::parse_wire(channel).unwrap(), &data)
        .await
        .unwrap();
    assert_eq!(
        client.publication(channel).await["data"],
        json!({"solo": true})
    );
    hub.shutdown().await;
}
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restart_under_load() {
    let postgres = std::sync::Mutex::new(PrivatePostgres::start());
    let url = postgres.lock().unwrap().url();
    let env = TestEnv::with_postgres(&url).await;
    restart_under_load(
        env,
        || postgres.lock().unwrap().stop(),
        || postgres.lock().unwrap().restart(),
    )
    .await;
}
