//! The notifier's sections of Grafana's alerting provisioning files
//! (`provisioning/alerting/*.yaml`): `contactPoints`, `deleteContactPoints`, `policies`,
//! `resetPolicies`, `muteTimes`, `deleteMuteTimes`, `templates` and `deleteTemplates`.
//!
//! Every instance reads the same files and applies them at start and then periodically.
//! Each item is compared with what is stored and written only when it differs, through the
//! same compare-and-swap writes as the provisioning API, with provenance `file` (so the API
//! refuses to change it). Two instances applying the same change race on a unique key or a
//! version: the loser reads again and finds nothing left to do, so replaying the files on
//! any number of instances changes nothing.
//!
//! An item that is not valid (a webhook without a URL, a policy naming an unknown receiver)
//! is reported with its file and place and skipped; the file's other items are applied.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::{Map, Value, json};

use crate::notify::contact::{ContactPoint, DEFAULT_RECEIVER};
use crate::notify::policy::{Route, default_tree};
use crate::notify::store::{DocumentKind, NamedDocument, NotificationStore};
use crate::notify::timing::MuteTiming;
use crate::provisioning::{expand, org as org_of, text as text_of};
use crate::{Error, OrgId, Provenance, Result, generate_uid, validate_uid};

/// The longest name of a mute timing or a template.
const MAX_NAME_LEN: usize = 190;
/// The largest template.
const MAX_TEMPLATE_LEN: usize = 1 << 20;

/// One thing a file asks for.
#[derive(Clone, Debug, PartialEq)]
pub enum NotifierItem {
    /// A contact point integration (`contactPoints[].receivers[]`).
    ContactPoint(OrgId, ContactPoint),
    /// `deleteContactPoints[]`: an integration by uid.
    DeleteContactPoint(OrgId, String),
    /// `policies[]`: the org's whole tree.
    Policy(OrgId, Route),
    /// `resetPolicies[]`: the org's default tree.
    ResetPolicy(OrgId),
    /// `muteTimes[]`: a name and its `time_intervals`.
    MuteTiming(OrgId, String, Value),
    /// `deleteMuteTimes[]`.
    DeleteMuteTiming(OrgId, String),
    /// `templates[]`: a name and its text.
    Template(OrgId, String, String),
    /// `deleteTemplates[]`.
    DeleteTemplate(OrgId, String),
}

impl NotifierItem {
    /// The order Grafana applies them in: what others name first, deletions last.
    fn rank(&self) -> u8 {
        match self {
            NotifierItem::Template(..) => 0,
            NotifierItem::MuteTiming(..) => 1,
            NotifierItem::ContactPoint(..) => 2,
            NotifierItem::Policy(..) => 3,
            NotifierItem::ResetPolicy(..) => 4,
            NotifierItem::DeleteContactPoint(..) => 5,
            NotifierItem::DeleteMuteTiming(..) => 6,
            NotifierItem::DeleteTemplate(..) => 7,
        }
    }

    fn org(&self) -> OrgId {
        match self {
            NotifierItem::ContactPoint(org, _)
            | NotifierItem::DeleteContactPoint(org, _)
            | NotifierItem::Policy(org, _)
            | NotifierItem::ResetPolicy(org)
            | NotifierItem::MuteTiming(org, ..)
            | NotifierItem::DeleteMuteTiming(org, _)
            | NotifierItem::Template(org, ..)
            | NotifierItem::DeleteTemplate(org, _) => *org,
        }
    }
}

/// An item with where it was read.
#[derive(Clone, Debug, PartialEq)]
pub struct SourcedItem {
    /// `file: section[index]`.
    pub source: String,
    /// The item.
    pub item: NotifierItem,
}

/// The notifier's part of every file.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NotifierProvisioning {
    /// The valid items, in file order.
    pub items: Vec<SourcedItem>,
    /// The items refused when the files were read: where, and why.
    pub rejected: Vec<String>,
}

