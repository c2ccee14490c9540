//! Orgs, org memberships, teams and service accounts (`/api/org…`, `/api/orgs…`,
//! `/api/teams…`, `/api/serviceaccounts…`): Grafana's shapes and messages, and tokens and
//! roles that hold the same on every instance.

use base64::Engine;
use serde_json::{Value, json};
use tandem_http::testkit::TestCluster;
use tandem_http::testkit::http::{self, HttpResponse};

/// Who a request is sent as, and in which org (`X-Grafana-Org-Id`).
#[derive(Clone)]
struct Caller {
    authorization: String,
    org: Option<i64>,
}

impl Caller {
    fn admin() -> Caller {
        Caller::basic("admin", "admin")
    }

    /// `Authorization: Basic` with a login and password.
    fn basic(login: &str, password: &str) -> Caller {
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(format!("{login}:{password}"));
        Caller {
            authorization: format!("Basic {encoded}"),
            org: None,
        }
    }

    /// `Authorization: Bearer glsa_…`.
    fn bearer(key: &str) -> Caller {
        Caller {
            authorization: format!("Bearer {key}"),
            org: None,
        }
    }

    /// `Authorization: Basic api_key:<key>`, the other way clients send a token.
    fn api_key(key: &str) -> Caller {
        Caller::basic("api_key", key)
    }

    fn in_org(&self, org: i64) -> Caller {
        Caller {
            org: Some(org),
            ..self.clone()
        }
    }

    /// Sends `method url{path}` with a JSON `body` (`Value::Null`: none).
    async fn send(&self, method: &str, url: &str, path: &str, body: Value) -> HttpResponse {
        let body = if body.is_null() {
            String::new()
        } else {
            body.to_string()
        };
        let org = self.org.map(|org| org.to_string());
        let mut headers = vec![
            ("authorization", self.authorization.as_str()),
            ("content-type", "application/json"),
        ];
        if let Some(org) = &org {
            headers.push(("x-grafana-org-id", org.as_str()));
        }
        http::request(method, &format!("{url}{path}"), &headers, body)
            .await
            .unwrap_or_else(|err| panic!("{method} {path}: {err}"))
    }

    async fn get(&self, url: &str, path: &str) -> HttpResponse {
        self.send("GET", url, path, Value::Null).await
    }
}

/// Asserts the status and `message` of a JSON answer, and returns its body.
#[track_caller]
fn check(response: &HttpResponse, status: u16, message: &str) -> Value {
    assert_eq!(response.status, status, "{}", response.text());
    let body = response.json();
    assert_eq!(body["message"], message, "{body}");
    body
}

/// Asserts the status of a JSON answer, and returns its body.
#[track_caller]
fn ok(response: &HttpResponse) -> Value {
    assert_eq!(response.status, 200, "{}", response.text());
    response.json()
}

/// Creates a person with password `pass` (a Viewer of org 1); returns its id.
async fn create_user(url: &str, login: &str) -> i64 {
    let body = json!({"login": login, "email": format!("{login}@example.com"), "name": login, "password": "pass"});
    let response = Caller::admin()
        .send("POST", url, "/api/admin/users", body)
        .await;
    ok(&response)["id"].as_i64().expect("a user id")
}

/// Creates an org as the admin (who joins it as Admin); returns its id.
async fn create_org(url: &str, name: &str) -> i64 {
    let response = Caller::admin()
        .send("POST", url, "/api/orgs", json!({"name": name}))
        .await;
    check(&response, 200, "Organization created")["orgId"]
        .as_i64()
        .expect("an org id")
}

/// Creates a service account of the caller's org; returns its id.
async fn create_service_account(caller: &Caller, url: &str, name: &str, role: Option<&str>) -> i64 {
    let mut body = json!({"name": name});
    if let Some(role) = role {
        body["role"] = json!(role);
    }
    let response = caller.send("POST", url, "/api/serviceaccounts", body).await;
    assert_eq!(response.status, 201, "{}", response.text());
    response.json()["id"].as_i64().expect("an account id")
}

/// Creates a token for a service account; returns its id and key.
async fn create_token(caller: &Caller, url: &str, account: i64, name: &str) -> (i64, String) {
    let path = format!("/api/serviceaccounts/{account}/tokens");
    let body = ok(&caller.send("POST", url, &path, json!({"name": name})).await);
    assert_eq!(body["name"], name);
    let key = body["key"].as_str().expect("the key").to_owned();
    (body["id"].as_i64().expect("a token id"), key)
}

