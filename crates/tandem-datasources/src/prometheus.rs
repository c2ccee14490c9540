//! The Prometheus query client, built from a data source row (Grafana 12's `promlib`
//! semantics).
//!
//! - Range queries (`/api/v1/query_range`) and instant queries (`/api/v1/query`, at `to`);
//!   a query with both flags runs both, one with neither is a range query.
//! - The step is Grafana's: the minimum interval is the query's `interval`, else its
//!   `intervalMs`, else the data source's `jsonData.timeInterval`, else 15 s; the range
//!   divided by `maxDataPoints` is rounded to a "nice" interval unless below that minimum;
//!   the result is at least the range divided by 11 000 (Prometheus' point limit), rounded,
//!   times `intervalFactor`. Start and end are aligned down to a multiple of the step.
//! - `$__interval`, `$__interval_ms`, `$__range`, `$__range_s`, `$__range_ms` and
//!   `$__rate_interval` are replaced in `expr` as Grafana does.
//! - `jsonData.httpMethod` (POST, the default, sends a form body; GET a query string),
//!   `jsonData.timeout` in seconds, basic auth (`basicAuthUser` and the secret
//!   `basicAuthPassword`), custom headers (`jsonData.httpHeaderNameN` with the secret
//!   `httpHeaderValueN`), `jsonData.tlsSkipVerify`.
//! - One frame per series, labels (`__name__` included) on the value field, and
//!   `displayNameFromDS` from `legendFormat` (`{{label}}` templates; `__auto` leaves naming
//!   to the client; empty names the series `metric{label="value", …}`).
//! - Prometheus errors, unreachable servers and timeouts are the query's own error.

use std::borrow::Cow;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value as Json;

use crate::frame::{Field, FieldConfig, Frame, FrameMeta, Labels, Values};
use crate::query::{Query, QueryError};
use crate::time::{TimeRange, parse_duration_ms, round_interval};
use crate::{DataSource, SecureJsonData};

/// Prometheus' default `timeInterval` (scrape interval) when the data source has none.
const DEFAULT_SCRAPE_MS: i64 = 15_000;
/// Grafana's "safe" resolution: Prometheus refuses more than 11 000 points per series.
const SAFE_RESOLUTION: i64 = 11_000;
/// How many custom headers are read (`httpHeaderName1` …).
const MAX_CUSTOM_HEADERS: usize = 64;

/// Settings of the outgoing requests (Grafana's `[dataproxy]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpSettings {
    /// How long a query may take, unless the data source's `jsonData.timeout` says
    /// otherwise (`[dataproxy] timeout`, 30 s).
    pub timeout: Duration,
    /// How long connecting may take (`[dataproxy] dialTimeout`, 10 s).
    pub connect_timeout: Duration,
    /// The largest response body read, in bytes (`[dataproxy] response_limit`; Grafana's 0,
    /// unlimited, is mapped to 256 MiB by the caller).
    pub response_limit: usize,
}

impl Default for HttpSettings {
    fn default() -> HttpSettings {
        HttpSettings {
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            response_limit: 256 * 1024 * 1024,
        }
    }
}

/// A Prometheus data source ready to query.
#[derive(Clone, Debug)]
pub(crate) struct Prometheus {
    http: reqwest::Client,
    base: reqwest::Url,
    post: bool,
    time_interval: Option<String>,
    timeout: Duration,
    response_limit: usize,
}