impl NotifierProvisioning {
    /// Whether there is nothing to apply or report.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty() && self.rejected.is_empty()
    }

    /// Adds another file's.
    pub fn extend(&mut self, other: NotifierProvisioning) {
        self.items.extend(other.items);
        self.rejected.extend(other.rejected);
    }

    /// Reads the notifier sections of one parsed file named `file`; `lookup` resolves
    /// `$VAR` and `${VAR}` in every text (a template's text only in the braced form, since
    /// templates use `$` themselves). A section of the wrong shape refuses the file; a bad
    /// item is recorded in `rejected` and the others are kept.
    pub fn from_document(
        file: &str,
        root: &Map<String, Value>,
        lookup: &impl Fn(&str) -> Option<String>,
    ) -> Result<NotifierProvisioning> {
        let mut out = NotifierProvisioning::default();
        for section in [
            "templates",
            "muteTimes",
            "contactPoints",
            "policies",
            "resetPolicies",
            "deleteContactPoints",
            "deleteMuteTimes",
            "deleteTemplates",
        ] {
            let items = match root.get(section) {
                None | Some(Value::Null) => continue,
                Some(Value::Array(items)) => items,
                Some(_) => {
                    return Err(Error::InvalidProvisioningConfig(format!(
                        "{file}: {section} must be a list"
                    )));
                }
            };
            for (index, raw) in items.iter().enumerate() {
                let source = format!("{file}: {section}[{index}]");
                match parse_item(section, raw, lookup) {
                    Ok(items) => out.items.extend(items.into_iter().map(|item| SourcedItem {
                        source: source.clone(),
                        item,
                    })),
                    Err(err) => out.rejected.push(format!("{source}: {}", message(&err))),
                }
            }
        }
        Ok(out)
    }
}

fn message(err: &Error) -> String {
    match err {
        Error::BadRequest(m) | Error::InvalidProvisioningConfig(m) => m.clone(),
        other => other.to_string(),
    }
}

fn invalid(message: impl Into<String>) -> Error {
    Error::InvalidProvisioningConfig(message.into())
}

