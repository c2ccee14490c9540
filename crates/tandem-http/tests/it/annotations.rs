//! Annotations (`/api/annotations…`) through two instances: made on one, found on the
//! other by time range, dashboard and tags, in Grafana's shapes; concurrent edits each
//! apply whole; bad input is a 4xx and writes nothing.

use serde_json::{Value, json};
use tandem_http::testkit::TestCluster;

use crate::common::{as_admin, as_admin_ok, basic, check, create_user, send};

async fn add(url: &str, body: Value) -> i64 {
    let response = as_admin("POST", url, "/api/annotations", body).await;
    check(&response, 200, "Annotation added");
    response.json()["id"].as_i64().expect("an id")
}

async fn find(url: &str, query: &str) -> Vec<Value> {
    let path = format!("/api/annotations{query}");
    as_admin_ok("GET", url, &path, Value::Null)
        .await
        .json()
        .as_array()
        .expect("a list")
        .clone()
}

fn texts(items: &[Value]) -> Vec<&str> {
    items
        .iter()
        .map(|item| item["text"].as_str().expect("a text"))
        .collect()
}

tandem_http::cluster_tests!(
    annotations_made_on_one_instance_are_found_on_the_other,
    2,
    |cluster: TestCluster| async move {
        let (a, b) = (cluster.url(0), cluster.url(1));
        let saved = as_admin_ok(
            "POST",
            &a,
            "/api/dashboards/db",
            json!({"dashboard": {"uid": "ops", "title": "Ops"}}),
        )
        .await
        .json();
        let dashboard_id = saved["id"].as_i64().expect("an id");

        let deploy = add(
            &a,
            json!({"dashboardUID": "ops", "panelId": 2, "time": 1_000, "timeEnd": 2_000, "tags": ["deploy", "prod"], "text": "Deployed"}),
        )
        .await;
        add(
            &b,
            json!({"time": 5_000, "tags": ["prod"], "text": "Outage"}),
        )
        .await;
        add(
            &a,
            json!({"dashboardId": dashboard_id, "time": 9_000, "text": "Later"}),
        )
        .await;

        let all = find(&b, "").await;
        assert_eq!(texts(&all), ["Later", "Outage", "Deployed"], "newest first");
        let item = &all[2];
        assert_eq!(item["id"], deploy);
        assert_eq!(item["dashboardUID"], "ops");
        assert_eq!(item["dashboardId"], dashboard_id);
        assert_eq!(item["panelId"], 2);
        assert_eq!(item["time"], 1_000);
        assert_eq!(item["timeEnd"], 2_000);
        assert_eq!(item["tags"], json!(["deploy", "prod"]));
        assert_eq!(item["login"], "admin");
        assert_eq!(item["alertId"], 0);
        for key in [
            "created",
            "updated",
            "userId",
            "email",
            "avatarUrl",
            "data",
            "newState",
            "prevState",
            "alertName",
        ] {
            assert!(item.get(key).is_some(), "Grafana's {key}: {item}");
        }

        assert_eq!(
            texts(&find(&a, "?from=1500&to=6000").await),
            ["Outage", "Deployed"]
        );
        assert_eq!(
            texts(&find(&a, "?dashboardUID=ops").await),
            ["Later", "Deployed"]
        );
        assert_eq!(
            texts(&find(&a, "?dashboardUID=ops&panelId=2").await),
            ["Deployed"]
        );
        assert_eq!(texts(&find(&a, "?tags=prod").await), ["Outage", "Deployed"]);
        assert_eq!(
            texts(&find(&a, "?tags=prod&tags=deploy").await),
            ["Deployed"]
        );
        assert_eq!(
            texts(&find(&a, "?tags=deploy&tags=nothing&matchAny=true").await),
            ["Deployed"]
        );
        assert_eq!(texts(&find(&a, "?limit=1").await), ["Later"]);
        assert_eq!(texts(&find(&a, "?type=annotation&limit=5").await).len(), 3);
        assert!(find(&a, "?type=alert").await.is_empty());
        assert!(find(&a, "?dashboardUID=missing").await.is_empty());
        let tags = as_admin_ok("GET", &b, "/api/annotations/tags?tag=pro", Value::Null)
            .await
            .json();
        assert_eq!(
            tags,
            json!({"result": {"tags": [{"tag": "prod", "count": 2}]}})
        );

        // Changed on one instance, read on the other.
        let path = format!("/api/annotations/{deploy}");
        check(
            &as_admin("PATCH", &b, &path, json!({"text": "Deployed v2"})).await,
            200,
            "Annotation patched",
        );
        let read = as_admin_ok("GET", &a, &path, Value::Null).await.json();
        assert_eq!(
            (read["text"].as_str(), read["tags"].clone()),
            (Some("Deployed v2"), json!(["deploy", "prod"]))
        );
        check(
            &as_admin(
                "PUT",
                &a,
                &path,
                json!({"text": "Replaced", "time": 1_000, "timeEnd": 1_000}),
            )
            .await,
            200,
            "Annotation updated",
        );
        let read = as_admin_ok("GET", &b, &path, Value::Null).await.json();
        assert_eq!(
            (
                read["text"].as_str(),
                read["tags"].clone(),
                read["timeEnd"].as_i64()
            ),
            (Some("Replaced"), json!([]), Some(1_000))
        );
        check(
            &as_admin("DELETE", &b, &path, Value::Null).await,
            200,
            "Annotation deleted",
        );
        check(
            &as_admin("GET", &a, &path, Value::Null).await,
            404,
            "Annotation not found",
        );
        check(
            &as_admin("DELETE", &a, &path, Value::Null).await,
            404,
            "Annotation not found",
        );
        assert_eq!(texts(&find(&a, "").await), ["Later", "Outage"]);
        cluster.shutdown().await;
    }
);

