//! The notification policy tree as Grafana's provisioning API writes it, and its
//! compiled form: Alertmanager's routing (first matching child unless `continue`, children
//! inherit `group_by` and timings) and grouping (`group_by`, `...` for every label).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{Error, Labels, Result, format_duration, parse_duration};

/// Grafana's default `group_wait`.
pub const DEFAULT_GROUP_WAIT_MS: i64 = 30_000;
/// Grafana's default `group_interval`.
pub const DEFAULT_GROUP_INTERVAL_MS: i64 = 5 * 60_000;
/// Grafana's default `repeat_interval`.
pub const DEFAULT_REPEAT_INTERVAL_MS: i64 = 4 * 3_600_000;
/// The most routes a tree may hold, so a hostile tree cannot exhaust the dispatcher.
pub const MAX_ROUTES: usize = 1_000;
/// The deepest a tree may nest.
pub const MAX_DEPTH: usize = 32;
/// The largest compiled regular expression of a matcher.
const MAX_REGEX_BYTES: usize = 1 << 20;

/// One route of the tree (the root is a route without matchers), in Grafana's JSON shape.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Route {
    /// The contact point (receiver name); inherited when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receiver: Option<String>,
    /// The labels alerts are grouped by; `["..."]` groups by every label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_by: Option<Vec<String>>,
    /// `[["name", "=", "value"], …]`, operators `=`, `!=`, `=~`, `!~`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub object_matchers: Vec<Vec<String>>,
    /// Alertmanager's older matcher strings (`team="db"`), read into `object_matchers`.
    #[serde(default, skip_serializing)]
    pub matchers: Vec<String>,
    /// Keep matching siblings after this route matched.
    #[serde(rename = "continue", default, skip_serializing_if = "is_false")]
    pub continue_matching: bool,
    /// How long a new group waits before its first notification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_wait: Option<String>,
    /// How long a group waits between notifications of changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_interval: Option<String>,
    /// How long before an unchanged firing group is notified again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat_interval: Option<String>,
    /// Mute timings during which this route sends nothing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mute_time_intervals: Vec<String>,
    /// Mute timings outside which this route sends nothing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub active_time_intervals: Vec<String>,
    /// Nested routes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<Route>,
    /// Answered by the API, never stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<String>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// Grafana's default tree of an org: everything to `grafana-default-email`, grouped by
/// folder and alert name.
pub fn default_tree(receiver: &str) -> Route {
    Route {
        receiver: Some(receiver.to_owned()),
        group_by: Some(vec!["grafana_folder".to_owned(), "alertname".to_owned()]),
        ..Route::default()
    }
}

impl Route {
    /// Every receiver and mute timing the tree names, and checks of its shape (durations,
    /// matchers, size); `object_matchers` absorbs the legacy `matchers`.
    pub fn validate(&mut self) -> Result<()> {
        if self.receiver.as_deref().is_none_or(str::is_empty) {
            return Err(Error::BadRequest(
                "invalid object specification: root route must specify a default receiver"
                    .to_owned(),
            ));
        }
        if !self.object_matchers.is_empty() || !self.matchers.is_empty() {
            return Err(Error::BadRequest(
                "invalid object specification: root route must not have any matchers".to_owned(),
            ));
        }
        let mut count = 0;
        self.check(0, &mut count)
    }

    fn check(&mut self, depth: usize, count: &mut usize) -> Result<()> {
        *count += 1;
        if depth > MAX_DEPTH || *count > MAX_ROUTES {
            return Err(Error::BadRequest(format!(
                "invalid object specification: a policy tree holds at most {MAX_ROUTES} routes, {MAX_DEPTH} deep"
            )));
        }
        for text in std::mem::take(&mut self.matchers) {
            self.object_matchers.push(parse_matcher_text(&text)?);
        }
        for m in &self.object_matchers {
            ObjectMatcher::parse(m)?;
        }
        for (name, value) in [
            ("group_wait", &self.group_wait),
            ("group_interval", &self.group_interval),
            ("repeat_interval", &self.repeat_interval),
        ] {
            if let Some(text) = value
                && parse_duration(text).is_none()
            {
                return Err(Error::BadRequest(format!(
                    "invalid object specification: invalid {name} '{}'",
                    crate::types::truncate(text, 60)
                )));
            }
        }
        if let Some(group_by) = &self.group_by
            && group_by.iter().any(|l| l == "...")
            && group_by.len() > 1
        {
            return Err(Error::BadRequest(
                "invalid object specification: cannot have wildcard group_by (`...`) and other labels at the same time".to_owned(),
            ));
        }
        self.provenance = None;
        for child in &mut self.routes {
            child.check(depth + 1, count)?;
        }
        Ok(())
    }

