//! The claims of the notification log: take-over of expired ones, renewal (one claim, or
//! every claim of a holder in one write), attempts and outcomes, each checked against the
//! holder's fencing token and timed by the database's clock.

use sea_orm::Value;

use crate::Result;
use crate::notify::store::{Claim, ClaimStatus};
use crate::sql::notify::{CLAIM_COLUMNS, SqlNotificationStore};

impl SqlNotificationStore {
    pub(super) async fn take_over_sql(
        &self,
        holder: &str,
        ttl_ms: i64,
        limit: u64,
    ) -> Result<Vec<Claim>> {
        let now = self.now();
        let grace = ttl_ms / 4;
        let rows = self
            .query(
                &format!("SELECT {CLAIM_COLUMNS} FROM alert_notification_log WHERE status = 'pending' AND expires_at + ? <= {now} ORDER BY id LIMIT {limit}"),
                vec![Value::from(grace)],
            )
            .await?;
        let mut out = Vec::new();
        for row in rows {
            let mut claim = Self::claim_from_row(&row)?;
            let won = self
                .execute(
                    &format!("UPDATE alert_notification_log SET holder = ?, token = token + 1, expires_at = {now} + ? WHERE id = ? AND token = ? AND status = 'pending' AND expires_at + ? <= {now}"),
                    vec![Value::from(holder), Value::from(ttl_ms), Value::from(claim.id), Value::from(claim.token), Value::from(grace)],
                )
                .await?;
            if won == 1 {
                claim.token += 1;
                out.push(claim);
            }
        }
        Ok(out)
    }

    pub(super) async fn renew_claim_sql(&self, id: i64, token: i64, ttl_ms: i64) -> Result<bool> {
        let now = self.now();
        Ok(self
            .execute(
                &format!("UPDATE alert_notification_log SET expires_at = {now} + ? WHERE id = ? AND token = ? AND status = 'pending' AND expires_at > {now}"),
                vec![Value::from(ttl_ms), Value::from(id), Value::from(token)],
            )
            .await?
            == 1)
    }

    pub(super) async fn renew_claims_sql(
        &self,
        holder: &str,
        ids: &[i64],
        ttl_ms: i64,
    ) -> Result<Vec<(i64, i64)>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let now = self.now();
        let marks = vec!["?"; ids.len()].join(", ");
        let mut values = vec![Value::from(ttl_ms), Value::from(holder)];
        values.extend(ids.iter().map(|id| Value::from(*id)));
        self.execute(
            &format!("UPDATE alert_notification_log SET expires_at = {now} + ? WHERE holder = ? AND status = 'pending' AND expires_at > {now} AND id IN ({marks})"),
            values,
        )
        .await?;
        let mut values = vec![Value::from(holder)];
        values.extend(ids.iter().map(|id| Value::from(*id)));
        let rows = self
            .query(
                &format!("SELECT id, token FROM alert_notification_log WHERE holder = ? AND status = 'pending' AND expires_at > {now} AND id IN ({marks})"),
                values,
            )
            .await?;
        rows.iter()
            .map(|row| Ok((row.try_get("", "id")?, row.try_get("", "token")?)))
            .collect()
    }

    pub(super) async fn record_attempt_sql(
        &self,
        id: i64,
        token: i64,
        attempts: i64,
        error: &str,
    ) -> Result<bool> {
        Ok(self
            .execute(
                "UPDATE alert_notification_log SET attempts = ?, last_error = ? WHERE id = ? AND token = ? AND status = 'pending'",
                vec![Value::from(i32::try_from(attempts).unwrap_or(i32::MAX)), Value::from(error.chars().take(2_000).collect::<String>()), Value::from(id), Value::from(token)],
            )
            .await?
            == 1)
    }

    pub(super) async fn finish_claim_sql(
        &self,
        id: i64,
        token: i64,
        status: ClaimStatus,
        attempts: i64,
        error: &str,
    ) -> Result<bool> {
        let now = self.now();
        let status = match status {
            ClaimStatus::Sent => "sent",
            ClaimStatus::Failed => "failed",
        };
        Ok(self
            .execute(
                &format!("UPDATE alert_notification_log SET status = ?, attempts = ?, last_error = ?, sent_at = {now} WHERE id = ? AND token = ? AND status = 'pending'"),
                vec![Value::from(status), Value::from(i32::try_from(attempts).unwrap_or(i32::MAX)), Value::from(error.chars().take(2_000).collect::<String>()), Value::from(id), Value::from(token)],
            )
            .await?
            == 1)
    }
}