/// `value` with `$VAR` expanded in every string.
fn expand_all(value: &Value, lookup: &impl Fn(&str) -> Option<String>) -> Value {
    match value {
        Value::String(s) => Value::String(expand(s, lookup, false)),
        Value::Array(items) => Value::Array(items.iter().map(|v| expand_all(v, lookup)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), expand_all(v, lookup)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn checked_name(item: &Value, lookup: &impl Fn(&str) -> Option<String>) -> Result<String> {
    let name = text_of(item, "name", lookup).trim().to_owned();
    if name.is_empty() {
        return Err(invalid("a name is required"));
    }
    if name.chars().count() > MAX_NAME_LEN {
        return Err(invalid(format!(
            "the name is longer than {MAX_NAME_LEN} characters"
        )));
    }
    Ok(name)
}

fn parse_item(
    section: &str,
    raw: &Value,
    lookup: &impl Fn(&str) -> Option<String>,
) -> Result<Vec<NotifierItem>> {
    if section == "resetPolicies" {
        // A list of org ids.
        let org = match raw {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => expand(s, lookup, false).trim().parse().ok(),
            _ => None,
        };
        return match org {
            Some(org) if org >= 1 => Ok(vec![NotifierItem::ResetPolicy(OrgId(org))]),
            _ => Err(invalid("resetPolicies lists org ids")),
        };
    }
    if !raw.is_object() {
        return Err(invalid("expected a mapping"));
    }
    let org = org_of(raw, lookup);
    match section {
        "templates" => {
            let name = checked_name(raw, lookup)?;
            let template = match raw.get("template") {
                Some(Value::String(t)) => expand(t, lookup, true),
                _ => return Err(invalid(format!("template '{name}' has no template text"))),
            };
            tandem_storage::input::check_bounded_text("template", &template, MAX_TEMPLATE_LEN)?;
            Ok(vec![NotifierItem::Template(org, name, template)])
        }
        "muteTimes" => {
            let name = checked_name(raw, lookup)?;
            let intervals = expand_all(raw.get("time_intervals").unwrap_or(&Value::Null), lookup);
            let intervals = if intervals.is_null() {
                json!([])
            } else {
                intervals
            };
            MuteTiming::parse(&intervals)?;
            Ok(vec![NotifierItem::MuteTiming(org, name, intervals)])
        }
        "contactPoints" => {
            let name = checked_name(raw, lookup)?;
            let receivers = match raw.get("receivers") {
                Some(Value::Array(list)) if !list.is_empty() => list,
                _ => {
                    return Err(invalid(format!(
                        "contact point '{name}' lists no receivers"
                    )));
                }
            };
            let mut out = Vec::new();
            for (index, receiver) in receivers.iter().enumerate() {
                out.push(NotifierItem::ContactPoint(
                    org,
                    integration(org, &name, index, receiver, lookup)?,
                ));
            }
            Ok(out)
        }
        "policies" => {
            let mut value = expand_all(raw, lookup);
            if let Value::Object(map) = &mut value {
                map.remove("orgId");
            }
            let mut tree: Route = serde_json::from_value(value)
                .map_err(|err| invalid(format!("not a notification policy tree: {err}")))?;
            tree.validate()?;
            Ok(vec![NotifierItem::Policy(org, tree)])
        }
        "deleteContactPoints" => {
            let uid = text_of(raw, "uid", lookup);
            if uid.is_empty() {
                return Err(invalid("a deleteContactPoints entry needs a uid"));
            }
            Ok(vec![NotifierItem::DeleteContactPoint(org, uid)])
        }
        "deleteMuteTimes" => Ok(vec![NotifierItem::DeleteMuteTiming(
            org,
            checked_name(raw, lookup)?,
        )]),
        "deleteTemplates" => Ok(vec![NotifierItem::DeleteTemplate(
            org,
            checked_name(raw, lookup)?,
        )]),
        other => Err(invalid(format!("unknown section {other}"))),
    }
}

/// One receiver of a contact point; without a uid it gets one derived from the org, the
/// name and the place, the same on every instance.
fn integration(
    org: OrgId,
    name: &str,
    index: usize,
    receiver: &Value,
    lookup: &impl Fn(&str) -> Option<String>,
) -> Result<ContactPoint> {
    let uid = text_of(receiver, "uid", lookup);
    let uid = if uid.is_empty() {
        derived_uid(org, name, index)
    } else {
        validate_uid(&uid).map_err(|_| invalid(format!("'{uid}' is not a valid uid")))?;
        uid
    };
    let kind = text_of(receiver, "type", lookup);
    let settings = match expand_all(receiver.get("settings").unwrap_or(&Value::Null), lookup) {
        Value::Object(map) => map,
        Value::Null => Map::new(),
        _ => return Err(invalid("settings must be a mapping")),
    };
    let disable = receiver
        .get("disableResolveMessage")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    ContactPoint::from_request(
        uid,
        name.to_owned(),
        kind,
        settings,
        disable,
        Provenance::File,
        None,
    )
}

fn derived_uid(org: OrgId, name: &str, index: usize) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("{}\n{name}\n{index}", org.0));
    let hex: String = digest.iter().take(7).map(|b| format!("{b:02x}")).collect();
    format!("p{hex}")
}

/// What one run did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NotifierProvisioningReport {
    /// Items written because nothing was stored.
    pub created: u64,
    /// Items written because the stored one differed.
    pub updated: u64,
    /// Items deleted.
    pub deleted: u64,
    /// Items refused (logged with their file).
    pub failed: u64,
}

/// Applies a [`NotifierProvisioning`] through a [`NotificationStore`].
#[derive(Clone)]
pub struct NotifierProvisioner {
    store: Arc<dyn NotificationStore>,
    config: NotifierProvisioning,
}

/// What applying one item did.
enum Outcome {
    Unchanged,
    Created,
    Updated,
    Deleted,
}

impl std::fmt::Debug for NotifierProvisioner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotifierProvisioner")
            .field("items", &self.config.items.len())
            .finish_non_exhaustive()
    }
}

impl NotifierProvisioner {
    /// A provisioner of `config`.
    pub fn new(store: Arc<dyn NotificationStore>, config: NotifierProvisioning) -> Self {
        NotifierProvisioner { store, config }
    }

    /// Whether there is anything to apply or report.
    pub fn is_empty(&self) -> bool {
        self.config.is_empty()
    }

