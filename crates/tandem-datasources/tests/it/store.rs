//! The SQL store passes the `DataSourceStore` conformance suite on every backend, through two
//! pools on one database standing for two instances, and keeps no secret in plain text.

use std::sync::Arc;

use sea_orm::{ConnectionTrait, Statement};
use tandem_datasources::{
    DataSourceKey, DataSourceSpec, DataSourceStore, Error, NewDataSource, OrgId, SqlDataSourceStore,
};

const SECRET_KEY: &str = "conformance-secret-key";

tandem_storage::backend_tests!(
    data_source_store_conformance,
    |test: tandem_storage::testkit::TestDatabase| async move {
        let first = test.connect_migrated().await;
        let second = test.connect().await;
        let stores: Vec<Arc<dyn DataSourceStore>> = vec![
            Arc::new(SqlDataSourceStore::new(first, SECRET_KEY)),
            Arc::new(SqlDataSourceStore::new(second, SECRET_KEY)),
        ];
        tandem_datasources::testkit::conformance::all(stores).await;
    }
);

tandem_storage::backend_tests!(
    secrets_are_sealed_at_rest,
    |test: tandem_storage::testkit::TestDatabase| async move {
        let db = test.connect_migrated().await;
        let store = SqlDataSourceStore::new(db.clone(), SECRET_KEY);
        let mut spec = tandem_datasources::testkit::conformance::prometheus("Sealed");
        spec.basic_auth = true;
        spec.secure_json_data = [
            ("basicAuthPassword", "plaintext-password-1234"),
            ("httpHeaderValue1", "Bearer plaintext-token-5678"),
        ]
        .into_iter()
        .collect();
        let created = store
            .create(NewDataSource {
                org_id: OrgId(1),
                uid: None,
                spec,
            })
            .await
            .expect("create");

        let rows = db
            .connection()
            .query_all_raw(Statement::from_string(
                db.connection().get_database_backend(),
                "SELECT * FROM data_source".to_owned(),
            ))
            .await
            .expect("read the raw rows");
        assert_eq!(rows.len(), 1);
        let sealed: String = rows[0].try_get("", "secure_json_data").expect("column");
        assert!(sealed.starts_with("v1."), "{sealed}");
        let raw = format!("{:?}", rows[0]);
        for plaintext in ["plaintext-password-1234", "plaintext-token-5678"] {
            assert!(
                !raw.contains(plaintext),
                "the row holds {plaintext} in the clear"
            );
        }

        // An instance with another secret_key cannot open them, and says so.
        let wrong = SqlDataSourceStore::new(db.clone(), "another key");
        let key = DataSourceKey::Uid(created.uid.clone());
        assert!(matches!(
            wrong.get_with_secrets(OrgId(1), &key).await,
            Err(Error::Secrets(_))
        ));
        assert!(
            wrong
                .get(OrgId(1), &key)
                .await
                .expect("reads without secrets work")
                .is_some()
        );
        let _ = DataSourceSpec::default();
    }
);
