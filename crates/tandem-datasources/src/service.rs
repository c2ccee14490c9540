//! [`DataSourceService`]: the store plus the query clients; what the HTTP layer and
//! alerting call to query data sources and check their health.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use tandem_storage::input::{check_bounded_text, check_count};
use tandem_storage::now_ms;

use crate::expr::{Pipeline, Value};
use crate::prometheus::{HttpSettings, Prometheus};
use crate::query::{
    DataSourceRef, MAX_QUERIES, MAX_REF_ID_LEN, Query, QueryError, QueryRequest, QueryResponse,
    QueryResult, QueryService,
};
use crate::time::TimeRange;
use crate::{
    DataSource, DataSourceId, DataSourceKey, DataSourceStore, DataSourceType, DataSourceUid, Error,
    OrgId, Result, Version,
};

/// Typed settings of the data sources domain; `Default` is the documented default.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataSourceSettings {
    /// Outgoing HTTP requests (`[dataproxy]`).
    pub http: HttpSettings,
    /// How many built query clients an instance keeps (least recently built go first).
    pub max_cached_clients: usize,
}

impl Default for DataSourceSettings {
    fn default() -> DataSourceSettings {
        DataSourceSettings {
            http: HttpSettings::default(),
            max_cached_clients: 1_000,
        }
    }
}

/// The outcome of a health check, as `GET /api/datasources/uid/:uid/health` answers it
/// (Grafana answers `ERROR` with HTTP 400).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HealthCheck {
    /// `OK` or `ERROR`.
    pub status: HealthStatus,
    /// What happened, in Grafana's words.
    pub message: String,
}

/// A health check's status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum HealthStatus {
    /// The backend answered.
    #[serde(rename = "OK")]
    Ok,
    /// It did not.
    #[serde(rename = "ERROR")]
    Error,
}

/// The clients built, by org and uid, with the version they were built from.
type ClientCache = HashMap<(OrgId, DataSourceUid), (Version, Arc<Client>)>;

/// A query client built from one version of a data source.
#[derive(Debug)]
enum Client {
    Prometheus(Prometheus),
    TestData,
}

/// The data sources of every org, queried with clients built from their rows.
///
/// Each query looks its data source up in the store (one read) and reuses the client built
/// for that uid and version; an edit made through any instance bumps the version, so the
/// next query on every instance builds a fresh client from the new row. Cloning is cheap.
#[derive(Clone)]
pub struct DataSourceService {
    store: Arc<dyn DataSourceStore>,
    settings: DataSourceSettings,
    clients: Arc<Mutex<ClientCache>>,
}