/// The names in an array of objects, in order.
fn names(items: &Value, key: &str) -> Vec<String> {
    let items = items
        .as_array()
        .unwrap_or_else(|| panic!("an array: {items}"));
    items
        .iter()
        .map(|item| item[key].as_str().unwrap_or_default().to_owned())
        .collect()
}

// A token created on one instance works on the others, as `Bearer` and as
// `Basic api_key:<key>`; deleting it ends it on every instance with the next request.
tandem_http::cluster_tests!(
    a_token_works_everywhere_until_deleted,
    3,
    |cluster: TestCluster| async move {
        let urls = cluster.urls();
        let admin = Caller::admin();
        let created = admin
            .send(
                "POST",
                &urls[0],
                "/api/serviceaccounts",
                json!({"name": "Deploy Bot", "role": "Editor"}),
            )
            .await;
        assert_eq!(created.status, 201, "{}", created.text());
        let account = created.json();
        assert_eq!(account["login"], "sa-1-deploy-bot");
        assert_eq!(account["name"], "Deploy Bot");
        assert_eq!(account["orgId"], 1);
        assert_eq!(account["role"], "Editor");
        assert_eq!(account["isDisabled"], false);
        assert_eq!(account["tokens"], 0);
        assert!(
            account["uid"].as_str().is_some_and(|uid| !uid.is_empty()),
            "{account}"
        );
        let id = account["id"].as_i64().unwrap();

        let again = admin
            .send(
                "POST",
                &urls[1],
                "/api/serviceaccounts",
                json!({"name": "Deploy Bot"}),
            )
            .await;
        check(&again, 400, "service account already exists");

        let (token_id, key) = create_token(&admin, &urls[0], id, "ci").await;
        let (prefix, rest) = key.split_at(5);
        assert_eq!(prefix, "glsa_");
        assert!(rest.len() == 41 && rest.as_bytes()[32] == b'_', "{key}");
        let duplicate = admin
            .send(
                "POST",
                &urls[1],
                &format!("/api/serviceaccounts/{id}/tokens"),
                json!({"name": "ci"}),
            )
            .await;
        check(
            &duplicate,
            400,
            "service account token with given name already exists in the organization",
        );

        let org = ok(&Caller::bearer(&key).get(&urls[2], "/api/org").await);
        assert_eq!(org["name"], "Main Org.");
        assert_eq!(
            ok(&Caller::api_key(&key).get(&urls[1], "/api/org").await)["id"],
            1
        );
        // An Editor manages neither teams nor service accounts.
        let team = Caller::bearer(&key)
            .send("POST", &urls[2], "/api/teams", json!({"name": "bots"}))
            .await;
        check(&team, 403, "Permission denied");
        check(
            &Caller::bearer(&key)
                .get(&urls[0], "/api/serviceaccounts/search")
                .await,
            403,
            "Permission denied",
        );

        let tokens = ok(&admin
            .get(&urls[2], &format!("/api/serviceaccounts/{id}/tokens"))
            .await);
        assert_eq!(names(&tokens, "name"), ["ci"]);
        let listed = &tokens[0];
        assert_eq!(listed["id"], token_id);
        assert_eq!(listed["hasExpired"], false);
        assert_eq!(listed["isRevoked"], false);
        assert_eq!(listed["expiration"], Value::Null);
        assert_eq!(listed["secondsUntilExpiration"], 0);
        assert!(listed["created"].as_str().is_some(), "{listed}");
        assert!(
            listed.get("key").is_none(),
            "the key is shown once: {listed}"
        );

        let found = ok(&admin
            .get(&urls[1], "/api/serviceaccounts/search?query=deploy")
            .await);
        assert_eq!(found["totalCount"], 1);
        assert_eq!(found["page"], 1);
        assert_eq!(found["perPage"], 1000);
        assert_eq!(found["serviceAccounts"][0]["tokens"], 1);
        assert_eq!(found["serviceAccounts"][0]["role"], "Editor");
        assert_eq!(
            found["serviceAccounts"][0]["accessControl"]["serviceaccounts:write"],
            true
        );

        let path = format!("/api/serviceaccounts/{id}/tokens/{token_id}");
        check(
            &admin.send("DELETE", &urls[1], &path, Value::Null).await,
            200,
            "Service account token deleted",
        );
        for url in &urls {
            let response = Caller::bearer(&key).get(url, "/api/org").await;
            assert_eq!(
                response.status,
                401,
                "the deleted token on {url}: {}",
                response.text()
            );
            assert_eq!(Caller::api_key(&key).get(url, "/api/org").await.status, 401);
        }
        check(
            &admin.send("DELETE", &urls[2], &path, Value::Null).await,
            404,
            "service account token not found",
        );
        cluster.shutdown().await;
    }
);

