//! The server admin's user directory (`/api/users…`) and user administration
//! (`/api/admin/users…`): Grafana's shapes and messages, seen from every instance.

use serde_json::{Value, json};
use tandem_http::testkit::TestCluster;
use tandem_http::testkit::http::HttpResponse;

use crate::common::{as_admin, basic, check, create_user, get_with_session, login, send};
use tandem_http::testkit::http::ADMIN;

async fn admin_id(url: &str) -> i64 {
    let response = as_admin(
        "GET",
        url,
        "/api/users/lookup?loginOrEmail=admin",
        Value::Null,
    )
    .await;
    assert_eq!(response.status, 200, "{}", response.text());
    response.json()["id"].as_i64().expect("the admin's id")
}

// A user created through one instance is read, found and able to sign in through another,
// with Grafana's shapes; a taken login or email is 412 with Grafana's message.
tandem_http::cluster_tests!(
    a_created_user_is_served_by_every_instance,
    2,
    |cluster: TestCluster| async move {
        assert_eq!(basic("admin", "admin"), ADMIN.1);
        let urls = cluster.urls();
        let body = json!({"name": "Eve Example", "email": "Eve@Example.com", "login": "eve", "password": "eve-pass", "OrgId": 1});
        let created = as_admin("POST", &urls[0], "/api/admin/users", body).await;
        check(&created, 200, "User created");
        let id = created.json()["id"].as_i64().unwrap();
        let uid = created.json()["uid"].clone();

        let profile = as_admin("GET", &urls[1], &format!("/api/users/{id}"), Value::Null).await;
        assert_eq!(profile.status, 200, "{}", profile.text());
        let profile = profile.json();
        assert_eq!(
            (&profile["id"], &profile["uid"], &profile["login"]),
            (&json!(id), &uid, &json!("eve"))
        );
        assert_eq!(
            (&profile["email"], &profile["name"]),
            (&json!("eve@example.com"), &json!("Eve Example"))
        );
        assert_eq!(
            (
                &profile["orgId"],
                &profile["isGrafanaAdmin"],
                &profile["isDisabled"]
            ),
            (&json!(1), &json!(false), &json!(false))
        );
        for key in ["theme", "createdAt", "updatedAt", "authLabels", "avatarUrl"] {
            assert!(profile.get(key).is_some(), "{key} in {profile}");
        }
        for wanted in ["eve", "EVE@example.com"] {
            let path = format!("/api/users/lookup?loginOrEmail={wanted}");
            let found = as_admin("GET", &urls[1], &path, Value::Null).await;
            assert_eq!(found.status, 200, "{wanted}: {}", found.text());
            assert_eq!(found.json()["id"], id);
        }
        let orgs = as_admin(
            "GET",
            &urls[1],
            &format!("/api/users/{id}/orgs"),
            Value::Null,
        )
        .await;
        assert_eq!(
            orgs.json(),
            json!([{"orgId": 1, "name": "Main Org.", "role": "Viewer"}])
        );
        let me = send(
            "GET",
            &urls[1],
            "/api/user",
            &basic("eve", "eve-pass"),
            Value::Null,
        )
        .await;
        assert_eq!(me.status, 200, "the new user signs in: {}", me.text());

        // Taken: the same login, the same email (any case), a login equal to an email.
        let taken = [
            json!({"login": "eve", "email": "other@example.com", "password": "pass-word"}),
            json!({"login": "other", "email": "EVE@example.com", "password": "pass-word"}),
            json!({"login": "eve@example.com", "password": "pass-word"}),
        ];
        for body in taken {
            let message = format!(
                "User with email '{}' or username '{}' already exists",
                body["email"].as_str().unwrap_or(""),
                body["login"].as_str().unwrap_or("")
            );
            let response = as_admin("POST", &urls[1], "/api/admin/users", body).await;
            check(&response, 412, &message);
        }
        let unknown_org = json!({"login": "zed", "password": "pass-word", "orgId": 999});
        let response = as_admin("POST", &urls[0], "/api/admin/users", unknown_org).await;
        check(&response, 400, "Organization not found");
        let no_password = json!({"login": "zed"});
        let response = as_admin("POST", &urls[0], "/api/admin/users", no_password).await;
        assert_eq!(response.status, 400, "{}", response.text());
        // A login only: the email is the login, as in Grafana.
        let response = as_admin(
            "POST",
            &urls[0],
            "/api/admin/users",
            json!({"login": "zed", "password": "pass-word"}),
        )
        .await;
        check(&response, 200, "User created");
        let path = format!("/api/users/{}", response.json()["id"]);
        let zed = as_admin("GET", &urls[1], &path, Value::Null).await.json();
        assert_eq!(
            (&zed["login"], &zed["email"]),
            (&json!("zed"), &json!("zed"))
        );

        // Unknown and malformed ids and logins.
        let missing = [
            "/api/users/999999",
            "/api/users/999999/orgs",
            "/api/users/lookup?loginOrEmail=nobody",
            "/api/users/lookup",
        ];
        for path in missing {
            check(
                &as_admin("GET", &urls[1], path, Value::Null).await,
                404,
                "User not found",
            );
        }
        // A non-numeric id names nobody either (Grafana 12: the same 404).
        check(
            &as_admin("GET", &urls[1], "/api/users/abc", Value::Null).await,
            404,
            "User not found",
        );
        cluster.shutdown().await;
    }
);

