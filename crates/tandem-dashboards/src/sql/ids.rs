//! The one id sequence of folders and dashboards (table `content_id`, migration 000018):
//! as in Grafana, where both are rows of one table, an id names one thing.

use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query};

use crate::{Error, Result};

/// The sequence's row is gone: the schema was not migrated (or was tampered with).
fn missing() -> Error {
    sea_orm::DbErr::RecordNotFound(
        "the content id sequence (table content_id) has no row".to_owned(),
    )
    .into()
}

/// The next id for a new folder or dashboard, drawn in the creating transaction.
///
/// The sequence's row stays locked until that transaction ends, so creations across the
/// cluster queue on it for the rest of their transaction; callers draw it last, right
/// before their insert, after every other lock they take (no creation waits for a content
/// row while it holds the sequence). A rolled-back creation hands its id back.
pub(super) async fn next_content_id(conn: &impl ConnectionTrait) -> Result<i64> {
    let table = || Alias::new("content_id");
    let next = || Alias::new("next_id");
    let name = || Expr::col(Alias::new("name")).eq("content");
    let bump = Query::update()
        .table(table())
        .value(next(), Expr::col(next()).add(1))
        .and_where(name())
        .to_owned();
    let bumped = conn.execute(&bump).await?;
    if bumped.rows_affected() != 1 {
        return Err(missing());
    }
    let read = Query::select()
        .column(next())
        .from(table())
        .and_where(name())
        .to_owned();
    let row = conn.query_one(&read).await?.ok_or_else(missing)?;
    let after: i64 = row.try_get("", "next_id")?;
    Ok(after - 1)
}
