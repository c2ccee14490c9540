//! Dashboard snapshots on two instances of one database: made through one, read, listed
//! and deleted through the other; expired ones are not found and the cleanup removes
//! them; bad input is a 4xx that writes nothing.

use std::time::Duration;

use serde_json::{Value, json};
use tandem_dashboards::SnapshotStore;
use tandem_http::testkit::{TestCluster, eventually};

use crate::common::{as_admin, as_admin_ok, basic, check, create_user, send};

const DELETED: &str =
    "Snapshot deleted. It might take an hour before it's cleared from any CDN caches.";

async fn listed(url: &str) -> Vec<String> {
    as_admin_ok("GET", url, "/api/dashboard/snapshots", Value::Null)
        .await
        .json()
        .as_array()
        .expect("a list")
        .iter()
        .map(|s| s["key"].as_str().unwrap_or("").to_owned())
        .collect()
}

tandem_http::cluster_tests!(
    snapshots_made_on_one_instance_are_served_by_the_other,
    2,
    |cluster: TestCluster| async move {
        let (a, b) = (cluster.url(0), cluster.url(1));
        let dashboard = json!({"title": "Frozen", "panels": [{"id": 1, "type": "timeseries",
            "snapshotData": [{"fields": [{"name": "time", "values": [1, 2]}]}]}]});
        let made = as_admin(
            "POST",
            &a,
            "/api/snapshots",
            json!({"dashboard": dashboard, "name": "Before the change", "expires": 3600}),
        )
        .await;
        assert_eq!(made.status, 200, "{}", made.text());
        let made = made.json();
        let key = made["key"].as_str().expect("a key").to_owned();
        let delete_key = made["deleteKey"].as_str().expect("a delete key").to_owned();
        assert_eq!(key.len(), 32);
        assert_ne!(key, delete_key);
        assert!(
            made["url"]
                .as_str()
                .is_some_and(|u| u.ends_with(&format!("/dashboard/snapshot/{key}")))
        );
        assert!(
            made["deleteUrl"]
                .as_str()
                .is_some_and(|u| u.ends_with(&format!("/api/snapshots-delete/{delete_key}")))
        );
        assert!(made["id"].as_i64().is_some());

        let read = as_admin_ok("GET", &b, &format!("/api/snapshots/{key}"), Value::Null)
            .await
            .json();
        assert_eq!(read["dashboard"], dashboard);
        assert_eq!(read["meta"]["isSnapshot"], true);
        assert_eq!(read["meta"]["canSave"], false);
        let list = as_admin_ok(
            "GET",
            &b,
            "/api/dashboard/snapshots?query=before",
            Value::Null,
        )
        .await
        .json();
        assert_eq!(list[0]["name"], "Before the change", "{list}");
        assert_eq!(list[0]["key"], key.as_str());
        assert!(
            list[0].get("dashboard").is_none(),
            "lists carry no dashboards"
        );
        assert_eq!(
            as_admin_ok(
                "GET",
                &b,
                "/api/dashboard/snapshots?query=nothing",
                Value::Null
            )
            .await
            .json(),
            json!([])
        );
        let stats = as_admin_ok("GET", &b, "/api/admin/stats", Value::Null)
            .await
            .json();
        assert_eq!(stats["snapshots"], 1);

        // A Viewer reads with the key and neither makes nor deletes one, not even with the
        // delete key (Grafana 12's `snapshots:delete` is the Editor role's); an Editor
        // deletes with it.
        create_user(&a, "vic", "vic password").await;
        let vic = basic("vic", "vic password");
        let seen = send(
            "GET",
            &b,
            &format!("/api/snapshots/{key}"),
            &vic,
            Value::Null,
        )
        .await;
        assert_eq!(seen.status, 200, "{}", seen.text());
        let refused = send("POST", &b, "/api/snapshots", &vic, json!({"dashboard": {}})).await;
        assert_eq!(refused.status, 403);
        let refused = send(
            "DELETE",
            &b,
            &format!("/api/snapshots/{key}"),
            &vic,
            Value::Null,
        )
        .await;
        assert_eq!(refused.status, 403);
        let by_delete_key = format!("/api/snapshots-delete/{delete_key}");
        let refused = send("GET", &b, &by_delete_key, &vic, Value::Null).await;
        check(&refused, 403, "Permission denied");
        let eddie = create_user(&a, "eddie", "eddie password").await;
        as_admin_ok(
            "PATCH",
            &a,
            &format!("/api/org/users/{eddie}"),
            json!({"role": "Editor"}),
        )
        .await;
        let eddie = basic("eddie", "eddie password");
        let deleted = send("GET", &b, &by_delete_key, &eddie, Value::Null).await;
        check(&deleted, 200, DELETED);
        check(
            &as_admin("GET", &a, &format!("/api/snapshots/{key}"), Value::Null).await,
            404,
            "Snapshot not found",
        );

        // Chosen keys; deleting by key through the other instance.
        let chosen = as_admin_ok(
            "POST",
            &a,
            "/api/snapshots",
            json!({"dashboard": {"title": "Mine"}, "key": "my-key_1", "deleteKey": "my-delete-key"}),
        )
        .await
        .json();
        assert_eq!(chosen["key"], "my-key_1");
        let before = listed(&b).await;
        assert_eq!(before, ["my-key_1"]);
        assert_eq!(
            as_admin_ok("GET", &b, "/api/dashboard/snapshots", Value::Null)
                .await
                .json()[0]["name"],
            "Mine",
            "an unnamed snapshot takes the dashboard's title"
        );

        // Bad input writes nothing.
        for (body, status, why) in [
            (json!({"dashboard": [1]}), 400, "not an object"),
            (
                json!({"dashboard": {}, "expires": -1}),
                400,
                "negative expiry",
            ),
            (
                json!({"dashboard": {}, "expires": 9_223_372_036_854_775_807i64}),
                400,
                "huge expiry",
            ),
            (json!({"dashboard": {}, "key": "a b"}), 400, "bad key"),
            (
                json!({"dashboard": {}, "key": "k".repeat(65)}),
                400,
                "long key",
            ),
            (
                json!({"dashboard": {}, "name": "n".repeat(191)}),
                400,
                "long name",
            ),
            (json!({"dashboard": {}, "external": true}), 400, "external"),
            (
                json!({"dashboard": {}, "key": "my-key_1"}),
                409,
                "taken key",
            ),
            (
                json!({"dashboard": {}, "deleteKey": "my-delete-key"}),
                409,
                "taken delete key",
            ),
            (json!({"name": "no dashboard"}), 400, "missing dashboard"),
        ] {
            let refused = as_admin("POST", &b, "/api/snapshots", body).await;
            assert_eq!(refused.status, status, "{why}: {}", refused.text());
            assert!(refused.json()["message"].is_string(), "{why}");
        }
        assert_eq!(listed(&a).await, before);
        let gone = as_admin("DELETE", &b, "/api/snapshots/my-key_1", Value::Null).await;
        check(&gone, 200, DELETED);
        assert_eq!(listed(&a).await, Vec::<String>::new());

        // Expiry: not found once expired, then removed by the cleanup.
        let short = as_admin_ok(
            "POST",
            &a,
            "/api/snapshots",
            json!({"dashboard": {"title": "Short"}, "expires": 1}),
        )
        .await
        .json();
        let short_key = short["key"].as_str().expect("a key").to_owned();
        let path = format!("/api/snapshots/{short_key}");
        eventually("the snapshot expires", Duration::from_secs(10), || {
            let (b, path) = (b.clone(), path.clone());
            async move { as_admin("GET", &b, &path, Value::Null).await.status == 404 }
        })
        .await;
        assert_eq!(listed(&b).await, Vec::<String>::new());
        let store = tandem_dashboards::SqlDashboardStore::new(cluster.server(1).database().clone());
        assert_eq!(store.delete_expired().await.expect("cleanup"), 1);
        assert_eq!(store.delete_expired().await.expect("cleanup"), 0);
        let stats = as_admin_ok("GET", &a, "/api/admin/stats", Value::Null)
            .await
            .json();
        assert_eq!(stats["snapshots"], 0);
    }
);

