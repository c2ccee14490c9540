//! Data sources through the HTTP API of several instances on one database: created on one
//! and queried through another, an edit on one used by the next query on the other, of
//! two concurrent edits of one version exactly one wins, a deletion seen at once, files
//! provisioned by every instance make one row; Grafana 12's roles, shapes and messages.

use serde_json::{Value, json};
use tandem_datasources::DataSourceProvisioning;
use tandem_datasources::testkit::prometheus::{
    BASIC_AUTH_PASSWORD, BASIC_AUTH_USER, PrometheusOptions, TestPrometheus,
};
use tandem_http::testkit::TestCluster;

use crate::common::{as_admin, as_admin_ok, basic, check, create_user, send};

/// The first sample, in seconds: a multiple of 60.
const T0: i64 = 1_700_000_040;

/// `tandem_value{instance="a"}` is k at T0 + 15k s, for ten minutes.
fn metrics() -> String {
    let mut text = String::from("# TYPE tandem_value gauge\n");
    for k in 0..=40 {
        text.push_str(&format!(
            "tandem_value{{instance=\"a\"}} {k} {}\n",
            T0 + 15 * k
        ));
    }
    text
}

fn range_query(uid: &str) -> Value {
    json!({"from": (T0 * 1000).to_string(), "to": ((T0 + 600) * 1000).to_string(), "queries": [
        {"refId": "A", "datasource": {"type": "prometheus", "uid": uid}, "expr": "tandem_value",
         "range": true, "intervalMs": 15000, "maxDataPoints": 1000},
        {"refId": "B", "datasource": {"type": "__expr__", "uid": "__expr__"}, "type": "reduce",
         "expression": "A", "reducer": "max"},
    ]})
}

tandem_http::cluster_tests!(
    an_edit_on_one_instance_is_used_by_the_next_query_on_the_other,
    2,
    |cluster: TestCluster| async move {
        let options = PrometheusOptions {
            basic_auth: true,
            ..PrometheusOptions::default()
        };
        let Some(prometheus) = TestPrometheus::start(&metrics(), options).await else {
            return;
        };
        let (a, b) = (cluster.url(0), cluster.url(1));
        let created = as_admin_ok(
            "POST",
            &a,
            "/api/datasources",
            json!({"name": "Prometheus", "uid": "prom", "type": "prometheus",
                "url": prometheus.url(), "access": "proxy", "basicAuth": true,
                "basicAuthUser": BASIC_AUTH_USER,
                "secureJsonData": {"basicAuthPassword": "not the password"}}),
        )
        .await;
        let body = created.json();
        assert_eq!(body["message"], "Datasource added");
        assert_eq!(body["name"], "Prometheus");
        assert_eq!(body["datasource"]["version"], 1);
        assert!(
            !created.text().contains("not the password"),
            "{}",
            created.text()
        );

        // Read through the other instance: the secret is only named.
        let read = as_admin_ok("GET", &b, "/api/datasources/uid/prom", Value::Null).await;
        let ds = read.json();
        assert_eq!(ds["secureJsonFields"], json!({"basicAuthPassword": true}));
        assert_eq!(ds["typeName"], "Prometheus");
        assert_eq!(ds["orgId"], 1);
        assert!(ds.get("secureJsonData").is_none(), "{ds}");
        assert!(!read.text().contains("not the password"));
        let id = ds["id"].as_i64().unwrap();
        for path in [
            format!("/api/datasources/{id}"),
            "/api/datasources/name/Prometheus".to_owned(),
        ] {
            let same = as_admin_ok("GET", &b, &path, Value::Null).await;
            assert_eq!(same.json()["uid"], "prom", "{path}");
        }
        let id_of = as_admin_ok("GET", &b, "/api/datasources/id/Prometheus", Value::Null).await;
        assert_eq!(id_of.json(), json!({"id": id}));

        // The wrong password fails the query, alone, as Grafana answers it.
        let failed = as_admin("POST", &b, "/api/ds/query", range_query("prom")).await;
        assert_eq!(failed.status, 400, "{}", failed.text());
        assert!(
            failed.json()["results"]["A"]["error"].is_string(),
            "{}",
            failed.text()
        );
        let health = as_admin("GET", &b, "/api/datasources/uid/prom/health", Value::Null).await;
        assert_eq!(health.status, 400, "{}", health.text());
        assert_eq!(health.json()["status"], "ERROR");

        // The password is fixed on A; B's very next query uses it.
        let mut update = ds.clone();
        update["secureJsonData"] = json!({"basicAuthPassword": BASIC_AUTH_PASSWORD});
        let updated = as_admin_ok("PUT", &a, "/api/datasources/uid/prom", update).await;
        assert_eq!(updated.json()["message"], "Datasource updated");
        assert_eq!(updated.json()["datasource"]["version"], 2);
        let answer = as_admin_ok("POST", &b, "/api/ds/query", range_query("prom")).await;
        let results = &answer.json()["results"];
        assert_eq!(results["A"]["status"], 200);
        let values = &results["A"]["frames"][0]["data"]["values"];
        assert_eq!(values[0].as_array().unwrap().len(), 41, "{values}");
        assert_eq!(values[1][40], 40.0);
        assert_eq!(results["B"]["frames"][0]["data"]["values"], json!([[40.0]]));
        let health = as_admin_ok("GET", &b, "/api/datasources/uid/prom/health", Value::Null).await;
        assert_eq!(
            health.json(),
            json!({"status": "OK", "message": "Successfully queried the Prometheus API."})
        );

        // A deletion on B is a 404 on A at once.
        let deleted = as_admin_ok("DELETE", &b, "/api/datasources/uid/prom", Value::Null).await;
        assert_eq!(
            deleted.json(),
            json!({"message": "Data source deleted", "id": id})
        );
        let gone = as_admin("GET", &a, "/api/datasources/uid/prom", Value::Null).await;
        check(&gone, 404, "Data source not found");
        cluster.shutdown().await;
    }
);

