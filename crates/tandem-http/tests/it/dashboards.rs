//! Dashboards, folders, versions, stars and search through the API
//! (`/api/dashboards…`, `/api/folders…`, `/api/search`): Grafana's shapes and error table,
//! saves that never lose an update when instances race, and bad input that writes nothing.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{Value, json};
use tandem_dashboards::{DashboardAction, DashboardProvider, OrgId};
use tandem_http::testkit::TestCluster;
use tandem_http::testkit::http::{self, ADMIN, HttpResponse};

use crate::common::{as_admin, as_admin_ok, basic, check, create_user, send};

/// Every `meta` key COMPAT.md §1 lists for `GET /api/dashboards/uid/:uid`.
const META_KEYS: &[&str] = &[
    "type",
    "canSave",
    "canEdit",
    "canAdmin",
    "canStar",
    "canDelete",
    "slug",
    "url",
    "expires",
    "created",
    "updated",
    "createdBy",
    "updatedBy",
    "version",
    "hasAcl",
    "isFolder",
    "folderId",
    "folderUid",
    "folderTitle",
    "folderUrl",
    "provisioned",
    "provisionedExternalId",
];

/// Saves `dashboard` through `url` as the admin; returns the answer.
async fn save(url: &str, body: Value) -> HttpResponse {
    as_admin("POST", url, "/api/dashboards/db", body).await
}

/// Saves and insists on a 200; returns the answer's JSON.
async fn save_ok(url: &str, body: Value) -> Value {
    let response = save(url, body).await;
    assert_eq!(response.status, 200, "{}", response.text());
    response.json()
}

/// Creates a folder through `url`; returns its JSON.
async fn folder(url: &str, uid: &str, title: &str) -> Value {
    as_admin_ok(
        "POST",
        url,
        "/api/folders",
        json!({"uid": uid, "title": title}),
    )
    .await
    .json()
}

/// `GET /api/search{query}` as the admin through `url`.
async fn search(url: &str, query: &str) -> Vec<Value> {
    let response = as_admin_ok("GET", url, &format!("/api/search{query}"), Value::Null).await;
    response.json().as_array().expect("a list").clone()
}

fn titles(hits: &[Value]) -> Vec<&str> {
    hits.iter()
        .map(|hit| hit["title"].as_str().expect("a title"))
        .collect()
}

