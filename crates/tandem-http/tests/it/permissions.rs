//! Folder and dashboard permissions (`/api/folders/:uid/permissions`,
//! `/api/dashboards/{uid/:uid,id/:id}/permissions`) on two instances of one database: a
//! list written through one instance decides the very next request on the other, for
//! users, teams and roles, inherited down nested folders, in reads, saves, deletes,
//! versions, stars, folder listings and search; bad lists are a 400 that changes nothing;
//! two instances replacing one list at once leave one of the two lists, never a mix.

use serde_json::{Value, json};
use tandem_http::testkit::TestCluster;
use tandem_http::testkit::http::HttpResponse;

use crate::common::{as_admin, as_admin_ok, as_user, check, create_user};

async fn user(url: &str, login: &str, role: &str) -> i64 {
    let id = create_user(url, login, &format!("{login} password")).await;
    as_admin_ok(
        "PATCH",
        url,
        &format!("/api/org/users/{id}"),
        json!({ "role": role }),
    )
    .await;
    id
}

#[track_caller]
fn ok200(response: &HttpResponse) {
    assert_eq!(response.status, 200, "{}", response.text());
}

/// The `(principal, level, inherited)` of each item of a list, sorted.
fn summary(items: &Value) -> Vec<(String, i64, bool)> {
    let mut out: Vec<(String, i64, bool)> = items
        .as_array()
        .expect("a list")
        .iter()
        .map(|item| {
            let principal = if item["userId"].as_i64().unwrap_or(0) > 0 {
                format!("user:{}", item["userId"])
            } else if item["teamId"].as_i64().unwrap_or(0) > 0 {
                format!("team:{}", item["teamId"])
            } else {
                format!("role:{}", item["role"].as_str().unwrap_or("?"))
            };
            (
                principal,
                item["permission"].as_i64().unwrap_or(0),
                item["inherited"].as_bool().unwrap_or(false),
            )
        })
        .collect();
    out.sort();
    out
}

fn titles(hits: &Value) -> Vec<String> {
    let mut titles: Vec<String> = hits
        .as_array()
        .expect("hits")
        .iter()
        .map(|hit| hit["title"].as_str().unwrap_or("").to_owned())
        .collect();
    titles.sort();
    titles
}

