//! Grafana Live through the WebSocket of several instances: a dashboard saved on one
//! instance is pushed to subscribers on the other, publications cross instances, the
//! upgrade is authenticated and origin-checked, limits close with Centrifuge's codes,
//! health and metrics say how Live is.
//!
//! Across instances the engine is PostgreSQL's on the PostgreSQL backend and Redis on the
//! others (`TANDEM_TEST_REDIS_URL`), so both HA engines carry the same tests.

use std::hash::{Hash, Hasher};

use serde_json::{Value, json};
use tandem_http::Settings;
use tandem_http::testkit::TestCluster;
use tandem_http::testkit::ws::{LiveClient, UpgradeError};
use tandem_live::HaEngine;
use tandem_storage::testkit::{REDIS_URL_ENV, service_url};
use tandem_storage::{Backend, Location};

use crate::common::{as_admin, as_admin_ok, check, create_user, login};

/// The cluster's Live engine: PostgreSQL's own on PostgreSQL, Redis elsewhere, under a
/// prefix derived from the test's database so parallel tests never share channels.
fn shared_engine(_: usize, settings: &mut Settings) {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    match &settings.database.location {
        Location::SqliteFile(path) => path.hash(&mut hasher),
        Location::Url(url) => url.hash(&mut hasher),
    }
    settings.live.ha_prefix = format!("test{:016x}", hasher.finish());
    if settings.database.backend == Backend::Postgres {
        settings.live.ha_engine = HaEngine::Postgres;
    } else if let Some(url) = service_url(REDIS_URL_ENV, "Redis") {
        settings.live.ha_engine = HaEngine::Redis;
        settings.live.ha_engine_address = url;
    }
}

/// Whether the cluster's instances share an engine; says so when they cannot (Redis not
/// configured and not required).
fn engine_shared(cluster: &TestCluster) -> bool {
    if cluster.database().backend() == Backend::Postgres {
        return true;
    }
    service_url(REDIS_URL_ENV, "Redis").is_some()
}

async fn session(url: &str) -> String {
    format!("grafana_session={}", login(url, "admin", "admin").await)
}

tandem_http::cluster_tests!(
    a_save_on_one_instance_reaches_subscribers_on_the_other,
    2,
    shared_engine,
    |cluster: TestCluster| async move {
        if !engine_shared(&cluster) {
            return;
        }
        let (a, b) = (cluster.url(0), cluster.url(1));
        let health = as_admin_ok("GET", &a, "/api/health", Value::Null).await;
        assert_eq!(health.json()["live"], "ok", "{}", health.text());
        as_admin_ok(
            "POST",
            &b,
            "/api/dashboards/db",
            json!({"dashboard": {"uid": "live-d", "title": "Live"}}),
        )
        .await;
        let cookie = session(&a).await;
        let mut client = LiveClient::connect(&a, &[("cookie", &cookie)]).await;
        let reply = client.subscribe("1/grafana/dashboard/uid/live-d").await;
        assert!(reply["subscribe"].is_object(), "{reply}");

        // Saved through B: pushed on A.
        let saved = as_admin_ok(
            "POST",
            &b,
            "/api/dashboards/db",
            json!({"dashboard": {"uid": "live-d", "title": "Live", "version": 1}}),
        )
        .await;
        assert_eq!(saved.json()["version"], 2);
        let publication = client.publication("1/grafana/dashboard/uid/live-d").await;
        assert_eq!(
            publication["data"],
            json!({"uid": "live-d", "action": "saved", "rv": 2})
        );

        // A broadcast published through B's HTTP API reaches A's subscriber, with data as
        // embedded JSON.
        client.subscribe("1/grafana/broadcast/team").await;
        let published = as_admin_ok(
            "POST",
            &b,
            "/api/live/publish",
            json!({"channel": "grafana/broadcast/team", "data": {"hello": [1, 2]}}),
        )
        .await;
        assert_eq!(published.json(), json!({}));
        let publication = client.publication("1/grafana/broadcast/team").await;
        assert_eq!(publication["data"], json!({"hello": [1, 2]}));

        // Deleted through B: pushed on A.
        as_admin_ok("DELETE", &b, "/api/dashboards/uid/live-d", Value::Null).await;
        let publication = client.publication("1/grafana/dashboard/uid/live-d").await;
        assert_eq!(publication["data"]["action"], "deleted");

        // Another org's channel, and a dashboard that does not exist, are refused (103).
        for channel in [
            "2/grafana/broadcast/team",
            "1/grafana/dashboard/uid/missing",
        ] {
            let reply = client.subscribe(channel).await;
            assert_eq!(reply["error"]["code"], 103, "{channel}: {reply}");
        }
        let reply = client.subscribe("1/nosuch/scope").await;
        assert!(
            reply["error"]["code"] == 102 || reply["error"]["code"] == 107,
            "{reply}"
        );
        cluster.shutdown().await;
    }
);

