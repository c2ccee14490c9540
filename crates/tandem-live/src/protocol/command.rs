//! Decoding client commands: `{"id":N,"<method>":{…}}`, several per frame separated by `\n`.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, IgnoredAny};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

/// One decoded command.
#[derive(Debug)]
pub(crate) struct Command<'a> {
    /// The id the reply must carry; 0 for `send` and pongs.
    pub(crate) id: u32,
    /// What the client asks for.
    pub(crate) request: Request<'a>,
}

/// The request a command carries, with its parameters still to be validated.
#[derive(Debug)]
pub(crate) enum Request<'a> {
    /// `{}`: the answer to a server ping.
    Pong,
    /// `connect`.
    Connect,
    /// `subscribe`.
    Subscribe(SubscribeRequest<'a>),
    /// `unsubscribe`.
    Unsubscribe(ChannelRequest<'a>),
    /// `publish`.
    Publish(PublishRequest<'a>),
    /// `presence`.
    Presence(ChannelRequest<'a>),
    /// `presence_stats`.
    PresenceStats(ChannelRequest<'a>),
    /// `history`.
    History(HistoryRequest<'a>),
    /// `ping` (older clients ping the server with an id).
    Ping,
    /// `send`: an asynchronous message without reply.
    Send,
    /// `rpc`.
    Rpc,
    /// `refresh`.
    Refresh,
    /// `sub_refresh`.
    SubRefresh,
    /// A command with an id but no method Tandem knows (error 104).
    Unknown,
    /// A known method whose parameters do not decode (error 107).
    Malformed,
}

/// `subscribe`'s parameters.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct SubscribeRequest<'a> {
    #[serde(default, borrow)]
    pub(crate) channel: Cow<'a, str>,
    #[serde(default)]
    pub(crate) recover: bool,
    #[serde(default, borrow)]
    pub(crate) epoch: Cow<'a, str>,
    #[serde(default, deserialize_with = "offset")]
    pub(crate) offset: u64,
}

/// The parameters of commands that only name a channel.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ChannelRequest<'a> {
    #[serde(default, borrow)]
    pub(crate) channel: Cow<'a, str>,
}

/// `publish`'s parameters.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct PublishRequest<'a> {
    #[serde(default, borrow)]
    pub(crate) channel: Cow<'a, str>,
    #[serde(default, borrow)]
    pub(crate) data: Option<&'a RawValue>,
}

/// `history`'s parameters.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct HistoryRequest<'a> {
    #[serde(default, borrow)]
    pub(crate) channel: Cow<'a, str>,
    #[serde(default)]
    pub(crate) limit: i32,
    #[serde(default, borrow)]
    pub(crate) since: Option<PositionRequest<'a>>,
    #[serde(default)]
    pub(crate) reverse: bool,
}

/// A stream position a client names.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct PositionRequest<'a> {
    #[serde(default, deserialize_with = "offset")]
    pub(crate) offset: u64,
    #[serde(default, borrow)]
    pub(crate) epoch: Cow<'a, str>,
}

/// A line that is not a command object at all: the connection is closed with 3501.
#[derive(Debug)]
pub(crate) struct DecodeError(serde_json::Error);

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed command: {}", self.0)
    }
}

/// The commands of one frame: one JSON object per non-empty line.
pub(crate) fn lines(frame: &str) -> impl Iterator<Item = &str> {
    frame
        .split('\n')
        .map(str::trim)
        .filter(|line| !line.is_empty())
}

/// Decodes one command line.
pub(crate) fn decode(line: &str) -> Result<Command<'_>, DecodeError> {
    // serde would also read a struct from an array; a command is an object.
    if !line.starts_with('{') {
        return Err(DecodeError(serde::de::Error::custom(
            "a command is a JSON object",
        )));
    }
    let wire: WireCommand<'_> = serde_json::from_str(line).map_err(DecodeError)?;
    let id = wire.id;
    // Centrifuge takes the first request present, in the protocol's field order.
    let request = if let Some(raw) = wire.connect {
        params::<IgnoredAny>(raw).map_or(Request::Malformed, |_| Request::Connect)
    } else if let Some(raw) = wire.subscribe {
        params(raw).map_or(Request::Malformed, Request::Subscribe)
    } else if let Some(raw) = wire.unsubscribe {
        params(raw).map_or(Request::Malformed, Request::Unsubscribe)
    } else if let Some(raw) = wire.publish {
        params(raw).map_or(Request::Malformed, Request::Publish)
    } else if let Some(raw) = wire.presence {
        params(raw).map_or(Request::Malformed, Request::Presence)
    } else if let Some(raw) = wire.presence_stats {
        params(raw).map_or(Request::Malformed, Request::PresenceStats)
    } else if let Some(raw) = wire.history {
        params(raw).map_or(Request::Malformed, Request::History)
    } else if wire.ping.is_some() {
        Request::Ping
    } else if wire.send.is_some() {
        Request::Send
    } else if let Some(raw) = wire.rpc {
        params::<IgnoredAny>(raw).map_or(Request::Malformed, |_| Request::Rpc)
    } else if wire.refresh.is_some() {
        Request::Refresh
    } else if let Some(raw) = wire.sub_refresh {
        params::<IgnoredAny>(raw).map_or(Request::Malformed, |_| Request::SubRefresh)
    } else if id == 0 {
        Request::Pong
    } else {
        Request::Unknown
    };
    Ok(Command { id, request })
}

