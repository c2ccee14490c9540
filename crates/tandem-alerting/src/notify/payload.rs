//! Grafana's webhook payload (`receiver`, `status`, `alerts`, `groupLabels`, … `title`,
//! `state`, `message`) and its default title and message, written out as Grafana's
//! `default.title` and `default.message` templates render them.

use std::fmt::Write as _;

use serde_json::{Map, Value, json};

use crate::notify::contact::ContactPoint;
use crate::notify::policy::common_labels;
use crate::{AlertInstance, Labels, OrgId};

/// Go's zero time in RFC 3339, what `endsAt` says of a firing alert.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// One alert of a notification.
#[derive(Clone, Debug)]
pub struct NotifiedAlert<'a> {
    /// The instance.
    pub instance: &'a AlertInstance,
    /// Firing (or resolved).
    pub firing: bool,
}

/// What a notification is made of.
#[derive(Clone, Debug)]
pub struct Notification<'a> {
    /// The receiver's name.
    pub receiver: &'a str,
    /// The org.
    pub org_id: OrgId,
    /// The group key.
    pub group_key: &'a str,
    /// The group labels.
    pub group_labels: &'a Labels,
    /// The alerts, firing first.
    pub alerts: Vec<NotifiedAlert<'a>>,
    /// `[server] root_url`, with a trailing slash.
    pub external_url: &'a str,
}

/// Labels and annotations without Grafana's private `__…__` names.
fn public(labels: &Labels) -> Labels {
    labels
        .iter()
        .filter(|(k, _)| !(k.starts_with("__") && k.ends_with("__")))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn rfc3339(ms: i64) -> String {
    tandem_storage::from_ms(ms)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| ZERO_TIME.to_owned())
}