impl Prometheus {
    /// A client for `ds` with its opened `secrets`.
    pub(crate) fn new(
        ds: &DataSource,
        secrets: &SecureJsonData,
        settings: &HttpSettings,
    ) -> Result<Prometheus, QueryError> {
        let mut base = reqwest::Url::parse(&ds.url)
            .map_err(|_| QueryError::bad_request("the data source URL is invalid"))?;
        // Joining "api/v1/…" must keep a path prefix such as /prometheus.
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        let json = |key: &str| ds.json_data.get(key);
        let post = !json("httpMethod")
            .and_then(Json::as_str)
            .is_some_and(|m| m.eq_ignore_ascii_case("GET"));
        let timeout = json("timeout")
            .and_then(crate::query::number)
            .filter(|s| *s > 0.0 && *s < 86_400.0)
            .map_or(settings.timeout, Duration::from_secs_f64);
        let mut headers = HeaderMap::new();
        for n in 1..=MAX_CUSTOM_HEADERS {
            let Some(name) = json(&format!("httpHeaderName{n}")).and_then(Json::as_str) else {
                break;
            };
            let value = secrets.get(&format!("httpHeaderValue{n}")).unwrap_or("");
            let name = HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| {
                QueryError::bad_request(format!("httpHeaderName{n} is not a valid header name"))
            })?;
            let mut value = HeaderValue::from_str(value).map_err(|_| {
                QueryError::bad_request(format!("httpHeaderValue{n} is not a valid header value"))
            })?;
            value.set_sensitive(true);
            headers.insert(name, value);
        }
        if ds.basic_auth {
            let password = secrets.get("basicAuthPassword").unwrap_or("");
            let token = base64::Engine::encode(
                &base64::engine::general_purpose::STANDARD,
                format!("{}:{password}", ds.basic_auth_user),
            );
            let mut value = HeaderValue::from_str(&format!("Basic {token}"))
                .map_err(|_| QueryError::bad_request("basicAuthUser is not valid in a header"))?;
            value.set_sensitive(true);
            headers.insert(reqwest::header::AUTHORIZATION, value);
        }
        let skip_verify = json("tlsSkipVerify")
            .and_then(Json::as_bool)
            .unwrap_or(false);
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .connect_timeout(settings.connect_timeout)
            .danger_accept_invalid_certs(skip_verify)
            .user_agent(concat!("Tandem/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|err| QueryError {
                status: 500,
                message: format!("cannot build the HTTP client: {err}"),
            })?;
        Ok(Prometheus {
            http,
            base,
            post,
            time_interval: json("timeInterval")
                .and_then(Json::as_str)
                .filter(|s| !s.trim().is_empty())
                .map(str::to_owned),
            timeout,
            response_limit: settings.response_limit,
        })
    }

    /// Runs one query over `range`.
    pub(crate) async fn query(
        &self,
        query: &Query,
        range: TimeRange,
    ) -> Result<Vec<Frame>, QueryError> {
        let expr = query.text("expr").unwrap_or("").trim();
        if expr.is_empty() {
            return Err(QueryError::bad_request("the query has no expr"));
        }
        let step = self.step(query, range)?;
        let expr = self.interpolate(expr, query, range, step);
        let (instant, mut ranged) = (query.flag("instant"), query.flag("range"));
        if !instant && !ranged {
            // Older dashboards set neither and meant a range query.
            ranged = true;
        }
        let legend = query.text("legendFormat").unwrap_or("");
        let mut frames = Vec::new();
        if ranged {
            let start = align(range.from, step);
            let end = align(range.to, step);
            let params = [
                ("query", expr.clone()),
                ("start", seconds(start)),
                ("end", seconds(end)),
                ("step", seconds(step)),
            ];
            let (status, body) = self.call("api/v1/query_range", &params).await?;
            let data = parse(status, &body)?;
            frames.extend(to_frames(data, &expr, step, legend, "timeseries-multi")?);
        }
        if instant {
            let params = [("query", expr.clone()), ("time", seconds(range.to))];
            let (status, body) = self.call("api/v1/query", &params).await?;
            let data = parse(status, &body)?;
            frames.extend(to_frames(data, &expr, step, legend, "numeric-multi")?);
        }
        Ok(frames)
    }

    /// Grafana's health check: the instant query `1+1` must answer.
    pub(crate) async fn health(&self) -> Result<(), QueryError> {
        let params = [("query", "1+1".to_owned()), ("time", "4".to_owned())];
        let (status, body) = self.call("api/v1/query", &params).await?;
        parse(status, &body).map(|_| ())
    }

    /// Grafana's step; see the module documentation.
    fn step(&self, query: &Query, range: TimeRange) -> Result<i64, QueryError> {
        let own = query
            .text("interval")
            .map(str::trim)
            .filter(|i| !i.is_empty() && *i != "0s" && !i.starts_with('$'));
        let min_interval = match (own, query.int("intervalMs").filter(|ms| *ms > 0)) {
            (Some(interval), _) => parse_duration_ms(interval)
                .ok_or_else(|| QueryError::bad_request(format!("invalid interval {interval:?}")))?,
            (None, Some(ms)) => ms,
            (None, None) => match &self.time_interval {
                Some(ds) => parse_duration_ms(ds).ok_or_else(|| {
                    QueryError::bad_request(format!(
                        "invalid timeInterval {ds:?} of the data source"
                    ))
                })?,
                None => DEFAULT_SCRAPE_MS,
            },
        };
        let resolution = query.max_data_points();
        let calculated = range.duration_ms() / resolution;
        let adjusted = if calculated < min_interval {
            min_interval
        } else {
            round_interval(calculated)
        };
        let safe = round_interval(range.duration_ms() / SAFE_RESOLUTION);
        let factor = query.int("intervalFactor").filter(|f| *f > 0).unwrap_or(1);
        Ok(adjusted.max(safe).saturating_mul(factor).max(1))
    }

    fn interpolate(&self, expr: &str, query: &Query, range: TimeRange, step: i64) -> String {
        if !expr.contains("$__") && !expr.contains("${__") {
            return expr.to_owned();
        }
        let scrape = query
            .text("interval")
            .filter(|i| !i.trim().is_empty() && !i.starts_with('$'))
            .and_then(parse_duration_ms)
            .or_else(|| self.time_interval.as_deref().and_then(parse_duration_ms))
            .unwrap_or(DEFAULT_SCRAPE_MS);
        let interval_ms = query.int("intervalMs").filter(|ms| *ms > 0).unwrap_or(step);
        let rate = (interval_ms.saturating_add(scrape)).max(scrape.saturating_mul(4));
        let range_ms = range.duration_ms();
        let range_s = (range_ms as f64 / 1000.0).round() as i64;
        let mut out = expr.to_owned();
        // Longer names first: `$__interval_ms` must not be read as `$__interval`.
        for (name, value) in [
            ("__rate_interval_ms", rate.to_string()),
            ("__rate_interval", go_duration(rate)),
            ("__interval_ms", step.to_string()),
            ("__interval", crate::time::format_interval(step)),
            ("__range_ms", range_ms.to_string()),
            ("__range_s", range_s.to_string()),
            ("__range", format!("{range_s}s")),
        ] {
            out = out
                .replace(&format!("${{{name}}}"), &value)
                .replace(&format!("${name}"), &value);
        }
        out
    }

    /// Sends one API call; the HTTP status and body of the answer, which [`parse`] reads.
    async fn call(
        &self,
        path: &str,
        params: &[(&str, String)],
    ) -> Result<(u16, Vec<u8>), QueryError> {
        let url = self
            .base
            .join(path)
            .map_err(|_| QueryError::bad_request("the data source URL is invalid"))?;
        let request = if self.post {
            self.http.post(url).form(params)
        } else {
            self.http.get(url).query(params)
        };
        let sent = tokio::time::timeout(self.timeout, async {
            let mut response = request.send().await?;
            let status = response.status();
            // Sized once from the announced length, or for a typical answer (tens of
            // kilobytes) when Prometheus streams it chunked, as it does for larger ones.
            let announced = response
                .content_length()
                .and_then(|n| usize::try_from(n).ok())
                .unwrap_or(TYPICAL_ANSWER)
                .min(self.response_limit);
            let mut body = Vec::with_capacity(announced);
            while let Some(chunk) = response.chunk().await? {
                if body.len() + chunk.len() > self.response_limit {
                    return Ok(Err(QueryError {
                        status: 502,
                        message: format!(
                            "the Prometheus response is larger than {} bytes",
                            self.response_limit
                        ),
                    }));
                }
                body.extend_from_slice(&chunk);
            }
            Ok::<_, reqwest::Error>(Ok((status, body)))
        })
        .await;
        let (status, body) = match sent {
            Err(_) => {
                return Err(QueryError {
                    status: 504,
                    message: format!("Prometheus did not answer within {:?}", self.timeout),
                });
            }
            Ok(Err(err)) => {
                return Err(QueryError {
                    status: 502,
                    message: format!("cannot query Prometheus: {}", without_url(&err)),
                });
            }
            Ok(Ok(Err(err))) => return Err(err),
            Ok(Ok(Ok(answer))) => answer,
        };
        Ok((status.as_u16(), body))
    }
}

