use std::path::PathBuf;
use std::time::Duration;

/// Which database engine Tandem talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Backend {
    /// An embedded SQLite file, the single-instance default.
    Sqlite,
    /// PostgreSQL, shared by several instances.
    Postgres,
    /// MySQL or MariaDB, shared by several instances.
    Mysql,
}

impl Backend {
    /// Grafana's name for the backend in `[database] type`.
    pub fn grafana_name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite3",
            Backend::Postgres => "postgres",
            Backend::Mysql => "mysql",
        }
    }
}

/// Where the database is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// A SQLite database file; created when missing.
    SqliteFile(PathBuf),
    /// A `postgres://` or `mysql://` URL, credentials included.
    Url(String),
}

impl Location {
    /// The SQLite file, if this is one.
    pub fn sqlite_path(&self) -> Option<&std::path::Path> {
        match self {
            Location::SqliteFile(path) => Some(path),
            Location::Url(_) => None,
        }
    }
}

/// Typed `[database]` settings; `Default` is the documented default.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseSettings {
    /// The engine.
    pub backend: Backend,
    /// The file or the server.
    pub location: Location,
    /// Upper bound of the connection pool (`max_open_conn`; Grafana's 0, "unlimited", is
    /// mapped to [`DatabaseSettings::DEFAULT_MAX_OPEN`] by the caller).
    pub max_open_conn: u32,
    /// Connections kept open while idle (`max_idle_conn`).
    pub max_idle_conn: u32,
    /// A connection older than this is closed and replaced (`conn_max_lifetime`).
    pub conn_max_lifetime: Duration,
    /// How long a request waits for a free pooled connection before failing.
    pub acquire_timeout: Duration,
    /// SQLite write-ahead logging (`wal`), which lets readers and one writer work at once.
    pub wal: bool,
    /// How long SQLite waits on a lock held by another connection or process.
    pub sqlite_busy_timeout: Duration,
    /// Take a database-level lock around migrations (`migration_locking`).
    pub migration_locking: bool,
    /// How long to wait for another instance's migration lock; `None` waits as long as it
    /// takes (`locking_attempt_timeout_sec`, 0 = no limit).
    pub migration_lock_timeout: Option<Duration>,
    /// How many times a failed read is retried (`query_retries`).
    pub query_retries: u32,
    /// How many times a transaction that hit a busy, deadlock or serialization error is
    /// retried (`transaction_retries`).
    pub transaction_retries: u32,
    /// Log every SQL statement at debug level (`log_queries`); off by default.
    pub log_queries: bool,
}

impl DatabaseSettings {
    /// The pool bound used when `max_open_conn` is 0: sqlx pools need a finite bound.
    pub const DEFAULT_MAX_OPEN: u32 = 20;

    /// Settings for a SQLite file, everything else at its default.
    pub fn sqlite(path: impl Into<PathBuf>) -> Self {
        DatabaseSettings {
            location: Location::SqliteFile(path.into()),
            ..DatabaseSettings::default()
        }
    }

    /// Settings for a `postgres://` or `mysql://` URL, everything else at its default.
    pub fn from_url(url: &str) -> crate::Result<Self> {
        let backend = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else if url.starts_with("mysql://") || url.starts_with("mariadb://") {
            Backend::Mysql
        } else {
            return Err(crate::Error::InvalidSettings(
                "a database url must start with postgres:// or mysql://".to_owned(),
            ));
        };
        Ok(DatabaseSettings {
            backend,
            location: Location::Url(url.to_owned()),
            ..DatabaseSettings::default()
        })
    }
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        DatabaseSettings {
            backend: Backend::Sqlite,
            location: Location::SqliteFile(PathBuf::from("data/tandem.db")),
            max_open_conn: DatabaseSettings::DEFAULT_MAX_OPEN,
            max_idle_conn: 2,
            conn_max_lifetime: Duration::from_secs(14_400),
            acquire_timeout: Duration::from_secs(10),
            wal: true,
            sqlite_busy_timeout: Duration::from_secs(5),
            migration_locking: true,
            migration_lock_timeout: None,
            query_retries: 0,
            transaction_retries: 5,
            log_queries: false,
        }
    }
}

// Written by hand so that a password inside the URL never reaches a log line.
impl std::fmt::Debug for DatabaseSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let location = match &self.location {
            Location::SqliteFile(path) => path.display().to_string(),
            Location::Url(url) => redact_url(url),
        };
        f.debug_struct("DatabaseSettings")
            .field("backend", &self.backend)
            .field("location", &location)
            .field("max_open_conn", &self.max_open_conn)
            .field("max_idle_conn", &self.max_idle_conn)
            .field("conn_max_lifetime", &self.conn_max_lifetime)
            .field("wal", &self.wal)
            .field("migration_locking", &self.migration_locking)
            .field("transaction_retries", &self.transaction_retries)
            .finish_non_exhaustive()
    }
}

/// The URL with its password replaced by `***`, for logs and error messages.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    // The password may hold a '/', so the credentials end at the last '@' before the query.
    let before_query = rest.split('?').next().unwrap_or(rest);
    match before_query.rfind('@') {
        Some(at) => {
            let userinfo = &rest[..at];
            let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
            format!("{scheme}://{user}:***{}", &rest[at..])
        }
        None => url.to_owned(),
    }
}

/// The password inside `url`, if it has one (used to scrub driver error messages).
pub(crate) fn url_password(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let before_query = rest.split('?').next().unwrap_or(rest);
    let userinfo = &rest[..before_query.rfind('@')?];
    userinfo
        .split_once(':')
        .map(|(_, password)| password)
        .filter(|p| !p.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_hides_only_the_password() {
        assert_eq!(
            redact_url("postgres://grafana:s3cret@db:5432/grafana"),
            "postgres://grafana:***@db:5432/grafana"
        );
        assert_eq!(
            redact_url("mysql://root@localhost/test"),
            "mysql://root:***@localhost/test"
        );
        assert_eq!(redact_url("postgres://db/test"), "postgres://db/test");
        assert_eq!(
            redact_url("mysql://u:a/b@c@db:3306/x?ssl=1"),
            "mysql://u:***@db:3306/x?ssl=1"
        );
        assert_eq!(url_password("mysql://u:a/b@c@db:3306/x"), Some("a/b@c"));
        assert_eq!(url_password("mysql://u@db/x"), None);
    }

    #[test]
    fn debug_output_never_shows_the_password() {
        let settings = DatabaseSettings::from_url("postgres://u:hunter2@h/db").unwrap();
        assert!(!format!("{settings:?}").contains("hunter2"));
    }
}
