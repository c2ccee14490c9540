use serde_json::json;
use tandem_live::influx::InfluxLimits;
use tandem_live::testkit::{DEADLINE, TestClient, TestEnv, wait_until};
use tandem_live::{Error, Hub, OrgId, engine_tests};

use crate::common::{admin, viewer};

engine_tests!(
    line_protocol_becomes_frames_on_every_hub,
    |env: TestEnv| async move {
        let a = env.hub("a").await;
        let b = env.hub("b").await;
        let channel = "1/stream/telegraf/cpu";
        let mut on_b = TestClient::connect(&b, viewer(1)).await;
        let sub = on_b.subscribe(channel).await;
        assert!(sub.get("data").is_none(), "nothing pushed yet: {sub}");
        let limits = InfluxLimits::default();
        let summary = a
            .push_influx(
                &admin(9),
                "telegraf",
                "cpu,host=a usage=1 1000000000\nmem used=5i 1000000000\n",
                &limits,
            )
            .await
            .unwrap();
        assert_eq!(
            summary.channels,
            ["stream/telegraf/cpu", "stream/telegraf/mem"]
        );
        let first = on_b.publication(channel).await;
        assert_eq!(
            first["data"]["schema"]["name"], "cpu",
            "schema first: {first}"
        );
        assert_eq!(first["data"]["data"]["values"], json!([[1000], [1.0]]));
        a.push_influx(
            &admin(9),
            "telegraf",
            "cpu,host=a usage=2 2000000000",
            &limits,
        )
        .await
        .unwrap();
        let second = on_b.publication(channel).await;
        assert!(
            second["data"].get("schema").is_none(),
            "data only while the schema holds: {second}"
        );
        assert_eq!(second["data"]["data"]["values"], json!([[2000], [2.0]]));
        // A new series changes the schema, which is sent again.
        a.push_influx(
            &admin(9),
            "telegraf",
            "cpu,host=b usage=3 3000000000",
            &limits,
        )
        .await
        .unwrap();
        let third = on_b.publication(channel).await;
        assert_eq!(
            third["data"]["schema"]["fields"][1]["labels"],
            json!({"host": "b"})
        );
        // A subscriber arriving later, anywhere, gets the last frame with its schema.
        let c = env.hub("c").await;
        let mut on_c = TestClient::connect(&c, viewer(2)).await;
        let sub = on_c.subscribe(channel).await;
        assert_eq!(sub["data"]["schema"]["name"], "cpu", "{sub}");
        assert_eq!(sub["data"]["data"]["values"], json!([[3000], [3.0]]));
        let list = c.list(OrgId(1)).await.unwrap();
        let names: Vec<&str> = list.iter().map(|c| c.channel.as_str()).collect();
        assert!(
            names.contains(&"stream/telegraf/cpu") && names.contains(&"stream/telegraf/mem"),
            "{names:?}"
        );
        assert!(names.contains(&"plugin/testdata/random-20Hz-stream"));
        assert!(
            c.list(OrgId(2))
                .await
                .unwrap()
                .iter()
                .all(|c| !c.channel.starts_with("stream/"))
        );
        // Only org Admins push, and bad bodies are refused whole.
        assert!(matches!(
            a.push_influx(&viewer(1), "telegraf", "cpu usage=1", &limits)
                .await,
            Err(Error::PermissionDenied)
        ));
        assert!(matches!(
            a.push_influx(&admin(9), "telegraf", "cpu usage=1\ncpu usage", &limits)
                .await,
            Err(Error::Influx(_))
        ));
        assert!(
            a.push_influx(&admin(9), "a/b", "cpu usage=1", &limits)
                .await
                .is_err()
        );
        for hub in [a, b, c] {
            hub.shutdown().await;
        }
    }
);

async fn producing(hubs: &[&Hub]) -> u64 {
    hubs.iter().map(|hub| hub.metrics().producers).sum()
}

engine_tests!(
    testdata_streams_run_once_per_cluster_and_move_when_their_holder_stops,
    |env: TestEnv| async move {
        let a = env.hub("a").await;
        let b = env.hub("b").await;
        let channel = "1/plugin/testdata/random-20Hz-stream";
        let mut on_a = TestClient::connect(&a, viewer(1)).await;
        let mut on_b = TestClient::connect(&b, viewer(2)).await;
        on_a.subscribe(channel).await;
        on_b.subscribe(channel).await;
        let point = on_b.publication(channel).await;
        assert!(
            point["data"]["data"]["values"][0][0].as_i64().is_some(),
            "{point}"
        );
        on_a.publication(channel).await;
        assert_eq!(producing(&[&a, &b]).await, 1, "exactly one producer");
        let holder_is_a = a.metrics().producers == 1;
        let (holder, other, mut survivor) = if holder_is_a {
            (a, b, on_b)
        } else {
            (b, a, on_a)
        };
        // A graceful stop hands the stream over at once.
        holder.shutdown().await;
        wait_until("the other hub to take over", DEADLINE, || async {
            other.metrics().producers == 1
        })
        .await;
        survivor.drain().await;
        survivor.publication(channel).await;
        // A new hub joins, then the producing one dies without releasing its lease.
        let c = env.hub("c").await;
        let mut on_c = TestClient::connect(&c, viewer(3)).await;
        on_c.subscribe(channel).await;
        on_c.publication(channel).await;
        assert_eq!(producing(&[&other, &c]).await, 1);
        drop(other);
        drop(survivor);
        wait_until("the lease to lapse and move", DEADLINE, || async {
            c.metrics().producers == 1
        })
        .await;
        on_c.drain().await;
        on_c.publication(channel).await;
        // With no subscriber left the producer stops.
        drop(on_c);
        wait_until("the producer to stop", DEADLINE, || async {
            c.metrics().producers == 0
        })
        .await;
        c.shutdown().await;
    }
);