impl std::fmt::Debug for DataSourceService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataSourceService")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl DataSourceService {
    /// A service over `store`.
    pub fn new(store: Arc<dyn DataSourceStore>, settings: DataSourceSettings) -> DataSourceService {
        DataSourceService {
            store,
            settings,
            clients: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// The store, for creating, reading, updating and deleting data sources.
    pub fn store(&self) -> &Arc<dyn DataSourceStore> {
        &self.store
    }

    /// Checks that the data source's backend answers with a real round trip (Prometheus:
    /// the instant query `1+1`). `NotFound` when there is no such data source in the org.
    pub async fn health(&self, org: OrgId, key: &DataSourceKey) -> Result<HealthCheck> {
        let (ds, client) = match self.client(org, key).await {
            Ok(found) => found,
            Err(Lookup::Store(err)) => return Err(err),
            Err(Lookup::Query(err)) => {
                return Ok(HealthCheck {
                    status: HealthStatus::Error,
                    message: err.message,
                });
            }
        };
        Ok(match client.as_ref() {
            Client::TestData => HealthCheck {
                status: HealthStatus::Ok,
                message: "Data source is working".to_owned(),
            },
            Client::Prometheus(prometheus) => match prometheus.health().await {
                Ok(()) => HealthCheck {
                    status: HealthStatus::Ok,
                    message: "Successfully queried the Prometheus API.".to_owned(),
                },
                Err(err) => {
                    tracing::debug!(uid = %ds.uid, error = %err.message, "data source health check failed");
                    HealthCheck {
                        status: HealthStatus::Error,
                        message: format!(
                            "{} - There was an error returned querying the Prometheus API.",
                            err.message
                        ),
                    }
                }
            },
        })
    }

    /// The client for the data source `key` names, built or reused.
    async fn client(
        &self,
        org: OrgId,
        key: &DataSourceKey,
    ) -> std::result::Result<(DataSource, Arc<Client>), Lookup> {
        let Some((ds, secrets)) = self
            .store
            .get_with_secrets(org, key)
            .await
            .map_err(Lookup::Store)?
        else {
            return Err(Lookup::Store(Error::NotFound));
        };
        let cache_key = (org, ds.uid.clone());
        if let Some((version, client)) = self.cache().get(&cache_key)
            && *version == ds.version
        {
            return Ok((ds, client.clone()));
        }
        let client = Arc::new(match ds.kind {
            DataSourceType::TestData => Client::TestData,
            DataSourceType::Prometheus => Client::Prometheus(
                Prometheus::new(&ds, &secrets, &self.settings.http).map_err(Lookup::Query)?,
            ),
        });
        let mut cache = self.cache();
        if cache.len() >= self.settings.max_cached_clients {
            // Rarely reached; dropping everything keeps the bookkeeping trivial, and a
            // dropped client is rebuilt by its next query.
            cache.clear();
        }
        cache.insert(cache_key, (ds.version, client.clone()));
        Ok((ds, client))
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, ClientCache> {
        // A panic while holding the lock cannot leave the map inconsistent: recover it.
        self.clients
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs one data source query.
    async fn run_one(&self, org: OrgId, query: &Query, range: TimeRange) -> QueryResult {
        let key = match query.data_source() {
            DataSourceRef::Uid(uid) => DataSourceKey::Uid(DataSourceUid::from(uid)),
            DataSourceRef::Name(name) => DataSourceKey::Name(name),
            DataSourceRef::Id(id) => DataSourceKey::Id(DataSourceId(id)),
            DataSourceRef::Default => match self.store.list(org).await {
                Ok(list) => match list.into_iter().find(|ds| ds.is_default) {
                    Some(ds) => DataSourceKey::Uid(ds.uid),
                    None => {
                        return QueryResult::failed(QueryError::bad_request(
                            "the query names no data source and the org has no default",
                        ));
                    }
                },
                Err(err) => return QueryResult::failed(internal(&err)),
            },
            DataSourceRef::Expression => {
                return QueryResult::failed(QueryError::bad_request("not a data source query"));
            }
        };
        let client = match self.client(org, &key).await {
            Ok((_, client)) => client,
            Err(Lookup::Store(Error::NotFound)) => {
                return QueryResult::failed(QueryError {
                    status: 404,
                    message: "data source not found".to_owned(),
                });
            }
            Err(Lookup::Store(err)) => return QueryResult::failed(internal(&err)),
            Err(Lookup::Query(err)) => return QueryResult::failed(err),
        };
        let range = match query.time_range(range, now_ms()) {
            Ok(range) => range,
            Err(message) => return QueryResult::failed(QueryError::bad_request(message)),
        };
        let frames = match client.as_ref() {
            Client::TestData => crate::testdata::query(query, range),
            Client::Prometheus(prometheus) => prometheus.query(query, range).await,
        };
        match frames {
            Ok(mut frames) => {
                for frame in &mut frames {
                    frame.ref_id.clone_from(&query.ref_id);
                }
                QueryResult::ok(frames)
            }
            Err(err) => QueryResult::failed(err),
        }
    }
}

/// Why no client could be had.
enum Lookup {
    Store(Error),
    Query(QueryError),
}

/// A failure that is the server's, not the query's: logged, answered without its cause.
fn internal(err: &Error) -> QueryError {
    tracing::warn!(error = %err, "looking up a data source failed");
    QueryError {
        status: 500,
        message: "internal error looking up the data source".to_owned(),
    }
}

#[async_trait::async_trait]
impl QueryService for DataSourceService {
    async fn query(&self, org: OrgId, request: QueryRequest) -> Result<QueryResponse> {
        if request.queries.is_empty() {
            return Err(Error::invalid("No queries found in query"));
        }
        check_count("queries", request.queries.len(), MAX_QUERIES)?;
        let mut seen = HashSet::new();
        for query in &request.queries {
            check_bounded_text("refId", &query.ref_id, MAX_REF_ID_LEN)?;
            if query.ref_id.is_empty() {
                return Err(Error::invalid("every query needs a refId"));
            }
            if !seen.insert(query.ref_id.as_str()) {
                return Err(Error::invalid(format!(
                    "refId {:?} is used by more than one query",
                    query.ref_id
                )));
            }
        }
        let now = now_ms();
        let (from, to) = (
            default_bound(&request.from, "now-6h"),
            default_bound(&request.to, "now"),
        );
        let range = TimeRange::parse(&from, &to, now).map_err(Error::Invalid)?;
        let (expressions, data): (Vec<&Query>, Vec<&Query>) = request
            .queries
            .iter()
            .partition(|q| q.data_source() == DataSourceRef::Expression);

        // Data source queries run concurrently; dropping the request aborts them.
        let mut tasks = tokio::task::JoinSet::new();
        for (index, query) in data.iter().enumerate() {
            let (service, query) = (self.clone(), (*query).clone());
            tasks.spawn(async move { (index, service.run_one(org, &query, range).await) });
        }
        let mut outcomes: Vec<Option<QueryResult>> = vec![None; data.len()];
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok((index, result)) => {
                    if let Some(slot) = outcomes.get_mut(index) {
                        *slot = Some(result);
                    }
                }
                Err(err) => tracing::warn!(error = %err, "a data source query task failed"),
            }
        }
        let mut response = QueryResponse::default();
        let mut vars: HashMap<String, Value> = HashMap::new();
        let mut failed: HashMap<String, QueryError> = HashMap::new();
        for (query, outcome) in data.iter().zip(outcomes) {
            let result = outcome.unwrap_or_else(|| {
                QueryResult::failed(QueryError {
                    status: 500,
                    message: "the query did not finish".to_owned(),
                })
            });
            match &result.error {
                Some(err) => {
                    failed.insert(query.ref_id.clone(), err.clone());
                }
                None if !expressions.is_empty() => {
                    vars.insert(query.ref_id.clone(), Value::from_frames(&result.frames));
                }
                None => {}
            }
            response.results.insert(query.ref_id.clone(), result);
        }
        if !expressions.is_empty() {
            let data_ids: Vec<&str> = data.iter().map(|q| q.ref_id.as_str()).collect();
            let pipeline = Pipeline::plan(&expressions, &data_ids);
            for (ref_id, outcome) in pipeline.run(&mut vars, &failed, range) {
                let result = match outcome {
                    Ok(value) => QueryResult::ok(value.to_frames(&ref_id)),
                    Err(err) => QueryResult::failed(err),
                };
                response.results.insert(ref_id, result);
            }
        }
        // Hidden queries feed expressions but are not answered, as Grafana does.
        for query in &request.queries {
            if query.flag("hide") && !expressions.is_empty() {
                response.results.remove(&query.ref_id);
            }
        }
        Ok(response)
    }
}

/// Grafana's default range is the last 6 hours.
fn default_bound(value: &serde_json::Value, default: &str) -> serde_json::Value {
    match value {
        serde_json::Value::Null => serde_json::Value::from(default),
        serde_json::Value::String(s) if s.trim().is_empty() => serde_json::Value::from(default),
        other => other.clone(),
    }
}