// grafana-client pages `/api/users` until it reads `[]`; `/api/users/search` counts.
tandem_http::cluster_tests!(
    the_directory_pages_and_ends_with_an_empty_page,
    2,
    |cluster: TestCluster| async move {
        let urls = cluster.urls();
        for login in ["ann", "bob", "cid"] {
            create_user(&urls[0], login, "pass-word").await;
        }
        let logins = |response: HttpResponse| -> Vec<String> {
            assert_eq!(response.status, 200, "{}", response.text());
            let body = response.json();
            let items = body
                .as_array()
                .or(body["users"].as_array())
                .expect("a list");
            items
                .iter()
                .map(|u| u["login"].as_str().unwrap().to_owned())
                .collect()
        };
        let page = |n: u32| format!("/api/users?perpage=2&page={n}");
        let get = |path: String| {
            let url = urls[1].clone();
            async move { as_admin("GET", &url, &path, Value::Null).await }
        };
        assert_eq!(logins(get(page(1)).await), ["admin", "ann"]);
        assert_eq!(logins(get(page(2)).await), ["bob", "cid"]);
        assert_eq!(get(page(3)).await.json(), json!([]));
        assert_eq!(logins(get("/api/users".to_owned()).await).len(), 4);
        assert_eq!(logins(get("/api/users?query=Bo".to_owned()).await), ["bob"]);

        let hit = &get("/api/users?query=ann".to_owned()).await.json()[0];
        for key in [
            "id",
            "uid",
            "name",
            "login",
            "email",
            "avatarUrl",
            "isAdmin",
            "isDisabled",
            "lastSeenAt",
            "lastSeenAtAge",
            "authLabels",
        ] {
            assert!(hit.get(key).is_some(), "{key} in {hit}");
        }
        assert_eq!(hit["lastSeenAtAge"], "10 years", "never seen");

        let search = get("/api/users/search?perpage=3&page=2".to_owned())
            .await
            .json();
        assert_eq!(
            (&search["totalCount"], &search["page"], &search["perPage"]),
            (&json!(4), &json!(2), &json!(3))
        );
        assert_eq!(search["users"].as_array().map(Vec::len), Some(1));
        let past = get("/api/users/search?perpage=3&page=5".to_owned())
            .await
            .json();
        assert_eq!(
            (&past["totalCount"], &past["users"]),
            (&json!(4), &json!([]))
        );
        let defaults = get("/api/users/search?page=0&perpage=0".to_owned())
            .await
            .json();
        assert_eq!(
            (&defaults["page"], &defaults["perPage"]),
            (&json!(1), &json!(1000))
        );
        cluster.shutdown().await;
    }
);

