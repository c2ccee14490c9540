//! State history rows: Grafana's alert annotations, written into the `annotation` table in
//! the transaction of the instance write that made the change.
//!
//! The table belongs to the dashboards' annotations (`tandem-dashboards` reads it for
//! `/api/annotations`); alerting writes its rows itself because only the evaluation's own
//! transaction can make "recorded once per change" hold: a rollback takes the row with it,
//! and a losing evaluator's write is rolled back whole. It writes the columns that
//! migration 000012 made for alert annotations and reads `dashboard.id` by uid.

use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query};

use crate::history::StateChange;
use crate::sql::to_json;
use crate::store::StateHistory;
use crate::{Error, OrgId, Result};

/// The dashboard id of the rule's `__dashboardUid__`, or 0 when it names none that exists
/// (Grafana records the change without a dashboard then).
pub(super) async fn dashboard_id<C: ConnectionTrait>(
    conn: &C,
    org: OrgId,
    rule: &StateHistory,
) -> Result<i64> {
    let Some(uid) = &rule.dashboard_uid else {
        return Ok(0);
    };
    let select = Query::select()
        .column(Alias::new("id"))
        .from(Alias::new("dashboard"))
        .and_where(Expr::col(Alias::new("org_id")).eq(org.0))
        .and_where(Expr::col(Alias::new("uid")).eq(uid.as_str()))
        .to_owned();
    let Some(row) = conn.query_one(&select).await? else {
        return Ok(0);
    };
    Ok(row.try_get::<i64>("", "id")?)
}

/// Inserts one annotation per change.
pub(super) async fn insert<C: ConnectionTrait>(
    conn: &C,
    org: OrgId,
    rule: &StateHistory,
    dashboard_id: i64,
    changes: &[StateChange],
    now: i64,
) -> Result<()> {
    if changes.is_empty() {
        return Ok(());
    }
    let mut insert = Query::insert();
    insert.into_table(Alias::new("annotation")).columns([
        Alias::new("org_id"),
        Alias::new("dashboard_id"),
        Alias::new("panel_id"),
        Alias::new("user_id"),
        Alias::new("alert_id"),
        Alias::new("prev_state"),
        Alias::new("new_state"),
        Alias::new("text"),
        Alias::new("data"),
        Alias::new("epoch"),
        Alias::new("epoch_end"),
        Alias::new("version"),
        Alias::new("created"),
        Alias::new("updated"),
    ]);
    for change in changes {
        let data = to_json(&change.data)?;
        insert
            .values([
                org.0.into(),
                dashboard_id.into(),
                rule.panel_id.into(),
                0_i64.into(),
                rule.rule_id.into(),
                change.prev_state.as_str().into(),
                change.new_state.as_str().into(),
                change.text.as_str().into(),
                data.into(),
                change.time.into(),
                change.time.into(),
                0_i64.into(),
                now.into(),
                now.into(),
            ])
            .map_err(|err| Error::Corrupt(err.to_string()))?;
    }
    conn.execute(&insert).await?;
    Ok(())
}