// A service account's role bounds what its tokens may do; a token acts in its own org only;
// disabling or deleting the account ends its tokens everywhere.
tandem_http::cluster_tests!(
    a_token_acts_with_its_accounts_role_in_its_org,
    3,
    |cluster: TestCluster| async move {
        let urls = cluster.urls();
        let admin = Caller::admin();
        let viewer_id = create_service_account(&admin, &urls[0], "reader", None).await;
        let profile = ok(&admin
            .get(&urls[1], &format!("/api/serviceaccounts/{viewer_id}"))
            .await);
        assert_eq!(profile["role"], "Viewer", "the default role");
        assert_eq!(profile["login"], "sa-1-reader");
        assert_eq!(profile["teams"], json!([]));
        for key in [
            "avatarUrl",
            "tokens",
            "createdAt",
            "updatedAt",
            "isDisabled",
        ] {
            assert!(profile.get(key).is_some(), "Grafana's {key}: {profile}");
        }
        assert_eq!(profile["accessControl"]["serviceaccounts:delete"], true);
        let (_, key) = create_token(&admin, &urls[0], viewer_id, "read").await;
        let viewer = Caller::bearer(&key);

        assert_eq!(
            ok(&viewer.get(&urls[1], "/api/org").await)["name"],
            "Main Org."
        );
        assert_eq!(
            ok(&viewer.get(&urls[2], "/api/teams/search").await)["totalCount"],
            0
        );
        check(
            &viewer
                .send("PUT", &urls[2], "/api/org", json!({"name": "Mine"}))
                .await,
            403,
            "Permission denied",
        );
        check(
            &viewer
                .send("POST", &urls[1], "/api/teams", json!({"name": "x"}))
                .await,
            403,
            "Permission denied",
        );
        check(
            &viewer.get(&urls[0], "/api/serviceaccounts/search").await,
            403,
            "Permission denied",
        );

        // Another org's id with a token: 401, not a silent switch.
        let other = create_org(&urls[0], "Elsewhere").await;
        let response = viewer.in_org(other).get(&urls[1], "/api/org").await;
        check(
            &response,
            401,
            "API key does not belong to the requested organization",
        );
        // The account is invisible from the other org, even to its Admin.
        let hidden = admin
            .in_org(other)
            .get(&urls[2], &format!("/api/serviceaccounts/{viewer_id}"))
            .await;
        check(&hidden, 404, "service account not found");

        // Promoted, the same token may write at once, on every instance.
        let path = format!("/api/serviceaccounts/{viewer_id}");
        let updated = admin
            .send(
                "PATCH",
                &urls[0],
                &path,
                json!({"role": "Admin", "name": "Reader Two"}),
            )
            .await;
        let updated = check(&updated, 200, "Service account updated");
        assert_eq!(updated["id"], viewer_id);
        assert_eq!(updated["name"], "Reader Two");
        assert_eq!(updated["serviceaccount"]["role"], "Admin");
        assert_eq!(
            updated["serviceaccount"]["login"], "sa-1-reader",
            "a rename keeps the login"
        );
        assert_eq!(updated["serviceaccount"]["tokens"], 1);
        assert_eq!(
            ok(&viewer.get(&urls[2], "/api/serviceaccounts/search").await)["totalCount"],
            1
        );
        let bad = admin
            .send("PATCH", &urls[1], &path, json!({"role": "Owner"}))
            .await;
        check(&bad, 400, "invalid role specified");

        let disabled = admin
            .send("PATCH", &urls[1], &path, json!({"isDisabled": true}))
            .await;
        assert_eq!(
            check(&disabled, 200, "Service account updated")["serviceaccount"]["isDisabled"],
            true
        );
        for url in &urls {
            assert_eq!(
                viewer.get(url, "/api/org").await.status,
                401,
                "a disabled account's token on {url}"
            );
        }
        check(
            &admin
                .send("PATCH", &urls[1], &path, json!({"isDisabled": false}))
                .await,
            200,
            "Service account updated",
        );
        assert_eq!(
            viewer.get(&urls[0], "/api/org").await.status,
            200,
            "enabled again"
        );

        check(
            &admin.send("DELETE", &urls[2], &path, Value::Null).await,
            200,
            "Service account deleted",
        );
        for url in &urls {
            assert_eq!(
                viewer.get(url, "/api/org").await.status,
                401,
                "a deleted account's token on {url}"
            );
        }
        check(
            &admin.get(&urls[0], &path).await,
            404,
            "service account not found",
        );
        assert_eq!(
            ok(&admin.get(&urls[0], &format!("{path}/tokens")).await),
            json!([])
        );
        cluster.shutdown().await;
    }
);

