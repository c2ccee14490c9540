use tokio::sync::broadcast;

use crate::{DashboardUid, OrgId, Version};

/// What happened to a dashboard.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DashboardAction {
    /// Created, updated or restored.
    Saved,
    /// Deleted, alone or with its folder.
    Deleted,
}

impl DashboardAction {
    /// Grafana Live's spelling (`"saved"`, `"deleted"`).
    pub fn as_str(self) -> &'static str {
        match self {
            DashboardAction::Saved => "saved",
            DashboardAction::Deleted => "deleted",
        }
    }
}

/// A committed change to a dashboard: the composition layer turns it into a Live message
/// on `grafana/dashboard/uid/<uid>`, a cache invalidation, and so on.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DashboardEvent {
    /// The dashboard's org.
    pub org: OrgId,
    /// The dashboard.
    pub uid: DashboardUid,
    /// What happened.
    pub action: DashboardAction,
    /// The version saved, or the last version of a deleted dashboard.
    pub version: Version,
}

/// Where dashboard changes are announced; owned by the composition layer.
///
/// [`crate::Dashboards`] and [`crate::Provisioner`] call [`DashboardEvents::publish`] once
/// per committed change, after the commit, and never for a write that failed or rolled
/// back. It runs on the request's task, so it must not block: hand the event to a bounded
/// channel (as the `broadcast::Sender` implementation does) and return.
pub trait DashboardEvents: Send + Sync {
    /// Announces one change. The default does nothing.
    fn publish(&self, event: DashboardEvent) {
        let _ = event;
    }
}

/// Announces nothing: for embedders that do not listen.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoEvents;

impl DashboardEvents for NoEvents {}

/// Every subscriber receives every event; a subscriber that falls more than the channel's
/// capacity behind loses the oldest events (it sees `RecvError::Lagged`) rather than
/// slowing saves down. With no subscriber the event is dropped.
impl DashboardEvents for broadcast::Sender<DashboardEvent> {
    fn publish(&self, event: DashboardEvent) {
        let _ = self.send(event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_broadcast_sender_hands_every_event_to_every_subscriber() {
        let (sender, mut first) = broadcast::channel(4);
        let mut second = sender.subscribe();
        let event = DashboardEvent {
            org: OrgId(1),
            uid: DashboardUid::from("abc"),
            action: DashboardAction::Saved,
            version: Version(3),
        };
        sender.publish(event.clone());
        assert_eq!(first.try_recv().ok(), Some(event.clone()));
        assert_eq!(second.try_recv().ok(), Some(event));
        assert!(first.try_recv().is_err(), "exactly once");
        drop((first, second));
        // Nobody listening is not an error.
        sender.publish(DashboardEvent {
            org: OrgId(1),
            uid: DashboardUid::from("abc"),
            action: DashboardAction::Deleted,
            version: Version(3),
        });
        NoEvents.publish(DashboardEvent {
            org: OrgId(1),
            uid: DashboardUid::from("abc"),
            action: DashboardAction::Deleted,
            version: Version(3),
        });
    }
}
