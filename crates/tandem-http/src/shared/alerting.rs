//! What the alerting routes (provisioning, Ruler, Prometheus) share: the folders of the
//! dashboards domain as alerting sees them, the caller's org and provenance, the export
//! document, and a YAML writer for it.

use axum::http::HeaderMap;
use axum::http::header::{ACCEPT, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use tandem_alerting::{AlertRule, Folder, FolderLookup, FolderUid, OrgId, Provenance};
use tandem_dashboards::{CreateFolder, Dashboards, UserId};

use crate::CurrentUser;

/// The header that makes a provisioning write store provenance `""` instead of `api`.
pub(crate) const DISABLE_PROVENANCE: &str = "x-disable-provenance";

/// The org a request acts in, as alerting numbers it.
pub(crate) fn org(current: &CurrentUser) -> OrgId {
    OrgId(current.org_id.0)
}

/// Grafana's `determineProvenance`: `""` with `X-Disable-Provenance`, else `api`.
pub(crate) fn provenance(headers: &HeaderMap) -> Provenance {
    if headers.contains_key(DISABLE_PROVENANCE) {
        Provenance::None
    } else {
        Provenance::Api
    }
}

/// The dashboards domain's folders, for alerting.
#[derive(Clone)]
pub(crate) struct DashboardFolders(pub(crate) Dashboards);

fn folder_error(err: tandem_dashboards::Error) -> tandem_alerting::Error {
    match err {
        tandem_dashboards::Error::Storage(err) => tandem_alerting::Error::Storage(err),
        other => tandem_alerting::Error::BadRequest(other.to_string()),
    }
}

#[async_trait::async_trait]
impl FolderLookup for DashboardFolders {
    async fn folder(&self, org: OrgId, uid: &FolderUid) -> tandem_alerting::Result<Option<Folder>> {
        match self
            .0
            .folder(
                tandem_dashboards::OrgId(org.0),
                &tandem_dashboards::FolderUid::from(uid.as_str()),
            )
            .await
        {
            Ok(folder) => Ok(Some(Folder {
                uid: FolderUid::from(folder.uid.as_str()),
                title: folder.title,
            })),
            Err(tandem_dashboards::Error::FolderNotFound) => Ok(None),
            Err(err) => Err(folder_error(err)),
        }
    }

    async fn folders(&self, org: OrgId) -> tandem_alerting::Result<Vec<Folder>> {
        // Folders nest at most a few levels deep: walk them breadth first.
        let org = tandem_dashboards::OrgId(org.0);
        let mut out = Vec::new();
        let mut level = self.0.folders(org, None).await.map_err(folder_error)?;
        for _ in 0..8 {
            if level.is_empty() {
                break;
            }
            let mut next = Vec::new();
            for folder in level {
                next.extend(
                    self.0
                        .folders(org, Some(&folder.uid))
                        .await
                        .map_err(folder_error)?,
                );
                out.push(Folder {
                    uid: FolderUid::from(folder.uid.as_str()),
                    title: folder.title,
                });
            }
            level = next;
        }
        Ok(out)
    }

    async fn ensure_folder(&self, org: OrgId, title: &str) -> tandem_alerting::Result<Folder> {
        let dash_org = tandem_dashboards::OrgId(org.0);
        let found = self.0.folders(dash_org, None).await.map_err(folder_error)?;
        if let Some(folder) = found.into_iter().find(|f| f.title == title) {
            return Ok(Folder {
                uid: FolderUid::from(folder.uid.as_str()),
                title: folder.title,
            });
        }
        // A uid derived from the title, so instances provisioning at once make one folder.
        let labels = [("folder".to_owned(), title.to_owned())].into();
        let uid = format!("alerting-{}", tandem_alerting::fingerprint(&labels));
        let created = self
            .0
            .create_folder(CreateFolder {
                org_id: dash_org,
                uid: Some(tandem_dashboards::FolderUid::from(uid.as_str())),
                title: title.to_owned(),
                parent_uid: None,
                user_id: UserId(0),
            })
            .await;
        match created {
            Ok(folder) => Ok(Folder {
                uid: FolderUid::from(folder.uid.as_str()),
                title: folder.title,
            }),
            Err(tandem_dashboards::Error::FolderUidTaken) => Ok(Folder {
                uid: FolderUid::from(uid),
                title: title.to_owned(),
            }),
            Err(err) => Err(folder_error(err)),
        }
    }
}

/// A rule's queries as Grafana's JSON writes them.
pub(crate) fn queries_json(rule: &AlertRule) -> Value {
    serde_json::to_value(&rule.spec.data).unwrap_or(Value::Array(Vec::new()))
}

/// The file-provisioning export of groups (`AlertingFileExport`): `{apiVersion, groups}`.
pub(crate) fn export_document(groups: &[(String, &[AlertRule])]) -> Value {
    let groups: Vec<Value> = groups
        .iter()
        .filter_map(|(folder_title, rules)| {
            let first = rules.first()?;
            Some(json!({
                "orgId": first.org_id.0,
                "name": first.rule_group,
                "folder": folder_title,
                "interval": tandem_alerting::format_duration(first.interval_seconds.saturating_mul(1000)),
                "rules": rules.iter().map(export_rule).collect::<Vec<_>>(),
            }))
        })
        .collect();
    json!({"apiVersion": 1, "groups": groups})
}

fn export_rule(rule: &AlertRule) -> Value {
    let spec = &rule.spec;
    let mut out = Map::new();
    out.insert("uid".to_owned(), json!(rule.uid.as_str()));
    out.insert("title".to_owned(), json!(spec.title));
    out.insert("condition".to_owned(), json!(spec.condition));
    let data: Vec<Value> = spec
        .data
        .iter()
        .map(|q| {
            let mut query = Map::new();
            query.insert("refId".to_owned(), json!(q.ref_id));
            if !q.query_type.is_empty() {
                query.insert("queryType".to_owned(), json!(q.query_type));
            }
            query.insert(
                "relativeTimeRange".to_owned(),
                json!({"from": q.relative_time_range.from, "to": q.relative_time_range.to}),
            );
            query.insert("datasourceUid".to_owned(), json!(q.datasource_uid));
            query.insert("model".to_owned(), Value::Object(q.model.clone()));
            Value::Object(query)
        })
        .collect();
    out.insert("data".to_owned(), Value::Array(data));
    out.insert("noDataState".to_owned(), json!(spec.no_data_state.as_str()));
    out.insert(
        "execErrState".to_owned(),
        json!(spec.exec_err_state.as_str()),
    );
    if spec.for_ms > 0 {
        out.insert(
            "for".to_owned(),
            json!(tandem_alerting::format_duration(spec.for_ms)),
        );
    }
    if spec.keep_firing_for_ms > 0 {
        out.insert(
            "keepFiringFor".to_owned(),
            json!(tandem_alerting::format_duration(spec.keep_firing_for_ms)),
        );
    }
    if !spec.annotations.is_empty() {
        out.insert("annotations".to_owned(), json!(spec.annotations));
    }
    if !spec.labels.is_empty() {
        out.insert("labels".to_owned(), json!(spec.labels));
    }
    out.insert("isPaused".to_owned(), json!(spec.is_paused));
    if let Some(n) = spec.missing_series_evals {
        out.insert("missing_series_evals_to_resolve".to_owned(), json!(n));
    }
    Value::Object(out)
}

/// Answers an export as Grafana does: YAML unless the request asks for JSON (`Accept` or
/// `?format=json`); `?download=true` adds an attachment header.
pub(crate) fn export_response(
    headers: &HeaderMap,
    format: Option<&str>,
    download: bool,
    body: &Value,
) -> Response {
    let accept = headers
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let json = match format {
        Some("json") => true,
        Some("yaml") => false,
        _ => accept.contains("json"),
    };
    let (text, content_type, name) = if json {
        (
            serde_json::to_string_pretty(body).unwrap_or_default(),
            "application/json",
            "export.json",
        )
    } else {
        (yaml(body), "text/yaml", "export.yaml")
    };
    let mut response = (axum::http::StatusCode::OK, text).into_response();
    if let Ok(value) = content_type.parse() {
        response.headers_mut().insert(CONTENT_TYPE, value);
    }
    if download && let Ok(value) = format!("attachment;filename={name}").parse() {
        response
            .headers_mut()
            .insert(axum::http::header::CONTENT_DISPOSITION, value);
    }
    response
}

/// A YAML rendering of a JSON value: block mappings and sequences, strings in double
/// quotes (JSON's escapes are YAML's), keys bare when they are plain words.
pub(crate) fn yaml(value: &Value) -> String {
    let mut out = String::new();
    write_yaml(value, 0, &mut out, false);
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out
}

fn scalar(value: &Value) -> String {
    match value {
        Value::String(s) => serde_json::to_string(s).unwrap_or_default(),
        Value::Null => "null".to_owned(),
        other => other.to_string(),
    }
}

fn key(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
        && !text.starts_with(['-', '.']);
    if plain {
        text.to_owned()
    } else {
        serde_json::to_string(text).unwrap_or_default()
    }
}

fn write_yaml(value: &Value, indent: usize, out: &mut String, inline_first: bool) {
    let pad = " ".repeat(indent);
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (i, (k, v)) in map.iter().enumerate() {
                if !(inline_first && i == 0) {
                    out.push_str(&pad);
                }
                out.push_str(&key(k));
                out.push(':');
                nested(v, indent, out);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for item in items {
                out.push_str(&pad);
                out.push_str("- ");
                match item {
                    Value::Object(m) if !m.is_empty() => write_yaml(item, indent + 2, out, true),
                    Value::Array(a) if !a.is_empty() => {
                        out.push('\n');
                        write_yaml(item, indent + 2, out, false);
                    }
                    other => {
                        out.push_str(&inline(other));
                        out.push('\n');
                    }
                }
            }
        }
        other => {
            out.push_str(&pad);
            out.push_str(&inline(other));
            out.push('\n');
        }
    }
}

fn inline(value: &Value) -> String {
    match value {
        Value::Object(_) => "{}".to_owned(),
        Value::Array(_) => "[]".to_owned(),
        other => scalar(other),
    }
}

fn nested(value: &Value, indent: usize, out: &mut String) {
    match value {
        Value::Object(m) if !m.is_empty() => {
            out.push('\n');
            write_yaml(value, indent + 2, out, false);
        }
        Value::Array(a) if !a.is_empty() => {
            out.push('\n');
            write_yaml(value, indent + 2, out, false);
        }
        other => {
            out.push(' ');
            out.push_str(&inline(other));
            out.push('\n');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_round_trips_through_a_yaml_reader_shape() {
        let value = json!({"apiVersion": 1, "groups": [{"name": "g", "rules": [{"uid": "u", "data": [{"refId": "A", "model": {"expr": "a\"b"}}], "labels": {}}]}]});
        let text = yaml(&value);
        assert!(
            text.starts_with("apiVersion: 1\ngroups:\n  - name: \"g\"\n"),
            "{text}"
        );
        assert!(text.contains("\"a\\\"b\""), "{text}");
        assert!(text.contains("labels: {}"), "{text}");
    }
}
