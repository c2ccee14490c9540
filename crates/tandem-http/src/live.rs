//! Live wired to the other domains: who may use a dashboard channel (the dashboards'
//! rules), dashboard saves and deletions forwarded to their channels, and Live's numbers
//! on `/metrics`. This is composition, as `Server::start` is: `tandem-live` knows neither
//! dashboards nor HTTP.

use std::sync::Arc;

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use tandem_dashboards::{
    BasicRole, DashboardEvent, DashboardUid, Dashboards, Level, Permissions, Subject,
};
use tandem_live::{Action, Channel, ChannelAuthorizer, ChannelKind, ClientInfo, Hub, Role};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

/// The dashboards' rules for `grafana/dashboard/uid/<uid>`: the dashboard must exist in
/// the org; subscribing takes View on it, publishing (`editing-started`) Edit, as its
/// folder and dashboard permissions grant them to the client (checked at each subscribe
/// and publish, so a change of permissions applies to the next one on any instance).
/// Every other channel kind is open to the org's members, the hub having checked the rest.
pub(crate) struct DashboardAuthorizer {
    pub(crate) dashboards: Dashboards,
    pub(crate) permissions: Permissions,
    pub(crate) identity: tandem_sessions::Identity,
}

#[async_trait::async_trait]
impl ChannelAuthorizer for DashboardAuthorizer {
    async fn authorize(
        &self,
        client: &ClientInfo,
        channel: &Channel,
        action: Action,
    ) -> tandem_live::Result<bool> {
        if channel.kind() != ChannelKind::Dashboard {
            return Ok(true);
        }
        let Some(uid) = channel.name().strip_prefix("grafana/dashboard/uid/") else {
            return Ok(false);
        };
        let org = tandem_dashboards::OrgId(client.org_id.0);
        let failed =
            |err: tandem_dashboards::Error| tandem_live::Error::BadRequest(err.to_string());
        let dashboard = match self.dashboards.get(org, &DashboardUid::from(uid)).await {
            Ok(dashboard) => dashboard,
            Err(tandem_dashboards::Error::DashboardNotFound) => return Ok(false),
            Err(err) => return Err(failed(err)),
        };
        let subject = self.subject(client).await?;
        let level = self
            .permissions
            .dashboard_level(&subject, &dashboard)
            .await
            .map_err(failed)?;
        let need = match action {
            Action::Subscribe => Level::View,
            Action::Publish => Level::Edit,
        };
        Ok(level.is_some_and(|level| level >= need))
    }
}

impl DashboardAuthorizer {
    /// The client as the permissions see them.
    async fn subject(&self, client: &ClientInfo) -> tandem_live::Result<Subject> {
        let role = match client.role {
            Role::Viewer => BasicRole::Viewer,
            Role::Editor => BasicRole::Editor,
            Role::Admin => BasicRole::Admin,
        };
        crate::shared::access::subject_for(
            &self.identity,
            tandem_sessions::OrgId(client.org_id.0),
            tandem_sessions::UserId(client.user_id),
            Some(role),
        )
        .await
        .map_err(|err| tandem_live::Error::BadRequest(err.to_string()))
    }
}

/// Forwards this instance's dashboard saves and deletions to their Live channels until
/// `stop`; the engine carries them to every instance's subscribers.
pub(crate) async fn forward_dashboard_events(
    hub: Arc<Hub>,
    mut events: broadcast::Receiver<DashboardEvent>,
    stop: CancellationToken,
) {
    loop {
        let event = tokio::select! {
            () = stop.cancelled() => return,
            event = events.recv() => event,
        };
        match event {
            Ok(event) => {
                let (action, version) = match event.action {
                    tandem_dashboards::DashboardAction::Saved => {
                        (tandem_live::DashboardAction::Saved, Some(event.version.0))
                    }
                    tandem_dashboards::DashboardAction::Deleted => {
                        (tandem_live::DashboardAction::Deleted, None)
                    }
                };
                let org = tandem_live::OrgId(event.org.0);
                if let Err(err) = hub
                    .dashboard_changed(org, event.uid.as_str(), action, version)
                    .await
                {
                    tracing::warn!(error = %err, uid = %event.uid, "a dashboard change did not reach Live");
                }
            }
            // Subscribers of the lost events reload when they next save; say so.
            Err(broadcast::error::RecvError::Lagged(lost)) => {
                tracing::warn!(lost, "Live fell behind the dashboard events");
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// Live's numbers, read from the hub at every scrape.
pub(crate) struct LiveCollector {
    hub: Arc<Hub>,
    descs: Vec<Desc>,
}

/// (name, help, is a counter) of every number the collector exposes.
const LIVE_METRICS: &[(&str, &str, bool)] = &[
    (
        "tandem_live_engine_up",
        "1 while the Live HA engine is connected, 0 while degraded",
        false,
    ),
    (
        "tandem_live_connections",
        "Open Live WebSocket connections on this instance",
        false,
    ),
    (
        "tandem_live_channels",
        "Live channels with subscribers on this instance",
        false,
    ),
    (
        "tandem_live_subscriptions",
        "Live subscriptions of this instance's connections",
        false,
    ),
    (
        "tandem_live_producers",
        "Cluster-singleton Live producers running on this instance",
        false,
    ),
    (
        "tandem_live_engine_losses_total",
        "Times the Live HA engine was lost",
        true,
    ),
    (
        "tandem_live_engine_events_dropped_total",
        "Engine events dropped because fan-out fell behind",
        true,
    ),
    (
        "tandem_live_publications_total",
        "Publications fanned out to this instance's subscribers",
        true,
    ),
    (
        "tandem_live_slow_consumers_total",
        "Connections closed as slow consumers (3008)",
        true,
    ),
    (
        "tandem_live_no_pong_total",
        "Connections closed for not answering pings (3012)",
        true,
    ),
    (
        "tandem_live_refused_total",
        "Connections refused over max_connections (3504)",
        true,
    ),
    (
        "tandem_live_gaps_total",
        "Offset gaps that made subscribers recover",
        true,
    ),
];

impl LiveCollector {
    pub(crate) fn new(hub: Arc<Hub>) -> prometheus::Result<LiveCollector> {
        let descs = LIVE_METRICS
            .iter()
            .map(|(name, help, _)| {
                Desc::new(
                    (*name).to_owned(),
                    (*help).to_owned(),
                    Vec::new(),
                    std::collections::HashMap::new(),
                )
            })
            .collect::<prometheus::Result<Vec<_>>>()?;
        Ok(LiveCollector { hub, descs })
    }
}

impl Collector for LiveCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let m = self.hub.metrics();
        let values = [
            m.engine_up,
            m.connections,
            m.channels,
            m.subscriptions,
            m.producers,
            m.engine_losses,
            m.engine_events_dropped,
            m.publications,
            m.slow_consumers,
            m.no_pong,
            m.refused,
            m.gaps,
        ];
        LIVE_METRICS
            .iter()
            .zip(values)
            .filter_map(|((name, help, counter), value)| {
                let metric = if *counter {
                    prometheus::IntCounter::new(*name, *help).ok().map(|c| {
                        c.inc_by(value);
                        c.collect()
                    })
                } else {
                    prometheus::IntGauge::new(*name, *help).ok().map(|g| {
                        g.set(i64::try_from(value).unwrap_or(i64::MAX));
                        g.collect()
                    })
                };
                metric.and_then(|mut families| families.pop())
            })
            .collect()
    }
}