    /// Every receiver name the tree uses.
    pub fn receivers(&self, out: &mut Vec<String>) {
        if let Some(r) = &self.receiver {
            out.push(r.clone());
        }
        for child in &self.routes {
            child.receivers(out);
        }
    }

    /// Every mute timing name the tree uses.
    pub fn time_intervals(&self, out: &mut Vec<String>) {
        out.extend(self.mute_time_intervals.iter().cloned());
        out.extend(self.active_time_intervals.iter().cloned());
        for child in &self.routes {
            child.time_intervals(out);
        }
    }

    /// Replaces receiver `from` by `to` everywhere (a contact point renamed).
    pub fn rename_receiver(&mut self, from: &str, to: &str) {
        if self.receiver.as_deref() == Some(from) {
            self.receiver = Some(to.to_owned());
        }
        for child in &mut self.routes {
            child.rename_receiver(from, to);
        }
    }
}

/// `team="db"`, `team=~"d.*"`, `team!=db` as a `[name, op, value]` triple.
fn parse_matcher_text(text: &str) -> Result<Vec<String>> {
    let bad = || {
        Error::BadRequest(format!(
            "invalid matcher '{}'",
            crate::types::truncate(text, 60)
        ))
    };
    let text = text.trim().trim_start_matches('{').trim_end_matches('}');
    let (at, op) = ["=~", "!~", "!=", "="]
        .iter()
        .filter_map(|op| text.find(op).map(|at| (at, *op)))
        .min_by_key(|(at, op)| (*at, usize::MAX - op.len()))
        .ok_or_else(bad)?;
    let name = text.get(..at).ok_or_else(bad)?.trim();
    let value = text.get(at + op.len()..).ok_or_else(bad)?.trim();
    let value = value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value);
    if name.is_empty() {
        return Err(bad());
    }
    Ok(vec![name.to_owned(), op.to_owned(), value.to_owned()])
}

/// One compiled matcher.
#[derive(Clone, Debug)]
pub struct ObjectMatcher {
    name: String,
    op: Op,
    text: String,
}

#[derive(Clone, Debug)]
enum Op {
    Equal(String),
    NotEqual(String),
    Regex(regex::Regex),
    NotRegex(regex::Regex),
}

impl ObjectMatcher {
    /// Compiles `[name, op, value]`; regular expressions are anchored, as Alertmanager's.
    pub fn parse(triple: &[String]) -> Result<ObjectMatcher> {
        let [name, op, value] = triple else {
            return Err(Error::BadRequest(
                "invalid object matcher: expected [name, operator, value]".to_owned(),
            ));
        };
        if name.is_empty() {
            return Err(Error::BadRequest(
                "invalid object matcher: the label name cannot be empty".to_owned(),
            ));
        }
        let compile = |value: &str| {
            regex::RegexBuilder::new(&format!("^(?:{value})$"))
                .size_limit(MAX_REGEX_BYTES)
                .build()
                .map_err(|err| Error::BadRequest(format!("invalid object matcher: {err}")))
        };
        let op = match op.as_str() {
            "=" => Op::Equal(value.clone()),
            "!=" => Op::NotEqual(value.clone()),
            "=~" => Op::Regex(compile(value)?),
            "!~" => Op::NotRegex(compile(value)?),
            other => {
                return Err(Error::BadRequest(format!(
                    "invalid object matcher: unknown match type '{}'",
                    crate::types::truncate(other, 20)
                )));
            }
        };
        Ok(ObjectMatcher {
            name: name.clone(),
            text: format!("{name}{}{value:?}", op_text(&op)),
            op,
        })
    }

    /// Whether the labels satisfy it (a missing label is the empty string).
    pub fn matches(&self, labels: &Labels) -> bool {
        let value = labels.get(&self.name).map_or("", String::as_str);
        match &self.op {
            Op::Equal(v) => value == v,
            Op::NotEqual(v) => value != v,
            Op::Regex(re) => re.is_match(value),
            Op::NotRegex(re) => !re.is_match(value),
        }
    }
}

