//! Who may subscribe and publish: the hub's own rules, refined by the composition layer.

use crate::Result;
use crate::channel::{Channel, OrgId};

/// A client's role in its org, as the HTTP layer authenticated it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Viewer.
    Viewer,
    /// Editor.
    Editor,
    /// Admin of the org.
    Admin,
}

/// Who is on the other end of a connection (or of an HTTP publish or push).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientInfo {
    /// The signed-in user's id (or the service account's).
    pub user_id: i64,
    /// The org the request is for.
    pub org_id: OrgId,
    /// The user's role in that org.
    pub role: Role,
}

/// What a client wants to do on a channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Subscribe (and read history and presence).
    Subscribe,
    /// Publish.
    Publish,
}

/// The composition layer's answer to "may this client do this on this channel?".
///
/// The hub asks only after its own rules passed: the channel is in the client's org, the
/// channel exists, and the kind allows the action at all (nobody publishes to
/// `plugin/testdata/*`; only org Admins publish to `stream/*`; a publication to
/// `grafana/dashboard/uid/<uid>` is an `editing-started` event for that uid).
/// For `grafana/dashboard/uid/<uid>`, [`Action::Subscribe`] means "may view the
/// dashboard" and [`Action::Publish`] "may edit it"; other kinds are usually allowed for
/// every org member. An error is logged and answered as an internal error (100).
#[async_trait::async_trait]
pub trait ChannelAuthorizer: Send + Sync + 'static {
    /// Whether `client` may do `action` on `channel`.
    async fn authorize(
        &self,
        client: &ClientInfo,
        channel: &Channel,
        action: Action,
    ) -> Result<bool>;
}

/// Allows whatever the hub's own rules allow: every org member may use every channel of
/// its org. For single-user setups and tests; a server wires dashboard permissions.
#[derive(Clone, Copy, Debug, Default)]
pub struct OrgMembers;

#[async_trait::async_trait]
impl ChannelAuthorizer for OrgMembers {
    async fn authorize(&self, _: &ClientInfo, _: &Channel, _: Action) -> Result<bool> {
        Ok(true)
    }
}
