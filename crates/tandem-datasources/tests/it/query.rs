//! Queries through the service on every backend, with two instances on one database: a
//! data source created on one is queried through the other, an edit on one is used by the
//! next query on the other, a deletion is seen at once; errors stay per refId; org scoping.

use serde_json::json;
use tandem_datasources::{
    DataSourceKey, DataSourceSpec, Error, OrgId, QueryRequest, QueryService, UpdateDataSource,
};

use crate::common::{create, json_of, query, reference, two_instances};

fn pulse(reference: serde_json::Value, on: f64) -> serde_json::Value {
    json!({"refId": "T", "datasource": reference, "scenarioId": "predictable_pulse",
        "pulseWave": {"timeStep": 60, "onCount": 3, "offCount": 2, "onValue": on, "offValue": 1}})
}

tandem_storage::backend_tests!(
    instances_share_data_sources_and_see_edits_at_once,
    |test: tandem_storage::testkit::TestDatabase| async move {
        let [a, b] = two_instances(&test).await;
        let org = OrgId(1);
        let ds = create(
            &a,
            org,
            json!({"name": "TestData", "type": "grafana-testdata-datasource", "uid": "td"}),
        )
        .await;
        // 00:10 to 00:15 after the epoch day 19 675: a whole pulse period.
        let (from, to) = ("1699920000000", "1699920300000");
        let body =
            |on: f64| json!({"from": from, "to": to, "queries": [pulse(reference(&ds), on)]});
        let answer = json_of(&query(&b, org, body(10.0)).await);
        assert_eq!(answer["results"]["T"]["status"], 200);
        assert_eq!(
            answer["results"]["T"]["frames"][0]["data"]["values"],
            json!([
                [
                    1_699_920_000_000_i64,
                    1_699_920_060_000_i64,
                    1_699_920_120_000_i64,
                    1_699_920_180_000_i64,
                    1_699_920_240_000_i64
                ],
                [10.0, 10.0, 10.0, 1.0, 1.0]
            ])
        );
        assert_eq!(answer["results"]["T"]["frames"][0]["schema"]["refId"], "T");

        // Renaming on one instance: the other reaches it by its new name at once.
        a.store()
            .update(
                org,
                &DataSourceKey::Uid(ds.uid.clone()),
                UpdateDataSource {
                    version: Some(ds.version),
                    spec: DataSourceSpec {
                        name: "Renamed".to_owned(),
                        kind: "testdata".to_owned(),
                        ..DataSourceSpec::default()
                    },
                },
            )
            .await
            .expect("update");
        let by_name = json!({"from": from, "to": to, "queries": [pulse(json!("Renamed"), 5.0)]});
        assert_eq!(
            json_of(&query(&b, org, by_name.clone()).await)["results"]["T"]["status"],
            200
        );

        // Another org cannot reach it.
        let elsewhere = json_of(&query(&b, OrgId(2), body(10.0)).await);
        assert_eq!(elsewhere["results"]["T"]["status"], 404);

        // Deleted on one instance: the next query on the other is a 404 for that refId.
        a.store()
            .delete(org, &DataSourceKey::Uid(ds.uid.clone()))
            .await
            .expect("delete");
        assert!(matches!(
            b.health(org, &DataSourceKey::Uid(ds.uid.clone())).await,
            Err(Error::NotFound)
        ));
        let gone = json_of(&query(&b, org, body(10.0)).await);
        assert_eq!(
            gone["results"]["T"],
            json!({"error": "data source not found", "status": 404})
        );
    }
);