/// The buffer of an answer of unannounced length, in bytes.
const TYPICAL_ANSWER: usize = 64 * 1024;

/// Reads Prometheus' answer in one pass, straight into typed values (no JSON tree): its
/// `data` on `"status": "success"`, its error as a query error otherwise.
fn parse(status: u16, body: &[u8]) -> Result<Data<'_>, QueryError> {
    match serde_json::from_slice::<Envelope<'_>>(body) {
        Ok(Envelope {
            status: ok,
            data: Some(data),
            ..
        }) if ok == "success" => Ok(data),
        Ok(envelope) if envelope.status != "success" => {
            let kind = envelope.error_type.as_deref().unwrap_or("error");
            let message = envelope.error.as_deref().unwrap_or("unknown error");
            Err(QueryError {
                status: error_status(status),
                message: format!("{kind}: {message}"),
            })
        }
        Ok(_) => Err(unexpected_shape()),
        Err(_) if (200..300).contains(&status) => Err(unexpected_shape()),
        Err(_) => Err(QueryError {
            status: error_status(status),
            message: format!(
                "Prometheus answered {status} with a body that is not Prometheus JSON"
            ),
        }),
    }
}

fn unexpected_shape() -> QueryError {
    QueryError {
        status: 502,
        message: "Prometheus answered data of an unexpected shape".to_owned(),
    }
}

