//! Silences over `alert_silence`: every write one transaction that reads the database's
//! clock, so states are decided by one clock for the whole cluster.

use sea_orm::{ConnectionTrait, QueryResult, Statement, Value};

use crate::notify::silence::{
    PostableSilence, Silence, SilenceMatcher, SilenceState, can_update, new_silence_id,
};
use crate::sql::notify::SqlNotificationStore;
use crate::sql::placeholders;
use crate::{Error, OrgId, Result};

const COLUMNS: &str = "id, org_id, matchers, starts_at, ends_at, updated_at, created_by, comment";

fn from_row(row: &QueryResult, now: i64) -> Result<Silence> {
    let matchers: String = row.try_get("", "matchers")?;
    let matchers: Vec<SilenceMatcher> = serde_json::from_str(&matchers)
        .map_err(|err| Error::Corrupt(format!("matchers: {err}")))?;
    let starts_at: i64 = row.try_get("", "starts_at")?;
    let ends_at: i64 = row.try_get("", "ends_at")?;
    Ok(Silence {
        id: row.try_get("", "id")?,
        org_id: OrgId(row.try_get("", "org_id")?),
        matchers,
        starts_at,
        ends_at,
        updated_at: row.try_get("", "updated_at")?,
        created_by: row.try_get("", "created_by")?,
        comment: row.try_get("", "comment")?,
        state: SilenceState::at(starts_at, ends_at, now),
    })
}

impl SqlNotificationStore {
    fn raw(&self, sql: &str, values: Vec<Value>) -> Statement {
        let backend = self.backend();
        Statement::from_sql_and_values(backend, placeholders(backend, sql), values)
    }

    /// The rows of `sql` (which must select `COLUMNS` and `db_now`) as silences.
    async fn read_silences(&self, sql: &str, values: Vec<Value>) -> Result<Vec<Silence>> {
        let rows = self.query(sql, values).await?;
        rows.iter()
            .map(|row| from_row(row, row.try_get("", "db_now")?))
            .collect()
    }

    pub(super) async fn set_silence_sql(
        &self,
        org: OrgId,
        silence: &PostableSilence,
    ) -> Result<String> {
        silence.validate()?;
        let now_sql = format!("SELECT {} AS db_now", self.now());
        let lock = if self.backend() == sea_orm::DbBackend::Sqlite {
            ""
        } else {
            " FOR UPDATE"
        };
        let select_sql =
            format!("SELECT {COLUMNS} FROM alert_silence WHERE org_id = ? AND id = ?{lock}");
        let matchers = serde_json::to_string(&silence.matchers)
            .map_err(|err| Error::Corrupt(err.to_string()))?;
        self.db
            .transaction(|tx| {
                let (now_sql, select_sql, matchers) =
                    (now_sql.clone(), select_sql.clone(), matchers.clone());
                async move {
                    let now: i64 = match tx.query_one_raw(self.raw(&now_sql, vec![])).await? {
                        Some(row) => row.try_get("", "db_now")?,
                        None => tandem_storage::now_ms(),
                    };
                    if silence.ends_at < now {
                        return Err(Error::BadRequest(
                            "Failed to create silence: end time can't be in the past".to_owned(),
                        ));
                    }
                    if let Some(id) = &silence.id {
                        let row = tx
                            .query_one_raw(self.raw(
                                &select_sql,
                                vec![Value::from(org.0), Value::from(id.clone())],
                            ))
                            .await?;
                        let Some(row) = row else {
                            return Err(Error::SilenceNotFound);
                        };
                        let prev = from_row(&row, now)?;
                        if can_update(&prev, silence, now) {
                            tx.execute_raw(self.raw(
                                "UPDATE alert_silence SET matchers = ?, starts_at = ?, ends_at = ?, updated_at = ?, created_by = ?, comment = ? WHERE id = ?",
                                vec![
                                    Value::from(matchers),
                                    Value::from(silence.starts_at),
                                    Value::from(silence.ends_at),
                                    Value::from(now),
                                    Value::from(silence.created_by.clone()),
                                    Value::from(silence.comment.clone()),
                                    Value::from(id.clone()),
                                ],
                            ))
                            .await?;
                            return Ok(id.clone());
                        }
                        if prev.state != SilenceState::Expired {
                            tx.execute_raw(expire_statement(self, &prev, now)).await?;
                        }
                    }
                    let id = new_silence_id();
                    tx.execute_raw(self.raw(
                        &format!("INSERT INTO alert_silence ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"),
                        vec![
                            Value::from(id.clone()),
                            Value::from(org.0),
                            Value::from(matchers),
                            Value::from(silence.starts_at.max(now)),
                            Value::from(silence.ends_at),
                            Value::from(now),
                            Value::from(silence.created_by.clone()),
                            Value::from(silence.comment.clone()),
                        ],
                    ))
                    .await?;
                    Ok(id)
                }
            })
            .await
    }