engine_tests!(
    a_last_frame_expires_after_the_meta_ttl_everywhere,
    |env: TestEnv| async move {
        let settings = tandem_live::LiveSettings {
            history_ttl: std::time::Duration::from_millis(500),
            history_meta_ttl: std::time::Duration::from_millis(1500),
            ..env.settings()
        };
        let a = env.hub_with("a", settings.clone()).await;
        let b = env.hub_with("b", settings).await;
        let limits = InfluxLimits::default();
        let stale = "1/stream/telegraf/disk";
        a.push_influx(&admin(9), "telegraf", "disk free=1 1000000000", &limits)
            .await
            .unwrap();
        let streams = |list: Vec<tandem_live::ManagedChannel>| -> Vec<String> {
            list.into_iter()
                .map(|c| c.channel)
                .filter(|c| c.starts_with("stream/"))
                .collect()
        };
        assert_eq!(
            streams(b.list(OrgId(1)).await.unwrap()),
            ["stream/telegraf/disk"]
        );
        let mut early = TestClient::connect(&b, viewer(1)).await;
        let sub = early.subscribe(stale).await;
        assert_eq!(
            sub["data"]["data"]["values"],
            json!([[1000], [1.0]]),
            "{sub}"
        );
        // Past the TTL with no push: gone from every hub's list and subscribe reply, and
        // the next push carries its schema again.
        // Past the TTL with no push to it, while another channel of the org is pushed to
        // (which keeps the org's keys alive and sweeps): gone from the engine's storage,
        // not only from answers.
        for _ in 0..5 {
            a.push_influx(&admin(9), "telegraf", "mem used=1 1000000000", &limits)
                .await
                .unwrap();
            tokio::time::sleep(std::time::Duration::from_millis(450)).await;
        }
        a.push_influx(&admin(9), "telegraf", "mem used=1 1000000000", &limits)
            .await
            .unwrap();
        assert_ne!(
            stored(&env, stale).await,
            Some(true),
            "{stale} is still stored"
        );
        assert_ne!(stored(&env, "1/stream/telegraf/mem").await, Some(false));
        assert_eq!(
            streams(b.list(OrgId(1)).await.unwrap()),
            ["stream/telegraf/mem"]
        );
        tokio::time::sleep(std::time::Duration::from_millis(2000)).await;
        assert_eq!(
            streams(b.list(OrgId(1)).await.unwrap()),
            Vec::<String>::new()
        );
        let mut late = TestClient::connect(&a, viewer(2)).await;
        let sub = late.subscribe(stale).await;
        assert!(sub.get("data").is_none(), "expired: {sub}");
        a.push_influx(&admin(9), "telegraf", "disk free=2 2000000000", &limits)
            .await
            .unwrap();
        let again = late.publication(stale).await;
        assert_eq!(again["data"]["schema"]["name"], "disk", "{again}");
        // A channel pushed to keeps its frame while others expire around it.
        assert_eq!(
            streams(b.list(OrgId(1)).await.unwrap()),
            ["stream/telegraf/disk"]
        );
        for hub in [a, b] {
            hub.shutdown().await;
        }
    }
);

/// Whether the engine's own storage still holds a last frame of `channel`; `None` for the
/// local engine, whose memory is not looked into (its answers are).
async fn stored(env: &TestEnv, channel: &str) -> Option<bool> {
    use tandem_live::testkit::EngineKind;
    Some(match env.kind() {
        EngineKind::Local => return None,
        EngineKind::Redis => {
            let settings = env.settings();
            let client = redis::Client::open(format!(
                "redis://{}",
                settings.ha_engine_address.trim_start_matches("redis://")
            ))
            .unwrap();
            let mut conn = client.get_multiplexed_async_connection().await.unwrap();
            let key = format!("{}.last.1", settings.prefix());
            redis::cmd("HEXISTS")
                .arg(key)
                .arg(channel)
                .query_async::<bool>(&mut conn)
                .await
                .unwrap()
        }
        EngineKind::Postgres => {
            use tandem_storage::sea_orm::{ConnectionTrait, Statement};
            let db = env.database().await;
            let conn = db.connection();
            let row = conn
                .query_one_raw(Statement::from_sql_and_values(
                    conn.get_database_backend(),
                    "SELECT count(*) AS n FROM live_last WHERE channel = $1",
                    [channel.into()],
                ))
                .await
                .unwrap()
                .unwrap();
            row.try_get::<i64>("", "n").unwrap() > 0
        }
    })
}
