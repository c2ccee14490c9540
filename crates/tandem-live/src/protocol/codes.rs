//! Centrifuge's error, unsubscribe and close codes.

/// An error a command's reply carries: `{"id":N,"error":{"code":C,"message":"…"}}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ErrorCode {
    /// The numeric code (100–112 for Centrifuge's own).
    pub code: u16,
    /// The message Centrifuge sends with it.
    pub message: &'static str,
    /// Whether the client may retry (`"temporary": true`).
    pub temporary: bool,
}

impl ErrorCode {
    const fn new(code: u16, message: &'static str, temporary: bool) -> ErrorCode {
        ErrorCode {
            code,
            message,
            temporary,
        }
    }

    /// 100: something failed on the server.
    pub const INTERNAL: ErrorCode = ErrorCode::new(100, "internal server error", true);
    /// 101: the request is unauthorized.
    pub const UNAUTHORIZED: ErrorCode = ErrorCode::new(101, "unauthorized", false);
    /// 102: no such channel.
    pub const UNKNOWN_CHANNEL: ErrorCode = ErrorCode::new(102, "unknown channel", false);
    /// 103: the client may not do this.
    pub const PERMISSION_DENIED: ErrorCode = ErrorCode::new(103, "permission denied", false);
    /// 104: no such method.
    pub const METHOD_NOT_FOUND: ErrorCode = ErrorCode::new(104, "method not found", false);
    /// 105: the connection is subscribed to the channel already.
    pub const ALREADY_SUBSCRIBED: ErrorCode = ErrorCode::new(105, "already subscribed", false);
    /// 106: a limit (subscriptions per connection) is reached.
    pub const LIMIT_EXCEEDED: ErrorCode = ErrorCode::new(106, "limit exceeded", false);
    /// 107: the request is malformed.
    pub const BAD_REQUEST: ErrorCode = ErrorCode::new(107, "bad request", false);
    /// 108: the channel does not offer this (history, presence, publishing, RPC).
    pub const NOT_AVAILABLE: ErrorCode = ErrorCode::new(108, "not available", false);
    /// 109: the connection token expired.
    pub const TOKEN_EXPIRED: ErrorCode = ErrorCode::new(109, "token expired", false);
    /// 110: the connection expired.
    pub const EXPIRED: ErrorCode = ErrorCode::new(110, "expired", false);
    /// 111: too many requests.
    pub const TOO_MANY_REQUESTS: ErrorCode = ErrorCode::new(111, "too many requests", true);
    /// 112: the stream no longer holds the requested position.
    pub const UNRECOVERABLE_POSITION: ErrorCode =
        ErrorCode::new(112, "unrecoverable position", false);
}

/// A WebSocket close the HTTP layer sends: the code and its reason.
///
/// 3000–3499 ask the client to reconnect; 3500–3999 are terminal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CloseFrame {
    /// The close code.
    pub code: u16,
    /// The short reason.
    pub reason: &'static str,
}

impl CloseFrame {
    const fn new(code: u16, reason: &'static str) -> CloseFrame {
        CloseFrame { code, reason }
    }

    /// 3001: the server is shutting down; reconnect (to another instance).
    pub const SHUTDOWN: CloseFrame = CloseFrame::new(3001, "shutdown");
    /// 3004: an internal error; reconnect.
    pub const SERVER_ERROR: CloseFrame = CloseFrame::new(3004, "internal server error");
    /// 3008: the client does not read fast enough; reconnect.
    pub const SLOW: CloseFrame = CloseFrame::new(3008, "slow");
    /// 3010: the client's stream position is lost; reconnect and recover.
    pub const INSUFFICIENT_STATE: CloseFrame = CloseFrame::new(3010, "insufficient state");
    /// 3012: the client did not answer a ping in time; reconnect.
    pub const NO_PONG: CloseFrame = CloseFrame::new(3012, "no pong");
    /// 3501: the client sent a malformed frame; do not reconnect.
    pub const BAD_REQUEST: CloseFrame = CloseFrame::new(3501, "bad request");
    /// 3502: the client never sent `connect`; do not reconnect.
    pub const STALE: CloseFrame = CloseFrame::new(3502, "stale");
    /// 3504: `[live] max_connections` is reached; do not reconnect.
    pub const CONNECTION_LIMIT: CloseFrame = CloseFrame::new(3504, "connection limit");
    /// 1009 (RFC 6455): a message over `message_size_limit`, as Centrifuge's WebSocket
    /// read limit closes it.
    pub const MESSAGE_TOO_BIG: CloseFrame = CloseFrame::new(1009, "message too big");
}

/// An unsubscribe push's code and reason: `{"push":{"channel":…,"unsubscribe":{…}}}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnsubscribeCode {
    /// The code: below 2500 the client stays unsubscribed, from 2500 it resubscribes.
    pub code: u32,
    /// The short reason.
    pub reason: &'static str,
}

impl UnsubscribeCode {
    /// 2000: the server unsubscribed the client (no resubscribe).
    pub const SERVER: UnsubscribeCode = UnsubscribeCode {
        code: 2000,
        reason: "server unsubscribe",
    };
    /// 2500: the server may have lost publications for this subscription; the client
    /// resubscribes and recovers from its last position.
    pub const INSUFFICIENT_STATE: UnsubscribeCode = UnsubscribeCode {
        code: 2500,
        reason: "insufficient state",
    };
}