tandem_http::cluster_tests!(
    concurrent_annotation_edits_each_apply_whole,
    2,
    |cluster: TestCluster| async move {
        let urls = cluster.urls();
        let id = add(
            &urls[0],
            json!({"time": 1_000, "text": "start", "tags": ["t0"]}),
        )
        .await;
        let path = format!("/api/annotations/{id}");
        let editors: Vec<_> = (0..12)
            .map(|i| {
                let (url, path) = (urls[i % 2].clone(), path.clone());
                tokio::spawn(async move {
                    let body = json!({"text": format!("edit {i}"), "tags": [format!("t{i}"), format!("u{i}")]});
                    as_admin("PATCH", &url, &path, body).await
                })
            })
            .collect();
        for editor in editors {
            let response = editor.await.expect("an editor");
            check(&response, 200, "Annotation patched");
        }
        let read = as_admin_ok("GET", &urls[1], &path, Value::Null)
            .await
            .json();
        let text = read["text"].as_str().expect("a text");
        let i: usize = text
            .strip_prefix("edit ")
            .expect("an edit")
            .parse()
            .expect("a number");
        assert_eq!(
            read["tags"],
            json!([format!("t{i}"), format!("u{i}")]),
            "text and tags of one edit: {read}"
        );
        cluster.shutdown().await;
    }
);

tandem_http::cluster_tests!(
    bad_annotations_are_refused_and_write_nothing,
    2,
    |cluster: TestCluster| async move {
        let (a, b) = (cluster.url(0), cluster.url(1));
        let id = add(&a, json!({"time": 1_000, "text": "kept", "tags": ["k"]})).await;
        let before = find(&b, "").await;
        for body in [
            json!({"time": 1}),
            json!({"text": "  "}),
            json!([]),
            json!({"text": "x", "dashboardUID": "missing"}),
            json!({"text": "x", "dashboardId": 424242}),
            json!({"text": "x", "tags": ["t\u{0}"]}),
            json!({"text": "x", "time": -5}),
            json!({"text": "x".repeat(10_001)}),
            json!({"text": "x", "tags": "not a list"}),
        ] {
            let response = as_admin("POST", &b, "/api/annotations", body.clone()).await;
            assert!(
                matches!(response.status, 400 | 404),
                "{body}: {} {}",
                response.status,
                response.text()
            );
        }
        let path = format!("/api/annotations/{id}");
        for body in [
            json!({"text": ""}),
            json!({"tags": ["x".repeat(191)]}),
            json!("text"),
        ] {
            let response = as_admin("PATCH", &a, &path, body.clone()).await;
            assert_eq!(response.status, 400, "{body}: {}", response.text());
        }
        check(
            &as_admin("PATCH", &a, "/api/annotations/999999", json!({"text": "x"})).await,
            404,
            "Annotation not found",
        );
        let bad = as_admin("GET", &a, "/api/annotations?from=yesterday", Value::Null).await;
        assert_eq!(bad.status, 400, "{}", bad.text());

        // A Viewer reads and cannot write.
        create_user(&a, "vic", "vic password").await;
        let vic = basic("vic", "vic password");
        let listed = send("GET", &b, "/api/annotations", &vic, Value::Null).await;
        assert_eq!(listed.status, 200, "{}", listed.text());
        check(
            &send("POST", &b, "/api/annotations", &vic, json!({"text": "no"})).await,
            403,
            "Permission denied",
        );
        check(
            &send("DELETE", &a, &path, &vic, Value::Null).await,
            403,
            "Permission denied",
        );
        assert_eq!(find(&a, "").await, before, "nothing was written");
        cluster.shutdown().await;
    }
);

