//! Preferences of users, teams and orgs (`/api/user/preferences`, `/api/org/preferences`,
//! `/api/teams/:id/preferences`) and the home dashboard they choose
//! (`/api/dashboards/home`): written on one instance, read on another, in Grafana's shapes;
//! concurrent patches of different fields all hold; bad input is a 4xx and writes nothing.

use serde_json::{Value, json};
use tandem_http::testkit::TestCluster;
use tandem_http::testkit::http::{self, HttpResponse};

use crate::common::{as_admin, as_admin_ok, check, create_user, login};

/// Sends `method url{path}` with a session cookie and a JSON body (`Null`: none).
async fn with_session(
    method: &str,
    url: &str,
    path: &str,
    token: &str,
    body: Value,
) -> HttpResponse {
    let cookie = format!("grafana_session={token}");
    let headers = [
        ("cookie", cookie.as_str()),
        ("content-type", "application/json"),
    ];
    let body = if body.is_null() {
        String::new()
    } else {
        body.to_string()
    };
    http::request(method, &format!("{url}{path}"), &headers, body)
        .await
        .unwrap_or_else(|err| panic!("{method} {path}: {err}"))
}

/// A request with a session that must succeed; returns the JSON.
async fn ok(method: &str, url: &str, path: &str, token: &str, body: Value) -> Value {
    let response = with_session(method, url, path, token, body).await;
    assert_eq!(response.status, 200, "{method} {path}: {}", response.text());
    response.json()
}

async fn dashboard(url: &str, uid: &str, title: &str) -> i64 {
    as_admin_ok(
        "POST",
        url,
        "/api/dashboards/db",
        json!({"dashboard": {"uid": uid, "title": title}}),
    )
    .await
    .json()["id"]
        .as_i64()
        .expect("an id")
}

tandem_http::cluster_tests!(
    preferences_written_on_one_instance_are_read_on_the_other,
    2,
    |cluster: TestCluster| async move {
        let (a, b) = (cluster.url(0), cluster.url(1));
        dashboard(&a, "mine", "My Home").await;
        create_user(&a, "pat", "pat password").await;
        let pat = login(&b, "pat", "pat password").await;

        let path = "/api/user/preferences";
        assert_eq!(
            ok("GET", &b, path, &pat, Value::Null).await,
            json!({}),
            "nothing set yet"
        );
        let body = json!({
            "theme": "dark",
            "homeDashboardUID": "mine",
            "timezone": "utc",
            "weekStart": "monday",
            "language": "fr-FR",
            "queryHistory": {"homeTab": "starred"},
            "navbar": {"bookmarkUrls": []},
        });
        let put = with_session("PUT", &a, path, &pat, body).await;
        check(&put, 200, "Preferences updated");
        assert_eq!(
            ok("GET", &b, path, &pat, Value::Null).await,
            json!({
                "theme": "dark",
                "homeDashboardUID": "mine",
                "timezone": "utc",
                "weekStart": "monday",
                "language": "fr-FR",
                "queryHistory": {"homeTab": "starred"},
            })
        );

        // A patch changes what it names and keeps the rest.
        let patch =
            with_session("PATCH", &b, path, &pat, json!({"timezone": "Europe/Paris"})).await;
        check(&patch, 200, "Preferences updated");
        let read = ok("GET", &a, path, &pat, Value::Null).await;
        assert_eq!(read["timezone"], "Europe/Paris");
        assert_eq!(read["theme"], "dark");
        assert_eq!(read["homeDashboardUID"], "mine");

        // Another user, and the admin, have their own.
        assert_eq!(
            as_admin_ok("GET", &a, path, Value::Null).await.json(),
            json!({})
        );

        // A PUT replaces every field: what it leaves out is cleared.
        ok("PUT", &b, path, &pat, json!({"theme": "light"})).await;
        assert_eq!(
            ok("GET", &a, path, &pat, Value::Null).await,
            json!({"theme": "light"})
        );

        // The org's and a team's, written by an Admin on one instance, read on the other.
        as_admin_ok(
            "PUT",
            &a,
            "/api/org/preferences",
            json!({"weekStart": "sunday", "homeDashboardId": 0}),
        )
        .await;
        assert_eq!(
            ok("GET", &b, "/api/org/preferences", &pat, Value::Null).await,
            json!({"weekStart": "sunday"})
        );
        let team = as_admin_ok("POST", &a, "/api/teams", json!({"name": "Night shift"}))
            .await
            .json();
        let team_path = format!("/api/teams/{}/preferences", team["teamId"]);
        as_admin_ok("PATCH", &b, &team_path, json!({"timezone": "Asia/Tokyo"})).await;
        assert_eq!(
            as_admin_ok("GET", &a, &team_path, Value::Null).await.json(),
            json!({"timezone": "Asia/Tokyo"})
        );
        cluster.shutdown().await;
    }
);