fn op_text(op: &Op) -> &'static str {
    match op {
        Op::Equal(_) => "=",
        Op::NotEqual(_) => "!=",
        Op::Regex(_) => "=~",
        Op::NotRegex(_) => "!~",
    }
}

/// How a route groups.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GroupBy {
    /// By every label (`...`).
    All,
    /// By these labels.
    Labels(Vec<String>),
}

/// A route with everything inherited resolved.
#[derive(Clone, Debug)]
pub struct CompiledRoute {
    /// `{}/{matchers}/…`: the route's place in the tree, part of group keys.
    pub path: String,
    matchers: Vec<ObjectMatcher>,
    /// The receiver.
    pub receiver: String,
    /// The grouping.
    pub group_by: GroupBy,
    /// `group_wait`, ms.
    pub group_wait_ms: i64,
    /// `group_interval`, ms.
    pub group_interval_ms: i64,
    /// `repeat_interval`, ms.
    pub repeat_interval_ms: i64,
    /// Mute timings that silence it.
    pub mute_time_intervals: Vec<String>,
    /// Mute timings outside which it is silent.
    pub active_time_intervals: Vec<String>,
    continue_matching: bool,
    children: Vec<CompiledRoute>,
}

impl CompiledRoute {
    /// Compiles a validated tree.
    pub fn compile(root: &Route) -> Result<CompiledRoute> {
        let base = CompiledRoute {
            path: "{}".to_owned(),
            matchers: Vec::new(),
            receiver: String::new(),
            group_by: GroupBy::Labels(Vec::new()),
            group_wait_ms: DEFAULT_GROUP_WAIT_MS,
            group_interval_ms: DEFAULT_GROUP_INTERVAL_MS,
            repeat_interval_ms: DEFAULT_REPEAT_INTERVAL_MS,
            mute_time_intervals: Vec::new(),
            active_time_intervals: Vec::new(),
            continue_matching: false,
            children: Vec::new(),
        };
        compile_under(root, &base, true)
    }

    /// The routes an alert with `labels` goes to: Alertmanager's depth-first match, the
    /// first matching child unless it says `continue`, the route itself when no child
    /// matches.
    pub fn matching<'a>(&'a self, labels: &Labels, out: &mut Vec<&'a CompiledRoute>) {
        let before = out.len();
        for child in &self.children {
            if child.matchers.iter().all(|m| m.matches(labels)) {
                child.matching(labels, out);
                if !child.continue_matching {
                    break;
                }
            }
        }
        if out.len() == before {
            out.push(self);
        }
    }

    /// The group labels of `labels` under this route.
    pub fn group_labels(&self, labels: &Labels) -> Labels {
        match &self.group_by {
            GroupBy::All => labels.clone(),
            GroupBy::Labels(names) => names
                .iter()
                .filter_map(|n| labels.get(n).map(|v| (n.clone(), v.clone())))
                .collect(),
        }
    }
}

fn compile_under(route: &Route, parent: &CompiledRoute, root: bool) -> Result<CompiledRoute> {
    let matchers = route
        .object_matchers
        .iter()
        .map(|m| ObjectMatcher::parse(m))
        .collect::<Result<Vec<_>>>()?;
    let duration = |text: &Option<String>, inherited: i64| {
        text.as_deref()
            .and_then(parse_duration)
            .unwrap_or(inherited)
    };
    let path = if root {
        parent.path.clone()
    } else {
        let texts: Vec<&str> = matchers.iter().map(|m| m.text.as_str()).collect();
        format!("{}/{{{}}}", parent.path, texts.join(","))
    };
    let mut node = CompiledRoute {
        path,
        matchers,
        receiver: route
            .receiver
            .clone()
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| parent.receiver.clone()),
        group_by: match &route.group_by {
            Some(labels) if labels.iter().any(|l| l == "...") => GroupBy::All,
            Some(labels) => GroupBy::Labels(labels.clone()),
            None => parent.group_by.clone(),
        },
        group_wait_ms: duration(&route.group_wait, parent.group_wait_ms),
        group_interval_ms: duration(&route.group_interval, parent.group_interval_ms).max(1),
        repeat_interval_ms: duration(&route.repeat_interval, parent.repeat_interval_ms).max(1),
        // Alertmanager inherits neither list: each route names its own.
        mute_time_intervals: route.mute_time_intervals.clone(),
        active_time_intervals: route.active_time_intervals.clone(),
        continue_matching: route.continue_matching,
        children: Vec::new(),
    };
    let mut children = Vec::with_capacity(route.routes.len());
    for (i, child) in route.routes.iter().enumerate() {
        let mut compiled = compile_under(child, &node, false)?;
        // Siblings with equal matchers still form distinct groups.
        compiled.path = format!("{}#{i}", compiled.path);
        children.push(compiled);
    }
    node.children = children;
    Ok(node)
}