fn params<'a, T: Deserialize<'a>>(raw: &'a RawValue) -> Option<T> {
    serde_json::from_str(raw.get()).ok()
}

#[derive(Deserialize)]
struct WireCommand<'a> {
    #[serde(default)]
    id: u32,
    #[serde(default, borrow)]
    connect: Option<&'a RawValue>,
    #[serde(default, borrow)]
    subscribe: Option<&'a RawValue>,
    #[serde(default, borrow)]
    unsubscribe: Option<&'a RawValue>,
    #[serde(default, borrow)]
    publish: Option<&'a RawValue>,
    #[serde(default, borrow)]
    presence: Option<&'a RawValue>,
    #[serde(default, borrow)]
    presence_stats: Option<&'a RawValue>,
    #[serde(default, borrow)]
    history: Option<&'a RawValue>,
    #[serde(default, borrow)]
    ping: Option<&'a RawValue>,
    #[serde(default, borrow)]
    send: Option<&'a RawValue>,
    #[serde(default, borrow)]
    rpc: Option<&'a RawValue>,
    #[serde(default, borrow)]
    refresh: Option<&'a RawValue>,
    #[serde(default, borrow)]
    sub_refresh: Option<&'a RawValue>,
}

/// Offsets are numbers in Centrifuge's JSON, but protobuf's JSON mapping writes 64-bit
/// integers as strings; take both.
fn offset<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    struct Visitor;
    impl de::Visitor<'_> for Visitor {
        type Value = u64;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a non-negative integer offset")
        }

        fn visit_u64<E: de::Error>(self, value: u64) -> Result<u64, E> {
            Ok(value)
        }

        fn visit_i64<E: de::Error>(self, value: i64) -> Result<u64, E> {
            u64::try_from(value).map_err(|_| E::custom("a negative offset"))
        }

        fn visit_str<E: de::Error>(self, value: &str) -> Result<u64, E> {
            value
                .parse()
                .map_err(|_| E::custom("an offset that is not a number"))
        }

        fn visit_unit<E: de::Error>(self) -> Result<u64, E> {
            Ok(0)
        }
    }
    deserializer.deserialize_any(Visitor)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(line: &str) -> Command<'_> {
        decode(line).unwrap_or_else(|err| panic!("{line}: {err}"))
    }

    #[test]
    fn methods_are_recognised_and_unknown_fields_ignored() {
        assert!(matches!(
            one(r#"{"id":1,"connect":{"token":"x","name":"js","extra":[1]}}"#).request,
            Request::Connect
        ));
        let cmd = one(
            r#"{"subscribe":{"channel":"1/grafana/broadcast/x","flag":1,"recover":true,"offset":"7","epoch":"e"},"id":2}"#,
        );
        assert_eq!(cmd.id, 2);
        let Request::Subscribe(sub) = cmd.request else {
            panic!("not a subscribe")
        };
        assert_eq!(sub.channel, "1/grafana/broadcast/x");
        assert!(sub.recover);
        assert_eq!((sub.offset, &*sub.epoch), (7, "e"));
        assert!(matches!(one("{}").request, Request::Pong));
        assert!(matches!(
            one(r#"{"id":3,"nope":{}}"#).request,
            Request::Unknown
        ));
        assert!(matches!(
            one(r#"{"send":{"data":{}}}"#).request,
            Request::Send
        ));
        assert!(matches!(
            one(r#"{"id":4,"subscribe":{"channel":5}}"#).request,
            Request::Malformed
        ));
        let Request::Publish(publish) =
            one(r#"{"id":5,"publish":{"channel":"c","data":{"a":[1, 2]}}}"#).request
        else {
            panic!("not a publish")
        };
        assert_eq!(publish.data.map(RawValue::get), Some(r#"{"a":[1, 2]}"#));
    }

    #[test]
    fn frames_split_on_newlines() {
        let frame =
            "{\"id\":1,\"connect\":{}}\n\n  {\"id\":2,\"presence\":{\"channel\":\"a\"}}\r\n";
        let ids: Vec<u32> = lines(frame).map(|line| one(line).id).collect();
        assert_eq!(ids, vec![1, 2]);
    }

    #[test]
    fn garbage_is_a_decode_error_never_a_panic() {
        for line in [
            "nope",
            "[]",
            "1",
            r#"{"id":-1}"#,
            r#"{"id":4294967296}"#,
            "{\"id\":1,\"connect\":",
            "\"\\u0000\"",
        ] {
            assert!(decode(line).is_err(), "{line}");
        }
        assert!(matches!(
            one(r#"{"id":1,"history":{"channel":"c","since":{"offset":-3}}}"#).request,
            Request::Malformed
        ));
    }
}
