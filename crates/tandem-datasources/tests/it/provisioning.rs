//! File provisioning on every backend: two instances provisioning the same files at once
//! make one row and one version; a changed file updates; read-only data sources refuse the
//! API; deleteDatasources; the loop picks up a changed file and stops when cancelled.

use std::sync::Arc;
use std::time::Duration;

use tandem_datasources::{
    DataSourceKey, DataSourceProvisioner, DataSourceProvisioning, DataSourceSpec, DataSourceStore,
    Error, OrgId, ProvisioningReport, SqlDataSourceStore, UpdateDataSource, Version,
};
use tokio_util::sync::CancellationToken;

use crate::common::SECRET_KEY;

fn write(dir: &std::path::Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).expect("write a provisioning file");
}

fn file(url_var: &str, other_org: bool) -> String {
    let other = if other_org {
        "  - name: Other org\n    type: testdata\n    orgId: 7\n"
    } else {
        ""
    };
    format!(
        "apiVersion: 1\ndatasources:\n  - name: Prometheus\n    type: prometheus\n    uid: prov-prom\n    url: {url_var}\n    isDefault: true\n    jsonData: {{httpMethod: GET}}\n    secureJsonData: {{basicAuthPassword: $PASSWORD}}\n  - name: Editable\n    type: testdata\n    editable: true\n{other}"
    )
}