// `X-Grafana-Org-Id` of an org the caller does not belong to authenticates the request but
// gives it no role: role-protected endpoints answer 403 until the caller joins.
tandem_http::cluster_tests!(
    a_foreign_org_header_gives_no_role,
    3,
    |cluster: TestCluster| async move {
        let urls = cluster.urls();
        let dave = Caller::basic("dave", "pass");
        create_user(&urls[0], "dave").await;
        let other = create_org(&urls[1], "Other").await;

        assert_eq!(
            ok(&dave.get(&urls[2], "/api/org").await)["name"],
            "Main Org."
        );
        let foreign = dave.in_org(other);
        assert_eq!(
            foreign.get(&urls[2], "/api/login/ping").await.status,
            200,
            "still authenticated"
        );
        for path in ["/api/org", "/api/teams/search"] {
            check(&foreign.get(&urls[0], path).await, 403, "Permission denied");
        }
        let joined = Caller::admin()
            .send(
                "POST",
                &urls[2],
                &format!("/api/orgs/{other}/users"),
                json!({"loginOrEmail": "dave", "role": "Viewer"}),
            )
            .await;
        check(&joined, 200, "User added to organization");
        assert_eq!(
            ok(&foreign.get(&urls[1], "/api/org").await)["name"],
            "Other"
        );
        check(
            &foreign
                .send("PUT", &urls[1], "/api/org", json!({"name": "Dave's"}))
                .await,
            403,
            "Permission denied",
        );
        // Server-admin routes stay closed to an org member.
        check(
            &dave.get(&urls[0], "/api/orgs").await,
            403,
            "Permission denied",
        );
        check(
            &dave.get(&urls[0], &format!("/api/orgs/{other}")).await,
            403,
            "Permission denied",
        );
        cluster.shutdown().await;
    }
);

tandem_http::cluster_tests!(
    orgs_are_created_renamed_and_deleted,
    3,
    |cluster: TestCluster| async move {
        let urls = cluster.urls();
        let admin = Caller::admin();
        let blue = create_org(&urls[0], "Team Blue").await;
        let duplicate = admin
            .send("POST", &urls[1], "/api/orgs", json!({"name": "Team Blue"}))
            .await;
        check(&duplicate, 409, "Organization name taken");
        check(
            &admin
                .send("POST", &urls[1], "/api/orgs", json!({"name": " "}))
                .await,
            400,
            "bad request data: name must be 1 to 190 characters",
        );

        let all = ok(&admin.get(&urls[2], "/api/orgs").await);
        assert_eq!(names(&all, "name"), ["Main Org.", "Team Blue"]);
        assert_eq!(all[1], json!({"id": blue, "name": "Team Blue"}));
        assert_eq!(
            names(
                &ok(&admin.get(&urls[2], "/api/orgs?query=blue").await),
                "name"
            ),
            ["Team Blue"]
        );
        assert_eq!(
            names(
                &ok(&admin.get(&urls[2], "/api/orgs?perpage=1&page=2").await),
                "name"
            ),
            ["Team Blue"]
        );
        assert_eq!(
            ok(&admin.get(&urls[2], "/api/orgs?perpage=1&page=3").await),
            json!([])
        );
        assert_eq!(
            names(
                &ok(&admin.get(&urls[0], "/api/orgs?name=Main%20Org.").await),
                "name"
            ),
            ["Main Org."]
        );

        let by_name = ok(&admin.get(&urls[1], "/api/orgs/name/Team%20Blue").await);
        assert_eq!(by_name["id"], blue);
        assert_eq!(by_name["address"]["zipCode"], "");
        check(
            &admin.get(&urls[1], "/api/orgs/name/Nope").await,
            404,
            "Organization not found",
        );
        assert_eq!(
            ok(&admin.get(&urls[1], &format!("/api/orgs/{blue}")).await)["name"],
            "Team Blue"
        );
        check(
            &admin.get(&urls[1], "/api/orgs/999").await,
            404,
            "Organization not found",
        );
        assert_eq!(admin.get(&urls[1], "/api/orgs/abc").await.status, 400);

        let path = format!("/api/orgs/{blue}");
        check(
            &admin
                .send("PUT", &urls[2], &path, json!({"name": "Team Green"}))
                .await,
            200,
            "Organization updated",
        );
        check(
            &admin
                .send("PUT", &urls[0], &path, json!({"name": "Main Org."}))
                .await,
            400,
            "Organization name taken",
        );
        // The creator is the new org's Admin: it may rename it as its current org.
        let in_blue = admin.in_org(blue);
        assert_eq!(
            ok(&in_blue.get(&urls[1], "/api/org").await)["name"],
            "Team Green"
        );
        check(
            &in_blue
                .send("PUT", &urls[1], "/api/org", json!({"name": "Team Teal"}))
                .await,
            200,
            "Organization updated",
        );
        assert_eq!(ok(&admin.get(&urls[2], &path).await)["name"], "Team Teal");

        check(
            &admin
                .send("DELETE", &urls[0], "/api/orgs/1", Value::Null)
                .await,
            400,
            "Cannot delete your active organization",
        );
        check(
            &in_blue.send("DELETE", &urls[0], &path, Value::Null).await,
            400,
            "Cannot delete your active organization",
        );
        check(
            &admin.send("DELETE", &urls[0], &path, Value::Null).await,
            200,
            "Organization deleted",
        );
        check(
            &admin.get(&urls[1], &path).await,
            404,
            "Organization not found",
        );
        check(
            &admin.send("DELETE", &urls[2], &path, Value::Null).await,
            404,
            "Failed to delete organization. ID not found",
        );
        assert_eq!(
            names(&ok(&admin.get(&urls[2], "/api/orgs").await), "name"),
            ["Main Org."]
        );
        cluster.shutdown().await;
    }
);