tandem_http::cluster_tests!(
    permissions_written_on_one_instance_decide_the_next_request_on_the_other,
    2,
    |cluster: TestCluster| async move {
        let (a, b) = (cluster.url(0), cluster.url(1));
        let ed = user(&a, "ed", "Editor").await;
        let vic = user(&a, "vic", "Viewer").await;
        let tom = user(&a, "tom", "Viewer").await;
        let team = as_admin_ok("POST", &a, "/api/teams", json!({"name": "ops"}))
            .await
            .json()["teamId"]
            .as_i64()
            .expect("a team id");
        as_admin_ok(
            "POST",
            &a,
            &format!("/api/teams/{team}/members"),
            json!({ "userId": tom }),
        )
        .await;

        // A new root folder has Grafana's defaults: the roles, and its creator as Admin.
        as_admin_ok(
            "POST",
            &a,
            "/api/folders",
            json!({"uid": "secret", "title": "Secret"}),
        )
        .await;
        let list = as_admin_ok("GET", &b, "/api/folders/secret/permissions", Value::Null)
            .await
            .json();
        assert_eq!(
            summary(&list),
            [
                ("role:Editor".to_owned(), 2, false),
                ("role:Viewer".to_owned(), 1, false),
                ("user:1".to_owned(), 4, false),
            ],
            "{list}"
        );
        let first = &list[0];
        assert_eq!(first["isFolder"], true);
        assert_eq!(first["uid"], "secret");
        assert_eq!(first["title"], "Secret");
        assert!(first["permissionName"].is_string());
        assert!(
            first["url"]
                .as_str()
                .is_some_and(|url| url.contains("/dashboards/f/secret/"))
        );

        // Viewers see it until the list changes on the other instance.
        ok200(&as_user("vic", "GET", &b, "/api/folders/secret", Value::Null).await);
        let set = as_admin(
            "POST",
            &a,
            "/api/folders/secret/permissions",
            json!({"items": [
                {"teamId": team, "permission": 1},
                {"userId": ed, "permission": 2},
            ]}),
        )
        .await;
        check(&set, 200, "Folder permissions updated");
        as_admin_ok(
            "POST",
            &a,
            "/api/dashboards/db",
            json!({"dashboard": {"uid": "d1", "title": "Inside"}, "folderUid": "secret"}),
        )
        .await;
        as_admin_ok(
            "POST",
            &a,
            "/api/dashboards/db",
            json!({"dashboard": {"uid": "pub", "title": "Public"}}),
        )
        .await;

        // vic: no item names them any more.
        for path in [
            "/api/folders/secret",
            "/api/dashboards/uid/d1",
            "/api/dashboards/uid/d1/versions",
            "/api/dashboards/uid/d1/versions/1",
        ] {
            let denied = as_user("vic", "GET", &b, path, Value::Null).await;
            assert_eq!(denied.status, 403, "{path}: {}", denied.text());
            assert!(denied.json()["message"].is_string());
        }
        let star = as_user(
            "vic",
            "POST",
            &b,
            "/api/user/stars/dashboard/uid/d1",
            Value::Null,
        )
        .await;
        assert_eq!(star.status, 403, "{}", star.text());
        let search = as_user("vic", "GET", &b, "/api/search", Value::Null).await;
        assert_eq!(titles(&search.json()), ["Public"], "{}", search.text());
        let folders = as_user("vic", "GET", &b, "/api/folders", Value::Null).await;
        assert_eq!(folders.json(), json!([]), "{}", folders.text());

        // tom views through the team, and cannot save.
        let read = as_user("tom", "GET", &b, "/api/dashboards/uid/d1", Value::Null).await;
        ok200(&read);
        let meta = &read.json()["meta"];
        assert_eq!(
            (
                meta["canSave"].clone(),
                meta["canEdit"].clone(),
                meta["canAdmin"].clone()
            ),
            (json!(false), json!(false), json!(false)),
            "{meta}"
        );
        let search = as_user("tom", "GET", &b, "/api/search", Value::Null).await;
        assert_eq!(titles(&search.json()), ["Inside", "Public", "Secret"]);
        let save = as_user(
            "tom",
            "POST",
            &b,
            "/api/dashboards/db",
            json!({"dashboard": {"uid": "d1", "title": "Mine now"}, "folderUid": "secret", "overwrite": true}),
        )
        .await;
        assert_eq!(save.status, 403, "{}", save.text());

        // ed edits through their own item, and cannot administer.
        let read = as_user("ed", "GET", &a, "/api/dashboards/uid/d1", Value::Null).await;
        let meta = &read.json()["meta"];
        assert_eq!(
            (meta["canSave"].clone(), meta["canAdmin"].clone()),
            (json!(true), json!(false)),
            "{meta}"
        );
        let save = as_user(
            "ed",
            "POST",
            &b,
            "/api/dashboards/db",
            json!({"dashboard": {"uid": "d1", "title": "Inside", "version": 1}, "folderUid": "secret"}),
        )
        .await;
        ok200(&save);
        let folder = as_user("ed", "GET", &b, "/api/folders/secret", Value::Null)
            .await
            .json();
        assert_eq!(
            (folder["canEdit"].clone(), folder["canAdmin"].clone()),
            (json!(true), json!(false))
        );
        let denied = as_user(
            "ed",
            "GET",
            &b,
            "/api/folders/secret/permissions",
            Value::Null,
        )
        .await;
        assert_eq!(denied.status, 403, "{}", denied.text());
        let sub = as_user(
            "ed",
            "POST",
            &a,
            "/api/folders",
            json!({"uid": "eds", "title": "Ed's", "parentUid": "secret"}),
        )
        .await;
        ok200(&sub);
        assert_eq!(sub.json()["canAdmin"], true, "the creator administers it");
        let root = as_user("vic", "POST", &a, "/api/folders", json!({"title": "Nope"})).await;
        assert_eq!(root.status, 403, "a Viewer creates nothing at the root");

        // Nested folders inherit; their lists show what they inherit.
        as_admin_ok(
            "POST",
            &a,
            "/api/folders",
            json!({"uid": "inner", "title": "Inner", "parentUid": "secret"}),
        )
        .await;
        ok200(&as_user("tom", "GET", &b, "/api/folders/inner", Value::Null).await);
        let inner = as_admin_ok("GET", &b, "/api/folders/inner/permissions", Value::Null)
            .await
            .json();
        assert_eq!(
            summary(&inner),
            [
                (format!("team:{team}"), 1, true),
                ("user:1".to_owned(), 4, false),
                (format!("user:{ed}"), 2, true),
            ],
            "{inner}"
        );

        // A dashboard's own list, by uid and by id; vic becomes its Admin.
        let pub_id = as_admin_ok("GET", &a, "/api/dashboards/uid/pub", Value::Null)
            .await
            .json()["dashboard"]["id"]
            .as_i64()
            .expect("an id");
        let set = as_admin(
            "POST",
            &a,
            &format!("/api/dashboards/id/{pub_id}/permissions"),
            json!({"items": [{"userId": vic, "permission": 4}]}),
        )
        .await;
        check(&set, 200, "Dashboard permissions updated");
        let own = as_user(
            "vic",
            "GET",
            &b,
            "/api/dashboards/uid/pub/permissions",
            Value::Null,
        )
        .await;
        ok200(&own);
        assert_eq!(summary(&own.json()), [(format!("user:{vic}"), 4, false)]);
        assert_eq!(own.json()[0]["userLogin"], "vic");
        let gone = as_user("tom", "GET", &b, "/api/dashboards/uid/pub", Value::Null).await;
        assert_eq!(gone.status, 403, "the role items went with the new list");

        // Bad lists are refused and change nothing.
        let before = as_admin_ok("GET", &b, "/api/folders/secret/permissions", Value::Null)
            .await
            .json();
        let many: Vec<Value> = (0..201)
            .map(|n| json!({"userId": n + 1000, "permission": 1}))
            .collect();
        for (body, why) in [
            (
                json!({"items": [{"userId": ed, "teamId": team, "permission": 1}]}),
                "user and team",
            ),
            (
                json!({"items": [{"userId": ed, "role": "Viewer", "permission": 1}]}),
                "user and role",
            ),
            (json!({"items": [{"permission": 1}]}), "no principal"),
            (
                json!({"items": [{"userId": ed, "permission": 3}]}),
                "level 3",
            ),
            (json!({"items": [{"userId": ed}]}), "no level"),
            (
                json!({"items": [{"role": "Owner", "permission": 1}]}),
                "unknown role",
            ),
            (
                json!({"items": [{"userId": 999_999, "permission": 1}]}),
                "unknown user",
            ),
            (
                json!({"items": [{"teamId": 999_999, "permission": 1}]}),
                "unknown team",
            ),
            (
                json!({"items": [{"userId": -1, "permission": 1}]}),
                "negative id",
            ),
            (
                json!({"items": [{"userId": ed, "permission": 1}, {"userId": ed, "permission": 2}]}),
                "duplicate",
            ),
            (json!({ "items": many }), "too many"),
            (json!({"items": "all"}), "not a list"),
        ] {
            let refused = as_admin("POST", &a, "/api/folders/secret/permissions", body).await;
            assert_eq!(refused.status, 400, "{why}: {}", refused.text());
            assert!(refused.json()["message"].is_string(), "{why}");
        }
        let missing = as_admin(
            "POST",
            &a,
            "/api/folders/nope/permissions",
            json!({"items": []}),
        )
        .await;
        assert_eq!(missing.status, 404, "{}", missing.text());
        let after = as_admin_ok("GET", &b, "/api/folders/secret/permissions", Value::Null)
            .await
            .json();
        assert_eq!(summary(&after), summary(&before));

        // Deleting the team deletes its items; deleting the folder deletes its list.
        as_admin_ok("DELETE", &a, &format!("/api/teams/{team}"), Value::Null).await;
        let after = as_admin_ok("GET", &b, "/api/folders/secret/permissions", Value::Null)
            .await
            .json();
        assert_eq!(summary(&after), [(format!("user:{ed}"), 2, false)]);
        let read = as_user("tom", "GET", &b, "/api/dashboards/uid/d1", Value::Null).await;
        assert_eq!(read.status, 403);
        as_admin_ok("DELETE", &a, "/api/folders/secret", Value::Null).await;
        as_admin_ok(
            "POST",
            &a,
            "/api/folders",
            json!({"uid": "secret", "title": "Again"}),
        )
        .await;
        let fresh = as_admin_ok("GET", &b, "/api/folders/secret/permissions", Value::Null)
            .await
            .json();
        assert_eq!(
            summary(&fresh).len(),
            3,
            "a new folder of the same uid starts from the defaults: {fresh}"
        );
        let _ = tom;
    }
);

