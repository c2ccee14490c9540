//! One plan pass of the [`crate::Dispatcher`]: the alert instances, posted alerts and
//! silences read from the shared database, routed through each org's policy tree into
//! groups; new groups created; the due flushes this instance has room to send chosen, their
//! payloads rendered, and planned by the compare-and-swap on each group's row.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use crate::notify::contact::ContactPoint;
use crate::notify::dispatch::{Shared, ms};
use crate::notify::email::email_body;
use crate::notify::payload::{Notification, NotifiedAlert, webhook_body};
use crate::notify::policy::CompiledRoute;
use crate::notify::silence::Silencer;
use crate::notify::store::{
    Claim, DocumentKind, FlushPlan, GroupState, NewGroup, PlannedNotification,
};
use crate::notify::timing::{MuteTiming, route_muted, timings_by_name};
use crate::{AlertInstance, AlertStore, InstanceState, Labels, OrgId};

/// One group as computed from this instance's read of the alert instances.
struct Computed<'a> {
    org_id: OrgId,
    receiver: String,
    group_key: String,
    group_labels: Labels,
    route: CompiledRoute,
    alerts: Vec<&'a AlertInstance>,
}

fn labels_text(labels: &Labels) -> String {
    let pairs: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{{{}}}", pairs.join(", "))
}

fn group_id(org: OrgId, receiver: &str, key: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("{}\n{receiver}\n{key}", org.0));
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn is_resolved(i: &AlertInstance) -> bool {
    i.state == InstanceState::Normal && i.resolved_at.is_some()
}

struct OrgConfig {
    tree: CompiledRoute,
    points: Vec<ContactPoint>,
    templates: Vec<(String, String)>,
    timings: HashMap<String, MuteTiming>,
}

/// What one plan pass did.
#[derive(Default)]
pub(super) struct Pass {
    /// The claims won.
    pub(super) claims: Vec<Claim>,
    /// How long until the earliest group that is not yet due falls due (by the database's
    /// clock), when some is.
    pub(super) due_in: Option<Duration>,
    /// Whether due flushes were left unplanned for want of send slots.
    pub(super) backlog: bool,
}

