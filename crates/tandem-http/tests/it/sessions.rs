//! Sessions across instances: log in once, served everywhere; logout, admin logout,
//! password change and disabling seen everywhere on the next request; rotation races never
//! log anyone out; failed logins counted across instances.

use std::time::Duration;

use tandem_http::testkit::TestCluster;
use tandem_http::testkit::http::{self, ADMIN};

use crate::common::{
    as_admin_ok, basic, create_user, get_with_session, login, login_response, set_cookie,
};

tandem_http::cluster_tests!(
    a_login_on_one_instance_is_served_by_all,
    3,
    |cluster: TestCluster| async move {
        let urls = cluster.urls();
        let response = login_response(&urls[0], "admin", "admin").await;
        assert_eq!(response.status, 200);
        assert_eq!(
            response.json(),
            serde_json::json!({"message": "Logged in", "redirectUrl": "/"})
        );
        let lines: Vec<_> = response
            .headers
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        let session = lines
            .iter()
            .find(|l| l.starts_with("grafana_session="))
            .expect("session cookie");
        for attribute in ["Path=/", "Max-Age=2592000", "HttpOnly", "SameSite=Lax"] {
            assert!(session.contains(attribute), "{session} lacks {attribute}");
        }
        let expiry = lines
            .iter()
            .find(|l| l.starts_with("grafana_session_expiry="))
            .expect("expiry cookie");
        assert!(
            !expiry.contains("HttpOnly"),
            "scripts read the expiry cookie: {expiry}"
        );
        let at: i64 = expiry["grafana_session_expiry=".len()..]
            .split(';')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let rotation = time::OffsetDateTime::now_utc().unix_timestamp() + 600 - 5;
        assert!(
            (rotation - 5..=rotation + 1).contains(&at),
            "expiry {at} vs next rotation {rotation}"
        );

        let token = set_cookie(&response, "grafana_session").unwrap();
        for i in 0..300 {
            let url = &urls[i % urls.len()];
            let response = get_with_session(url, "/api/user", &token).await;
            assert_eq!(
                response.status,
                200,
                "request {i} on {url}: {}",
                response.text()
            );
            assert_eq!(response.json()["login"], "admin");
        }
        cluster.shutdown().await;
    }
);

tandem_http::cluster_tests!(
    a_logout_on_one_instance_ends_the_session_everywhere,
    3,
    |cluster: TestCluster| async move {
        let urls = cluster.urls();
        let token = login(&urls[0], "admin", "admin").await;
        let other = login(&urls[2], "admin", "admin").await;
        assert_eq!(
            get_with_session(&urls[2], "/api/login/ping", &token)
                .await
                .status,
            200
        );
        let cookie = format!("grafana_session={token}");
        let logout = http::request(
            "GET",
            &format!("{}/logout", urls[1]),
            &[("cookie", &cookie)],
            "",
        )
        .await
        .unwrap();
        assert_eq!(logout.status, 302);
        assert_eq!(logout.header("location"), Some("/login"));
        let cleared: Vec<_> = logout
            .headers
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        assert!(
            cleared
                .iter()
                .any(|l| l.starts_with("grafana_session=;") && l.contains("Max-Age=0")),
            "{cleared:?}"
        );
        for url in [&urls[0], &urls[2]] {
            let response = get_with_session(url, "/api/user", &token).await;
            assert_eq!(response.status, 401, "the logged-out token on {url}");
            assert_eq!(response.json()["message"], "Unauthorized");
        }
        assert_eq!(
            get_with_session(&urls[0], "/api/user", &other).await.status,
            200,
            "other sessions live on"
        );
        cluster.shutdown().await;
    }
);