tandem_http::cluster_tests!(
    two_instances_replacing_one_list_leave_one_of_the_two,
    2,
    |cluster: TestCluster| async move {
        let (a, b) = (cluster.url(0), cluster.url(1));
        let ed = user(&a, "ed", "Editor").await;
        let vic = user(&a, "vic", "Viewer").await;
        as_admin_ok(
            "POST",
            &a,
            "/api/folders",
            json!({"uid": "f", "title": "F"}),
        )
        .await;
        let x = json!({"items": [
            {"userId": ed, "permission": 2},
            {"role": "Viewer", "permission": 1},
        ]});
        let y = json!({"items": [
            {"userId": vic, "permission": 4},
            {"role": "Editor", "permission": 1},
            {"userId": ed, "permission": 1},
        ]});
        let expect_x = vec![
            ("role:Viewer".to_owned(), 1, false),
            (format!("user:{ed}"), 2, false),
        ];
        let mut expect_y = vec![
            ("role:Editor".to_owned(), 1, false),
            (format!("user:{ed}"), 1, false),
            (format!("user:{vic}"), 4, false),
        ];
        expect_y.sort();
        for round in 0..8 {
            let path = "/api/folders/f/permissions";
            let (one, two) = tokio::join!(
                as_admin("POST", &a, path, x.clone()),
                as_admin("POST", &b, path, y.clone()),
            );
            check(&one, 200, "Folder permissions updated");
            check(&two, 200, "Folder permissions updated");
            let list = summary(&as_admin_ok("GET", &a, path, Value::Null).await.json());
            assert!(
                list == expect_x || list == expect_y,
                "round {round}: a mix of two lists: {list:?}"
            );
        }
    }
);
