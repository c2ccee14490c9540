//! Nested folders across two instances: `POST /api/folders/:uid/move` (a cycle or nesting
//! past Grafana's depth is a 400 that moves nothing), `parentUid` and `parents` in the
//! answers, permissions inherited from wherever a folder now is, and two instances moving
//! two folders into each other at once never making a cycle.

use serde_json::{Value, json};
use tandem_http::testkit::TestCluster;

use crate::common::{as_admin, as_admin_ok, basic, create_user, send};

async fn folder(url: &str, uid: &str, parent: &str) {
    as_admin_ok(
        "POST",
        url,
        "/api/folders",
        json!({"uid": uid, "title": uid.to_uppercase(), "parentUid": parent}),
    )
    .await;
}

async fn parent_of(url: &str, uid: &str) -> Value {
    as_admin_ok("GET", url, &format!("/api/folders/{uid}"), Value::Null)
        .await
        .json()["parentUid"]
        .clone()
}

tandem_http::cluster_tests!(
    folders_move_on_one_instance_and_are_read_moved_on_the_other,
    2,
    |cluster: TestCluster| async move {
        let (a, b) = (cluster.url(0), cluster.url(1));
        folder(&a, "a", "").await;
        folder(&a, "b", "a").await;
        folder(&a, "c", "").await;
        let moved = as_admin("POST", &a, "/api/folders/c/move", json!({"parentUid": "b"})).await;
        assert_eq!(moved.status, 200, "{}", moved.text());
        assert_eq!(moved.json()["version"], 2);
        let read = as_admin_ok("GET", &b, "/api/folders/c", Value::Null)
            .await
            .json();
        assert_eq!(read["parentUid"], "b");
        let parents: Vec<&str> = read["parents"]
            .as_array()
            .expect("parents")
            .iter()
            .map(|p| p["uid"].as_str().unwrap_or(""))
            .collect();
        assert_eq!(parents, ["a", "b"], "from the root down: {read}");
        let children = as_admin_ok(
            "GET",
            &b,
            "/api/search?folderUIDs=b&type=dash-folder",
            Value::Null,
        )
        .await
        .json();
        assert_eq!(children[0]["uid"], "c", "{children}");

        // Search by the older numeric ids.
        let saved = as_admin_ok(
            "POST",
            &a,
            "/api/dashboards/db",
            json!({"dashboard": {"uid": "in-b", "title": "In B"}, "folderUid": "b"}),
        )
        .await
        .json();
        let id = saved["id"].as_i64().expect("an id");
        let hits = as_admin_ok(
            "GET",
            &b,
            &format!("/api/search?dashboardIds={id}"),
            Value::Null,
        )
        .await
        .json();
        assert_eq!(hits.as_array().map(Vec::len), Some(1), "{hits}");
        assert_eq!(hits[0]["uid"], "in-b");
        let none = as_admin_ok("GET", &b, "/api/search?dashboardIds=999999", Value::Null)
            .await
            .json();
        assert_eq!(none, json!([]));
        let bad = as_admin("GET", &b, "/api/search?dashboardIds=x", Value::Null).await;
        assert_eq!(bad.status, 400, "{}", bad.text());

        // Refused, and nothing moves.
        for (uid, parent, why) in [
            ("a", "c", "into its own subfolder"),
            ("a", "a", "into itself"),
        ] {
            let refused = as_admin(
                "POST",
                &b,
                &format!("/api/folders/{uid}/move"),
                json!({"parentUid": parent}),
            )
            .await;
            assert_eq!(refused.status, 400, "{why}: {}", refused.text());
        }
        folder(&a, "d", "").await;
        folder(&a, "e", "d").await;
        let deep = as_admin("POST", &b, "/api/folders/d/move", json!({"parentUid": "c"})).await;
        assert_eq!(deep.status, 400, "a-b-c-d-e is five deep: {}", deep.text());
        assert!(
            deep.json()["message"]
                .as_str()
                .is_some_and(|m| m.contains("max depth"))
        );
        let missing = as_admin(
            "POST",
            &b,
            "/api/folders/d/move",
            json!({"parentUid": "nope"}),
        )
        .await;
        assert_eq!(missing.status, 400, "{}", missing.text());
        let unknown = as_admin(
            "POST",
            &b,
            "/api/folders/nope/move",
            json!({"parentUid": ""}),
        )
        .await;
        assert_eq!(unknown.status, 404, "{}", unknown.text());
        assert_eq!(parent_of(&a, "a").await, Value::Null);
        assert_eq!(parent_of(&a, "d").await, Value::Null);

        // Four deep is allowed.
        let ok = as_admin("POST", &b, "/api/folders/e/move", json!({"parentUid": "c"})).await;
        assert_eq!(ok.status, 200, "{}", ok.text());
        assert_eq!(parent_of(&a, "e").await, "c");

        // Inheritance follows the move: `e` has no role items of its own (it was made
        // inside `d`), so at the root a Viewer no longer sees it.
        create_user(&a, "vic", "vic password").await;
        let vic = basic("vic", "vic password");
        let seen = send("GET", &b, "/api/folders/e", &vic, Value::Null).await;
        assert_eq!(seen.status, 200, "inherited from a: {}", seen.text());
        let root = as_admin("POST", &a, "/api/folders/e/move", json!({})).await;
        assert_eq!(root.status, 200, "{}", root.text());
        assert!(root.json().get("parentUid").is_none(), "{}", root.text());
        let hidden = send("GET", &b, "/api/folders/e", &vic, Value::Null).await;
        assert_eq!(hidden.status, 403, "{}", hidden.text());
        let denied = send(
            "POST",
            &b,
            "/api/folders/c/move",
            &vic,
            json!({"parentUid": ""}),
        )
        .await;
        assert_eq!(
            denied.status,
            403,
            "a Viewer moves nothing: {}",
            denied.text()
        );
    }
);

