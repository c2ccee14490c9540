//! Encoding replies and pushes in Centrifuge's JSON shapes.
//!
//! A reply is `{"id":N,"<method>":{…}}` with the result key present even when the result
//! is empty, or `{"id":N,"error":{…}}`; a push is `{"push":{"channel":…,"<kind>":{…}}}`.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::Serialize;
use serde_json::value::RawValue;

use crate::engine::{PresenceEntry, Publication};
use crate::protocol::{ErrorCode, UnsubscribeCode};

/// The server's ping: an empty object, which clients answer with an empty object.
pub(crate) const PING: &str = "{}";

/// Appends `{"id":N,"<method>":<result>}`; `result` is JSON.
pub(crate) fn reply(out: &mut String, id: u32, method: &str, result: &str) {
    separate(out);
    let _ = write!(out, "{{\"id\":{id},\"{method}\":{result}}}");
}

/// Appends `{"id":N,"error":{"code":C,"message":"…"}}`.
pub(crate) fn error(out: &mut String, id: u32, code: ErrorCode) {
    separate(out);
    let temporary = if code.temporary {
        ",\"temporary\":true"
    } else {
        ""
    };
    // Messages are Centrifuge's fixed ASCII strings; nothing to escape.
    let _ = write!(
        out,
        "{{\"id\":{id},\"error\":{{\"code\":{},\"message\":\"{}\"{temporary}}}}}",
        code.code, code.message
    );
}

/// `{"push":{"channel":…,"pub":{"data":…,"offset":N}}}`.
pub(crate) fn publication_push(channel: &str, publication: &Publication) -> String {
    push(channel, "pub", &PublicationWire::from(publication))
}

/// `{"push":{"channel":…,"join":{"info":{…}}}}`.
pub(crate) fn join_push(channel: &str, info: &PresenceEntry) -> String {
    push(channel, "join", &InfoWire { info })
}

/// `{"push":{"channel":…,"leave":{"info":{…}}}}`.
pub(crate) fn leave_push(channel: &str, info: &PresenceEntry) -> String {
    push(channel, "leave", &InfoWire { info })
}

/// `{"push":{"channel":…,"unsubscribe":{"code":C,"reason":"…"}}}`.
pub(crate) fn unsubscribe_push(channel: &str, code: UnsubscribeCode) -> String {
    push(
        channel,
        "unsubscribe",
        &UnsubscribeWire {
            code: code.code,
            reason: code.reason,
        },
    )
}

/// The result of `connect`.
#[derive(Serialize)]
pub(crate) struct ConnectResult<'a> {
    pub(crate) client: &'a str,
    pub(crate) version: &'a str,
    #[serde(skip_serializing_if = "is_zero_u32")]
    pub(crate) ping: u32,
    #[serde(skip_serializing_if = "is_false")]
    pub(crate) pong: bool,
}

/// The result of `subscribe`.
#[derive(Default, Serialize)]
pub(crate) struct SubscribeResult<'a> {
    #[serde(skip_serializing_if = "is_false")]
    pub(crate) recoverable: bool,
    #[serde(skip_serializing_if = "str::is_empty")]
    pub(crate) epoch: &'a str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) publications: Vec<PublicationWire<'a>>,
    #[serde(skip_serializing_if = "is_false")]
    pub(crate) recovered: bool,
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub(crate) offset: u64,
    #[serde(skip_serializing_if = "is_false")]
    pub(crate) positioned: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) data: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "is_false")]
    pub(crate) was_recovering: bool,
}

/// The result of `history`.
#[derive(Serialize)]
pub(crate) struct HistoryResult<'a> {
    pub(crate) publications: Vec<PublicationWire<'a>>,
    #[serde(skip_serializing_if = "str::is_empty")]
    pub(crate) epoch: &'a str,
    pub(crate) offset: u64,
}

/// The result of `presence`: client id → `{"user","client"}`.
#[derive(Serialize)]
pub(crate) struct PresenceResult<'a> {
    pub(crate) presence: BTreeMap<&'a str, &'a PresenceEntry>,
}

