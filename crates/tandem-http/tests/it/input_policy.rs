//! The five holes a hostile client found, one regression test each, on every backend: NUL
//! in text, paging numbers past `i64`, a key lifetime past any date, a dashboard with
//! 25 000 tags, and a search text over SQLite's pattern limit.

use serde_json::{Value, json};
use tandem_http::testkit::TestCluster;
use tandem_http::testkit::http;

use crate::common::{as_admin, as_admin_ok, basic, check, login_response, send};

tandem_http::cluster_tests!(
    nul_in_text_is_a_400_naming_the_field_everywhere,
    2,
    |cluster: TestCluster| async move {
        let (a, b) = (cluster.url(0), cluster.url(1));
        // In a body field, at any depth.
        let response = as_admin(
            "POST",
            &a,
            "/api/admin/users",
            json!({"name": "x", "login": "evil\u{0}", "password": "password1"}),
        )
        .await;
        check(&response, 400, "login must not contain a NUL character");
        let response = as_admin(
            "POST",
            &b,
            "/api/dashboards/db",
            json!({"dashboard": {"title": "t", "tags": ["ok", "bad\u{0}"]}}),
        )
        .await;
        check(
            &response,
            400,
            "dashboard.tags[1] must not contain a NUL character",
        );
        // In a path value and a query value.
        let response = as_admin("GET", &a, "/api/orgs/name/a%00b", Value::Null).await;
        check(&response, 400, "name must not contain a NUL character");
        let response = as_admin("GET", &b, "/api/dashboards/uid/x%00", Value::Null).await;
        check(&response, 400, "uid must not contain a NUL character");
        for query in [
            "/api/search?query=a%00",
            "/api/search?tag=a%00",
            "/api/search?folderUIDs=%00",
            "/api/users/lookup?loginOrEmail=admin%00",
            "/api/folders?parentUid=%00",
        ] {
            let response = as_admin("GET", &a, query, Value::Null).await;
            assert_eq!(response.status, 400, "{query}: {}", response.text());
            let message = response.json()["message"].as_str().unwrap().to_owned();
            assert!(
                message.ends_with("must not contain a NUL character"),
                "{message}"
            );
        }
        // Text that is not UTF-8 once decoded.
        let response = as_admin("GET", &a, "/api/search?query=%ff", Value::Null).await;
        check(&response, 400, "query parameter query is not valid UTF-8");
        // In credentials: the login is unknown, as any other would be.
        let response = send(
            "GET",
            &b,
            "/api/user",
            &basic("ad\u{0}min", "admin"),
            Value::Null,
        )
        .await;
        check(&response, 401, "Invalid username or password");
        let response = login_response(&a, "ad\u{0}min", "admin").await;
        check(&response, 400, "user must not contain a NUL character");
        // Nothing of it was stored: the unusual but legal text still round-trips.
        let odd = "O'Brien \"; DROP TABLE user;-- \u{202e}\u{1F600}";
        as_admin_ok("PUT", &a, "/api/org", json!({"name": odd})).await;
        let org = as_admin_ok("GET", &b, "/api/org", Value::Null).await;
        assert_eq!(org.json()["name"], odd);
        cluster.shutdown().await;
    }
);

tandem_http::cluster_tests!(
    paging_far_past_the_end_is_an_empty_page,
    2,
    |cluster: TestCluster| async move {
        let (a, b) = (cluster.url(0), cluster.url(1));
        as_admin_ok(
            "POST",
            &a,
            "/api/dashboards/db",
            json!({"dashboard": {"uid": "paged", "title": "Paged"}}),
        )
        .await;
        for page in ["9223372036854775807", "10000000000000000"] {
            for (path, items) in [
                ("/api/users", ""),
                ("/api/search", ""),
                ("/api/orgs", ""),
                ("/api/users/search", "/users"),
                ("/api/teams/search", "/teams"),
                ("/api/serviceaccounts/search", "/serviceAccounts"),
            ] {
                let response =
                    as_admin_ok("GET", &b, &format!("{path}?page={page}"), Value::Null).await;
                let body = response.json();
                assert_eq!(body.pointer(items), Some(&json!([])), "{path}: {body}");
            }
        }
        for query in [
            "limit=9223372036854775808",
            "start=9223372036854775808",
            "start=18446744073709551615",
        ] {
            let response = as_admin_ok(
                "GET",
                &b,
                &format!("/api/dashboards/uid/paged/versions?{query}"),
                Value::Null,
            )
            .await;
            let versions = response.json()["versions"].as_array().unwrap().len();
            assert!(versions <= 1, "{query}: {}", response.text());
        }
        // Past u64: refused, not wrapped.
        let response = as_admin(
            "GET",
            &a,
            "/api/search?page=18446744073709551616",
            Value::Null,
        )
        .await;
        assert_eq!(response.status, 400, "{}", response.text());
        cluster.shutdown().await;
    }
);