tandem_http::cluster_tests!(
    viewers_subscribe_but_only_editors_announce_editing,
    1,
    |cluster: TestCluster| async move {
        let url = cluster.url(0);
        create_user(&url, "watcher", "watcher password").await;
        as_admin_ok(
            "POST",
            &url,
            "/api/dashboards/db",
            json!({"dashboard": {"uid": "edited", "title": "Edited"}}),
        )
        .await;
        let cookie = format!(
            "grafana_session={}",
            login(&url, "watcher", "watcher password").await
        );
        let mut viewer = LiveClient::connect(&url, &[("cookie", &cookie)]).await;
        let reply = viewer.subscribe("1/grafana/dashboard/uid/edited").await;
        assert!(reply["subscribe"].is_object(), "{reply}");
        let editing = json!({"uid": "edited", "action": "editing-started"});
        let reply = viewer
            .command(
                "publish",
                json!({"channel": "1/grafana/dashboard/uid/edited", "data": editing}),
            )
            .await;
        assert_eq!(reply["error"]["code"], 103, "{reply}");
        let admin_cookie = session(&url).await;
        let mut admin = LiveClient::connect(&url, &[("cookie", &admin_cookie)]).await;
        let reply = admin
            .command(
                "publish",
                json!({"channel": "1/grafana/dashboard/uid/edited", "data": editing}),
            )
            .await;
        assert!(reply["publish"].is_object(), "{reply}");
        let publication = viewer.publication("1/grafana/dashboard/uid/edited").await;
        assert_eq!(publication["data"], editing);
        cluster.shutdown().await;
    }
);

tandem_http::cluster_tests!(
    dashboard_channels_follow_the_dashboard_permissions_set_on_another_instance,
    2,
    |cluster: TestCluster| async move {
        let (a, b) = (cluster.url(0), cluster.url(1));
        let watcher = create_user(&a, "watcher", "watcher password").await;
        as_admin_ok(
            "POST",
            &a,
            "/api/folders",
            json!({"uid": "closed", "title": "Closed"}),
        )
        .await;
        as_admin_ok(
            "POST",
            &a,
            "/api/dashboards/db",
            json!({"dashboard": {"uid": "inside", "title": "Inside"}, "folderUid": "closed"}),
        )
        .await;
        let channel = "1/grafana/dashboard/uid/inside";
        let cookie = format!(
            "grafana_session={}",
            login(&b, "watcher", "watcher password").await
        );
        // Only the folder's own list changes, through the other instance.
        check(
            &as_admin(
                "POST",
                &a,
                "/api/folders/closed/permissions",
                json!({"items": [{"role": "Editor", "permission": 2}]}),
            )
            .await,
            200,
            "Folder permissions updated",
        );
        let mut viewer = LiveClient::connect(&b, &[("cookie", &cookie)]).await;
        let reply = viewer.subscribe(channel).await;
        assert_eq!(
            reply["error"]["code"], 103,
            "no View on the folder: {reply}"
        );
        // Edit for this user alone: they subscribe and announce editing.
        check(
            &as_admin(
                "POST",
                &a,
                "/api/folders/closed/permissions",
                json!({"items": [{"userId": watcher, "permission": 2}]}),
            )
            .await,
            200,
            "Folder permissions updated",
        );
        let reply = viewer.subscribe(channel).await;
        assert!(reply["subscribe"].is_object(), "{reply}");
        let editing = json!({"uid": "inside", "action": "editing-started"});
        let reply = viewer
            .command("publish", json!({"channel": channel, "data": editing}))
            .await;
        assert!(
            reply["publish"].is_object(),
            "Edit lets a Viewer announce: {reply}"
        );
        cluster.shutdown().await;
    }
);