// A signed-in person who is not a server admin gets a JSON 403 from every endpoint of the
// directory and of user administration, and changes nothing.
tandem_http::cluster_tests!(
    only_server_admins_reach_the_directory_and_administration,
    2,
    |cluster: TestCluster| async move {
        let urls = cluster.urls();
        let id = create_user(&urls[0], "vic", "vic-pass").await;
        let admin = admin_id(&urls[0]).await;
        let vic = basic("vic", "vic-pass");
        let calls = [
            ("GET", "/api/users".to_owned(), Value::Null),
            ("GET", "/api/users/search".to_owned(), Value::Null),
            (
                "GET",
                "/api/users/lookup?loginOrEmail=admin".to_owned(),
                Value::Null,
            ),
            ("GET", format!("/api/users/{admin}"), Value::Null),
            (
                "PUT",
                format!("/api/users/{admin}"),
                json!({"login": "taken-over"}),
            ),
            ("GET", format!("/api/users/{admin}/orgs"), Value::Null),
            (
                "POST",
                "/api/admin/users".to_owned(),
                json!({"login": "x", "password": "pass-word"}),
            ),
            ("DELETE", format!("/api/admin/users/{admin}"), Value::Null),
            (
                "PUT",
                format!("/api/admin/users/{admin}/password"),
                json!({"password": "pass-word"}),
            ),
            (
                "PUT",
                format!("/api/admin/users/{id}/permissions"),
                json!({"isGrafanaAdmin": true}),
            ),
            (
                "POST",
                format!("/api/admin/users/{admin}/disable"),
                Value::Null,
            ),
            (
                "POST",
                format!("/api/admin/users/{admin}/enable"),
                Value::Null,
            ),
            (
                "POST",
                format!("/api/admin/users/{admin}/logout"),
                Value::Null,
            ),
            (
                "GET",
                format!("/api/admin/users/{admin}/auth-tokens"),
                Value::Null,
            ),
            (
                "POST",
                format!("/api/admin/users/{admin}/revoke-auth-token"),
                json!({"authTokenId": 1}),
            ),
        ];
        for (method, path, body) in calls {
            let response = send(method, &urls[1], &path, &vic, body).await;
            assert_eq!(response.status, 403, "{method} {path}: {}", response.text());
            check(&response, 403, "Permission denied");
        }
        let me = send("GET", &urls[0], "/api/user", &vic, Value::Null)
            .await
            .json();
        assert_eq!(
            me["isGrafanaAdmin"], false,
            "vic did not promote themselves"
        );
        let admin = as_admin("GET", &urls[0], &format!("/api/users/{admin}"), Value::Null).await;
        assert_eq!(admin.json()["login"], "admin");
        cluster.shutdown().await;
    }
);

