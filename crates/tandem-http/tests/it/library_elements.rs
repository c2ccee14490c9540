//! Library panels (`/api/library-elements…`) on two instances of one database: made
//! through one and read, searched and used through the other; a dashboard save records
//! its connections; a connected element cannot be deleted; a stale version is refused;
//! folder permissions decide who reads and writes; bad input writes nothing.

use serde_json::{Value, json};
use tandem_http::testkit::TestCluster;
use tandem_http::testkit::http;
use tandem_storage::sea_orm::{ConnectionTrait, Statement};

use crate::common::{as_admin, as_admin_ok, as_user, check, create_user};

/// The status of a request as user `login`.
async fn status(login: &str, method: &str, url: &str, path: &str, body: Value) -> u16 {
    as_user(login, method, url, path, body).await.status
}

async fn folder(url: &str, uid: &str, title: &str) -> i64 {
    as_admin_ok(
        "POST",
        url,
        "/api/folders",
        json!({"uid": uid, "title": title}),
    )
    .await
    .json()["id"]
        .as_i64()
        .expect("a folder id")
}

fn element(folder_uid: &str, name: &str, uid: &str) -> Value {
    json!({"folderUid": folder_uid, "name": name, "uid": uid, "kind": 1,
           "model": {"type": "timeseries", "title": name, "description": "CPU of every host",
                     "libraryPanel": {"uid": uid, "name": name}}})
}

/// A dashboard using library panel `lib` inside a collapsed row.
fn board(uid: &str, version: i64, lib: Option<&str>) -> Value {
    let row_panels = match lib {
        Some(lib) => json!([{"id": 2, "libraryPanel": {"uid": lib, "name": "CPU"}}]),
        None => json!([]),
    };
    json!({"dashboard": {"uid": uid, "title": format!("Board {uid}"), "version": version,
        "panels": [{"id": 1, "type": "text"},
                   {"id": 3, "type": "row", "collapsed": true, "panels": row_panels},
                   {"id": 4, "libraryPanel": {"uid": "never-made"}}]},
        "overwrite": true})
}

async fn count(cluster: &TestCluster, table: &str) -> i64 {
    let db = cluster.server(0).database();
    let conn = db.connection();
    let row = conn
        .query_one_raw(Statement::from_string(
            conn.get_database_backend(),
            format!("SELECT COUNT(*) AS n FROM {table}"),
        ))
        .await
        .expect("count")
        .expect("a row");
    row.try_get("", "n").expect("n")
}

