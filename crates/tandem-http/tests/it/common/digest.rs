//! A snapshot of every content table, to tell that a refused write wrote nothing.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};

use serde_json::Value;
use tandem_storage::sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
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

/// What every content table holds, by table: its row count and a digest of its rows.
pub(crate) type Snapshot = BTreeMap<String, Vec<Value>>;

/// Reads every content table of `db`: a row count and a digest of the rows per table,
/// computed by the database in one statement (copying every row into JSON after each
/// refused write was most of the bad-input battery's time).
pub(crate) async fn snapshot(db: &Database) -> Snapshot {
    let conn = db.connection();
    let names: Vec<String> = tables(db.backend(), conn)
        .await
        .into_iter()
        .filter(|table| !BOOKKEEPING.contains(&table.as_str()))
        .collect();
    let sql = match db.backend() {
        Backend::Postgres => postgres_digests(&names),
        Backend::Mysql => mysql_digests(&names, &columns(conn, MYSQL_COLUMNS).await),
        Backend::Sqlite => sqlite_digests(&names, &columns(conn, SQLITE_COLUMNS).await),
    };
    let rows = conn
        .query_all_raw(Statement::from_string(conn.get_database_backend(), sql))
        .await
        .unwrap_or_else(|err| panic!("digest the content tables: {err}"));
    rows.iter()
        .map(|row| {
            let table: String = row.try_get("", "t").expect("a table name");
            let count: i64 = row.try_get("", "n").expect("a row count");
            let text: String = row.try_get("", "h").expect("a digest");
            // PostgreSQL's and MariaDB's are short already; SQLite's is the rows themselves.
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            text.hash(&mut hasher);
            let digest = hasher.finish();
            (
                table,
                vec![serde_json::json!({"rows": count, "digest": digest})],
            )
        })
        .collect()
}

/// PostgreSQL: the md5 of each table's rows as JSON (the seen columns removed), sorted.
fn postgres_digests(tables: &[String]) -> String {
    let seen: String = SEEN_COLUMNS.iter().map(|c| format!(" - '{c}'")).collect();
    tables
        .iter()
        .map(|table| {
            format!(
                "SELECT CAST('{table}' AS TEXT) AS t, COUNT(*) AS n, \
                 md5(COALESCE(string_agg(x, '|' ORDER BY x), '')) AS h \
                 FROM (SELECT (to_jsonb(r){seen})::text AS x FROM \"{table}\" r) s"
            )
        })
        .collect::<Vec<_>>()
        .join(" UNION ALL ")
}

const MYSQL_COLUMNS: &str = "SELECT CAST(table_name AS CHAR) AS t, CAST(column_name AS CHAR) AS c \
     FROM information_schema.columns WHERE table_schema = DATABASE() \
     ORDER BY table_name, ordinal_position";

const SQLITE_COLUMNS: &str = "SELECT m.name AS t, p.name AS c FROM sqlite_master m \
     JOIN pragma_table_info(m.name) p WHERE m.type = 'table' ORDER BY m.name, p.cid";

/// The columns of every table (from `sql`, rows of `t` and `c`), the seen columns left out.
async fn columns(conn: &DatabaseConnection, sql: &str) -> BTreeMap<String, Vec<String>> {
    let rows = conn
        .query_all_raw(Statement::from_string(conn.get_database_backend(), sql))
        .await
        .expect("list the columns");
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for row in &rows {
        let table: String = row.try_get("", "t").expect("a table name");
        let column: String = row.try_get("", "c").expect("a column name");
        if !SEEN_COLUMNS.contains(&column.as_str()) {
            out.entry(table).or_default().push(column);
        }
    }
    out
}

/// One `SELECT` per table, joined by `UNION ALL`: `row` makes one row's text from the
/// table's columns, `select` the statement that aggregates those texts into `t`, `n`, `h`.
fn per_table(
    tables: &[String],
    columns: &BTreeMap<String, Vec<String>>,
    row: impl Fn(&[String]) -> String,
    select: impl Fn(&str, &str) -> String,
) -> String {
    tables
        .iter()
        .map(|table| {
            let fields = columns.get(table).map(Vec::as_slice).unwrap_or_default();
            let text = if fields.is_empty() {
                "''".to_owned()
            } else {
                row(fields)
            };
            select(table, &text)
        })
        .collect::<Vec<_>>()
        .join(" UNION ALL ")
}

/// MySQL/MariaDB: the sum of each row's CRC32 over its columns (order does not matter),
/// NULL told apart from every value.
fn mysql_digests(tables: &[String], columns: &BTreeMap<String, Vec<String>>) -> String {
    per_table(
        tables,
        columns,
        |fields| {
            let hexed: Vec<String> = fields
                .iter()
                .map(|c| format!("COALESCE(HEX(CAST(`{c}` AS BINARY)), 'NULL')"))
                .collect();
            format!("CONCAT_WS('|', {})", hexed.join(", "))
        },
        |table, row| {
            format!(
                "SELECT CAST('{table}' AS CHAR) AS t, COUNT(*) AS n, \
                 CAST(COALESCE(SUM(CRC32({row})), 0) AS CHAR) AS h FROM `{table}`"
            )
        },
    )
}

/// SQLite: every row's quoted columns, sorted and joined (hashed once read).
fn sqlite_digests(tables: &[String], columns: &BTreeMap<String, Vec<String>>) -> String {
    per_table(
        tables,
        columns,
        |fields| {
            let quoted: Vec<String> = fields.iter().map(|c| format!("quote(\"{c}\")")).collect();
            quoted.join(" || '|' || ")
        },
        |table, row| {
            format!(
                "SELECT '{table}' AS t, COUNT(*) AS n, COALESCE(group_concat(x, char(31)), '') AS h \
                 FROM (SELECT {row} AS x FROM \"{table}\" ORDER BY x)"
            )
        },
    )
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