#[tokio::test]
async fn expressions_run_over_data_source_results_and_fail_alone() {
    let (_db, service) = crate::common::sqlite_instance().await;
    let org = OrgId(1);
    let td = create(
        &service,
        org,
        json!({"name": "td", "type": "testdata", "isDefault": true}),
    )
    .await;
    let expr = json!({"type": "__expr__", "uid": "__expr__"});
    let csv = |ref_id: &str, labels: &str, values: &str| {
        json!({"refId": ref_id, "datasource": reference(&td), "scenarioId": "csv_content",
            "csvContent": format!("time,value{{{labels}}}\n{values}")})
    };
    let body = json!({"from": "0", "to": "600000", "queries": [
        csv("A", "job=\"api\"", "0,1\n60000,2\n120000,4\n"),
        csv("Z", "job=\"db\"", "0,9\n"),
        {"refId": "B", "datasource": expr, "type": "reduce", "expression": "A", "reducer": "last"},
        {"refId": "C", "datasource": expr, "type": "math", "expression": "$B * 100"},
        {"refId": "D", "datasource": expr, "type": "threshold", "expression": "C",
         "conditions": [{"evaluator": {"type": "gt", "params": [300]}}]},
        {"refId": "E", "datasource": expr, "type": "resample", "expression": "A", "window": "1m",
         "downsampler": "mean", "upsampler": "pad"},
        {"refId": "F", "datasource": expr, "type": "classic_conditions", "conditions": [
            {"type": "query", "query": {"params": ["A"]}, "reducer": {"type": "avg"},
             "evaluator": {"type": "gt", "params": [2]}, "operator": {"type": "and"}}]},
        {"refId": "G", "datasource": expr, "type": "math", "expression": "$A +"},
        {"refId": "H", "datasource": expr, "type": "math", "expression": "$G * 2"},
        {"refId": "I", "datasource": expr, "type": "reduce", "expression": "NOPE", "reducer": "sum"},
        {"refId": "J", "datasource": expr, "type": "math", "expression": "$K + 1"},
        {"refId": "K", "datasource": expr, "type": "math", "expression": "$J + 1"},
        {"refId": "L", "datasource": {"uid": "missing"}, "scenarioId": "random_walk"},
        {"refId": "M", "datasource": expr, "type": "math", "expression": "$L + 1"},
        {"refId": "N", "scenarioId": "no_data_points"},
    ]});
    let answer = json_of(&query(&service, org, body).await);
    let results = &answer["results"];
    let number = |ref_id: &str| results[ref_id]["frames"][0]["data"]["values"][0][0].clone();
    assert_eq!(number("B"), json!(4.0));
    assert_eq!(
        results["B"]["frames"][0]["schema"]["fields"][0]["labels"],
        json!({"job": "api"})
    );
    assert_eq!(number("C"), json!(400.0));
    assert_eq!(number("D"), json!(1.0));
    assert_eq!(
        results["D"]["frames"][0]["schema"]["fields"][0]["labels"],
        json!({"job": "api"})
    );
    assert_eq!(
        results["E"]["frames"][0]["data"]["values"],
        json!([
            [
                0, 60000, 120000, 180000, 240000, 300000, 360000, 420000, 480000, 540000, 600000
            ],
            [1.0, 2.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0]
        ])
    );
    assert_eq!(number("F"), json!(1.0), "avg of 1, 2, 4 is above 2");
    for failing in ["G", "H", "I", "J", "K"] {
        assert_eq!(
            results[failing]["status"], 400,
            "{failing}: {}",
            results[failing]
        );
        assert!(results[failing]["error"].is_string());
    }
    assert_eq!(results["L"]["status"], 404);
    assert_eq!(
        results["M"]["status"], 404,
        "an expression over a missing source fails with it"
    );
    assert_eq!(
        results["N"],
        json!({"status": 200, "frames": []}),
        "no datasource: the default"
    );
    assert_eq!(results["Z"]["status"], 200);
}

#[tokio::test]
async fn bad_requests_are_refused_whole() {
    let (_db, service) = crate::common::sqlite_instance().await;
    for body in [
        json!({"from": "now-1h", "to": "now", "queries": []}),
        json!({"from": "later", "to": "now", "queries": [{"refId": "A"}]}),
        json!({"from": "now", "to": "now-1h", "queries": [{"refId": "A"}]}),
        json!({"queries": [{"refId": "A"}, {"refId": "A"}]}),
        json!({"queries": [{"refId": ""}]}),
        json!({"queries": [{"refId": "a\u{0}b"}]}),
        json!({"queries": (0..101).map(|i| json!({"refId": format!("R{i}")})).collect::<Vec<_>>()}),
    ] {
        let request: QueryRequest = serde_json::from_value(body.clone()).unwrap();
        let result = service.query(OrgId(1), request).await;
        assert!(
            matches!(result, Err(ref err) if err.is_client_error()),
            "{body}: {result:?}"
        );
    }
}