tandem_http::cluster_tests!(
    org_users_are_added_changed_and_removed,
    3,
    |cluster: TestCluster| async move {
        let urls = cluster.urls();
        let admin = Caller::admin();
        let erin = create_user(&urls[0], "erin").await;
        let ops = create_org(&urls[0], "Ops").await;
        let members = format!("/api/orgs/{ops}/users");

        let added = admin
            .send(
                "POST",
                &urls[1],
                &members,
                json!({"loginOrEmail": "erin@example.com", "role": "Editor"}),
            )
            .await;
        assert_eq!(
            check(&added, 200, "User added to organization")["userId"],
            erin
        );
        let again = admin
            .send(
                "POST",
                &urls[2],
                &members,
                json!({"loginOrEmail": "erin", "role": "Viewer"}),
            )
            .await;
        check(&again, 409, "User is already member of this organization");
        let unknown = admin
            .send(
                "POST",
                &urls[2],
                &members,
                json!({"loginOrEmail": "nobody", "role": "Viewer"}),
            )
            .await;
        check(&unknown, 404, "User not found");
        let bad_role = admin
            .send(
                "POST",
                &urls[2],
                &members,
                json!({"loginOrEmail": "erin", "role": "Boss"}),
            )
            .await;
        check(&bad_role, 400, "Invalid role specified");
        let missing = admin
            .send(
                "POST",
                &urls[0],
                "/api/orgs/999/users",
                json!({"loginOrEmail": "erin", "role": "Viewer"}),
            )
            .await;
        check(&missing, 404, "Organization not found");

        let listed = ok(&admin.get(&urls[0], &members).await);
        assert_eq!(names(&listed, "login"), ["admin", "erin"]);
        assert_eq!(listed[1]["role"], "Editor");
        assert_eq!(listed[1]["orgId"], ops);
        assert_eq!(listed[1]["userId"], erin);
        assert_eq!(listed[1]["email"], "erin@example.com");

        let erin_path = format!("{members}/{erin}");
        check(
            &admin
                .send("PATCH", &urls[1], &erin_path, json!({"role": "Admin"}))
                .await,
            200,
            "Organization user updated",
        );
        let erin_in_ops = Caller::basic("erin", "pass").in_org(ops);
        check(
            &erin_in_ops
                .send("PUT", &urls[2], "/api/org", json!({"name": "Ops Team"}))
                .await,
            200,
            "Organization updated",
        );

        // Org 1, as its own Admin (no header): erin leaves it without being deleted through
        // /api/orgs/:id/users, then rejoins through /api/org/users.
        check(
            &admin
                .send(
                    "DELETE",
                    &urls[0],
                    &format!("/api/orgs/1/users/{erin}"),
                    Value::Null,
                )
                .await,
            200,
            "User removed from organization",
        );
        assert!(
            !names(&ok(&admin.get(&urls[1], "/api/org/users").await), "login")
                .contains(&"erin".to_owned())
        );
        // Erin's default org was org 1; she now works in Ops.
        assert_eq!(
            ok(&Caller::basic("erin", "pass")
                .get(&urls[2], "/api/org")
                .await)["name"],
            "Ops Team"
        );
        let rejoined = admin
            .send(
                "POST",
                &urls[1],
                "/api/org/users",
                json!({"loginOrEmail": "erin", "role": "Viewer"}),
            )
            .await;
        assert_eq!(
            check(&rejoined, 200, "User added to organization")["userId"],
            erin
        );
        let again = admin
            .send(
                "POST",
                &urls[2],
                "/api/org/users",
                json!({"loginOrEmail": "ERIN", "role": "Viewer"}),
            )
            .await;
        check(&again, 409, "User is already member of this organization");
        let path = format!("/api/org/users/{erin}");
        check(
            &admin
                .send("PATCH", &urls[2], &path, json!({"role": "Editor"}))
                .await,
            200,
            "Organization user updated",
        );
        let listed = ok(&admin.get(&urls[0], "/api/org/users").await);
        let row = listed
            .as_array()
            .unwrap()
            .iter()
            .find(|row| row["login"] == "erin")
            .expect("erin listed")
            .clone();
        assert_eq!(row["role"], "Editor");
        check(
            &admin
                .send(
                    "PATCH",
                    &urls[2],
                    "/api/org/users/9999",
                    json!({"role": "Editor"}),
                )
                .await,
            404,
            "User not found",
        );

        // Service accounts are members, but not listed as org users.
        create_service_account(&admin, &urls[0], "robot", Some("Admin")).await;
        let logins = names(&ok(&admin.get(&urls[1], "/api/org/users").await), "login");
        assert_eq!(logins, ["admin", "erin"]);
        assert_eq!(
            names(
                &ok(&admin.get(&urls[1], "/api/org/users?query=eri").await),
                "login"
            ),
            ["erin"]
        );
        assert_eq!(
            ok(&admin.get(&urls[1], "/api/org/users?limit=1").await)
                .as_array()
                .unwrap()
                .len(),
            1
        );
        // Org users are for Admins.
        check(
            &Caller::basic("erin", "pass")
                .in_org(1)
                .get(&urls[0], "/api/org/users")
                .await,
            403,
            "Permission denied",
        );

        // An org keeps at least one Admin: once the admin steps down in Ops, erin cannot.
        let admin_id = listed
            .as_array()
            .unwrap()
            .iter()
            .find(|row| row["login"] == "admin")
            .unwrap()["userId"]
            .as_i64()
            .unwrap();
        let in_ops = admin.in_org(ops);
        let ops_admin_path = format!("/api/org/users/{admin_id}");
        check(
            &in_ops
                .send(
                    "PATCH",
                    &urls[0],
                    &ops_admin_path,
                    json!({"role": "Viewer"}),
                )
                .await,
            200,
            "Organization user updated",
        );
        let last = Caller::basic("erin", "pass").in_org(ops);
        check(
            &last
                .send(
                    "PATCH",
                    &urls[1],
                    &format!("/api/org/users/{erin}"),
                    json!({"role": "Editor"}),
                )
                .await,
            400,
            "Cannot change role so that there is no organization admin left",
        );
        check(
            &last
                .send(
                    "DELETE",
                    &urls[1],
                    &format!("/api/org/users/{erin}"),
                    Value::Null,
                )
                .await,
            400,
            "Cannot remove last organization admin",
        );

        // Removed from org 1, erin still belongs to Ops: removed, not deleted.
        check(
            &admin.send("DELETE", &urls[2], &path, Value::Null).await,
            200,
            "User removed from organization",
        );
        check(
            &admin.send("DELETE", &urls[2], &path, Value::Null).await,
            404,
            "User not found",
        );
        // A person removed from their last org through /api/org/users is deleted, as in Grafana.
        let gina = create_user(&urls[0], "gina").await;
        check(
            &admin
                .send(
                    "DELETE",
                    &urls[1],
                    &format!("/api/org/users/{gina}"),
                    Value::Null,
                )
                .await,
            200,
            "User deleted",
        );
        assert_eq!(
            Caller::basic("gina", "pass")
                .get(&urls[2], "/api/login/ping")
                .await
                .status,
            401
        );
        cluster.shutdown().await;
    }
);

