//! Session lookups coalesced into batches.
//!
//! Every authenticated request looks its session up, and under load most of the cost of a
//! lookup is the round trip (and the connection checkout) rather than the query. So the
//! lookups that are waiting while earlier ones are in flight go to the database together,
//! as one query with an `IN` list: at most [`MAX_BATCHES_IN_FLIGHT`] queries run at once
//! and each takes up to [`MAX_BATCH`] waiting tokens. Nothing ever waits for a batch to
//! fill, so a lone request costs one query as before, with no added delay.
//!
//! A lookup still reads the database after its request arrived: a batch only takes
//! lookups queued before its query starts, so a logout or revocation committed before a
//! request is seen by it, on every instance.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use sea_orm::{
    ConnectionTrait, DbBackend, FromQueryResult, IdenStatic, Iterable, Statement, Value,
};
use tandem_storage::Database;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

use crate::sql::entity::{user, user_auth_token};
use crate::sql::{parse_role, to_session, to_user};
use crate::{Result, Role, StoredSession, User};

/// The most tokens one query looks up.
pub(crate) const MAX_BATCH: usize = 32;
/// The most lookup queries of one store in flight at once; more lookups wait in the queue
/// and go with the next batch. Two keep a lone request from ever waiting behind another
/// one's query while making the batches of a busy instance large: with three instances
/// under `wrk`, 2 gave 0.51-0.58 of `pgbench -S` where 4 gave 0.35-0.38 (the database
/// spends its time per query more than per token).
pub(crate) const MAX_BATCHES_IN_FLIGHT: usize = 2;

/// What a lookup finds: the session, its user and the user's role in their current org.
pub(crate) type Found = (StoredSession, User, Option<Role>);

/// The batch query failed; the waiter asks again alone, to get its own error (after the
/// store's retries) rather than a copy of another one.
struct BatchFailed;

type Outcome = std::result::Result<Option<Found>, BatchFailed>;

type Waiter = (String, oneshot::Sender<Outcome>);

/// The batching session lookup of one [`crate::SqlSessionStore`] (shared by its clones).
pub(crate) struct SessionLookups {
    db: Database,
    backend: DbBackend,
    queue: Mutex<Vec<Waiter>>,
    leaders: Arc<Semaphore>,
    /// The query for 1, 2, 4 … [`MAX_BATCH`] tokens; a batch is padded up to the next size
    /// so that each connection prepares at most six statements.
    statements: Vec<(usize, String)>,
}

impl SessionLookups {
    pub(crate) fn new(db: Database) -> SessionLookups {
        let backend = db.connection().get_database_backend();
        let statements = std::iter::successors(Some(1), |n| (n * 2 <= MAX_BATCH).then_some(n * 2))
            .map(|n| (n, lookup_sql(backend, n)))
            .collect();
        SessionLookups {
            db,
            backend,
            queue: Mutex::new(Vec::new()),
            leaders: Arc::new(Semaphore::new(MAX_BATCHES_IN_FLIGHT)),
            statements,
        }
    }

    /// The session whose current or previous hash is `hash`, with its user and role.
    pub(crate) async fn find(self: &Arc<Self>, hash: &str) -> Result<Option<Found>> {
        let (reply, answer) = oneshot::channel();
        self.queue().push((hash.to_owned(), reply));
        self.lead();
        match answer.await {
            Ok(Ok(found)) => Ok(found),
            // The batch failed, or its task was dropped with the runtime.
            Ok(Err(BatchFailed)) | Err(_) => {
                let mut found = self.query(&[hash]).await?;
                Ok(found.remove(hash))
            }
        }
    }

    /// Starts a batch task if fewer than [`MAX_BATCHES_IN_FLIGHT`] run; otherwise one of
    /// those will take the queued lookups when its query returns.
    ///
    /// The task is not tied to the request that started it, so a client that hangs up
    /// cannot strand the lookups of others in the queue; it ends when the queue is empty.
    fn lead(self: &Arc<Self>) {
        if let Ok(permit) = self.leaders.clone().try_acquire_owned() {
            let lookups = Arc::clone(self);
            tokio::spawn(async move { lookups.drain(permit).await });
        }
    }