// Disabling a user ends its sessions on every instance and refuses its logins; enabling it
// lets it back in. Admin logout and revoking one session end sessions too.
tandem_http::cluster_tests!(
    disabling_and_logging_out_end_sessions_everywhere,
    2,
    |cluster: TestCluster| async move {
        let urls = cluster.urls();
        let id = create_user(&urls[0], "dan", "dan-pass").await;
        let dan = basic("dan", "dan-pass");
        let token = login(&urls[0], "dan", "dan-pass").await;
        assert_eq!(
            get_with_session(&urls[1], "/api/user", &token).await.status,
            200
        );

        let disabled = as_admin(
            "POST",
            &urls[1],
            &format!("/api/admin/users/{id}/disable"),
            Value::Null,
        )
        .await;
        check(&disabled, 200, "User disabled");
        assert_eq!(
            get_with_session(&urls[0], "/api/user", &token).await.status,
            401,
            "the session ended"
        );
        let response = send("GET", &urls[0], "/api/user", &dan, Value::Null).await;
        assert_eq!(response.status, 401, "Basic refused: {}", response.text());
        let profile = as_admin("GET", &urls[0], &format!("/api/users/{id}"), Value::Null).await;
        assert_eq!(profile.json()["isDisabled"], true);
        let sessions = as_admin(
            "GET",
            &urls[0],
            &format!("/api/admin/users/{id}/auth-tokens"),
            Value::Null,
        )
        .await;
        assert_eq!(sessions.json(), json!([]));

        let enabled = as_admin(
            "POST",
            &urls[0],
            &format!("/api/admin/users/{id}/enable"),
            Value::Null,
        )
        .await;
        check(&enabled, 200, "User enabled");
        assert_eq!(
            send("GET", &urls[1], "/api/user", &dan, Value::Null)
                .await
                .status,
            200
        );

        // Two sessions; the admin sees both, revokes one, then logs the user out.
        let first = login(&urls[0], "dan", "dan-pass").await;
        let second = login(&urls[1], "dan", "dan-pass").await;
        let sessions = as_admin(
            "GET",
            &urls[1],
            &format!("/api/admin/users/{id}/auth-tokens"),
            Value::Null,
        )
        .await;
        let sessions = sessions.json();
        let sessions = sessions.as_array().expect("a list");
        assert_eq!(sessions.len(), 2, "{sessions:?}");
        for key in [
            "id",
            "isActive",
            "clientIp",
            "browser",
            "os",
            "device",
            "createdAt",
            "seenAt",
        ] {
            assert!(sessions[0].get(key).is_some(), "{key} in {}", sessions[0]);
        }
        // Newest first: the second login.
        let newest = sessions[0]["id"].as_i64().unwrap();
        let path = format!("/api/admin/users/{id}/revoke-auth-token");
        let revoked = as_admin("POST", &urls[0], &path, json!({"authTokenId": newest})).await;
        check(&revoked, 200, "User auth token revoked");
        assert_eq!(
            get_with_session(&urls[1], "/api/user", &second)
                .await
                .status,
            401
        );
        assert_eq!(
            get_with_session(&urls[1], "/api/user", &first).await.status,
            200
        );
        let again = as_admin("POST", &urls[0], &path, json!({"authTokenId": newest})).await;
        check(&again, 404, "User auth token not found");
        // A session of someone else is not this user's.
        let admin_token = login(&urls[0], "admin", "admin").await;
        let admin = admin_id(&urls[0]).await;
        let admin_sessions = as_admin(
            "GET",
            &urls[0],
            &format!("/api/admin/users/{admin}/auth-tokens"),
            Value::Null,
        )
        .await;
        let admin_session = admin_sessions.json()[0]["id"].as_i64().unwrap();
        let other = as_admin(
            "POST",
            &urls[0],
            &path,
            json!({"authTokenId": admin_session}),
        )
        .await;
        check(&other, 404, "User auth token not found");
        assert_eq!(
            get_with_session(&urls[0], "/api/user", &admin_token)
                .await
                .status,
            200
        );

        let out = as_admin(
            "POST",
            &urls[1],
            &format!("/api/admin/users/{id}/logout"),
            Value::Null,
        )
        .await;
        check(&out, 200, "User logged out");
        assert_eq!(
            get_with_session(&urls[0], "/api/user", &first).await.status,
            401
        );
        let own = as_admin(
            "POST",
            &urls[1],
            &format!("/api/admin/users/{admin}/logout"),
            Value::Null,
        )
        .await;
        check(&own, 400, "You cannot logout yourself");

        // Deleted: gone from every instance, sessions and all.
        let third = login(&urls[0], "dan", "dan-pass").await;
        let deleted = as_admin(
            "DELETE",
            &urls[1],
            &format!("/api/admin/users/{id}"),
            Value::Null,
        )
        .await;
        check(&deleted, 200, "User deleted");
        assert_eq!(
            get_with_session(&urls[0], "/api/user", &third).await.status,
            401
        );
        check(
            &as_admin("GET", &urls[0], &format!("/api/users/{id}"), Value::Null).await,
            404,
            "User not found",
        );
        check(
            &as_admin(
                "DELETE",
                &urls[0],
                &format!("/api/admin/users/{id}"),
                Value::Null,
            )
            .await,
            404,
            "User not found",
        );
        cluster.shutdown().await;
    }
);

