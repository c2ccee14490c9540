//! The query request and response of `POST /api/ds/query`, and the [`QueryService`] trait
//! that answers them without HTTP (alerting calls it directly).

use std::collections::BTreeMap;

use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::frame::Frame;
use crate::time::TimeRange;
use crate::{OrgId, Result};

/// The most queries one request may hold.
pub const MAX_QUERIES: usize = 100;
/// The longest refId, in characters.
pub const MAX_REF_ID_LEN: usize = 190;
/// Grafana's `intervalMs` when a query has none.
pub const DEFAULT_INTERVAL_MS: i64 = 1_000;
/// Grafana's `maxDataPoints` when a query has none.
pub const DEFAULT_MAX_DATA_POINTS: i64 = 100;

/// A query request: `{from, to, queries}`; unknown fields are ignored.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct QueryRequest {
    /// The start: epoch milliseconds (number or string) or a relative time (`now-1h`).
    pub from: Value,
    /// The end, likewise (`now`).
    pub to: Value,
    /// The queries and expressions.
    pub queries: Vec<Query>,
}

/// One query of a request: its refId, its data source, and the rest of its model (the
/// fields of the data source type: `expr`, `scenarioId`, `expression` …).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Query {
    /// The name other queries and the response use for it.
    #[serde(rename = "refId", default)]
    pub ref_id: String,
    /// Every other field of the query, `datasource` included.
    #[serde(flatten)]
    pub model: Map<String, Value>,
}

/// How a query names its data source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DataSourceRef {
    /// `{"uid": …, "type"?: …}`.
    Uid(String),
    /// `"Prometheus"`: a name, as dashboards older than Grafana 8.3 write it.
    Name(String),
    /// `datasourceId`: the legacy numeric id.
    Id(i64),
    /// `{"type": "__expr__"}` (or uid `__expr__`): a server-side expression.
    Expression,
    /// Nothing: the org's default data source.
    Default,
}

/// The uid and type of server-side expressions.
pub const EXPRESSION_UID: &str = "__expr__";

impl Query {
    /// The data source the query names.
    pub fn data_source(&self) -> DataSourceRef {
        let uid_or_type = |value: &Value, key: &str| {
            value
                .get(key)
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        match self.model.get("datasource") {
            Some(value @ Value::Object(_)) => {
                let uid = uid_or_type(value, "uid");
                let kind = uid_or_type(value, "type");
                if uid.as_deref() == Some(EXPRESSION_UID) || kind.as_deref() == Some(EXPRESSION_UID)
                {
                    return DataSourceRef::Expression;
                }
                if let Some(uid) = uid {
                    return DataSourceRef::Uid(uid);
                }
            }
            Some(Value::String(name)) if name == EXPRESSION_UID => {
                return DataSourceRef::Expression;
            }
            Some(Value::String(name)) if !name.trim().is_empty() => {
                return DataSourceRef::Name(name.trim().to_owned());
            }
            _ => {}
        }
        match self.model.get("datasourceId").and_then(Value::as_i64) {
            Some(id) if id > 0 => DataSourceRef::Id(id),
            _ => DataSourceRef::Default,
        }
    }

    /// A whole number of the model (`intervalMs`, `maxDataPoints`), also when written as a
    /// float or as text.
    pub fn int(&self, key: &str) -> Option<i64> {
        number(self.model.get(key)?).map(|f| f.clamp(i64::MIN as f64, i64::MAX as f64) as i64)
    }

    /// A string of the model.
    pub fn text(&self, key: &str) -> Option<&str> {
        self.model.get(key).and_then(Value::as_str)
    }

    /// A boolean of the model (absent is `false`).
    pub fn flag(&self, key: &str) -> bool {
        self.model
            .get(key)
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }

    /// `intervalMs`, at least 1 (Grafana's default 1000).
    pub fn interval_ms(&self) -> i64 {
        self.int("intervalMs")
            .filter(|ms| *ms > 0)
            .unwrap_or(DEFAULT_INTERVAL_MS)
    }

    /// `maxDataPoints` (Grafana's default 100).
    pub fn max_data_points(&self) -> i64 {
        self.int("maxDataPoints")
            .filter(|n| *n > 0)
            .unwrap_or(DEFAULT_MAX_DATA_POINTS)
    }

    /// The query's own `timeRange: {from, to}` if it has one, else `range`.
    pub fn time_range(&self, range: TimeRange, now: i64) -> std::result::Result<TimeRange, String> {
        match self.model.get("timeRange") {
            Some(own @ Value::Object(_)) => TimeRange::parse(
                own.get("from").unwrap_or(&Value::Null),
                own.get("to").unwrap_or(&Value::Null),
                now,
            ),
            _ => Ok(range),
        }
    }
}

/// A JSON number, or a number written as text.
pub(crate) fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// The answer to a request: one result per refId.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct QueryResponse {
    /// The results by refId.
    pub results: BTreeMap<String, QueryResult>,
}