/// The status a Prometheus failure gets in `results`: its own 4xx, 502 for anything else.
fn error_status(status: u16) -> u16 {
    if (400..500).contains(&status) {
        status
    } else {
        502
    }
}

/// A reqwest error without its URL (which may carry credentials in user info).
fn without_url(err: &reqwest::Error) -> String {
    let mut text = err.to_string();
    if let Some(url) = err.url() {
        text = text.replace(url.as_str(), "<data source>");
    }
    if err.is_connect() {
        return format!("connection failed ({text})");
    }
    text
}

/// `ms` as Prometheus' seconds with milliseconds: `1700000000.5`.
fn seconds(ms: i64) -> String {
    let (s, rem) = (ms.div_euclid(1000), ms.rem_euclid(1000));
    if rem == 0 {
        s.to_string()
    } else {
        format!("{s}.{rem:03}")
    }
}

/// Rounds `t` down to a multiple of `step` (Grafana's `AlignTimeRange` at UTC).
fn align(t: i64, step: i64) -> i64 {
    t - t.rem_euclid(step.max(1))
}

/// A duration as Go prints it (`1m0s`, `1m15s`, `500ms`), as Grafana fills
/// `$__rate_interval`.
fn go_duration(ms: i64) -> String {
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let (h, m, s, frac) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
    let seconds = if frac == 0 {
        format!("{s}s")
    } else {
        let digits = format!("{frac:03}");
        format!("{s}.{}s", digits.trim_end_matches('0'))
    };
    match (h, m) {
        (0, 0) => seconds,
        (0, m) => format!("{m}m{seconds}"),
        (h, m) => format!("{h}h{m}m{seconds}"),
    }
}

/// Prometheus' answer around its `data`.
#[derive(serde::Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    status: Cow<'a, str>,
    #[serde(borrow, default)]
    data: Option<Data<'a>>,
    #[serde(rename = "errorType", borrow, default)]
    error_type: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    error: Option<Cow<'a, str>>,
}

/// `data` of a query answer: a matrix or vector (series), or a scalar or string (the two
/// items of one sample).
#[derive(serde::Deserialize)]
struct Data<'a> {
    #[serde(rename = "resultType", borrow)]
    result_type: Cow<'a, str>,
    #[serde(borrow)]
    result: Vec<Item<'a>>,
}

/// One item of `result`: a series, or a part of a scalar's `[time, "value"]`.
enum Item<'a> {
    Series(SeriesItem),
    Number(f64),
    Text(Cow<'a, str>),
}