/// The result of `presence_stats`.
#[derive(Serialize)]
pub(crate) struct PresenceStatsResult {
    pub(crate) num_clients: u32,
    pub(crate) num_users: u32,
}

/// A publication as the client sees it.
#[derive(Serialize)]
pub(crate) struct PublicationWire<'a> {
    data: &'a RawValue,
    #[serde(skip_serializing_if = "Option::is_none")]
    info: Option<&'a PresenceEntry>,
    #[serde(skip_serializing_if = "is_zero_u64")]
    offset: u64,
}

impl<'a> From<&'a Publication> for PublicationWire<'a> {
    fn from(publication: &'a Publication) -> PublicationWire<'a> {
        PublicationWire {
            data: &publication.data,
            info: publication.info.as_ref(),
            offset: publication.offset,
        }
    }
}

/// Serialises a result object; the types here cannot fail to serialise, but if one ever
/// did the client would see an empty result rather than the server panicking.
pub(crate) fn json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|err| {
        tracing::error!(error = %err, "a live reply failed to serialise");
        "{}".to_owned()
    })
}

#[derive(Serialize)]
struct InfoWire<'a> {
    info: &'a PresenceEntry,
}

#[derive(Serialize)]
struct UnsubscribeWire {
    code: u32,
    reason: &'static str,
}

#[derive(Serialize)]
struct PushWire<'a, T: Serialize> {
    push: PushBody<'a, T>,
}

struct PushBody<'a, T: Serialize> {
    channel: &'a str,
    kind: &'static str,
    body: &'a T,
}

impl<T: Serialize> Serialize for PushBody<'_, T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(2))?;
        map.serialize_entry("channel", self.channel)?;
        map.serialize_entry(self.kind, self.body)?;
        map.end()
    }
}

fn push<T: Serialize>(channel: &str, kind: &'static str, body: &T) -> String {
    json(&PushWire {
        push: PushBody {
            channel,
            kind,
            body,
        },
    })
}

fn separate(out: &mut String) {
    if !out.is_empty() {
        out.push('\n');
    }
}

fn is_false(value: &bool) -> bool {
    !*value
}

fn is_zero_u32(value: &u32) -> bool {
    *value == 0
}

fn is_zero_u64(value: &u64) -> bool {
    *value == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(json: &str) -> Box<RawValue> {
        RawValue::from_string(json.to_owned()).unwrap()
    }

    #[test]
    fn replies_keep_the_id_and_the_result_key() {
        let mut out = String::new();
        reply(&mut out, 1, "subscribe", &json(&SubscribeResult::default()));
        error(&mut out, 2, ErrorCode::UNKNOWN_CHANNEL);
        error(&mut out, 3, ErrorCode::INTERNAL);
        assert_eq!(
            out,
            "{\"id\":1,\"subscribe\":{}}\n\
             {\"id\":2,\"error\":{\"code\":102,\"message\":\"unknown channel\"}}\n\
             {\"id\":3,\"error\":{\"code\":100,\"message\":\"internal server error\",\"temporary\":true}}"
        );
    }

    #[test]
    fn pushes_embed_data_as_json() {
        let publication = Publication {
            data: raw(r#"{"uid":"x","action":"saved"}"#),
            offset: 7,
            epoch: "e".into(),
            info: None,
        };
        assert_eq!(
            publication_push("1/grafana/dashboard/uid/x", &publication),
            r#"{"push":{"channel":"1/grafana/dashboard/uid/x","pub":{"data":{"uid":"x","action":"saved"},"offset":7}}}"#
        );
        let info = PresenceEntry {
            user: "3".into(),
            client: "c-1".into(),
        };
        assert_eq!(
            join_push("ch", &info),
            r#"{"push":{"channel":"ch","join":{"info":{"user":"3","client":"c-1"}}}}"#
        );
        assert_eq!(
            unsubscribe_push("ch", UnsubscribeCode::INSUFFICIENT_STATE),
            r#"{"push":{"channel":"ch","unsubscribe":{"code":2500,"reason":"insufficient state"}}}"#
        );
    }
}