tandem_http::cluster_tests!(
    a_snapshot_of_a_saved_dashboard_is_deleted_by_its_maker_or_an_editor_of_the_dashboard,
    2,
    |cluster: TestCluster| async move {
        let (a, b) = (cluster.url(0), cluster.url(1));
        let id = create_user(&a, "ed", "ed password").await;
        as_admin_ok(
            "PATCH",
            &a,
            &format!("/api/org/users/{id}"),
            json!({"role": "Editor"}),
        )
        .await;
        let ed = basic("ed", "ed password");
        // A folder where the Editor role may only view.
        as_admin_ok(
            "POST",
            &a,
            "/api/folders",
            json!({"uid": "locked", "title": "Locked"}),
        )
        .await;
        as_admin_ok(
            "POST",
            &a,
            "/api/folders/locked/permissions",
            json!({"items": [{"role": "Viewer", "permission": 1}, {"role": "Editor", "permission": 1}]}),
        )
        .await;
        let saved = as_admin_ok(
            "POST",
            &a,
            "/api/dashboards/db",
            json!({"dashboard": {"title": "Locked board"}, "folderUid": "locked"}),
        )
        .await
        .json();
        let frozen = json!({"id": saved["id"], "uid": saved["uid"], "title": "Locked board"});
        let snapshot = |key: &'static str| json!({"dashboard": frozen, "key": key});
        as_admin_ok("POST", &a, "/api/snapshots", snapshot("admins")).await;
        let refused = send("DELETE", &b, "/api/snapshots/admins", &ed, Value::Null).await;
        assert_eq!(refused.status, 403, "{}", refused.text());
        let own = send("POST", &a, "/api/snapshots", &ed, snapshot("eds")).await;
        assert_eq!(own.status, 200, "{}", own.text());
        check(
            &send("DELETE", &b, "/api/snapshots/eds", &ed, Value::Null).await,
            200,
            DELETED,
        );
        // Once the dashboard is gone, the snapshot is any Editor's to delete.
        let uid = saved["uid"].as_str().expect("a uid");
        as_admin_ok(
            "DELETE",
            &a,
            &format!("/api/dashboards/uid/{uid}"),
            Value::Null,
        )
        .await;
        check(
            &send("DELETE", &b, "/api/snapshots/admins", &ed, Value::Null).await,
            200,
            DELETED,
        );
    }
);