// Admin logout, admin password reset, the user's own password change and disabling: each
// ends the sessions on every instance at the next request.
tandem_http::cluster_tests!(
    revocations_are_seen_everywhere_at_once,
    3,
    |cluster: TestCluster| async move {
        let urls = cluster.urls();
        let id = create_user(&urls[0], "carol", "first-pass").await;

        let token = login(&urls[0], "carol", "first-pass").await;
        as_admin_ok(
            "POST",
            &urls[1],
            &format!("/api/admin/users/{id}/logout"),
            serde_json::json!({}),
        )
        .await;
        assert_eq!(
            get_with_session(&urls[2], "/api/user", &token).await.status,
            401,
            "admin logout"
        );

        let token = login(&urls[0], "carol", "first-pass").await;
        as_admin_ok(
            "PUT",
            &urls[1],
            &format!("/api/admin/users/{id}/password"),
            serde_json::json!({"password": "second-pass"}),
        )
        .await;
        assert_eq!(
            get_with_session(&urls[2], "/api/user", &token).await.status,
            401,
            "admin password reset"
        );
        assert_eq!(
            login_response(&urls[2], "carol", "first-pass").await.status,
            401,
            "old password refused"
        );

        // The user's own change keeps the session it was made from and ends the others.
        let keep = login(&urls[0], "carol", "second-pass").await;
        let other = login(&urls[1], "carol", "second-pass").await;
        let body = serde_json::json!({"oldPassword": "second-pass", "newPassword": "third-pass", "confirmNew": "third-pass"});
        let cookie = format!("grafana_session={keep}");
        let changed = http::request(
            "PUT",
            &format!("{}/api/user/password", urls[2]),
            &[("cookie", &cookie)],
            body.to_string(),
        )
        .await
        .unwrap();
        assert_eq!(changed.status, 200, "{}", changed.text());
        assert_eq!(
            get_with_session(&urls[0], "/api/user", &other).await.status,
            401,
            "other sessions end"
        );
        assert_eq!(
            get_with_session(&urls[1], "/api/user", &keep).await.status,
            200,
            "the changing session stays"
        );

        as_admin_ok(
            "POST",
            &urls[0],
            &format!("/api/admin/users/{id}/disable"),
            serde_json::json!({}),
        )
        .await;
        assert_eq!(
            get_with_session(&urls[2], "/api/user", &keep).await.status,
            401,
            "disabled"
        );
        assert_eq!(
            login_response(&urls[1], "carol", "third-pass").await.status,
            401,
            "a disabled user cannot log in"
        );
        cluster.shutdown().await;
    }
);

// Every request is due for rotation here. Twenty times over, the same token goes to two
// instances at the same moment: both requests succeed, at most one of them rotates, and
// the client always ends up with a token that works everywhere.
tandem_http::cluster_tests!(
    concurrent_rotation_never_logs_the_user_out,
    3,
    |_, settings: &mut tandem_http::Settings| settings.identity.rotation_interval = Duration::ZERO,
    |cluster: TestCluster| async move {
        let urls = cluster.urls();
        let mut token = login(&urls[0], "admin", "admin").await;
        for round in 0..20 {
            let (a, b) = tokio::join!(
                get_with_session(&urls[0], "/api/user", &token),
                get_with_session(&urls[1], "/api/user", &token)
            );
            assert_eq!(
                (a.status, b.status),
                (200, 200),
                "round {round}: both requests are served"
            );
            let rotated: Vec<String> = [&a, &b]
                .iter()
                .filter_map(|r| set_cookie(r, "grafana_session"))
                .collect();
            assert!(
                rotated.len() <= 1,
                "round {round}: one rotation wins, got {}",
                rotated.len()
            );
            if let Some(new) = rotated.into_iter().next() {
                token = new;
            }
            let check = get_with_session(&urls[2], "/api/login/ping", &token).await;
            assert_eq!(
                check.status, 200,
                "round {round}: the client's token works on the third instance"
            );
            if let Some(new) = set_cookie(&check, "grafana_session") {
                token = new;
            }
        }
        cluster.shutdown().await;
    }
);

// The explicit rotation endpoint: a new token for the caller; the old one keeps working for
// the grace period, so requests already on their way with it still succeed.
tandem_http::cluster_tests!(
    the_rotate_endpoint_rotates_and_the_old_token_has_a_grace_period,
    2,
    |cluster: TestCluster| async move {
        let urls = cluster.urls();
        let old = login(&urls[0], "admin", "admin").await;
        let cookie = format!("grafana_session={old}");
        let rotated = http::request(
            "POST",
            &format!("{}/api/user/auth-tokens/rotate", urls[1]),
            &[("cookie", &cookie)],
            "",
        )
        .await
        .unwrap();
        assert_eq!(rotated.status, 200);
        let new = set_cookie(&rotated, "grafana_session").expect("a new token");
        assert_ne!(new, old);
        assert_eq!(
            get_with_session(&urls[0], "/api/user", &new).await.status,
            200
        );
        assert_eq!(
            get_with_session(&urls[0], "/api/user", &old).await.status,
            200,
            "within the grace period"
        );
        // Rotating with the previous token does not rotate again.
        let again = http::request(
            "POST",
            &format!("{}/api/user/auth-tokens/rotate", urls[0]),
            &[("cookie", &cookie)],
            "",
        )
        .await
        .unwrap();
        assert_eq!(again.status, 200);
        assert_eq!(set_cookie(&again, "grafana_session"), None);
        cluster.shutdown().await;
    }
);