tandem_http::cluster_tests!(
    a_key_lifetime_past_any_date_is_refused,
    1,
    |cluster: TestCluster| async move {
        let url = cluster.url(0);
        let account = as_admin_ok(
            "POST",
            &url,
            "/api/serviceaccounts",
            json!({"name": "robot", "role": "Viewer"}),
        )
        .await;
        let id = account.json()["id"].as_i64().unwrap();
        let path = format!("/api/serviceaccounts/{id}/tokens");
        let response = as_admin(
            "POST",
            &url,
            &path,
            json!({"name": "forever", "secondsToLive": 9_223_372_036_854_775_807_i64}),
        )
        .await;
        check(
            &response,
            400,
            "secondsToLive must be at most 3155760000 (100 years)",
        );
        let tokens = as_admin_ok("GET", &url, &path, Value::Null).await;
        assert_eq!(tokens.json(), json!([]), "nothing was created");
        let response = as_admin_ok(
            "POST",
            &url,
            &path,
            json!({"name": "a century", "secondsToLive": 3_155_760_000_i64}),
        )
        .await;
        assert!(
            response.json()["key"]
                .as_str()
                .unwrap()
                .starts_with("glsa_")
        );
        cluster.shutdown().await;
    }
);

tandem_http::cluster_tests!(
    tags_are_bounded_in_count_and_all_kept_up_to_the_bound,
    2,
    |cluster: TestCluster| async move {
        let (a, b) = (cluster.url(0), cluster.url(1));
        let tags = |n: usize| (0..n).map(|i| format!("tag-{i:05}")).collect::<Vec<_>>();
        let response = as_admin(
            "POST",
            &a,
            "/api/dashboards/db",
            json!({"dashboard": {"uid": "tagged", "title": "Tagged", "tags": tags(25_000)}}),
        )
        .await;
        check(
            &response,
            400,
            "invalid dashboard: a dashboard can have at most 1000 tags",
        );
        let missing = as_admin("GET", &b, "/api/dashboards/uid/tagged", Value::Null).await;
        assert_eq!(missing.status, 404, "nothing was saved");
        // The bound itself is saved whole, in several inserts.
        as_admin_ok(
            "POST",
            &a,
            "/api/dashboards/db",
            json!({"dashboard": {"uid": "tagged", "title": "Tagged", "tags": tags(1000)}}),
        )
        .await;
        let stored = as_admin_ok("GET", &b, "/api/dashboards/tags", Value::Null).await;
        assert_eq!(stored.json().as_array().unwrap().len(), 1000);
        let hits = as_admin_ok("GET", &b, "/api/search?tag=tag-00999", Value::Null).await;
        assert_eq!(hits.json()[0]["uid"], "tagged");
        cluster.shutdown().await;
    }
);

tandem_http::cluster_tests!(
    a_search_text_over_the_pattern_limit_is_a_400_on_every_search,
    1,
    |cluster: TestCluster| async move {
        let url = cluster.url(0);
        let long = "x".repeat(60_000);
        let fits = "x".repeat(1000);
        for path in [
            "/api/users",
            "/api/users/search",
            "/api/orgs",
            "/api/org/users",
            "/api/orgs/1/users",
            "/api/teams/search",
            "/api/serviceaccounts/search",
            "/api/search",
        ] {
            let response =
                as_admin("GET", &url, &format!("{path}?query={long}"), Value::Null).await;
            check(&response, 400, "query must be at most 1000 characters long");
            let response = http::request(
                "GET",
                &format!("{url}{path}?query={fits}"),
                &[http::ADMIN],
                "",
            )
            .await
            .unwrap();
            assert_eq!(response.status, 200, "{path}: {}", response.text());
        }
        cluster.shutdown().await;
    }
);