    pub(super) async fn silence_sql(&self, org: OrgId, id: &str) -> Result<Option<Silence>> {
        let sql = format!(
            "SELECT {COLUMNS}, {} AS db_now FROM alert_silence WHERE org_id = ? AND id = ?",
            self.now()
        );
        Ok(self
            .read_silences(&sql, vec![Value::from(org.0), Value::from(id)])
            .await?
            .into_iter()
            .next())
    }

    pub(super) async fn silences_sql(&self, org: OrgId) -> Result<Vec<Silence>> {
        let sql = format!(
            "SELECT {COLUMNS}, {} AS db_now FROM alert_silence WHERE org_id = ? ORDER BY updated_at DESC, id",
            self.now()
        );
        self.read_silences(&sql, vec![Value::from(org.0)]).await
    }

    pub(super) async fn active_silences_sql(&self) -> Result<Vec<Silence>> {
        let now = self.now();
        let sql = format!(
            "SELECT {COLUMNS}, {now} AS db_now FROM alert_silence WHERE ends_at > {now} AND starts_at <= {now}"
        );
        self.read_silences(&sql, vec![]).await
    }

    pub(super) async fn expire_silence_sql(&self, org: OrgId, id: &str) -> Result<()> {
        let now_sql = format!("SELECT {} AS db_now", self.now());
        let lock = if self.backend() == sea_orm::DbBackend::Sqlite {
            ""
        } else {
            " FOR UPDATE"
        };
        let select_sql =
            format!("SELECT {COLUMNS} FROM alert_silence WHERE org_id = ? AND id = ?{lock}");
        self.db
            .transaction(|tx| {
                let (now_sql, select_sql) = (now_sql.clone(), select_sql.clone());
                async move {
                    let now: i64 = match tx.query_one_raw(self.raw(&now_sql, vec![])).await? {
                        Some(row) => row.try_get("", "db_now")?,
                        None => tandem_storage::now_ms(),
                    };
                    let row = tx
                        .query_one_raw(
                            self.raw(&select_sql, vec![Value::from(org.0), Value::from(id)]),
                        )
                        .await?;
                    let Some(row) = row else {
                        return Err(Error::SilenceNotFound);
                    };
                    let prev = from_row(&row, now)?;
                    if prev.state == SilenceState::Expired {
                        return Err(Error::BadRequest(format!("silence {id} already expired")));
                    }
                    tx.execute_raw(expire_statement(self, &prev, now)).await?;
                    Ok(())
                }
            })
            .await
    }
}

/// Ends `prev` at `now`; a pending silence also starts then (Alertmanager's `expire`).
fn expire_statement(store: &SqlNotificationStore, prev: &Silence, now: i64) -> Statement {
    let starts_at = if prev.state == SilenceState::Pending {
        now
    } else {
        prev.starts_at
    };
    store.raw(
        "UPDATE alert_silence SET starts_at = ?, ends_at = ?, updated_at = ? WHERE id = ?",
        vec![
            Value::from(starts_at),
            Value::from(now),
            Value::from(now),
            Value::from(prev.id.clone()),
        ],
    )
}