tandem_http::cluster_tests!(
    the_home_dashboard_follows_user_then_team_then_org_preferences,
    2,
    |cluster: TestCluster| async move {
        let (a, b) = (cluster.url(0), cluster.url(1));
        let user_id = create_user(&a, "sam", "sam password").await;
        let sam = login(&a, "sam", "sam password").await;
        let built_in = ok("GET", &b, "/api/dashboards/home", &sam, Value::Null).await;
        assert_eq!(built_in["meta"]["isHome"], true, "{built_in}");

        dashboard(&a, "org-home", "Org Home").await;
        dashboard(&a, "team-home", "Team Home").await;
        dashboard(&a, "user-home", "User Home").await;
        let home = |url: String| {
            let sam = sam.clone();
            async move { ok("GET", &url, "/api/dashboards/home", &sam, Value::Null).await }
        };

        as_admin_ok(
            "PATCH",
            &a,
            "/api/org/preferences",
            json!({"homeDashboardUID": "org-home"}),
        )
        .await;
        assert_eq!(
            home(b.clone()).await,
            json!({"redirectUri": "/d/org-home/org-home"})
        );

        let team = as_admin_ok("POST", &b, "/api/teams", json!({"name": "Sam's team"}))
            .await
            .json();
        let team_id = team["teamId"].as_i64().expect("a team id");
        as_admin_ok(
            "POST",
            &b,
            &format!("/api/teams/{team_id}/members"),
            json!({"userId": user_id}),
        )
        .await;
        as_admin_ok(
            "PUT",
            &a,
            &format!("/api/teams/{team_id}/preferences"),
            json!({"homeDashboardUID": "team-home"}),
        )
        .await;
        assert_eq!(
            home(b.clone()).await,
            json!({"redirectUri": "/d/team-home/team-home"})
        );

        ok(
            "PATCH",
            &b,
            "/api/user/preferences",
            &sam,
            json!({"homeDashboardUID": "user-home"}),
        )
        .await;
        assert_eq!(
            home(a.clone()).await,
            json!({"redirectUri": "/d/user-home/user-home"})
        );

        // An empty uid clears the user's choice; a deleted dashboard is skipped.
        ok(
            "PATCH",
            &a,
            "/api/user/preferences",
            &sam,
            json!({"homeDashboardUID": ""}),
        )
        .await;
        assert_eq!(
            home(b.clone()).await,
            json!({"redirectUri": "/d/team-home/team-home"})
        );
        // As in Grafana, the choice that applies names a deleted dashboard: the built-in home.
        as_admin_ok("DELETE", &b, "/api/dashboards/uid/team-home", Value::Null).await;
        assert_eq!(home(a.clone()).await["meta"]["isHome"], true);
        assert!(
            as_admin_ok(
                "GET",
                &a,
                &format!("/api/teams/{team_id}/preferences"),
                Value::Null
            )
            .await
            .json()
            .get("homeDashboardUID")
            .is_none(),
            "a deleted home dashboard is not named"
        );
        // A deleted team's preferences go with it.
        as_admin_ok("DELETE", &b, &format!("/api/teams/{team_id}"), Value::Null).await;
        assert_eq!(
            home(a.clone()).await,
            json!({"redirectUri": "/d/org-home/org-home"})
        );
        cluster.shutdown().await;
    }
);