tandem_http::cluster_tests!(
    the_upgrade_is_authenticated_and_checks_the_origin,
    1,
    |_, settings| settings.live.allowed_origins = vec!["https://dash.example.com".to_owned()],
    |cluster: TestCluster| async move {
        let url = cluster.url(0);
        let cookie = session(&url).await;
        match LiveClient::open(&url, &[]).await {
            Err(UpgradeError::Refused(401, body)) => assert!(body.contains("message"), "{body}"),
            other => panic!("an anonymous upgrade: {:?}", other.err()),
        }
        match LiveClient::open(
            &url,
            &[("cookie", &cookie), ("origin", "https://evil.example")],
        )
        .await
        {
            Err(UpgradeError::Refused(403, body)) => {
                assert!(body.contains("Request origin is not allowed"), "{body}")
            }
            other => panic!("a foreign origin: {:?}", other.err()),
        }
        let host = url.trim_start_matches("http://").to_owned();
        for origin in [
            "http://localhost:3000",
            "https://dash.example.com",
            &format!("http://{host}"),
        ] {
            LiveClient::connect(&url, &[("cookie", &cookie), ("origin", origin)]).await;
        }
        // A bearer service-account key works as well as a cookie.
        let account = as_admin_ok(
            "POST",
            &url,
            "/api/serviceaccounts",
            json!({"name": "live-robot", "role": "Viewer"}),
        )
        .await;
        let id = account.json()["id"].as_i64().unwrap();
        let token = as_admin_ok(
            "POST",
            &url,
            &format!("/api/serviceaccounts/{id}/tokens"),
            json!({"name": "live"}),
        )
        .await;
        let bearer = format!("Bearer {}", token.json()["key"].as_str().unwrap());
        let mut robot = LiveClient::connect(&url, &[("authorization", &bearer)]).await;
        let reply = robot.subscribe("1/grafana/broadcast/robots").await;
        assert!(reply["subscribe"].is_object(), "{reply}");
        // A plain GET is no upgrade: a JSON 4xx.
        let plain = as_admin("GET", &url, "/api/live/ws", Value::Null).await;
        assert!(
            plain.status >= 400 && plain.status < 500,
            "{}",
            plain.text()
        );
        assert!(plain.json()["message"].is_string());
        cluster.shutdown().await;
    }
);

tandem_http::cluster_tests!(
    limits_close_with_centrifuges_codes,
    1,
    |_, settings| {
        settings.live.max_connections = 1;
        settings.live.message_size_limit = 1024;
    },
    |cluster: TestCluster| async move {
        let url = cluster.url(0);
        let cookie = session(&url).await;
        let mut first = LiveClient::connect(&url, &[("cookie", &cookie)]).await;
        let mut second = LiveClient::open(&url, &[("cookie", &cookie)])
            .await
            .unwrap();
        assert_eq!(second.closed().await.0, 3504);
        let metrics = tandem_http::testkit::http::get(&format!("{url}/metrics"))
            .await
            .text();
        assert!(metrics.contains("tandem_live_connections 1"), "{metrics}");
        assert!(metrics.contains("tandem_live_refused_total 1"), "{metrics}");
        // Malformed JSON answers an error or closes with 3501, never disturbing others.
        first.send_text(&"x".repeat(2048)).await;
        assert_eq!(first.closed().await.0, 1009);
        // The hub counts the closed connection out once its task ends, a moment after the
        // close frame: until then a new one would be over the limit of 1.
        tandem_storage::testkit::conformance::eventually(
            "the closed connection is counted out",
            std::time::Duration::from_secs(10),
            || {
                let url = url.clone();
                async move {
                    tandem_http::testkit::http::get(&format!("{url}/metrics"))
                        .await
                        .text()
                        .contains("tandem_live_connections 0")
                }
            },
        )
        .await;
        let mut third = LiveClient::connect(&url, &[("cookie", &cookie)]).await;
        third.send_text("{\"id\":1,\"subscribe\":").await;
        let (code, _) = third.closed().await;
        assert_eq!(code, 3501);
        cluster.shutdown().await;
    }
);

