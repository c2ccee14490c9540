//! The protocol's edges on one hub: they do not depend on the engine.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tandem_live::testkit::{EngineKind, TestClient, TestEnv, run_on};
use tandem_live::{
    ClientInfo, CloseFrame, Error, Hub, HubOptions, LiveSettings, OrgId, OrgMembers, Outgoing, Role,
};

use crate::common::viewer;

async fn hub(settings: LiveSettings) -> Hub {
    Hub::start(HubOptions {
        settings,
        node_id: "solo".into(),
        authorizer: Arc::new(OrgMembers),
        leases: None,
        database: None,
        local_broker: None,
    })
    .await
    .unwrap()
}

#[track_caller]
fn error_code(reply: &Value) -> u64 {
    reply["error"]["code"]
        .as_u64()
        .unwrap_or_else(|| panic!("not an error: {reply}"))
}

#[tokio::test]
async fn replies_carry_the_id_and_several_commands_share_a_frame() {
    let hub = hub(LiveSettings::default()).await;
    let (mut conn, mut outbox) = hub.connect(viewer(1)).unwrap();
    conn.handle_frame(concat!(
        "{\"id\":1,\"connect\":{\"name\":\"js\",\"version\":\"5\"}}\n",
        "{\"id\":2,\"ping\":{}}\n",
        "{\"id\":3,\"rpc\":{\"method\":\"x\",\"data\":{}}}\n",
        "{\"send\":{\"data\":{}}}\n",
        "{\"id\":4,\"presence_stats\":{\"channel\":\"1/grafana/broadcast/x\"}}"
    ))
    .await;
    let Some(Outgoing::Text(frame)) = outbox.recv().await else {
        panic!("no reply")
    };
    let replies: Vec<Value> = frame
        .split('\n')
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(replies.len(), 4, "{frame}");
    assert_eq!(replies[0]["id"], 1);
    let connect = &replies[0]["connect"];
    assert!(
        connect["client"].as_str().is_some_and(|c| c.len() == 36),
        "{connect}"
    );
    assert_eq!(connect["ping"], 25);
    assert_eq!(connect["pong"], true);
    assert_eq!(replies[1], json!({"id": 2, "ping": {}}));
    assert_eq!(error_code(&replies[2]), 108);
    assert_eq!(replies[3]["id"], 4);
    assert_eq!(
        error_code(&replies[3]),
        103,
        "presence needs a subscription"
    );
    hub.shutdown().await;
}

#[tokio::test]
async fn bad_commands_get_centrifuge_errors_and_the_connection_lives_on() {
    let hub = hub(LiveSettings::default()).await;
    let mut client = TestClient::connect(&hub, viewer(1)).await;
    let cases: &[(&str, Value, u64)] = &[
        ("nope", json!({}), 104),
        ("subscribe", json!({"channel": "1/nope/x/y"}), 102),
        (
            "subscribe",
            json!({"channel": "1/grafana/dashboard/gitops"}),
            102,
        ),
        (
            "subscribe",
            json!({"channel": "1/plugin/testdata/random-5s-stream"}),
            102,
        ),
        ("subscribe", json!({"channel": "grafana/broadcast/x"}), 107),
        (
            "subscribe",
            json!({"channel": "1/grafana/broadcast/a b"}),
            107,
        ),
        ("subscribe", json!({"channel": 7}), 107),
        ("subscribe", json!({}), 107),
        (
            "subscribe",
            json!({"channel": "2/grafana/broadcast/x"}),
            103,
        ),
        ("publish", json!({"channel": "1/grafana/broadcast/x"}), 107),
        (
            "publish",
            json!({"channel": "1/plugin/testdata/random-2s-stream", "data": {}}),
            103,
        ),
        (
            "publish",
            json!({"channel": "1/stream/s/m", "data": {}}),
            103,
        ),
        (
            "publish",
            json!({"channel": "2/grafana/broadcast/x", "data": {}}),
            103,
        ),
        ("history", json!({"channel": "1/grafana/broadcast/x"}), 103),
        ("refresh", json!({"token": "x"}), 108),
        (
            "sub_refresh",
            json!({"channel": "1/grafana/broadcast/x"}),
            108,
        ),
        (
            "subscribe",
            json!({"channel": format!("1/grafana/broadcast/{}", "x".repeat(143))}),
            107,
        ),
        (
            "subscribe",
            json!({"channel": "1/grafana/broadcast/\u{0}"}),
            107,
        ),
    ];
    for (method, params, code) in cases {
        let reply = client.command(method, params.clone()).await;
        assert_eq!(error_code(&reply), *code, "{method} {params}: {reply}");
    }
    client.subscribe("1/grafana/broadcast/x").await;
    let again = client
        .command("subscribe", json!({"channel": "1/grafana/broadcast/x"}))
        .await;
    assert_eq!(error_code(&again), 105);
    let reply = client
        .command("unsubscribe", json!({"channel": "1/grafana/broadcast/x"}))
        .await;
    assert_eq!(reply["unsubscribe"], json!({}));
    let reply = client
        .command(
            "unsubscribe",
            json!({"channel": "1/grafana/broadcast/never"}),
        )
        .await;
    assert_eq!(reply["unsubscribe"], json!({}));
    client.subscribe("1/grafana/broadcast/x").await;
    assert!(client.close_frame().is_none());
    hub.shutdown().await;
}