/// One plan pass, planning at most `budget` due flushes.
pub(super) async fn plan_pass(
    alerts: &Arc<dyn AlertStore>,
    shared: &Shared,
    ensured: &mut HashSet<OrgId>,
    budget: usize,
) -> crate::Result<Pass> {
    let mut instances = alerts.list_instances(None).await?;
    let (db_now, rows) = shared.store.groups().await?;
    // Alerts posted by outside generators (Prometheus) are routed with the rules' own.
    let (posted_now, posted) = shared.store.external_alerts(None).await?;
    instances.extend(posted.iter().map(|a| a.instance(posted_now)));
    // Read at every pass from the shared database: a silence made through any instance
    // mutes the next flush of every instance.
    let silencer = Silencer::new(&shared.store.active_silences().await?);
    let mut orgs: BTreeMap<OrgId, OrgConfig> = BTreeMap::new();
    let wanted: HashSet<OrgId> = instances
        .iter()
        .map(|i| i.org_id)
        .chain(rows.iter().map(|r| r.org_id))
        .collect();
    for org in wanted {
        if ensured.insert(org) {
            shared.store.ensure_defaults(org).await?;
        }
        let (tree, _) = shared.store.policy(org).await?;
        let templates = shared
            .store
            .documents(org, DocumentKind::Template)
            .await?
            .into_iter()
            .map(|d| {
                let text = d
                    .body
                    .get("template")
                    .and_then(|t| t.as_str())
                    .unwrap_or("")
                    .to_owned();
                (d.name, text)
            })
            .collect();
        let timings = timings_by_name(
            org,
            shared
                .store
                .documents(org, DocumentKind::MuteTiming)
                .await?,
        );
        orgs.insert(
            org,
            OrgConfig {
                tree: CompiledRoute::compile(&tree)?,
                points: shared.store.contact_points(org).await?,
                templates,
                timings,
            },
        );
    }
    let mut computed: HashMap<String, Computed<'_>> = HashMap::new();
    for instance in &instances {
        if !(instance.state.is_firing() || is_resolved(instance)) {
            continue;
        }
        let Some(config) = orgs.get(&instance.org_id) else {
            continue;
        };
        let mut routes = Vec::new();
        config.tree.matching(&instance.labels, &mut routes);
        for route in routes {
            let group_labels = route.group_labels(&instance.labels);
            let key = format!("{}:{}", route.path, labels_text(&group_labels));
            let id = group_id(instance.org_id, &route.receiver, &key);
            computed
                .entry(id)
                .or_insert_with(|| Computed {
                    org_id: instance.org_id,
                    receiver: route.receiver.clone(),
                    group_key: key,
                    group_labels,
                    route: route.clone(),
                    alerts: Vec::new(),
                })
                .alerts
                .push(instance);
        }
    }
    let known: HashSet<&str> = rows.iter().map(|r| r.group_id.as_str()).collect();
    let mut due_in: Option<i64> = rows
        .iter()
        .filter(|r| r.next_due > db_now)
        .map(|r| r.next_due - db_now)
        .min();
    let mut new_groups = Vec::new();
    for (id, group) in &computed {
        if known.contains(id.as_str()) || !group.alerts.iter().any(|a| a.state.is_firing()) {
            continue;
        }
        new_groups.push(NewGroup {
            group_id: id.clone(),
            org_id: group.org_id,
            receiver: group.receiver.clone(),
            group_key: group.group_key.clone(),
            group_wait_ms: group.route.group_wait_ms,
        });
        let wait = group.route.group_wait_ms.max(0);
        due_in = Some(due_in.map_or(wait, |d| d.min(wait)));
    }
    new_groups.sort_by(|a, b| a.group_id.cmp(&b.group_id));
    shared.store.create_groups(&new_groups).await?;
    let mut due: Vec<Due<'_>> = Vec::new();
    for row in &rows {
        if row.next_due > db_now {
            continue;
        }
        let group = computed.get(&row.group_id);
        // A muted route sends nothing and records nothing: the group stays due, and its
        // flush is planned at the first pass after the timing ends (the database's clock
        // decides, so every instance agrees).
        if let (Some(g), Some(config)) = (group, orgs.get(&row.org_id))
            && route_muted(&g.route, &config.timings, db_now)
        {
            continue;
        }
        let sent: HashSet<&str> = row.sent_firing.iter().map(String::as_str).collect();
        let mut firing_all: Vec<&AlertInstance> = group
            .map(|g| {
                g.alerts
                    .iter()
                    .copied()
                    .filter(|a| a.state.is_firing())
                    .collect()
            })
            .unwrap_or_default();
        firing_all.sort_by(|a, b| a.fingerprint.cmp(&b.fingerprint));
        firing_all.dedup_by(|a, b| a.fingerprint == b.fingerprint);
        // Silenced alerts are left out of the notification (Alertmanager's mute stage), but
        // a silenced alert that was already notified still counts as notified, so the end of
        // its silence alone sends nothing before `repeat_interval`, as in Alertmanager.
        let silenced = |a: &AlertInstance| silencer.mutes(a.org_id, &a.labels);
        let firing: Vec<&AlertInstance> = firing_all
            .iter()
            .copied()
            .filter(|a| !silenced(a))
            .collect();
        let resolved: Vec<&AlertInstance> = group
            .map(|g| {
                g.alerts
                    .iter()
                    .copied()
                    .filter(|a| {
                        is_resolved(a) && sent.contains(a.fingerprint.as_str()) && !silenced(a)
                    })
                    .collect()
            })
            .unwrap_or_default();
        let firing_now: HashSet<&str> = firing_all.iter().map(|a| a.fingerprint.as_str()).collect();
        let changed = firing
            .iter()
            .any(|a| !sent.contains(a.fingerprint.as_str()))
            || row
                .sent_firing
                .iter()
                .any(|fp| !firing_now.contains(fp.as_str()));
        let firing_fps: Vec<String> = firing_all
            .iter()
            .filter(|a| !silenced(a) || sent.contains(a.fingerprint.as_str()))
            .map(|a| a.fingerprint.clone())
            .collect();
        let repeat_ms = group.map_or(crate::notify::policy::DEFAULT_REPEAT_INTERVAL_MS, |g| {
            g.route.repeat_interval_ms
        });
        let repeat = !firing.is_empty() && db_now >= row.last_sent_at.saturating_add(repeat_ms);
        if !changed && !repeat {
            continue;
        }
        let ends = firing_all.is_empty();
        // Everything left to say is silenced: nothing is sent and nothing recorded, so the
        // group stays due and is flushed at the first pass after its silences end.
        if !ends && firing.is_empty() && resolved.is_empty() {
            continue;
        }
        due.push(Due {
            row,
            group,
            firing,
            resolved,
            firing_fps,
            ends,
        });
    }
    // Beyond the budget, each instance plans a window starting at a random due group, so
    // that instances sharing a backlog mostly plan different groups rather than race for
    // the same ones; payloads are rendered for the window only.
    let backlog = due.len() > budget;
    if backlog {
        due.sort_by(|a, b| a.row.group_id.cmp(&b.row.group_id));
        let start = rand::random_range(0..due.len());
        due.rotate_left(start);
        due.truncate(budget);
    }
    let mut plans: Vec<FlushPlan> = due
        .into_iter()
        .map(|d| flush_plan(shared, &orgs, d))
        .collect();
    // One transaction per batch of flushes, every instance locking the groups' rows in the
    // same order, so that planners racing for the same groups wait rather than deadlock.
    plans.sort_by(|a, b| a.group_id.cmp(&b.group_id));
    let claims = shared.store.plan_flushes(&plans).await?;
    if !claims.is_empty() {
        tracing::debug!(
            planned = plans.len(),
            won = claims.len(),
            backlog,
            "planned notification flushes"
        );
    }
    let due_in = due_in.map(|ms| Duration::from_millis(u64::try_from(ms).unwrap_or(0)));
    Ok(Pass {
        claims,
        due_in,
        backlog,
    })
}