tandem_http::cluster_tests!(
    of_concurrent_edits_of_one_version_exactly_one_wins,
    2,
    |cluster: TestCluster| async move {
        let urls = cluster.urls();
        as_admin_ok(
            "POST",
            &urls[0],
            "/api/datasources",
            json!({"name": "TestData", "uid": "td", "type": "grafana-testdata-datasource"}),
        )
        .await;
        let edits = (0..10).map(|i| {
            let url = urls[i % 2].clone();
            async move {
                let body = json!({"name": "TestData", "type": "grafana-testdata-datasource",
                    "jsonData": {"edit": i}, "version": 1});
                as_admin("PUT", &url, "/api/datasources/uid/td", body).await
            }
        });
        let answers = futures_util::future::join_all(edits).await;
        let answers: Vec<Value> = answers
            .iter()
            .map(|response| {
                assert!(
                    response.status == 200 || response.status == 409,
                    "{}: {}",
                    response.status,
                    response.text()
                );
                if response.status == 409 {
                    assert_eq!(
                        response.json()["message"],
                        "Datasource has already been updated by someone else. Please reload and try again"
                    );
                }
                response.json()
            })
            .collect();
        let winners: Vec<&Value> = answers
            .iter()
            .filter(|body| body["message"] == "Datasource updated")
            .collect();
        assert_eq!(winners.len(), 1, "exactly one edit wins: {answers:?}");
        let stored = as_admin_ok("GET", &urls[1], "/api/datasources/uid/td", Value::Null).await;
        assert_eq!(stored.json()["version"], 2);
        assert_eq!(
            stored.json()["jsonData"],
            winners[0]["datasource"]["jsonData"],
            "the winner's edit is the one stored"
        );
        cluster.shutdown().await;
    }
);

