use serde_json::json;
use tandem_live::engine_tests;
use tandem_live::testkit::{DEADLINE, TestClient, TestEnv};

use crate::common::viewer;

engine_tests!(
    presence_counts_every_hubs_clients_and_expires_with_a_dead_hub,
    |env: TestEnv| async move {
        let a = env.hub("a").await;
        let b = env.hub("b").await;
        let channel = "1/grafana/dashboard/uid/p1";
        let mut on_a = TestClient::connect(&a, viewer(1)).await;
        on_a.subscribe(channel).await;
        let join = on_a.push().await;
        assert_eq!(
            join["join"]["info"]["client"],
            json!(on_a.client_id),
            "{join}"
        );
        let mut on_b = TestClient::connect(&b, viewer(2)).await;
        on_b.subscribe(channel).await;
        let mut same_user = TestClient::connect(&b, viewer(2)).await;
        same_user.subscribe(channel).await;
        // a sees b's clients join.
        let mut joined = Vec::new();
        while joined.len() < 2 {
            let push = on_a.push().await;
            if let Some(client) = push["join"]["info"]["client"].as_str() {
                joined.push(client.to_owned());
            }
        }
        assert!(joined.contains(&on_b.client_id) && joined.contains(&same_user.client_id));
        let reply = on_a.command("presence", json!({"channel": channel})).await;
        let presence = reply["presence"]["presence"].as_object().unwrap();
        assert_eq!(presence.len(), 3, "{reply}");
        assert_eq!(
            presence[&on_b.client_id],
            json!({"user": "2", "client": on_b.client_id})
        );
        let stats = on_a
            .command("presence_stats", json!({"channel": channel}))
            .await;
        assert_eq!(
            stats["presence_stats"],
            json!({"num_clients": 3, "num_users": 2})
        );

        // A client that leaves is announced and removed.
        let leaving = same_user.client_id.clone();
        drop(same_user);
        loop {
            let push = on_a.push().await;
            if push["leave"]["info"]["client"] == json!(leaving) {
                break;
            }
        }
        let stats = on_a
            .command("presence_stats", json!({"channel": channel}))
            .await;
        assert_eq!(stats["presence_stats"]["num_clients"], 2);

        // b dies without cleaning up: its entries expire.
        drop(b);
        drop(on_b);
        let start = std::time::Instant::now();
        loop {
            let stats = on_a
                .command("presence_stats", json!({"channel": channel}))
                .await;
            if stats["presence_stats"]["num_clients"] == 1 {
                break;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "b's presence never expired: {stats}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        // Presence needs a subscription and a presence channel.
        let reply = on_a
            .command(
                "presence",
                json!({"channel": "1/grafana/dashboard/uid/other"}),
            )
            .await;
        assert_eq!(reply["error"]["code"], 103);
        on_a.subscribe("1/grafana/broadcast/p").await;
        let reply = on_a
            .command("presence", json!({"channel": "1/grafana/broadcast/p"}))
            .await;
        assert_eq!(reply["error"]["code"], 108);
        a.shutdown().await;
    }
);