tandem_http::cluster_tests!(
    library_elements_are_shared_and_track_their_dashboards,
    2,
    |cluster: TestCluster| async move {
        let (a, b) = (cluster.url(0), cluster.url(1));
        let folder_id = folder(&a, "libs", "Shared panels").await;
        let made = as_admin_ok(
            "POST",
            &a,
            "/api/library-elements",
            element("libs", "CPU", "lib-cpu"),
        )
        .await
        .json();
        let made = &made["result"];
        for (key, expected) in [
            ("uid", json!("lib-cpu")),
            ("name", json!("CPU")),
            ("kind", json!(1)),
            ("type", json!("timeseries")),
            ("description", json!("CPU of every host")),
            ("version", json!(1)),
            ("folderUid", json!("libs")),
            ("folderId", json!(folder_id)),
            ("orgId", json!(1)),
        ] {
            assert_eq!(made[key], expected, "{key}: {made}");
        }
        assert_eq!(made["model"]["title"], "CPU");
        assert_eq!(made["meta"]["folderName"], "Shared panels");
        assert_eq!(made["meta"]["folderUid"], "libs");
        assert_eq!(made["meta"]["connectedDashboards"], 0);
        assert_eq!(made["meta"]["createdBy"]["name"], "admin");
        assert!(made["meta"]["createdBy"]["id"].as_i64().is_some());
        assert!(made["meta"]["updatedBy"]["avatarUrl"].is_string());
        assert!(
            made["meta"]["created"]
                .as_str()
                .is_some_and(|t| t.contains('T'))
        );
        assert!(made["id"].as_i64().is_some());

        let read = as_admin_ok("GET", &b, "/api/library-elements/lib-cpu", Value::Null)
            .await
            .json();
        assert_eq!(
            &read["result"], made,
            "the other instance reads the same element"
        );
        let named = as_admin_ok("GET", &b, "/api/library-elements/name/CPU", Value::Null)
            .await
            .json();
        assert_eq!(named["result"][0]["uid"], "lib-cpu");
        check(
            &as_admin("GET", &b, "/api/library-elements/name/Nothing", Value::Null).await,
            404,
            "library element could not be found",
        );
        let general = as_admin_ok(
            "POST",
            &a,
            "/api/library-elements",
            element("", "Memory", "lib-mem"),
        )
        .await
        .json();
        assert_eq!(general["result"]["folderId"], 0);
        assert_eq!(general["result"]["meta"]["folderName"], "General");
        for taken in [
            element("libs", "CPU", "other-uid"),
            element("", "Disk", "lib-cpu"),
        ] {
            check(
                &as_admin("POST", &b, "/api/library-elements", taken).await,
                400,
                "library element with that name or UID already exists",
            );
        }

        let page = as_admin_ok(
            "GET",
            &b,
            "/api/library-elements?searchString=host&perPage=1&page=2&sortDirection=alpha-desc",
            Value::Null,
        )
        .await
        .json();
        assert_eq!(page["result"]["totalCount"], 2, "{page}");
        assert_eq!(page["result"]["page"], 2);
        assert_eq!(page["result"]["perPage"], 1);
        assert_eq!(page["result"]["elements"][0]["name"], "CPU");
        let filtered = as_admin_ok(
            "GET",
            &b,
            "/api/library-elements?folderFilterUIDs=general&excludeUid=nothing&kind=1&typeFilter=timeseries",
            Value::Null,
        )
        .await
        .json();
        assert_eq!(filtered["result"]["totalCount"], 1, "{filtered}");
        assert_eq!(filtered["result"]["elements"][0]["uid"], "lib-mem");
        let default = as_admin_ok("GET", &b, "/api/library-elements", Value::Null)
            .await
            .json();
        assert_eq!(default["result"]["perPage"], 100);
        assert_eq!(default["result"]["page"], 1);

        // A save through B (a panel in a row uses it; an unknown uid connects nothing).
        as_admin_ok(
            "POST",
            &b,
            "/api/dashboards/db",
            board("uses-cpu", 0, Some("lib-cpu")),
        )
        .await;
        let links = as_admin_ok(
            "GET",
            &a,
            "/api/library-elements/lib-cpu/connections",
            Value::Null,
        )
        .await
        .json();
        let links = links["result"].as_array().expect("a list").clone();
        assert_eq!(links.len(), 1, "{links:?}");
        assert_eq!(links[0]["connectionUid"], "uses-cpu");
        assert_eq!(links[0]["kind"], 1);
        assert_eq!(links[0]["elementId"], made["id"]);
        assert!(links[0]["connectionId"].as_i64().is_some());
        assert_eq!(links[0]["createdBy"]["name"], "admin");
        let read = as_admin_ok("GET", &a, "/api/library-elements/lib-cpu", Value::Null)
            .await
            .json();
        assert_eq!(read["result"]["meta"]["connectedDashboards"], 1);
        check(
            &as_admin("DELETE", &a, "/api/library-elements/lib-cpu", Value::Null).await,
            403,
            "the library element has connections",
        );
        check(
            &as_admin("DELETE", &b, "/api/folders/libs", Value::Null).await,
            403,
            "Folder could not be deleted because it contains library elements in use",
        );

        // Compare-and-swap on the version.
        let stale = as_admin(
            "PATCH",
            &b,
            "/api/library-elements/lib-cpu",
            json!({"kind": 1, "version": 7, "name": "CPU (all hosts)"}),
        )
        .await;
        check(
            &stale,
            412,
            "the library element has been changed by someone else",
        );
        let patched = as_admin_ok(
            "PATCH",
            &b,
            "/api/library-elements/lib-cpu",
            json!({"kind": 1, "version": 1, "name": "CPU (all hosts)",
                   "model": {"type": "stat", "title": "CPU"}}),
        )
        .await
        .json();
        assert_eq!(patched["result"]["version"], 2);
        assert_eq!(patched["result"]["type"], "stat");
        assert_eq!(patched["result"]["folderUid"], "libs", "the folder stays");
        assert_eq!(patched["result"]["meta"]["connectedDashboards"], 1);
        check(
            &as_admin(
                "PATCH",
                &a,
                "/api/library-elements/lib-cpu",
                json!({"kind": 1, "version": 1, "name": "Lost"}),
            )
            .await,
            412,
            "the library element has been changed by someone else",
        );

        // Once the dashboard drops the panel, the element can go.
        as_admin_ok("POST", &b, "/api/dashboards/db", board("uses-cpu", 1, None)).await;
        let links = as_admin_ok(
            "GET",
            &a,
            "/api/library-elements/lib-cpu/connections/",
            Value::Null,
        )
        .await
        .json();
        assert_eq!(links["result"], json!([]));
        let deleted = as_admin("DELETE", &a, "/api/library-elements/lib-cpu", Value::Null).await;
        check(&deleted, 200, "Library element deleted");
        assert_eq!(deleted.json()["id"], made["id"]);
        check(
            &as_admin("GET", &b, "/api/library-elements/lib-cpu", Value::Null).await,
            404,
            "library element could not be found",
        );

        // Deleting a dashboard deletes its connections.
        as_admin_ok(
            "POST",
            &a,
            "/api/dashboards/db",
            board("uses-mem", 0, Some("lib-mem")),
        )
        .await;
        assert_eq!(count(&cluster, "library_element_connection").await, 1);
        as_admin_ok("DELETE", &b, "/api/dashboards/uid/uses-mem", Value::Null).await;
        assert_eq!(count(&cluster, "library_element_connection").await, 0);

        // Another org sees nothing of this one's.
        let other = as_admin_ok("POST", &a, "/api/orgs", json!({"name": "Elsewhere"}))
            .await
            .json()["orgId"]
            .as_i64()
            .expect("an org id");
        check(
            &as_admin(
                "GET",
                &b,
                &format!("/api/library-elements/lib-mem?orgId={other}"),
                Value::Null,
            )
            .await,
            404,
            "library element could not be found",
        );
        let none = as_admin_ok(
            "GET",
            &b,
            &format!("/api/library-elements?orgId={other}"),
            Value::Null,
        )
        .await
        .json();
        assert_eq!(none["result"]["totalCount"], 0);
    }
);