    /// Applies every item once, in Grafana's order; an item that fails is logged with its
    /// file and counted, the others go on.
    pub async fn run_once(&self) -> NotifierProvisioningReport {
        let mut report = NotifierProvisioningReport::default();
        for rejected in &self.config.rejected {
            tracing::warn!(item = %rejected, "a notification provisioning item is not valid; skipped");
            report.failed += 1;
        }
        let orgs: BTreeSet<OrgId> = self.config.items.iter().map(|i| i.item.org()).collect();
        for org in orgs {
            if let Err(err) = self.store.ensure_defaults(org).await {
                tracing::warn!(org = org.0, error = %err, "writing an org's notification defaults failed");
            }
        }
        let mut items: Vec<&SourcedItem> = self.config.items.iter().collect();
        items.sort_by_key(|i| i.item.rank());
        for item in items {
            // A race with another instance applying the same item: read again, and find
            // nothing left to do.
            let mut outcome = self.apply(&item.item).await;
            for _ in 0..2 {
                match &outcome {
                    Err(err)
                        if matches!(
                            err,
                            Error::VersionMismatch | Error::NotificationConflict(_)
                        ) || err.is_unique_violation() =>
                    {
                        outcome = self.apply(&item.item).await;
                    }
                    _ => break,
                }
            }
            match outcome {
                Ok(Outcome::Unchanged) => {}
                Ok(Outcome::Created) => report.created += 1,
                Ok(Outcome::Updated) => report.updated += 1,
                Ok(Outcome::Deleted) => report.deleted += 1,
                Err(err) => {
                    tracing::warn!(item = %item.source, error = %message(&err), "a notification provisioning item failed");
                    report.failed += 1;
                }
            }
        }
        report
    }

    async fn apply(&self, item: &NotifierItem) -> Result<Outcome> {
        let store = &*self.store;
        match item {
            NotifierItem::Template(org, name, template) => {
                let body = json!({"template": template});
                self.put_document(*org, DocumentKind::Template, name, body)
                    .await
            }
            NotifierItem::MuteTiming(org, name, intervals) => {
                let body = json!({"time_intervals": intervals});
                self.put_document(*org, DocumentKind::MuteTiming, name, body)
                    .await
            }
            NotifierItem::ContactPoint(org, point) => {
                let Some(stored) = store.contact_point(*org, &point.uid).await? else {
                    store.create_contact_point(*org, point).await?;
                    return Ok(Outcome::Created);
                };
                if same_point(&stored, point) {
                    return Ok(Outcome::Unchanged);
                }
                let mut next = point.clone();
                next.version = stored.version + 1;
                store
                    .update_contact_point(*org, &next, Some(&stored.name))
                    .await?;
                Ok(Outcome::Updated)
            }
            NotifierItem::Policy(org, tree) => {
                let (stored, provenance) = store.policy(*org).await?;
                if stored == *tree && provenance == Provenance::File {
                    return Ok(Outcome::Unchanged);
                }
                check_references(store, *org, tree).await?;
                store.set_policy(*org, tree, Provenance::File).await?;
                Ok(Outcome::Updated)
            }
            NotifierItem::ResetPolicy(org) => {
                let (stored, provenance) = store.policy(*org).await?;
                let points = store.contact_points(*org).await?;
                let has_default = points.iter().any(|p| p.name == DEFAULT_RECEIVER);
                if has_default
                    && stored == default_tree(DEFAULT_RECEIVER)
                    && provenance == Provenance::None
                {
                    return Ok(Outcome::Unchanged);
                }
                reset_policy(store, *org).await?;
                Ok(Outcome::Updated)
            }
            NotifierItem::DeleteContactPoint(org, uid) => {
                let points = store.contact_points(*org).await?;
                let Some(point) = points.iter().find(|p| &p.uid == uid) else {
                    return Ok(Outcome::Unchanged);
                };
                check_point_unused(store, *org, point, &points).await?;
                Ok(if store.delete_contact_point(*org, uid).await? {
                    Outcome::Deleted
                } else {
                    Outcome::Unchanged
                })
            }
            NotifierItem::DeleteMuteTiming(org, name) => {
                check_timing_unused(store, *org, name).await?;
                self.delete_document(*org, DocumentKind::MuteTiming, name)
                    .await
            }
            NotifierItem::DeleteTemplate(org, name) => {
                self.delete_document(*org, DocumentKind::Template, name)
                    .await
            }
        }
    }

    async fn put_document(
        &self,
        org: OrgId,
        kind: DocumentKind,
        name: &str,
        body: Value,
    ) -> Result<Outcome> {
        let stored = self.store.document(org, kind, name).await?;
        if let Some(stored) = &stored
            && stored.body == body
            && stored.provenance == Provenance::File
        {
            return Ok(Outcome::Unchanged);
        }
        let doc = NamedDocument {
            name: name.to_owned(),
            body,
            provenance: Provenance::File,
            version: 0,
        };
        self.store
            .put_document(org, kind, &doc, stored.is_none())
            .await?;
        Ok(if stored.is_none() {
            Outcome::Created
        } else {
            Outcome::Updated
        })
    }