tandem_http::cluster_tests!(
    admins_manage_data_sources_and_every_member_queries,
    1,
    |cluster: TestCluster| async move {
        let url = cluster.url(0);
        create_user(&url, "viewer", "viewer password").await;
        let editor_id = create_user(&url, "editor", "editor password").await;
        as_admin_ok(
            "PATCH",
            &url,
            &format!("/api/org/users/{editor_id}"),
            json!({"role": "Editor"}),
        )
        .await;
        as_admin_ok(
            "POST",
            &url,
            "/api/datasources",
            json!({"name": "TestData", "uid": "td", "type": "testdata"}),
        )
        .await;
        let viewer = basic("viewer", "viewer password");
        let editor = basic("editor", "editor password");
        for who in [&viewer, &editor] {
            for (method, path) in [
                ("GET", "/api/datasources"),
                ("GET", "/api/datasources/uid/td"),
                ("DELETE", "/api/datasources/uid/td"),
            ] {
                let response = send(method, &url, path, who, Value::Null).await;
                assert_eq!(response.status, 403, "{method} {path}: {}", response.text());
            }
            let create = send(
                "POST",
                &url,
                "/api/datasources",
                who,
                json!({"name": "Mine", "type": "testdata"}),
            )
            .await;
            assert_eq!(create.status, 403, "{}", create.text());
            let id = send(
                "GET",
                &url,
                "/api/datasources/id/TestData",
                who,
                Value::Null,
            )
            .await;
            assert_eq!(id.status, 200, "{}", id.text());
            let health = send(
                "GET",
                &url,
                "/api/datasources/uid/td/health",
                who,
                Value::Null,
            )
            .await;
            assert_eq!(
                health.json(),
                json!({"status": "OK", "message": "Data source is working"})
            );
            let query = json!({"from": "now-1h", "to": "now", "queries": [
                {"refId": "A", "datasource": {"uid": "td"}, "scenarioId": "random_walk",
                 "seriesCount": 2, "seed": 7},
            ]});
            let answer = send("POST", &url, "/api/ds/query", who, query).await;
            assert_eq!(answer.status, 200, "{}", answer.text());
            assert_eq!(
                answer.json()["results"]["A"]["frames"]
                    .as_array()
                    .unwrap()
                    .len(),
                2
            );
        }

        // Bad input is a 4xx naming the problem, and writes nothing.
        let duplicate = as_admin(
            "POST",
            &url,
            "/api/datasources",
            json!({"name": "TestData", "type": "testdata"}),
        )
        .await;
        check(
            &duplicate,
            409,
            "data source with the same name already exists",
        );
        for (body, status) in [
            (json!({"name": "X", "type": "influxdb-unknown"}), 400),
            (json!({"name": "  ", "type": "testdata"}), 400),
            (
                json!({"name": "P", "type": "prometheus", "url": "not a url"}),
                400,
            ),
            (
                json!({"name": "P", "type": "prometheus", "url": "ftp://host"}),
                400,
            ),
            (json!({"name": "x".repeat(500), "type": "testdata"}), 400),
            (
                json!({"name": "J", "type": "testdata", "jsonData": [1]}),
                400,
            ),
            (json!("a string"), 400),
        ] {
            let response = as_admin("POST", &url, "/api/datasources", body.clone()).await;
            assert_eq!(response.status, status, "{body}: {}", response.text());
            assert!(response.json()["message"].is_string());
        }
        let all = as_admin_ok("GET", &url, "/api/datasources", Value::Null).await;
        assert_eq!(all.json().as_array().unwrap().len(), 1, "{}", all.text());
        let item = &all.json()[0];
        for key in [
            "id",
            "uid",
            "orgId",
            "name",
            "type",
            "typeName",
            "typeLogoUrl",
            "access",
            "url",
            "user",
            "database",
            "basicAuth",
            "isDefault",
            "jsonData",
            "readOnly",
        ] {
            assert!(item.get(key).is_some(), "{key} missing from {item}");
        }
        let unknown = as_admin("GET", &url, "/api/datasources/uid/nope", Value::Null).await;
        check(&unknown, 404, "Data source not found");
        cluster.shutdown().await;
    }
);

/// The same provisioning file for every instance.
const PROVISIONED: &str = "apiVersion: 1
datasources:
  - name: Provisioned
    uid: prov
    type: grafana-testdata-datasource
    isDefault: true
    jsonData:
      team: ops
";

tandem_http::cluster_tests!(
    instances_provisioning_one_file_make_one_read_only_data_source,
    2,
    |_, settings| {
        settings.datasource_provisioning =
            DataSourceProvisioning::from_yaml(PROVISIONED, |_| None).expect("a valid file");
    },
    |cluster: TestCluster| async move {
        let (a, b) = (cluster.url(0), cluster.url(1));
        let all = as_admin_ok("GET", &a, "/api/datasources", Value::Null).await;
        assert_eq!(all.json().as_array().unwrap().len(), 1, "{}", all.text());
        let ds = as_admin_ok("GET", &b, "/api/datasources/uid/prov", Value::Null).await;
        assert_eq!(ds.json()["version"], 1, "one version for two instances");
        assert_eq!(ds.json()["readOnly"], true);
        assert_eq!(ds.json()["isDefault"], true);
        assert_eq!(ds.json()["jsonData"], json!({"team": "ops"}));
        let update = as_admin("PUT", &b, "/api/datasources/uid/prov", ds.json()).await;
        check(&update, 403, "Cannot update read-only data source");
        let delete = as_admin("DELETE", &a, "/api/datasources/uid/prov", Value::Null).await;
        check(&delete, 403, "Cannot delete read-only data source");
        cluster.shutdown().await;
    }
);