tandem_http::cluster_tests!(
    line_protocol_pushes_become_frames_listed_cluster_wide,
    2,
    shared_engine,
    |cluster: TestCluster| async move {
        if !engine_shared(&cluster) {
            return;
        }
        let (a, b) = (cluster.url(0), cluster.url(1));
        let cookie = session(&a).await;
        let mut client = LiveClient::connect(&a, &[("cookie", &cookie)]).await;
        client.subscribe("1/stream/telegraf/cpu").await;
        let response = tandem_http::testkit::http::request(
            "POST",
            &format!("{b}/api/live/push/telegraf"),
            &[tandem_http::testkit::http::ADMIN],
            "cpu,host=a usage=0.5 1700000000000000000\n",
        )
        .await
        .unwrap();
        assert_eq!(response.status, 200, "{}", response.text());
        let publication = client.publication("1/stream/telegraf/cpu").await;
        let frame = &publication["data"];
        assert_eq!(frame["data"]["values"][1], json!([0.5]), "{frame}");
        let listed = as_admin_ok("GET", &a, "/api/live/list", Value::Null).await;
        let channels = listed.json()["channels"].clone();
        assert!(
            channels
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["channel"] == "stream/telegraf/cpu"),
            "{channels}"
        );
        let bad = tandem_http::testkit::http::request(
            "POST",
            &format!("{b}/api/live/push/telegraf"),
            &[tandem_http::testkit::http::ADMIN],
            "cpu,host a usage=\n",
        )
        .await
        .unwrap();
        check(&bad, 400, bad.json()["message"].as_str().unwrap());
        cluster.shutdown().await;
    }
);

tandem_http::cluster_tests!(
    an_unreachable_engine_is_degraded_health_not_a_failed_start,
    1,
    |_, settings| {
        settings.live.ha_engine = HaEngine::Redis;
        // Nothing listens on port 1.
        settings.live.ha_engine_address = "127.0.0.1:1".to_owned();
    },
    |cluster: TestCluster| async move {
        let url = cluster.url(0);
        let health = tandem_http::testkit::http::get(&format!("{url}/api/health")).await;
        assert_eq!(health.status, 200, "{}", health.text());
        assert_eq!(health.json()["live"], "degraded");
        assert_eq!(health.json()["database"], "ok");
        let metrics = tandem_http::testkit::http::get(&format!("{url}/metrics"))
            .await
            .text();
        assert!(metrics.contains("tandem_live_engine_up 0"), "{metrics}");
        // Local subscribers are still served.
        let cookie = session(&url).await;
        let mut client = LiveClient::connect(&url, &[("cookie", &cookie)]).await;
        client.subscribe("1/grafana/broadcast/alone").await;
        as_admin_ok(
            "POST",
            &url,
            "/api/live/publish",
            json!({"channel": "grafana/broadcast/alone", "data": {"n": 1}}),
        )
        .await;
        assert_eq!(
            client.publication("1/grafana/broadcast/alone").await["data"],
            json!({"n": 1})
        );
        cluster.shutdown().await;
    }
);
