//! Many clients creating folders and dashboards at once through two instances: a
//! transient conflict inside the database (MariaDB's deadlock 1213, PostgreSQL's
//! serialization failure, SQLite busy) never reaches a client, and every acknowledged
//! creation is stored exactly once.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};
use tandem_http::testkit::TestCluster;
use tandem_http::testkit::http::{self, HttpResponse};

use crate::common::{get_with_session, login};

/// How many clients create at the same moment.
const CREATORS: usize = 32;
/// How many times each client creates its folder and two dashboards.
const ROUNDS: usize = 3;

/// `POST url{path}` with a session cookie (cheap to check, unlike Basic credentials, so
/// the requests meet in the database rather than queue on password hashing).
async fn post(url: &str, path: &str, token: &str, body: Value) -> HttpResponse {
    let cookie = format!("grafana_session={token}");
    let headers = [
        ("cookie", cookie.as_str()),
        ("content-type", "application/json"),
    ];
    http::request("POST", &format!("{url}{path}"), &headers, body.to_string())
        .await
        .unwrap_or_else(|err| panic!("POST {path}: {err}"))
}

/// What one client created: a folder, a dashboard in it with a generated uid, and a
/// dashboard at the root with a uid of its own.
struct Created {
    folder_uid: String,
    dashboard_uids: [String; 2],
}

/// `GET url{path}` with a session cookie, insisting on a 200; returns the JSON.
async fn get_ok(url: &str, path: &str, token: &str) -> Value {
    let response = get_with_session(url, path, token).await;
    assert_eq!(response.status, 200, "GET {path}: {}", response.text());
    response.json()
}

async fn create_one(url: String, token: String, i: usize) -> Created {
    let folder = post(
        &url,
        "/api/folders",
        &token,
        json!({"title": format!("Race folder {i:03}")}),
    )
    .await;
    assert_eq!(folder.status, 200, "folder {i}: {}", folder.text());
    let folder_uid = folder.json()["uid"]
        .as_str()
        .expect("a folder uid")
        .to_owned();
    let inside = post(
        &url,
        "/api/dashboards/db",
        &token,
        json!({
            "dashboard": {"title": format!("Race inside {i:03}"), "tags": ["race", format!("t{}", i % 4)]},
            "folderUid": folder_uid,
        }),
    )
    .await;
    assert_eq!(
        inside.status,
        200,
        "dashboard {i} in a folder: {}",
        inside.text()
    );
    let root = post(
        &url,
        "/api/dashboards/db",
        &token,
        json!({"dashboard": {"uid": format!("race-{i:03}"), "title": format!("Race root {i:03}"), "tags": ["race"]}}),
    )
    .await;
    assert_eq!(
        root.status,
        200,
        "dashboard {i} at the root: {}",
        root.text()
    );
    let uid = |response: &HttpResponse| response.json()["uid"].as_str().expect("a uid").to_owned();
    Created {
        folder_uid,
        dashboard_uids: [uid(&inside), uid(&root)],
    }
}

tandem_http::cluster_tests!(
    thirty_two_concurrent_creators_all_succeed_and_each_creation_is_stored_once,
    2,
    |cluster: TestCluster| async move {
        let urls = cluster.urls();
        let mut tokens = Vec::new();
        for url in &urls {
            tokens.push(login(url, "admin", "admin").await);
        }
        let creators: Vec<_> = (0..CREATORS)
            .map(|c| {
                let (url, token) = (urls[c % urls.len()].clone(), tokens[c % urls.len()].clone());
                tokio::spawn(async move {
                    let mut created = Vec::new();
                    for round in 0..ROUNDS {
                        created.push(
                            create_one(url.clone(), token.clone(), round * CREATORS + c).await,
                        );
                    }
                    created
                })
            })
            .collect();
        let mut folders = BTreeSet::new();
        let mut dashboards = BTreeSet::new();
        for creator in creators {
            for created in creator.await.expect("a creator") {
                folders.insert(created.folder_uid);
                dashboards.extend(created.dashboard_uids);
            }
        }
        let total = CREATORS * ROUNDS;
        assert_eq!(folders.len(), total, "every folder has its own uid");
        assert_eq!(
            dashboards.len(),
            2 * total,
            "every dashboard has its own uid"
        );

        // Read back through the other instance: each acknowledged creation, once.
        for url in &urls {
            let hits = get_ok(url, "/api/search?limit=5000", &tokens[0]).await;
            let mut seen: BTreeMap<(String, String), usize> = BTreeMap::new();
            let mut ids = BTreeSet::new();
            for hit in hits.as_array().expect("a list") {
                let key = (
                    hit["type"].as_str().expect("a type").to_owned(),
                    hit["uid"].as_str().expect("a uid").to_owned(),
                );
                *seen.entry(key).or_default() += 1;
                ids.insert((hit["type"].to_string(), hit["id"].as_i64().expect("an id")));
            }
            assert!(
                seen.values().all(|&n| n == 1),
                "a hit listed twice: {seen:?}"
            );
            let listed = |kind: &str| -> BTreeSet<String> {
                seen.keys()
                    .filter(|(k, _)| k == kind)
                    .map(|(_, uid)| uid.clone())
                    .collect()
            };
            assert_eq!(listed("dash-folder"), folders);
            assert_eq!(listed("dash-db"), dashboards);
            assert_eq!(ids.len(), seen.len(), "ids are distinct");
            let tagged = get_ok(url, "/api/dashboards/tags", &tokens[0]).await;
            assert!(
                tagged
                    .as_array()
                    .expect("a list")
                    .contains(&json!({"term": "race", "count": 2 * total})),
                "{tagged}"
            );
        }
        for uid in &dashboards {
            let path = format!("/api/dashboards/uid/{uid}/versions");
            let versions = get_ok(&urls[1], &path, &tokens[1]).await;
            assert_eq!(
                versions["versions"].as_array().map(Vec::len),
                Some(1),
                "one version row per creation of {uid}"
            );
        }
    }
);
