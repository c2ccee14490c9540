//! Titles and messages of contact points: a documented subset of Grafana's notification
//! templates (Go templates), enough for the common ones.
//!
//! Understood actions: `{{ template "name" . }}` (Grafana's `default.title` and
//! `default.message`, or a `{{ define "name" }}…{{ end }}` of the org's templates),
//! `{{ .Status }}`, `{{ .Receiver }}`, `{{ .ExternalURL }}`, `{{ .GroupLabels.x }}`,
//! `{{ .CommonLabels.x }}`, `{{ .CommonAnnotations.x }}`, `{{ len .Alerts }}`,
//! `{{ len .Alerts.Firing }}`, `{{ len .Alerts.Resolved }}`, `{{ .Status | toUpper }}`,
//! and `{{-` / `-}}` trimming. Any other action renders as nothing.

use crate::Labels;

/// What a template can read.
pub(crate) struct Context<'a> {
    pub(crate) status: &'a str,
    pub(crate) receiver: &'a str,
    pub(crate) firing: usize,
    pub(crate) resolved: usize,
    pub(crate) group_labels: &'a Labels,
    pub(crate) common_labels: &'a Labels,
    pub(crate) common_annotations: &'a Labels,
    pub(crate) external_url: &'a str,
    pub(crate) default_title: &'a str,
    pub(crate) default_message: &'a str,
    /// The org's templates: (name, text holding `define` blocks).
    pub(crate) templates: &'a [(String, String)],
}

/// How deep `template` calls may nest.
const MAX_DEPTH: usize = 8;

/// Renders `text`.
pub(crate) fn render(text: &str, context: &Context<'_>) -> String {
    let mut out = String::new();
    render_into(text, context, 0, &mut out);
    out
}

fn render_into(text: &str, context: &Context<'_>, depth: usize, out: &mut String) {
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let (before, after) = rest.split_at(start);
        let Some(end) = after.find("}}") else {
            out.push_str(rest);
            return;
        };
        let inner = after.get(2..end).unwrap_or("");
        let trim_left = inner.starts_with('-');
        let trim_right = inner.ends_with('-');
        if trim_left {
            out.push_str(before.trim_end());
        } else {
            out.push_str(before);
        }
        let action = inner.trim_start_matches('-').trim_end_matches('-').trim();
        rest = after.get(end + 2..).unwrap_or("");
        if trim_right {
            rest = rest.trim_start();
        }
        if action.starts_with("define ") {
            // A definition inside a title renders as nothing, as Go's does.
            if let Some(close) = rest.find("{{ end }}").or_else(|| rest.find("{{end}}")) {
                rest = rest
                    .get(close..)
                    .and_then(|r| r.find("}}").map(|e| &r[e + 2..]))
                    .unwrap_or("");
            }
            continue;
        }
        action_into(action, context, depth, out);
    }
    out.push_str(rest);
}

fn action_into(action: &str, context: &Context<'_>, depth: usize, out: &mut String) {
    let (action, upper) = match action.split_once('|') {
        Some((a, f)) if f.trim() == "toUpper" => (a.trim(), true),
        _ => (action, false),
    };
    let value: Option<String> = if let Some(name) = action.strip_prefix("template ") {
        let name = name.trim().trim_end_matches('.').trim().trim_matches('"');
        match name {
            "default.title" => Some(context.default_title.to_owned()),
            "default.message" => Some(context.default_message.to_owned()),
            _ if depth < MAX_DEPTH => definition(name, context.templates).map(|body| {
                let mut inner = String::new();
                render_into(body, context, depth + 1, &mut inner);
                inner
            }),
            _ => None,
        }
    } else {
        match action {
            ".Status" => Some(context.status.to_owned()),
            ".Receiver" => Some(context.receiver.to_owned()),
            ".ExternalURL" => Some(context.external_url.to_owned()),
            "len .Alerts" => Some((context.firing + context.resolved).to_string()),
            "len .Alerts.Firing" | ".Alerts.Firing | len" => Some(context.firing.to_string()),
            "len .Alerts.Resolved" => Some(context.resolved.to_string()),
            _ => [
                (".GroupLabels.", context.group_labels),
                (".CommonLabels.", context.common_labels),
                (".CommonAnnotations.", context.common_annotations),
            ]
            .iter()
            .find_map(|(prefix, labels)| {
                action
                    .strip_prefix(prefix)
                    .map(|name| labels.get(name).cloned().unwrap_or_default())
            }),
        }
    };
    if let Some(value) = value {
        out.push_str(&if upper { value.to_uppercase() } else { value });
    }
}

/// The body of `{{ define "name" }}…{{ end }}` in the org's templates.
fn definition<'a>(name: &str, templates: &'a [(String, String)]) -> Option<&'a str> {
    let quoted = format!("\"{name}\"");
    for (_, text) in templates {
        let mut rest = text.as_str();
        while let Some(at) = rest.find("define") {
            let after = rest.get(at + 6..)?;
            let close = after.find("}}")?;
            let head = after.get(..close)?.trim().trim_end_matches('-').trim();
            let body = after.get(close + 2..)?;
            if head == quoted {
                let end = body
                    .find("{{ end }}")
                    .or_else(|| body.find("{{end}}"))
                    .or_else(|| body.find("{{- end }}"))?;
                return body.get(..end);
            }
            rest = body;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_subset_renders() {
        let group: Labels = [("alertname".to_owned(), "High".to_owned())].into();
        let empty = Labels::new();
        let templates = vec![(
            "mine".to_owned(),
            "{{ define \"my.title\" }}{{ .Status | toUpper }} {{ .GroupLabels.alertname }} x{{ len .Alerts.Firing }}{{ end }}".to_owned(),
        )];
        let context = Context {
            status: "firing",
            receiver: "hook",
            firing: 2,
            resolved: 1,
            group_labels: &group,
            common_labels: &empty,
            common_annotations: &empty,
            external_url: "http://x/",
            default_title: "[FIRING:2] High ",
            default_message: "msg",
            templates: &templates,
        };
        assert_eq!(
            render("{{ template \"my.title\" . }}!", &context),
            "FIRING High x2!"
        );
        assert_eq!(
            render("{{ template \"default.title\" . }}", &context),
            "[FIRING:2] High "
        );
        assert_eq!(
            render("a  {{- .Receiver -}}  b {{ .Nope }}", &context),
            "ahookb "
        );
        assert_eq!(
            render("{{ template \"missing\" . }}unterminated {{", &context),
            "unterminated {{"
        );
    }
}
