//! `GET /api/admin/stats` and `POST /api/users/:id/using/:orgId`: counted in the shared
//! database, so what one instance writes is in the next answer of every other.

use serde_json::{Value, json};
use tandem_http::testkit::TestCluster;

use crate::common::{as_admin, as_admin_ok, basic, check, create_user, send};

async fn stats(url: &str) -> Value {
    let response = as_admin("GET", url, "/api/admin/stats", Value::Null).await;
    assert_eq!(response.status, 200, "{}", response.text());
    response.json()
}

#[track_caller]
fn grew(before: &Value, after: &Value, counter: &str, by: i64) {
    let (b, a) = (before[counter].as_i64(), after[counter].as_i64());
    assert!(
        b.is_some() && a.is_some(),
        "{counter} in {before} and {after}"
    );
    assert_eq!(
        a.unwrap_or_default() - b.unwrap_or_default(),
        by,
        "{counter}: {before} then {after}"
    );
}

// Writes through one instance move Grafana's counters in the other instance's next answer;
// every counter Grafana 12 names is there; only server admins may read them.
tandem_http::cluster_tests!(
    admin_stats_count_what_every_instance_wrote,
    2,
    |cluster: TestCluster| async move {
        let urls = cluster.urls();
        let before = stats(&urls[1]).await;
        for counter in [
            "orgs",
            "dashboards",
            "snapshots",
            "tags",
            "datasources",
            "playlists",
            "stars",
            "alerts",
            "users",
            "admins",
            "editors",
            "viewers",
            "activeUsers",
            "activeAdmins",
            "activeEditors",
            "activeViewers",
            "activeSessions",
            "dailyActiveUsers",
            "dailyActiveAdmins",
            "dailyActiveEditors",
            "dailyActiveViewers",
            "dailyActiveSessions",
            "monthlyActiveUsers",
        ] {
            assert!(before[counter].is_i64(), "{counter} in {before}");
        }

        let user = create_user(&urls[0], "stats-user", "stats password").await;
        let org = as_admin_ok("POST", &urls[0], "/api/orgs", json!({"name": "Stats org"})).await;
        let org_id = org.json()["orgId"].as_i64().expect("orgId");
        as_admin_ok(
            "POST",
            &urls[0],
            &format!("/api/orgs/{org_id}/users"),
            json!({"loginOrEmail": "stats-user", "role": "Admin"}),
        )
        .await;
        as_admin_ok(
            "POST",
            &urls[0],
            "/api/folders",
            json!({"uid": "stats-folder", "title": "Stats folder"}),
        )
        .await;
        for (uid, tags) in [
            ("stats-a", json!(["stats-x", "stats-y"])),
            ("stats-b", json!(["stats-x"])),
        ] {
            as_admin_ok(
                "POST",
                &urls[0],
                "/api/dashboards/db",
                json!({"dashboard": {"uid": uid, "title": uid, "tags": tags}, "folderUid": "stats-folder"}),
            )
            .await;
        }
        as_admin_ok(
            "POST",
            &urls[0],
            "/api/user/stars/dashboard/uid/stats-a",
            Value::Null,
        )
        .await;

        let after = stats(&urls[1]).await;
        grew(&before, &after, "users", 1);
        grew(&before, &after, "orgs", 1);
        grew(&before, &after, "dashboards", 2);
        grew(&before, &after, "tags", 2);
        grew(&before, &after, "stars", 1);
        // The new user is counted once, by the highest role it holds (Admin of the new org).
        grew(&before, &after, "admins", 1);
        grew(&before, &after, "editors", 0);
        grew(&before, &after, "viewers", 0);

        // A member of an org who is not a server admin may not read them.
        let denied = send(
            "GET",
            &urls[1],
            "/api/admin/stats",
            &basic("stats-user", "stats password"),
            Value::Null,
        )
        .await;
        check(&denied, 403, "Permission denied");

        // A server admin switches the user's active org on one instance; the other sees it.
        let switched = as_admin(
            "POST",
            &urls[0],
            &format!("/api/users/{user}/using/{org_id}"),
            Value::Null,
        )
        .await;
        check(&switched, 200, "Active organization changed");
        let profile = as_admin("GET", &urls[1], &format!("/api/users/{user}"), Value::Null).await;
        assert_eq!(profile.json()["orgId"], json!(org_id), "{}", profile.text());
        let not_member = as_admin(
            "POST",
            &urls[1],
            &format!("/api/users/{user}/using/999999"),
            Value::Null,
        )
        .await;
        check(&not_member, 401, "Not a valid organization");
        let profile = as_admin("GET", &urls[0], &format!("/api/users/{user}"), Value::Null).await;
        assert_eq!(
            profile.json()["orgId"],
            json!(org_id),
            "nothing written: {}",
            profile.text()
        );
        let unknown = as_admin("POST", &urls[1], "/api/users/999999/using/1", Value::Null).await;
        assert_eq!(unknown.status, 404, "{}", unknown.text());
        let by_user = send(
            "POST",
            &urls[1],
            &format!("/api/users/{user}/using/1"),
            &basic("stats-user", "stats password"),
            Value::Null,
        )
        .await;
        check(&by_user, 403, "Permission denied");
    }
);
