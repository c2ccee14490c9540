//! The provisioning loop an embedder starts: configuration read from a directory of YAML
//! files, dashboards appearing while it runs, and a prompt stop when cancelled.

use std::sync::Arc;
use std::time::Duration;

use tandem_dashboards::{
    DashboardSettings, DashboardUid, Dashboards, NoEvents, OrgId, Provisioner, ProvisioningConfig,
    SqlDashboardStore,
};
use tokio_util::sync::CancellationToken;

tandem_storage::backend_tests!(
    provisioning_loop_runs_until_cancelled,
    |test: tandem_storage::testkit::TestDatabase| async move {
        let root = std::env::temp_dir().join(format!(
            "tandem-provisioning-loop-{:016x}",
            rand::random::<u64>()
        ));
        let (config_dir, files_dir) = (root.join("provisioning"), root.join("files"));
        std::fs::create_dir_all(&config_dir).expect("config dir");
        std::fs::create_dir_all(&files_dir).expect("files dir");
        std::fs::write(
            config_dir.join("dashboards.yaml"),
            "apiVersion: 1\nproviders:\n  - name: loop\n    orgId: 3\n    folder: From files\n    updateIntervalSeconds: 1\n    options:\n      path: ${FILES}\n",
        )
        .expect("write config");
        std::fs::write(config_dir.join("ignored.txt"), "not yaml").expect("write");
        std::fs::write(
            files_dir.join("a.json"),
            r#"{"uid": "loop-a", "title": "Loop A"}"#,
        )
        .expect("write dashboard");
        let files = files_dir.to_string_lossy().into_owned();
        let lookup = move |name: &str| (name == "FILES").then(|| files.clone());
        let config = ProvisioningConfig::load_dir(&config_dir, lookup).expect("config");
        assert_eq!(config.providers.len(), 1);
        assert_eq!(config.update_interval(), Duration::from_secs(1));
        assert_eq!(
            ProvisioningConfig::load_dir(&root.join("absent"), |_| None).expect("no directory"),
            ProvisioningConfig::default()
        );

        let dashboards = Dashboards::new(
            Arc::new(SqlDashboardStore::new(test.connect_migrated().await)),
            Arc::new(NoEvents),
            DashboardSettings::default(),
        );
        let provisioner = Provisioner::new(dashboards.clone(), config.providers.clone());
        let cancel = CancellationToken::new();
        let task = tokio::spawn({
            let cancel = cancel.clone();
            async move { provisioner.run(config.update_interval(), cancel).await }
        });
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let found = loop {
            if let Ok(found) = dashboards
                .get(OrgId(3), &DashboardUid::from("loop-a"))
                .await
            {
                break found;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the loop provisions the file"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert_eq!(found.title, "Loop A");
        assert_eq!(found.folder.map(|f| f.title).as_deref(), Some("From files"));
        cancel.cancel();
        tokio::time::timeout(Duration::from_secs(30), task)
            .await
            .expect("the loop stops when cancelled")
            .expect("the loop task");
        let _ = std::fs::remove_dir_all(&root);
    }
);