/// Grafana's `valueString`: `[ var='A' labels={…} value=1 ]`, comma separated.
fn value_string(instance: &AlertInstance) -> String {
    let labels = public(&instance.labels)
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ");
    instance
        .values
        .iter()
        .map(|(ref_id, value)| {
            let value = value.map_or_else(|| "null".to_owned(), format_value);
            format!("[ var='{ref_id}' labels={{{labels}}} value={value} ]")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A value as Go's `%v` writes a float64 for these magnitudes.
fn format_value(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v}")
    }
}

struct Rendered {
    status: &'static str,
    labels: Labels,
    annotations: Labels,
    generator_url: String,
    silence_url: String,
    values: Map<String, Value>,
    json: Value,
}

fn render_alert(alert: &NotifiedAlert<'_>, external_url: &str) -> Rendered {
    let i = alert.instance;
    let labels = public(&i.labels);
    let annotations = public(&i.annotations);
    let status = if alert.firing { "firing" } else { "resolved" };
    let generator_url = i.generator_url.clone().unwrap_or_else(|| {
        format!(
            "{external_url}alerting/grafana/{}/view?orgId={}",
            i.rule_uid, i.org_id.0
        )
    });
    let matchers: String = labels
        .iter()
        .map(|(k, v)| format!("&matcher={}", url_encode(&format!("{k}={v}"))))
        .collect();
    let silence_url = format!(
        "{external_url}alerting/silence/new?alertmanager=grafana{matchers}&orgId={}",
        i.org_id.0
    );
    let ends_at = if alert.firing {
        ZERO_TIME.to_owned()
    } else {
        rfc3339(i.resolved_at.unwrap_or(i.last_eval_at))
    };
    let values: Map<String, Value> = i
        .values
        .iter()
        .map(|(k, v)| (k.clone(), v.map_or(Value::Null, |v| json!(v))))
        .collect();
    let json = json!({
        "status": status,
        "labels": labels,
        "annotations": annotations,
        "startsAt": rfc3339(i.started_at),
        "endsAt": ends_at,
        "generatorURL": generator_url,
        "fingerprint": i.fingerprint,
        "silenceURL": silence_url,
        "dashboardURL": "",
        "panelURL": "",
        "values": values,
        "valueString": value_string(i),
    });
    Rendered {
        status,
        labels,
        annotations,
        generator_url,
        silence_url,
        values,
        json,
    }
}

fn url_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Grafana's `__subject` (`default.title`): `[FIRING:2] group values (other common values)`.
fn default_title(status: &str, firing: usize, group: &Labels, common: &Labels) -> String {
    let mut out = format!("[{}", status.to_uppercase());
    if status == "firing" {
        let _ = write!(out, ":{firing}");
    }
    out.push_str("] ");
    out.push_str(&group.values().cloned().collect::<Vec<_>>().join(" "));
    out.push(' ');
    if common.len() > group.len() {
        let rest: Vec<String> = common
            .iter()
            .filter(|(k, _)| !group.contains_key(*k))
            .map(|(_, v)| v.clone())
            .collect();
        let _ = write!(out, "({})", rest.join(" "));
    }
    out
}

/// Grafana's `__text_alert_list`.
fn alert_list(out: &mut String, alerts: &[&Rendered]) {
    for a in alerts {
        out.push_str("\nValue: ");
        if a.values.is_empty() {
            out.push_str("[no value]");
        } else {
            let parts: Vec<String> = a
                .values
                .iter()
                .map(|(k, v)| {
                    let v = v.as_f64().map_or_else(|| "<nil>".to_owned(), format_value);
                    format!("{k}={v}")
                })
                .collect();
            out.push_str(&parts.join(", "));
        }
        out.push_str("\nLabels:\n");
        for (k, v) in &a.labels {
            let _ = writeln!(out, " - {k} = {v}");
        }
        out.push_str("Annotations:\n");
        for (k, v) in &a.annotations {
            let _ = writeln!(out, " - {k} = {v}");
        }
        let _ = writeln!(out, "Source: {}", a.generator_url);
        let _ = writeln!(out, "Silence: {}", a.silence_url);
    }
}

/// Grafana's `default.message`.
fn default_message(rendered: &[Rendered]) -> String {
    let firing: Vec<&Rendered> = rendered.iter().filter(|r| r.status == "firing").collect();
    let resolved: Vec<&Rendered> = rendered.iter().filter(|r| r.status != "firing").collect();
    let mut out = String::new();
    if !firing.is_empty() {
        out.push_str("**Firing**\n");
        alert_list(&mut out, &firing);
        if !resolved.is_empty() {
            out.push_str("\n\n");
        }
    }
    if !resolved.is_empty() {
        out.push_str("**Resolved**\n");
        alert_list(&mut out, &resolved);
    }
    out
}

/// A notification rendered once: its alerts, common labels and default texts, from which
/// each integration's body is made.
pub(crate) struct Prepared {
    rendered: Vec<Rendered>,
    pub(crate) status: &'static str,
    pub(crate) firing: usize,
    common: Labels,
    common_annotations: Labels,
    group: Labels,
    default_title: String,
    default_message: String,
}

impl Prepared {
    pub(crate) fn new(notification: &Notification<'_>) -> Prepared {
        let rendered: Vec<Rendered> = notification
            .alerts
            .iter()
            .map(|a| render_alert(a, notification.external_url))
            .collect();
        let firing = rendered.iter().filter(|r| r.status == "firing").count();
        let status = if firing > 0 { "firing" } else { "resolved" };
        let common = common_labels(rendered.iter().map(|r| &r.labels));
        let common_annotations = common_labels(rendered.iter().map(|r| &r.annotations));
        let group = public(notification.group_labels);
        let default_title = default_title(status, firing, &group, &common);
        let default_message = default_message(&rendered);
        Prepared {
            rendered,
            status,
            firing,
            common,
            common_annotations,
            group,
            default_title,
            default_message,
        }
    }

    /// The setting `key` of `point` rendered as a template, or `default` rendered when the
    /// setting is absent or empty.
    pub(crate) fn text(
        &self,
        notification: &Notification<'_>,
        point: &ContactPoint,
        templates: &[(String, String)],
        key: &str,
        default: &str,
    ) -> String {
        let context = crate::notify::text::Context {
            status: self.status,
            receiver: notification.receiver,
            firing: self.firing,
            resolved: self.rendered.len() - self.firing,
            group_labels: &self.group,
            common_labels: &self.common,
            common_annotations: &self.common_annotations,
            external_url: notification.external_url,
            default_title: &self.default_title,
            default_message: &self.default_message,
            templates,
        };
        match point.text(key) {
            Some(t) if !t.is_empty() => crate::notify::text::render(t, &context),
            _ => crate::notify::text::render(default, &context),
        }
    }

    /// Each alert as its parts: status, labels, annotations, source and silence links.
    pub(crate) fn alerts(&self) -> impl Iterator<Item = AlertParts<'_>> {
        self.rendered.iter().map(|r| AlertParts {
            firing: r.status == "firing",
            labels: &r.labels,
            annotations: &r.annotations,
            generator_url: &r.generator_url,
            silence_url: &r.silence_url,
        })
    }
}