tandem_http::cluster_tests!(
    library_elements_follow_folder_permissions,
    2,
    |cluster: TestCluster| async move {
        let (a, b) = (cluster.url(0), cluster.url(1));
        create_user(&a, "vic", "vic password").await;
        let ed = create_user(&a, "ed", "ed password").await;
        as_admin_ok(
            "PATCH",
            &a,
            &format!("/api/org/users/{ed}"),
            json!({"role": "Editor"}),
        )
        .await;
        folder(&a, "locked", "Locked").await;
        as_admin_ok(
            "POST",
            &a,
            "/api/folders/locked/permissions",
            json!({"items": [{"userId": ed, "permission": 2}]}),
        )
        .await;

        let refused = as_user(
            "vic",
            "POST",
            &b,
            "/api/library-elements",
            element("", "Mine", "vic-lib"),
        )
        .await;
        assert_eq!(refused.status, 403, "{}", refused.text());
        assert!(
            refused.json()["message"]
                .as_str()
                .is_some_and(|m| m.contains("library.panels:create"))
        );
        let ed_general = as_user(
            "ed",
            "POST",
            &b,
            "/api/library-elements",
            element("", "Open", "open-lib"),
        )
        .await;
        assert_eq!(ed_general.status, 200, "{}", ed_general.text());
        let ed_locked = as_user(
            "ed",
            "POST",
            &a,
            "/api/library-elements",
            element("locked", "Secret", "secret-lib"),
        )
        .await;
        assert_eq!(ed_locked.status, 200, "{}", ed_locked.text());

        // vic may view General's element, not the locked folder's, on either instance.
        assert_eq!(
            status(
                "vic",
                "GET",
                &a,
                "/api/library-elements/open-lib",
                Value::Null
            )
            .await,
            200
        );
        check(
            &as_user(
                "vic",
                "GET",
                &b,
                "/api/library-elements/secret-lib",
                Value::Null,
            )
            .await,
            403,
            "insufficient permissions for getting library panel",
        );
        let listed = as_user("vic", "GET", &b, "/api/library-elements", Value::Null)
            .await
            .json();
        assert_eq!(listed["result"]["totalCount"], 1, "{listed}");
        assert_eq!(listed["result"]["elements"][0]["uid"], "open-lib");
        let named = as_user(
            "vic",
            "GET",
            &b,
            "/api/library-elements/name/Secret",
            Value::Null,
        )
        .await
        .json();
        assert_eq!(named["result"], json!([]));
        assert_eq!(
            status(
                "vic",
                "GET",
                &b,
                "/api/library-elements/secret-lib/connections",
                Value::Null
            )
            .await,
            403
        );
        let listed = as_user("ed", "GET", &b, "/api/library-elements", Value::Null)
            .await
            .json();
        assert_eq!(listed["result"]["totalCount"], 2, "{listed}");

        // Viewers change nothing; the Editor changes what is in folders they may edit.
        for (method, body) in [
            (
                "PATCH",
                json!({"kind": 1, "version": 1, "name": "Taken over"}),
            ),
            ("DELETE", Value::Null),
        ] {
            let refused = as_user("vic", method, &a, "/api/library-elements/open-lib", body).await;
            assert_eq!(refused.status, 403, "{method}: {}", refused.text());
        }
        let moved = as_user(
            "ed",
            "PATCH",
            &b,
            "/api/library-elements/open-lib",
            json!({"kind": 1, "version": 1, "folderUid": "locked"}),
        )
        .await;
        assert_eq!(moved.status, 200, "{}", moved.text());
        assert_eq!(
            status(
                "vic",
                "GET",
                &a,
                "/api/library-elements/open-lib",
                Value::Null
            )
            .await,
            403,
            "moved out of vic's sight"
        );
        assert_eq!(count(&cluster, "library_element").await, 2);
    }
);