/// A group whose flush is due, with what it has to say.
struct Due<'a> {
    row: &'a GroupState,
    group: Option<&'a Computed<'a>>,
    firing: Vec<&'a AlertInstance>,
    resolved: Vec<&'a AlertInstance>,
    firing_fps: Vec<String>,
    ends: bool,
}

/// The flush of `due`, its payloads rendered for each integration of its receiver.
fn flush_plan(shared: &Shared, orgs: &BTreeMap<OrgId, OrgConfig>, due: Due<'_>) -> FlushPlan {
    let Due {
        row,
        group,
        firing,
        resolved,
        firing_fps,
        ends,
    } = due;
    let mut notifications = Vec::new();
    if let (Some(group), Some(config)) = (group, orgs.get(&row.org_id)) {
        let mut notified: Vec<NotifiedAlert<'_>> = firing
            .iter()
            .map(|a| NotifiedAlert {
                instance: a,
                firing: true,
            })
            .collect();
        notified.extend(resolved.iter().map(|a| NotifiedAlert {
            instance: a,
            firing: false,
        }));
        if !notified.is_empty() {
            let notification = Notification {
                receiver: &row.receiver,
                org_id: row.org_id,
                group_key: &row.group_key,
                group_labels: &group.group_labels,
                alerts: notified,
                external_url: &shared.settings.external_url,
            };
            for point in config.points.iter().filter(|p| p.name == row.receiver) {
                if ends && point.disable_resolve_message {
                    continue;
                }
                notifications.push(PlannedNotification {
                    integration_uid: point.uid.clone(),
                    payload: if point.kind == "email" {
                        email_body(&notification, point, &config.templates)
                    } else {
                        webhook_body(&notification, point, &config.templates)
                    },
                });
            }
        }
    }
    let interval = group.map_or(crate::notify::policy::DEFAULT_GROUP_INTERVAL_MS, |g| {
        g.route.group_interval_ms
    });
    FlushPlan {
        group_id: row.group_id.clone(),
        org_id: row.org_id,
        receiver: row.receiver.clone(),
        epoch: row.epoch,
        seq: row.seq,
        group_interval_ms: interval,
        firing: firing_fps,
        ends,
        notifications,
        holder: shared.holder.clone(),
        ttl_ms: ms(shared.settings.claim_timeout),
    }
}