    async fn delete_document(&self, org: OrgId, kind: DocumentKind, name: &str) -> Result<Outcome> {
        Ok(if self.store.delete_document(org, kind, name).await? {
            Outcome::Deleted
        } else {
            Outcome::Unchanged
        })
    }
}

/// Whether two integrations say the same (versions aside).
fn same_point(a: &ContactPoint, b: &ContactPoint) -> bool {
    a.name == b.name
        && a.kind == b.kind
        && a.settings == b.settings
        && a.secure == b.secure
        && a.disable_resolve_message == b.disable_resolve_message
        && a.provenance == b.provenance
}

/// Checks that every receiver and mute timing `tree` names exists in `org` (an org not
/// configured yet has only its default receiver).
pub async fn check_references(
    store: &dyn NotificationStore,
    org: OrgId,
    tree: &Route,
) -> Result<()> {
    let mut names: Vec<String> = store
        .contact_points(org)
        .await?
        .into_iter()
        .map(|p| p.name)
        .collect();
    if names.is_empty() {
        // The org's defaults are written with the tree, after these checks.
        names.push(DEFAULT_RECEIVER.to_owned());
    }
    let mut receivers = Vec::new();
    tree.receivers(&mut receivers);
    if let Some(missing) = receivers.iter().find(|r| !names.contains(r)) {
        return Err(Error::BadRequest(format!(
            "invalid object specification: receiver '{}' does not exist",
            crate::types::truncate(missing, 190)
        )));
    }
    let timings = store.documents(org, DocumentKind::MuteTiming).await?;
    let mut used = Vec::new();
    tree.time_intervals(&mut used);
    if let Some(missing) = used.iter().find(|n| !timings.iter().any(|t| &t.name == *n)) {
        return Err(Error::BadRequest(format!(
            "invalid object specification: mute time interval '{}' does not exist",
            crate::types::truncate(missing, 190)
        )));
    }
    Ok(())
}

/// Refuses to remove `point` while the tree routes to its receiver and no other
/// integration of that name is left.
pub async fn check_point_unused(
    store: &dyn NotificationStore,
    org: OrgId,
    point: &ContactPoint,
    points: &[ContactPoint],
) -> Result<()> {
    let others = points
        .iter()
        .filter(|p| p.name == point.name && p.uid != point.uid)
        .count();
    let (tree, _) = store.policy(org).await?;
    let mut used = Vec::new();
    tree.receivers(&mut used);
    if others == 0 && used.contains(&point.name) {
        return Err(Error::NotificationConflict(
            "contact point is referenced by a notification policy".to_owned(),
        ));
    }
    Ok(())
}

/// Refuses to remove the mute timing `name` while a policy of the tree names it.
pub async fn check_timing_unused(
    store: &dyn NotificationStore,
    org: OrgId,
    name: &str,
) -> Result<()> {
    let (tree, _) = store.policy(org).await?;
    let mut used = Vec::new();
    tree.time_intervals(&mut used);
    if used.iter().any(|u| u == name) {
        return Err(Error::NotificationConflict(
            "mute timing is used by a notification policy".to_owned(),
        ));
    }
    Ok(())
}