    async fn drain(self: Arc<Self>, permit: OwnedSemaphorePermit) {
        loop {
            let batch: Vec<Waiter> = {
                let mut queue = self.queue();
                let n = queue.len().min(MAX_BATCH);
                queue.drain(..n).collect()
            };
            if batch.is_empty() {
                break;
            }
            let hashes: Vec<&str> = batch.iter().map(|(hash, _)| hash.as_str()).collect();
            match self.query(&hashes).await {
                Ok(found) => {
                    // A hash may be in the batch more than once (two requests with one
                    // cookie), so every waiter gets a copy.
                    for (hash, reply) in batch {
                        let _ = reply.send(Ok(found.get(&hash).cloned()));
                    }
                }
                Err(err) => {
                    tracing::debug!(error = %err, "a batched session lookup failed");
                    for (_, reply) in batch {
                        let _ = reply.send(Err(BatchFailed));
                    }
                }
            }
        }
        drop(permit);
        // A lookup queued after the last look but before the release found every permit
        // taken; it must not wait for the next request to come along.
        if !self.queue().is_empty() {
            self.lead();
        }
    }

    /// One query for `hashes`: for each, the session whose current hash it is, else the
    /// oldest whose previous hash it is.
    async fn query(&self, hashes: &[&str]) -> Result<HashMap<String, Found>> {
        // A batch holds 1 to MAX_BATCH tokens, and a statement exists for each size.
        let (Some((size, sql)), Some(last)) = (
            self.statements
                .iter()
                .find(|(size, _)| *size >= hashes.len()),
            hashes.last(),
        ) else {
            return Ok(HashMap::new());
        };
        let padded = hashes.iter().chain(std::iter::repeat(last)).take(*size);
        let values: Vec<Value> = padded.clone().chain(padded).map(|h| (*h).into()).collect();
        let backend = self.backend;
        let rows = self
            .db
            .read(|conn| {
                let statement = Statement::from_sql_and_values(backend, sql, values.clone());
                async move { conn.query_all_raw(statement).await }
            })
            .await?;

        // Rows come by token id: the first match of a hash is the oldest, and a current
        // match replaces a previous one.
        let mut best: HashMap<String, (bool, user_auth_token::Model, user::Model, Option<String>)> =
            HashMap::new();
        for row in rows {
            let token = user_auth_token::Model::from_query_result(&row, "t_")?;
            let user = user::Model::from_query_result(&row, "u_")?;
            let role: Option<String> = row.try_get("", "ou_role")?;
            for hash in hashes {
                let current = token.auth_token == *hash;
                if !current && token.prev_auth_token != *hash {
                    continue;
                }
                let replace = match best.get(*hash) {
                    None => true,
                    Some((had_current, ..)) => current && !had_current,
                };
                if replace {
                    best.insert(
                        (*hash).to_owned(),
                        (current, token.clone(), user.clone(), role.clone()),
                    );
                }
            }
        }
        let mut found = HashMap::with_capacity(best.len());
        for (hash, (_, token, user, role)) in best {
            let role = role.as_deref().map(parse_role).transpose()?;
            let stored = StoredSession {
                session: to_session(&token),
                auth_token: token.auth_token,
                prev_auth_token: token.prev_auth_token,
            };
            found.insert(hash, (stored, to_user(user), role));
        }
        Ok(found)
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, Vec<Waiter>> {
        // The queue holds no invariant a panic could break.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl std::fmt::Debug for SessionLookups {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionLookups").finish_non_exhaustive()
    }
}

/// The lookup of `n` tokens by current or previous hash, joined with the user and the
/// user's role in their current org; columns are prefixed `t_`, `u_` and `ou_`.
fn lookup_sql(backend: DbBackend, n: usize) -> String {
    let user_table = match backend {
        DbBackend::MySql => "`user`",
        _ => "\"user\"",
    };
    let placeholders = |from: usize| {
        (from..from + n)
            .map(|i| match backend {
                DbBackend::Postgres => format!("${i}"),
                _ => "?".to_owned(),
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let columns = |alias: &str, names: Vec<&str>| {
        names
            .iter()
            .map(|name| format!("{alias}.{name} AS {alias}_{name}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let token_columns = columns(
        "t",
        user_auth_token::Column::iter()
            .map(|c| c.as_str())
            .collect(),
    );
    let user_columns = columns("u", user::Column::iter().map(|c| c.as_str()).collect());
    format!(
        "SELECT {token_columns}, {user_columns}, ou.role AS ou_role \
         FROM user_auth_token t \
         JOIN {user_table} u ON u.id = t.user_id \
         LEFT JOIN org_user ou ON ou.user_id = u.id AND ou.org_id = u.org_id \
         WHERE t.auth_token IN ({}) OR t.prev_auth_token IN ({}) \
         ORDER BY t.id",
        placeholders(1),
        placeholders(n + 1),
    )
}
