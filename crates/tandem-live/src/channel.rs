//! Grafana's channel names (`scope/namespace/path`), the org id in front of them on the
//! wire, and what each kind of channel offers.

use std::fmt;
use std::sync::Arc;

use tandem_storage::input;

use crate::protocol::ErrorCode;

/// The longest Grafana channel name, without the org prefix.
pub const MAX_CHANNEL_LEN: usize = 160;

/// An org's id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OrgId(pub i64);

impl fmt::Display for OrgId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Why a channel name is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChannelError {
    /// The name is not `scope/namespace/path` of allowed characters, or is too long.
    #[error("malformed channel name: {0}")]
    Malformed(&'static str),
    /// The name is well formed but Tandem serves no such channel.
    #[error("unknown channel")]
    Unknown,
    /// The channel belongs to another org than the client's.
    #[error("the channel belongs to another org")]
    OtherOrg,
}

impl ChannelError {
    /// The Centrifuge error code a subscriber sees.
    pub fn code(&self) -> ErrorCode {
        match self {
            ChannelError::Malformed(_) => ErrorCode::BAD_REQUEST,
            ChannelError::Unknown => ErrorCode::UNKNOWN_CHANNEL,
            ChannelError::OtherOrg => ErrorCode::PERMISSION_DENIED,
        }
    }
}

/// Grafana's testdata streams, produced once per cluster while anyone listens.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TestStream {
    /// `random-2s-stream`: a random walk point every 2 s.
    Random2s,
    /// `random-flakey-stream`: a point every 100 ms, three in four dropped.
    RandomFlakey,
    /// `random-20Hz-stream`: a point every 50 ms.
    Random20Hz,
}

impl TestStream {
    /// Every test stream.
    pub const ALL: [TestStream; 3] = [
        TestStream::Random2s,
        TestStream::RandomFlakey,
        TestStream::Random20Hz,
    ];

    /// The path under `plugin/testdata/`.
    pub fn path(self) -> &'static str {
        match self {
            TestStream::Random2s => "random-2s-stream",
            TestStream::RandomFlakey => "random-flakey-stream",
            TestStream::Random20Hz => "random-20Hz-stream",
        }
    }

    fn from_path(path: &str) -> Option<TestStream> {
        TestStream::ALL
            .into_iter()
            .find(|stream| stream.path() == path)
    }
}

/// What a channel is, which decides who may use it and how.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChannelKind {
    /// `grafana/dashboard/uid/<uid>`: save and delete events, presence, join/leave.
    Dashboard,
    /// `grafana/broadcast/<path>`: any org member publishes and subscribes; history on.
    Broadcast,
    /// `stream/<streamId>/<measurement>`: frames pushed in line protocol; history on and
    /// the last frame kept.
    Stream,
    /// `plugin/testdata/<stream>`: a cluster-singleton producer.
    Testdata(TestStream),
}

/// What a kind of channel offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChannelOptions {
    /// History with offsets and an epoch, so subscribers can recover.
    pub history: bool,
    /// Presence, and join/leave pushes.
    pub presence: bool,
    /// The last frame is kept and handed to new subscribers in the subscribe reply.
    pub keep_last: bool,
}

impl ChannelKind {
    /// The options of this kind of channel.
    pub fn options(self) -> ChannelOptions {
        match self {
            ChannelKind::Dashboard => ChannelOptions {
                history: false,
                presence: true,
                keep_last: false,
            },
            ChannelKind::Broadcast => ChannelOptions {
                history: true,
                presence: false,
                keep_last: false,
            },
            ChannelKind::Stream => ChannelOptions {
                history: true,
                presence: false,
                keep_last: true,
            },
            ChannelKind::Testdata(_) => ChannelOptions {
                history: false,
                presence: false,
                keep_last: true,
            },
        }
    }
}

/// A parsed channel: its org, its wire name (`<org>/<scope>/<namespace>/<path>`) and kind.
///
/// Cloning is cheap: the name is shared.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Channel {
    org: OrgId,
    wire: Arc<str>,
    name_start: usize,
    kind: ChannelKind,
}

impl Channel {
    /// Parses a wire name, `1/grafana/dashboard/uid/x`, as clients send it.
    pub fn parse_wire(wire: &str) -> Result<Channel, ChannelError> {
        let (org, name) = wire
            .split_once('/')
            .ok_or(ChannelError::Malformed("the org id must come first"))?;
        if org.is_empty() || org.len() > 18 || !org.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ChannelError::Malformed("the org id must come first"));
        }
        let org = org
            .parse::<i64>()
            .ok()
            .filter(|org| *org > 0)
            .ok_or(ChannelError::Malformed(
                "the org id must be a positive number",
            ))?;
        Channel::new(OrgId(org), name)
    }

    /// The channel `name` (`grafana/dashboard/uid/x`, without the org) of `org`.
    pub fn new(org: OrgId, name: &str) -> Result<Channel, ChannelError> {
        let kind = parse_name(name)?;
        let wire: Arc<str> = format!("{org}/{name}").into();
        let name_start = wire.len() - name.len();
        Ok(Channel {
            org,
            wire,
            name_start,
            kind,
        })
    }

    /// The org the channel belongs to.
    pub fn org(&self) -> OrgId {
        self.org
    }

    /// The wire name, with the org first.
    pub fn wire(&self) -> &str {
        &self.wire
    }

    /// The shared wire name.
    pub fn wire_arc(&self) -> &Arc<str> {
        &self.wire
    }

    /// The Grafana name, without the org.
    pub fn name(&self) -> &str {
        self.wire.get(self.name_start..).unwrap_or_default()
    }

    /// The kind.
    pub fn kind(&self) -> ChannelKind {
        self.kind
    }

    /// The kind's options.
    pub fn options(&self) -> ChannelOptions {
        self.kind.options()
    }

    /// The last path segment: the dashboard uid, the stream's measurement, …
    pub fn leaf(&self) -> &str {
        self.name().rsplit('/').next().unwrap_or_default()
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.wire)
    }
}