tandem_http::cluster_tests!(
    a_dashboard_saved_anywhere_is_read_everywhere_in_grafanas_shape,
    2,
    |cluster: TestCluster| async move {
        let (a, b) = (cluster.url(0), cluster.url(1));
        let created = folder(&a, "ops", "Ops Team").await;
        assert_eq!(created["uid"], "ops");
        assert_eq!(created["title"], "Ops Team");
        assert_eq!(created["version"], 1);
        assert_eq!(created["url"], "/dashboards/f/ops/ops-team");

        let saved = save_ok(
            &b,
            json!({
                "dashboard": {"title": "Node Exporter", "tags": ["linux", "prod"], "panels": [{"id": 7}], "customField": {"kept": true}},
                "folderUid": "ops",
                "message": "first",
                "clientOnlyField": 1,
            }),
        )
        .await;
        assert_eq!(saved["status"], "success");
        assert_eq!(saved["version"], 1);
        assert_eq!(saved["slug"], "node-exporter");
        assert_eq!(saved["folderUid"], "ops");
        let uid = saved["uid"].as_str().expect("a generated uid").to_owned();
        assert!((9..=40).contains(&uid.len()), "{uid}");
        assert_eq!(saved["url"], format!("/d/{uid}/node-exporter"));

        let read = as_admin_ok(
            "GET",
            &a,
            &format!("/api/dashboards/uid/{uid}"),
            Value::Null,
        )
        .await
        .json();
        let dashboard = &read["dashboard"];
        assert_eq!(dashboard["id"], saved["id"]);
        assert_eq!(dashboard["uid"], uid.as_str());
        assert_eq!(dashboard["version"], 1);
        assert_eq!(dashboard["customField"], json!({"kept": true}));
        assert_eq!(dashboard["panels"], json!([{"id": 7}]));
        let meta = &read["meta"];
        for key in META_KEYS {
            assert!(meta.get(key).is_some(), "meta lacks {key}: {meta}");
        }
        assert_eq!(meta["type"], "db");
        assert_eq!(meta["canSave"], true);
        assert_eq!(meta["folderUid"], "ops");
        assert_eq!(meta["folderTitle"], "Ops Team");
        assert_eq!(meta["folderId"], created["id"]);
        assert_eq!(meta["folderUrl"], "/dashboards/f/ops/ops-team");
        assert_eq!(meta["createdBy"], "admin");
        assert_eq!(meta["provisioned"], false);
        assert_eq!(meta["version"], 1);

        // An update with the stored version moves it by one, on either instance.
        let mut body = json!({"dashboard": dashboard.clone(), "folderUid": "ops"});
        body["dashboard"]["title"] = json!("Node Exporter Full");
        assert_eq!(save_ok(&a, body.clone()).await["version"], 2);
        // The same body again is stale: 412 with Grafana's status and message.
        let stale = save(&b, body.clone()).await;
        check(
            &stale,
            412,
            "The dashboard has been changed by someone else",
        );
        assert_eq!(stale.json()["status"], "version-mismatch");
        body["overwrite"] = json!(true);
        assert_eq!(save_ok(&b, body).await["version"], 3);

        let versions = as_admin_ok(
            "GET",
            &a,
            &format!("/api/dashboards/uid/{uid}/versions"),
            Value::Null,
        )
        .await
        .json();
        let list = versions["versions"].as_array().expect("versions");
        assert_eq!(
            list.iter()
                .map(|v| v["version"].as_i64().unwrap())
                .collect::<Vec<_>>(),
            [3, 2, 1]
        );
        assert_eq!(list[2]["message"], "first");
        assert_eq!(list[0]["parentVersion"], 2);
        assert_eq!(list[0]["createdBy"], "admin");
        assert_eq!(list[0]["uid"], uid.as_str());
        assert!(versions["continueToken"].is_string(), "{versions}");
        let by_id = as_admin_ok(
            "GET",
            &b,
            &format!("/api/dashboards/id/{}/versions", saved["id"]),
            Value::Null,
        )
        .await
        .json();
        assert_eq!(by_id.as_array().map(Vec::len), Some(3));
        assert_eq!(by_id[0]["dashboardId"], saved["id"]);

        let first = as_admin_ok(
            "GET",
            &b,
            &format!("/api/dashboards/uid/{uid}/versions/1"),
            Value::Null,
        )
        .await
        .json();
        assert_eq!(first["data"]["title"], "Node Exporter");
        let missing = as_admin(
            "GET",
            &b,
            &format!("/api/dashboards/uid/{uid}/versions/99"),
            Value::Null,
        )
        .await;
        assert_eq!(missing.status, 404, "{}", missing.text());

        let restored = as_admin_ok(
            "POST",
            &a,
            &format!("/api/dashboards/uid/{uid}/restore"),
            json!({"version": 1}),
        )
        .await
        .json();
        assert_eq!(restored["version"], 4);
        let now = as_admin_ok(
            "GET",
            &b,
            &format!("/api/dashboards/uid/{uid}"),
            Value::Null,
        )
        .await
        .json();
        assert_eq!(now["dashboard"]["title"], "Node Exporter");
        assert_eq!(now["dashboard"]["version"], 4);
        let newest = as_admin_ok(
            "GET",
            &b,
            &format!("/api/dashboards/uid/{uid}/versions?limit=1"),
            Value::Null,
        )
        .await
        .json();
        assert_eq!(newest["versions"][0]["restoredFrom"], 1);

        let tags = as_admin_ok("GET", &b, "/api/dashboards/tags", Value::Null)
            .await
            .json();
        assert_eq!(
            tags,
            json!([{"term": "linux", "count": 1}, {"term": "prod", "count": 1}])
        );

        let deleted = as_admin_ok(
            "DELETE",
            &b,
            &format!("/api/dashboards/uid/{uid}"),
            Value::Null,
        )
        .await
        .json();
        assert_eq!(deleted["message"], "Dashboard Node Exporter deleted");
        assert_eq!(deleted["uid"], uid.as_str());
        for url in [&a, &b] {
            let gone = as_admin(
                "GET",
                url,
                &format!("/api/dashboards/uid/{uid}"),
                Value::Null,
            )
            .await;
            check(&gone, 404, "Dashboard not found");
        }
    }
);

