//! A snapshot of every content table, to tell that a refused write wrote nothing.

use std::collections::BTreeMap;

use serde_json::Value;
use tandem_storage::sea_orm::{ConnectionTrait, DatabaseConnection, FromQueryResult, Statement};
use tandem_storage::{Backend, Database};

/// Tables that a refused request may legitimately write, or that the cluster writes on its
/// own: failed logins are recorded (that is the brute-force protection), sessions are
/// seen and rotated, heartbeats, locks, leases and the cache tick in the background, and
/// the notification dispatcher plans groups and logs notifications from the alerts a
/// request posted earlier, whenever its next pass comes.
const BOOKKEEPING: &[&str] = &[
    "login_attempt",
    "user_auth_token",
    "alert_notification_group",
    "alert_notification_log",
    "cluster_member",
    "server_lock",
    "lease",
    "cache_data",
    "seaql_migrations",
    "tandem_migrations",
];

/// Columns written by reads, at most once a minute.
const SEEN_COLUMNS: &[&str] = &["last_seen_at", "last_used_at", "seen_at"];

/// The rows of every content table, by table.
pub(crate) type Snapshot = BTreeMap<String, Vec<Value>>;

/// Reads every content table of `db`.
pub(crate) async fn snapshot(db: &Database) -> Snapshot {
    let conn = db.connection();
    let mut out = Snapshot::new();
    for table in tables(db.backend(), conn).await {
        if BOOKKEEPING.contains(&table.as_str()) {
            continue;
        }
        let quoted = match db.backend() {
            Backend::Mysql => format!("`{table}`"),
            _ => format!("\"{table}\""),
        };
        let statement = Statement::from_string(
            conn.get_database_backend(),
            format!("SELECT * FROM {quoted}"),
        );
        let mut rows: Vec<Value> = Value::find_by_statement(statement)
            .all(conn)
            .await
            .unwrap_or_else(|err| panic!("read {table}: {err}"))
            .into_iter()
            .map(|mut row| {
                if let Some(fields) = row.as_object_mut() {
                    for column in SEEN_COLUMNS {
                        fields.remove(*column);
                    }
                }
                row
            })
            .collect();
        rows.sort_by_cached_key(|row| row.to_string());
        out.insert(table, rows);
    }
    out
}

/// The tables that differ between two snapshots, with a hint of how.
pub(crate) fn differences(before: &Snapshot, after: &Snapshot) -> Vec<String> {
    let mut out = Vec::new();
    for (table, rows) in after {
        let old = before.get(table).map(Vec::as_slice).unwrap_or_default();
        if old != rows.as_slice() {
            let added: Vec<&Value> = rows.iter().filter(|row| !old.contains(row)).collect();
            out.push(format!(
                "{table}: {} rows before, {} after; new or changed: {}",
                old.len(),
                rows.len(),
                serde_json::to_string(&added).unwrap_or_default()
            ));
        }
    }
    out
}

async fn tables(backend: Backend, conn: &DatabaseConnection) -> Vec<String> {
    let sql = match backend {
        Backend::Sqlite => {
            "SELECT name AS t FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        }
        Backend::Postgres => {
            "SELECT tablename::text AS t FROM pg_tables WHERE schemaname = current_schema()"
        }
        Backend::Mysql => {
            "SELECT CAST(table_name AS CHAR) AS t FROM information_schema.tables WHERE table_schema = DATABASE()"
        }
    };
    let rows = conn
        .query_all_raw(Statement::from_string(conn.get_database_backend(), sql))
        .await
        .expect("list the tables");
    let mut names: Vec<String> = rows
        .iter()
        .map(|row| row.try_get::<String>("", "t").expect("a table name"))
        .collect();
    names.sort();
    assert!(
        names.iter().any(|name| name == "dashboard"),
        "the schema is migrated: {names:?}"
    );
    names
}