/// Whether `segment` is a valid channel path segment: Grafana's characters
/// (`A-Z a-z 0-9 _ - = . ~`), at least one of them.
pub fn is_valid_segment(segment: &str) -> bool {
    !segment.is_empty()
        && segment
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'=' | b'.' | b'~'))
}

fn parse_name(name: &str) -> Result<ChannelKind, ChannelError> {
    if input::check_bounded_text("channel", name, MAX_CHANNEL_LEN).is_err() {
        return Err(ChannelError::Malformed("at most 160 characters"));
    }
    let mut parts = name.splitn(3, '/');
    let (Some(scope), Some(namespace), Some(path)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(ChannelError::Malformed("scope/namespace/path"));
    };
    if !is_valid_segment(scope)
        || !is_valid_segment(namespace)
        || !path.split('/').all(is_valid_segment)
    {
        return Err(ChannelError::Malformed("scope/namespace/path"));
    }
    match (scope, namespace) {
        ("grafana", "dashboard") => match path.split_once('/') {
            Some(("uid", uid)) if !uid.contains('/') => Ok(ChannelKind::Dashboard),
            _ => Err(ChannelError::Unknown),
        },
        ("grafana", "broadcast") => Ok(ChannelKind::Broadcast),
        ("stream", _) if !path.contains('/') => Ok(ChannelKind::Stream),
        ("plugin", "testdata") => TestStream::from_path(path)
            .map(ChannelKind::Testdata)
            .ok_or(ChannelError::Unknown),
        ("grafana" | "plugin" | "ds" | "stream" | "watch", _) => Err(ChannelError::Unknown),
        _ => Err(ChannelError::Unknown),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(wire: &str, expected: Result<ChannelKind, ChannelError>) {
        assert_eq!(
            Channel::parse_wire(wire).map(|c| c.kind()),
            expected,
            "{wire}"
        );
    }

    #[test]
    fn kinds() {
        check("1/grafana/dashboard/uid/abc", Ok(ChannelKind::Dashboard));
        check("12/grafana/broadcast/a/b", Ok(ChannelKind::Broadcast));
        check("1/stream/telegraf/cpu", Ok(ChannelKind::Stream));
        check(
            "1/plugin/testdata/random-20Hz-stream",
            Ok(ChannelKind::Testdata(TestStream::Random20Hz)),
        );
        check(
            "1/plugin/testdata/random-5s-stream",
            Err(ChannelError::Unknown),
        );
        check("1/grafana/dashboard/gitops", Err(ChannelError::Unknown));
        check("1/ds/abc/x", Err(ChannelError::Unknown));
        check("1/stream/a/b/c", Err(ChannelError::Unknown));
        check("1/nope/a/b", Err(ChannelError::Unknown));
    }

    #[test]
    fn malformed_names() {
        for wire in [
            "",
            "grafana/broadcast/x",
            "0/grafana/broadcast/x",
            "-1/grafana/broadcast/x",
            "99999999999999999999/grafana/broadcast/x",
            "1/grafana/broadcast",
            "1/grafana//x",
            "1/grafana/broadcast/a b",
            "1/grafana/broadcast/a//b",
            "1/grafana/broadcast/\u{0}",
            "1/grafana/broadcast/é",
        ] {
            assert!(
                matches!(Channel::parse_wire(wire), Err(ChannelError::Malformed(_))),
                "{wire:?}"
            );
        }
        let long = format!("1/grafana/broadcast/{}", "x".repeat(143));
        assert!(Channel::parse_wire(&long).is_err());
        let limit = format!("1/grafana/broadcast/{}", "x".repeat(142));
        assert!(Channel::parse_wire(&limit).is_ok());
    }

    #[test]
    fn names_and_orgs() {
        let channel = Channel::parse_wire("7/grafana/dashboard/uid/abc").unwrap();
        assert_eq!(channel.org(), OrgId(7));
        assert_eq!(channel.name(), "grafana/dashboard/uid/abc");
        assert_eq!(channel.wire(), "7/grafana/dashboard/uid/abc");
        assert_eq!(channel.leaf(), "abc");
        assert_eq!(
            Channel::new(OrgId(7), "grafana/dashboard/uid/abc").unwrap(),
            channel
        );
    }
}
