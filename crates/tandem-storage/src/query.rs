//! Query helpers every store uses.

use sea_orm::{
    ConnectionTrait, DbBackend, DbErr, EntityTrait, QuerySelect, QueryTrait, Select, Value,
};

/// The first row of `select`, as sea-orm's `one()` answers, but with the `LIMIT 1` written
/// into the SQL text instead of bound.
///
/// SQLite (3.51, bundled) re-prepares a statement whose `LIMIT` is a bound parameter every
/// time it runs, because the planner looks at the bound value; `one()` binds it, so each
/// lookup paid a full parse and plan of its statement. With the literal the cached
/// statement is reused. PostgreSQL and MySQL keep the bound form, which they plan once.
pub async fn first_row<E, C>(select: Select<E>, conn: &C) -> Result<Option<E::Model>, DbErr>
where
    E: EntityTrait,
    C: ConnectionTrait,
{
    let backend = conn.get_database_backend();
    let mut statement = select.limit(1).build(backend);
    if backend == DbBackend::Sqlite
        && let Some(values) = statement.values.as_mut()
        && matches!(values.0.last(), Some(Value::BigUnsigned(Some(1))))
        && let Some(sql) = statement.sql.strip_suffix(" LIMIT ?")
    {
        statement.sql = format!("{sql} LIMIT 1");
        values.0.pop();
    }
    E::find().from_raw_sql(statement).one(conn).await
}