tandem_storage::backend_tests!(
    instances_provisioning_the_same_files_agree,
    |test: tandem_storage::testkit::TestDatabase| async move {
        let dir =
            std::env::temp_dir().join(format!("tandem-ds-prov-{:016x}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).expect("dir");
        write(&dir, "datasources.yaml", &file("${PROM_URL}", true));
        write(&dir, "notes.txt", "not yaml");
        let lookup = |name: &str| match name {
            "PROM_URL" => Some("http://prometheus:9090".to_owned()),
            "PASSWORD" => Some("from-the-environment".to_owned()),
            _ => None,
        };
        let stores: Vec<Arc<dyn DataSourceStore>> = vec![
            Arc::new(SqlDataSourceStore::new(
                test.connect_migrated().await,
                SECRET_KEY,
            )),
            Arc::new(SqlDataSourceStore::new(test.connect().await, SECRET_KEY)),
        ];
        let config = DataSourceProvisioning::load_dir(&dir, lookup).expect("config");
        assert_eq!(config.datasources.len(), 3);

        // Both instances provision at once, several times each.
        let racers = (0..6).map(|i| {
            let (store, config) = (stores[i % 2].clone(), config.clone());
            tokio::spawn(async move { DataSourceProvisioner::new(store).apply(&config).await })
        });
        let mut total = ProvisioningReport::default();
        for racer in racers {
            let report = racer.await.expect("join").expect("apply");
            total.created += report.created;
            total.unchanged += report.unchanged;
            total.updated += report.updated;
            total.failed += report.failed;
        }
        assert_eq!(
            (total.created, total.updated, total.failed, total.unchanged),
            (3, 0, 0, 15)
        );
        let org = OrgId(1);
        let listed = stores[1].list(org).await.expect("list");
        assert_eq!(listed.len(), 2);
        let prom = listed
            .iter()
            .find(|ds| ds.name == "Prometheus")
            .expect("provisioned");
        assert_eq!(
            (
                prom.uid.as_str(),
                prom.version,
                prom.read_only,
                prom.is_default
            ),
            ("prov-prom", Version(1), true, true)
        );
        assert_eq!(prom.url, "http://prometheus:9090");
        let (_, secrets) = stores[0]
            .get_with_secrets(org, &DataSourceKey::Uid(prom.uid.clone()))
            .await
            .expect("get")
            .expect("found");
        assert_eq!(
            secrets.get("basicAuthPassword"),
            Some("from-the-environment")
        );
        assert_eq!(stores[0].list(OrgId(7)).await.expect("list").len(), 1);

        // The API may not change a read-only data source, but may change an editable one.
        let update = |name: &str| UpdateDataSource {
            version: None,
            spec: DataSourceSpec {
                name: name.to_owned(),
                kind: "testdata".to_owned(),
                ..DataSourceSpec::default()
            },
        };
        assert!(matches!(
            stores[0]
                .update(org, &DataSourceKey::Uid(prom.uid.clone()), update("x"))
                .await,
            Err(Error::ReadOnly)
        ));
        assert!(matches!(
            stores[1]
                .delete(org, &DataSourceKey::Uid(prom.uid.clone()))
                .await,
            Err(Error::ReadOnly)
        ));
        stores[0]
            .update(
                org,
                &DataSourceKey::Name("Editable".to_owned()),
                update("Editable"),
            )
            .await
            .expect("editable");

        // The file changes: one update, seen by both; unchanged entries stay as they are.
        write(
            &dir,
            "datasources.yaml",
            &file("http://prometheus-2:9090", false),
        );
        write(
            &dir,
            "zz-delete.yaml",
            "apiVersion: 1\ndeleteDatasources:\n  - name: Other org\n    orgId: 7\n",
        );
        let changed = DataSourceProvisioning::load_dir(&dir, lookup).expect("config");
        let first = DataSourceProvisioner::new(stores[0].clone())
            .apply(&changed)
            .await
            .expect("apply");
        let second = DataSourceProvisioner::new(stores[1].clone())
            .apply(&changed)
            .await
            .expect("apply");
        // The API's edit of the editable one stands: its entry did not change.
        assert_eq!(
            (first.updated, first.deleted, first.created, first.unchanged),
            (1, 1, 0, 1),
            "{first:?}"
        );
        assert_eq!(
            (second.updated, second.deleted, second.unchanged),
            (0, 0, 2),
            "{second:?}"
        );
        assert!(stores[0].list(OrgId(7)).await.expect("list").is_empty());
        let prom = stores[1]
            .get(org, &DataSourceKey::Uid(prom.uid.clone()))
            .await
            .expect("get")
            .expect("found");
        assert_eq!(
            (prom.url.as_str(), prom.version),
            ("http://prometheus-2:9090", Version(2))
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
);

#[tokio::test]
async fn the_loop_applies_changed_files_until_cancelled() {
    let (_db, service) = crate::common::sqlite_instance().await;
    let dir = std::env::temp_dir().join(format!("tandem-ds-loop-{:016x}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).expect("dir");
    write(
        &dir,
        "a.yaml",
        "apiVersion: 1\ndatasources:\n  - {name: Looped, type: testdata, jsonData: {v: 1}}\n",
    );
    let provisioner = DataSourceProvisioner::new(service.store().clone());
    let cancel = CancellationToken::new();
    let task = tokio::spawn({
        let (cancel, dir) = (cancel.clone(), dir.clone());
        async move {
            provisioner
                .run(&dir, |_| None, Duration::from_millis(100), cancel)
                .await
        }
    });
    let key = DataSourceKey::Name("Looped".to_owned());
    let wait_for = |version: i64| {
        let (service, key) = (service.clone(), key.clone());
        async move {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
            loop {
                if let Ok(Some(ds)) = service.store().get(OrgId(1), &key).await
                    && ds.version == Version(version)
                {
                    return ds;
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "version {version} is provisioned"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    assert_eq!(wait_for(1).await.json_data["v"], 1);
    write(
        &dir,
        "a.yaml",
        "apiVersion: 1\ndatasources:\n  - {name: Looped, type: testdata, jsonData: {v: 2}}\n",
    );
    assert_eq!(wait_for(2).await.json_data["v"], 2);
    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(30), task)
        .await
        .expect("the loop stops when cancelled")
        .expect("the loop task");
    let _ = std::fs::remove_dir_all(&dir);
}