tandem_http::cluster_tests!(
    two_instances_moving_two_folders_into_each_other_never_make_a_cycle,
    2,
    |cluster: TestCluster| async move {
        let (a, b) = (cluster.url(0), cluster.url(1));
        for round in 0..5 {
            let (x, y) = (format!("x{round}"), format!("y{round}"));
            folder(&a, &x, "").await;
            folder(&a, &y, "").await;
            let (path_x, path_y) = (
                format!("/api/folders/{x}/move"),
                format!("/api/folders/{y}/move"),
            );
            let (one, two) = tokio::join!(
                as_admin("POST", &a, &path_x, json!({"parentUid": y})),
                as_admin("POST", &b, &path_y, json!({"parentUid": x})),
            );
            let won = [one.status, two.status]
                .iter()
                .filter(|s| **s == 200)
                .count();
            assert_eq!(won, 1, "round {round}: {} / {}", one.text(), two.text());
            let (px, py) = (parent_of(&a, &x).await, parent_of(&a, &y).await);
            assert!(
                px.is_null() || py.is_null(),
                "round {round}: a cycle: {x} in {px}, {y} in {py}"
            );
        }
    }
);

tandem_http::cluster_tests!(
    folders_and_dashboards_created_at_once_on_two_instances_draw_distinct_ids,
    2,
    |cluster: TestCluster| async move {
        let (a, b) = (cluster.url(0), cluster.url(1));
        folder(&a, "top", "").await;
        // Folders and dashboards created at once through both instances, interleaved.
        let creations = (0..16).map(|i| {
            let url = if i % 2 == 0 { a.clone() } else { b.clone() };
            async move {
                let created = if i % 4 < 2 {
                    let body = json!({"uid": format!("sub{i}"), "title": format!("Sub {i}"), "parentUid": "top"});
                    as_admin_ok("POST", &url, "/api/folders", body).await
                } else {
                    let body = json!({"dashboard": {"uid": format!("dash{i}"), "title": format!("Dash {i}")},
                                      "folderUid": "top"});
                    as_admin_ok("POST", &url, "/api/dashboards/db", body).await
                };
                (i % 4 < 2, created.json()["id"].as_i64().expect("an id"))
            }
        });
        let created: Vec<(bool, i64)> = futures_util::future::join_all(creations).await;
        let mut ids: Vec<i64> = created.iter().map(|(_, id)| *id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(
            ids.len(),
            16,
            "one sequence: no id names a folder and a dashboard: {created:?}"
        );
        // An id names one thing: a dashboard's id is no folder's.
        for (is_folder, id) in &created {
            let as_folder =
                as_admin("GET", &b, &format!("/api/folders/id/{id}"), Value::Null).await;
            assert_eq!(
                as_folder.status == 200,
                *is_folder,
                "GET /api/folders/id/{id}: {}",
                as_folder.text()
            );
        }
        // Grafana 12's `type=dash-folder` with `folderIds`: the child folders of a folder.
        let top = as_admin_ok("GET", &a, "/api/folders/top", Value::Null)
            .await
            .json()["id"]
            .as_i64()
            .expect("top's id");
        let children = as_admin_ok(
            "GET",
            &b,
            &format!("/api/search?type=dash-folder&folderIds={top}"),
            Value::Null,
        )
        .await
        .json();
        let mut found: Vec<i64> = children
            .as_array()
            .expect("hits")
            .iter()
            .map(|hit| {
                assert_eq!(hit["type"], "dash-folder", "{hit}");
                hit["id"].as_i64().expect("an id")
            })
            .collect();
        found.sort_unstable();
        let mut folders: Vec<i64> = created
            .iter()
            .filter(|(f, _)| *f)
            .map(|(_, id)| *id)
            .collect();
        folders.sort_unstable();
        assert_eq!(found, folders);
        cluster.shutdown().await;
    }
);