tandem_http::cluster_tests!(
    of_thirty_racing_saves_of_one_version_exactly_one_wins,
    3,
    |cluster: TestCluster| async move {
        let urls = cluster.urls();
        let saved = save_ok(
            &urls[0],
            json!({"dashboard": {"title": "Raced", "uid": "raced"}}),
        )
        .await;
        assert_eq!(saved["version"], 1);

        let mut racers = Vec::new();
        for i in 0..30 {
            let url = urls[i % urls.len()].clone();
            racers.push(tokio::spawn(async move {
                let body = json!({"dashboard": {"title": format!("Raced {i}"), "uid": "raced", "version": 1}});
                save(&url, body).await
            }));
        }
        let mut won = 0;
        let mut lost = 0;
        for racer in racers {
            let response = racer.await.expect("racer");
            match response.status {
                200 => won += 1,
                412 => {
                    assert_eq!(response.json()["status"], "version-mismatch");
                    lost += 1;
                }
                other => panic!("unexpected {other}: {}", response.text()),
            }
        }
        assert_eq!((won, lost), (1, 29));
        let versions = as_admin_ok(
            "GET",
            &urls[1],
            "/api/dashboards/uid/raced/versions",
            Value::Null,
        )
        .await
        .json();
        let numbers: Vec<i64> = versions["versions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["version"].as_i64().unwrap())
            .collect();
        assert_eq!(
            numbers,
            [2, 1],
            "exactly one version row per acknowledged save"
        );

        // Overwrites all win, each with its own version and its own version row.
        let mut writers = Vec::new();
        for i in 0..24 {
            let url = urls[i % urls.len()].clone();
            writers.push(tokio::spawn(async move {
                let body = json!({"dashboard": {"title": format!("Forced {i}"), "uid": "raced", "version": 1}, "overwrite": true});
                save(&url, body).await
            }));
        }
        let mut seen = BTreeSet::new();
        for writer in writers {
            let response = writer.await.expect("writer");
            assert_eq!(response.status, 200, "{}", response.text());
            seen.insert(response.json()["version"].as_i64().unwrap());
        }
        assert_eq!(seen, (3..=26).collect::<BTreeSet<_>>());
        let versions = as_admin_ok(
            "GET",
            &urls[2],
            "/api/dashboards/uid/raced/versions?limit=100",
            Value::Null,
        )
        .await
        .json();
        assert_eq!(versions["versions"].as_array().map(Vec::len), Some(26));
    }
);

tandem_http::cluster_tests!(
    search_filters_orders_and_pages_like_grafana,
    2,
    |cluster: TestCluster| async move {
        let (a, b) = (cluster.url(0), cluster.url(1));
        folder(&a, "zeta", "zeta folder").await;
        folder(&a, "alpha", "Alpha folder").await;
        for (uid, title, folder, tags) in [
            ("d1", "beta board", "alpha", json!(["a", "b"])),
            ("d2", "Alpha Board", "", json!(["a"])),
            ("d3", "GAMMA board", "zeta", json!(["b"])),
            ("d4", "delta", "", json!([])),
        ] {
            save_ok(
                &b,
                json!({"dashboard": {"uid": uid, "title": title, "tags": tags}, "folderUid": folder}),
            )
            .await;
        }

        let all = search(&a, "").await;
        assert_eq!(
            titles(&all),
            [
                "Alpha folder",
                "zeta folder",
                "Alpha Board",
                "beta board",
                "delta",
                "GAMMA board"
            ]
        );
        assert_eq!(all[0]["type"], "dash-folder");
        assert_eq!(all[0]["url"], "/dashboards/f/alpha/alpha-folder");
        let root = &all[2];
        assert_eq!(root["type"], "dash-db");
        assert_eq!(root["uri"], "db/alpha-board");
        assert_eq!(root["url"], "/d/d2/alpha-board");
        assert_eq!(root["isStarred"], false);
        for key in ["folderId", "folderUid", "folderTitle", "folderUrl"] {
            assert!(root.get(key).is_none(), "a root item has no {key}: {root}");
        }
        let nested = &all[3];
        assert_eq!(nested["folderUid"], "alpha");
        assert_eq!(nested["folderTitle"], "Alpha folder");
        assert_eq!(nested["folderUrl"], "/dashboards/f/alpha/alpha-folder");
        assert!(nested["folderId"].is_i64());

        assert_eq!(
            titles(&search(&b, "?query=BOARD").await),
            ["Alpha Board", "beta board", "GAMMA board"]
        );
        assert_eq!(
            titles(&search(&b, "?tag=a").await),
            ["Alpha Board", "beta board"]
        );
        assert_eq!(titles(&search(&b, "?tag=a&tag=b").await), ["beta board"]);
        assert_eq!(
            titles(&search(&b, "?type=dash-folder").await),
            ["Alpha folder", "zeta folder"]
        );
        assert_eq!(
            titles(&search(&b, "?type=dash-db&query=a").await),
            ["Alpha Board", "beta board", "delta", "GAMMA board"]
        );
        assert_eq!(
            titles(&search(&b, "?folderUIDs=zeta").await),
            ["GAMMA board"]
        );
        assert_eq!(
            titles(&search(&b, "?folderUIDs=zeta&folderUIDs=alpha&type=dash-db").await),
            ["beta board", "GAMMA board"]
        );
        assert_eq!(
            titles(&search(&b, "?dashboardUIDs=d4&dashboardUIDs=d1").await),
            ["beta board", "delta"]
        );
        assert_eq!(
            titles(&search(&b, "/?query=delta").await),
            ["delta"],
            "a trailing slash works"
        );

        as_admin_ok("POST", &a, "/api/user/stars/dashboard/uid/d3", Value::Null).await;
        let starred = search(&b, "?starred=true").await;
        assert_eq!(titles(&starred), ["GAMMA board"]);
        assert_eq!(starred[0]["isStarred"], true);
        let stars = as_admin_ok("GET", &b, "/api/user/stars", Value::Null)
            .await
            .json();
        assert_eq!(stars, json!(["d3"]));
        as_admin_ok(
            "DELETE",
            &b,
            "/api/user/stars/dashboard/uid/d3",
            Value::Null,
        )
        .await;
        assert!(search(&a, "?starred=true").await.is_empty());

        assert_eq!(
            titles(&search(&a, "?limit=4&page=1").await),
            ["Alpha folder", "zeta folder", "Alpha Board", "beta board"]
        );
        assert_eq!(
            titles(&search(&a, "?limit=4&page=2").await),
            ["delta", "GAMMA board"]
        );
        assert!(
            search(&a, "?limit=4&page=3").await.is_empty(),
            "[] past the last page"
        );
        let bad = as_admin("GET", &a, "/api/search?limit=many", Value::Null).await;
        assert_eq!(bad.status, 400, "{}", bad.text());
    }
);

tandem_http::cluster_tests!(
    folders_are_versioned_and_take_their_dashboards_with_them,
    2,
    |cluster: TestCluster| async move {
        let (a, b) = (cluster.url(0), cluster.url(1));
        let created = folder(&a, "team-a", "Team A").await;
        let duplicate = as_admin(
            "POST",
            &b,
            "/api/folders",
            json!({"uid": "team-a", "title": "Again"}),
        )
        .await;
        assert_eq!(duplicate.status, 409, "{}", duplicate.text());
        let by_id = as_admin_ok(
            "GET",
            &b,
            &format!("/api/folders/id/{}", created["id"]),
            Value::Null,
        )
        .await
        .json();
        assert_eq!(by_id["uid"], "team-a");
        for key in [
            "id",
            "uid",
            "title",
            "url",
            "hasAcl",
            "canSave",
            "canEdit",
            "canAdmin",
            "canDelete",
            "createdBy",
            "created",
            "updatedBy",
            "updated",
            "version",
        ] {
            assert!(by_id.get(key).is_some(), "folder lacks {key}: {by_id}");
        }

        let renamed = as_admin_ok(
            "PUT",
            &b,
            "/api/folders/team-a",
            json!({"title": "Team A2", "version": 1}),
        )
        .await
        .json();
        assert_eq!(renamed["version"], 2);
        let stale = as_admin(
            "PUT",
            &a,
            "/api/folders/team-a",
            json!({"title": "Team A3", "version": 1}),
        )
        .await;
        assert_eq!(stale.status, 412, "{}", stale.text());
        assert_eq!(stale.json()["status"], "version-mismatch");
        let list = as_admin_ok("GET", &a, "/api/folders", Value::Null)
            .await
            .json();
        assert_eq!(
            list,
            json!([{"id": created["id"], "uid": "team-a", "title": "Team A2"}])
        );

        save_ok(
            &a,
            json!({"dashboard": {"uid": "inside", "title": "Inside"}, "folderId": created["id"]}),
        )
        .await;
        let deleted = as_admin_ok("DELETE", &b, "/api/folders/team-a", Value::Null)
            .await
            .json();
        assert_eq!(deleted["message"], "Folder deleted");
        assert_eq!(deleted["id"], created["id"]);
        for url in [&a, &b] {
            let gone = as_admin("GET", url, "/api/dashboards/uid/inside", Value::Null).await;
            check(&gone, 404, "Dashboard not found");
            let folder_gone = as_admin("GET", url, "/api/folders/team-a", Value::Null).await;
            assert_eq!(folder_gone.status, 404, "{}", folder_gone.text());
        }
    }
);

tandem_http::cluster_tests!(
    viewers_read_and_editors_write,
    2,
    |cluster: TestCluster| async move {
        let (a, b) = (cluster.url(0), cluster.url(1));
        let viewer_id = create_user(&a, "vera", "vera-pass").await;
        let viewer = basic("vera", "vera-pass");
        save_ok(
            &a,
            json!({"dashboard": {"uid": "shared", "title": "Shared"}}),
        )
        .await;
        folder(&a, "f", "F").await;

        let read = send(
            "GET",
            &b,
            "/api/dashboards/uid/shared",
            &viewer,
            Value::Null,
        )
        .await;
        assert_eq!(read.status, 200, "{}", read.text());
        assert_eq!(read.json()["meta"]["canSave"], false);
        assert_eq!(read.json()["meta"]["canEdit"], false);
        assert_eq!(
            send("GET", &b, "/api/search", &viewer, Value::Null)
                .await
                .status,
            200
        );
        for (method, path, body) in [
            (
                "POST",
                "/api/dashboards/db",
                json!({"dashboard": {"title": "Mine"}}),
            ),
            ("DELETE", "/api/dashboards/uid/shared", Value::Null),
            (
                "POST",
                "/api/dashboards/uid/shared/restore",
                json!({"version": 1}),
            ),
            ("POST", "/api/folders", json!({"title": "Mine"})),
            (
                "PUT",
                "/api/folders/f",
                json!({"title": "Mine", "overwrite": true}),
            ),
            ("DELETE", "/api/folders/f", Value::Null),
        ] {
            // Grafana 12's words: the action the folder or dashboard permissions lack.
            let denied = send(method, &b, path, &viewer, body).await;
            assert_eq!(denied.status, 403, "{method} {path}: {}", denied.text());
            assert!(
                denied.json()["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("Permissions needed: ")),
                "{method} {path}: {}",
                denied.text()
            );
        }
        assert_eq!(
            search(&a, "?query=mine").await.len(),
            0,
            "a refused write wrote nothing"
        );

        as_admin_ok(
            "PATCH",
            &a,
            &format!("/api/org/users/{viewer_id}"),
            json!({"role": "Editor"}),
        )
        .await;
        let saved = send(
            "POST",
            &b,
            "/api/dashboards/db",
            &viewer,
            json!({"dashboard": {"title": "Mine"}}),
        )
        .await;
        assert_eq!(saved.status, 200, "{}", saved.text());
        let unauthenticated = http::request("GET", &format!("{a}/api/search"), &[], "")
            .await
            .unwrap();
        assert_eq!(unauthenticated.status, 401);
    }
);

tandem_http::cluster_tests!(
    bad_input_is_a_4xx_json_error_and_writes_nothing,
    1,
    |_, settings| settings.server.max_request_body_bytes = 256 * 1024,
    |cluster: TestCluster| async move {
        let url = cluster.url(0);
        save_ok(&url, json!({"dashboard": {"uid": "keep", "title": "Keep"}})).await;
        let long_title = "t".repeat(5001);
        let long_uid = "u".repeat(41);
        let cases: Vec<(String, u16, Option<&str>)> = vec![
            ("{not json".to_owned(), 400, None),
            (json!({"dashboard": "text"}).to_string(), 400, None),
            (json!({"dashboard": [1, 2]}).to_string(), 400, None),
            (json!({"nodashboard": {}}).to_string(), 400, None),
            (
                json!({"dashboard": {"title": "  "}}).to_string(),
                400,
                Some("empty-name"),
            ),
            (
                json!({"dashboard": {"title": long_title}}).to_string(),
                400,
                None,
            ),
            (
                json!({"dashboard": {"title": "x", "uid": "bad uid!"}}).to_string(),
                400,
                None,
            ),
            (
                json!({"dashboard": {"title": "x", "uid": long_uid}}).to_string(),
                400,
                None,
            ),
            (
                json!({"dashboard": {"title": "x"}, "folderUid": "nope"}).to_string(),
                400,
                None,
            ),
            (
                json!({"dashboard": {"title": "x"}, "folderId": 999_999}).to_string(),
                400,
                None,
            ),
            (
                json!({"dashboard": {"title": "x", "id": 999_999}}).to_string(),
                404,
                Some("not-found"),
            ),
            (json!({"dashboard": {"title": 5}}).to_string(), 400, None),
            (
                format!(
                    "{{\"dashboard\":{{\"title\":\"big\",\"pad\":\"{}\"}}}}",
                    "x".repeat(300 * 1024)
                ),
                413,
                None,
            ),
            (
                format!(
                    "{{\"dashboard\":{}{}}}",
                    "[".repeat(100_000),
                    "]".repeat(100_000)
                ),
                400,
                None,
            ),
        ];
        for (body, status, grafana_status) in cases {
            let response = http::request(
                "POST",
                &format!("{url}/api/dashboards/db"),
                &[
                    ("authorization", ADMIN.1),
                    ("content-type", "application/json"),
                ],
                body.clone(),
            )
            .await
            .expect("a response");
            let shown = &body[..body.len().min(80)];
            assert_eq!(response.status, status, "{shown}: {}", response.text());
            assert!(
                response.json()["message"]
                    .as_str()
                    .is_some_and(|m| !m.is_empty()),
                "{shown}: a JSON message, got {}",
                response.text()
            );
            if let Some(expected) = grafana_status {
                assert_eq!(response.json()["status"], expected, "{shown}");
            }
        }
        assert_eq!(
            http::get(&format!("{url}/api/health")).await.status,
            200,
            "still up"
        );
        assert_eq!(
            titles(&search(&url, "").await),
            ["Keep"],
            "nothing else was written"
        );
        let versions = as_admin_ok(
            "GET",
            &url,
            "/api/dashboards/uid/keep/versions",
            Value::Null,
        )
        .await
        .json();
        assert_eq!(versions["versions"].as_array().map(Vec::len), Some(1));
        let unknown = as_admin(
            "POST",
            &url,
            "/api/dashboards/uid/nope/restore",
            json!({"version": 1}),
        )
        .await;
        assert_eq!(unknown.status, 404, "{}", unknown.text());
        let bad_folder_uid = as_admin(
            "POST",
            &url,
            "/api/folders",
            json!({"uid": "no way", "title": "x"}),
        )
        .await;
        assert_eq!(bad_folder_uid.status, 400, "{}", bad_folder_uid.text());
        // Grafana 12.1's words, for a blank title and for none at all.
        for body in [json!({"title": " "}), json!({"uid": "untitled"})] {
            let empty_folder = as_admin("POST", &url, "/api/folders", body).await;
            assert_eq!(empty_folder.status, 400, "{}", empty_folder.text());
            assert_eq!(
                empty_folder.json()["message"],
                "folder title cannot be empty",
                "{}",
                empty_folder.text()
            );
        }
        assert!(search(&url, "?type=dash-folder").await.is_empty());
    }
);

tandem_http::cluster_tests!(
    every_committed_change_is_announced_once,
    2,
    |cluster: TestCluster| async move {
        let (a, b) = (cluster.url(0), cluster.url(1));
        let mut on_a = cluster.server(0).dashboard_events();
        let mut on_b = cluster.server(1).dashboard_events();
        save_ok(&a, json!({"dashboard": {"uid": "ev", "title": "Events"}})).await;
        save_ok(
            &a,
            json!({"dashboard": {"uid": "ev", "title": "Events", "version": 1}}),
        )
        .await;
        let stale = save(
            &a,
            json!({"dashboard": {"uid": "ev", "title": "Events", "version": 1}}),
        )
        .await;
        assert_eq!(stale.status, 412);
        as_admin_ok("DELETE", &a, "/api/dashboards/uid/ev", Value::Null).await;

        let mut seen = Vec::new();
        while seen.len() < 3 {
            let event = tokio::time::timeout(Duration::from_secs(5), on_a.recv())
                .await
                .expect("an event within 5 s")
                .expect("an open channel");
            seen.push((
                event.org,
                event.uid.into_string(),
                event.action,
                event.version.0,
            ));
        }
        assert_eq!(
            seen,
            [
                (OrgId(1), "ev".to_owned(), DashboardAction::Saved, 1),
                (OrgId(1), "ev".to_owned(), DashboardAction::Saved, 2),
                (OrgId(1), "ev".to_owned(), DashboardAction::Deleted, 2),
            ]
        );
        // Nothing more: the refused save announced nothing. The instance that did not
        // commit the changes announced none of them (Live fans them out across instances).
        as_admin_ok(
            "POST",
            &b,
            "/api/folders",
            json!({"uid": "marker", "title": "Marker"}),
        )
        .await;
        save_ok(&b, json!({"dashboard": {"uid": "last", "title": "Last"}})).await;
        let next = tokio::time::timeout(Duration::from_secs(5), on_b.recv())
            .await
            .expect("an event on B")
            .expect("an open channel");
        assert_eq!(next.uid.as_str(), "last");
        assert!(on_a.try_recv().is_err(), "no further event on A");
    }
);

tandem_http::cluster_tests!(
    provisioned_dashboards_appear_once_and_refuse_saves,
    2,
    |index, settings| {
        let dir = provisioning_dir();
        if index == 0 {
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("a provisioning directory");
            std::fs::write(
                dir.join("node.json"),
                json!({"uid": "prov-node", "title": "Provisioned Node"}).to_string(),
            )
            .expect("a dashboard file");
        }
        settings.provisioning.providers = vec![DashboardProvider {
            name: "files".to_owned(),
            org_id: OrgId(1),
            folder: "From Files".to_owned(),
            folder_uid: None,
            disable_deletion: false,
            allow_ui_updates: false,
            update_interval: Duration::from_secs(3600),
            path: dir,
            folders_from_files_structure: false,
        }];
    },
    |cluster: TestCluster| async move {
        let (a, b) = (cluster.url(0), cluster.url(1));
        let read = as_admin_ok("GET", &b, "/api/dashboards/uid/prov-node", Value::Null)
            .await
            .json();
        assert_eq!(read["meta"]["provisioned"], true);
        assert_eq!(read["meta"]["folderTitle"], "From Files");
        assert!(
            read["meta"]["provisionedExternalId"]
                .as_str()
                .is_some_and(|id| id.ends_with("node.json"))
        );
        assert_eq!(
            read["dashboard"]["version"], 1,
            "two instances provisioning: one version"
        );
        assert_eq!(
            titles(&search(&a, "?type=dash-folder").await),
            ["From Files"]
        );
        let refused = save(&a, json!({"dashboard": read["dashboard"].clone()})).await;
        check(&refused, 400, "Cannot save provisioned dashboard");
        let _ = std::fs::remove_dir_all(provisioning_dir());
    }
);

/// The provisioning directory of one backend's run of the test: `cargo test` runs the
/// three backends at once in one process, each on its own thread named after the test,
/// so the name has the process id and the thread name.
fn provisioning_dir() -> std::path::PathBuf {
    let thread = std::thread::current();
    let name = thread.name().unwrap_or("main").replace("::", "-");
    std::env::temp_dir().join(format!("tandem-provisioning-{}-{name}", std::process::id()))
}