tandem_http::cluster_tests!(
    annotations_on_a_dashboard_follow_its_permissions,
    2,
    |cluster: TestCluster| async move {
        let (a, b) = (cluster.url(0), cluster.url(1));
        let ed = create_user(&a, "ed", "ed password").await;
        create_user(&a, "vic", "vic password").await;
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
            json!({"dashboard": {"uid": "d", "title": "D"}, "folderUid": "closed"}),
        )
        .await;
        // Only ed, a Viewer, may edit what is in the folder; nobody else but Admins sees it.
        check(
            &as_admin(
                "POST",
                &b,
                "/api/folders/closed/permissions",
                json!({"items": [{"userId": ed, "permission": 2}]}),
            )
            .await,
            200,
            "Folder permissions updated",
        );
        let on_dashboard = add(&a, json!({"dashboardUID": "d", "text": "on d"})).await;
        add(&a, json!({"text": "org wide"})).await;
        let (ed_auth, vic) = (basic("ed", "ed password"), basic("vic", "vic password"));

        let seen = send("GET", &b, "/api/annotations", &vic, Value::Null).await;
        let seen: Vec<Value> = seen.json().as_array().cloned().unwrap_or_default();
        assert_eq!(
            texts(&seen),
            ["org wide"],
            "the dashboard's annotation is hidden"
        );
        let one = send(
            "GET",
            &b,
            &format!("/api/annotations/{on_dashboard}"),
            &vic,
            Value::Null,
        )
        .await;
        assert_eq!(one.status, 403, "{}", one.text());
        let refused = send(
            "POST",
            &b,
            "/api/annotations",
            &vic,
            json!({"dashboardUID": "d", "text": "x"}),
        )
        .await;
        assert_eq!(refused.status, 403, "{}", refused.text());

        let seen = send("GET", &a, "/api/annotations", &ed_auth, Value::Null).await;
        let seen: Vec<Value> = seen.json().as_array().cloned().unwrap_or_default();
        assert_eq!(texts(&seen).len(), 2, "{seen:?}");
        let added = send(
            "POST",
            &b,
            "/api/annotations",
            &ed_auth,
            json!({"dashboardUID": "d", "text": "by ed"}),
        )
        .await;
        assert_eq!(
            added.status,
            200,
            "Edit on the dashboard writes: {}",
            added.text()
        );
        let patched = send(
            "PATCH",
            &a,
            &format!("/api/annotations/{on_dashboard}"),
            &ed_auth,
            json!({"text": "changed by ed"}),
        )
        .await;
        assert_eq!(patched.status, 200, "{}", patched.text());
        let org_wide = send(
            "POST",
            &a,
            "/api/annotations",
            &ed_auth,
            json!({"text": "no"}),
        )
        .await;
        assert_eq!(
            org_wide.status,
            403,
            "an org annotation takes an Editor: {}",
            org_wide.text()
        );
        let texts_now: Vec<String> = find(&b, "")
            .await
            .iter()
            .map(|a| a["text"].as_str().unwrap_or("").to_owned())
            .collect();
        assert!(
            texts_now.contains(&"changed by ed".to_owned()),
            "{texts_now:?}"
        );
        assert!(!texts_now.contains(&"no".to_owned()));
        assert!(!texts_now.contains(&"x".to_owned()));
        cluster.shutdown().await;
    }
);

tandem_http::cluster_tests!(
    graphite_events_become_org_annotations_read_on_the_other_instance,
    2,
    |cluster: TestCluster| async move {
        let (a, b) = (cluster.url(0), cluster.url(1));
        let added = as_admin(
            "POST",
            &a,
            "/api/annotations/graphite",
            json!({"what": "Deployed", "tags": "deploy prod", "when": 1_700_000_000, "data": "v1.2"}),
        )
        .await;
        check(&added, 200, "Graphite annotation added");
        let listed = as_admin(
            "POST",
            &a,
            "/api/annotations/graphite",
            json!({"what": "Rolled back", "tags": ["deploy"]}),
        )
        .await;
        check(&listed, 200, "Graphite annotation added");
        let found = find(&b, "?tags=prod").await;
        assert_eq!(texts(&found), ["Deployed\nv1.2"]);
        assert_eq!(found[0]["time"], 1_700_000_000_000i64);
        assert_eq!(found[0]["tags"], json!(["deploy", "prod"]));
        assert_eq!(found[0]["dashboardId"], 0);
        assert_eq!(find(&b, "?tags=deploy").await.len(), 2);
        let before = find(&b, "").await;
        for (body, why) in [
            (json!({"what": ""}), "empty what"),
            (json!({"what": "x", "tags": 3}), "tags not text"),
            (json!({"what": "x", "tags": [1]}), "a tag not text"),
            (json!({"what": "x", "when": -5}), "negative when"),
            (
                json!({"what": "x", "when": 9_223_372_036_854_775_807i64}),
                "huge when",
            ),
        ] {
            let refused = as_admin("POST", &a, "/api/annotations/graphite", body).await;
            assert_eq!(refused.status, 400, "{why}: {}", refused.text());
        }
        assert_eq!(find(&b, "").await, before, "nothing was written");
        cluster.shutdown().await;
    }
);
