//! Helpers shared by the integration tests.

use std::sync::Arc;

use serde_json::{Value, json};
use tandem_datasources::{
    DataSource, DataSourceService, DataSourceSettings, DataSourceSpec, NewDataSource, OrgId,
    QueryRequest, QueryResponse, QueryService, SqlDataSourceStore,
};
use tandem_storage::testkit::TestDatabase;

/// The `secret_key` every test instance shares.
pub(crate) const SECRET_KEY: &str = "integration-secret-key";

/// Two instances on one database: each its own pool, store and service.
pub(crate) async fn two_instances(test: &TestDatabase) -> [DataSourceService; 2] {
    let first = test.connect_migrated().await;
    let second = test.connect().await;
    [first, second].map(|db| {
        DataSourceService::new(
            Arc::new(SqlDataSourceStore::new(db, SECRET_KEY)),
            DataSourceSettings::default(),
        )
    })
}

/// One instance on a fresh SQLite database (for tests whose subject is not the storage).
pub(crate) async fn sqlite_instance() -> (TestDatabase, DataSourceService) {
    let test = TestDatabase::create(tandem_storage::Backend::Sqlite)
        .await
        .expect("SQLite is always available");
    let db = test.connect_migrated().await;
    let service = DataSourceService::new(
        Arc::new(SqlDataSourceStore::new(db, SECRET_KEY)),
        DataSourceSettings::default(),
    );
    (test, service)
}

/// Creates a data source from Grafana's JSON body.
pub(crate) async fn create(service: &DataSourceService, org: OrgId, body: Value) -> DataSource {
    let uid = body.get("uid").and_then(Value::as_str).map(Into::into);
    let spec: DataSourceSpec = serde_json::from_value(body).expect("a data source body");
    service
        .store()
        .create(NewDataSource {
            org_id: org,
            uid,
            spec,
        })
        .await
        .expect("create the data source")
}

/// Runs a query request given as Grafana's JSON body.
pub(crate) async fn query(service: &DataSourceService, org: OrgId, body: Value) -> QueryResponse {
    let request: QueryRequest = serde_json::from_value(body).expect("a query body");
    service
        .query(org, request)
        .await
        .expect("the request is valid")
}

/// The response as Grafana's JSON.
pub(crate) fn json_of(response: &QueryResponse) -> Value {
    serde_json::to_value(response).expect("serialise")
}

/// `{"type": …, "uid": …}` for a data source.
pub(crate) fn reference(ds: &DataSource) -> Value {
    json!({"type": ds.kind.as_str(), "uid": ds.uid.as_str()})
}