tandem_http::cluster_tests!(
    concurrent_patches_of_different_fields_all_hold,
    2,
    |cluster: TestCluster| async move {
        let urls = cluster.urls();
        create_user(&urls[0], "kim", "kim password").await;
        let kim = login(&urls[0], "kim", "kim password").await;
        let fields = ["theme", "timezone", "weekStart", "language"];
        for round in 0..5 {
            let values = [
                ["light", "dark"][round % 2].to_owned(),
                format!("Etc/GMT+{round}"),
                ["monday", "sunday", "saturday"][round % 3].to_owned(),
                format!("l{round}"),
            ];
            let writers: Vec<_> = fields
                .iter()
                .zip(values.iter())
                .enumerate()
                .map(|(i, (field, value))| {
                    let (url, kim) = (urls[i % 2].clone(), kim.clone());
                    let body = json!({ *field: value });
                    tokio::spawn(async move {
                        ok("PATCH", &url, "/api/user/preferences", &kim, body).await
                    })
                })
                .collect();
            for writer in writers {
                writer.await.expect("a writer");
            }
            let read = ok("GET", &urls[1], "/api/user/preferences", &kim, Value::Null).await;
            for (field, value) in fields.iter().zip(values.iter()) {
                assert_eq!(read[*field], value.as_str(), "round {round}: {read}");
            }
        }
        cluster.shutdown().await;
    }
);

tandem_http::cluster_tests!(
    bad_preferences_are_refused_and_write_nothing,
    2,
    |cluster: TestCluster| async move {
        let (a, b) = (cluster.url(0), cluster.url(1));
        create_user(&a, "lee", "lee password").await;
        let lee = login(&a, "lee", "lee password").await;
        let path = "/api/user/preferences";
        ok(
            "PUT",
            &a,
            path,
            &lee,
            json!({"theme": "dark", "timezone": "utc"}),
        )
        .await;
        let before = ok("GET", &b, path, &lee, Value::Null).await;

        for method in ["PUT", "PATCH"] {
            let refused = [
                (json!({"theme": "neon"}), 400, "Invalid theme"),
                (
                    json!({"homeDashboardUID": "no-such-dash"}),
                    404,
                    "Dashboard not found",
                ),
            ];
            for (body, status, message) in refused {
                check(
                    &with_session(method, &b, path, &lee, body).await,
                    status,
                    message,
                );
            }
            for body in [
                json!([]),
                json!("dark"),
                json!({"timezone": "x".repeat(51)}),
                json!({"language": "en\u{0}"}),
                json!({"homeDashboardId": "one"}),
                json!({"weekStart": 7}),
            ] {
                let response = with_session(method, &a, path, &lee, body.clone()).await;
                assert_eq!(response.status, 400, "{method} {body}: {}", response.text());
            }
            // A Viewer cannot change the org's; nobody reaches a team of another org.
            let forbidden = with_session(
                method,
                &a,
                "/api/org/preferences",
                &lee,
                json!({"theme": "light"}),
            )
            .await;
            check(&forbidden, 403, "Permission denied");
            check(
                &as_admin(
                    method,
                    &b,
                    "/api/teams/999999/preferences",
                    json!({"theme": "light"}),
                )
                .await,
                404,
                "Team not found",
            );
        }
        assert_eq!(ok("GET", &a, path, &lee, Value::Null).await, before);
        assert_eq!(
            as_admin_ok("GET", &b, "/api/org/preferences", Value::Null)
                .await
                .json(),
            json!({})
        );
        let unknown = as_admin("GET", &a, "/api/teams/999999/preferences", Value::Null).await;
        check(&unknown, 404, "Team not found");
        cluster.shutdown().await;
    }
);