impl<'de: 'a, 'a> serde::Deserialize<'de> for Item<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ItemVisitor<'a>(std::marker::PhantomData<&'a ()>);

        impl<'de: 'a, 'a> serde::de::Visitor<'de> for ItemVisitor<'a> {
            type Value = Item<'a>;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a series, a number or a string")
            }

            fn visit_map<M: serde::de::MapAccess<'de>>(self, map: M) -> Result<Item<'a>, M::Error> {
                serde::Deserialize::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(Item::Series)
            }

            fn visit_f64<E>(self, v: f64) -> Result<Item<'a>, E> {
                Ok(Item::Number(v))
            }

            fn visit_u64<E>(self, v: u64) -> Result<Item<'a>, E> {
                Ok(Item::Number(v as f64))
            }

            fn visit_i64<E>(self, v: i64) -> Result<Item<'a>, E> {
                Ok(Item::Number(v as f64))
            }

            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Item<'a>, E> {
                Ok(Item::Text(Cow::Borrowed(v)))
            }

            fn visit_str<E>(self, v: &str) -> Result<Item<'a>, E> {
                Ok(Item::Text(Cow::Owned(v.to_owned())))
            }
        }

        deserializer.deserialize_any(ItemVisitor(std::marker::PhantomData))
    }
}

/// One series of a matrix (`values`) or a vector (`value`).
#[derive(serde::Deserialize)]
struct SeriesItem {
    #[serde(default)]
    metric: Labels,
    #[serde(default)]
    values: Vec<Point>,
    #[serde(default)]
    value: Option<Point>,
}

/// One sample, `[1700000000.123, "0.5"]`, read straight into epoch milliseconds and a
/// number: the value's text is parsed where it lies in the answer, never copied.
#[derive(Clone, Copy)]
struct Point {
    time_ms: i64,
    value: f64,
}

impl<'de> serde::Deserialize<'de> for Point {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PointVisitor;

        impl<'de> serde::de::Visitor<'de> for PointVisitor {
            type Value = Point;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a sample [time, \"value\"]")
            }

            fn visit_seq<S: serde::de::SeqAccess<'de>>(
                self,
                mut seq: S,
            ) -> Result<Point, S::Error> {
                use serde::de::Error;
                let time: f64 = seq
                    .next_element()?
                    .ok_or_else(|| S::Error::invalid_length(0, &self))?;
                let value = seq
                    .next_element::<SampleValue>()?
                    .ok_or_else(|| S::Error::invalid_length(1, &self))?;
                if seq.next_element::<serde::de::IgnoredAny>()?.is_some() {
                    return Err(S::Error::invalid_length(3, &self));
                }
                Ok(Point {
                    time_ms: (time * 1000.0).round() as i64,
                    value: value.0,
                })
            }
        }

        deserializer.deserialize_seq(PointVisitor)
    }
}

/// A sample's value as Prometheus writes it: a number in a string, `NaN`, `+Inf`, `-Inf`.
struct SampleValue(f64);

impl<'de> serde::Deserialize<'de> for SampleValue {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ValueVisitor;

        impl serde::de::Visitor<'_> for ValueVisitor {
            type Value = SampleValue;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a sample value in a string")
            }

            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<SampleValue, E> {
                sample_value(text)
                    .map(SampleValue)
                    .ok_or_else(|| E::invalid_value(serde::de::Unexpected::Str(text), &self))
            }
        }

        deserializer.deserialize_str(ValueVisitor)
    }
}