impl QueryResponse {
    /// Whether any query failed (Grafana then answers the request with 400, or with 207
    /// where its multi-status feature is on).
    pub fn has_errors(&self) -> bool {
        self.results.values().any(|r| r.error.is_some())
    }
}

/// One refId's result: frames, or an error with a status.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct QueryResult {
    /// The frames (empty when the query failed or found nothing).
    pub frames: Vec<Frame>,
    /// Why the query failed.
    pub error: Option<QueryError>,
}

/// Why one query failed: a message and the status Grafana puts beside it in `results`
/// (400 for a bad query or a backend that refused it, 404 for an unknown data source, 502
/// for a backend that could not be reached, 504 for a timeout).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueryError {
    /// The status.
    pub status: u16,
    /// The message.
    pub message: String,
}

impl QueryError {
    /// A 400: the query itself is at fault.
    pub fn bad_request(message: impl Into<String>) -> QueryError {
        QueryError {
            status: 400,
            message: message.into(),
        }
    }
}

impl QueryResult {
    /// Frames.
    pub fn ok(frames: Vec<Frame>) -> QueryResult {
        QueryResult {
            frames,
            error: None,
        }
    }

    /// A failure.
    pub fn failed(error: QueryError) -> QueryResult {
        QueryResult {
            frames: Vec::new(),
            error: Some(error),
        }
    }

    /// The result's `status`: 200, or the error's.
    pub fn status(&self) -> u16 {
        self.error.as_ref().map_or(200, |e| e.status)
    }
}

impl Serialize for QueryResult {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        if let Some(error) = &self.error {
            map.serialize_entry("error", &error.message)?;
        }
        map.serialize_entry("status", &self.status())?;
        if self.error.is_none() || !self.frames.is_empty() {
            map.serialize_entry("frames", &self.frames)?;
        }
        map.end()
    }
}

/// Runs query requests for an org: data source queries and server-side expressions.
///
/// A query that fails answers its own refId with an error; the others still answer. The
/// request as a whole fails only when it cannot be read at all (bad `from`/`to`, no
/// queries, too many, duplicate or over-long refIds).
#[async_trait::async_trait]
pub trait QueryService: Send + Sync {
    /// Runs `request` as a member of `org`: only the org's data sources are reachable.
    async fn query(&self, org: OrgId, request: QueryRequest) -> Result<QueryResponse>;
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn query(value: Value) -> Query {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn data_source_references_are_read_as_grafana_writes_them() {
        for (value, expected) in [
            (
                json!({"refId":"A","datasource":{"type":"prometheus","uid":"P1"}}),
                DataSourceRef::Uid("P1".to_owned()),
            ),
            (
                json!({"refId":"B","datasource":{"type":"__expr__","uid":"__expr__"}}),
                DataSourceRef::Expression,
            ),
            (
                json!({"refId":"B","datasource":{"type":"__expr__"}}),
                DataSourceRef::Expression,
            ),
            (
                json!({"refId":"C","datasource":"Prometheus"}),
                DataSourceRef::Name("Prometheus".to_owned()),
            ),
            (json!({"refId":"D","datasourceId":7}), DataSourceRef::Id(7)),
            (json!({"refId":"E"}), DataSourceRef::Default),
        ] {
            assert_eq!(query(value.clone()).data_source(), expected, "{value}");
        }
        let q = query(json!({"refId":"A","intervalMs":"15000","maxDataPoints":1e3}));
        assert_eq!((q.interval_ms(), q.max_data_points()), (15_000, 1_000));
        let q = query(json!({"refId":"A","intervalMs":-5}));
        assert_eq!((q.interval_ms(), q.max_data_points()), (1_000, 100));
    }

    #[test]
    fn results_serialise_as_grafana() {
        let mut response = QueryResponse::default();
        response
            .results
            .insert("A".to_owned(), QueryResult::ok(Vec::new()));
        response.results.insert(
            "B".to_owned(),
            QueryResult::failed(QueryError::bad_request("parse error")),
        );
        assert!(response.has_errors());
        assert_eq!(
            serde_json::to_value(&response).unwrap(),
            json!({"results":{"A":{"status":200,"frames":[]},"B":{"error":"parse error","status":400}}})
        );
    }
}
