//! Posted alerts over `alert_external`: a post is one transaction that reads the
//! database's clock and merges every alert into its row, so concurrent posts of the same
//! alert to several instances (a Prometheus server lists every instance as an
//! Alertmanager) end in one row, merged as Alertmanager merges.

use sea_orm::{ConnectionTrait, DbBackend, QueryResult, Value};

use crate::notify::posted::{ExternalAlert, PostableAlert};
use crate::sql::notify::SqlNotificationStore;
use crate::{Error, Labels, OrgId, Result};

const COLUMNS: &str = "org_id, fingerprint, labels, annotations, starts_at, ends_at, timeout, generator_url, updated_at";

fn pairs(field: &str, row: &QueryResult) -> Result<Labels> {
    let text: String = row.try_get("", field)?;
    serde_json::from_str(&text).map_err(|err| Error::Corrupt(format!("{field}: {err}")))
}

fn from_row(row: &QueryResult) -> Result<ExternalAlert> {
    Ok(ExternalAlert {
        org_id: OrgId(row.try_get("", "org_id")?),
        fingerprint: row.try_get("", "fingerprint")?,
        labels: pairs("labels", row)?,
        annotations: pairs("annotations", row)?,
        starts_at: row.try_get("", "starts_at")?,
        ends_at: row.try_get("", "ends_at")?,
        timeout: row.try_get::<i16>("", "timeout")? != 0,
        generator_url: row.try_get("", "generator_url")?,
        updated_at: row.try_get("", "updated_at")?,
    })
}

fn values(a: &ExternalAlert) -> Result<Vec<Value>> {
    let json = |p: &Labels| serde_json::to_string(p).map_err(|err| Error::Corrupt(err.to_string()));
    Ok(vec![
        Value::from(a.org_id.0),
        Value::from(a.fingerprint.clone()),
        Value::from(json(&a.labels)?),
        Value::from(json(&a.annotations)?),
        Value::from(a.starts_at),
        Value::from(a.ends_at),
        Value::from(i16::from(a.timeout)),
        Value::from(a.generator_url.clone()),
        Value::from(a.updated_at),
    ])
}

impl SqlNotificationStore {
    pub(super) async fn post_alerts_sql(&self, org: OrgId, posted: &[PostableAlert]) -> Result<()> {
        let backend = self.backend();
        let insert = match backend {
            DbBackend::Postgres => format!(
                "INSERT INTO alert_external ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (org_id, fingerprint) DO NOTHING"
            ),
            DbBackend::MySql => format!(
                "INSERT IGNORE INTO alert_external ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
            ),
            _ => format!(
                "INSERT OR IGNORE INTO alert_external ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
            ),
        };
        let lock = if backend == DbBackend::Sqlite {
            ""
        } else {
            " FOR UPDATE"
        };
        let select = format!(
            "SELECT {COLUMNS} FROM alert_external WHERE org_id = ? AND fingerprint = ?{lock}"
        );
        let update = "UPDATE alert_external SET labels = ?, annotations = ?, starts_at = ?, ends_at = ?, timeout = ?, generator_url = ?, updated_at = ? WHERE org_id = ? AND fingerprint = ?";
        let now_sql = format!("SELECT {} AS db_now", self.now());
        self.db
            .transaction(|tx| {
                let (insert, select, now_sql) = (insert.clone(), select.clone(), now_sql.clone());
                async move {
                    let now: i64 = match tx.query_one_raw(self.stmt(&now_sql, vec![])).await? {
                        Some(row) => row.try_get("", "db_now")?,
                        None => tandem_storage::now_ms(),
                    };
                    // One order for every post, so that concurrent posts lock rows in the
                    // same order and cannot deadlock each other.
                    let mut alerts: Vec<ExternalAlert> =
                        posted.iter().map(|p| p.at(org, now)).collect();
                    alerts.sort_by(|a, b| a.fingerprint.cmp(&b.fingerprint));
                    for alert in alerts {
                        let inserted = tx
                            .execute_raw(self.stmt(&insert, values(&alert)?))
                            .await?
                            .rows_affected();
                        if inserted > 0 {
                            continue;
                        }
                        let key = vec![Value::from(org.0), Value::from(alert.fingerprint.clone())];
                        let Some(row) = tx.query_one_raw(self.stmt(&select, key)).await? else {
                            continue;
                        };
                        let merged = from_row(&row)?.merged(alert);
                        let mut params = values(&merged)?;
                        // SET takes the columns after the key; WHERE takes the key.
                        let key: Vec<Value> = params.drain(..2).collect();
                        params.extend(key);
                        tx.execute_raw(self.stmt(update, params)).await?;
                    }
                    Ok(())
                }
            })
            .await
    }

    pub(super) async fn external_alerts_sql(
        &self,
        org: Option<OrgId>,
    ) -> Result<(i64, Vec<ExternalAlert>)> {
        let now = self.now();
        let (filter, params) = match org {
            Some(org) => (" WHERE org_id = ?", vec![Value::from(org.0)]),
            None => ("", vec![]),
        };
        let rows = self
            .query(
                &format!("SELECT {COLUMNS}, {now} AS db_now FROM alert_external{filter}"),
                params,
            )
            .await?;
        let db_now = match rows.first() {
            Some(row) => row.try_get("", "db_now")?,
            None => self.db_time().await?,
        };
        let alerts = rows.iter().map(from_row).collect::<Result<Vec<_>>>()?;
        Ok((db_now, alerts))
    }

    async fn db_time(&self) -> Result<i64> {
        let rows = self
            .query(&format!("SELECT {} AS db_now", self.now()), vec![])
            .await?;
        match rows.first() {
            Some(row) => Ok(row.try_get("", "db_now")?),
            None => Ok(tandem_storage::now_ms()),
        }
    }

    pub(super) async fn purge_external_alerts_sql(&self, age_ms: i64) -> Result<u64> {
        let now = self.now();
        self.execute(
            &format!("DELETE FROM alert_external WHERE ends_at < {now} - ?"),
            vec![Value::from(age_ms)],
        )
        .await
    }
}
