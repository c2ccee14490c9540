use serde_json::{json, value::RawValue};
use tandem_live::testkit::{TestClient, TestEnv};
use tandem_live::{Channel, OrgId, engine_tests};

use crate::common::viewer;

fn data(n: u64) -> Box<RawValue> {
    serde_json::value::to_raw_value(&json!({"n": n})).unwrap()
}

engine_tests!(
    a_publication_on_any_hub_reaches_every_hub_once_in_order,
    |env: TestEnv| async move {
        let hubs = [env.hub("a").await, env.hub("b").await, env.hub("c").await];
        let channel = "1/grafana/broadcast/fanout";
        let mut clients = Vec::new();
        for (i, hub) in hubs.iter().enumerate() {
            for j in 0..2 {
                let mut client = TestClient::connect(hub, viewer((i * 2 + j) as i64 + 1)).await;
                client.subscribe(channel).await;
                clients.push(client);
            }
        }
        let target = Channel::parse_wire(channel).unwrap();
        for n in 0..30u64 {
            let hub = &hubs[(n % 3) as usize];
            hub.publish(&target, &data(n)).await.unwrap();
        }
        for client in &mut clients {
            let mut offsets = Vec::new();
            for n in 0..30u64 {
                let publication = client.publication(channel).await;
                assert_eq!(
                    publication["data"],
                    json!({"n": n}),
                    "in order, exactly once"
                );
                offsets.push(publication["offset"].as_u64().unwrap());
            }
            assert!(offsets.windows(2).all(|w| w[1] == w[0] + 1), "{offsets:?}");
            assert!(client.drain().await.is_empty(), "no duplicates");
        }
        for hub in &hubs {
            hub.shutdown().await;
        }
    }
);

engine_tests!(
    client_publications_go_through_the_same_path,
    |env: TestEnv| async move {
        let a = env.hub("a").await;
        let b = env.hub("b").await;
        let channel = "1/grafana/broadcast/chat";
        let mut reader = TestClient::connect(&b, viewer(1)).await;
        reader.subscribe(channel).await;
        let mut writer = TestClient::connect(&a, viewer(2)).await;
        let reply = writer
            .command(
                "publish",
                json!({"channel": channel, "data": {"text": "hi"}}),
            )
            .await;
        assert_eq!(reply["publish"], json!({}), "{reply}");
        assert_eq!(
            reader.publication(channel).await["data"],
            json!({"text": "hi"})
        );
        a.shutdown().await;
        b.shutdown().await;
    }
);

engine_tests!(
    dashboard_events_reach_viewers_on_every_hub,
    |env: TestEnv| async move {
        let a = env.hub("a").await;
        let b = env.hub("b").await;
        let channel = "1/grafana/dashboard/uid/dash1";
        let mut on_a = TestClient::connect(&a, viewer(1)).await;
        let mut on_b = TestClient::connect(&b, viewer(2)).await;
        on_a.subscribe(channel).await;
        on_b.subscribe(channel).await;
        b.dashboard_changed(
            OrgId(1),
            "dash1",
            tandem_live::DashboardAction::Saved,
            Some(3),
        )
        .await
        .unwrap();
        for client in [&mut on_a, &mut on_b] {
            assert_eq!(
                client.publication(channel).await["data"],
                json!({"uid": "dash1", "action": "saved", "rv": 3})
            );
        }
        // Viewers may announce editing only as an editing-started event of that dashboard.
        let bad = on_a
            .command(
                "publish",
                json!({"channel": channel, "data": {"uid": "other", "action": "editing-started"}}),
            )
            .await;
        assert_eq!(bad["error"]["code"], 107);
        let ok = on_a
        .command("publish", json!({"channel": channel, "data": {"uid": "dash1", "action": "editing-started", "userId": 1}}))
        .await;
        assert_eq!(ok["publish"], json!({}));
        assert_eq!(
            on_b.publication(channel).await["data"]["action"],
            "editing-started"
        );
        a.shutdown().await;
        b.shutdown().await;
    }
);

engine_tests!(
    a_slow_consumer_is_closed_without_disturbing_others,
    |env: TestEnv| async move {
        let mut settings = env.settings();
        settings.client_queue_size = 8;
        let hub = env.hub_with("a", settings).await;
        let channel = "1/grafana/broadcast/flood";
        let mut slow = TestClient::connect(&hub, viewer(1)).await;
        slow.subscribe(channel).await;
        let mut fast = TestClient::connect(&hub, viewer(2)).await;
        fast.subscribe(channel).await;
        let target = Channel::parse_wire(channel).unwrap();
        for n in 0..40u64 {
            hub.publish(&target, &data(n)).await.unwrap();
            // The fast client reads as it goes; the slow one never does.
            assert_eq!(fast.publication(channel).await["data"], json!({"n": n}));
        }
        assert_eq!(slow.closed().await.code, 3008);
        assert_eq!(hub.metrics().slow_consumers, 1);
        hub.publish(&target, &data(99)).await.unwrap();
        assert_eq!(fast.publication(channel).await["data"], json!({"n": 99}));
        assert!(fast.close_frame().is_none());
        hub.shutdown().await;
    }
);

engine_tests!(large_publications_cross_hubs, |env: TestEnv| async move {
    // Over PostgreSQL's 8000-byte NOTIFY limit, with and without history.
    let a = env.hub("a").await;
    let b = env.hub("b").await;
    let big = "x".repeat(20_000);
    for channel in ["1/grafana/broadcast/big", "1/grafana/dashboard/uid/big"] {
        let mut client = TestClient::connect(&b, viewer(1)).await;
        client.subscribe(channel).await;
        let data = serde_json::value::to_raw_value(&json!({"uid": "big", "blob": big})).unwrap();
        a.publish(&Channel::parse_wire(channel).unwrap(), &data)
            .await
            .unwrap();
        let publication = client.publication(channel).await;
        assert_eq!(
            publication["data"]["blob"].as_str().map(str::len),
            Some(20_000)
        );
    }
    a.shutdown().await;
    b.shutdown().await;
});