/// The labels every alert shares (same name and value).
pub fn common_labels<'a>(mut sets: impl Iterator<Item = &'a Labels>) -> Labels {
    let Some(first) = sets.next() else {
        return Labels::new();
    };
    let mut common: BTreeMap<String, String> = first.clone();
    for set in sets {
        common.retain(|k, v| set.get(k) == Some(v));
    }
    common
}

/// A duration as the API answers it.
pub fn duration_text(ms: i64) -> String {
    format_duration(ms)
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

    fn tree(json: serde_json::Value) -> CompiledRoute {
        let mut route: Route = serde_json::from_value(json).unwrap();
        route.validate().unwrap();
        CompiledRoute::compile(&route).unwrap()
    }

    #[test]
    fn routes_match_as_alertmanager() {
        let root = tree(serde_json::json!({
            "receiver": "default", "group_by": ["alertname"], "group_wait": "1s",
            "routes": [
                {"receiver": "db", "object_matchers": [["team", "=", "db"]], "continue": true,
                 "routes": [{"receiver": "db-critical", "object_matchers": [["severity", "=~", "crit.*"]], "repeat_interval": "1m"}]},
                {"receiver": "not-web", "object_matchers": [["team", "!=", "web"]]},
                {"receiver": "never", "object_matchers": [["team", "!~", ".*"]]}
            ]
        }));
        let names = |l: &Labels| {
            let mut out = Vec::new();
            root.matching(l, &mut out);
            out.iter().map(|r| r.receiver.clone()).collect::<Vec<_>>()
        };
        assert_eq!(names(&labels(&[("team", "db")])), ["db", "not-web"]);
        assert_eq!(
            names(&labels(&[("team", "db"), ("severity", "critical")])),
            ["db-critical", "not-web"]
        );
        assert_eq!(names(&labels(&[("team", "web")])), ["default"]);
        let mut out = Vec::new();
        root.matching(&labels(&[("team", "db"), ("severity", "crit")]), &mut out);
        let critical = out[0];
        assert_eq!(critical.group_wait_ms, 1_000, "inherited");
        assert_eq!(critical.repeat_interval_ms, 60_000);
        assert_eq!(critical.group_interval_ms, DEFAULT_GROUP_INTERVAL_MS);
        assert_eq!(
            critical.group_by,
            GroupBy::Labels(vec!["alertname".to_owned()])
        );
        assert_ne!(out[0].path, out[1].path);
    }

    #[test]
    fn grouping_and_validation() {
        let root = tree(serde_json::json!({"receiver": "r", "group_by": ["..."]}));
        let l = labels(&[("a", "1"), ("b", "2")]);
        assert_eq!(root.group_labels(&l), l);
        let root =
            tree(serde_json::json!({"receiver": "r", "routes": [{"matchers": ["a=~\"1|2\""]}]}));
        let mut out = Vec::new();
        root.matching(&l, &mut out);
        assert_eq!(out[0].receiver, "r");
        assert!(out[0].path.contains("a=~"));
        for bad in [
            serde_json::json!({}),
            serde_json::json!({"receiver": "r", "group_wait": "soon"}),
            serde_json::json!({"receiver": "r", "routes": [{"object_matchers": [["a", "~", "b"]]}]}),
            serde_json::json!({"receiver": "r", "routes": [{"object_matchers": [["a", "=~", "("]]}]}),
            serde_json::json!({"receiver": "r", "group_by": ["...", "a"]}),
        ] {
            let mut route: Route = serde_json::from_value(bad.clone()).unwrap();
            assert!(route.validate().is_err(), "{bad}");
        }
        assert_eq!(
            common_labels(
                [
                    labels(&[("a", "1"), ("b", "2")]),
                    labels(&[("a", "1"), ("b", "3")])
                ]
                .iter()
            ),
            labels(&[("a", "1")])
        );
    }
}