#[tokio::test]
async fn malformed_frames_close_with_centrifuge_codes() {
    let settings = LiveSettings {
        message_size_limit: 1024,
        ..LiveSettings::default()
    };
    let hub = hub(settings).await;
    let cases: &[(&str, bool, u16)] = &[
        ("{not json", true, 3501),
        ("[1,2]", true, 3501),
        (
            "{\"id\":1,\"subscribe\":{\"channel\":\"1/grafana/broadcast/x\"}}",
            false,
            3501,
        ),
        (
            "{\"subscribe\":{\"channel\":\"1/grafana/broadcast/x\"}}",
            true,
            3501,
        ),
        ("{\"id\":5,\"connect\":{}}", true, 3501),
    ];
    for (frame, connect_first, code) in cases {
        let mut client = if *connect_first {
            TestClient::connect(&hub, viewer(1)).await
        } else {
            TestClient::open(&hub, viewer(1))
        };
        client.send(frame).await;
        assert_eq!(client.closed().await.code, *code, "{frame}");
    }
    let mut client = TestClient::connect(&hub, viewer(1)).await;
    client
        .send(&format!(
            "{{\"id\":9,\"publish\":{{\"channel\":\"1/grafana/broadcast/x\",\"data\":\"{}\"}}}}",
            "x".repeat(2000)
        ))
        .await;
    assert_eq!(client.closed().await, CloseFrame::MESSAGE_TOO_BIG);
    let mut client = TestClient::connect(&hub, viewer(1)).await;
    client.conn.handle_bytes(&[0xff, 0xfe]).await;
    assert_eq!(client.closed().await.code, 3501);
    // Other connections never notice.
    let mut bystander = TestClient::connect(&hub, viewer(2)).await;
    bystander.subscribe("1/grafana/broadcast/x").await;
    hub.shutdown().await;
}

#[tokio::test]
async fn random_frames_never_panic_the_hub() {
    let hub = hub(LiveSettings::default()).await;
    let pieces = [
        "{",
        "}",
        "\"id\":",
        "1",
        "\"subscribe\"",
        ":",
        "{\"channel\":\"1/grafana/broadcast/x\"}",
        ",",
        "\n",
        "\"publish\"",
        "{\"data\":",
        "null",
        "[",
        "]",
        "\"offset\":-1",
        "\"since\":{}",
        "\"history\"",
        "\"presence\"",
        "\\u0000",
        "\"",
    ];
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..300 {
        let mut client = TestClient::connect(&hub, viewer(1)).await;
        let mut frame = String::new();
        for _ in 0..(seed % 24) {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            frame.push_str(pieces[(seed % pieces.len() as u64) as usize]);
        }
        client.send(&frame).await;
        client.drain().await;
    }
    let mut client = TestClient::connect(&hub, viewer(1)).await;
    client.subscribe("1/grafana/broadcast/still-fine").await;
    hub.shutdown().await;
}

#[tokio::test]
async fn limits_on_connections_and_subscriptions() {
    let settings = LiveSettings {
        max_connections: 2,
        max_subscriptions_per_connection: 2,
        ..LiveSettings::default()
    };
    let hub = hub(settings).await;
    let mut first = TestClient::connect(&hub, viewer(1)).await;
    let second = TestClient::connect(&hub, viewer(2)).await;
    let refused = hub.connect(viewer(3)).unwrap_err();
    assert!(matches!(refused, Error::ConnectionLimit));
    assert_eq!(CloseFrame::CONNECTION_LIMIT.code, 3504);
    assert_eq!(hub.metrics().refused, 1);
    drop(second);
    let _third = TestClient::connect(&hub, viewer(3)).await;
    first.subscribe("1/grafana/broadcast/a").await;
    first.subscribe("1/grafana/broadcast/b").await;
    let reply = first
        .command("subscribe", json!({"channel": "1/grafana/broadcast/c"}))
        .await;
    assert_eq!(error_code(&reply), 106);
    hub.shutdown().await;
    // 0 turns Live off; -1 is unlimited.
    let off = self::hub(LiveSettings {
        max_connections: 0,
        ..LiveSettings::default()
    })
    .await;
    assert!(off.connect(viewer(1)).is_err());
    let unlimited = self::hub(LiveSettings {
        max_connections: -1,
        ..LiveSettings::default()
    })
    .await;
    let clients: Vec<_> = (0..300)
        .map(|i| unlimited.connect(viewer(i)).unwrap())
        .collect();
    assert_eq!(unlimited.metrics().connections, 300);
    drop(clients);
    assert_eq!(unlimited.metrics().connections, 0);
}