/// The frames of an answer's `data`.
fn to_frames(
    data: Data<'_>,
    expr: &str,
    step: i64,
    legend: &str,
    kind: &str,
) -> Result<Vec<Frame>, QueryError> {
    let executed = Some(format!(
        "Expr: {expr}\nStep: {}",
        crate::time::format_interval(step)
    ));
    let meta = Some(FrameMeta {
        kind: Some(kind.to_owned()),
        type_version: Some([0, 1]),
        executed_query_string: executed,
    });
    let mut items = data.result.into_iter();
    match data.result_type.as_ref() {
        "matrix" | "vector" => {
            let mut frames = Vec::with_capacity(items.len());
            for item in items {
                let Item::Series(item) = item else {
                    return Err(unexpected_shape());
                };
                let points = match item.value {
                    Some(value) if item.values.is_empty() => vec![value],
                    _ => item.values,
                };
                let times = points.iter().map(|p| p.time_ms).collect();
                let values = points.iter().map(|p| Some(p.value)).collect();
                frames.push(series_frame(
                    times,
                    values,
                    item.metric,
                    legend,
                    step,
                    meta.clone(),
                ));
            }
            Ok(frames)
        }
        "scalar" | "string" => {
            let (Some(Item::Number(t)), Some(Item::Text(text)), None) =
                (items.next(), items.next(), items.next())
            else {
                return Err(unexpected_shape());
            };
            if data.result_type == "scalar" {
                let v = sample_value(&text).ok_or_else(unexpected_shape)?;
                return Ok(vec![series_frame(
                    vec![(t * 1000.0).round() as i64],
                    vec![Some(v)],
                    Labels::new(),
                    legend,
                    step,
                    meta,
                )]);
            }
            Ok(vec![Frame {
                meta,
                fields: vec![
                    Field::time("Time", vec![(t * 1000.0).round() as i64]),
                    Field {
                        name: "Value".to_owned(),
                        values: Values::Text(vec![Some(text.into_owned())]),
                        ..Field::default()
                    },
                ],
                ..Frame::default()
            }])
        }
        _ => Err(unexpected_shape()),
    }
}

fn series_frame(
    times: Vec<i64>,
    values: Vec<Option<f64>>,
    labels: Labels,
    legend: &str,
    step: i64,
    meta: Option<FrameMeta>,
) -> Frame {
    let display = display_name(legend, &labels);
    let mut time = Field::time("Time", times);
    time.config.interval = Some(step);
    Frame {
        meta,
        fields: vec![
            time,
            Field {
                name: "Value".to_owned(),
                config: FieldConfig {
                    display_name_from_ds: display,
                    ..FieldConfig::default()
                },
                ..Field::number("Value", labels, values)
            },
        ],
        ..Frame::default()
    }
}

/// A sample value's text as a number; `NaN`, `+Inf`, `-Inf` as Prometheus writes them.
fn sample_value(text: &str) -> Option<f64> {
    match text {
        "NaN" => Some(f64::NAN),
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        text => text.parse().ok(),
    }
}

/// Grafana's series name from `legendFormat`; see the module documentation.
fn display_name(legend: &str, labels: &Labels) -> Option<String> {
    let name = match legend {
        "__auto" if !labels.is_empty() => String::new(),
        "__auto" | "" => metric_name(labels),
        template => {
            let mut out = String::with_capacity(template.len());
            let mut rest = template;
            while let Some(start) = rest.find("{{") {
                out.push_str(rest.get(..start).unwrap_or(""));
                let after = rest.get(start + 2..).unwrap_or("");
                match after.find("}}") {
                    Some(end) => {
                        let label = after.get(..end).unwrap_or("").trim();
                        out.push_str(labels.get(label).map_or("", String::as_str));
                        rest = after.get(end + 2..).unwrap_or("");
                    }
                    None => {
                        out.push_str(rest.get(start..).unwrap_or(""));
                        rest = "";
                    }
                }
            }
            out.push_str(rest);
            out
        }
    };
    (!name.is_empty()).then_some(name)
}