/// Puts back the org's default tree, creating the default contact point when it is gone.
pub async fn reset_policy(store: &dyn NotificationStore, org: OrgId) -> Result<()> {
    store.ensure_defaults(org).await?;
    let points = store.contact_points(org).await?;
    if !points.iter().any(|p| p.name == DEFAULT_RECEIVER) {
        store
            .create_contact_point(org, &ContactPoint::default_point(generate_uid()))
            .await?;
    }
    store
        .set_policy(org, &default_tree(DEFAULT_RECEIVER), Provenance::None)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(source: &str) -> NotifierProvisioning {
        let root: Value = serde_saphyr::from_str(source).unwrap();
        let lookup = |name: &str| (name == "HOOK_TOKEN").then(|| "s3cret".to_owned());
        NotifierProvisioning::from_document("a.yaml", root.as_object().unwrap(), &lookup).unwrap()
    }

    const FILE: &str = r#"
apiVersion: 1
contactPoints:
  - orgId: 1
    name: hook
    receivers:
      - uid: hook_1
        type: webhook
        settings:
          url: http://127.0.0.1:9/hook
          authorization_credentials: $HOOK_TOKEN
        disableResolveMessage: true
      - type: email
        settings:
          addresses: a@example.com;b@example.com
  - name: broken
    receivers:
      - type: webhook
        settings: {}
policies:
  - orgId: 1
    receiver: hook
    group_by: [alertname]
    routes:
      - receiver: hook
        matchers: ['team="db"']
        mute_time_intervals: [weekends]
resetPolicies: [2]
muteTimes:
  - name: weekends
    time_intervals:
      - weekdays: [saturday, sunday]
templates:
  - name: short
    template: '{{ define "short" }}{{ len .Alerts }} alerts{{ end }} costs $5'
deleteContactPoints:
  - uid: old_one
deleteMuteTimes:
  - name: nights
deleteTemplates:
  - orgId: 3
    name: long
"#;

    #[test]
    fn grafana_files_are_read_and_a_bad_item_is_skipped_with_its_place() {
        let read = read(FILE);
        assert_eq!(read.rejected.len(), 1, "{:?}", read.rejected);
        assert!(
            read.rejected[0].starts_with("a.yaml: contactPoints[1]: "),
            "{}",
            read.rejected[0]
        );
        assert!(read.rejected[0].contains("url"), "{}", read.rejected[0]);
        let items: Vec<&NotifierItem> = read.items.iter().map(|i| &i.item).collect();
        assert_eq!(items.len(), 9, "{items:?}");
        let NotifierItem::ContactPoint(OrgId(1), hook) = items[2] else {
            panic!("{:?}", items[2]);
        };
        assert_eq!(hook.uid, "hook_1");
        assert_eq!(hook.provenance, Provenance::File);
        assert!(hook.disable_resolve_message);
        assert_eq!(hook.secure["authorization_credentials"], "s3cret");
        assert!(!hook.settings.contains_key("authorization_credentials"));
        let NotifierItem::ContactPoint(_, email) = items[3] else {
            panic!("{:?}", items[3]);
        };
        assert_eq!(email.uid, derived_uid(OrgId(1), "hook", 1));
        let NotifierItem::Policy(_, tree) = items[4] else {
            panic!("{:?}", items[4]);
        };
        assert_eq!(
            tree.routes[0].object_matchers,
            vec![vec!["team".to_owned(), "=".to_owned(), "db".to_owned()]]
        );
        assert_eq!(items[5], &NotifierItem::ResetPolicy(OrgId(2)));
        // A template keeps its own `$`: only `${VAR}` is expanded there.
        assert_eq!(
            items[0],
            &NotifierItem::Template(
                OrgId(1),
                "short".to_owned(),
                "{{ define \"short\" }}{{ len .Alerts }} alerts{{ end }} costs $5".to_owned()
            )
        );
        assert_eq!(
            items[8],
            &NotifierItem::DeleteTemplate(OrgId(3), "long".to_owned())
        );
    }

    #[test]
    fn derived_uids_are_stable_and_valid() {
        let uid = derived_uid(OrgId(1), "hook", 0);
        assert_eq!(uid, derived_uid(OrgId(1), "hook", 0));
        assert_ne!(uid, derived_uid(OrgId(2), "hook", 0));
        assert_ne!(uid, derived_uid(OrgId(1), "hook", 1));
        validate_uid(&uid).unwrap();
    }

    #[test]
    fn a_section_of_the_wrong_shape_refuses_the_file() {
        let root: Value = serde_saphyr::from_str("contactPoints: {name: x}").unwrap();
        let err =
            NotifierProvisioning::from_document("b.yaml", root.as_object().unwrap(), &|_: &str| {
                None
            })
            .unwrap_err();
        assert!(err.to_string().contains("b.yaml"), "{err}");
    }

    #[test]
    fn bad_items_are_named() {
        let read = read(
            "muteTimes:\n  - name: bad\n    time_intervals:\n      - weekdays: [funday]\npolicies:\n  - receiver: x\n    group_wait: soon\nresetPolicies: [zero]\ntemplates:\n  - name: t\n",
        );
        assert_eq!(read.items, vec![]);
        let places: Vec<&str> = read
            .rejected
            .iter()
            .map(|r| r.split(": ").nth(1).unwrap())
            .collect();
        assert_eq!(
            places,
            vec![
                "templates[0]",
                "muteTimes[0]",
                "policies[0]",
                "resetPolicies[0]"
            ]
        );
    }
}
