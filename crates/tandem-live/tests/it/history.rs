use serde_json::{json, value::RawValue};
use tandem_live::testkit::{TestClient, TestEnv};
use tandem_live::{Channel, engine_tests};

use crate::common::viewer;

fn data(n: u64) -> Box<RawValue> {
    serde_json::value::to_raw_value(&json!({"n": n})).unwrap()
}

engine_tests!(
    a_client_reconnecting_to_another_hub_recovers_what_it_missed,
    |env: TestEnv| async move {
        let a = env.hub("a").await;
        let b = env.hub("b").await;
        let channel = "1/grafana/broadcast/recover";
        let target = Channel::parse_wire(channel).unwrap();
        let mut client = TestClient::connect(&a, viewer(1)).await;
        let sub = client.subscribe(channel).await;
        assert_eq!(sub["recoverable"], true, "{sub}");
        let epoch = sub["epoch"].as_str().unwrap().to_owned();
        for n in 0..3 {
            a.publish(&target, &data(n)).await.unwrap();
        }
        let mut last = 0;
        for n in 0..3 {
            let publication = client.publication(channel).await;
            assert_eq!(publication["data"], json!({"n": n}));
            last = publication["offset"].as_u64().unwrap();
        }
        drop(client);
        for n in 3..6 {
            a.publish(&target, &data(n)).await.unwrap();
        }
        let mut client = TestClient::connect(&b, viewer(1)).await;
        let sub = client
            .subscribe_with(
                json!({"channel": channel, "recover": true, "epoch": epoch, "offset": last}),
            )
            .await;
        assert_eq!(sub["recovered"], true, "{sub}");
        assert_eq!(sub["was_recovering"], true);
        let missed: Vec<_> = sub["publications"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["data"]["n"].clone())
            .collect();
        assert_eq!(missed, vec![json!(3), json!(4), json!(5)]);
        assert_eq!(sub["offset"].as_u64().unwrap(), last + 3);
        // And it goes on live.
        a.publish(&target, &data(6)).await.unwrap();
        let publication = client.publication(channel).await;
        assert_eq!(publication["data"], json!({"n": 6}));
        assert_eq!(publication["offset"].as_u64().unwrap(), last + 4);

        // A position from another epoch cannot be recovered, and the client is told so.
        let mut stranger = TestClient::connect(&b, viewer(2)).await;
        let sub = stranger
            .subscribe_with(
                json!({"channel": channel, "recover": true, "epoch": "nope", "offset": 1}),
            )
            .await;
        assert_eq!(sub["was_recovering"], true);
        assert!(sub.get("recovered").is_none(), "{sub}");
        a.shutdown().await;
        b.shutdown().await;
    }
);

engine_tests!(
    history_is_bounded_and_answers_centrifuge_history,
    |env: TestEnv| async move {
        let mut settings = env.settings();
        settings.history_size = 3;
        let hub = env.hub_with("a", settings).await;
        let channel = "1/grafana/broadcast/history";
        let target = Channel::parse_wire(channel).unwrap();
        let mut client = TestClient::connect(&hub, viewer(1)).await;
        let sub = client.subscribe(channel).await;
        let epoch = sub["epoch"].as_str().unwrap().to_owned();
        for n in 0..5 {
            hub.publish(&target, &data(n)).await.unwrap();
        }
        for _ in 0..5 {
            client.publication(channel).await;
        }
        let reply = client
            .command("history", json!({"channel": channel, "limit": -1}))
            .await;
        let history = &reply["history"];
        let kept: Vec<_> = history["publications"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["data"]["n"].clone())
            .collect();
        assert_eq!(kept, vec![json!(2), json!(3), json!(4)], "{reply}");
        assert_eq!(history["epoch"], json!(epoch));
        let top = history["offset"].as_u64().unwrap();
        let reply = client
        .command("history", json!({"channel": channel, "limit": 1, "reverse": true, "since": {"offset": top - 2, "epoch": epoch}}))
        .await;
        assert_eq!(
            reply["history"]["publications"][0]["data"],
            json!({"n": 4}),
            "{reply}"
        );
        assert_eq!(
            reply["history"]["publications"].as_array().unwrap().len(),
            1
        );
        let reply = client
            .command(
                "history",
                json!({"channel": channel, "limit": -1, "since": {"offset": 0, "epoch": epoch}}),
            )
            .await;
        assert_eq!(reply["error"]["code"], 112, "{reply}");
        let reply = client
            .command(
                "history",
                json!({"channel": channel, "since": {"offset": top, "epoch": "other"}}),
            )
            .await;
        assert_eq!(reply["error"]["code"], 112, "{reply}");
        // Too old to recover from a subscribe: the client learns it lost publications.
        let mut late = TestClient::connect(&hub, viewer(2)).await;
        let sub = late
            .subscribe_with(
                json!({"channel": channel, "recover": true, "epoch": epoch, "offset": 0}),
            )
            .await;
        assert!(sub.get("recovered").is_none(), "{sub}");
        // Dashboards keep no history.
        let dash = "1/grafana/dashboard/uid/x";
        client.subscribe(dash).await;
        let reply = client.command("history", json!({"channel": dash})).await;
        assert_eq!(reply["error"]["code"], 108);
        hub.shutdown().await;
    }
);