/// `metric{a="1", b="2"}` (Grafana's `metricNameFromLabels`).
fn metric_name(labels: &Labels) -> String {
    let name = labels.get("__name__").map_or("", String::as_str);
    let rest: Vec<String> = labels
        .iter()
        .filter(|(k, _)| *k != "__name__")
        .map(|(k, v)| format!("{k}={}", Json::from(v.as_str())))
        .collect();
    match (rest.is_empty(), name.is_empty()) {
        (true, false) => name.to_owned(),
        (true, true) => "{}".to_owned(),
        (false, _) => format!("{name}{{{}}}", rest.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::{DataSourceId, DataSourceType, DataSourceUid, OrgId, Version};

    fn client(json_data: Json) -> Prometheus {
        let ds = DataSource {
            id: DataSourceId(1),
            uid: DataSourceUid::from("p"),
            org_id: OrgId(1),
            name: "p".to_owned(),
            kind: DataSourceType::Prometheus,
            type_name: "Prometheus",
            access: "proxy".to_owned(),
            url: "http://localhost:9090/prefix".to_owned(),
            user: String::new(),
            database: String::new(),
            basic_auth: false,
            basic_auth_user: String::new(),
            with_credentials: false,
            is_default: false,
            json_data: json_data.as_object().cloned().unwrap_or_default(),
            secure_json_fields: Default::default(),
            version: Version(1),
            read_only: false,
        };
        Prometheus::new(&ds, &SecureJsonData::default(), &HttpSettings::default()).unwrap()
    }

    fn step(client: &Prometheus, model: Json, range_ms: i64) -> i64 {
        let q: Query = serde_json::from_value(model).unwrap();
        client
            .step(&q, TimeRange::new(0, range_ms).unwrap())
            .unwrap()
    }

    #[test]
    fn the_step_is_grafanas() {
        let plain = client(json!({}));
        let hour = 3_600_000;
        // 1 h over 1000 points is 3.6 s, below the 15 s intervalMs.
        assert_eq!(
            step(
                &plain,
                json!({"intervalMs":15000,"maxDataPoints":1000}),
                hour
            ),
            15_000
        );
        // 1 h over 100 points is 36 s, rounded to 30 s, above a 1 s minimum.
        assert_eq!(
            step(&plain, json!({"intervalMs":1000,"maxDataPoints":100}), hour),
            30_000
        );
        // No interval at all: the data source's timeInterval, else 15 s.
        assert_eq!(step(&plain, json!({"maxDataPoints":100000}), hour), 15_000);
        assert_eq!(
            step(
                &client(json!({"timeInterval":"1m"})),
                json!({"maxDataPoints":100000}),
                hour
            ),
            60_000
        );
        // The query's own interval wins over intervalMs.
        assert_eq!(
            step(
                &plain,
                json!({"interval":"2m","intervalMs":1000,"maxDataPoints":100000}),
                hour
            ),
            120_000
        );
        // 30 days at 11 000 points is at least 4 min, rounded to 5 min.
        assert_eq!(
            step(
                &plain,
                json!({"intervalMs":1000,"maxDataPoints":100000}),
                30 * 24 * hour
            ),
            300_000
        );
        assert_eq!(
            step(
                &plain,
                json!({"intervalMs":15000,"maxDataPoints":1000,"intervalFactor":2}),
                hour
            ),
            30_000
        );
    }

    #[test]
    fn variables_are_interpolated() {
        let plain = client(json!({}));
        let q: Query = serde_json::from_value(json!({"intervalMs":15000})).unwrap();
        let range = TimeRange::new(0, 3_600_000).unwrap();
        assert_eq!(
            plain.interpolate(
                "rate(x[$__rate_interval]) + $__interval_ms + ${__interval} + $__range_s + $__range",
                &q,
                range,
                15_000
            ),
            "rate(x[1m0s]) + 15000 + 15s + 3600 + 3600s"
        );
    }

    #[test]
    fn legends_follow_grafana() {
        let labels: Labels = [("__name__", "up"), ("job", "api"), ("instance", "a:1")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        assert_eq!(
            display_name("{{job}} on {{ instance }} {{missing}}", &labels).as_deref(),
            Some("api on a:1 ")
        );
        assert_eq!(display_name("__auto", &labels), None);
        assert_eq!(
            display_name("", &labels).as_deref(),
            Some("up{instance=\"a:1\", job=\"api\"}")
        );
        assert_eq!(display_name("", &Labels::new()).as_deref(), Some("{}"));
        assert_eq!(go_duration(75_000), "1m15s");
        assert_eq!(go_duration(500), "500ms");
        assert_eq!(go_duration(61_500), "1m1.5s");
        assert_eq!(seconds(1_700_000_000_500), "1700000000.500");
        assert_eq!(
            client(json!({})).base.as_str(),
            "http://localhost:9090/prefix/"
        );
    }
}
