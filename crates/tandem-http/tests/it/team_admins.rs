//! What a team's Admin member may do (Grafana's team administrator): manage that team's
//! name, members, member permissions, preferences and deletion, and nothing of another
//! team; a plain member or a non-member may not. Granted on one instance, used on the
//! other.

use serde_json::{Value, json};
use tandem_http::testkit::TestCluster;

use crate::common::{as_admin_ok, basic, create_user, send};

const PASSWORD: &str = "team-pass-1";

async fn team(url: &str, name: &str) -> i64 {
    as_admin_ok("POST", url, "/api/teams", json!({"name": name}))
        .await
        .json()["teamId"]
        .as_i64()
        .expect("a team id")
}

/// Sends as `login` and answers the status.
async fn status(login: &str, method: &str, url: &str, path: &str, body: Value) -> u16 {
    let response = send(method, url, path, &basic(login, PASSWORD), body).await;
    if response.status >= 300 {
        assert!(
            response.json()["message"].is_string(),
            "a JSON error: {}",
            response.text()
        );
    }
    response.status
}

tandem_http::cluster_tests!(
    a_team_admin_manages_that_team_from_any_instance,
    2,
    |cluster: TestCluster| async move {
        let (a, b) = (cluster.url(0), cluster.url(1));
        let lead = create_user(&a, "lead", PASSWORD).await;
        let mate = create_user(&a, "mate", PASSWORD).await;
        let other = create_user(&a, "other", PASSWORD).await;
        let ops = team(&a, "ops").await;
        let web = team(&a, "web").await;
        as_admin_ok(
            "POST",
            &a,
            &format!("/api/teams/{ops}/members"),
            json!({"userId": lead}),
        )
        .await;

        // A plain member (an org Viewer) manages nothing.
        let add_mate = json!({"userId": mate});
        assert_eq!(
            status(
                "lead",
                "POST",
                &b,
                &format!("/api/teams/{ops}/members"),
                add_mate.clone()
            )
            .await,
            403
        );
        // Made the team's Admin on A: on B, the next request may manage the team.
        as_admin_ok(
            "PUT",
            &a,
            &format!("/api/teams/{ops}/members/{lead}"),
            json!({"permission": 4}),
        )
        .await;
        assert_eq!(
            status(
                "lead",
                "POST",
                &b,
                &format!("/api/teams/{ops}/members"),
                add_mate
            )
            .await,
            200
        );
        assert_eq!(
            status(
                "lead",
                "PUT",
                &b,
                &format!("/api/teams/{ops}/members/{mate}"),
                json!({"permission": 4})
            )
            .await,
            200
        );
        assert_eq!(
            status(
                "lead",
                "PUT",
                &b,
                &format!("/api/teams/{ops}"),
                json!({"name": "ops-renamed"})
            )
            .await,
            200
        );
        assert_eq!(
            status(
                "lead",
                "PUT",
                &b,
                &format!("/api/teams/{ops}/preferences"),
                json!({"theme": "dark"})
            )
            .await,
            200
        );
        assert_eq!(
            status(
                "lead",
                "PATCH",
                &a,
                &format!("/api/teams/{ops}/preferences"),
                json!({"timezone": "utc"})
            )
            .await,
            200
        );
        let members = as_admin_ok("GET", &a, &format!("/api/teams/{ops}/members"), json!(null))
            .await
            .json();
        let permissions: Vec<(String, i64)> = members
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    m["login"].as_str().unwrap().to_owned(),
                    m["permission"].as_i64().unwrap(),
                )
            })
            .collect();
        assert!(permissions.contains(&("lead".to_owned(), 4)), "{members}");
        assert!(permissions.contains(&("mate".to_owned(), 4)), "{members}");
        let renamed = as_admin_ok("GET", &a, &format!("/api/teams/{ops}"), json!(null))
            .await
            .json();
        assert_eq!(renamed["name"], "ops-renamed");
        let prefs = as_admin_ok(
            "GET",
            &a,
            &format!("/api/teams/{ops}/preferences"),
            json!(null),
        )
        .await
        .json();
        assert_eq!(
            (prefs["theme"].as_str(), prefs["timezone"].as_str()),
            (Some("dark"), Some("utc")),
            "{prefs}"
        );

        // Nothing of another team, no new teams, and nothing for a non-member.
        assert_eq!(
            status(
                "lead",
                "POST",
                &b,
                &format!("/api/teams/{web}/members"),
                json!({"userId": other})
            )
            .await,
            403
        );
        assert_eq!(
            status(
                "lead",
                "PUT",
                &b,
                &format!("/api/teams/{web}"),
                json!({"name": "mine"})
            )
            .await,
            403
        );
        assert_eq!(
            status(
                "lead",
                "DELETE",
                &a,
                &format!("/api/teams/{web}"),
                json!(null)
            )
            .await,
            403
        );
        assert_eq!(
            status("lead", "POST", &a, "/api/teams", json!({"name": "new"})).await,
            403
        );
        assert_eq!(
            status(
                "other",
                "PUT",
                &b,
                &format!("/api/teams/{ops}"),
                json!({"name": "x"})
            )
            .await,
            403
        );
        assert_eq!(
            status(
                "other",
                "DELETE",
                &b,
                &format!("/api/teams/{ops}/members/{mate}"),
                json!(null)
            )
            .await,
            403
        );

        // Demoted by the other team Admin on A, the lead manages nothing on B.
        assert_eq!(
            status(
                "mate",
                "PUT",
                &a,
                &format!("/api/teams/{ops}/members/{lead}"),
                json!({"permission": 0})
            )
            .await,
            200
        );
        assert_eq!(
            status(
                "lead",
                "DELETE",
                &b,
                &format!("/api/teams/{ops}/members/{mate}"),
                json!(null)
            )
            .await,
            403
        );
        assert_eq!(
            status(
                "lead",
                "DELETE",
                &b,
                &format!("/api/teams/{ops}"),
                json!(null)
            )
            .await,
            403
        );
        // The remaining team Admin deletes the team.
        assert_eq!(
            status(
                "mate",
                "DELETE",
                &b,
                &format!("/api/teams/{ops}"),
                json!(null)
            )
            .await,
            200
        );
        as_admin_ok("GET", &a, &format!("/api/teams/{web}"), json!(null)).await;
        let gone = send(
            "GET",
            &a,
            &format!("/api/teams/{ops}"),
            tandem_http::testkit::http::ADMIN.1,
            json!(null),
        )
        .await;
        assert_eq!(gone.status, 404, "{}", gone.text());
    }
);