#[tokio::test]
async fn pings_close_silent_clients_and_keep_answering_ones() {
    let settings = LiveSettings {
        ping_interval: Duration::from_millis(100),
        ..LiveSettings::default()
    };
    let hub = hub(settings).await;
    let mut alive = TestClient::connect(&hub, viewer(1)).await;
    let mut silent = TestClient::connect(&hub, viewer(2)).await;
    silent.auto_pong = false;
    let mut stale = TestClient::open(&hub, viewer(3));
    // The answering client reads (and so answers pings) while the others are judged.
    let start = std::time::Instant::now();
    while silent.close_frame().is_none() || stale.close_frame().is_none() {
        assert!(
            start.elapsed() < tandem_live::testkit::DEADLINE,
            "not closed"
        );
        alive.drain().await;
        silent.drain().await;
        stale.drain().await;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(silent.close_frame(), Some(CloseFrame::NO_PONG));
    assert_eq!(stale.close_frame(), Some(CloseFrame::STALE));
    // Several ping periods later the answering client is still connected.
    let start = std::time::Instant::now();
    while start.elapsed() < Duration::from_millis(500) {
        alive.drain().await;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(alive.close_frame().is_none());
    alive
        .subscribe(&format!("1/grafana/broadcast/{}", rand_name()))
        .await;
    assert_eq!(hub.metrics().no_pong, 1);
    hub.shutdown().await;
    assert_eq!(alive.closed().await, CloseFrame::SHUTDOWN);
}

fn rand_name() -> String {
    format!("c{}", rand::random::<u32>())
}

#[tokio::test]
async fn permissions_come_from_the_authorizer() {
    struct OnlyDashboardA;
    #[async_trait::async_trait]
    impl tandem_live::ChannelAuthorizer for OnlyDashboardA {
        async fn authorize(
            &self,
            client: &ClientInfo,
            channel: &tandem_live::Channel,
            action: tandem_live::Action,
        ) -> tandem_live::Result<bool> {
            Ok(match channel.kind() {
                tandem_live::ChannelKind::Dashboard => {
                    channel.leaf() == "a"
                        && (action == tandem_live::Action::Subscribe || client.role >= Role::Editor)
                }
                _ => true,
            })
        }
    }
    let hub = Hub::start(HubOptions {
        settings: LiveSettings::default(),
        node_id: "solo".into(),
        authorizer: Arc::new(OnlyDashboardA),
        leases: None,
        database: None,
        local_broker: None,
    })
    .await
    .unwrap();
    let mut viewer = TestClient::connect(&hub, viewer(1)).await;
    viewer.subscribe("1/grafana/dashboard/uid/a").await;
    let reply = viewer
        .command("subscribe", json!({"channel": "1/grafana/dashboard/uid/b"}))
        .await;
    assert_eq!(error_code(&reply), 103);
    let editing = json!({"channel": "1/grafana/dashboard/uid/a", "data": {"uid": "a", "action": "editing-started"}});
    assert_eq!(
        error_code(&viewer.command("publish", editing.clone()).await),
        103
    );
    let mut editor = TestClient::connect(
        &hub,
        ClientInfo {
            user_id: 2,
            org_id: OrgId(1),
            role: Role::Editor,
        },
    )
    .await;
    assert_eq!(
        editor.command("publish", editing).await["publish"],
        json!({})
    );
    hub.shutdown().await;
}

#[tokio::test]
async fn engine_matrix_is_announced() {
    // The local engine needs no service; this keeps the matrix helper honest.
    run_on(EngineKind::Local, |env: TestEnv| async move {
        assert_eq!(env.kind(), EngineKind::Local);
        let hub = env.hub("x").await;
        assert_eq!(hub.health().as_str(), "ok");
        assert_eq!(hub.metrics().engine, "local");
        hub.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn connections_can_live_in_their_own_tasks() {
    // What the HTTP layer does: a reader task feeding frames, a writer task draining.
    let hub = hub(LiveSettings::default()).await;
    let (mut conn, mut outbox) = hub.connect(viewer(1)).unwrap();
    let writer = tokio::spawn(async move { outbox.recv().await });
    let reader = tokio::spawn(async move {
        conn.handle_frame(r#"{"id":1,"connect":{}}"#).await;
        conn
    });
    let conn = reader.await.unwrap();
    let Some(Outgoing::Text(text)) = writer.await.unwrap() else {
        panic!("no connect reply")
    };
    assert!(text.contains("\"connect\""));
    drop(conn);
    hub.shutdown().await;
}