tandem_http::cluster_tests!(
    teams_and_their_members,
    3,
    |cluster: TestCluster| async move {
        let urls = cluster.urls();
        let admin = Caller::admin();
        let erin = create_user(&urls[0], "erin").await;
        let created = admin
            .send(
                "POST",
                &urls[0],
                "/api/teams",
                json!({"name": "platform", "email": "platform@example.com"}),
            )
            .await;
        let created = check(&created, 200, "Team created");
        let team = created["teamId"].as_i64().expect("a team id");
        assert!(
            created["uid"].as_str().is_some_and(|uid| !uid.is_empty()),
            "{created}"
        );
        let duplicate = admin
            .send("POST", &urls[1], "/api/teams", json!({"name": "platform"}))
            .await;
        check(&duplicate, 409, "Team name taken");

        let path = format!("/api/teams/{team}");
        let read = ok(&admin.get(&urls[2], &path).await);
        assert_eq!(read["id"], team);
        assert_eq!(read["uid"], created["uid"]);
        assert_eq!(read["orgId"], 1);
        assert_eq!(read["name"], "platform");
        assert_eq!(read["email"], "platform@example.com");
        assert_eq!(read["memberCount"], 1, "the creator is the first member");
        check(
            &admin.get(&urls[2], "/api/teams/9999").await,
            404,
            "Team not found",
        );
        assert_eq!(admin.get(&urls[2], "/api/teams/x").await.status, 400);

        // Paging: five more teams, two per page.
        for i in 0..5 {
            check(
                &admin
                    .send(
                        "POST",
                        &urls[i % 3],
                        "/api/teams",
                        json!({"name": format!("squad-{i}")}),
                    )
                    .await,
                200,
                "Team created",
            );
        }
        for (page, expected) in [
            (1, vec!["squad-0", "squad-1"]),
            (2, vec!["squad-2", "squad-3"]),
            (3, vec!["squad-4"]),
            (4, vec![]),
        ] {
            let found = ok(&admin
                .get(
                    &urls[1],
                    &format!("/api/teams/search?query=squad&perpage=2&page={page}"),
                )
                .await);
            assert_eq!(found["totalCount"], 5, "page {page}");
            assert_eq!(found["page"], page);
            assert_eq!(found["perPage"], 2);
            assert_eq!(names(&found["teams"], "name"), expected, "page {page}");
        }
        let all = ok(&admin.get(&urls[0], "/api/teams/search").await);
        assert_eq!(
            (
                all["totalCount"].as_i64(),
                all["perPage"].as_i64(),
                all["page"].as_i64()
            ),
            (Some(6), Some(1000), Some(1))
        );
        let exact = ok(&admin.get(&urls[0], "/api/teams/search?name=squad-1").await);
        assert_eq!(names(&exact["teams"], "name"), ["squad-1"]);
        assert_eq!(exact["totalCount"], 1);

        // Members.
        let members = format!("{path}/members");
        check(
            &admin
                .send("POST", &urls[1], &members, json!({"userId": erin}))
                .await,
            200,
            "Member added to Team",
        );
        check(
            &admin
                .send("POST", &urls[2], &members, json!({"userId": erin}))
                .await,
            400,
            "User is already added to this team",
        );
        check(
            &admin
                .send("POST", &urls[2], &members, json!({"userId": 9999}))
                .await,
            404,
            "User not found",
        );
        check(
            &admin
                .send(
                    "POST",
                    &urls[2],
                    "/api/teams/9999/members",
                    json!({"userId": erin}),
                )
                .await,
            404,
            "Team not found",
        );
        let listed = ok(&admin.get(&urls[0], &members).await);
        assert_eq!(names(&listed, "login"), ["admin", "erin"]);
        let row = &listed[1];
        for (key, value) in [
            ("orgId", json!(1)),
            ("teamId", json!(team)),
            ("userId", json!(erin)),
            ("email", json!("erin@example.com")),
            ("name", json!("erin")),
            ("labels", json!([])),
            ("permission", json!(0)),
        ] {
            assert_eq!(row[key], value, "{key} in {row}");
        }
        assert_eq!(
            listed[0]["permission"], 4,
            "the team's creator is its Admin, as in Grafana"
        );
        // A member made Admin of the team on one instance is one on the next.
        let erin_path = format!("{members}/{erin}");
        let updated = admin
            .send("PUT", &urls[1], &erin_path, json!({"permission": 4}))
            .await;
        check(&updated, 200, "Team member updated");
        let listed = ok(&admin.get(&urls[2], &members).await);
        assert_eq!(listed[1]["permission"], 4, "{listed}");
        check(
            &admin
                .send("PUT", &urls[1], &erin_path, json!({"permission": 2}))
                .await,
            400,
            "permission must be 0 (Member) or 4 (Admin)",
        );
        check(
            &admin
                .send(
                    "PUT",
                    &urls[1],
                    &format!("{members}/9999"),
                    json!({"permission": 0}),
                )
                .await,
            404,
            "Team member not found",
        );
        ok(&admin
            .send("PUT", &urls[0], &erin_path, json!({"permission": 0}))
            .await);
        let listed = ok(&admin.get(&urls[1], &members).await);
        assert_eq!(listed[1]["permission"], 0, "{listed}");
        assert_eq!(ok(&admin.get(&urls[1], &path).await)["memberCount"], 2);

        // A user's teams, through another instance: their own and a server admin's view.
        let erin_teams = ok(&Caller::basic("erin", "pass")
            .get(&urls[2], "/api/user/teams")
            .await);
        assert_eq!(names(&erin_teams, "name"), ["platform"]);
        assert_eq!(erin_teams[0]["memberCount"], 2);
        let by_admin = ok(&admin
            .get(&urls[0], &format!("/api/users/{erin}/teams"))
            .await);
        assert_eq!(names(&by_admin, "name"), ["platform"]);
        let admin_teams = ok(&admin.get(&urls[1], "/api/user/teams").await);
        assert_eq!(
            names(&admin_teams, "name"),
            [
                "platform", "squad-0", "squad-1", "squad-2", "squad-3", "squad-4"
            ],
            "the creator of a team is its member"
        );
        check(
            &Caller::basic("erin", "pass")
                .get(&urls[0], &format!("/api/users/{erin}/teams"))
                .await,
            403,
            "Permission denied",
        );

        // A Viewer reads teams but does not change them.
        let viewer = Caller::basic("erin", "pass");
        assert_eq!(
            ok(&viewer.get(&urls[2], "/api/teams/search?perpage=1").await)["teams"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
        assert_eq!(viewer.get(&urls[2], &members).await.status, 200);
        check(
            &viewer
                .send("POST", &urls[2], "/api/teams", json!({"name": "mine"}))
                .await,
            403,
            "Permission denied",
        );
        check(
            &viewer.send("DELETE", &urls[2], &path, Value::Null).await,
            403,
            "Permission denied",
        );

        let member = format!("{members}/{erin}");
        check(
            &admin.send("DELETE", &urls[2], &member, Value::Null).await,
            200,
            "Team Member removed",
        );
        check(
            &admin.send("DELETE", &urls[0], &member, Value::Null).await,
            404,
            "Team member not found",
        );
        assert_eq!(
            names(&ok(&admin.get(&urls[1], &members).await), "login"),
            ["admin"]
        );

        // Renames.
        check(
            &admin
                .send("PUT", &urls[0], &path, json!({"name": "squad-0"}))
                .await,
            400,
            "Team name taken",
        );
        check(
            &admin
                .send(
                    "PUT",
                    &urls[1],
                    &path,
                    json!({"name": "platform-2", "email": "p2@example.com"}),
                )
                .await,
            200,
            "Team updated",
        );
        let read = ok(&admin.get(&urls[2], &path).await);
        assert_eq!(
            (read["name"].as_str(), read["email"].as_str()),
            (Some("platform-2"), Some("p2@example.com"))
        );
        check(
            &admin
                .send("PUT", &urls[1], "/api/teams/9999", json!({"name": "z"}))
                .await,
            404,
            "Team not found",
        );

        // Teams belong to their org.
        let other = create_org(&urls[0], "Other").await;
        check(
            &admin.in_org(other).get(&urls[1], &path).await,
            404,
            "Team not found",
        );
        assert_eq!(
            ok(&admin.in_org(other).get(&urls[1], "/api/teams/search").await)["totalCount"],
            0
        );

        check(
            &admin.send("DELETE", &urls[0], &path, Value::Null).await,
            200,
            "Team deleted",
        );
        check(&admin.get(&urls[1], &path).await, 404, "Team not found");
        check(
            &admin.send("DELETE", &urls[2], &path, Value::Null).await,
            404,
            "Team not found",
        );
        cluster.shutdown().await;
    }
);
