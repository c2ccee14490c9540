use std::time::Duration;

use tandem_http::testkit::TestCluster;
use tandem_http::testkit::http;

async fn peer_ids(url: &str) -> Vec<String> {
    let response = http::get_as_admin(&format!("{url}/api/cluster")).await;
    assert_eq!(response.status, 200, "{}", response.text());
    let body = response.json();
    body["peers"]
        .as_array()
        .expect("peers is a list")
        .iter()
        .map(|peer| peer["instanceId"].as_str().expect("instanceId").to_owned())
        .collect()
}

// Three instances cold-start together on one empty database: each lists all three as live
// peers, with the fields operators read; a graceful stop removes an instance from the
// others' view at once, not after the peer timeout.
tandem_http::cluster_tests!(
    instances_see_each_other_and_a_leaver_at_once,
    3,
    // A long timeout, so that only the graceful leave can explain a disappearance.
    |_, settings: &mut tandem_http::Settings| settings.cluster.peer_timeout =
        Duration::from_secs(60),
    |mut cluster: TestCluster| async move {
        let all = ["instance-0", "instance-1", "instance-2"];
        for (index, url) in cluster.urls().iter().enumerate() {
            assert_eq!(peer_ids(url).await, all, "instance {index}'s view");
            let body = http::get_as_admin(&format!("{url}/api/cluster"))
                .await
                .json();
            assert_eq!(body["instanceId"], format!("instance-{index}"));
            let me = body["peers"]
                .as_array()
                .unwrap()
                .iter()
                .find(|peer| peer["instanceId"] == body["instanceId"])
                .expect("an instance lists itself")
                .clone();
            assert_eq!(me["address"], url.trim_start_matches("http://"));
            assert_eq!(me["version"], "12.1.0");
            for key in ["startedAt", "lastHeartbeat"] {
                let at = me[key].as_str().unwrap();
                assert!(
                    time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339)
                        .is_ok(),
                    "{key}: {at}"
                );
            }
        }
        cluster.stop(1).await;
        let remaining = cluster.urls();
        for url in &remaining {
            assert_eq!(peer_ids(url).await, ["instance-0", "instance-2"]);
        }
        cluster.shutdown().await;
    }
);

// Heartbeats keep a live instance in the view well past the peer timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_keep_live_instances_listed() {
    let timeout = Duration::from_millis(1500);
    let cluster = TestCluster::start_with(tandem_storage::Backend::Sqlite, 2, |_, settings| {
        settings.cluster.heartbeat_interval = Duration::from_millis(200);
        settings.cluster.peer_timeout = timeout;
    })
    .await
    .unwrap();
    let url = cluster.url(0);
    let started = std::time::Instant::now();
    // Watch for more than two peer timeouts: both instances must stay listed throughout.
    while started.elapsed() < timeout * 2 + Duration::from_millis(500) {
        assert_eq!(peer_ids(&url).await.len(), 2);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    cluster.shutdown().await;
}