// An admin's password reset: the old password stops working, the new one works at once
// even for a login locked by failed attempts, and the user's sessions end.
tandem_http::cluster_tests!(
    an_admin_password_reset_replaces_the_password_and_unlocks,
    2,
    |cluster: TestCluster| async move {
        let urls = cluster.urls();
        let id = create_user(&urls[0], "pat", "old-pass").await;
        let token = login(&urls[1], "pat", "old-pass").await;
        for _ in 0..5 {
            let wrong = send(
                "GET",
                &urls[0],
                "/api/user",
                &basic("pat", "wrong"),
                Value::Null,
            )
            .await;
            assert_eq!(wrong.status, 401);
        }
        let locked = send(
            "GET",
            &urls[0],
            "/api/user",
            &basic("pat", "old-pass"),
            Value::Null,
        )
        .await;
        assert_eq!(locked.status, 401, "locked after five failures");

        let path = format!("/api/admin/users/{id}/password");
        let short = as_admin("PUT", &urls[0], &path, json!({"password": "abc"})).await;
        check(&short, 400, "New password is too short");
        let reset = as_admin("PUT", &urls[0], &path, json!({"password": "new-pass"})).await;
        check(&reset, 200, "User password updated");
        let new = send(
            "GET",
            &urls[1],
            "/api/user",
            &basic("pat", "new-pass"),
            Value::Null,
        )
        .await;
        assert_eq!(
            new.status,
            200,
            "the new password works at once: {}",
            new.text()
        );
        let old = send(
            "GET",
            &urls[1],
            "/api/user",
            &basic("pat", "old-pass"),
            Value::Null,
        )
        .await;
        assert_eq!(old.status, 401, "the old password is refused");
        assert_eq!(
            get_with_session(&urls[0], "/api/user", &token).await.status,
            401,
            "sessions end"
        );

        // The profile can be changed by the admin too; a taken login is Grafana's 409.
        let path = format!("/api/users/{id}");
        let renamed = as_admin(
            "PUT",
            &urls[1],
            &path,
            json!({"name": "Pat P", "login": "patricia", "email": "pat@example.com"}),
        )
        .await;
        check(&renamed, 200, "User updated");
        let profile = as_admin("GET", &urls[0], &path, Value::Null).await.json();
        assert_eq!(
            (&profile["login"], &profile["name"]),
            (&json!("patricia"), &json!("Pat P"))
        );
        let clash = as_admin("PUT", &urls[1], &path, json!({"login": "admin"})).await;
        check(&clash, 409, "Update would result in user login conflict");
        let empty = as_admin("PUT", &urls[1], &path, json!({})).await;
        check(&empty, 400, "Need to specify either username or email");
        let unknown = as_admin("PUT", &urls[1], "/api/users/999999", json!({"login": "x"})).await;
        assert_eq!(unknown.status, 404, "{}", unknown.text());
        cluster.shutdown().await;
    }
);

// The last server admin cannot be demoted; once another admin exists, it can be.
tandem_http::cluster_tests!(
    the_last_server_admin_stays_one,
    2,
    |cluster: TestCluster| async move {
        let urls = cluster.urls();
        let admin = admin_id(&urls[0]).await;
        let demote = json!({"isGrafanaAdmin": false});
        let path = format!("/api/admin/users/{admin}/permissions");
        let refused = as_admin("PUT", &urls[0], &path, demote.clone()).await;
        check(&refused, 400, "cannot remove last grafana admin");

        let id = create_user(&urls[0], "ada", "ada-pass").await;
        let ada = basic("ada", "ada-pass");
        let denied = send("GET", &urls[1], "/api/users", &ada, Value::Null).await;
        assert_eq!(denied.status, 403);
        let promote = json!({"isGrafanaAdmin": true});
        let ada_path = format!("/api/admin/users/{id}/permissions");
        let promoted = as_admin("PUT", &urls[1], &ada_path, promote).await;
        check(&promoted, 200, "User permissions updated");
        assert_eq!(
            send("GET", &urls[0], "/api/users", &ada, Value::Null)
                .await
                .status,
            200
        );

        let demoted = send("PUT", &urls[0], &path, &ada, demote.clone()).await;
        check(&demoted, 200, "User permissions updated");
        let denied = as_admin("GET", &urls[1], "/api/users", Value::Null).await;
        assert_eq!(denied.status, 403, "admin is no longer a server admin");
        let last = send("PUT", &urls[1], &ada_path, &ada, demote).await;
        check(&last, 400, "cannot remove last grafana admin");
        let missing = send("PUT", &urls[1], &ada_path, &ada, json!({})).await;
        assert_eq!(
            missing.status,
            400,
            "isGrafanaAdmin is required: {}",
            missing.text()
        );
        cluster.shutdown().await;
    }
);