tandem_http::cluster_tests!(
    bad_library_element_input_is_a_4xx_and_writes_nothing,
    2,
    |cluster: TestCluster| async move {
        let (a, b) = (cluster.url(0), cluster.url(1));
        as_admin_ok(
            "POST",
            &a,
            "/api/library-elements",
            element("", "Kept", "kept"),
        )
        .await;
        let long = "n".repeat(151);
        let cases: Vec<(Value, u16, &str)> = vec![
            (
                json!({"name": "  ", "kind": 1, "model": {}}),
                400,
                "library element name cannot be empty",
            ),
            (
                json!({"name": long, "kind": 1, "model": {}}),
                400,
                "name must be at most 150 characters long",
            ),
            (
                json!({"name": "N", "kind": 1, "model": [1]}),
                400,
                "model must be a JSON object",
            ),
            (
                json!({"name": "N", "kind": 1}),
                400,
                "model must be a JSON object",
            ),
            (
                json!({"name": "N", "kind": 1, "model": {"type": 3}}),
                400,
                "model.type must be text",
            ),
            (
                json!({"name": "N", "kind": 3, "model": {}}),
                400,
                "the element kind is not supported",
            ),
            (
                json!({"name": "N", "model": {}}),
                400,
                "the element kind is not supported",
            ),
            (
                json!({"name": "N", "kind": 1, "model": {}, "uid": "a b"}),
                400,
                "uid contains illegal characters",
            ),
            (
                json!({"name": "N", "kind": 1, "model": {}, "uid": "u".repeat(41)}),
                400,
                "uid too long, max 40 characters",
            ),
            (
                json!({"name": "N", "kind": 1, "model": {}, "folderUid": "missing"}),
                404,
                "folder not found",
            ),
            (json!({"name": "N", "kind": "1", "model": {}}), 400, ""),
            (json!([1, 2]), 400, ""),
        ];
        for (body, status, message) in cases {
            let answer = as_admin("POST", &b, "/api/library-elements", body.clone()).await;
            if message.is_empty() {
                assert_eq!(answer.status, status, "{body}: {}", answer.text());
                assert!(
                    answer.json()["message"].is_string(),
                    "{body}: {}",
                    answer.text()
                );
            } else {
                check(&answer, status, message);
            }
        }
        let broken = http::request(
            "POST",
            &format!("{a}/api/library-elements"),
            &[http::ADMIN],
            "{\"name\": \"Broken\", \"kind\": 1, \"model\": {",
        )
        .await
        .expect("request");
        assert_eq!(broken.status, 400, "{}", broken.text());
        for body in [
            json!({"kind": 1, "version": 1, "model": [1]}),
            json!({"kind": 1, "version": 1, "folderUid": 5}),
            json!({"kind": 1, "version": 1, "folderUid": "missing"}),
            json!({"kind": 1, "version": 1, "uid": "bad uid"}),
            json!({"kind": 1, "name": "No version"}),
            json!({"kind": 9, "version": 1}),
        ] {
            let answer = as_admin("PATCH", &b, "/api/library-elements/kept", body.clone()).await;
            assert!(
                (400..500).contains(&answer.status),
                "{body}: {}",
                answer.text()
            );
            assert!(answer.json()["message"].is_string(), "{body}");
        }
        check(
            &as_admin(
                "PATCH",
                &b,
                "/api/library-elements/none",
                json!({"kind": 1, "version": 1}),
            )
            .await,
            404,
            "library element could not be found",
        );
        let bad_search = as_admin(
            "GET",
            &b,
            &format!("/api/library-elements?searchString={}", "x".repeat(1001)),
            Value::Null,
        )
        .await;
        assert_eq!(bad_search.status, 400, "{}", bad_search.text());
        assert_eq!(
            count(&cluster, "library_element").await,
            1,
            "nothing was written"
        );
        let kept = as_admin_ok("GET", &a, "/api/library-elements/kept", Value::Null)
            .await
            .json();
        assert_eq!(kept["result"]["version"], 1, "no patch went through");
    }
);