// Five failed logins spread over the instances block the next login, with the right
// password, on any instance; the answer is the same as for a wrong password, and an unknown
// user gets the very same answer.
tandem_http::cluster_tests!(
    failed_logins_are_counted_across_instances,
    3,
    |cluster: TestCluster| async move {
        let urls = cluster.urls();
        create_user(&urls[0], "dave", "right-pass").await;
        for attempt in 0..5 {
            let response = login_response(&urls[attempt % 3], "dave", "wrong-pass").await;
            assert_eq!(response.status, 401);
            assert_eq!(response.json()["message"], "Invalid username or password");
        }
        for url in &urls {
            let blocked = login_response(url, "DAVE", "right-pass").await;
            assert_eq!(blocked.status, 401, "blocked on {url}");
            assert_eq!(blocked.json()["message"], "Invalid username or password");
        }
        let basic = basic("dave", "right-pass");
        let response = http::request(
            "GET",
            &format!("{}/api/user", urls[1]),
            &[("authorization", &basic)],
            "",
        )
        .await
        .unwrap();
        assert_eq!(response.status, 401, "Basic auth is blocked too");
        let unknown = login_response(&urls[0], "nobody-here", "whatever").await;
        assert_eq!(
            (unknown.status, unknown.json()),
            (
                401,
                serde_json::json!({"message": "Invalid username or password"})
            )
        );
        // Another login is not affected.
        assert_eq!(login_response(&urls[2], "admin", "admin").await.status, 200);
        cluster.shutdown().await;
    }
);

tandem_http::cluster_tests!(
    brute_force_protection_can_be_turned_off,
    1,
    |_, settings: &mut tandem_http::Settings| settings.identity.brute_force_protection = false,
    |cluster: TestCluster| async move {
        let url = cluster.url(0);
        for _ in 0..6 {
            assert_eq!(login_response(&url, "admin", "wrong").await.status, 401);
        }
        assert_eq!(login_response(&url, "admin", "admin").await.status, 200);
        cluster.shutdown().await;
    }
);

// Three instances cold-start together on an empty database: one admin user.
tandem_http::cluster_tests!(
    the_admin_user_is_created_once,
    3,
    |cluster: TestCluster| async move {
        let url = cluster.url(1);
        let response = http::request(
            "GET",
            &format!("{url}/api/users/search?query=admin"),
            &[ADMIN],
            "",
        )
        .await
        .unwrap();
        assert_eq!(response.status, 200, "{}", response.text());
        let admins: Vec<_> = response.json()["users"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|u| u["login"] == "admin")
            .cloned()
            .collect();
        assert_eq!(admins.len(), 1, "{admins:?}");
        assert_eq!(admins[0]["isAdmin"], true);
        cluster.shutdown().await;
    }
);

// Forged, truncated or garbage credentials are a 401 with a JSON body, never a 500.
tandem_http::cluster_tests!(
    bad_credentials_are_401_not_500,
    1,
    |cluster: TestCluster| async move {
        let url = cluster.url(0);
        let token = login(&url, "admin", "admin").await;
        let mut forged = token.clone().into_bytes();
        forged[0] = if forged[0] == b'a' { b'b' } else { b'a' };
        let forged = String::from_utf8(forged).unwrap();
        let long = "f".repeat(10_000);
        let cookies = [&token[..10], &forged, "", "not hex at all", "%00%ff", &long];
        for bad in cookies {
            let response = get_with_session(&url, "/api/user", bad).await;
            assert_eq!(response.status, 401, "cookie {bad:?}");
            assert_eq!(response.json()["message"], "Unauthorized");
        }
        let headers = [
            "Bearer glsa_notakey",
            "Bearer glsa_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA_00000000",
            "Basic !!!",
            "Basic YWRtaW4=",
            "Digest abc",
            "Bearer",
        ];
        for bad in headers {
            let response = http::request(
                "GET",
                &format!("{url}/api/user"),
                &[("authorization", bad)],
                "",
            )
            .await
            .unwrap();
            assert_eq!(
                response.status,
                401,
                "authorization {bad:?}: {}",
                response.text()
            );
            assert!(response.json()["message"].is_string());
        }
        let none = http::get(&format!("{url}/api/user")).await;
        assert_eq!(
            (none.status, none.json()["message"].as_str()),
            (401, Some("Unauthorized"))
        );
        cluster.shutdown().await;
    }
);

// Every way of authenticating counts as being seen: a user who only ever used Basic shows
// as seen just now, not "10 years" ago.
tandem_http::cluster_tests!(
    basic_auth_updates_last_seen,
    2,
    |cluster: TestCluster| async move {
        let id = create_user(&cluster.url(0), "frank", "frank-pass").await;
        let basic = basic("frank", "frank-pass");
        let me = http::request(
            "GET",
            &format!("{}/api/user", cluster.url(1)),
            &[("authorization", &basic)],
            "",
        )
        .await
        .unwrap();
        assert_eq!(me.status, 200);
        let users = as_admin_ok(
            "GET",
            &cluster.url(0),
            "/api/users/search?query=frank",
            serde_json::json!({}),
        )
        .await;
        let frank = users.json()["users"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["id"] == id)
            .cloned()
            .expect("frank");
        assert_eq!(frank["lastSeenAtAge"], "< 1 minute", "{frank}");
        cluster.shutdown().await;
    }
);