/// What an email shows of one alert.
pub(crate) struct AlertParts<'a> {
    pub(crate) firing: bool,
    pub(crate) labels: &'a Labels,
    pub(crate) annotations: &'a Labels,
    pub(crate) generator_url: &'a str,
    pub(crate) silence_url: &'a str,
}

/// Grafana's `default.title` and `default.message` as template calls.
pub(crate) const DEFAULT_TITLE: &str = "{{ template \"default.title\" . }}";
const DEFAULT_MESSAGE: &str = "{{ template \"default.message\" . }}";

/// The webhook body of `notification` for `point`, with its title and message templates
/// (`templates`: the org's named templates).
pub fn webhook_body(
    notification: &Notification<'_>,
    point: &ContactPoint,
    templates: &[(String, String)],
) -> Value {
    let prepared = Prepared::new(notification);
    let title = prepared.text(notification, point, templates, "title", DEFAULT_TITLE);
    let message = prepared.text(notification, point, templates, "message", DEFAULT_MESSAGE);
    let status = prepared.status;
    let max = point.max_alerts();
    let total = prepared.rendered.len();
    let shown = if max > 0 { total.min(max) } else { total };
    let alerts: Vec<Value> = prepared
        .rendered
        .iter()
        .take(shown)
        .map(|r| r.json.clone())
        .collect();
    json!({
        "receiver": notification.receiver,
        "status": status,
        "orgId": notification.org_id.0,
        "alerts": alerts,
        "groupLabels": prepared.group,
        "commonLabels": prepared.common,
        "commonAnnotations": prepared.common_annotations,
        "externalURL": notification.external_url,
        "version": "1",
        "groupKey": notification.group_key,
        "truncatedAlerts": total - shown,
        "title": title,
        "state": if status == "firing" { "alerting" } else { "ok" },
        "message": message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn grafana_payload_shape() {
        let a = AlertInstance {
            org_id: OrgId(1),
            rule_uid: "r1".into(),
            fingerprint: "0123456789abcdef".into(),
            labels: labels(&[
                ("alertname", "High"),
                ("grafana_folder", "F"),
                ("team", "db"),
                ("__alert_rule_uid__", "r1"),
            ]),
            annotations: labels(&[("summary", "s")]),
            started_at: 1_700_000_000_000,
            values: [("B".to_owned(), Some(44.2))].into(),
            ..AlertInstance::default()
        };
        let mut b = a.clone();
        b.labels.insert("team".into(), "web".into());
        let group = labels(&[("alertname", "High"), ("grafana_folder", "F")]);
        let n = Notification {
            receiver: "hook",
            org_id: OrgId(1),
            group_key: "{}:{alertname=\"High\"}",
            group_labels: &group,
            alerts: vec![
                NotifiedAlert {
                    instance: &a,
                    firing: true,
                },
                NotifiedAlert {
                    instance: &b,
                    firing: false,
                },
            ],
            external_url: "http://localhost:3000/",
        };
        let mut point = ContactPoint::default_point("u".into());
        point.settings.insert("maxAlerts".into(), json!(1));
        let body = webhook_body(&n, &point, &[]);
        assert_eq!(body["status"], "firing");
        assert_eq!(body["state"], "alerting");
        assert_eq!(body["title"], "[FIRING:1] High F ");
        assert_eq!(body["truncatedAlerts"], 1);
        assert_eq!(body["alerts"].as_array().unwrap().len(), 1);
        assert_eq!(body["alerts"][0]["endsAt"], ZERO_TIME);
        assert_eq!(body["alerts"][0]["values"]["B"], 44.2);
        assert!(
            body["alerts"][0]["labels"]
                .get("__alert_rule_uid__")
                .is_none()
        );
        assert_eq!(
            body["commonLabels"],
            json!({"alertname": "High", "grafana_folder": "F"})
        );
        let message = body["message"].as_str().unwrap();
        assert!(
            message.starts_with("**Firing**\n\nValue: B=44.2\nLabels:\n - alertname = High\n"),
            "{message}"
        );
        assert!(message.contains("\n\n**Resolved**\n"), "{message}");
        for key in [
            "receiver",
            "orgId",
            "groupLabels",
            "commonAnnotations",
            "externalURL",
            "version",
            "groupKey",
        ] {
            assert!(body.get(key).is_some(), "{key}");
        }
        let only = Notification {
            alerts: vec![NotifiedAlert {
                instance: &a,
                firing: true,
            }],
            ..n.clone()
        };
        let body = webhook_body(&only, &point, &[]);
        assert_eq!(body["title"], "[FIRING:1] High F (db)");
    }
}
