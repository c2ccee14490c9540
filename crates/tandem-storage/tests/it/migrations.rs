use std::time::Duration;

use tandem_storage::sea_orm::{ConnectionTrait, Statement};
use tandem_storage::testkit::TestDatabase;
use tandem_storage::{Database, MigrationOptions};

const LOCKED: MigrationOptions = MigrationOptions {
    locking: true,
    lock_timeout: Some(Duration::from_secs(60)),
};

async fn recorded_versions(db: &Database) -> Vec<String> {
    let rows = db
        .connection()
        .query_all_raw(Statement::from_string(
            db.connection().get_database_backend(),
            "SELECT version FROM seaql_migrations ORDER BY version",
        ))
        .await
        .expect("read the migration table");
    rows.iter()
        .map(|row| row.try_get::<String>("", "version").expect("version"))
        .collect()
}

fn known_migrations() -> Vec<String> {
    use tandem_migrations::sea_orm_migration::MigratorTrait;
    tandem_migrations::Migrator::migrations()
        .iter()
        .map(|m| m.name().to_owned())
        .collect()
}

// Five instances, each with its own pool, start at the same moment on an empty database.
// All of them come up; every migration is applied by exactly one and recorded once.
tandem_storage::backend_tests!(
    five_instances_migrate_an_empty_database_at_once,
    |test: TestDatabase| async move {
        let mut pools = Vec::new();
        for _ in 0..5 {
            pools.push(test.connect().await);
        }
        let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(pools.len()));
        let mut tasks = Vec::new();
        for db in pools.clone() {
            let barrier = barrier.clone();
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                db.migrate(LOCKED).await
            }));
        }
        let mut applied = Vec::new();
        for task in tasks {
            let names = task
                .await
                .expect("instance task")
                .expect("every instance starts");
            applied.extend(names);
        }
        applied.sort();
        let expected = known_migrations();
        assert_eq!(
            applied, expected,
            "each migration applied by exactly one instance"
        );
        assert_eq!(
            recorded_versions(&pools[0]).await,
            expected,
            "each migration recorded once"
        );
        for db in &pools {
            db.ping()
                .await
                .expect("every instance can use the database");
        }
    }
);

tandem_storage::backend_tests!(
    a_migrated_database_needs_nothing_more,
    |test: TestDatabase| async move {
        let db = test.connect_migrated().await;
        assert_eq!(
            db.migrate(LOCKED).await.expect("second run"),
            Vec::<String>::new()
        );
        let unlocked = MigrationOptions {
            locking: false,
            lock_timeout: None,
        };
        assert_eq!(
            db.migrate(unlocked).await.expect("unlocked run"),
            Vec::<String>::new()
        );
        assert_eq!(recorded_versions(&db).await, known_migrations());
    }
);
